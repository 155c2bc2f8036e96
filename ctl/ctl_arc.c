/*
 * ctl_arc — `ferryctl arc verify < msg`: the ARC chain of a message (RFC 8617), one
 * line per set with its AMS and AS results and why, then the chain's result as an
 * Authentication-Results method ("arc=pass (...) header.oldest-pass=N").
 * Exit status 0 for pass or none, 1 for fail, 2 for usage errors. Key records come
 * from DNS (--resolver), as for `ferryctl dkim verify`.
 */
#include "auth/arc.h"
#include "auth/dkim_dns.h"
#include "ctl/ctl.h"
#include "lib/buf.h"

#include <stdio.h>
#include <string.h>

static int cmd_verify(const struct dns_config *dns)
{
    struct buf msg;
    if (ctl_read_stdin(&msg, "arc") < 0) {
        buf_free(&msg);
        return 1;
    }
    struct dkim_resolver r;
    dkim_resolver_sync(&r, dns);
    struct arc_result res;
    int rc = arc_verify_message(&r, msg.data ? msg.data : "", msg.len, &res);
    buf_free(&msg);
    if (rc < 0) {
        fprintf(stderr, "ferryctl arc: verification could not run (out of memory)\n");
        return 1;
    }
    for (size_t k = 0; k < res.n; k++) {
        const struct arc_set_result *s = &res.sets[k];
        printf("set i=%u: ams=%s%s%s%s as=%s%s%s%s\n", (unsigned)k + 1,
               s->ams == DKIM_RES_NONE ? "unchecked" : dkim_result_name(s->ams),
               s->ams_why[0] ? " (" : "", s->ams_why, s->ams_why[0] ? ")" : "",
               s->as == DKIM_RES_NONE ? "unchecked" : dkim_result_name(s->as),
               s->as_why[0] ? " (" : "", s->as_why, s->as_why[0] ? ")" : "");
    }
    char line[1024];
    arc_result_format(&res, NULL, line, sizeof line);
    printf("%s\n", line);
    return res.status == ARC_CV_FAIL ? 1 : 0;
}

int ctl_arc(const struct dns_config *dns, int argc, char **argv)
{
    if (argc == 1 && !strcmp(argv[0], "verify"))
        return cmd_verify(dns);
    fprintf(stderr, "usage: ferryctl [--resolver IP[:PORT]] arc verify < msg\n");
    return 2;
}

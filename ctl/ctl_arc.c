/*
 * ctl_arc — `ferryctl arc verify < msg`: the ARC chain of a message (RFC 8617), one
 * line per set with its AMS and AS results and why, then the chain's result as an
 * Authentication-Results method ("arc=pass (...) header.oldest-pass=N").
 * Exit status 0 for pass or none, 1 for fail, 2 for usage errors. Key records come
 * from DNS (--resolver), as for `ferryctl dkim verify`.
 *
 * `ferryctl arc sign --domain D --selector S --key KEYFILE --ar "ID; results" [--cv none|pass|fail] < msg`
 * prints the message with the next ARC set on top (for tests and interop checks; the
 * cv= is what the caller says its verification found, default none).
 */
#include "auth/arc.h"
#include "auth/arc_seal.h"
#include "auth/dkim_key.h"
#include "auth/dkim_dns.h"
#include "ctl/ctl.h"
#include "lib/buf.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

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

static int cmd_sign(int argc, char **argv)
{
    const char *domain = NULL, *selector = NULL, *keyfile = NULL, *ar = NULL, *cvs = "none";
    for (int i = 0; i + 1 < argc; i += 2) {
        const char **dst = !strcmp(argv[i], "--domain") ? &domain : !strcmp(argv[i], "--selector") ? &selector :
                           !strcmp(argv[i], "--key") ? &keyfile : !strcmp(argv[i], "--ar") ? &ar :
                           !strcmp(argv[i], "--cv") ? &cvs : NULL;
        if (!dst)
            break;
        *dst = argv[i + 1];
    }
    enum arc_cv cv = !strcmp(cvs, "pass") ? ARC_CV_PASS : !strcmp(cvs, "fail") ? ARC_CV_FAIL : ARC_CV_NONE;
    if (argc % 2 || !domain || !selector || !keyfile || !ar || (cv == ARC_CV_NONE && strcmp(cvs, "none"))) {
        fprintf(stderr, "usage: ferryctl arc sign --domain D --selector S --key KEYFILE --ar \"ID; results\" "
                        "[--cv none|pass|fail] < msg\n");
        return 2;
    }
    char err[256];
    struct dkim_sign_key k = { .algo = DKIM_ALGO_RSA_SHA256, .domain = domain, .selector = selector };
    if (!(k.pkey = dkim_privkey_load(keyfile, &k.algo, err, sizeof err))) {
        fprintf(stderr, "ferryctl arc: %s\n", err);
        return 1;
    }
    struct buf msg, set;
    buf_init(&set, 1u << 20);
    int rc = 1;
    if (ctl_read_stdin(&msg, "arc") < 0)
        goto out;
    int sealed = arc_seal_message(&k, ar, cv, (int64_t)time(NULL), msg.data ? msg.data : "", msg.len, &set, err,
                                  sizeof err);
    if (sealed < 0) {
        fprintf(stderr, "ferryctl arc: %s\n", err);
        goto out;
    }
    if (sealed > 0)         /* the message goes out as it came */
        fprintf(stderr, "ferryctl arc: %s\n", err);
    fwrite(set.data, 1, set.len, stdout);
    fwrite(msg.data, 1, msg.len, stdout);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    buf_free(&msg);
    buf_free(&set);
    EVP_PKEY_free(k.pkey);
    return rc;
}

int ctl_arc(const struct dns_config *dns, int argc, char **argv)
{
    if (argc == 1 && !strcmp(argv[0], "verify"))
        return cmd_verify(dns);
    if (argc >= 1 && !strcmp(argv[0], "sign"))
        return cmd_sign(argc - 1, argv + 1);
    fprintf(stderr, "usage: ferryctl [--resolver IP[:PORT]] arc verify < msg | arc sign ...\n");
    return 2;
}

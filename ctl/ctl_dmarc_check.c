/*
 * ctl_dmarc_check — `ferryctl [--resolver IP[:PORT]] dmarc check --ip IP --helo NAME
 * --sender ADDR < message`: what the daemon would decide at end of DATA, by hand.
 *
 * It runs SPF on the MAIL FROM identity (postmaster@HELO for a null sender "" or
 * "<>"), verifies every DKIM signature, takes the author domain from the From:
 * field(s) and evaluates DMARC. Output, first line (what scripts read):
 *   dmarc=RESULT header.from=D policy=P disposition=X
 * (D empty when there is no single author domain), then one line per step: the SPF
 * and DKIM results, where each record was looked for, each identifier's alignment
 * and the decision, and last the Authentication-Results text.
 * Unix line ends in the message are accepted.
 */
#include "auth/dkim_dns.h"
#include "lib/netaddr.h"
#include "auth/dmarc.h"
#include "auth/spf.h"
#include "ctl/ctl.h"
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "usage: ferryctl [--resolver IP[:PORT]] dmarc check --ip IP --helo NAME --sender ADDR < message\n");
    return 2;
}

/* The header section with CRLF line ends (msg_header reads only those). */
static int header_crlf(const struct buf *msg, struct buf *out)
{
    buf_init(out, 2 * (size_t)CTL_MSG_MAX);   /* LF to CRLF at most doubles it */
    const char *p = msg->data ? msg->data : "";
    size_t n = msg->len;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) {
            if (buf_append(out, "\r\n", 2) < 0)
                return -1;
        } else if (buf_append(out, p + i, 1) < 0) {
            return -1;
        }
        /* stop after the empty line */
        if (out->len >= 4 && !memcmp(out->data + out->len - 4, "\r\n\r\n", 4))
            break;
        if (out->len == 2 && !memcmp(out->data, "\r\n", 2))
            break;
    }
    return 0;
}

int ctl_dmarc_check(const struct dns_config *dns, int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "check"))
        return usage();
    const char *ip = NULL, *helo = NULL, *sender = NULL;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(argv[i], "--ip"))
            ip = argv[i + 1];
        else if (!strcmp(argv[i], "--helo"))
            helo = argv[i + 1];
        else if (!strcmp(argv[i], "--sender"))
            sender = argv[i + 1];
        else
            return usage();
    }
    if (!ip || !helo || !sender)
        return usage();
    struct spf_query q;
    memset(&q, 0, sizeof q);
    if (netaddr_text_bytes(ip, &q.family, q.ip) < 0) {
        fprintf(stderr, "ferryctl dmarc: --ip %s is not an IPv4 or IPv6 address\n", ip);
        return 2;
    }
    char bare[SPF_TEXT_MAX];
    if (sender[0] == '<') {
        snprintf(bare, sizeof bare, "%.*s", (int)strcspn(sender + 1, ">"), sender + 1);
        sender = bare;
    }
    q.sender = sender;
    q.helo = helo;
    q.identity = SPF_ID_MAILFROM;

    struct buf msg, hdr;
    buf_init(&hdr, 0);
    if (ctl_read_stdin(&msg, "dmarc") < 0) {
        buf_free(&msg);
        return 1;
    }
    int rc = 1;
    struct dkim_sig_result *sigs = NULL;
    size_t nsigs = 0;
    static struct spf_outcome spf;
    static struct dmarc_outcome out;
    if (spf_check_sync(dns, &q, &spf) < 0) {
        fprintf(stderr, "ferryctl dmarc: could not set up the DNS client for the SPF check\n");
        goto done;
    }
    struct dkim_resolver dr;
    dkim_resolver_sync(&dr, dns);
    struct dkim_verify_opts vo;
    dkim_verify_opts_init(&vo, (int64_t)time(NULL));
    if (dkim_verify_message(&vo, &dr, msg.data ? msg.data : "", msg.len, &sigs, &nsigs) < 0) {
        fprintf(stderr, "ferryctl dmarc: DKIM verification could not run (out of memory)\n");
        goto done;
    }
    if (header_crlf(&msg, &hdr) < 0) {
        fprintf(stderr, "ferryctl dmarc: the header section is too large to read\n");
        goto done;
    }
    struct dmarc_from from;
    dmarc_from_extract(hdr.data ? hdr.data : "", hdr.len, &from);
    struct dmarc_input in = {&from, spf.result, spf.domain, sigs, nsigs};
    if (dmarc_evaluate_sync(dns, &in, &out) < 0) {
        fprintf(stderr, "ferryctl dmarc: could not set up the DNS client for the DMARC check\n");
        goto done;
    }
    printf("dmarc=%s header.from=%s policy=%s disposition=%s\n", dmarc_result_name(out.result), out.header_from,
           dmarc_policy_name(out.policy), dmarc_policy_name(out.disposition));
    char line[1024];
    if (spf_format_auth_results(&spf, line, sizeof line) >= 0)
        printf("%s%s%s\n", line, spf.reason[0] ? " reason: " : "", spf.reason);
    for (size_t i = 0; i < nsigs; i++) {
        dkim_result_format(&sigs[i], false, line, sizeof line);
        printf("%s\n", line);
    }
    for (size_t i = 0; i < out.nsteps; i++)
        printf("%s\n", out.steps[i]);
    if (dmarc_format_auth_results(&out, line, sizeof line) >= 0)
        printf("authentication-results: %s\n", line);
    rc = fflush(stdout) == 0 ? 0 : 1;
done:
    free(sigs);
    buf_free(&msg);
    buf_free(&hdr);
    return rc;
}

/*
 * ctl_spf — `ferryctl spf check --ip IP --helo NAME --sender ADDR [--identity helo]
 * [--receiver NAME]`: one RFC 7208 check_host() through Ferry's own resolver.
 *
 * Output: the result word alone on the first line (what scripts read), then
 * "explanation:", "mechanism:", "record:", "reason:" lines when they have values,
 * and the Authentication-Results and Received-SPF texts. Run with --ip set to this
 * host's outbound address, it tells a domain owner whether the domain designates it.
 */
#include "auth/spf.h"
#include "lib/netaddr.h"
#include "ctl/ctl.h"

#include <stdio.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: ferryctl spf check --ip IP --helo NAME --sender ADDR [--identity mailfrom|helo] "
                    "[--receiver NAME]\n");
    return 2;
}

int ctl_spf(const struct dns_config *dns, int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "check"))
        return usage();
    const char *ip = NULL, *helo = NULL, *sender = NULL, *receiver = NULL;
    enum spf_identity id = SPF_ID_MAILFROM;
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(argv[i], "--ip"))
            ip = v;
        else if (!strcmp(argv[i], "--helo"))
            helo = v;
        else if (!strcmp(argv[i], "--sender"))
            sender = v;
        else if (!strcmp(argv[i], "--receiver"))
            receiver = v;
        else if (!strcmp(argv[i], "--identity") && (!strcmp(v, "helo") || !strcmp(v, "mailfrom")))
            id = !strcmp(v, "helo") ? SPF_ID_HELO : SPF_ID_MAILFROM;
        else
            return usage();
    }
    if (!ip || !helo || (!sender && id == SPF_ID_MAILFROM))
        return usage();
    struct spf_query q;
    memset(&q, 0, sizeof q);
    if (netaddr_text_bytes(ip, &q.family, q.ip) < 0) {
        fprintf(stderr, "ferryctl: --ip %s is not an IPv4 or IPv6 address\n", ip);
        return 2;
    }
    if (sender && sender[0] == '<') {   /* accept "<addr>" and "<>" as typed in SMTP */
        static char bare[SPF_TEXT_MAX];
        snprintf(bare, sizeof bare, "%.*s", (int)strcspn(sender + 1, ">"), sender + 1);
        sender = bare;
    }
    q.sender = sender;
    q.helo = helo;
    q.receiver = receiver;
    q.identity = id;
    static struct spf_outcome o;
    if (spf_check_sync(dns, &q, &o) < 0) {
        fprintf(stderr, "ferryctl: could not set up the DNS client for the SPF check\n");
        return 1;
    }
    printf("%s\n", spf_result_name(o.result));
    if (o.explanation[0])
        printf("explanation: %s\n", o.explanation);
    if (o.mechanism[0])
        printf("mechanism: %s\n", o.mechanism);
    printf("domain: %s\n", o.domain);
    if (o.record[0])
        printf("record: %s\n", o.record);
    if (o.reason[0])
        printf("reason: %s\n", o.reason);
    char text[2048];
    if (spf_format_auth_results(&o, text, sizeof text) >= 0)
        printf("authentication-results: %s\n", text);
    if (spf_format_received_spf(&o, receiver, text, sizeof text) >= 0)
        printf("received-spf: %s\n", text);
    return 0;
}

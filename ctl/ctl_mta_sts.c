/*
 * ctl_mta_sts — `ferryctl mta-sts policy --domain D [--mode enforce|testing]
 * [--max-age N]`: what a domain publishes to ask senders for MTA-STS (RFC 8461)
 * and TLS reports (RFC 8460). Looks up D's MX records and prints the policy file
 * naming them (to serve as https://mta-sts.D/.well-known/mta-sts.txt, text/plain),
 * then the two TXT records: _mta-sts.D with a fresh id (the time, UTC) and
 * _smtp._tls.D with rua=mailto:tlsrpt@D. Mode testing and max_age one week by
 * default: a new policy is best watched before it is enforced.
 */
#include "ctl/ctl.h"
#include "delivery/mta_sts_policy.h"
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "usage: ferryctl mta-sts policy --domain D [--mode enforce|testing] [--max-age N]\n");
    return 2;
}

static int policy(const struct dns_config *dns, int argc, char **argv)
{
    const char *domain = NULL;
    enum sts_mode mode = STS_MODE_TESTING;
    unsigned long max_age = 604800;
    for (int i = 0; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(argv[i], "--domain"))
            domain = argv[i + 1];
        else if (!strcmp(argv[i], "--mode") && !strcmp(argv[i + 1], "enforce"))
            mode = STS_MODE_ENFORCE;
        else if (!strcmp(argv[i], "--mode") && !strcmp(argv[i + 1], "testing"))
            mode = STS_MODE_TESTING;
        else if (!strcmp(argv[i], "--max-age")) {
            char *end;
            max_age = strtoul(argv[i + 1], &end, 10);
            if (*end || argv[i + 1][0] == '-' || max_age > STS_MAX_AGE_MAX) {
                fprintf(stderr, "ferryctl: --max-age is 0 to %lu seconds\n", STS_MAX_AGE_MAX);
                return 2;
            }
        } else
            return usage();
    }
    if (!domain)
        return usage();
    size_t dl = strlen(domain);
    int dlen = (int)(dl && domain[dl - 1] == '.' ? dl - 1 : dl);
    struct dns_answer a;
    if (dns_lookup_sync(dns, domain, DNS_T_MX, &a) < 0) {
        fprintf(stderr, "ferryctl: cannot look up the MX records of %s\n", domain);
        return 1;
    }
    char names[STS_MX_MAX][STS_MX_LEN];
    const char *mx[STS_MX_MAX];
    size_t n = 0;
    for (size_t i = 0; a.status == DNS_OK && i < a.count && n < STS_MX_MAX; i++) {
        if (a.records[i].type != DNS_T_MX || !a.records[i].u.mx.exchange[0] || !strcmp(a.records[i].u.mx.exchange, "."))
            continue;
        snprintf(names[n], sizeof names[n], "%s", a.records[i].u.mx.exchange);
        size_t l = strlen(names[n]);
        if (l && names[n][l - 1] == '.')
            names[n][l - 1] = '\0';
        for (char *p = names[n]; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = !strcmp(names[k], names[n]);
        if (!dup) {
            mx[n] = names[n];
            n++;
        }
    }
    enum dns_status st = a.status;
    dns_answer_free(&a);
    if (n == 0) {
        fprintf(stderr, "ferryctl: %.*s has no MX host to name (%s)\n", dlen, domain, dns_status_name(st));
        return 1;
    }
    struct buf b;
    buf_init(&b, STS_POLICY_MAX);
    if (sts_policy_format(mode, max_age, mx, n, &b) < 0) {
        fprintf(stderr, "ferryctl: an MX host of %.*s cannot be named in a policy\n", dlen, domain);
        buf_free(&b);
        return 1;
    }
    char id[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(id, sizeof id, "%Y%m%d%H%M%SZ", gmtime_r(&now, &tm));
    printf("# https://mta-sts.%.*s/.well-known/mta-sts.txt (served as text/plain, with a certificate for "
           "mta-sts.%.*s):\n", dlen, domain, dlen, domain);
    fwrite(b.data, 1, b.len, stdout);
    printf("# DNS (a new id whenever the policy changes):\n");
    printf("_mta-sts.%.*s. IN TXT \"v=STSv1; id=%s\"\n", dlen, domain, id);
    printf("_smtp._tls.%.*s. IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@%.*s\"\n", dlen, domain, dlen, domain);
    buf_free(&b);
    return 0;
}

int ctl_mta_sts(const struct dns_config *dns, int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "policy"))
        return policy(dns, argc - 1, argv + 1);
    return usage();
}

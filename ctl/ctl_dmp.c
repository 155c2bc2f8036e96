/*
 * ctl_dmp — `ferryctl dmp check --ip IP --sender ADDR [--helo NAME] [--strict]
 * [--no-helo]` runs the DMP flowchart (result word first: pass, none, deny,
 * temperror; then the SMTP code, the deciding name, the reason and the lookups);
 * `ferryctl dmp record --domain D --ip A [--ip B]...` prints the TXT records a
 * domain publishes to designate those addresses.
 */
#include "auth/dmp.h"
#include "lib/netaddr.h"
#include "auth/spf.h"
#include "ctl/ctl.h"

#include <stdio.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: ferryctl dmp check --ip IP --sender ADDR [--helo NAME] [--strict] [--no-helo]\n"
                    "       ferryctl dmp record --domain D --ip A [--ip B]...\n");
    return 2;
}

static int dmp_record(int argc, char **argv)
{
    const char *domain = NULL;
    const char *ips[64];
    size_t n = 0;
    for (int i = 0; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(argv[i], "--domain"))
            domain = argv[i + 1];
        else if (!strcmp(argv[i], "--ip") && n < sizeof ips / sizeof ips[0])
            ips[n++] = argv[i + 1];
        else
            return usage();
    }
    if (!domain || n == 0)
        return usage();
    size_t dl = strlen(domain);
    int dlen = (int)(dl && domain[dl - 1] == '.' ? dl - 1 : dl);
    char line[512];
    for (size_t k = 0; k < n; k++) {    /* check everything before printing anything */
        if (dmp_record_text(domain, ips[k], line, sizeof line) < 0) {
            fprintf(stderr, "ferryctl: --ip %s is not an address, or the name for %s is too long\n", ips[k], domain);
            return 2;
        }
    }
    printf("_smtp-client.%.*s. IN TXT \"dmp=\"\n", dlen, domain);
    printf("*._smtp-client.%.*s. IN TXT \"dmp=deny\"\n", dlen, domain);
    for (size_t k = 0; k < n; k++) {
        dmp_record_text(domain, ips[k], line, sizeof line);
        printf("%s\n", line);
    }
    return 0;
}

int ctl_dmp(const struct dns_config *dns, int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "record"))
        return dmp_record(argc - 1, argv + 1);
    if (argc < 1 || strcmp(argv[0], "check"))
        return usage();
    const char *ip = NULL, *helo = NULL, *sender = NULL;
    struct dmp_query q;
    memset(&q, 0, sizeof q);
    q.accept_nonparticipant = true;
    q.allow_helo = true;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--strict")) {
            q.accept_nonparticipant = false;
            continue;
        }
        if (!strcmp(argv[i], "--no-helo")) {
            q.allow_helo = false;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        if (!strcmp(argv[i], "--ip"))
            ip = argv[++i];
        else if (!strcmp(argv[i], "--helo"))
            helo = argv[++i];
        else if (!strcmp(argv[i], "--sender"))
            sender = argv[++i];
        else
            return usage();
    }
    if (!ip || !sender)
        return usage();
    if (netaddr_text_bytes(ip, &q.family, q.ip) < 0) {
        fprintf(stderr, "ferryctl: --ip %s is not an IPv4 or IPv6 address\n", ip);
        return 2;
    }
    char bare[512];
    if (sender[0] == '<') {
        snprintf(bare, sizeof bare, "%.*s", (int)strcspn(sender + 1, ">"), sender + 1);
        sender = bare;
    }
    q.sender = sender;
    q.helo = helo;
    struct dmp_outcome o;
    if (dmp_check_sync(dns, &q, &o) < 0) {
        fprintf(stderr, "ferryctl: could not set up the DNS client for the DMP check\n");
        return 1;
    }
    printf("%s\n", dmp_result_name(o.result));
    printf("smtp: %d\n", o.smtp_code);
    printf("tier: %s\n", o.tier == DMP_TIER_LOCAL ? "local" : o.tier == DMP_TIER_DOMAIN ? "domain" : "helo");
    printf("name: %s\n", o.name);
    printf("reason: %s\n", o.reason);
    if (o.trail[0])
        printf("lookups: %s\n", o.trail);
    return 0;
}

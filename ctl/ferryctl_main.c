/*
 * ferryctl — Ferry's administration command.
 *
 *   ferryctl [-c FILE] [--resolver IP[:PORT]]... COMMAND ...
 *     queue list [--json]     the queue, from the spool (daemon running or not)
 *     queue show ID           one message: envelope and header section
 *     queue flush [ID]        attempt now (one message, or all)
 *     queue delete ID         remove without a bounce
 *     queue hold|release ID   stop / resume attempts
 *     queue bounce ID         return to the sender now (5.0.0)
 *     dns TYPE NAME           one lookup through Ferry's own resolver
 *     dkim keygen|sign|verify|rotate ...   DKIM keys, signing and verification
 *     spf check --ip IP --helo NAME --sender ADDR     RFC 7208 check_host()
 *     dmp check --ip IP --sender ADDR [--helo NAME]   DMP (draft-fecyk-dmp-02)
 *     dmarc check --ip IP --helo NAME --sender ADDR < msg   SPF, DKIM and DMARC (RFC 9989)
 *     dmp record --domain D --ip A [--ip B]...        DMP TXT records to publish
 *     mta-sts policy --domain D [--mode M] [--max-age N]  MTA-STS policy and DNS records
 *     map build [--type aliases|virtual] FILE         compile FILE into FILE.db
 *     dmarc import [FILE]     store the aggregate report(s) of a message or report file
 *     dmarc summary [--domain D] [--days N] [--json]  who sends as our domains
 *     dmarc report --dry-run  print the aggregate reports that are due
 *     tlsrpt import [FILE]    store the TLS report(s) of a message or report file
 *     tlsrpt summary [--days N] [--json]  TLS outcomes others report for our domains
 *     pull allow|deny|unlist PEER | allow|deny|unlist USER PATTERN | lists [USER] | list [USER]
 *          | drop USER ID | fetch USER ID              DMTP lists and pending notices
 *
 * Exit codes: 0 ok, 1 operational failure, 2 usage. Errors are one sentence on stderr.
 */
#include "ctl/ctl.h"
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONFIG "/etc/ferry/ferry.conf"

static void usage(void)
{
    fprintf(stderr,
            "usage: ferryctl [-c FILE] [--resolver IP[:PORT]]... COMMAND\n"
            "  queue list [--json] | show ID | flush [ID] | delete ID | hold ID | release ID | bounce ID\n"
            "  user add NAME | del NAME | passwd NAME | list | addr NAME add|del ADDRESS\n"
            "  dns TYPE NAME\n"
            "  dkim keygen --domain D --selector S --out KEYFILE [--algo rsa-sha256|ed25519-sha256] [--bits N]\n"
            "  dkim sign --domain D --selector S --key KEYFILE < msg > signed\n"
            "  dkim verify < msg\n"
            "  dkim rotate --domain D --keydir DIR [--algo A] [--bits N]\n"
            "  spf check --ip IP --helo NAME --sender ADDR [--identity mailfrom|helo] [--receiver NAME]\n"
            "  dmp check --ip IP --sender ADDR [--helo NAME] [--strict] [--no-helo]\n"
            "  dmp record --domain D --ip A [--ip B]...\n"
            "  mta-sts policy --domain D [--mode enforce|testing] [--max-age N]\n"
            "  arc verify < msg | arc sign --domain D --selector S --key KEYFILE --ar RESULTS < msg\n"
            "  dmarc check --ip IP --helo NAME --sender ADDR < msg\n"
            "  dmarc import [FILE] | summary [--domain D] [--days N] [--json] | report [--dry-run] [--domain D]\n"
            "  tlsrpt import [FILE] | summary [--days N] [--json]\n"
            "  map build [--type aliases|virtual] FILE\n"
            "  pull allow|deny|unlist PEER | allow|deny|unlist USER PATTERN | lists [USER] | list [USER] | drop USER ID | fetch USER ID\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    const char *resolvers[DNS_MAX_SERVERS];
    size_t nresolvers = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc) {
            path = argv[++i];
        } else if (!strcmp(argv[i], "--resolver") && i + 1 < argc) {
            if (nresolvers == DNS_MAX_SERVERS) {
                fprintf(stderr, "ferryctl: at most %d resolvers\n", DNS_MAX_SERVERS);
                return 2;
            }
            resolvers[nresolvers++] = argv[++i];
        } else {
            usage();
        }
    }
    if (i >= argc)
        usage();
    log_init(LOG_TO_STDERR, LOG_LVL_WARN, "ferryctl");

    struct ferry_config cfg;
    char err[CONF_ERR_MAX];
    /* The config is needed for the spool; DNS, DKIM, SPF, DMP and DMARC checks run without one. */
    bool dmarc_check = !strcmp(argv[i], "dmarc") && i + 1 < argc && !strcmp(argv[i + 1], "check");
    bool need_config = strcmp(argv[i], "dns") && strcmp(argv[i], "dkim") && strcmp(argv[i], "arc") &&
                       strcmp(argv[i], "spf") && strcmp(argv[i], "dmp") && !dmarc_check && strcmp(argv[i], "map") &&
                       strcmp(argv[i], "mta-sts");
    if (need_config || path) {
        if (settings_load(path ? path : DEFAULT_CONFIG, &cfg, err, sizeof err) < 0) {
            fprintf(stderr, "ferryctl: %s\n", err);
            return 1;
        }
    } else if (settings_load(NULL, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }

    struct dns_config dns;
    settings_dns_config(&cfg, &dns);
    if (nresolvers)
        dns.nservers = 0;       /* --resolver replaces the configured servers */
    for (size_t k = 0; k < nresolvers; k++) {
        if (dns_config_add_server(&dns, resolvers[k]) < 0) {
            fprintf(stderr, "ferryctl: --resolver %s: expected IP or IP:PORT\n", resolvers[k]);
            settings_free(&cfg);
            return 2;
        }
    }

    int rc;
    if (!strcmp(argv[i], "user"))
        rc = ctl_user(&cfg, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "queue"))
        rc = ctl_queue(&cfg, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "dns"))
        rc = ctl_dns(&dns, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "dkim"))
        rc = ctl_dkim(&dns, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "arc"))
        rc = ctl_arc(&dns, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "spf"))
        rc = ctl_spf(&dns, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "dmp"))
        rc = ctl_dmp(&dns, argc - i - 1, argv + i + 1);
    else if (dmarc_check)
        rc = ctl_dmarc_check(&dns, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "dmarc"))
        rc = ctl_dmarc(&cfg, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "tlsrpt"))
        rc = ctl_tlsrpt(&cfg, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "pull"))
        rc = ctl_pull(&cfg, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "mta-sts"))
        rc = ctl_mta_sts(&dns, argc - i - 1, argv + i + 1);
    else if (!strcmp(argv[i], "map"))
        rc = ctl_map(argc - i - 1, argv + i + 1);
    else {
        fprintf(stderr, "ferryctl: unknown command \"%s\"\n", argv[i]);
        rc = 2;
    }
    settings_free(&cfg);
    return rc;
}

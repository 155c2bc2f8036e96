/*
 * dns_probe — drives lib/dns's asynchronous API for the integration tests.
 *
 *   dns_probe --resolver IP[:PORT] [--resolver ...] [--timeout-ms N] [--rounds N] TYPE:NAME...
 *
 * Issues every query at once on one event loop, waits for all, then issues them
 * all again (the second round should come from the cache), printing for each
 * answer: "TYPE NAME status=S cache=0|1 ad=0|1 count=N" and one line per record.
 */
#include "lib/dns.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    char text[300];
    char *name;
    uint16_t type;
};

static int pending;

static void print_answer(const struct dns_answer *a, void *arg)
{
    const struct job *j = arg;
    printf("%s status=%s cache=%d ad=%d count=%zu\n", j->text, dns_status_name(a->status), a->from_cache ? 1 : 0,
           a->authenticated ? 1 : 0, a->count);
    for (size_t i = 0; i < a->count; i++) {
        const struct dns_record *r = &a->records[i];
        char ip[64];
        switch (r->type) {
        case DNS_T_A:
            printf("  A %s\n", inet_ntop(AF_INET, &r->u.a, ip, sizeof ip));
            break;
        case DNS_T_AAAA:
            printf("  AAAA %s\n", inet_ntop(AF_INET6, &r->u.aaaa, ip, sizeof ip));
            break;
        case DNS_T_MX:
            printf("  MX %u %s\n", r->u.mx.preference, r->u.mx.exchange);
            break;
        case DNS_T_PTR:
            printf("  PTR %s\n", r->u.ptr);
            break;
        case DNS_T_TXT:
            printf("  TXT \"%.*s\" len=%zu\n", (int)r->len, (const char *)r->data, r->len);
            break;
        case DNS_T_TLSA:
            printf("  TLSA %u %u %u ", r->u.tlsa.usage, r->u.tlsa.selector, r->u.tlsa.matching);
            for (size_t k = 0; k < r->len; k++)
                printf("%02x", r->data[k]);
            printf("\n");
            break;
        }
    }
    if (a->status != DNS_OK)
        printf("  reason: %s\n", a->error);
    fflush(stdout);
    pending--;
}

int main(int argc, char **argv)
{
    struct dns_config cfg;
    dns_config_init(&cfg);
    struct job *jobs = calloc((size_t)argc, sizeof *jobs);
    int njobs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--resolver") && i + 1 < argc) {
            if (dns_config_add_server(&cfg, argv[++i]) < 0) {
                fprintf(stderr, "dns_probe: bad resolver %s\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) {
            cfg.timeout_ms = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            cfg.rounds = (unsigned)atoi(argv[++i]);
        } else {
            struct job *j = &jobs[njobs++];
            snprintf(j->text, sizeof j->text, "%s", argv[i]);
            char *colon = strchr(j->text, ':');
            if (!colon || !(j->type = dns_type_parse((*colon = '\0', j->text)))) {
                fprintf(stderr, "dns_probe: expected TYPE:NAME, got %s\n", argv[i]);
                return 2;
            }
            *colon = ' ';
            j->name = colon + 1;
        }
    }
    struct event_base *base = event_base_new();
    struct dns_client *c = dns_client_new(base, &cfg);
    for (int round = 0; round < 2; round++) {
        printf("round %d\n", round + 1);
        pending = njobs;
        for (int i = 0; i < njobs; i++)
            dns_lookup(c, jobs[i].name, jobs[i].type, print_answer, &jobs[i]);
        event_base_dispatch(base);
        if (pending != 0) {
            fprintf(stderr, "dns_probe: %d queries never answered\n", pending);
            return 1;
        }
    }
    dns_client_free(c);
    event_base_free(base);
    free(jobs);
    return 0;
}

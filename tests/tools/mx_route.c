/*
 * mx_route — prints delivery/mx.h's route for domains, for the integration tests.
 *
 *   mx_route --resolver IP[:PORT] [--timeout-ms N] [--rounds N] [--family any|ipv4|ipv6]
 *            [--port N] [--self NAME] DOMAIN...
 *
 * Resolves every domain at once on one event loop and prints, in argument order,
 * "DOMAIN result=ok|defer|fail implicit=0|1 (TEXT)" and one line "  HOST IP PORT"
 * per address to try.
 */
#include "delivery/mx.h"
#include "lib/netaddr.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    const char *domain;
    char out[8192];
    int done;
};

static void on_route(const struct mx_route *r, void *arg)
{
    struct job *j = arg;
    static const char *names[] = {"ok", "defer", "fail"};
    size_t o = (size_t)snprintf(j->out, sizeof j->out, "%s result=%s implicit=%d (%s)\n", j->domain,
                                names[r->st.result], r->implicit ? 1 : 0, r->st.text);
    for (size_t i = 0; i < r->ntargets && o < sizeof j->out; i++) {
        char ip[64];
        const struct sockaddr *sa = (const struct sockaddr *)&r->targets[i].sa;
        netaddr_ntop(sa, ip, sizeof ip);
        o += (size_t)snprintf(j->out + o, sizeof j->out - o, "  %s %s %u\n", r->targets[i].host, ip,
                              netaddr_port(sa));
    }
    j->done = 1;
}

int main(int argc, char **argv)
{
    struct dns_config dcfg;
    dns_config_init(&dcfg);
    struct mx_config cfg = {MX_FAMILY_ANY, 25, NULL, false};
    struct job *jobs = calloc((size_t)argc, sizeof *jobs);
    if (!jobs)
        return 1;
    int njobs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--resolver") && i + 1 < argc) {
            if (dns_config_add_server(&dcfg, argv[++i]) < 0) {
                fprintf(stderr, "mx_route: bad resolver %s\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) {
            dcfg.timeout_ms = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
            dcfg.rounds = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--family") && i + 1 < argc) {
            if (mx_family_parse(argv[++i], &cfg.family) < 0) {
                fprintf(stderr, "mx_route: bad family %s\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            cfg.port = (uint16_t)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--self") && i + 1 < argc) {
            cfg.self = argv[++i];
        } else {
            jobs[njobs++].domain = argv[i];
        }
    }
    dcfg.cache_max = 0;
    struct event_base *base = event_base_new();
    struct dns_client *c = base ? dns_client_new(base, &dcfg) : NULL;
    if (!c) {
        fprintf(stderr, "mx_route: cannot start the DNS client\n");
        return 1;
    }
    for (int i = 0; i < njobs; i++) {
        if (!mx_resolve(base, c, jobs[i].domain, &cfg, on_route, &jobs[i])) {
            fprintf(stderr, "mx_route: out of memory\n");
            return 1;
        }
    }
    event_base_dispatch(base);
    int rc = 0;
    for (int i = 0; i < njobs; i++) {
        if (!jobs[i].done) {
            fprintf(stderr, "mx_route: %s never answered\n", jobs[i].domain);
            rc = 1;
            continue;
        }
        fputs(jobs[i].out, stdout);
    }
    dns_client_free(c);
    event_base_free(base);
    free(jobs);
    return rc;
}

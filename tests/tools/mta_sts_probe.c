/*
 * mta_sts_probe — one MTA-STS discovery through delivery/mta_sts.h, as the queue
 * process would run it, for the integration tests. Prints one line:
 *   "DOMAIN applies=0|1 source=S mode=M id=ID mx=P,P failure=T detail=..."
 * The cache lives in DIR's Berkeley DB environment (mta_sts.db). --now sets the
 * clock (UTC seconds); --linger MS keeps the loop running after the answer, so a
 * background refresh can finish.
 *
 * usage: mta_sts_probe --dns IP:PORT --data DIR [--ca FILE] [--addr IP]
 *                      [--now N] [--linger MS] DOMAIN
 */
#include "delivery/mta_sts.h"
#include "lib/db.h"
#include "lib/dns.h"
#include "lib/https_fetch.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int answered;

static void done(void *arg, const struct mta_sts_result *r)
{
    printf("%s applies=%d source=%s mode=%s id=%s mx=", (const char *)arg, r->applies,
           mta_sts_source_name(r->source), r->source == MTA_STS_NONE ? "-" : sts_mode_name(r->policy.mode),
           r->id[0] ? r->id : "-");
    for (unsigned i = 0; i < r->policy.n_mx; i++)
        printf("%s%s", i ? "," : "", r->policy.mx[i]);
    printf(" failure=%s detail=%s\n", r->failure ? r->failure : "-", r->detail[0] ? r->detail : "-");
    fflush(stdout);
    answered = 1;
}

int main(int argc, char **argv)
{
    struct dns_config dc;
    dns_config_init(&dc);
    dc.cache_max = 0;
    struct mta_sts_config cfg = { .timeout_ms = 5000 };
    const char *data = NULL;
    long long now = (long long)time(NULL);
    long linger = 0;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--dns") == 0) {
            if (dns_config_add_server(&dc, argv[i + 1]) < 0)
                return 2;
        } else if (strcmp(argv[i], "--data") == 0)
            data = argv[i + 1];
        else if (strcmp(argv[i], "--ca") == 0)
            cfg.ca_file = argv[i + 1];
        else if (strcmp(argv[i], "--addr") == 0)
            cfg.test_policy_addr = argv[i + 1];
        else if (strcmp(argv[i], "--now") == 0)
            now = strtoll(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--linger") == 0)
            linger = strtol(argv[i + 1], NULL, 10);
        else
            return 2;
    }
    if (i != argc - 1 || !data)
        return 2;
    char err[256];
    struct fdb_env *env;
    struct fdb *db;
    if (fdb_env_open(data, &env, err, sizeof err) < 0 || fdb_open(env, "mta_sts.db", &db, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct event_base *base = event_base_new();
    struct dns_client *dns = dns_client_new(base, &dc);
    struct https_fetcher *https = https_fetcher_new(base);
    struct mta_sts *m = mta_sts_new(dns, https, db, &cfg);
    if (!m || !mta_sts_lookup(m, argv[i], now, done, argv[i]))
        return 1;
    while (!answered)
        event_base_loop(base, EVLOOP_ONCE);
    if (linger > 0) {
        struct timeval tv = { linger / 1000, (linger % 1000) * 1000 };
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    mta_sts_free(m);
    https_fetcher_free(https);
    dns_client_free(dns);
    event_base_free(base);
    fdb_close(db);
    fdb_env_close(env);
    return 0;
}

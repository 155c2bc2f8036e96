/*
 * mta_sts — MTA-STS policy discovery for one recipient domain (RFC 8461 §3, §5.1),
 * asynchronous on the queue process's libevent loop: the _mta-sts TXT record
 * through lib/dns.h, the cache (sts_cache.h), and when needed the policy from
 * https://mta-sts.DOMAIN/.well-known/mta-sts.txt through lib/https_fetch.h
 * (64 KB, mta_sts_config.timeout_ms, text/plain required, the certificate
 * verified for mta-sts.DOMAIN against the system CAs or ca_file).
 *
 * The callback runs once per lookup, never inside mta_sts_lookup. Its result
 * says whether a policy applies (mode enforce or testing), which, and where it
 * came from; when discovery failed it names the TLS-RPT result type
 * (sts-policy-fetch-error, sts-policy-invalid, sts-webpki-invalid), and a live
 * cached policy then still applies (source FALLBACK). A background refresh (the
 * cached policy near its expiry) runs after the callback and only updates the
 * cache. A DNS failure on the TXT record counts as no record. Lookups still in
 * flight when the loop stops are dropped with it (freeing m first is the caller's
 * promise that no callback of the loop runs again).
 *
 * test_policy_addr (tests only, never in a sample config) makes every policy
 * host resolve to that address, the port staying 443 as the RFC requires.
 */
#ifndef FERRY_MTA_STS_H
#define FERRY_MTA_STS_H

#include <stdbool.h>

#include "delivery/mta_sts_policy.h"
#include "delivery/tls_txt.h"

struct dns_client;
struct https_fetcher;
struct fdb;

struct mta_sts_config {
    const char *ca_file;            /* NULL: system CAs */
    long timeout_ms;                /* policy fetch; default 60000 */
    const char *test_policy_addr;   /* NULL in production */
};

enum mta_sts_source { MTA_STS_NONE, MTA_STS_CACHED, MTA_STS_FETCHED, MTA_STS_FALLBACK };

struct mta_sts_result {
    bool applies;                   /* enforce or testing */
    enum mta_sts_source source;
    char id[STS_ID_MAX + 1];
    struct sts_policy policy;
    const char *failure;            /* TLS-RPT result type, or NULL */
    char detail[256];
};

typedef void (*mta_sts_cb)(void *arg, const struct mta_sts_result *r);

struct mta_sts;

struct mta_sts *mta_sts_new(struct dns_client *dns, struct https_fetcher *https, struct fdb *cache,
                            const struct mta_sts_config *cfg);
void mta_sts_free(struct mta_sts *m);

struct mta_sts_lookup;

/* NULL when out of memory or the domain is bad (no callback then). now: UTC
   seconds. */
struct mta_sts_lookup *mta_sts_lookup(struct mta_sts *m, const char *domain, long long now, mta_sts_cb cb,
                                      void *arg);
/* The callback will not run; what is in flight finishes quietly (it may still
   update the cache). */
void mta_sts_cancel(struct mta_sts_lookup *l);

const char *mta_sts_source_name(enum mta_sts_source s);

#endif

/*
 * sts_cache — the MTA-STS policy cache (RFC 8461 §5.1) in Berkeley DB, and the
 * decision, per delivery, between the cached policy, a fetch, and no policy.
 * Called by the queue process before it plans a remote delivery; the fetching
 * itself is lib/https_fetch.h. The decision (sts_cache_plan) and the record
 * format are pure and unit-tested; the rest is two calls on lib/db.h.
 *
 * A record, key = the policy domain in lower case, value =
 *   "STS1\n" id "\n" fetched_at "\n" expires_at "\n" policy-body
 * (times in UTC seconds, expires_at = fetched_at + max_age). A record that does
 * not parse, or whose body is no longer a valid policy, is treated as absent.
 *
 * The decision (now, the cached record if any, the TXT id if a valid _mta-sts
 * record was found):
 *   - a live cached policy whose id is the TXT id, or with no usable TXT record
 *     (§3.1: a missing record does not remove a cached policy): use it, and ask
 *     for a background refresh when less than a quarter of max_age is left and a
 *     TXT record exists (refreshed before it expires, §5.1);
 *   - a TXT id with no live cached policy, or a different id: fetch now; if that
 *     fetch fails, a live cached policy still applies (§5.1);
 *   - no TXT record and nothing live in the cache: no policy.
 * A fetched policy of mode none replaces what was cached (the domain withdrew
 * its policy); it is kept so the id is not refetched, and applies as no policy.
 */
#ifndef FERRY_STS_CACHE_H
#define FERRY_STS_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/mta_sts_policy.h"
#include "delivery/tls_txt.h"

struct fdb;

struct sts_cached {
    char id[STS_ID_MAX + 1];
    long long fetched_at, expires_at;
    struct sts_policy policy;
    char *body;                 /* the policy text (for TLS-RPT's policy-string) */
    size_t body_len;
};

enum sts_action { STS_USE_CACHED, STS_FETCH, STS_NO_POLICY };

struct sts_plan {
    enum sts_action action;
    bool refresh;               /* USE_CACHED: also fetch in the background */
    bool fallback;              /* FETCH: a live cached policy applies if the fetch fails */
};

/* c NULL: nothing cached; txt_id NULL: no usable _mta-sts record. */
struct sts_plan sts_cache_plan(const struct sts_cached *c, const char *txt_id, long long now);

/* Encode into a malloc'd value; NULL when out of memory or the body is too long. */
char *sts_cache_encode(const char *id, long long fetched_at, const struct sts_policy *p, const char *body,
                       size_t body_len, size_t *out_len);
/* Decode a stored value; 0 ok (c->body malloc'd: sts_cached_free), -1 malformed. */
int sts_cache_decode(const void *val, size_t len, struct sts_cached *c);
void sts_cached_free(struct sts_cached *c);

/* The stored record for domain: 0 found, 1 none (or malformed), -1 error. */
int sts_cache_get(struct fdb *db, const char *domain, struct sts_cached *c);
/* Store a policy just fetched (body parsed into p) for domain with the TXT id. */
int sts_cache_put(struct fdb *db, const char *domain, const char *id, long long now, const struct sts_policy *p,
                  const char *body, size_t body_len);

#endif

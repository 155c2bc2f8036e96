/* mta_sts — MTA-STS policy discovery; see mta_sts.h. */
#include "delivery/mta_sts.h"

#include "delivery/sts_cache.h"
#include "lib/dns.h"
#include "lib/https_fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define TXT_RECORDS_MAX 16

struct mta_sts {
    struct dns_client *dns;
    struct https_fetcher *https;
    struct fdb *cache;
    struct mta_sts_config cfg;
};

struct mta_sts_lookup {
    struct mta_sts *m;
    char domain[DNS_NAME_MAX + 1];
    char txt_id[STS_ID_MAX + 1];
    long long now;
    mta_sts_cb cb;              /* NULL: a background refresh */
    void *arg;
    bool have_cached;
    struct sts_cached cached;
    char resolve[DNS_NAME_MAX + 80];
};

const char *mta_sts_source_name(enum mta_sts_source s)
{
    switch (s) {
    case MTA_STS_CACHED: return "cached";
    case MTA_STS_FETCHED: return "fetched";
    case MTA_STS_FALLBACK: return "fallback";
    case MTA_STS_NONE: break;
    }
    return "none";
}

struct mta_sts *mta_sts_new(struct dns_client *dns, struct https_fetcher *https, struct fdb *cache,
                            const struct mta_sts_config *cfg)
{
    struct mta_sts *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->dns = dns;
    m->https = https;
    m->cache = cache;
    m->cfg = *cfg;
    if (m->cfg.timeout_ms <= 0)
        m->cfg.timeout_ms = 60000;
    return m;
}

void mta_sts_free(struct mta_sts *m)
{
    free(m);
}

static void lookup_free(struct mta_sts_lookup *l)
{
    if (l->have_cached)
        sts_cached_free(&l->cached);
    free(l);
}

static void finish(struct mta_sts_lookup *l, struct mta_sts_result *r)
{
    if (l->cb)
        l->cb(l->arg, r);
    lookup_free(l);
}

/* The result from the cached policy (source CACHED or FALLBACK). */
static void from_cache(struct mta_sts_lookup *l, struct mta_sts_result *r, enum mta_sts_source src)
{
    r->source = src;
    r->policy = l->cached.policy;
    r->applies = l->cached.policy.mode != STS_MODE_NONE;
    snprintf(r->id, sizeof r->id, "%s", l->cached.id);
}

static void fetch_failed(struct mta_sts_lookup *l, const char *type, const char *detail)
{
    struct mta_sts_result r;
    memset(&r, 0, sizeof r);
    if (l->have_cached && l->now < l->cached.expires_at)
        from_cache(l, &r, MTA_STS_FALLBACK);
    r.failure = type;
    snprintf(r.detail, sizeof r.detail, "%s", detail);
    finish(l, &r);
}

/* "text/plain", with parameters (charset ...) ignored (§3.2). */
static bool text_plain(const char *ct)
{
    size_t n = strcspn(ct, "; \t");
    return n == 10 && strncasecmp(ct, "text/plain", 10) == 0;
}

static void on_fetched(void *arg, const struct https_result *hr)
{
    struct mta_sts_lookup *l = arg;
    char err[160];
    if (hr->status == HTTPS_TLS) {
        fetch_failed(l, "sts-webpki-invalid", hr->error);
        return;
    }
    if (hr->status != HTTPS_OK) {
        fetch_failed(l, "sts-policy-fetch-error", hr->error);
        return;
    }
    if (!text_plain(hr->content_type)) {
        snprintf(err, sizeof err, "policy served as %s, not text/plain", hr->content_type[0] ? hr->content_type : "-");
        fetch_failed(l, "sts-policy-invalid", err);
        return;
    }
    struct mta_sts_result r;
    memset(&r, 0, sizeof r);
    if (sts_policy_parse(hr->body, hr->len, &r.policy, err, sizeof err) < 0) {
        fetch_failed(l, "sts-policy-invalid", err);
        return;
    }
    if (sts_cache_put(l->m->cache, l->domain, l->txt_id, l->now, &r.policy, hr->body, hr->len) < 0)
        snprintf(r.detail, sizeof r.detail, "policy not cached (database error)");
    r.source = MTA_STS_FETCHED;
    r.applies = r.policy.mode != STS_MODE_NONE;
    snprintf(r.id, sizeof r.id, "%s", l->txt_id);
    finish(l, &r);
}

static int start_fetch(struct mta_sts_lookup *l)
{
    char url[DNS_NAME_MAX + 64];
    snprintf(url, sizeof url, "https://mta-sts.%s/.well-known/mta-sts.txt", l->domain);
    struct https_request req = { .url = url, .ca_file = l->m->cfg.ca_file, .max_body = STS_POLICY_MAX,
                                 .timeout_ms = l->m->cfg.timeout_ms };
    if (l->m->cfg.test_policy_addr) {
        snprintf(l->resolve, sizeof l->resolve, "mta-sts.%s:443:%s", l->domain, l->m->cfg.test_policy_addr);
        req.resolve = l->resolve;
    }
    return https_fetch_start(l->m->https, &req, on_fetched, l);
}

/* The id of the one valid _mta-sts record, or NULL. */
static const char *txt_id(const struct dns_answer *a, char id[STS_ID_MAX + 1])
{
    if (a->status != DNS_OK)
        return NULL;
    const char *recs[TXT_RECORDS_MAX];
    size_t lens[TXT_RECORDS_MAX], n = 0;
    for (size_t i = 0; i < a->count && n < TXT_RECORDS_MAX; i++)
        if (a->records[i].type == DNS_T_TXT) {
            recs[n] = (const char *)a->records[i].data;
            lens[n++] = a->records[i].len;
        }
    int k = tls_txt_select(recs, lens, n, "v=STSv1");
    char err[128];
    if (k < 0 || sts_txt_parse(recs[k], lens[k], id, err, sizeof err) < 0)
        return NULL;
    return id;
}

static void on_txt(const struct dns_answer *a, void *arg)
{
    struct mta_sts_lookup *l = arg;
    const char *id = txt_id(a, l->txt_id);
    l->have_cached = sts_cache_get(l->m->cache, l->domain, &l->cached) == 0;
    struct sts_plan p = sts_cache_plan(l->have_cached ? &l->cached : NULL, id, l->now);
    struct mta_sts_result r;
    memset(&r, 0, sizeof r);
    switch (p.action) {
    case STS_NO_POLICY:
        finish(l, &r);
        return;
    case STS_USE_CACHED:
        from_cache(l, &r, MTA_STS_CACHED);
        if (l->cb)
            l->cb(l->arg, &r);
        l->cb = NULL;
        if (p.refresh && start_fetch(l) == 0)
            return;     /* the refresh finishes the lookup */
        lookup_free(l);
        return;
    case STS_FETCH:
        if (start_fetch(l) < 0)
            fetch_failed(l, "sts-policy-fetch-error", "fetch not started");
        return;
    }
}

void mta_sts_cancel(struct mta_sts_lookup *l)
{
    l->cb = NULL;
}

struct mta_sts_lookup *mta_sts_lookup(struct mta_sts *m, const char *domain, long long now, mta_sts_cb cb,
                                      void *arg)
{
    size_t n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n > DNS_NAME_MAX - 9 || memchr(domain, '/', n) || memchr(domain, ':', n) ||
        domain[0] == '[')
        return NULL;
    struct mta_sts_lookup *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->m = m;
    for (size_t i = 0; i < n; i++)
        l->domain[i] = (char)((domain[i] >= 'A' && domain[i] <= 'Z') ? domain[i] + 32 : domain[i]);
    l->now = now;
    l->cb = cb;
    l->arg = arg;
    char qname[DNS_NAME_MAX + 1];
    snprintf(qname, sizeof qname, "_mta-sts.%s", l->domain);
    if (!dns_lookup(m->dns, qname, DNS_T_TXT, on_txt, l)) {
        free(l);
        return NULL;
    }
    return l;
}

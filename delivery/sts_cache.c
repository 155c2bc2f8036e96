/* sts_cache — the MTA-STS policy cache; see sts_cache.h. */
#include "delivery/sts_cache.h"

#include "lib/db.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sts_plan sts_cache_plan(const struct sts_cached *c, const char *txt_id, long long now)
{
    struct sts_plan p = { STS_NO_POLICY, false, false };
    bool live = c && now < c->expires_at;
    if (live && (!txt_id || strcmp(txt_id, c->id) == 0)) {
        p.action = STS_USE_CACHED;
        long long max_age = c->expires_at - c->fetched_at;
        p.refresh = txt_id && c->expires_at - now < max_age / 4 + 1;
        return p;
    }
    if (txt_id) {
        p.action = STS_FETCH;
        p.fallback = live;
    }
    return p;
}

char *sts_cache_encode(const char *id, long long fetched_at, const struct sts_policy *p, const char *body,
                       size_t body_len, size_t *out_len)
{
    if (body_len > STS_POLICY_MAX)
        return NULL;
    char head[128];
    int n = snprintf(head, sizeof head, "STS1\n%s\n%lld\n%lld\n", id, fetched_at, fetched_at + (long long)p->max_age);
    if (n < 0 || (size_t)n >= sizeof head)
        return NULL;
    char *v = malloc((size_t)n + body_len);
    if (!v)
        return NULL;
    memcpy(v, head, (size_t)n);
    memcpy(v + n, body, body_len);
    *out_len = (size_t)n + body_len;
    return v;
}

/* One "\n"-ended field of at most max octets from *p. */
static int field(const char **p, const char *end, char *out, size_t max)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    if (!nl || (size_t)(nl - *p) >= max)
        return -1;
    memcpy(out, *p, (size_t)(nl - *p));
    out[nl - *p] = '\0';
    *p = nl + 1;
    return 0;
}

static int number(const char *s, long long *out)
{
    if (!*s || strlen(s) > 18)
        return -1;
    long long v = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return -1;
        v = v * 10 + (*s - '0');
    }
    *out = v;
    return 0;
}

int sts_cache_decode(const void *val, size_t len, struct sts_cached *c)
{
    memset(c, 0, sizeof *c);
    const char *p = val, *end = p + len;
    char magic[8], t1[24], t2[24], err[128];
    if (field(&p, end, magic, sizeof magic) < 0 || strcmp(magic, "STS1") != 0 ||
        field(&p, end, c->id, sizeof c->id) < 0 || !c->id[0] || field(&p, end, t1, sizeof t1) < 0 ||
        field(&p, end, t2, sizeof t2) < 0 || number(t1, &c->fetched_at) < 0 || number(t2, &c->expires_at) < 0 ||
        c->expires_at < c->fetched_at)
        return -1;
    c->body_len = (size_t)(end - p);
    if (sts_policy_parse(p, c->body_len, &c->policy, err, sizeof err) < 0)
        return -1;
    c->body = malloc(c->body_len + 1);
    if (!c->body)
        return -1;
    memcpy(c->body, p, c->body_len);
    c->body[c->body_len] = '\0';
    return 0;
}

void sts_cached_free(struct sts_cached *c)
{
    free(c->body);
    c->body = NULL;
}

static int domain_key(const char *domain, char *key, size_t keysz)
{
    size_t n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n >= keysz)
        return -1;
    for (size_t i = 0; i < n; i++)
        key[i] = (char)tolower((unsigned char)domain[i]);
    key[n] = '\0';
    return 0;
}

int sts_cache_get(struct fdb *db, const char *domain, struct sts_cached *c)
{
    char key[256];
    if (domain_key(domain, key, sizeof key) < 0)
        return -1;
    void *val = NULL;
    size_t len = 0;
    int r = fdb_get(db, NULL, key, strlen(key), &val, &len);
    if (r != 0)
        return r;
    r = sts_cache_decode(val, len, c) == 0 ? 0 : 1;
    free(val);
    return r;
}

int sts_cache_put(struct fdb *db, const char *domain, const char *id, long long now, const struct sts_policy *p,
                  const char *body, size_t body_len)
{
    char key[256];
    size_t len;
    if (domain_key(domain, key, sizeof key) < 0)
        return -1;
    char *v = sts_cache_encode(id, now, p, body, body_len, &len);
    if (!v)
        return -1;
    int r = fdb_put(db, NULL, key, strlen(key), v, len);
    free(v);
    return r;
}

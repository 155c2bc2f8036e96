/* greylist — see greylist.h. */
#include "pull/greylist.h"
#include "lib/buf.h"
#include "lib/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRIES 5
#define COUNT_MAX 1000000u

struct greylist_store {
    struct fdb_env *env;
    struct fdb *db;
};

static void fresh(time_t now, struct greylist_record *r)
{
    r->first = r->last = now;
    r->count = 1;
    r->passed = false;
}

enum greylist_verdict greylist_decide(const struct greylist_params *p, const struct greylist_record *old,
                                      time_t now, struct greylist_record *next, const char **reason)
{
    if (!old || (old->passed && now - old->last > p->lifetime) ||
        (!old->passed && now - old->first > p->window)) {
        fresh(now, next);
        if (p->delay == 0) {
            next->passed = true;
            *reason = "new triplet, no delay configured";
            return GREYLIST_PASS;
        }
        *reason = !old ? "new triplet" : old->passed ? "triplet expired, starting again"
                                                     : "retried after the window, starting again";
        return GREYLIST_DEFER;
    }
    *next = *old;
    next->count = old->count < COUNT_MAX ? old->count + 1 : COUNT_MAX;
    if (old->passed) {
        next->last = now;
        *reason = "triplet passed before";
        return GREYLIST_PASS;
    }
    if (now - old->first < p->delay) {
        *reason = "retried too soon";
        return GREYLIST_DEFER;
    }
    next->passed = true;
    next->last = now;
    *reason = "retried after the delay";
    return GREYLIST_PASS;
}

static int lower_addr(const char *a, char *out, size_t outsz)
{
    if (!a || !*a)
        return snprintf(out, outsz, "<>") < 0 ? -1 : 0;
    size_t n = strlen(a);
    if (n > ADDR_PATH_MAX || n >= outsz)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)a[i] <= ' ' || a[i] == 0x7f)
            return -1;
    memcpy(out, a, n + 1);
    str_lower(out);
    return 0;
}

int greylist_key(const struct sockaddr *client, const char *sender, const char *rcpt, char *out, size_t outsz)
{
    char s[ADDR_PATH_MAX + 3], r[ADDR_PATH_MAX + 3], net[INET6_ADDRSTRLEN];
    unsigned char a[16] = { 0 };
    int fam, prefix;
    if (!client || lower_addr(sender, s, sizeof s) < 0 || !rcpt || !*rcpt || lower_addr(rcpt, r, sizeof r) < 0)
        return -1;
    if (client->sa_family == AF_INET) {
        memcpy(a, &((const struct sockaddr_in *)client)->sin_addr, 4);
        fam = AF_INET;
    } else if (client->sa_family == AF_INET6) {
        const unsigned char *b = ((const struct sockaddr_in6 *)client)->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (!memcmp(b, mapped, 12)) {
            memcpy(a, b + 12, 4);
            fam = AF_INET;
        } else {
            memcpy(a, b, 16);
            fam = AF_INET6;
        }
    } else {
        return -1;
    }
    if (fam == AF_INET) {
        a[3] = 0;
        prefix = 24;
    } else {
        memset(a + 8, 0, 8);
        prefix = 64;
    }
    inet_ntop(fam, a, net, sizeof net);
    int n = snprintf(out, outsz, "%s/%d %s %s", net, prefix, s, r);
    return n < 0 || (size_t)n >= outsz ? -1 : n;
}

int greylist_format(const struct greylist_record *r, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%lld %lld %u %d", (long long)r->first, (long long)r->last, r->count,
                     r->passed ? 1 : 0);
    return n < 0 || (size_t)n >= outsz ? -1 : n;
}

int greylist_parse(const char *s, size_t len, struct greylist_record *r)
{
    char t[80], *fields[4];
    if (len >= sizeof t || memchr(s, '\0', len))
        return -1;
    memcpy(t, s, len);
    t[len] = '\0';
    char *p = t;
    for (int i = 0; i < 4; i++) {
        fields[i] = p;
        p = strchr(p, ' ');
        if ((i < 3) != (p != NULL))
            return -1;
        if (p)
            *p++ = '\0';
    }
    unsigned long long first, last, count, passed;
    for (int i = 0; i < 4; i++)
        if (fields[i][0] == '0' && fields[i][1])
            return -1;      /* canonical numbers only */
    if (str_to_u64(fields[0], 1ULL << 40, &first) < 0 || str_to_u64(fields[1], 1ULL << 40, &last) < 0 ||
        str_to_u64(fields[2], COUNT_MAX, &count) < 0 || str_to_u64(fields[3], 1, &passed) < 0 || last < first)
        return -1;
    r->first = (time_t)first;
    r->last = (time_t)last;
    r->count = (unsigned)count;
    r->passed = passed == 1;
    return 0;
}

struct greylist_store *greylist_open(struct fdb_env *env, char *err, size_t errlen)
{
    struct greylist_store *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    g->env = env;
    if (fdb_open(env, "pull_greylist.db", &g->db, err, errlen) < 0) {
        free(g);
        return NULL;
    }
    return g;
}

void greylist_close(struct greylist_store *g)
{
    if (!g)
        return;
    fdb_close(g->db);
    free(g);
}

int greylist_check(struct greylist_store *g, const struct greylist_params *p, const struct sockaddr *client,
                   const char *sender, const char *rcpt, time_t now, enum greylist_verdict *verdict,
                   const char **reason)
{
    char key[GREYLIST_KEY_MAX];
    int kl = greylist_key(client, sender, rcpt, key, sizeof key);
    if (kl < 0) {
        *reason = "bad triplet";
        return -1;
    }
    /* read, decide and write under one transaction: two sessions retrying the same
       triplet at once see each other's record */
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        struct fdb_txn *t;
        if (fdb_txn_begin(g->env, &t) < 0)
            break;
        void *v;
        size_t vl;
        struct greylist_record old, next;
        int r = fdb_get(g->db, t, key, (size_t)kl, &v, &vl);
        bool have = false;
        if (r == 0) {
            have = greylist_parse(v, vl, &old) == 0;     /* a damaged record counts as none */
            free(v);
        }
        if (r >= 0) {
            *verdict = greylist_decide(p, have ? &old : NULL, now, &next, reason);
            char rec[80];
            int n = greylist_format(&next, rec, sizeof rec);
            r = n < 0 ? -1 : fdb_put(g->db, t, key, (size_t)kl, rec, (size_t)n);
        }
        /* A greylist record is a convenience, not a promise: written, not
           fsync'd, so a stranger's RCPTs cost no fsync on the smtp loop. */
        if (r >= 0 && fdb_txn_commit_written(t) == 0)
            return 0;
        if (r < 0)
            fdb_txn_abort(t);
    }
    *reason = "greylist database error";
    return -1;
}

struct expire_ctx {
    const struct greylist_params *p;
    time_t now;
};

/* Can no longer pass (or damaged). */
static int stale(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    const struct expire_ctx *c = arg;
    struct greylist_record r;
    if (greylist_parse(v, vl, &r) < 0)
        return 1;
    return r.passed ? c->now - r.last > c->p->lifetime : c->now - r.first > c->p->window;
}

int greylist_expire(struct greylist_store *g, const struct greylist_params *p, time_t now, size_t max,
                    size_t *dropped)
{
    struct expire_ctx c = { .p = p, .now = now };
    return fdb_sweep(g->db, stale, &c, max, dropped);
}

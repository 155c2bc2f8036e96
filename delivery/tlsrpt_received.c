/* tlsrpt_received — see tlsrpt_received.h. */
#include "delivery/tlsrpt_received.h"
#include "lib/buf.h"
#include "lib/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_MAX (16u << 20)

struct tlsrpt_received {
    struct fdb_env *env;
    struct fdb *db;
};

/* Is policy i of r to be kept? */
static bool kept(const struct tlsrpt_rx_report *r, size_t i, tlsrpt_ours_fn ours, void *arg)
{
    return !ours || ours(arg, r->policies[i].domain);
}

int tlsrpt_received_acceptable(const struct tlsrpt_rx_report *r, tlsrpt_ours_fn ours, void *arg, long long now,
                               char *err, size_t errlen)
{
    if (r->end < now - (long long)TLSRPT_RX_KEEP_DAYS * 86400) {
        snprintf(err, errlen, "the report %s ended more than %d days ago", r->report_id, TLSRPT_RX_KEEP_DAYS);
        return -1;
    }
    if (r->start > now + 86400) {
        snprintf(err, errlen, "the report %s starts more than a day from now", r->report_id);
        return -1;
    }
    if (r->npolicies == 0) {
        snprintf(err, errlen, "the report %s names no policy", r->report_id);
        return -1;
    }
    for (size_t i = 0; i < r->npolicies; i++)
        if (kept(r, i, ours, arg))
            return 0;
    snprintf(err, errlen, "the report %s is about %s, not a domain of this server", r->report_id,
             r->policies[0].domain);
    return -1;
}

int tlsrpt_received_open(struct fdb_env *env, struct tlsrpt_received **out, char *err, size_t errlen)
{
    struct tlsrpt_received *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->env = env;
    if (fdb_open(env, TLSRPT_RECEIVED_DB, &s->db, err, errlen) < 0) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void tlsrpt_received_close(struct tlsrpt_received *s)
{
    if (!s)
        return;
    fdb_close(s->db);
    free(s);
}

static int encode(const struct tlsrpt_rx_report *r, tlsrpt_ours_fn ours, void *arg, long long now, struct buf *b)
{
    int rc = buf_printf(b, "V1\t%lld\t%lld\t%lld\t%s\t%s\t%s\n", r->start, r->end, now, r->org, r->contact,
                        r->report_id);
    for (size_t i = 0; i < r->npolicies && rc == 0; i++) {
        const struct tlsrpt_rx_policy *p = &r->policies[i];
        if (!kept(r, i, ours, arg))
            continue;
        rc = buf_printf(b, "P\t%s\t%s\t%llu\t%llu\n", p->type, p->domain, p->ok, p->failed);
        for (size_t k = 0; k < p->nfail && rc == 0; k++) {
            const struct tlsrpt_rx_failure *f = &p->fail[k];
            rc = buf_printf(b, "F\t%s\t%llu\t%s\t%s\t%s\t%s\n", f->result, f->count, f->mx, f->receiving_ip,
                            f->sending_ip, f->reason);
        }
    }
    return rc;
}

/* Split line on tabs into exactly n fields. */
static bool fields(char *line, char **f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        f[i] = line;
        char *t = strchr(line, '\t');
        if (i + 1 == n)
            return t == NULL;
        if (!t)
            return false;
        *t = '\0';
        line = t + 1;
    }
    return true;
}

/* The value back into a report (policies and failures malloc'd). */
static bool decode(const char *v, size_t len, struct tlsrpt_rx_report *r, long long *received)
{
    memset(r, 0, sizeof *r);
    char *copy = malloc(len + 1);
    if (!copy)
        return false;
    memcpy(copy, v, len);
    copy[len] = '\0';
    size_t np = 0, nf = 0;
    for (const char *p = copy; (p = strchr(p, '\n')); p++)
        if (p[1] == 'P')
            np++;
        else if (p[1] == 'F')
            nf++;
    bool ok = true;
    struct tlsrpt_rx_failure *pool = nf ? calloc(nf, sizeof *pool) : NULL;
    r->policies = np ? calloc(np, sizeof *r->policies) : NULL;
    if ((nf && !pool) || (np && !r->policies))
        ok = false;
    size_t used = 0, line_no = 0;
    for (char *line = copy, *nl; ok && line && *line; line = nl ? nl + 1 : NULL, line_no++) {
        if ((nl = strchr(line, '\n')))
            *nl = '\0';
        char *f[7];
        if (line_no == 0) {
            ok = fields(line, f, 7) && !strcmp(f[0], "V1");
            if (ok) {
                r->start = strtoll(f[1], NULL, 10);
                r->end = strtoll(f[2], NULL, 10);
                *received = strtoll(f[3], NULL, 10);
                str_copy(r->org, f[4], sizeof r->org);
                str_copy(r->contact, f[5], sizeof r->contact);
                str_copy(r->report_id, f[6], sizeof r->report_id);
            }
        } else if (line[0] == 'P' && fields(line, f, 5) && r->npolicies < np) {
            struct tlsrpt_rx_policy *p = &r->policies[r->npolicies++];
            str_copy(p->type, f[1], sizeof p->type);
            str_copy(p->domain, f[2], sizeof p->domain);
            p->ok = strtoull(f[3], NULL, 10);
            p->failed = strtoull(f[4], NULL, 10);
            p->fail = pool ? pool + used : NULL;     /* pool: see release() */
        } else if (line[0] == 'F' && fields(line, f, 7) && r->npolicies && used < nf) {
            struct tlsrpt_rx_policy *p = &r->policies[r->npolicies - 1];
            struct tlsrpt_rx_failure *x = &pool[used++];
            str_copy(x->result, f[1], sizeof x->result);
            x->count = strtoull(f[2], NULL, 10);
            str_copy(x->mx, f[3], sizeof x->mx);
            str_copy(x->receiving_ip, f[4], sizeof x->receiving_ip);
            str_copy(x->sending_ip, f[5], sizeof x->sending_ip);
            str_copy(x->reason, f[6], sizeof x->reason);
            p->nfail++;
        } else {
            ok = false;
        }
    }
    free(copy);
    if (!ok || line_no == 0) {
        free(pool);
        free(r->policies);
        memset(r, 0, sizeof *r);
        return false;
    }
    return true;                /* freed by release(), not tlsrpt_rx_free */
}

/* decode's failures are one pool: the first policy's pointer is its start
   (NULL when no policy has a failure). */
static void release(struct tlsrpt_rx_report *r)
{
    if (r->npolicies)
        free(r->policies[0].fail);
    free(r->policies);
    memset(r, 0, sizeof *r);
}

static size_t make_key(const struct tlsrpt_rx_report *r, char *key, size_t keysz)
{
    char org[256];
    str_copy(org, r->org, sizeof org);
    str_lower(org);
    int n = snprintf(key, keysz, "R1\t%s\t%s", org, r->report_id);
    return n < 0 || (size_t)n >= keysz ? 0 : (size_t)n;
}

/* A stored report whose date range ended before *arg. */
static int too_old(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    char head[64];
    size_t n = vlen < sizeof head - 1 ? vlen : sizeof head - 1;
    memcpy(head, val, n);
    head[n] = '\0';
    long long start, end;
    return sscanf(head, "V1\t%lld\t%lld", &start, &end) == 2 && end < *(const long long *)arg;
}

struct batch {
    const struct tlsrpt_rx_report *r;
    tlsrpt_ours_fn ours;
    void *arg;
    long long now;
};

static size_t batch_key(void *arg, size_t i, char *key, size_t keysz)
{
    return make_key(&((struct batch *)arg)->r[i], key, keysz);
}

static int batch_value(void *arg, size_t i, struct buf *b)
{
    struct batch *bt = arg;
    return encode(&bt->r[i], bt->ours, bt->arg, bt->now, b);
}

int tlsrpt_received_import(struct tlsrpt_received *s, const char *data, size_t len, tlsrpt_ours_fn ours,
                           void *arg, long long now, size_t *stored, size_t *dups, char *err, size_t errlen)
{
    struct tlsrpt_rx_report *reps;
    size_t n;
    *stored = *dups = 0;
    if (tlsrpt_rx_from_bytes(data, len, &reps, &n, err, errlen) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = tlsrpt_received_acceptable(&reps[i], ours, arg, now, err, errlen);
    struct batch bt = {reps, ours, arg, now};
    if (rc == 0 && fdb_put_new(s->env, s->db, n, batch_key, batch_value, VALUE_MAX, &bt, stored, dups) < 0) {
        snprintf(err, errlen, "cannot store the report: %s", fdb_last_error(s->env));
        rc = -1;
    }
    for (size_t i = 0; i < n; i++)
        tlsrpt_rx_free(&reps[i]);
    free(reps);
    return rc;
}

int tlsrpt_received_sweep(struct tlsrpt_received *s, long long now, size_t *gone)
{
    long long limit = now - (long long)TLSRPT_RX_KEEP_DAYS * 86400;
    *gone = 0;
    return fdb_sweep(s->db, too_old, &limit, TLSRPT_RX_SWEEP_MAX, gone);
}

struct visit {
    tlsrpt_received_fn fn;
    void *arg;
};

static int visit_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    struct visit *v = arg;
    struct tlsrpt_rx_report r;
    long long received = 0;
    if (!decode(val, vlen, &r, &received))
        return 0;           /* damaged: skipped, the rest still read */
    int rc = v->fn(&r, received, v->arg);
    release(&r);
    return rc;
}

int tlsrpt_received_foreach(struct tlsrpt_received *s, tlsrpt_received_fn fn, void *arg)
{
    struct visit v = {fn, arg};
    return fdb_foreach(s->db, visit_one, &v);
}

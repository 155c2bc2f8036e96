/* dmarc_agg — see dmarc_agg.h. */
#include "auth/dmarc_agg.h"
#include "auth/dmarc_agg_record.h"
#include "lib/buf.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TXN_ATTEMPTS    8
#define CLAIM_STALE     3600        /* a claim this old belonged to a sender that died */
#define PERIOD_MAX      8192        /* serialised period record */
#define BUMP_MAX        64          /* frozen periods skipped when adding */
#define CLEANUP_BATCH   256         /* rows deleted per transaction */

struct dmarc_agg {
    struct fdb_env *env;
    struct fdb *rows;
    struct fdb *periods;
    char err[256];
};


const char *dmarc_dest_state_name(enum dmarc_dest_state st)
{
    return (unsigned)st < 5 ? agg_dest_states[st] : "?";
}

static int fail(struct dmarc_agg *a, const char *fmt, const char *what)
{
    snprintf(a->err, sizeof a->err, fmt, what);
    return -1;
}

int dmarc_agg_open(struct fdb_env *env, struct dmarc_agg **out, char *err, size_t errlen)
{
    struct dmarc_agg *a = calloc(1, sizeof *a);
    *out = NULL;
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    a->env = env;
    if (fdb_open(env, "dmarc_rows.db", &a->rows, err, errlen) < 0 ||
        fdb_open(env, "dmarc_periods.db", &a->periods, err, errlen) < 0) {
        dmarc_agg_close(a);
        return -1;
    }
    *out = a;
    return 0;
}

void dmarc_agg_close(struct dmarc_agg *a)
{
    if (!a)
        return;
    fdb_close(a->rows);
    fdb_close(a->periods);
    free(a);
}

const char *dmarc_agg_error(const struct dmarc_agg *a)
{
    return a->err;
}

/* ---- validation: what the schema allows, so every stored row reports cleanly ---- */

static bool one_of(const char *v, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(v, *set))
            return true;
    return false;
}

static const char *const policies[] = { "none", "quarantine", "reject", NULL };
static const char *const policies_or_empty[] = { "", "none", "quarantine", "reject", NULL };
static const char *const modes[] = { "r", "s", NULL };
static const char *const yn[] = { "n", "y", NULL };
static const char *const psds[] = { "n", "y", "u", NULL };
static const char *const discoveries[] = { "", "psl", "treewalk", NULL };
static const char *const dispositions[] = { "none", "pass", "quarantine", "reject", NULL };
static const char *const passfail[] = { "pass", "fail", NULL };
static const char *const reasons[] = { "", "local_policy", "mailing_list", "other", "policy_test_mode",
                                       "trusted_forwarder", NULL };
static const char *const dkim_results[] = { "none", "pass", "fail", "policy", "neutral", "temperror",
                                            "permerror", NULL };
static const char *const spf_results[] = { "none", "pass", "fail", "softfail", "policy", "neutral",
                                           "temperror", "permerror", NULL };
static const char *const scopes[] = { "", "mfrom", NULL };

/* A stored text value: no control characters (they would break the record
   encodings and the XML), at most the field's size. */
static bool clean_text(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static const char *check_policy(const struct dmarc_agg_policy *p)
{
    if (!one_of(p->p, policies))
        return "p";
    if (!one_of(p->sp, policies_or_empty))
        return "sp";
    if (!one_of(p->np, policies_or_empty))
        return "np";
    if (!one_of(p->adkim, modes))
        return "adkim";
    if (!one_of(p->aspf, modes))
        return "aspf";
    if (!one_of(p->testing, yn))
        return "testing";
    if (!one_of(p->psd, psds))
        return "psd";
    if (!one_of(p->discovery, discoveries))
        return "discovery method";
    if (!clean_text(p->fo) || p->nrua > DMARC_AGG_MAX_RUA)
        return "fo";
    for (size_t i = 0; i < p->nrua; i++)
        if (!p->rua[i][0] || !clean_text(p->rua[i]))
            return "rua";
    return NULL;
}

static const char *check_row(const struct dmarc_agg_row *r)
{
    if (!r->source_ip[0] || !clean_text(r->source_ip) || strchr(r->source_ip, AGG_FS))
        return "source IP";
    if (!one_of(r->disposition, dispositions))
        return "disposition";
    if (!one_of(r->dkim_aligned, passfail))
        return "DKIM alignment result";
    if (!one_of(r->spf_aligned, passfail))
        return "SPF alignment result";
    if (!one_of(r->reason, reasons))
        return "override reason";
    if (!clean_text(r->reason_comment))
        return "reason comment";
    if (r->ndkim > DMARC_AGG_MAX_DKIM * 8)
        return "DKIM signature count";
    for (size_t i = 0; i < r->ndkim && i < DMARC_AGG_MAX_DKIM; i++)
        if (!r->dkim[i].domain[0] || !clean_text(r->dkim[i].domain) || !clean_text(r->dkim[i].selector) ||
            !one_of(r->dkim[i].result, dkim_results))
            return "DKIM result";
    if (!clean_text(r->spf_domain) || !one_of(r->spf_scope, scopes) ||
        (r->spf_domain[0] && !one_of(r->spf_result, spf_results)))
        return "SPF result";
    if (!r->header_from[0] || !clean_text(r->header_from))
        return "header_from";
    if (!clean_text(r->envelope_from) || !clean_text(r->envelope_to))
        return "envelope domain";
    return NULL;
}

/* Read the period (write-locked) inside txn. 0 found, 1 absent, -1 error or corrupt. */
static int period_get(struct dmarc_agg *a, struct fdb_txn *t, const char *key, size_t klen, struct period *pd)
{
    void *v;
    size_t vlen;
    int r = fdb_get_for_update(a->periods, t, key, klen, &v, &vlen);
    if (r != 0) {
        if (r < 0)
            fail(a, "cannot read the DMARC period: %s", fdb_last_error(a->env));
        return r;
    }
    bool ok = agg_period_decode(v, vlen, pd);
    free(v);
    if (!ok)
        return fail(a, "the DMARC period record for %s is corrupt", key);
    return 0;
}

static int period_put(struct dmarc_agg *a, struct fdb_txn *t, const char *key, size_t klen, const struct period *pd)
{
    struct buf b;
    buf_init(&b, PERIOD_MAX);
    int r = agg_period_encode(pd, &b);
    if (r == 0)
        r = fdb_put(a->periods, t, key, klen, b.data, b.len);
    buf_free(&b);
    if (r < 0)
        fail(a, "cannot write the DMARC period: %s", fdb_last_error(a->env));
    return r;
}

/* ---- add ---- */

static void adopt_policy(struct period *pd, const struct dmarc_agg_policy *pol)
{
    /* While open every destination is pending, so a changed rua list just replaces it. */
    pd->pol = *pol;
    for (size_t i = 0; i < pol->nrua; i++) {
        pd->dest[i] = DMARC_DEST_PENDING;
        pd->claimed_at[i] = 0;
    }
}

/* One attempt in one transaction: 0 counted, 1 unitemised, -1 failed (retry). */
static int add_once(struct dmarc_agg *a, const char *domain, const struct dmarc_agg_policy *pol,
                    const struct dmarc_agg_row *row, long long begin, unsigned interval)
{
    struct fdb_txn *t;
    struct period pd;
    char pkey[DMARC_AGG_DOMAIN_MAX + 24];
    size_t plen = 0;
    int r = -1, found = 1;
    if (fdb_txn_begin(a->env, &t) < 0)
        return fail(a, "cannot begin a transaction: %s", fdb_last_error(a->env));
    for (int bump = 0; bump < BUMP_MAX; bump++) {
        plen = agg_period_key(pkey, sizeof pkey, domain, begin, false);
        found = period_get(a, t, pkey, plen, &pd);
        if (found < 0)
            goto out;
        if (found == 1 || pd.state == DMARC_PERIOD_OPEN)
            break;
        begin += (long long)pd.interval;      /* frozen: count it in the next period */
    }
    if (found == 0 && pd.state != DMARC_PERIOD_OPEN) {
        fail(a, "%s", "too many frozen DMARC periods ahead of now");
        goto out;
    }
    if (found == 1) {
        memset(&pd, 0, sizeof pd);
        pd.interval = interval;
        pd.state = DMARC_PERIOD_OPEN;
    }
    adopt_policy(&pd, pol);

    struct buf key;
    buf_init(&key, 8192);
    char cnt[24];
    if (buf_append(&key, pkey, plen) < 0 || buf_append(&key, "", 1) < 0 || agg_row_key(&key, row) < 0) {
        buf_free(&key);
        fail(a, "%s", "the DMARC row is too large");
        goto out;
    }
    void *v;
    size_t vlen;
    unsigned long long count = 0;
    int rr = fdb_get_for_update(a->rows, t, key.data, key.len, &v, &vlen);
    if (rr == 0) {
        str_copyn(cnt, v, vlen < sizeof cnt ? vlen : sizeof cnt - 1, sizeof cnt);
        free(v);
        if (str_to_u64(cnt, ~0ULL, &count) < 0)
            count = 0;
    }
    if (rr < 0) {
        buf_free(&key);
        fail(a, "cannot read a DMARC row: %s", fdb_last_error(a->env));
        goto out;
    }
    if (rr == 1 && pd.nrows >= DMARC_AGG_MAX_ROWS) {
        pd.unitemised++;
        r = 1;
    } else {
        if (rr == 1)
            pd.nrows++;
        snprintf(cnt, sizeof cnt, "%llu", count + 1);
        if (fdb_put(a->rows, t, key.data, key.len, cnt, strlen(cnt)) < 0) {
            buf_free(&key);
            fail(a, "cannot write a DMARC row: %s", fdb_last_error(a->env));
            goto out;
        }
        r = 0;
    }
    buf_free(&key);
    if (period_put(a, t, pkey, plen, &pd) < 0) {
        r = -1;
        goto out;
    }
    /* Counted once the process hands it to the kernel: the smtp process counts
       every message, and an fsync each would be an fsync per message on top of
       the spool's (RFC-NOTES, DMARC reports: the cost of a power loss). */
    if (fdb_txn_commit_written(t) < 0)
        return fail(a, "cannot commit the DMARC row: %s", fdb_last_error(a->env));
    return r;
out:
    fdb_txn_abort(t);
    return -1;
}

int dmarc_agg_add(struct dmarc_agg *a, const char *domain, const struct dmarc_agg_policy *pol,
                  const struct dmarc_agg_row *row, time_t now, unsigned interval)
{
    const char *bad;
    if (!domain[0] || strlen(domain) >= DMARC_AGG_DOMAIN_MAX || !clean_text(domain))
        return fail(a, "%s", "invalid DMARC policy domain");
    if (interval < 60 || 86400 % interval)
        return fail(a, "%s", "the DMARC report interval must divide a day");
    if ((bad = check_policy(pol)) || (bad = check_row(row)))
        return fail(a, "invalid DMARC report value: %s", bad);
    if (pol->nrua == 0)
        return 1;
    char dom[DMARC_AGG_DOMAIN_MAX];
    str_copy(dom, domain, sizeof dom);
    str_lower(dom);
    size_t n = strlen(dom);
    if (n > 1 && dom[n - 1] == '.')
        dom[n - 1] = '\0';
    long long begin = (long long)now - (long long)now % interval;
    for (int attempt = 0; attempt < TXN_ATTEMPTS; attempt++) {
        int r = add_once(a, dom, pol, row, begin, interval);
        if (r >= 0)
            return r;
    }
    return -1;
}

/* ---- periods ---- */

struct due_ctx {
    time_t now;
    struct dmarc_agg_period_id *list;
    size_t n, cap;
    bool failed;
};


static int due_visit(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
    struct due_ctx *c = arg;
    struct period pd;
    struct dmarc_agg_period_id id;
    if (!agg_split_period_key(k, klen, id.domain, &id.begin) || !agg_period_decode(v, vlen, &pd))
        return 0;       /* a corrupt record is reported by freeze, not here */
    if (pd.state == DMARC_PERIOD_DONE || id.begin + (long long)pd.interval > (long long)c->now)
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        void *p = realloc(c->list, cap * sizeof *c->list);
        if (!p) {
            c->failed = true;
            return 1;
        }
        c->list = p;
        c->cap = cap;
    }
    c->list[c->n++] = id;
    return 0;
}

static int by_begin(const void *x, const void *y)
{
    const struct dmarc_agg_period_id *a = x, *b = y;
    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    return strcmp(a->domain, b->domain);
}

int dmarc_agg_due(struct dmarc_agg *a, time_t now, struct dmarc_agg_period_id **out, size_t *n)
{
    struct due_ctx c = { .now = now };
    *out = NULL;
    *n = 0;
    if (fdb_foreach(a->periods, due_visit, &c) < 0 || c.failed) {
        free(c.list);
        return fail(a, "cannot list DMARC periods: %s", c.failed ? "out of memory" : fdb_last_error(a->env));
    }
    if (c.n)
        qsort(c.list, c.n, sizeof *c.list, by_begin);
    *out = c.list;
    *n = c.n;
    return 0;
}

/* Terminal, or claimed by a sender that has evidently died. */
static bool dest_settled(const struct period *pd, size_t i, long long now)
{
    return pd->dest[i] != DMARC_DEST_PENDING &&
           (pd->dest[i] != DMARC_DEST_CLAIMED || pd->claimed_at[i] + CLAIM_STALE < now);
}

static bool all_settled(const struct period *pd, long long now)
{
    for (size_t i = 0; i < pd->pol.nrua; i++)
        if (!dest_settled(pd, i, now))
            return false;
    return true;
}

struct keys_ctx {
    char **keys;
    size_t *lens;
    size_t n, max;
};

static int collect_key(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
    struct keys_ctx *c = arg;
    if (c->n == c->max)
        return 1;
    char *copy = malloc(klen ? klen : 1);
    if (!copy)
        return 1;
    memcpy(copy, k, klen);
    c->keys[c->n] = copy;
    c->lens[c->n++] = klen;
    return 0;
}

/* Delete a done period's rows, a batch per transaction (one huge transaction
   could exhaust the lock table). A crash part-way leaves rows for purge. */
static int delete_rows(struct dmarc_agg *a, const char *domain, long long begin)
{
    char prefix[DMARC_AGG_DOMAIN_MAX + 24];
    size_t plen = agg_period_key(prefix, sizeof prefix, domain, begin, true);
    char *keys[CLEANUP_BATCH];
    size_t lens[CLEANUP_BATCH];
    for (;;) {
        struct keys_ctx c = { keys, lens, 0, CLEANUP_BATCH };
        if (fdb_foreach_prefix(a->rows, NULL, prefix, plen, collect_key, &c) < 0)
            return fail(a, "cannot read DMARC rows: %s", fdb_last_error(a->env));
        if (c.n == 0)
            return 0;
        struct fdb_txn *t = NULL;
        int r = fdb_txn_begin(a->env, &t);
        for (size_t i = 0; i < c.n && r == 0; i++)
            r = fdb_del(a->rows, t, keys[i], lens[i]) < 0 ? -1 : 0;
        for (size_t i = 0; i < c.n; i++)
            free(keys[i]);
        if (r == 0 && fdb_txn_commit(t) == 0)
            continue;
        if (r < 0 && t)
            fdb_txn_abort(t);
        return fail(a, "cannot delete DMARC rows: %s", fdb_last_error(a->env));
    }
}

static void random_rid(char *out, size_t outsz)
{
    unsigned char rnd[16];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        /* No entropy source: time and address keep it unique enough for one domain. */
        unsigned long long x = (unsigned long long)time(NULL) ^ (unsigned long long)(size_t)out;
        memcpy(rnd, &x, sizeof x);
        memcpy(rnd + 8, &x, sizeof x);
    }
    size_t o = 0;
    for (size_t i = 0; i < sizeof rnd && o + 2 < outsz; i++)
        o += (size_t)snprintf(out + o, outsz - o, "%02x", rnd[i]);
}

enum change { CH_FREEZE, CH_CLAIM, CH_MARK };

/* Change one period in one transaction. 0 changed (or nothing to change for
   freeze), 1 refused, -1 error. *now_done: the period just became done. */
static int change_once(struct dmarc_agg *a, const char *domain, long long begin, long long now, enum change ch,
                       size_t dest, enum dmarc_dest_state st, bool *now_done)
{
    struct fdb_txn *t;
    struct period pd;
    char pkey[DMARC_AGG_DOMAIN_MAX + 24];
    size_t plen = agg_period_key(pkey, sizeof pkey, domain, begin, false);
    *now_done = false;
    if (!plen)
        return fail(a, "%s", "DMARC policy domain too long");
    if (fdb_txn_begin(a->env, &t) < 0)
        return fail(a, "cannot begin a transaction: %s", fdb_last_error(a->env));
    int r = period_get(a, t, pkey, plen, &pd);
    if (r != 0)
        goto out;
    bool dirty = false;
    switch (ch) {
    case CH_FREEZE:
        if (pd.state == DMARC_PERIOD_OPEN) {
            if (begin + (long long)pd.interval > now) {
                r = 1;
                goto out;
            }
            random_rid(pd.rid, sizeof pd.rid);
            pd.state = DMARC_PERIOD_FROZEN;
            dirty = true;
        }
        break;
    case CH_CLAIM:
    case CH_MARK:
        if (dest >= pd.pol.nrua || pd.state != DMARC_PERIOD_FROZEN ||
            pd.dest[dest] != (ch == CH_CLAIM ? DMARC_DEST_PENDING : DMARC_DEST_CLAIMED)) {
            r = 1;
            goto out;
        }
        pd.dest[dest] = ch == CH_CLAIM ? DMARC_DEST_CLAIMED : st;
        pd.claimed_at[dest] = ch == CH_CLAIM ? now : pd.claimed_at[dest];
        dirty = true;
        break;
    }
    if (pd.state == DMARC_PERIOD_FROZEN && all_settled(&pd, now)) {
        pd.state = DMARC_PERIOD_DONE;
        dirty = *now_done = true;
    }
    if (!dirty) {
        fdb_txn_abort(t);
        return 0;
    }
    if (period_put(a, t, pkey, plen, &pd) < 0) {
        r = -1;
        goto out;
    }
    if (fdb_txn_commit(t) < 0)
        return fail(a, "cannot commit the DMARC period: %s", fdb_last_error(a->env));
    return 0;
out:
    fdb_txn_abort(t);
    return r;
}

static int change(struct dmarc_agg *a, const char *domain, long long begin, long long now, enum change ch,
                  size_t dest, enum dmarc_dest_state st)
{
    int r = -1;
    bool done = false;
    for (int attempt = 0; attempt < TXN_ATTEMPTS && r < 0; attempt++)
        r = change_once(a, domain, begin, now, ch, dest, st, &done);
    if (r == 0 && done && delete_rows(a, domain, begin) < 0)
        return 0;       /* the period is done; purge deletes what is left */
    return r;
}

int dmarc_agg_freeze(struct dmarc_agg *a, const char *domain, long long begin, time_t now,
                     struct dmarc_agg_report *out)
{
    memset(out, 0, sizeof *out);
    int r = change(a, domain, begin, (long long)now, CH_FREEZE, 0, DMARC_DEST_PENDING);
    if (r != 0)
        return r;
    return dmarc_agg_load(a, domain, begin, out);
}

int dmarc_agg_claim(struct dmarc_agg *a, const char *domain, long long begin, size_t i)
{
    return change(a, domain, begin, (long long)time(NULL), CH_CLAIM, i, DMARC_DEST_CLAIMED);
}

int dmarc_agg_mark(struct dmarc_agg *a, const char *domain, long long begin, size_t i, enum dmarc_dest_state st)
{
    if (st != DMARC_DEST_SENT && st != DMARC_DEST_TOO_BIG && st != DMARC_DEST_FAILED)
        return fail(a, "%s", "a destination can only be marked sent, too-big or failed");
    return change(a, domain, begin, (long long)time(NULL), CH_MARK, i, st);
}

/* ---- load ---- */

struct load_ctx {
    struct dmarc_agg_report *r;
    size_t prefix, cap;
    bool failed;
};

static int load_visit(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
    struct load_ctx *c = arg;
    struct dmarc_agg_row row;
    if (!agg_row_decode(k, klen, c->prefix, v, vlen, &row))
        return 0;       /* a row that does not decode is left out rather than mis-reported */
    if (c->r->nrows == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        if (cap > DMARC_AGG_MAX_ROWS + 1)
            cap = DMARC_AGG_MAX_ROWS + 1;
        if (cap == c->cap) {
            c->r->unitemised += row.count;
            return 0;
        }
        void *p = realloc(c->r->rows, cap * sizeof *c->r->rows);
        if (!p) {
            c->failed = true;
            return 1;
        }
        c->r->rows = p;
        c->cap = cap;
    }
    c->r->rows[c->r->nrows++] = row;
    return 0;
}

int dmarc_agg_load(struct dmarc_agg *a, const char *domain, long long begin, struct dmarc_agg_report *out)
{
    memset(out, 0, sizeof *out);
    char pkey[DMARC_AGG_DOMAIN_MAX + 24];
    size_t plen = agg_period_key(pkey, sizeof pkey, domain, begin, true);
    if (!plen)
        return fail(a, "%s", "DMARC policy domain too long");
    struct fdb_txn *t;
    if (fdb_txn_begin(a->env, &t) < 0)
        return fail(a, "cannot begin a transaction: %s", fdb_last_error(a->env));
    struct period pd;
    int r = period_get(a, t, pkey, plen - 1, &pd);
    if (r != 0) {
        fdb_txn_abort(t);
        return r;
    }
    str_copy(out->domain, domain, sizeof out->domain);
    out->begin = begin;
    out->end = begin + (long long)pd.interval;
    out->state = pd.state;
    str_copy(out->report_id, pd.rid, sizeof out->report_id);
    out->policy = pd.pol;
    memcpy(out->dest, pd.dest, sizeof out->dest);
    out->unitemised = pd.unitemised;
    struct load_ctx c = { .r = out, .prefix = plen };
    r = fdb_foreach_prefix(a->rows, t, pkey, plen, load_visit, &c);
    fdb_txn_abort(t);       /* read only */
    if (r < 0 || c.failed) {
        dmarc_agg_report_free(out);
        return fail(a, "cannot read DMARC rows: %s", c.failed ? "out of memory" : fdb_last_error(a->env));
    }
    return 0;
}

void dmarc_agg_report_free(struct dmarc_agg_report *r)
{
    free(r->rows);
    r->rows = NULL;
    r->nrows = 0;
}

/* ---- purge ---- */

struct purge_ctx {
    long long limit;
    struct dmarc_agg_period_id ids[CLEANUP_BATCH];
    size_t n;
};

static int purge_visit(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
    struct purge_ctx *c = arg;
    struct period pd;
    struct dmarc_agg_period_id id;
    if (!agg_split_period_key(k, klen, id.domain, &id.begin) || !agg_period_decode(v, vlen, &pd))
        return 0;
    if (pd.state != DMARC_PERIOD_DONE || id.begin + (long long)pd.interval > c->limit)
        return 0;
    c->ids[c->n++] = id;
    return c->n == CLEANUP_BATCH;
}

long dmarc_agg_purge(struct dmarc_agg *a, time_t now, long long keep)
{
    long total = 0;
    for (;;) {
        struct purge_ctx *c = calloc(1, sizeof *c);
        if (!c)
            return fail(a, "%s", "out of memory");
        c->limit = (long long)now - keep;
        if (fdb_foreach(a->periods, purge_visit, c) < 0) {
            free(c);
            return fail(a, "cannot list DMARC periods: %s", fdb_last_error(a->env));
        }
        size_t n = c->n;
        for (size_t i = 0; i < n; i++) {
            char pkey[DMARC_AGG_DOMAIN_MAX + 24];
            size_t plen = agg_period_key(pkey, sizeof pkey, c->ids[i].domain, c->ids[i].begin, false);
            /* rows first: a crash between leaves a done period, purged next time */
            if (delete_rows(a, c->ids[i].domain, c->ids[i].begin) < 0 ||
                fdb_del(a->periods, NULL, pkey, plen) < 0) {
                free(c);
                return -1;
            }
            total++;
        }
        free(c);
        if (n < CLEANUP_BATCH)
            return total;
    }
}

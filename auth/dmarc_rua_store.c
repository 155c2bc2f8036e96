/* dmarc_rua_store — see dmarc_rua_store.h. Values are text: a header line, then
   one tab-separated line per record (the parser already made every control
   character, tab included, a space). */
#include "auth/dmarc_rua_store.h"
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_MAX (64u << 20)

struct dmarc_rua_store {
    struct fdb_env *env;
    struct fdb *db;
};

int dmarc_rua_store_open(struct fdb_env *env, struct dmarc_rua_store **out, char *err, size_t errlen)
{
    struct dmarc_rua_store *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->env = env;
    if (fdb_open(env, "dmarc_received.db", &s->db, err, errlen) < 0) {
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void dmarc_rua_store_close(struct dmarc_rua_store *s)
{
    if (!s)
        return;
    fdb_close(s->db);
    free(s);
}

static int encode(const struct dmarc_rua_report *r, struct buf *b)
{
    int rc = buf_printf(b, "%s\t%s\t%s\t%lld\t%lld\t%s\t%s\n", r->org_name, r->email, r->report_id, r->begin, r->end,
                        r->domain, r->p);
    for (size_t i = 0; i < r->nrecords && rc == 0; i++) {
        const struct dmarc_rua_record *x = &r->records[i];
        rc = buf_printf(b, "%s\t%llu\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x->source_ip, x->count, x->disposition,
                        x->dkim, x->spf, x->header_from, x->envelope_from, x->dkim_domain, x->dkim_result,
                        x->spf_domain, x->spf_result);
    }
    return rc;
}

/* Split line on tabs into n bounded fields. */
static bool fields(char *line, char **f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        f[i] = line;
        char *t = strchr(line, '\t');
        if (i + 1 < n) {
            if (!t)
                return false;
            *t = '\0';
            line = t + 1;
        } else if (t) {
            return false;
        }
    }
    return true;
}

#define COPY(dst, src) (str_copy(dst, src, sizeof dst) < sizeof dst)

static bool decode(const char *v, size_t len, struct dmarc_rua_report *r)
{
    memset(r, 0, sizeof *r);
    char *text = malloc(len + 1);
    if (!text)
        return false;
    memcpy(text, v, len);
    text[len] = '\0';
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    r->records = calloc(lines ? lines : 1, sizeof *r->records);
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    char *f[11];
    unsigned long long u = 0, e = 0;
    bool ok = r->records && line && fields(line, f, 7) && COPY(r->org_name, f[0]) && COPY(r->email, f[1]) &&
              COPY(r->report_id, f[2]) && str_to_u64(f[3], ~0ULL, &u) == 0 && str_to_u64(f[4], ~0ULL, &e) == 0 &&
              COPY(r->domain, f[5]) && COPY(r->p, f[6]);
    r->begin = (long long)u;
    r->end = (long long)e;
    while (ok && (line = strtok_r(NULL, "\n", &save))) {
        struct dmarc_rua_record *x = &r->records[r->nrecords++];
        ok = fields(line, f, 11) && COPY(x->source_ip, f[0]) && str_to_u64(f[1], ~0ULL, &x->count) == 0 &&
             COPY(x->disposition, f[2]) && COPY(x->dkim, f[3]) && COPY(x->spf, f[4]) &&
             COPY(x->header_from, f[5]) && COPY(x->envelope_from, f[6]) && COPY(x->dkim_domain, f[7]) &&
             COPY(x->dkim_result, f[8]) && COPY(x->spf_domain, f[9]) && COPY(x->spf_result, f[10]);
    }
    free(text);
    if (!ok)
        dmarc_rua_report_free(r);
    return ok;
}

static size_t make_key(const struct dmarc_rua_report *r, char *key, size_t keysz)
{
    char org[256];
    str_copy(org, r->org_name, sizeof org);
    str_lower(org);
    int n = snprintf(key, keysz, "%s%c%s", org, 0, r->report_id);
    return n < 0 || (size_t)n >= keysz ? 0 : (size_t)n;
}

static size_t batch_key(void *arg, size_t i, char *key, size_t keysz)
{
    return make_key(&((const struct dmarc_rua_report *)arg)[i], key, keysz);
}

static int batch_value(void *arg, size_t i, struct buf *b)
{
    return encode(&((const struct dmarc_rua_report *)arg)[i], b);
}

int dmarc_rua_store_put(struct dmarc_rua_store *s, const struct dmarc_rua_report *r, size_t n, size_t *stored,
                        size_t *dups, char *err, size_t errlen)
{
    if (fdb_put_new(s->env, s->db, n, batch_key, batch_value, VALUE_MAX, (void *)r, stored, dups) == 0)
        return 0;
    snprintf(err, errlen, "cannot store the reports: %s", fdb_last_error(s->env));
    return -1;
}

int dmarc_rua_import(struct dmarc_rua_store *s, const char *data, size_t len, size_t *stored, size_t *dups,
                     char *err, size_t errlen)
{
    return dmarc_rua_import_for(s, data, len, NULL, NULL, stored, dups, err, errlen);
}

int dmarc_rua_import_for(struct dmarc_rua_store *s, const char *data, size_t len,
                         bool (*ours)(void *arg, const char *domain), void *arg, size_t *stored, size_t *dups,
                         char *err, size_t errlen)
{
    *stored = *dups = 0;
    size_t skip = 0;
    while (skip < len && (data[skip] == ' ' || data[skip] == '\t' || data[skip] == '\r' || data[skip] == '\n'))
        skip++;
    const unsigned char *p = (const unsigned char *)data + skip;
    size_t rest = len - skip;
    bool bare = (rest >= 2 && p[0] == 0x1f && p[1] == 0x8b) || (rest >= 4 && !memcmp(p, "PK\3\4", 4)) ||
                (rest >= 5 && !memcmp(p, "<?xml", 5)) || (rest >= 9 && !memcmp(p, "<feedback", 9));
    struct dmarc_rua_report *reps = NULL, one;
    size_t n = 0;
    if (bare) {
        if (dmarc_rua_parse_blob(p, rest, &one, err, errlen) < 0)
            return -1;
        reps = &one;
        n = 1;
    } else if (dmarc_rua_from_message(data, len, &reps, &n, err, errlen) < 0) {
        return -1;
    }
    /* Only reports about our own domains are kept: anyone can mail the address. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (ours && !ours(arg, reps[i].domain)) {
            dmarc_rua_report_free(&reps[i]);
            continue;
        }
        if (kept != i)
            reps[kept] = reps[i];
        kept++;
    }
    int rc;
    if (kept == 0 && n > 0) {
        snprintf(err, errlen, "report refused: it is about %.200s, not one of our domains", reps[0].domain);
        rc = -1;
        n = 0;
    } else {
        rc = dmarc_rua_store_put(s, reps, kept, stored, dups, err, errlen);
        n = kept;
    }
    for (size_t i = 0; i < n; i++)
        dmarc_rua_report_free(&reps[i]);
    if (!bare)
        free(reps);
    return rc;
}

struct visit {
    dmarc_rua_visit_fn fn;
    void *arg;
};

static int visit(const void *k, size_t klen, const void *v, size_t vlen, void *arg)
{
    struct visit *c = arg;
    struct dmarc_rua_report r;
    if (!decode(v, vlen, &r))
        return 0;
    int stop = c->fn(&r, c->arg);
    dmarc_rua_report_free(&r);
    return stop;
}

int dmarc_rua_store_foreach(struct dmarc_rua_store *s, dmarc_rua_visit_fn fn, void *arg)
{
    struct visit c = { fn, arg };
    return fdb_foreach(s->db, visit, &c);
}

/*
 * ctl_tlsrpt — `ferryctl tlsrpt import|summary`, the TLS reports (RFC 8460)
 * other senders sent about our domains:
 *
 *   tlsrpt import [FILE]     a received message (or a bare .json/.json.gz report)
 *                            from FILE or standard input into the data_dir store
 *                            (delivery/tlsrpt_received.h), whatever its policy
 *                            domain: the administrator chose the file; a refused
 *                            one stores nothing and exits 1 with the reason
 *   tlsrpt summary [--days N] [--json]
 *                            per reporting organisation and policy domain: the
 *                            reports, successful and failed sessions, and the
 *                            failures by result type; --days N keeps the reports
 *                            whose range ended in the last N days
 */
#include "ctl/ctl.h"
#include "delivery/tlsrpt_received.h"
#include "lib/buf.h"
#include "lib/db.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAIRS_MAX 100000
#define TYPES_MAX 32            /* result types per pair; more are summed under "other" */

static int usage(void)
{
    fprintf(stderr, "usage: ferryctl tlsrpt import [FILE] | summary [--days N] [--json]\n");
    return 2;
}

static int cmd_import(const struct ferry_config *cfg, int argc, char **argv)
{
    if (argc > 1)
        return usage();
    struct buf b;
    int rc = ctl_read_input(argc ? argv[0] : NULL, &b, TLSRPT_RX_MSG_MAX) < 0 ? 1 : 0;
    struct fdb_env *env = NULL;
    struct tlsrpt_received *st = NULL;
    char err[512];
    size_t stored = 0, dups = 0;
    if (rc == 0 && ctl_open_env(cfg, &env) < 0)
        rc = 1;
    if (rc == 0 && tlsrpt_received_open(env, &st, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        rc = 1;
    }
    if (rc == 0 && tlsrpt_received_import(st, b.data ? b.data : "", b.len, NULL, NULL, (long long)time(NULL),
                                          &stored, &dups, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s: report refused: %s\n", argc ? argv[0] : "standard input", err);
        rc = 1;
    }
    if (rc == 0)
        printf("%zu report%s stored, %zu already present\n", stored, stored == 1 ? "" : "s", dups);
    tlsrpt_received_close(st);
    if (env)
        fdb_env_close(env);
    buf_free(&b);
    return rc;
}

/* One (organisation, policy domain) and what its reports say. */
struct type_count {
    char type[64];
    unsigned long long n;
};

struct pair {
    char org[256];
    char domain[256];
    unsigned long long reports, ok, failed;
    struct type_count types[TYPES_MAX];
    size_t ntypes;
};

struct summary {
    long long since;
    struct pair *v;
    size_t n, cap;
    unsigned long long reports;
    bool full;
};

static struct pair *pair_for(struct summary *s, const char *org, const char *domain)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].org, org) && !strcmp(s->v[i].domain, domain))
            return &s->v[i];
    if (s->n == PAIRS_MAX) {
        s->full = true;
        return NULL;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct pair *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            s->full = true;
            return NULL;
        }
        s->v = v;
        s->cap = cap;
    }
    struct pair *p = &s->v[s->n++];
    memset(p, 0, sizeof *p);
    str_copy(p->org, org, sizeof p->org);
    str_copy(p->domain, domain, sizeof p->domain);
    return p;
}

static void add_type(struct pair *p, const char *type, unsigned long long n)
{
    size_t i = 0;
    while (i < p->ntypes && strcmp(p->types[i].type, type))
        i++;
    if (i == p->ntypes && p->ntypes == TYPES_MAX) {
        i = TYPES_MAX - 1;          /* the last slot becomes "other" */
        str_copy(p->types[i].type, "other", sizeof p->types[i].type);
    } else if (i == p->ntypes) {
        str_copy(p->types[p->ntypes++].type, type, sizeof p->types[i].type);
    }
    p->types[i].n += n;
}

static int visit(const struct tlsrpt_rx_report *r, long long received, void *arg)
{
    struct summary *s = arg;
    if (r->end < s->since)
        return 0;
    s->reports++;
    for (size_t i = 0; i < r->npolicies; i++) {
        const struct tlsrpt_rx_policy *pol = &r->policies[i];
        struct pair *p = pair_for(s, r->org, pol->domain);
        if (!p)
            return 0;
        bool seen = false;      /* a report counts once per pair, even with two policies */
        for (size_t k = 0; k < i && !seen; k++)
            seen = !strcmp(r->policies[k].domain, pol->domain);
        p->reports += !seen;
        p->ok += pol->ok;
        p->failed += pol->failed;
        for (size_t k = 0; k < pol->nfail; k++)
            add_type(p, pol->fail[k].result, pol->fail[k].count);
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->org, y->org);
    return c ? c : strcmp(x->domain, y->domain);
}

static int by_type(const void *a, const void *b)
{
    return strcmp(((const struct type_count *)a)->type, ((const struct type_count *)b)->type);
}

static void print_json(const struct summary *s)
{
    json_object *root = json_object_new_object(), *pairs = json_object_new_array();
    json_object_object_add(root, "reports", json_object_new_int64((int64_t)s->reports));
    for (size_t i = 0; i < s->n; i++) {
        const struct pair *p = &s->v[i];
        json_object *o = json_object_new_object(), *types = json_object_new_object();
        json_object_object_add(o, "organization", json_object_new_string(p->org));
        json_object_object_add(o, "policy_domain", json_object_new_string(p->domain));
        json_object_object_add(o, "reports", json_object_new_int64((int64_t)p->reports));
        json_object_object_add(o, "successful", json_object_new_int64((int64_t)p->ok));
        json_object_object_add(o, "failed", json_object_new_int64((int64_t)p->failed));
        for (size_t k = 0; k < p->ntypes; k++)
            json_object_object_add(types, p->types[k].type, json_object_new_int64((int64_t)p->types[k].n));
        json_object_object_add(o, "failure_types", types);
        json_object_array_add(pairs, o);
    }
    json_object_object_add(root, "pairs", pairs);
    printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

static void print_text(const struct summary *s, int days)
{
    printf("%llu report%s", s->reports, s->reports == 1 ? "" : "s");
    if (days > 0)
        printf(" ending in the last %d day%s", days, days == 1 ? "" : "s");
    printf("\n");
    for (size_t i = 0; i < s->n; i++) {
        const struct pair *p = &s->v[i];
        printf("%s / %s: %llu report%s, %llu successful, %llu failed", p->org, p->domain, p->reports,
               p->reports == 1 ? "" : "s", p->ok, p->failed);
        for (size_t k = 0; k < p->ntypes; k++)
            printf("%s%s %llu", k ? ", " : " (", p->types[k].type, p->types[k].n);
        printf("%s\n", p->ntypes ? ")" : "");
    }
}

static int cmd_summary(const struct ferry_config *cfg, int argc, char **argv)
{
    int days = 0;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--days") && i + 1 < argc) {
            unsigned long long d;
            if (str_to_u64(argv[++i], 100000, &d) < 0 || d == 0) {
                fprintf(stderr, "ferryctl: --days takes a number of days from 1 to 100000\n");
                return 2;
            }
            days = (int)d;
        } else {
            return usage();
        }
    }
    struct summary s = {.since = days ? (long long)time(NULL) - (long long)days * 86400 : 0};
    struct fdb_env *env;
    struct tlsrpt_received *st;
    char err[512];
    if (ctl_open_env(cfg, &env) < 0)
        return 1;
    if (tlsrpt_received_open(env, &st, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        fdb_env_close(env);
        return 1;
    }
    int rc = tlsrpt_received_foreach(st, visit, &s) < 0 ? 1 : 0;
    tlsrpt_received_close(st);
    fdb_env_close(env);
    if (rc) {
        fprintf(stderr, "ferryctl: cannot read %s\n", TLSRPT_RECEIVED_DB);
    } else {
        if (s.full)
            fprintf(stderr, "ferryctl: more than %d organisation and domain pairs; the rest is left out\n",
                    PAIRS_MAX);
        if (s.n)
            qsort(s.v, s.n, sizeof *s.v, by_name);
        for (size_t i = 0; i < s.n; i++)
            qsort(s.v[i].types, s.v[i].ntypes, sizeof s.v[i].types[0], by_type);
        json ? print_json(&s) : print_text(&s, days);
    }
    free(s.v);
    return rc;
}

int ctl_tlsrpt(const struct ferry_config *cfg, int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "import"))
        return cmd_import(cfg, argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "summary"))
        return cmd_summary(cfg, argc - 1, argv + 1);
    return usage();
}

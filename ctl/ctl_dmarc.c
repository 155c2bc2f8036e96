/*
 * ctl_dmarc — `ferryctl dmarc import|summary|report`:
 *
 *   dmarc import [FILE]      a received message (or a bare .xml/.xml.gz/.zip report)
 *                            from FILE or standard input into the data_dir store
 *                            (auth/dmarc_rua_store.h); a refused one stores nothing
 *                            and exits 1 with the reason
 *   dmarc summary [--domain D] [--days N] [--json]
 *                            from the received reports: per reporter and source IP,
 *                            messages and SPF/DKIM/DMARC pass counts and rates, then
 *                            the sources that fail DMARC
 *   dmarc report --dry-run   the aggregate reports we would send now, as XML
 *                            (sending them is the queue process's job)
 */
#include "auth/dmarc_agg.h"
#include "auth/dmarc_report_mail.h"
#include "auth/dmarc_rua_store.h"
#include "ctl/ctl.h"
#include "lib/log.h"
#include "queue/dmarc_job.h"
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUMMARY_ROWS_MAX 2000000

static int usage(void)
{
    fprintf(stderr, "usage: ferryctl dmarc import [FILE] | summary [--domain D] [--days N] [--json] | "
                    "report [--dry-run] [--domain D]\n");
    return 2;
}

static int cmd_import(const struct ferry_config *cfg, int argc, char **argv)
{
    if (argc > 1)
        return usage();
    struct buf b;
    int rc = ctl_read_input(argc ? argv[0] : NULL, &b, DMARC_RUA_MSG_MAX) < 0 ? 1 : 0;
    struct fdb_env *env = NULL;
    struct dmarc_rua_store *st = NULL;
    char err[512];
    size_t stored = 0, dups = 0;
    if (rc == 0 && ctl_open_env(cfg, &env) < 0)
        rc = 1;
    if (rc == 0 && dmarc_rua_store_open(env, &st, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        rc = 1;
    }
    if (rc == 0 && dmarc_rua_import(st, b.data ? b.data : "", b.len, &stored, &dups, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s: report refused: %s\n", argc ? argv[0] : "standard input", err);
        rc = 1;
    }
    if (rc == 0)
        printf("%zu report%s stored, %zu already present\n", stored, stored == 1 ? "" : "s", dups);
    dmarc_rua_store_close(st);
    fdb_env_close(env);
    buf_free(&b);
    return rc;
}

/* One (reporter, source IP, header_from) with its counts. */
struct entry {
    const char *org;        /* interned in the report list below */
    char ip[64];
    char from[256];
    unsigned long long n, spf, dkim, dmarc;
};

struct summary {
    const char *domain;
    long long since;
    struct entry *e;
    size_t n, cap;
    char **orgs;
    size_t norgs;
    unsigned long long reports;
    bool full;
};

static const char *intern(struct summary *s, const char *org)
{
    for (size_t i = 0; i < s->norgs; i++)
        if (!strcmp(s->orgs[i], org))
            return s->orgs[i];
    char **p = realloc(s->orgs, (s->norgs + 1) * sizeof *p);
    char *copy = strdup(org);
    if (!p || !copy) {
        free(copy);
        if (p)
            s->orgs = p;
        return NULL;
    }
    s->orgs = p;
    return s->orgs[s->norgs++] = copy;
}

static int gather(const struct dmarc_rua_report *r, void *arg)
{
    struct summary *s = arg;
    if ((s->domain && !str_ieq(r->domain, s->domain)) || r->end < s->since)
        return 0;
    const char *org = intern(s, r->org_name);
    if (!org)
        return s->full = true;
    s->reports++;
    for (size_t i = 0; i < r->nrecords; i++) {
        const struct dmarc_rua_record *x = &r->records[i];
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 256;
            void *p = cap <= SUMMARY_ROWS_MAX ? realloc(s->e, cap * sizeof *s->e) : NULL;
            if (!p)
                return s->full = true;
            s->e = p;
            s->cap = cap;
        }
        struct entry *e = &s->e[s->n++];
        memset(e, 0, sizeof *e);
        e->org = org;
        str_copy(e->ip, x->source_ip, sizeof e->ip);
        str_copy(e->from, x->header_from, sizeof e->from);
        bool spf = !strcmp(x->spf, "pass"), dkim = !strcmp(x->dkim, "pass");
        e->n = x->count;
        e->spf = spf ? x->count : 0;
        e->dkim = dkim ? x->count : 0;
        e->dmarc = spf || dkim ? x->count : 0;
    }
    return 0;
}

static int by_source(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = strcmp(x->org, y->org);
    return c ? c : strcmp(x->ip, y->ip);
}

static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static double pct(unsigned long long part, unsigned long long whole)
{
    return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

/* Merge equal (org, ip) neighbours after sorting; failing ones also by header_from. */
static void print_summary(struct summary *s, bool json)
{
    if (s->n)
        qsort(s->e, s->n, sizeof *s->e, by_source);
    unsigned long long tot = 0, spf = 0, dkim = 0, dmarc = 0;
    for (size_t i = 0; i < s->n; i++) {
        tot += s->e[i].n;
        spf += s->e[i].spf;
        dkim += s->e[i].dkim;
        dmarc += s->e[i].dmarc;
    }
    if (json)
        printf("{\"reports\": %llu, \"messages\": %llu, \"spf_pass\": %llu, \"dkim_pass\": %llu, "
               "\"dmarc_pass\": %llu, \"sources\": [", s->reports, tot, spf, dkim, dmarc);
    else
        printf("%llu reports, %llu messages: SPF aligned pass %.1f%%, DKIM aligned pass %.1f%%, DMARC pass %.1f%%\n"
               "%-24s %-39s %9s %6s %6s %6s\n", s->reports, tot, pct(spf, tot), pct(dkim, tot), pct(dmarc, tot),
               "REPORTER", "SOURCE IP", "MESSAGES", "SPF%", "DKIM%", "DMARC%");
    size_t printed = 0;
    for (size_t i = 0; i < s->n;) {
        struct entry m = s->e[i];
        size_t j = i + 1;
        for (; j < s->n && !by_source(&s->e[j], &m); j++) {
            m.n += s->e[j].n;
            m.spf += s->e[j].spf;
            m.dkim += s->e[j].dkim;
            m.dmarc += s->e[j].dmarc;
        }
        if (json) {
            printf("%s{\"reporter\": ", printed++ ? ", " : "");
            json_str(m.org);
            printf(", \"source_ip\": ");
            json_str(m.ip);
            printf(", \"messages\": %llu, \"spf_pass\": %llu, \"dkim_pass\": %llu, \"dmarc_pass\": %llu}", m.n, m.spf,
                   m.dkim, m.dmarc);
        } else {
            printf("%-24.24s %-39s %9llu %6.1f %6.1f %6.1f\n", m.org, m.ip, m.n, pct(m.spf, m.n), pct(m.dkim, m.n),
                   pct(m.dmarc, m.n));
        }
        i = j;
    }
    printf(json ? "], \"failing\": [" : "failing sources (DMARC fail):\n");
    printed = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct entry *e = &s->e[i];
        if (e->n == e->dmarc)
            continue;
        if (json) {
            printf("%s{\"reporter\": ", printed++ ? ", " : "");
            json_str(e->org);
            printf(", \"source_ip\": ");
            json_str(e->ip);
            printf(", \"header_from\": ");
            json_str(e->from);
            printf(", \"messages\": %llu}", e->n - e->dmarc);
        } else {
            printf("  %-24.24s %-39s %-30s %llu\n", e->org, e->ip, e->from, e->n - e->dmarc);
            printed++;
        }
    }
    if (json)
        printf("]}\n");
    else if (!printed)
        printf("  none\n");
}

static int cmd_summary(const struct ferry_config *cfg, int argc, char **argv)
{
    struct summary s = { .since = 0 };
    bool json = false;
    for (int i = 0; i < argc; i++) {
        unsigned long long days;
        if (!strcmp(argv[i], "--domain") && i + 1 < argc)
            s.domain = argv[++i];
        else if (!strcmp(argv[i], "--days") && i + 1 < argc && str_to_u64(argv[i + 1], 100000, &days) == 0 && days) {
            s.since = (long long)time(NULL) - (long long)days * 86400;
            i++;
        } else if (!strcmp(argv[i], "--json"))
            json = true;
        else
            return usage();
    }
    struct fdb_env *env;
    struct dmarc_rua_store *st;
    char err[512];
    if (ctl_open_env(cfg, &env) < 0)
        return 1;
    if (dmarc_rua_store_open(env, &st, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        fdb_env_close(env);
        return 1;
    }
    int rc = dmarc_rua_store_foreach(st, gather, &s) < 0 || s.full ? 1 : 0;
    if (rc)
        fprintf(stderr, "ferryctl: cannot read the received DMARC reports%s\n", s.full ? ": too many records" : "");
    else
        print_summary(&s, json);
    for (size_t i = 0; i < s.norgs; i++)
        free(s.orgs[i]);
    free(s.orgs);
    free(s.e);
    dmarc_rua_store_close(st);
    fdb_env_close(env);
    return rc;
}

/* `dmarc report [--dry-run] [--domain D]`: what the queue process does for due
   reports, now (queue/dmarc_job.h). */
static int cmd_report(const struct ferry_config *cfg, int argc, char **argv)
{
    bool dry = false;
    const char *domain = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--dry-run"))
            dry = true;
        else if (!strcmp(argv[i], "--domain") && i + 1 < argc)
            domain = argv[++i];
        else
            return usage();
    }
    if (ctl_become_daemon_user(cfg) < 0)
        return 1;
    log_set_level(LOG_LVL_INFO);        /* one line per destination, on stderr */
    int lock = dry ? -2 : dmarc_job_lock(cfg);
    if (lock == -1) {
        fprintf(stderr, "ferryctl: a report run is going on (%s/dmarc-run.lock); try again later\n", cfg->data_dir);
        return 1;
    }
    struct dmarc_job_result res;
    char err[512];
    if (dmarc_job_run(cfg, dry, domain, &res, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        if (lock >= 0)
            close(lock);
        return 1;
    }
    if (lock >= 0)
        close(lock);
    fprintf(stderr, "%u report%s due%s: %u sent, %u too big, %u failed, %u left for later\n", res.reports,
            res.reports == 1 ? "" : "s", dry ? " (dry run: nothing sent)" : "", res.sent, res.too_big, res.failed,
            res.skipped);
    return 0;
}

int ctl_dmarc(const struct ferry_config *cfg, int argc, char **argv)
{
    if (argc < 1)
        return usage();
    if (!strcmp(argv[0], "import"))
        return cmd_import(cfg, argc - 1, argv + 1);
    if (!strcmp(argv[0], "summary"))
        return cmd_summary(cfg, argc - 1, argv + 1);
    if (!strcmp(argv[0], "report"))
        return cmd_report(cfg, argc - 1, argv + 1);
    return usage();
}

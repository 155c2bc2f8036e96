/* tlsrpt_job — see tlsrpt_job.h. */
#include "queue/tlsrpt_job.h"
#include "lib/privsep.h"
#include "delivery/tls_txt.h"
#include "delivery/tlsrpt_report.h"
#include "delivery/tlsrpt_store.h"
#include "lib/buf.h"
#include "lib/db.h"
#include "lib/dns.h"
#include "lib/gzip.h"
#include "lib/https_fetch.h"
#include "lib/log.h"
#include "lib/mail_date.h"
#include "lib/mime.h"
#include "queue/maildrop.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NFIELDS 9                       /* "C1", day, domain, ptype, result, mx, ip[, sip, reason] */
#define NFIELDS_OLD 7                   /* a success, or a failure counted before sip and reason */
#define POLICY_STRINGS_MAX 64

struct row {
    char *key;                          /* the stored key, split in place into f[] */
    size_t klen;
    char *f[NFIELDS];
    long long day;
    unsigned long long count;
};

struct rows {
    struct row *v;
    size_t n, cap;
    long long today;
    bool full;
};

static int collect(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    struct rows *rs = arg;
    if (rs->n >= TLSRPT_JOB_MAX_ROWS) {
        rs->full = true;
        return 1;
    }
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? 2 * rs->cap : 64;
        struct row *v = realloc(rs->v, cap * sizeof *v);
        if (!v)
            return -1;
        rs->v = v;
        rs->cap = cap;
    }
    struct row *r = &rs->v[rs->n];
    memset(r, 0, sizeof *r);
    r->key = malloc(2 * klen + 2);      /* the key, then a copy split into fields */
    if (!r->key)
        return -1;
    memcpy(r->key, key, klen);
    r->key[klen] = '\0';
    r->klen = klen;
    char *copy = r->key + klen + 1;
    memcpy(copy, key, klen);
    copy[klen] = '\0';
    size_t nf = 0;
    for (char *p = copy, *t; nf < NFIELDS; p = t + 1) {
        r->f[nf++] = p;
        if (!(t = strchr(p, '\t')))
            break;
        *t = '\0';
    }
    char num[24] = "";
    if (vlen < sizeof num)
        memcpy(num, val, vlen);
    r->count = strtoull(num, NULL, 10);
    bool whole = nf == NFIELDS || nf == NFIELDS_OLD;
    for (; nf < NFIELDS; nf++)
        r->f[nf] = copy + klen;         /* "": not known */
    r->day = whole ? strtoll(r->f[1], NULL, 10) : -1;
    if (!whole || r->day >= rs->today) {
        free(r->key);           /* today's (still counting) or not ours */
        return 0;
    }
    rs->n++;
    return 0;
}

static void rows_free(struct rows *rs)
{
    for (size_t i = 0; i < rs->n; i++)
        free(rs->v[i].key);
    free(rs->v);
}

static const char *const PTYPES[] = {"sts", "tlsa", "no-policy-found"};

/* Mark the domain-day sent and drop its counters and policy strings: one
   durable transaction, before anything is sent (at most once). */
static int settle(struct fdb_env *env, struct fdb *db, struct row *g, size_t n, char *err, size_t errlen)
{
    char key[TLSRPT_KEY_MAX];
    struct fdb_txn *txn;
    if (fdb_txn_begin(env, &txn) < 0)
        goto fail;
    int k = snprintf(key, sizeof key, "X1\t%lld\t%s", g->day, g->f[2]);
    if (fdb_put(db, txn, key, (size_t)k, "1", 1) < 0)
        goto abort;
    for (size_t i = 0; i < n; i++)
        if (fdb_del(db, txn, g[i].key, g[i].klen) < 0)
            goto abort;
    for (size_t i = 0; i < 3; i++) {
        k = snprintf(key, sizeof key, "S1\t%lld\t%s\t%s", g->day, g->f[2], PTYPES[i]);
        if (fdb_del(db, txn, key, (size_t)k) < 0)
            goto abort;
    }
    if (fdb_txn_commit(txn) == 0)
        return 0;
    goto fail;
abort:
    fdb_txn_abort(txn);
fail:
    snprintf(err, errlen, "cannot settle %s day %lld: %s", g->f[2], g->day, fdb_last_error(env));
    return -1;
}

static bool was_sent(struct fdb *db, const struct row *g)
{
    char key[TLSRPT_KEY_MAX];
    int k = snprintf(key, sizeof key, "X1\t%lld\t%s", g->day, g->f[2]);
    void *val;
    size_t vlen;
    if (fdb_get(db, NULL, key, (size_t)k, &val, &vlen) != 0)
        return false;
    free(val);
    return true;
}

/* The "_smtp._tls" record of domain: 0 found, 1 none (settle without a report),
   -1 not known now (DNS failed: try again next run). */
static int lookup_rua(const struct ferry_config *cfg, const char *domain, struct tlsrpt_record *rec)
{
    struct dns_config dns;
    settings_dns_config(cfg, &dns);
    char name[DNS_NAME_MAX + 16];
    snprintf(name, sizeof name, "_smtp._tls.%s", domain);
    struct dns_answer ans;
    memset(&ans, 0, sizeof ans);
    int rc = 1;
    if (dns_lookup_sync(&dns, name, DNS_T_TXT, &ans) < 0 || ans.status == DNS_SERVFAIL ||
        ans.status == DNS_TIMEOUT) {
        rc = -1;
    } else if (ans.status == DNS_OK) {
        const char *recs[16];
        size_t lens[16], n = 0;
        for (size_t i = 0; i < ans.count && n < 16; i++)
            if (ans.records[i].type == DNS_T_TXT) {
                recs[n] = (const char *)ans.records[i].data;
                lens[n++] = ans.records[i].len;
            }
        int k = tls_txt_select(recs, lens, n, "v=TLSRPTv1");
        char err[200];
        if (k >= 0 && tlsrpt_txt_parse(recs[k], lens[k], rec, err, sizeof err) == 0)
            rc = 0;
        else if (k >= 0)
            log_info("tls-rpt: %s: %s", name, err);
    }
    dns_answer_free(&ans);
    return rc;
}

/* The JSON of one domain-day (rows g[0..n)), gzip'ed into gz. */
static int build(const struct ferry_config *cfg, struct fdb *db, struct row *g, size_t n, const char *report_id,
                 const char *contact, struct buf *gz, char *err, size_t errlen)
{
    struct tlsrpt_policy pol[3];
    struct tlsrpt_failure *fail = calloc(n, sizeof *fail);
    char *strbuf[3] = {NULL, NULL, NULL};
    const char *strs[3][POLICY_STRINGS_MAX], *mx[3][POLICY_STRINGS_MAX];
    size_t npol = 0, nfail = 0;
    int rc = -1;
    if (!fail) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t t = 0; t < 3; t++) {
        struct tlsrpt_policy *p = &pol[npol];
        memset(p, 0, sizeof *p);
        p->type = PTYPES[t];
        p->domain = g->f[2];
        p->fail = fail + nfail;
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(g[i].f[3], PTYPES[t]))
                continue;
            any = true;
            if (!strcmp(g[i].f[4], "ok")) {
                p->ok += g[i].count;
                continue;
            }
            struct tlsrpt_failure *f = &fail[nfail++];
            f->result_type = g[i].f[4];
            f->receiving_mx = g[i].f[5];
            f->receiving_ip = g[i].f[6];
            /* the address the session left from; the configured source for
               counts from before it was kept */
            f->sending_ip = g[i].f[7][0] ? g[i].f[7]
                                         : strchr(g[i].f[6], ':') ? cfg->smtp_source_ipv6 : cfg->smtp_source_ipv4;
            f->reason_code = g[i].f[8][0] ? g[i].f[8] : NULL;
            f->count = g[i].count;
            p->failed += g[i].count;
            p->n_fail++;
        }
        if (!any)
            continue;
        char key[TLSRPT_KEY_MAX];
        int k = snprintf(key, sizeof key, "S1\t%lld\t%s\t%s", g->day, g->f[2], PTYPES[t]);
        void *val;
        size_t vlen;
        if (fdb_get(db, NULL, key, (size_t)k, &val, &vlen) == 0) {
            strbuf[t] = realloc(val, vlen + 1);
            if (!strbuf[t]) {
                free(val);
            } else {
                strbuf[t][vlen] = '\0';
                for (char *s = strbuf[t], *e; s && p->n_strings < POLICY_STRINGS_MAX; s = e ? e + 1 : NULL) {
                    if ((e = strchr(s, '\n')))
                        *e = '\0';
                    strs[t][p->n_strings++] = s;
                    if (!strncmp(s, "mx: ", 4))         /* §4.4 mx-host: the policy's patterns */
                        mx[t][p->n_mx++] = s + 4;
                }
                p->strings = strs[t];
                p->mx = mx[t];
            }
        }
        npol++;
    }
    struct tlsrpt_report r = {
        .organization = cfg->dmarc_report_org_name[0] ? cfg->dmarc_report_org_name : cfg->hostname,
        .start = g->day * 86400,
        .end = (g->day + 1) * 86400,
        .contact = contact,
        .report_id = report_id,
        .policies = pol,
        .n_policies = npol,
    };
    struct buf json;
    buf_init(&json, TLSRPT_JSON_MAX + 1);
    if (tlsrpt_report_json(&r, &json, err, errlen) == 0) {
        if (gzip_compress(json.data, json.len, TLSRPT_JSON_MAX, gz) == 0)
            rc = 0;
        else
            snprintf(err, errlen, "gzip failed");
    }
    buf_free(&json);
    for (size_t t = 0; t < 3; t++)
        free(strbuf[t]);
    free(fail);
    return rc;
}

/* RFC 8460 §5.3: multipart/report (report-type="tlsrpt") with the gzip'ed JSON. */
static int mail(const struct ferry_config *cfg, const struct row *g, const char *report_id, const char *contact,
                const struct buf *gz, const char *to, struct buf *out)
{
    char subject[1024], fname[1024], date[64];
    char uniq[64];
    snprintf(uniq, sizeof uniq, "%lld", g->day);
    if (tlsrpt_report_subject(g->f[2], cfg->hostname, report_id, subject, sizeof subject) < 0 ||
        tlsrpt_report_filename(cfg->hostname, g->f[2], g->day * 86400, (g->day + 1) * 86400, uniq, fname,
                               sizeof fname) < 0)
        return -1;
    mail_date(time(NULL), date, sizeof date);
    const char *b = "tlsrpt-boundary-e3b0c442";
    if (buf_printf(out,
                   "From: <%s>\r\nTo: <%s>\r\nDate: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n"
                   "TLS-Report-Domain: %s\r\nTLS-Report-Submitter: %s\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"%s\"\r\n\r\n"
                   "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                   "This is an aggregate TLS report (RFC 8460) from %s for %s.\r\n\r\n"
                   "--%s\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n"
                   "Content-Disposition: attachment;\r\n\tfilename=\"%s\"\r\n\r\n",
                   contact, to, date, subject, report_id, g->f[2], cfg->hostname, b, b, cfg->hostname, g->f[2],
                   b, fname) < 0 ||
        mime_put_base64(out, gz->data, gz->len) < 0 || buf_printf(out, "\r\n--%s--\r\n", b) < 0)
        return -1;
    return 0;
}

static int submit(const struct ferry_config *cfg, const char *from, const char *to, const struct buf *msg)
{
    struct buf drop;
    char err[300];
    buf_init(&drop, msg->len + 4096);
    char *rcpt = (char *)to;
    int rc = -1;
    if (maildrop_check_message(msg->data, msg->len, cfg->message_size_limit, err, sizeof err) == 0 &&
        maildrop_write_envelope(&drop, from, &rcpt, 1, err, sizeof err) == 0 &&
        buf_append(&drop, msg->data, msg->len) == 0)
        rc = maildrop_submit(cfg->spool_dir, drop.data, drop.len, err, sizeof err);
    if (rc < 0)
        log_error("tls-rpt: report to %s could not be submitted: %s", to, err);
    buf_free(&drop);
    return rc;
}

struct post {
    struct event_base *base;
    int ok;
    char why[300];
};

static void posted(void *arg, const struct https_result *r)
{
    struct post *p = arg;
    p->ok = r->status == HTTPS_OK;
    snprintf(p->why, sizeof p->why, "%s %ld %s", https_status_name(r->status), r->http_code, r->error);
    event_base_loopbreak(p->base);
}

/* One POST on a loop of our own (the run's child may block). */
static int post(const struct ferry_config *cfg, const char *url, const struct buf *gz)
{
    struct post p = {event_base_new(), 0, "cannot start"};
    struct https_fetcher *f = p.base ? https_fetcher_new(p.base) : NULL;
    struct https_request req = {
        .url = url,
        .ca_file = cfg->smtp_tls_ca_file[0] ? cfg->smtp_tls_ca_file : NULL,
        .max_body = 64 * 1024,
        .timeout_ms = TLSRPT_HTTPS_TIMEOUT_MS,
        .post = gz->data,
        .post_len = gz->len,
        .post_type = "application/tlsrpt+gzip",
    };
    if (f && https_fetch_start(f, &req, posted, &p) == 0)
        event_base_dispatch(p.base);
    if (!p.ok)
        log_warn("tls-rpt: POST to %s failed: %s", url, p.why);
    https_fetcher_free(f);
    if (p.base)
        event_base_free(p.base);
    return p.ok ? 0 : -1;
}

/* One domain-day. */
static void report(const struct ferry_config *cfg, struct fdb_env *env, struct fdb *db, struct row *g, size_t n,
                   struct tlsrpt_job_result *res)
{
    const char *domain = g->f[2];
    char err[512];
    if (was_sent(db, g) || !settings_tlsrpt_domain(cfg, domain)) {
        if (settle(env, db, g, n, err, sizeof err) < 0)     /* late counts, or excluded since */
            log_error("tls-rpt: %s", err);
        return;
    }
    struct tlsrpt_record rec;
    int found = lookup_rua(cfg, domain, &rec);
    if (found < 0) {
        res->pending++;
        log_info("tls-rpt: %s: the _smtp._tls lookup failed; trying again later", domain);
        return;
    }
    if (found == 1) {
        log_info("tls-rpt: %s: no usable _smtp._tls record; day %lld not reported", domain, g->day);
        if (settle(env, db, g, n, err, sizeof err) < 0)
            log_error("tls-rpt: %s", err);
        return;
    }
    char contact[320], report_id[600];
    if (cfg->dmarc_report_email[0])
        snprintf(contact, sizeof contact, "%s", cfg->dmarc_report_email);
    else
        snprintf(contact, sizeof contact, "postmaster@%s", cfg->hostname);
    snprintf(report_id, sizeof report_id, "%lld.%s@%s", g->day, domain, cfg->hostname);
    struct buf gz;
    buf_init(&gz, TLSRPT_JSON_MAX);
    res->reports++;
    if (build(cfg, db, g, n, report_id, contact, &gz, err, sizeof err) < 0) {
        log_error("tls-rpt: %s day %lld: %s", domain, g->day, err);
        res->failed++;
        buf_free(&gz);
        return;             /* kept: a later version may build it */
    }
    if (settle(env, db, g, n, err, sizeof err) < 0) {
        log_error("tls-rpt: %s", err);
        res->failed++;
        buf_free(&gz);
        return;
    }
    for (unsigned i = 0; i < rec.n; i++) {
        const char *to = rec.rua[i].uri;
        int rc;
        if (rec.rua[i].scheme == TLSRPT_HTTPS) {
            rc = post(cfg, to, &gz);
            rc == 0 ? res->posted++ : res->failed++;
        } else {
            struct buf msg;
            buf_init(&msg, 2 * TLSRPT_JSON_MAX);
            rc = mail(cfg, g, report_id, contact, &gz, to, &msg) < 0 ? -1 : submit(cfg, contact, to, &msg);
            rc == 0 ? res->mailed++ : res->failed++;
            buf_free(&msg);
        }
        log_info("tls-rpt: report %s day %lld to %s: %s", domain, g->day, to, rc == 0 ? "sent" : "failed");
    }
    buf_free(&gz);
}

/* Markers older than TLSRPT_KEEP_DAYS are no longer needed. */
static int old_marker(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    long long limit = *(const long long *)arg;
    return klen > 3 && !memcmp(key, "X1\t", 3) && strtoll((const char *)key + 3, NULL, 10) < limit;
}

int tlsrpt_job_run(const struct ferry_config *cfg, long long now, struct tlsrpt_job_result *res, char *err,
                   size_t errlen)
{
    memset(res, 0, sizeof *res);
    struct fdb_env *env;
    struct fdb *db;
    char qdir[PATH_MAX];
    if (fdb_env_open(privsep_queue_data_dir(cfg, qdir, sizeof qdir), &env, err, errlen) < 0)
        return -1;
    if (fdb_open(env, TLSRPT_STORE_DB, &db, err, errlen) < 0) {
        fdb_env_close(env);
        return -1;
    }
    struct rows rs = {.today = now / 86400};
    int rc = fdb_foreach_prefix(db, NULL, "C1\t", 3, collect, &rs);
    if (rc < 0)
        snprintf(err, errlen, "cannot read %s: %s", TLSRPT_STORE_DB, fdb_last_error(env));
    /* Key order keeps a domain-day's rows together. */
    for (size_t i = 0, j; rc >= 0 && i < rs.n; i = j) {
        for (j = i + 1; j < rs.n && rs.v[j].day == rs.v[i].day && !strcmp(rs.v[j].f[2], rs.v[i].f[2]); j++)
            ;
        if (rs.v[i].day < rs.today - TLSRPT_KEEP_DAYS) {
            char e2[300];
            if (settle(env, db, &rs.v[i], j - i, e2, sizeof e2) < 0)
                log_error("tls-rpt: %s", e2);
            continue;
        }
        report(cfg, env, db, &rs.v[i], j - i, res);
    }
    long long limit = rs.today - 2 * TLSRPT_KEEP_DAYS;
    size_t deleted;
    if (rc >= 0)
        fdb_sweep(db, old_marker, &limit, 10000, &deleted);
    rows_free(&rs);
    fdb_close(db);
    fdb_env_close(env);
    return rc < 0 ? -1 : 0;
}

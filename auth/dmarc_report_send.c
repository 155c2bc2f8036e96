/* dmarc_report_send — dmarc_report_send_due of dmarc_report_mail.h: the order of
   freeze, claim, submit and mark that keeps every report at most once per
   destination (dmarc_agg.h explains why each crash point is safe). */
#include "auth/dmarc_report_mail.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void say(void (*log)(void *, const char *), void *arg, const char *fmt, const char *domain, long long begin,
                const char *to, const char *what)
{
    if (!log)
        return;
    char line[1024];
    snprintf(line, sizeof line, fmt, domain, begin, to, what);
    log(arg, line);
}

/* A destination that will not be sent to is still claimed first, so its final
   state is recorded by the same two steps as a sent one. */
static int settle(struct dmarc_agg *a, const struct dmarc_agg_report *r, size_t i, enum dmarc_dest_state st)
{
    int c = dmarc_agg_claim(a, r->domain, r->begin, i);
    if (c != 0)
        return c;
    return dmarc_agg_mark(a, r->domain, r->begin, i, st);
}

static int send_one(struct dmarc_agg *a, const struct dmarc_report_sender *s, dmarc_submit_fn submit, void *arg,
                    void (*log)(void *, const char *), const struct dmarc_agg_report *r, const struct buf *gz,
                    struct dmarc_send_stats *st)
{
    const char *fmt = "dmarc report domain=%s begin=%lld to=%s: %s";
    for (size_t i = 0; i < r->policy.nrua; i++) {
        if (r->dest[i] != DMARC_DEST_PENDING)
            continue;
        if (s->deadline && time(NULL) > s->deadline) {
            say(log, arg, fmt, r->domain, r->begin, r->policy.rua[i], "left for the next run (time is up)");
            st->skipped++;
            continue;
        }
        struct dmarc_rua dest;
        const char *why;
        char err[256];
        if (dmarc_rua_parse(r->policy.rua[i], &dest, &why) < 0) {
            say(log, arg, fmt, r->domain, r->begin, r->policy.rua[i], why);
            st->failed++;
            if (submit && settle(a, r, i, DMARC_DEST_FAILED) < 0)
                return -1;
            continue;
        }
        if (s->authorize) {
            char why2[256] = "";
            int ok = s->authorize(s->authorize_arg, r->domain, dest.addr, why2, sizeof why2);
            if (ok <= 0) {
                char what[320];
                snprintf(what, sizeof what, "%s: %s", ok == 0 ? "not sent" : "not sent now, tried again later",
                         why2[0] ? why2 : "unverified destination");
                say(log, arg, fmt, r->domain, r->begin, dest.addr, what);
                if (ok == 0) {
                    st->failed++;
                    if (submit && settle(a, r, i, DMARC_DEST_FAILED) < 0)
                        return -1;
                } else {
                    st->skipped++;
                }
                continue;
            }
        }
        struct buf msg;
        buf_init(&msg, DMARC_REPORT_MAIL_MAX);
        if (dmarc_report_mail(s, r, gz->data, gz->len, dest.addr, &msg, err, sizeof err) < 0 ||
            (dest.max_size && msg.len > dest.max_size)) {
            char what[160];
            snprintf(what, sizeof what, "not sent: the report message (%zu octets) is over the URI's limit of %llu",
                     msg.len, dest.max_size);
            say(log, arg, fmt, r->domain, r->begin, dest.addr, msg.len ? what : err);
            buf_free(&msg);
            st->too_big++;
            if (submit && settle(a, r, i, DMARC_DEST_TOO_BIG) < 0)
                return -1;
            continue;
        }
        if (!submit) {
            say(log, arg, fmt, r->domain, r->begin, dest.addr, "would be sent (dry run)");
            buf_free(&msg);
            st->skipped++;
            continue;
        }
        /* (1) claim, (2) submit, (3) mark: a crash after (1) never sends twice */
        int c = dmarc_agg_claim(a, r->domain, r->begin, i);
        if (c != 0) {
            buf_free(&msg);
            if (c < 0)
                return -1;
            continue;       /* another sender has it */
        }
        int ok = submit(arg, s->from, dest.addr, msg.data, msg.len);
        buf_free(&msg);
        say(log, arg, fmt, r->domain, r->begin, dest.addr, ok == 0 ? "queued" : "could not be queued");
        *(ok == 0 ? &st->sent : &st->failed) += 1;
        if (dmarc_agg_mark(a, r->domain, r->begin, i, ok == 0 ? DMARC_DEST_SENT : DMARC_DEST_FAILED) < 0)
            return -1;
    }
    return 0;
}

int dmarc_report_send_due(struct dmarc_agg *a, const struct dmarc_report_sender *s, dmarc_submit_fn submit,
                          void *arg, void (*log)(void *arg, const char *line), struct buf *dry_out,
                          struct dmarc_send_stats *st)
{
    memset(st, 0, sizeof *st);
    struct dmarc_agg_period_id *due;
    size_t n;
    if (dmarc_agg_due(a, s->now, &due, &n) < 0)
        return -1;
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        struct dmarc_agg_report r;
        if (s->only_domain && !str_ieq(s->only_domain, due[k].domain))
            continue;
        int got = submit ? dmarc_agg_freeze(a, due[k].domain, due[k].begin, s->now, &r)
                         : dmarc_agg_load(a, due[k].domain, due[k].begin, &r);
        if (got < 0)
            rc = -1;
        if (got != 0)
            continue;
        if (!r.report_id[0])
            str_copy(r.report_id, "dryrun", sizeof r.report_id);
        struct buf xml, gz;
        buf_init(&xml, 256u << 20);
        buf_init(&gz, DMARC_REPORT_MAIL_MAX);
        if (r.state != DMARC_PERIOD_DONE && r.nrows > 0) {
            st->reports++;
            if (dmarc_report_xml(&r, &s->meta, &xml) < 0 || dmarc_report_gzip(xml.data, xml.len, &gz) < 0) {
                say(log, arg, "dmarc report domain=%s begin=%lld%s: %s", r.domain, r.begin, "",
                    "the report is too large to build");
                for (size_t i = 0; submit && i < r.policy.nrua && rc == 0; i++)
                    if (r.dest[i] == DMARC_DEST_PENDING && settle(a, &r, i, DMARC_DEST_TOO_BIG) < 0)
                        rc = -1;
            } else {
                if (dry_out)
                    buf_append(dry_out, xml.data, xml.len);
                rc = send_one(a, s, submit, arg, log, &r, &gz, st);
            }
        }
        buf_free(&xml);
        buf_free(&gz);
        dmarc_agg_report_free(&r);
    }
    free(due);
    return rc;
}

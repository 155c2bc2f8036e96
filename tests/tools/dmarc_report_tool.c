/*
 * dmarc_report_tool — drives auth/dmarc_agg + dmarc_report_xml + dmarc_report_mail
 * from a text description, for golden files and the integration tests.
 *
 *   dmarc_report_tool DBDIR xml|mail|send < SPEC
 *
 * SPEC: "key value" lines; a "[policy DOMAIN]" line starts the policy used by the
 * messages after it, a "[message]" line starts one evaluated message (added
 * "repeat" times, at time "at"). Top keys: receiver, org_name, email, generator,
 * now, interval, rid (replaces the random report ID, for golden files).
 *   xml:  add, freeze what is due at now, print each report's XML
 *   mail: the same, print each report's message to its first rua destination
 *   send: add, then dmarc_report_send_due with a submit that writes
 *         DBDIR/sent-N.eml; prints the log lines and the counts
 */
#include "auth/dmarc_report_mail.h"
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char receiver[256] = "mx.ferry.test", org[256] = "Ferry Test", email[320] = "dmarc-noreply@ferry.test";
static char generator[64] = "Ferry", rid[64], domain[256];
static long long now_t, at_t;
static unsigned interval = 86400, repeat = 1;
static struct dmarc_agg_policy pol;
static struct dmarc_agg_row row;
static bool in_message;

static void die(const char *m, const char *x)
{
    fprintf(stderr, "dmarc_report_tool: %s%s\n", m, x);
    exit(2);
}

#define SET(name, f) else if (!strcmp(k, name)) snprintf(f, sizeof f, "%s", v)

static void set_policy(const char *k, const char *v)
{
    if (!strcmp(k, "rua")) {
        if (pol.nrua < DMARC_AGG_MAX_RUA)
            snprintf(pol.rua[pol.nrua++], DMARC_AGG_URI_MAX, "%s", v);
    }
    SET("p", pol.p); SET("sp", pol.sp); SET("np", pol.np); SET("adkim", pol.adkim); SET("aspf", pol.aspf); SET("testing", pol.testing); SET("psd", pol.psd);
    SET("discovery", pol.discovery); SET("fo", pol.fo);
    else die("unknown policy key ", k);
}

static void set_message(const char *k, const char *v)
{
    if (!strcmp(k, "at"))
        at_t = atoll(v);
    else if (!strcmp(k, "repeat"))
        repeat = (unsigned)atoi(v);
    else if (!strcmp(k, "dkim")) {     /* domain selector result */
        if (row.ndkim < DMARC_AGG_MAX_DKIM) {
            struct dmarc_agg_dkim *d = &row.dkim[row.ndkim++];
            if (sscanf(v, "%255s %255s %11s", d->domain, d->selector, d->result) != 3)
                die("bad dkim line: ", v);
        }
    } else if (!strcmp(k, "spf")) {    /* domain scope result */
        if (sscanf(v, "%255s %7s %11s", row.spf_domain, row.spf_scope, row.spf_result) != 3)
            die("bad spf line: ", v);
        if (!strcmp(row.spf_scope, "-"))
            row.spf_scope[0] = '\0';
    }
    SET("source_ip", row.source_ip); SET("disposition", row.disposition); SET("dkim_aligned", row.dkim_aligned); SET("spf_aligned", row.spf_aligned); SET("reason", row.reason);
    SET("reason_comment", row.reason_comment); SET("header_from", row.header_from); SET("envelope_from", row.envelope_from); SET("envelope_to", row.envelope_to);
    else die("unknown message key ", k);
}

static void flush_message(struct dmarc_agg *a)
{
    if (!in_message)
        return;
    for (unsigned i = 0; i < repeat; i++)
        if (dmarc_agg_add(a, domain, &pol, &row, (time_t)at_t, interval) < 0)
            die("add: ", dmarc_agg_error(a));
    memset(&row, 0, sizeof row);
    repeat = 1;
    in_message = false;
}

static int submit(void *arg, const char *from, const char *to, const char *msg, size_t len)
{
    static int n;
    char path[4200];
    snprintf(path, sizeof path, "%s/sent-%d.eml", (const char *)arg, ++n);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fwrite(msg, 1, len, f);
    return fclose(f) == 0 ? 0 : -1;
}

static void logline(void *arg, const char *line)
{
    printf("%s\n", line);
}

int main(int argc, char **argv)
{
    if (argc != 3)
        die("usage: dmarc_report_tool DBDIR xml|mail|send < SPEC", "");
    char err[512];
    struct fdb_env *env;
    struct dmarc_agg *a;
    if (fdb_env_open(argv[1], &env, err, sizeof err) < 0 || dmarc_agg_open(env, &a, err, sizeof err) < 0)
        die(err, "");
    char line[2048];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        if (!strncmp(line, "[policy ", 8)) {
            flush_message(a);
            memset(&pol, 0, sizeof pol);
            snprintf(domain, sizeof domain, "%.*s", (int)strcspn(line + 8, "]"), line + 8);
            continue;
        }
        if (!strcmp(line, "[message]")) {
            flush_message(a);
            in_message = true;
            at_t = now_t - interval;
            continue;
        }
        char *sp = strchr(line, ' ');
        const char *k = line, *v = sp ? sp + 1 : "";
        if (sp)
            *sp = '\0';
        if (in_message)
            set_message(k, v);
        else if (domain[0])
            set_policy(k, v);
        else if (!strcmp(k, "now"))
            now_t = atoll(v);
        else if (!strcmp(k, "interval"))
            interval = (unsigned)atoi(v);
        SET("receiver", receiver); SET("org", org); SET("email", email); SET("generator", generator); SET("rid", rid);
        else die("unknown key ", k);
    }
    flush_message(a);

    struct dmarc_report_sender s = {
        .receiver = receiver, .from = email, .now = (time_t)now_t,
        .meta = { .org_name = org, .email = email, .generator = generator },
    };
    if (!strcmp(argv[2], "send")) {
        struct dmarc_send_stats st;
        if (dmarc_report_send_due(a, &s, submit, argv[1], logline, NULL, &st) < 0)
            die("send: ", dmarc_agg_error(a));
        printf("reports=%u sent=%u too_big=%u failed=%u\n", st.reports, st.sent, st.too_big, st.failed);
    } else {
        struct dmarc_agg_period_id *due;
        size_t n;
        if (dmarc_agg_due(a, s.now, &due, &n) < 0)
            die("due: ", dmarc_agg_error(a));
        for (size_t i = 0; i < n; i++) {
            struct dmarc_agg_report r;
            if (dmarc_agg_freeze(a, due[i].domain, due[i].begin, s.now, &r) != 0)
                die("freeze: ", dmarc_agg_error(a));
            if (rid[0])
                snprintf(r.report_id, sizeof r.report_id, "%s", rid);
            struct buf xml, gz, msg;
            buf_init(&xml, 64u << 20);
            buf_init(&gz, 64u << 20);
            buf_init(&msg, 64u << 20);
            if (dmarc_report_xml(&r, &s.meta, &xml) < 0)
                die("xml: cannot build", "");
            if (!strcmp(argv[2], "xml")) {
                fwrite(xml.data, 1, xml.len, stdout);
            } else {
                struct dmarc_rua dest;
                const char *why;
                if (dmarc_report_gzip(xml.data, xml.len, &gz) < 0 ||
                    dmarc_rua_parse(r.policy.rua[0], &dest, &why) < 0 ||
                    dmarc_report_mail(&s, &r, gz.data, gz.len, dest.addr, &msg, err, sizeof err) < 0)
                    die("mail: cannot build", "");
                fwrite(msg.data, 1, msg.len, stdout);
            }
            buf_free(&xml);
            buf_free(&gz);
            buf_free(&msg);
            dmarc_agg_report_free(&r);
        }
        free(due);
    }
    dmarc_agg_close(a);
    fdb_env_close(env);
    return 0;
}

/*
 * tlsrpt_json — write an RFC 8460 report with delivery/tlsrpt_report.h from a
 * line-oriented description on stdin, for the integration tests (schema check):
 *   report ORG START END CONTACT REPORT-ID
 *   policy TYPE DOMAIN OK FAILED [MX,MX]        (then its policy-string lines:)
 *   string TEXT...
 *   fail RESULT-TYPE SENDING-IP MX-HOST RECEIVING-IP COUNT [REASON]
 * With --gzip the JSON is written gzip'd (lib/gzip.h). Exit 1 when refused.
 */
#include "delivery/tlsrpt_report.h"
#include "lib/gzip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXP 8
#define MAXF 32
#define MAXS 64

static char *dup_str(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        exit(1);
    return d;
}

int main(int argc, char **argv)
{
    static struct tlsrpt_policy pol[MAXP];
    static struct tlsrpt_failure fail[MAXP][MAXF];
    static const char *strs[MAXP][MAXS], *mx[MAXP][MAXS];
    static struct tlsrpt_report r;  /* static: what it points to stays reachable */
    r.policies = pol;
    char line[2048];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL, *kw = strtok_r(line, " ", &save);
        if (!kw)
            continue;
        struct tlsrpt_policy *p = r.n_policies ? &pol[r.n_policies - 1] : NULL;
        if (!strcmp(kw, "report")) {
            r.organization = dup_str(strtok_r(NULL, " ", &save));
            r.start = strtoll(strtok_r(NULL, " ", &save), NULL, 10);
            r.end = strtoll(strtok_r(NULL, " ", &save), NULL, 10);
            r.contact = dup_str(strtok_r(NULL, " ", &save));
            r.report_id = dup_str(strtok_r(NULL, " ", &save));
        } else if (!strcmp(kw, "policy") && r.n_policies < MAXP) {
            size_t i = r.n_policies++;
            pol[i].type = dup_str(strtok_r(NULL, " ", &save));
            pol[i].domain = dup_str(strtok_r(NULL, " ", &save));
            pol[i].ok = strtoull(strtok_r(NULL, " ", &save), NULL, 10);
            pol[i].failed = strtoull(strtok_r(NULL, " ", &save), NULL, 10);
            pol[i].strings = strs[i];
            pol[i].mx = mx[i];
            pol[i].fail = fail[i];
            char *m = strtok_r(NULL, " ", &save), *ms = NULL;
            for (char *x = m ? strtok_r(m, ",", &ms) : NULL; x && pol[i].n_mx < MAXS; x = strtok_r(NULL, ",", &ms))
                mx[i][pol[i].n_mx++] = dup_str(x);
        } else if (!strcmp(kw, "string") && p && p->n_strings < MAXS) {
            strs[p - pol][p->n_strings++] = dup_str(save);
        } else if (!strcmp(kw, "fail") && p && p->n_fail < MAXF) {
            struct tlsrpt_failure *f = &fail[p - pol][p->n_fail++];
            f->result_type = dup_str(strtok_r(NULL, " ", &save));
            f->sending_ip = dup_str(strtok_r(NULL, " ", &save));
            f->receiving_mx = dup_str(strtok_r(NULL, " ", &save));
            f->receiving_ip = dup_str(strtok_r(NULL, " ", &save));
            if (f->receiving_mx && !strcmp(f->receiving_mx, "-")) {    /* "-": none (an empty field) */
                free((char *)f->receiving_mx);
                f->receiving_mx = "";
            }
            if (f->receiving_ip && !strcmp(f->receiving_ip, "-")) {
                free((char *)f->receiving_ip);
                f->receiving_ip = "";
            }
            f->count = strtoull(strtok_r(NULL, " ", &save), NULL, 10);
            char *reason = strtok_r(NULL, "", &save);
            f->reason_code = reason ? dup_str(reason) : NULL;
        } else {
            fprintf(stderr, "bad line: %s\n", kw);
            return 2;
        }
    }
    struct buf json, gz;
    buf_init(&json, TLSRPT_JSON_MAX + 1);
    buf_init(&gz, TLSRPT_JSON_MAX + 1);
    char err[256];
    if (tlsrpt_report_json(&r, &json, err, sizeof err) < 0) {
        fprintf(stderr, "refused: %s\n", err);
        buf_free(&json);
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "--gzip")) {
        if (gzip_compress(json.data, json.len, TLSRPT_JSON_MAX, &gz) < 0)
            return 1;
        fwrite(gz.data, 1, gz.len, stdout);
    } else {
        fwrite(json.data, 1, json.len, stdout);
    }
    buf_free(&json);
    buf_free(&gz);
    return 0;
}

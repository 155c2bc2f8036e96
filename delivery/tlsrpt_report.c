/* tlsrpt_report — the RFC 8460 JSON report; see tlsrpt_report.h. */
#include "delivery/tlsrpt_report.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const result_types[] = {
    "starttls-not-supported", "certificate-host-mismatch", "certificate-expired", "certificate-not-trusted",
    "validation-failure", "tlsa-invalid", "dnssec-invalid", "dane-required", "sts-policy-fetch-error",
    "sts-policy-invalid", "sts-webpki-invalid",
};

bool tlsrpt_result_type_ok(const char *s)
{
    for (size_t i = 0; i < sizeof result_types / sizeof result_types[0]; i++)
        if (s && strcmp(s, result_types[i]) == 0)
            return true;
    return false;
}

/* Add key: string to obj; a NULL value is skipped when optional, refused when
   not. 0 ok, -1 missing or out of memory. */
static int add_str(json_object *obj, const char *key, const char *val, bool optional)
{
    if (!val)
        return optional ? 0 : -1;
    json_object *s = json_object_new_string(val);
    if (!s)
        return -1;
    if (json_object_object_add(obj, key, s) != 0) {
        json_object_put(s);
        return -1;
    }
    return 0;
}

static int add_obj(json_object *obj, const char *key, json_object *val)
{
    if (!val)
        return -1;
    if (json_object_object_add(obj, key, val) != 0) {
        json_object_put(val);
        return -1;
    }
    return 0;
}

static int add_count(json_object *obj, const char *key, unsigned long long n)
{
    if (n > (unsigned long long)INT64_MAX)
        return -1;
    return add_obj(obj, key, json_object_new_int64((int64_t)n));
}

static json_object *str_array(const char *const *v, size_t n)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; a && i < n; i++) {
        json_object *s = v[i] ? json_object_new_string(v[i]) : NULL;
        if (!s || json_object_array_add(a, s) != 0) {
            json_object_put(s);
            json_object_put(a);
            return NULL;
        }
    }
    return a;
}

static int add_time(json_object *obj, const char *key, long long t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    char s[32];
    if (!gmtime_r(&tt, &tm) || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return -1;
    return add_str(obj, key, s, false);
}

static json_object *failure_obj(const struct tlsrpt_failure *f, char *err, size_t errlen)
{
    if (!tlsrpt_result_type_ok(f->result_type)) {
        snprintf(err, errlen, "unknown result type %s", f->result_type ? f->result_type : "(none)");
        return NULL;
    }
    /* A policy that could not be fetched or used (the sts-policy-* and
       sts-webpki-invalid results) may have failed before any MX host was chosen
       or connected to. §4.4 lists receiving-mx-hostname and receiving-ip without
       "(optional)" because a session has both; a failure that had no session
       leaves them out rather than sending "" (not a host name, not an address). */
    bool policy_level = !strncmp(f->result_type, "sts-policy-", 11) || !strcmp(f->result_type, "sts-webpki-invalid");
    const char *mx = f->receiving_mx, *ip = f->receiving_ip;
    if (policy_level && mx && !mx[0])
        mx = NULL;
    if (policy_level && ip && !ip[0])
        ip = NULL;
    json_object *o = json_object_new_object();
    if (!o || add_str(o, "result-type", f->result_type, false) < 0 ||
        add_str(o, "sending-mta-ip", f->sending_ip, false) < 0 ||
        add_str(o, "receiving-mx-hostname", mx, policy_level) < 0 ||
        add_str(o, "receiving-mx-helo", f->receiving_helo, true) < 0 ||
        add_str(o, "receiving-ip", ip, policy_level) < 0 ||
        add_count(o, "failed-session-count", f->count) < 0 ||
        add_str(o, "additional-information", f->info_uri, true) < 0 ||
        add_str(o, "failure-reason-code", f->reason_code, true) < 0) {
        snprintf(err, errlen, "failure detail incomplete or out of memory");
        json_object_put(o);
        return NULL;
    }
    return o;
}

static json_object *policy_obj(const struct tlsrpt_policy *p, char *err, size_t errlen)
{
    if (!p->type || (strcmp(p->type, "sts") && strcmp(p->type, "tlsa") && strcmp(p->type, "no-policy-found"))) {
        snprintf(err, errlen, "unknown policy type");
        return NULL;
    }
    unsigned long long sum = 0;
    for (size_t i = 0; i < p->n_fail; i++) {
        if (p->fail[i].count > (unsigned long long)INT64_MAX - sum) {
            snprintf(err, errlen, "failure counts overflow");
            return NULL;
        }
        sum += p->fail[i].count;
    }
    if (sum != p->failed) {
        snprintf(err, errlen, "failure details add up to %llu, not %llu", sum, p->failed);
        return NULL;
    }
    json_object *o = json_object_new_object(), *pol = json_object_new_object(), *sum_o = json_object_new_object();
    json_object *details = NULL;
    int bad = !o || !pol || !sum_o;
    if (!bad)
        bad = add_str(pol, "policy-type", p->type, false) < 0 ||
              (p->n_strings && add_obj(pol, "policy-string", str_array(p->strings, p->n_strings)) < 0) ||
              add_str(pol, "policy-domain", p->domain, false) < 0 ||
              (p->n_mx && add_obj(pol, "mx-host", str_array(p->mx, p->n_mx)) < 0) ||
              add_count(sum_o, "total-successful-session-count", p->ok) < 0 ||
              add_count(sum_o, "total-failure-session-count", p->failed) < 0;
    if (!bad) {
        bad = add_obj(o, "policy", pol) < 0;
        pol = NULL;
        if (!bad) {
            bad = add_obj(o, "summary", sum_o) < 0;
            sum_o = NULL;
        }
    }
    if (!bad && p->n_fail) {
        details = json_object_new_array();
        for (size_t i = 0; !bad && details && i < p->n_fail; i++) {
            json_object *f = failure_obj(&p->fail[i], err, errlen);
            if (!f || json_object_array_add(details, f) != 0) {
                json_object_put(f);
                bad = 1;
            }
        }
        if (!bad)
            bad = add_obj(o, "failure-details", details) < 0;
        else
            json_object_put(details);
        details = NULL;
    }
    if (bad) {
        if (!err[0])
            snprintf(err, errlen, "policy %s incomplete or out of memory", p->domain ? p->domain : "(none)");
        json_object_put(pol);
        json_object_put(sum_o);
        json_object_put(o);
        return NULL;
    }
    return o;
}

int tlsrpt_report_json(const struct tlsrpt_report *r, struct buf *out, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    if (r->end <= r->start) {
        snprintf(err, errlen, "empty date range");
        return -1;
    }
    json_object *doc = json_object_new_object(), *range = json_object_new_object();
    json_object *pols = json_object_new_array();
    int bad = !doc || !range || !pols;
    if (!bad)
        bad = add_str(doc, "organization-name", r->organization, false) < 0 ||
              add_time(range, "start-datetime", r->start) < 0 || add_time(range, "end-datetime", r->end) < 0;
    if (!bad) {
        bad = add_obj(doc, "date-range", range) < 0;
        range = NULL;
    }
    if (!bad)
        bad = add_str(doc, "contact-info", r->contact, false) < 0 ||
              add_str(doc, "report-id", r->report_id, false) < 0;
    for (size_t i = 0; !bad && i < r->n_policies; i++) {
        json_object *p = policy_obj(&r->policies[i], err, errlen);
        if (!p || json_object_array_add(pols, p) != 0) {
            json_object_put(p);
            bad = 1;
        }
    }
    if (!bad) {
        bad = add_obj(doc, "policies", pols) < 0;
        pols = NULL;
    }
    const char *text = NULL;
    if (!bad)
        text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!bad && (!text || strlen(text) > TLSRPT_JSON_MAX || buf_puts(out, text) < 0))
        bad = 1;
    if (bad && err[0] == '\0')
        snprintf(err, errlen, "report incomplete, too large or out of memory");
    json_object_put(range);
    json_object_put(pols);
    json_object_put(doc);
    return bad ? -1 : 0;
}

static bool alnum_only(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

int tlsrpt_report_filename(const char *sender, const char *policy_domain, long long begin, long long end,
                           const char *unique, char *out, size_t outsz)
{
    if ((unique && (!*unique || !alnum_only(unique))) || strchr(sender, '!') || strchr(policy_domain, '!'))
        return -1;
    int n = unique ? snprintf(out, outsz, "%s!%s!%lld!%lld!%s.json.gz", sender, policy_domain, begin, end, unique)
                   : snprintf(out, outsz, "%s!%s!%lld!%lld.json.gz", sender, policy_domain, begin, end);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int tlsrpt_report_subject(const char *policy_domain, const char *submitter, const char *msgid_like, char *out,
                          size_t outsz)
{
    if (!strchr(msgid_like, '@') || strpbrk(msgid_like, "<> \t\r\n") || strpbrk(policy_domain, " \t\r\n") ||
        strpbrk(submitter, " \t\r\n"))
        return -1;
    int n = snprintf(out, outsz, "Report Domain: %s Submitter: %s Report-ID: <%s>", policy_domain, submitter,
                     msgid_like);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

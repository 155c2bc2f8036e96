/* tlsrpt_parse — see tlsrpt_parse.h. */
#include "delivery/tlsrpt_parse.h"
#include "lib/buf.h"
#include "lib/gzip.h"
#include "lib/mime_walk.h"

#include <arpa/inet.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COUNT_MAX 1000000000000000ULL   /* 10^15: no sender has more sessions in a day */
#define MIME_DEPTH 4

/* A parse in progress: where the error goes, and what one report may still hold. */
struct ctx {
    char *err;
    size_t errlen;
    size_t details, strings;
};

static int refuse(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Member key of obj with the wanted type. 1 found, 0 absent (refused when
   required), -1 of another type (refused). */
static int member(struct ctx *c, json_object *obj, const char *path, const char *key, json_type want, bool required,
                  json_object **out)
{
    static const char *const names[] = {
        [json_type_null] = "null", [json_type_boolean] = "a boolean", [json_type_double] = "a number",
        [json_type_int] = "an integer", [json_type_object] = "an object", [json_type_array] = "an array",
        [json_type_string] = "a string",
    };
    *out = NULL;
    if (!json_object_object_get_ex(obj, key, out) || !*out) {
        if (required)
            return refuse(c, "%s%s is missing", path, key);
        *out = NULL;
        return 0;
    }
    if (json_object_get_type(*out) != want)
        return refuse(c, "%s%s is not %s", path, key, names[want]);
    return 1;
}

/* Copy a string member into out (size outsz); too long or empty is refused
   (cut: cut instead, for free text). Control characters become spaces. */
static int text(struct ctx *c, json_object *obj, const char *path, const char *key, bool required, bool cut,
                char *out, size_t outsz)
{
    json_object *v;
    out[0] = '\0';
    int m = member(c, obj, path, key, json_type_string, required, &v);
    if (m <= 0)
        return m;
    const char *s = json_object_get_string(v);
    size_t n = (size_t)json_object_get_string_len(v);
    if (n == 0 && required)
        return refuse(c, "%s%s is empty", path, key);
    if (n >= outsz && !cut)
        return refuse(c, "%s%s is longer than %zu octets", path, key, outsz - 1);
    if (n >= outsz)
        n = outsz - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i];
    out[n] = '\0';
    return 1;
}

static int count(struct ctx *c, json_object *obj, const char *path, const char *key, unsigned long long *out)
{
    json_object *v;
    if (member(c, obj, path, key, json_type_int, true, &v) < 0)
        return -1;
    if (!v)
        return -1;
    int64_t n = json_object_get_int64(v);
    if (n < 0)
        return refuse(c, "%s%s is negative", path, key);
    if ((unsigned long long)n > COUNT_MAX)
        return refuse(c, "%s%s is larger than 10^15", path, key);
    *out = (unsigned long long)n;
    return 0;
}

/* A host name in LDH labels (RFC 1123), lower-cased in place, a trailing dot
   dropped; wild: a leading "*." is allowed (an mx-host pattern). */
static bool host_name(char *s, bool wild)
{
    size_t n = strlen(s);
    if (n && s[n - 1] == '.')
        s[--n] = '\0';
    const char *p = s;
    if (wild && !strncmp(p, "*.", 2))
        p += 2;
    if (!*p || strlen(p) > 253)
        return false;
    size_t label = 0;
    for (const char *q = p; ; q++) {
        if (*q == '.' || !*q) {
            if (label == 0 || label > 63 || q[-1] == '-')
                return false;
            if (!*q)
                break;
            label = 0;
            continue;
        }
        bool ok = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
                  (*q == '-' && label > 0) || *q == '_';
        if (!ok)
            return false;
        label++;
    }
    str_lower(s);
    return true;
}

static bool ip_address(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* n decimal digits at s, as a number; -1 when one is not a digit. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* RFC 3339 §5.6 date-time ("2016-04-01T00:00:00Z", fraction and offset
   optional parts), to UTC seconds. */
static bool date_time(const char *s, long long *out)
{
    if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return false;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), sec = digits(s + 17, 2), used = 19;
    if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0)
        return false;
    const char *p = s + used;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        if (strlen(p) != 6 || p[3] != ':')
            return false;
        int oh = digits(p + 1, 2), om = digits(p + 4, 2);
        if (oh < 0 || om < 0 || oh > 23 || om > 59)
            return false;
        off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (tm.tm_mday != d)            /* 31 February and the like */
        return false;
    *out = (long long)t - off;
    return true;
}

/* An array member of strings, counted against the report's bound; pattern:
   each must be an mx-host pattern. */
static int strings(struct ctx *c, json_object *obj, const char *path, const char *key, bool pattern)
{
    json_object *a;
    int m = member(c, obj, path, key, json_type_array, false, &a);
    if (m <= 0)
        return m;
    size_t n = json_object_array_length(a);
    if (n > TLSRPT_RX_STRINGS_MAX - c->strings)
        return refuse(c, "the report has more than %d policy strings and MX patterns", TLSRPT_RX_STRINGS_MAX);
    c->strings += n;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(a, i);
        if (!s || json_object_get_type(s) != json_type_string)
            return refuse(c, "%s%s[%zu] is not a string", path, key, i);
        size_t len = (size_t)json_object_get_string_len(s);
        if (len > TLSRPT_RX_STRING_MAX)
            return refuse(c, "%s%s[%zu] is longer than %d octets", path, key, i, TLSRPT_RX_STRING_MAX);
        if (!pattern)
            continue;
        char host[300];
        if (len >= sizeof host)
            return refuse(c, "%s%s[%zu] is not an MX host pattern", path, key, i);
        str_copy(host, json_object_get_string(s), sizeof host);
        if (!host_name(host, true))
            return refuse(c, "%s%s[%zu] is not an MX host pattern", path, key, i);
    }
    return 1;
}

static int failure(struct ctx *c, json_object *o, const char *path, struct tlsrpt_rx_failure *f)
{
    if (text(c, o, path, "result-type", true, false, f->result, sizeof f->result) < 0)
        return -1;
    for (const char *p = f->result; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return refuse(c, "%sresult-type \"%s\" is not a result type", path, f->result);
    if (count(c, o, path, "failed-session-count", &f->count) < 0)
        return -1;
    char helo[256], info[2048];
    if (text(c, o, path, "sending-mta-ip", false, false, f->sending_ip, sizeof f->sending_ip) < 0 ||
        text(c, o, path, "receiving-ip", false, false, f->receiving_ip, sizeof f->receiving_ip) < 0 ||
        text(c, o, path, "receiving-mx-hostname", false, false, f->mx, sizeof f->mx) < 0 ||
        text(c, o, path, "receiving-mx-helo", false, true, helo, sizeof helo) < 0 ||
        text(c, o, path, "additional-information", false, true, info, sizeof info) < 0 ||
        text(c, o, path, "failure-reason-code", false, true, f->reason, sizeof f->reason) < 0)
        return -1;
    if (f->sending_ip[0] && !ip_address(f->sending_ip))
        return refuse(c, "%ssending-mta-ip is not an IP address", path);
    if (f->receiving_ip[0] && !ip_address(f->receiving_ip))
        return refuse(c, "%sreceiving-ip is not an IP address", path);
    if (f->mx[0] && !host_name(f->mx, false))
        return refuse(c, "%sreceiving-mx-hostname is not a host name", path);
    return 0;
}

static int policy(struct ctx *c, json_object *o, const char *path, struct tlsrpt_rx_policy *p)
{
    json_object *pol, *sum, *det;
    char sub[96];
    if (member(c, o, path, "policy", json_type_object, true, &pol) <= 0 ||
        member(c, o, path, "summary", json_type_object, true, &sum) <= 0)
        return -1;
    snprintf(sub, sizeof sub, "%spolicy.", path);
    if (text(c, pol, sub, "policy-type", true, false, p->type, sizeof p->type) < 0)
        return -1;
    if (strcmp(p->type, "sts") && strcmp(p->type, "tlsa") && strcmp(p->type, "no-policy-found"))
        return refuse(c, "%spolicy-type \"%s\" is not tlsa, sts or no-policy-found", sub, p->type);
    if (text(c, pol, sub, "policy-domain", true, false, p->domain, sizeof p->domain) < 0)
        return -1;
    if (!host_name(p->domain, false))
        return refuse(c, "%spolicy-domain is not a domain name", sub);
    if (strings(c, pol, sub, "policy-string", false) < 0 || strings(c, pol, sub, "mx-host", true) < 0)
        return -1;
    snprintf(sub, sizeof sub, "%ssummary.", path);
    if (count(c, sum, sub, "total-successful-session-count", &p->ok) < 0 ||
        count(c, sum, sub, "total-failure-session-count", &p->failed) < 0)
        return -1;
    int m = member(c, o, path, "failure-details", json_type_array, false, &det);
    if (m <= 0)
        return m;
    size_t n = json_object_array_length(det);
    if (n > TLSRPT_RX_DETAILS_MAX - c->details)
        return refuse(c, "the report has more than %d failure-details", TLSRPT_RX_DETAILS_MAX);
    c->details += n;
    if (n && !(p->fail = calloc(n, sizeof *p->fail)))
        return refuse(c, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(det, i);
        snprintf(sub, sizeof sub, "%sfailure-details[%zu].", path, i);
        if (!f || json_object_get_type(f) != json_type_object)
            return refuse(c, "%sfailure-details[%zu] is not an object", path, i);
        if (failure(c, f, sub, &p->fail[p->nfail]) < 0)
            return -1;
        p->nfail++;
    }
    return 0;
}

static int report(struct ctx *c, json_object *root, struct tlsrpt_rx_report *r)
{
    json_object *range, *pols;
    char start[64], end[64];
    if (json_object_get_type(root) != json_type_object)
        return refuse(c, "the report is not a JSON object");
    if (text(c, root, "", "organization-name", true, false, r->org, sizeof r->org) < 0 ||
        member(c, root, "", "date-range", json_type_object, true, &range) <= 0 ||
        text(c, range, "date-range.", "start-datetime", true, false, start, sizeof start) < 0 ||
        text(c, range, "date-range.", "end-datetime", true, false, end, sizeof end) < 0 ||
        text(c, root, "", "contact-info", true, false, r->contact, sizeof r->contact) < 0 ||
        text(c, root, "", "report-id", true, false, r->report_id, sizeof r->report_id) < 0 ||
        member(c, root, "", "policies", json_type_array, true, &pols) <= 0)
        return -1;
    if (!date_time(start, &r->start))
        return refuse(c, "date-range.start-datetime is not an RFC 3339 date-time");
    if (!date_time(end, &r->end))
        return refuse(c, "date-range.end-datetime is not an RFC 3339 date-time");
    if (r->end < r->start)
        return refuse(c, "date-range ends before it starts");
    const char *at = strrchr(r->contact, '@');
    if (!at || at == r->contact || !at[1] || strpbrk(r->contact, " ") || strchr(r->contact, '@') != at)
        return refuse(c, "contact-info is not an e-mail address");
    size_t n = json_object_array_length(pols);
    if (n > TLSRPT_RX_POLICIES_MAX)
        return refuse(c, "the report has more than %d policies", TLSRPT_RX_POLICIES_MAX);
    if (n && !(r->policies = calloc(n, sizeof *r->policies)))
        return refuse(c, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_array_get_idx(pols, i);
        char path[32];
        snprintf(path, sizeof path, "policies[%zu].", i);
        if (!p || json_object_get_type(p) != json_type_object)
            return refuse(c, "policies[%zu] is not an object", i);
        r->npolicies++;
        if (policy(c, p, path, &r->policies[i]) < 0)
            return -1;
    }
    return 0;
}

void tlsrpt_rx_free(struct tlsrpt_rx_report *r)
{
    for (size_t i = 0; r->policies && i < r->npolicies; i++)
        free(r->policies[i].fail);
    free(r->policies);
    memset(r, 0, sizeof *r);
}

int tlsrpt_rx_parse_json(const char *json, size_t len, struct tlsrpt_rx_report *out, char *err, size_t errlen)
{
    struct ctx c = {.err = err, .errlen = errlen};
    memset(out, 0, sizeof *out);
    if (len > TLSRPT_RX_JSON_MAX)
        return refuse(&c, "the report is larger than %u octets", TLSRPT_RX_JSON_MAX);
    json_tokener *tok = json_tokener_new_ex(TLSRPT_RX_DEPTH);
    if (!tok)
        return refuse(&c, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    int rc;
    if (!root) {
        rc = refuse(&c, "the report is not valid JSON: %s",
                    je == json_tokener_continue ? "it ends early" : json_tokener_error_desc(je));
    } else {
        while (end < len && (json[end] == ' ' || json[end] == '\t' || json[end] == '\r' || json[end] == '\n'))
            end++;
        rc = end < len ? refuse(&c, "the report has data after its JSON object") : report(&c, root, out);
    }
    json_object_put(root);
    if (rc < 0)
        tlsrpt_rx_free(out);
    return rc;
}

/* parse_blob with a JSON bound of its own: json_max below TLSRPT_RX_JSON_MAX is a
   quick look (tlsrpt_rx_check_message), and a report larger than it is then not
   refused but left for the full check (1). */
static int parse_blob_max(const void *data, size_t len, size_t json_max, struct tlsrpt_rx_report *out, char *err,
                          size_t errlen)
{
    const unsigned char *p = data;
    struct ctx c = {.err = err, .errlen = errlen};
    bool quick = json_max < TLSRPT_RX_JSON_MAX;
    memset(out, 0, sizeof *out);
    if (len > TLSRPT_RX_PACKED_MAX)
        return refuse(&c, "the report is larger than %u octets", TLSRPT_RX_PACKED_MAX);
    if (len < 2 || p[0] != 0x1f || p[1] != 0x8b)
        return quick && len > json_max ? 1 : tlsrpt_rx_parse_json(data, len, out, err, errlen);
    struct buf json;
    buf_init(&json, json_max);
    int r;
    switch (gzip_inflate(data, len, &json)) {
    case GZIP_OK:
        r = tlsrpt_rx_parse_json(json.data ? json.data : "", json.len, out, err, errlen);
        break;
    case GZIP_TOO_BIG:
        r = quick ? 1 : refuse(&c, "the report inflates to more than %u octets", TLSRPT_RX_JSON_MAX);
        break;
    case GZIP_CORRUPT: r = refuse(&c, "the gzip data is corrupt"); break;
    case GZIP_TRUNCATED: r = refuse(&c, "the gzip data is truncated"); break;
    default: r = refuse(&c, "out of memory"); break;
    }
    buf_free(&json);
    return r;
}

int tlsrpt_rx_parse_blob(const void *data, size_t len, struct tlsrpt_rx_report *out, char *err, size_t errlen)
{
    return parse_blob_max(data, len, TLSRPT_RX_JSON_MAX, out, err, errlen);
}

/* ---- reports in a message ---- */

#define WALK_FAILED   1     /* take_part's returns that stop the walk */
#define WALK_DEFERRED 2

struct found {
    struct tlsrpt_rx_report *reports;
    size_t n;
    size_t json_max;
    struct ctx c;
};

static bool is_report(const struct mime_part *ph, const char *body, size_t len)
{
    static const char *const types[] = {"application/tlsrpt+gzip", "application/tlsrpt+json", "application/json",
                                        "application/gzip", "application/x-gzip", NULL};
    for (size_t i = 0; types[i]; i++)
        if (!strcmp(ph->type, types[i]))
            return true;
    if (!strcmp(ph->type, "application/octet-stream"))
        return str_iendswith(ph->name, ".json") || str_iendswith(ph->name, ".json.gz");
    if (ph->depth == 0 && !strcmp(ph->type, "text/plain")) {    /* a bare JSON body */
        size_t i = 0;
        while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
            i++;
        return i < len && body[i] == '{';
    }
    return false;
}

static int take_part(void *arg, const struct mime_part *ph, const char *body, size_t len)
{
    struct found *f = arg;
    if (!is_report(ph, body, len))
        return 0;
    const char *what = ph->name[0] ? ph->name : ph->type;
    if (f->n == TLSRPT_RX_PARTS_MAX)
        return -refuse(&f->c, "the message has more than %d TLS reports", TLSRPT_RX_PARTS_MAX);
    struct buf dec;
    buf_init(&dec, TLSRPT_RX_PACKED_MAX + 3);
    int d = mime_part_decode(ph, body, len, &dec);
    char why[300];
    int rc = 0, pb = 0;
    if (d == -1)
        rc = refuse(&f->c, "the part %s is not valid base64, or larger than %u octets", what, TLSRPT_RX_PACKED_MAX);
    else if (d == -2)
        rc = refuse(&f->c, "the part %s has the transfer encoding %s, which is not taken", what, ph->cte);
    else if ((pb = parse_blob_max(dec.data ? dec.data : "", dec.len, f->json_max, &f->reports[f->n], why,
                                  sizeof why)) < 0)
        rc = refuse(&f->c, "%s: %s", what, why);
    else if (pb == 0)
        f->n++;
    buf_free(&dec);
    return pb > 0 ? WALK_DEFERRED : rc < 0 ? WALK_FAILED : 0;
}

static int finish(struct found *f, int failed, struct tlsrpt_rx_report **out, size_t *n)
{
    if (failed == WALK_DEFERRED) {
        for (size_t i = 0; i < f->n; i++)
            tlsrpt_rx_free(&f->reports[i]);
        free(f->reports);
        return 1;
    }
    if (!failed && f->n == 0)
        failed = refuse(&f->c, "the message holds no TLS report (application/tlsrpt+gzip or +json)");
    if (failed) {
        for (size_t i = 0; i < f->n; i++)
            tlsrpt_rx_free(&f->reports[i]);
        free(f->reports);
        return -1;
    }
    *out = f->reports;
    *n = f->n;
    return 0;
}

int tlsrpt_rx_from_message(const char *msg, size_t len, struct tlsrpt_rx_report **out, size_t *n, char *err,
                           size_t errlen)
{
    return tlsrpt_rx_check_message(msg, len, TLSRPT_RX_JSON_MAX, out, n, err, errlen);
}

int tlsrpt_rx_check_message(const char *msg, size_t len, size_t json_max, struct tlsrpt_rx_report **out, size_t *n,
                            char *err, size_t errlen)
{
    struct found f = {.json_max = json_max, .c = {.err = err, .errlen = errlen}};
    *out = NULL;
    *n = 0;
    if (len > TLSRPT_RX_MSG_MAX)
        return refuse(&f.c, "the message is larger than %u octets", TLSRPT_RX_MSG_MAX);
    if (!(f.reports = calloc(TLSRPT_RX_PARTS_MAX, sizeof *f.reports)))
        return refuse(&f.c, "out of memory");
    return finish(&f, mime_walk(msg, len, MIME_DEPTH, take_part, &f), out, n);
}

int tlsrpt_rx_from_bytes(const char *data, size_t len, struct tlsrpt_rx_report **out, size_t *n, char *err,
                         size_t errlen)
{
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
        i++;
    bool bare = (i < len && data[i] == '{') || (len >= 2 && (unsigned char)data[0] == 0x1f &&
                                                (unsigned char)data[1] == 0x8b);
    if (!bare)
        return tlsrpt_rx_from_message(data, len, out, n, err, errlen);
    struct found f = {.c = {.err = err, .errlen = errlen}};
    *out = NULL;
    *n = 0;
    if (!(f.reports = calloc(1, sizeof *f.reports)))
        return refuse(&f.c, "out of memory");
    int rc = tlsrpt_rx_parse_blob(data, len, &f.reports[0], err, errlen);
    if (rc == 0)
        f.n = 1;
    return finish(&f, rc, out, n);
}

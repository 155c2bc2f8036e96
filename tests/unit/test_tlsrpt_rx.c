/*
 * test_tlsrpt_rx.c — delivery/tlsrpt_parse.h, the reader of TLS reports others
 * send us, fed raw bytes: JSON, gzip'ed JSON, whole messages (multipart/report
 * with a base64 part, a bare JSON body), what our own builder writes, and what
 * must be refused (with the sentence that says why); and delivery/tlsrpt_received.h's
 * store in a real Berkeley DB environment (kept once, filtered, swept, read back).
 */
#include "delivery/tlsrpt_parse.h"
#include "delivery/tlsrpt_received.h"
#include "delivery/tlsrpt_report.h"
#include "lib/db.h"
#include "lib/buf.h"
#include "lib/gzip.h"
#include "lib/mime.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

/* RFC 8460 §4.4's shape, with two policies and three failure details. */
static const char GOOD[] =
    "{\"organization-name\":\"Company-X\",\n"
    " \"date-range\":{\"start-datetime\":\"2016-04-01T00:00:00Z\",\"end-datetime\":\"2016-04-01T23:59:59Z\"},\n"
    " \"contact-info\":\"sts-reporting@company-x.example\",\n"
    " \"report-id\":\"5065427c-23d3-47ca-b6e0-946ea0e8c4be\",\n"
    " \"policies\":[{\n"
    "   \"policy\":{\"policy-type\":\"sts\",\"policy-string\":[\"version: STSv1\",\"mode: testing\",\n"
    "     \"mx: *.mail.company-y.example\",\"max_age: 86400\"],\"policy-domain\":\"Company-Y.example.\",\n"
    "     \"mx-host\":[\"*.mail.company-y.example\"]},\n"
    "   \"summary\":{\"total-successful-session-count\":5326,\"total-failure-session-count\":303},\n"
    "   \"failure-details\":[\n"
    "     {\"result-type\":\"certificate-expired\",\"sending-mta-ip\":\"2001:db8:abcd:0012::1\",\n"
    "      \"receiving-mx-hostname\":\"mx1.mail.company-y.example\",\"failed-session-count\":100},\n"
    "     {\"result-type\":\"starttls-not-supported\",\"sending-mta-ip\":\"2001:db8:abcd:0013::1\",\n"
    "      \"receiving-mx-hostname\":\"mx2.mail.company-y.example\",\"receiving-ip\":\"203.0.113.56\",\n"
    "      \"failed-session-count\":200,\"additional-information\":\"https://reports.company-x.example/x\"},\n"
    "     {\"result-type\":\"validation-failure\",\"sending-mta-ip\":\"198.51.100.62\",\n"
    "      \"receiving-ip\":\"203.0.113.58\",\"receiving-mx-hostname\":\"mx-backup.mail.company-y.example\",\n"
    "      \"failed-session-count\":3,\"failure-reason-code\":\"X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED\"}]},\n"
    "  {\"policy\":{\"policy-type\":\"no-policy-found\",\"policy-domain\":\"sub.company-y.example\"},\n"
    "   \"summary\":{\"total-successful-session-count\":7,\"total-failure-session-count\":0},\n"
    "   \"x-future-member\":{\"ignored\":true}}]}\n";

static int parse(const char *json, struct tlsrpt_rx_report *r, char *err, size_t errlen)
{
    return tlsrpt_rx_parse_blob(json, strlen(json), r, err, errlen);
}

START_TEST(good_report)
{
    struct tlsrpt_rx_report r;
    char err[300] = "";
    ck_assert_msg(parse(GOOD, &r, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(r.org, "Company-X");
    ck_assert_str_eq(r.report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
    ck_assert_str_eq(r.contact, "sts-reporting@company-x.example");
    ck_assert_int_eq(r.start, 1459468800);
    ck_assert_int_eq(r.end, 1459468800 + 86399);
    ck_assert_uint_eq(r.npolicies, 2);
    ck_assert_str_eq(r.policies[0].type, "sts");
    ck_assert_str_eq(r.policies[0].domain, "company-y.example");     /* lower case, no dot */
    ck_assert_uint_eq(r.policies[0].ok, 5326);
    ck_assert_uint_eq(r.policies[0].failed, 303);
    ck_assert_uint_eq(r.policies[0].nfail, 3);
    ck_assert_str_eq(r.policies[0].fail[0].result, "certificate-expired");
    ck_assert_str_eq(r.policies[0].fail[0].receiving_ip, "");
    ck_assert_uint_eq(r.policies[0].fail[1].count, 200);
    ck_assert_str_eq(r.policies[0].fail[1].mx, "mx2.mail.company-y.example");
    ck_assert_str_eq(r.policies[0].fail[2].reason, "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED");
    ck_assert_str_eq(r.policies[0].fail[2].sending_ip, "198.51.100.62");
    ck_assert_str_eq(r.policies[1].type, "no-policy-found");
    ck_assert_uint_eq(r.policies[1].ok, 7);
    ck_assert_uint_eq(r.policies[1].nfail, 0);
    tlsrpt_rx_free(&r);
}
END_TEST

START_TEST(gzip_and_time_zones)
{
    struct buf gz;
    buf_init(&gz, 1 << 20);
    ck_assert_int_eq(gzip_compress(GOOD, strlen(GOOD), 1 << 20, &gz), 0);
    struct tlsrpt_rx_report r;
    char err[300] = "";
    ck_assert_msg(tlsrpt_rx_parse_blob(gz.data, gz.len, &r, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(r.policies[0].nfail, 3);
    tlsrpt_rx_free(&r);
    /* truncated gzip */
    ck_assert_int_eq(tlsrpt_rx_parse_blob(gz.data, gz.len / 2, &r, err, sizeof err), -1);
    ck_assert_str_eq(err, "the gzip data is truncated");
    buf_free(&gz);
    /* an offset and a fraction; 't' in lower case */
    char doc[4096];
    snprintf(doc, sizeof doc, "{\"organization-name\":\"o\",\"date-range\":{\"start-datetime\":"
             "\"2016-04-01t02:00:00.123+02:00\",\"end-datetime\":\"2016-04-01T19:00:00-05:00\"},"
             "\"contact-info\":\"a@b.example\",\"report-id\":\"r\",\"policies\":[]}");
    ck_assert_msg(parse(doc, &r, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(r.start, 1459468800);
    ck_assert_int_eq(r.end, 1459468800 + 86400);
    ck_assert_uint_eq(r.npolicies, 0);
    tlsrpt_rx_free(&r);
}
END_TEST

/* Each broken document and the words its refusal must hold. */
static const struct {
    const char *from, *to;      /* GOOD with from replaced by to */
    const char *why;
} BAD[] = {
    {"\"organization-name\":\"Company-X\",", "", "organization-name is missing"},
    {"\"Company-X\"", "\"\"", "organization-name is empty"},
    {"\"Company-X\"", "17", "organization-name is not a string"},
    {"\"2016-04-01T00:00:00Z\"", "\"2016-04-01 00:00\"", "start-datetime is not an RFC 3339 date-time"},
    {"\"2016-04-01T00:00:00Z\"", "\"2016-02-30T00:00:00Z\"", "start-datetime is not an RFC 3339"},
    {"\"2016-04-01T23:59:59Z\"", "\"2016-03-01T00:00:00Z\"", "date-range ends before it starts"},
    {"\"sts-reporting@company-x.example\"", "\"nobody\"", "contact-info is not an e-mail address"},
    {"\"policy-type\":\"sts\"", "\"policy-type\":\"dane\"", "policies[0].policy.policy-type \"dane\" is not"},
    {"\"Company-Y.example.\"", "\"bad domain\"", "policies[0].policy.policy-domain is not a domain name"},
    {"\"mx-host\":[\"*.mail.company-y.example\"]", "\"mx-host\":[\"a b\"]", "mx-host[0] is not an MX host pattern"},
    {"\"policy-string\":[\"version: STSv1\"", "\"policy-string\":[1", "policy-string[0] is not a string"},
    {"5326", "\"5326\"", "policies[0].summary.total-successful-session-count is not an integer"},
    {"5326", "5326.5", "total-successful-session-count is not an integer"},
    {"5326", "-1", "total-successful-session-count is negative"},
    {"\"total-failure-session-count\":303", "\"total-failure\":303", "total-failure-session-count is missing"},
    {"\"failed-session-count\":100", "\"failed-session-count\":null", "failure-details[0].failed-session-count"},
    {"\"result-type\":\"certificate-expired\"", "\"result-type\":\"Bad Type\"", "is not a result type"},
    {"\"198.51.100.62\"", "\"198.51.100.300\"", "failure-details[2].sending-mta-ip is not an IP address"},
    {"\"203.0.113.56\"", "\"mx.example\"", "failure-details[1].receiving-ip is not an IP address"},
    {"\"policies\":[{", "\"policies\":{\"a\":[{", "not valid JSON"},
    {"\"policies\":[{", "\"policies\":7,\"x\":[{", "policies is not an array"},
    {"\"x-future-member\":{\"ignored\":true}", "\"x\":[[[[[[[[[[1]]]]]]]]]]", "not valid JSON"},
};

START_TEST(refused)
{
    char doc[8192], err[300];
    struct tlsrpt_rx_report r;
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const char *at = strstr(GOOD, BAD[i].from);
        ck_assert_msg(at != NULL, "case %zu", i);
        snprintf(doc, sizeof doc, "%.*s%s%s", (int)(at - GOOD), GOOD, BAD[i].to, at + strlen(BAD[i].from));
        err[0] = '\0';
        ck_assert_msg(parse(doc, &r, err, sizeof err) == -1, "case %zu accepted", i);
        ck_assert_msg(strstr(err, BAD[i].why) != NULL, "case %zu: %s", i, err);
        ck_assert_ptr_null(r.policies);
    }
    ck_assert_int_eq(parse("[1,2]", &r, err, sizeof err), -1);
    ck_assert_str_eq(err, "the report is not a JSON object");
    ck_assert_int_eq(parse("{\"a\":1} {\"b\":2}", &r, err, sizeof err), -1);
    ck_assert_int_eq(parse("{\"organization-name\":\"o", &r, err, sizeof err), -1);
    ck_assert_str_eq(err, "the report is not valid JSON: it ends early");
    /* invalid UTF-8 in a string */
    ck_assert_int_eq(parse("{\"organization-name\":\"\xff\xfe\"}", &r, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not valid JSON"));
    /* a NUL octet inside the document */
    char nul[] = "{\"organization-name\":\"a\0b\"}";
    ck_assert_int_eq(tlsrpt_rx_parse_blob(nul, sizeof nul - 1, &r, err, sizeof err), -1);
}
END_TEST

START_TEST(bounds)
{
    char err[300];
    struct tlsrpt_rx_report r;
    /* a gzip bomb: 11 MB of blanks compress to a few kB and stop at the limit */
    size_t big = (11u << 20);
    char *blanks = malloc(big);
    ck_assert_ptr_nonnull(blanks);
    memset(blanks, ' ', big);
    struct buf gz;
    buf_init(&gz, 1 << 20);
    ck_assert_int_eq(gzip_compress(blanks, big, big, &gz), 0);
    ck_assert_uint_lt(gz.len, 100000);
    ck_assert_int_eq(tlsrpt_rx_parse_blob(gz.data, gz.len, &r, err, sizeof err), -1);
    ck_assert_str_eq(err, "the report inflates to more than 10485760 octets");
    ck_assert_int_eq(tlsrpt_rx_parse_blob(blanks, big, &r, err, sizeof err), -1);
    ck_assert_str_eq(err, "the report is larger than 10485760 octets");
    buf_free(&gz);
    free(blanks);
    /* too many failure-details: 10001 in one policy */
    struct buf doc;
    buf_init(&doc, 4u << 20);
    buf_puts(&doc, "{\"organization-name\":\"o\",\"date-range\":{\"start-datetime\":\"2016-04-01T00:00:00Z\","
             "\"end-datetime\":\"2016-04-02T00:00:00Z\"},\"contact-info\":\"a@b.example\",\"report-id\":\"r\","
             "\"policies\":[{\"policy\":{\"policy-type\":\"sts\",\"policy-domain\":\"d.example\"},"
             "\"summary\":{\"total-successful-session-count\":0,\"total-failure-session-count\":1},"
             "\"failure-details\":[");
    for (int i = 0; i <= TLSRPT_RX_DETAILS_MAX; i++)
        buf_printf(&doc, "%s{\"result-type\":\"validation-failure\",\"failed-session-count\":1}", i ? "," : "");
    buf_puts(&doc, "]}]}");
    ck_assert_int_eq(tlsrpt_rx_parse_blob(doc.data, doc.len, &r, err, sizeof err), -1);
    ck_assert_str_eq(err, "the report has more than 10000 failure-details");
    buf_free(&doc);
    /* a long failure-reason-code is cut, a long report-id refused */
    char long_text[600];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    char one[2048];
    snprintf(one, sizeof one, "{\"organization-name\":\"o\",\"date-range\":{\"start-datetime\":"
             "\"2016-04-01T00:00:00Z\",\"end-datetime\":\"2016-04-02T00:00:00Z\"},\"contact-info\":\"a@b.example\","
             "\"report-id\":\"r\",\"policies\":[{\"policy\":{\"policy-type\":\"tlsa\",\"policy-domain\":\"d.example\"},"
             "\"summary\":{\"total-successful-session-count\":0,\"total-failure-session-count\":1},"
             "\"failure-details\":[{\"result-type\":\"tlsa-invalid\",\"failed-session-count\":1,"
             "\"failure-reason-code\":\"%s\\ttab\"}]}]}", long_text);
    ck_assert_msg(parse(one, &r, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(strlen(r.policies[0].fail[0].reason), 127);
    tlsrpt_rx_free(&r);
    snprintf(one, sizeof one, "{\"organization-name\":\"o\",\"date-range\":{\"start-datetime\":"
             "\"2016-04-01T00:00:00Z\",\"end-datetime\":\"2016-04-02T00:00:00Z\"},\"contact-info\":\"a@b.example\","
             "\"report-id\":\"%s\",\"policies\":[]}", long_text);
    ck_assert_int_eq(parse(one, &r, err, sizeof err), -1);
    ck_assert_str_eq(err, "report-id is longer than 255 octets");
}
END_TEST

/* A multipart/report as RFC 8460 §5.3 shows it, the report gzip'ed in base64. */
static void message(struct buf *m, const char *type, const char *json, bool gz_it)
{
    struct buf gz;
    buf_init(&gz, 1 << 20);
    if (gz_it)
        ck_assert_int_eq(gzip_compress(json, strlen(json), 1 << 20, &gz), 0);
    else
        buf_puts(&gz, json);
    buf_init(m, 4 << 20);
    buf_puts(m, "From: tlsrpt@mail.sender.example.com\r\nSubject: Report Domain: company-y.example "
                "Submitter: company-x.example Report-ID: <5065427c@company-x.example>\r\n"
                "TLS-Report-Domain: company-y.example\r\nMIME-Version: 1.0\r\n"
                "Content-Type: multipart/report; report-type=\"tlsrpt\";\r\n\tboundary=\"----=_Part_1\"\r\n\r\n"
                "This is a multipart message in MIME format.\r\n\r\n------=_Part_1\r\n"
                "Content-Type: text/plain; charset=\"us-ascii\"\r\n\r\nThis is an aggregate TLS report.\r\n\r\n"
                "------=_Part_1\r\n");
    buf_printf(m, "Content-Type: %s\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n"
                  "\tfilename=\"company-x.example!company-y.example!1459468800!1459555199.json.gz\"\r\n\r\n", type);
    mime_put_base64(m, gz.data, gz.len);
    buf_puts(m, "\r\n------=_Part_1--\r\n");
    buf_free(&gz);
}

START_TEST(messages)
{
    struct tlsrpt_rx_report *v;
    size_t n;
    char err[300] = "";
    struct buf m;
    message(&m, "application/tlsrpt+gzip", GOOD, true);
    ck_assert_msg(tlsrpt_rx_from_message(m.data, m.len, &v, &n, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(v[0].policies[0].ok, 5326);
    tlsrpt_rx_free(&v[0]);
    free(v);
    ck_assert_int_eq(tlsrpt_rx_from_bytes(m.data, m.len, &v, &n, err, sizeof err), 0);
    tlsrpt_rx_free(&v[0]);
    free(v);
    buf_free(&m);
    /* the JSON as a plain attachment (octet-stream named .json, not gzip'ed) */
    message(&m, "application/octet-stream; name=\"r.json\"", GOOD, false);
    char *fn = strstr(m.data, ".json.gz\"");
    memcpy(fn, ".json\"  ", 8);
    ck_assert_msg(tlsrpt_rx_from_message(m.data, m.len, &v, &n, err, sizeof err) == 0, "%s", err);
    tlsrpt_rx_free(&v[0]);
    free(v);
    buf_free(&m);
    /* a broken report part is refused, naming the part */
    message(&m, "application/tlsrpt+json", "{\"organization-name\":1}", false);
    ck_assert_int_eq(tlsrpt_rx_from_message(m.data, m.len, &v, &n, err, sizeof err), -1);
    ck_assert_str_eq(err, "company-x.example!company-y.example!1459468800!1459555199.json.gz: "
                          "organization-name is not a string");
    buf_free(&m);
    /* only a text part */
    const char *plain = "Subject: hello\r\n\r\nNo report here.\r\n";
    ck_assert_int_eq(tlsrpt_rx_from_message(plain, strlen(plain), &v, &n, err, sizeof err), -1);
    ck_assert_str_eq(err, "the message holds no TLS report (application/tlsrpt+gzip or +json)");
    /* the whole body is the report, by type or as bare JSON text */
    struct buf whole;
    buf_init(&whole, 1 << 20);
    buf_printf(&whole, "Subject: r\r\nContent-Type: application/tlsrpt+json\r\n\r\n%s", GOOD);
    ck_assert_msg(tlsrpt_rx_from_message(whole.data, whole.len, &v, &n, err, sizeof err) == 0, "%s", err);
    tlsrpt_rx_free(&v[0]);
    free(v);
    buf_reset(&whole);
    buf_printf(&whole, "Subject: r\n\n%s", GOOD);          /* bare LF too */
    ck_assert_msg(tlsrpt_rx_from_message(whole.data, whole.len, &v, &n, err, sizeof err) == 0, "%s", err);
    tlsrpt_rx_free(&v[0]);
    free(v);
    /* a bare file for ferryctl import */
    ck_assert_int_eq(tlsrpt_rx_from_bytes(GOOD, strlen(GOOD), &v, &n, err, sizeof err), 0);
    tlsrpt_rx_free(&v[0]);
    free(v);
    /* quoted-printable is not taken */
    buf_reset(&whole);
    buf_printf(&whole, "Content-Type: application/tlsrpt+json\r\nContent-Transfer-Encoding: quoted-printable\r\n"
                       "\r\n%s", GOOD);
    ck_assert_int_eq(tlsrpt_rx_from_message(whole.data, whole.len, &v, &n, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "quoted-printable, which is not taken"));
    buf_free(&whole);
}
END_TEST

/* What Ferry's own report builder writes reads back the same. */
START_TEST(round_trip)
{
    const char *strs[] = {"version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 86400"};
    const char *mx[] = {"mx.example.com"};
    struct tlsrpt_failure f[] = {
        {.result_type = "certificate-host-mismatch", .sending_ip = "192.0.2.1", .receiving_mx = "mx.example.com",
         .receiving_ip = "198.51.100.7", .count = 4, .reason_code = "X509_V_ERR_HOSTNAME_MISMATCH"},
    };
    struct tlsrpt_policy p = {.type = "sts", .strings = strs, .n_strings = 4, .domain = "example.com", .mx = mx,
                              .n_mx = 1, .ok = 9, .failed = 4, .fail = f, .n_fail = 1};
    struct tlsrpt_report rep = {.organization = "Ferry", .start = 1480550400, .end = 1480636800,
                                .contact = "tlsrpt@sender.example", .report_id = "2016-12-01_example.com",
                                .policies = &p, .n_policies = 1};
    struct buf j;
    buf_init(&j, 1 << 20);
    char err[300] = "";
    ck_assert_int_eq(tlsrpt_report_json(&rep, &j, err, sizeof err), 0);
    struct tlsrpt_rx_report r;
    ck_assert_msg(tlsrpt_rx_parse_json(j.data, j.len, &r, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(r.start, 1480550400);
    ck_assert_int_eq(r.end, 1480636800);
    ck_assert_str_eq(r.policies[0].fail[0].reason, "X509_V_ERR_HOSTNAME_MISMATCH");
    ck_assert_uint_eq(r.policies[0].fail[0].count, 4);
    ck_assert_uint_eq(r.policies[0].ok, 9);
    tlsrpt_rx_free(&r);
    buf_free(&j);
}
END_TEST

static bool only_company_y(void *arg, const char *domain)
{
    return !strcmp(domain, "company-y.example");
}

static bool none_ours(void *arg, const char *domain)
{
    return false;
}

struct seen {
    int reports;
    unsigned long long ok, failed, details;
    char last_reason[128];
};

static int count_seen(const struct tlsrpt_rx_report *r, long long received, void *arg)
{
    struct seen *s = arg;
    s->reports++;
    for (size_t i = 0; i < r->npolicies; i++) {
        s->ok += r->policies[i].ok;
        s->failed += r->policies[i].failed;
        s->details += r->policies[i].nfail;
        for (size_t k = 0; k < r->policies[i].nfail; k++)
            str_copy(s->last_reason, r->policies[i].fail[k].reason, sizeof s->last_reason);
    }
    return 0;
}

START_TEST(store)
{
    char dir[] = "/tmp/ferry-tlsrpt-rx-XXXXXX", err[300] = "";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct fdb_env *env;
    struct tlsrpt_received *st;
    ck_assert_msg(fdb_env_open(dir, &env, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(tlsrpt_received_open(env, &st, err, sizeof err) == 0, "%s", err);
    long long now = 1459468800 + 2 * 86400;
    size_t stored, dups;
    /* only the company-y.example policy is kept: sub.company-y.example is not ours */
    ck_assert_msg(tlsrpt_received_import(st, GOOD, strlen(GOOD), only_company_y, NULL, now, &stored, &dups, err,
                                         sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(stored, 1);
    ck_assert_uint_eq(dups, 0);
    ck_assert_int_eq(tlsrpt_received_import(st, GOOD, strlen(GOOD), NULL, NULL, now, &stored, &dups, err,
                                            sizeof err), 0);
    ck_assert_uint_eq(stored, 0);
    ck_assert_uint_eq(dups, 1);
    struct seen s = {0};
    ck_assert_int_eq(tlsrpt_received_foreach(st, count_seen, &s), 0);
    ck_assert_int_eq(s.reports, 1);
    ck_assert_uint_eq(s.ok, 5326);          /* the no-policy-found one (7) was not ours */
    ck_assert_uint_eq(s.failed, 303);
    ck_assert_uint_eq(s.details, 3);
    ck_assert_str_eq(s.last_reason, "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED");
    /* about no domain of ours: refused, nothing stored */
    ck_assert_int_eq(tlsrpt_received_import(st, GOOD, strlen(GOOD), none_ours, NULL, now, &stored, &dups, err,
                                            sizeof err), -1);
    ck_assert_str_eq(err, "the report 5065427c-23d3-47ca-b6e0-946ea0e8c4be is about company-y.example, not a "
                          "domain of this server");
    /* too old, then swept */
    ck_assert_int_eq(tlsrpt_received_import(st, GOOD, strlen(GOOD), NULL, NULL, now + 401LL * 86400, &stored,
                                            &dups, err, sizeof err), -1);
    ck_assert_str_eq(err, "the report 5065427c-23d3-47ca-b6e0-946ea0e8c4be ended more than 400 days ago");
    size_t gone;
    ck_assert_int_eq(tlsrpt_received_sweep(st, now, &gone), 0);
    ck_assert_uint_eq(gone, 0);
    ck_assert_int_eq(tlsrpt_received_sweep(st, now + 401LL * 86400, &gone), 0);
    ck_assert_uint_eq(gone, 1);
    memset(&s, 0, sizeof s);
    ck_assert_int_eq(tlsrpt_received_foreach(st, count_seen, &s), 0);
    ck_assert_int_eq(s.reports, 0);
    tlsrpt_received_close(st);
    fdb_env_close(env);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *tlsrpt_rx_suite(void)
{
    Suite *s = suite_create("tlsrpt_rx");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, good_report);
    tcase_add_test(tc, gzip_and_time_zones);
    tcase_add_test(tc, refused);
    tcase_add_test(tc, bounds);
    tcase_add_test(tc, messages);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, store);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(tlsrpt_rx_suite)

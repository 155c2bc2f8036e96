/*
 * test_tlsrpt.c — delivery/tls_txt.h's _smtp._tls record, delivery/tlsrpt_report.h's
 * JSON report, file name and Subject, and lib/gzip.h's bounds.
 */
#include "delivery/tls_txt.h"
#include "delivery/tlsrpt_report.h"
#include "lib/buf.h"
#include "lib/gzip.h"
#include "tests/unit/unit.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static int rpt(const char *rec, struct tlsrpt_record *r)
{
    char err[128] = "";
    return tlsrpt_txt_parse(rec, strlen(rec), r, err, sizeof err);
}

START_TEST(txt_valid)
{
    struct tlsrpt_record r;
    ck_assert_int_eq(rpt("v=TLSRPTv1;rua=mailto:reports@example.com", &r), 0);
    ck_assert_uint_eq(r.n, 1);
    ck_assert_int_eq(r.rua[0].scheme, TLSRPT_MAILTO);
    ck_assert_str_eq(r.rua[0].uri, "reports@example.com");
    ck_assert_int_eq(rpt("v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt", &r), 0);
    ck_assert_int_eq(r.rua[0].scheme, TLSRPT_HTTPS);
    ck_assert_str_eq(r.rua[0].uri, "https://reporting.example.com/v1/tlsrpt");
    /* a list with WSP around the commas, hfields dropped, other schemes skipped,
       an extension, the first rua wins */
    ck_assert_int_eq(rpt("v=TLSRPTv1; x-ext=1; rua=mailto:a@x.example?subject=hi , "
                         "ftp://x.example/r,HTTPS://y.example/r ;rua=mailto:late@x.example;", &r), 0);
    ck_assert_uint_eq(r.n, 2);
    ck_assert_uint_eq(r.skipped, 1);
    ck_assert_str_eq(r.rua[0].uri, "a@x.example");
    ck_assert_str_eq(r.rua[1].uri, "HTTPS://y.example/r");
}
END_TEST

START_TEST(txt_invalid)
{
    struct tlsrpt_record r;
    const char *bad[] = {
        "v=TLSRPTv1",
        "v=TLSRPTv1;",
        "v=TLSRPTv1; foo=bar",                      /* no rua */
        "v=TLSRPTv2; rua=mailto:a@x.example",
        "rua=mailto:a@x.example; v=TLSRPTv1",
        "v=TLSRPTv1; rua=",
        "v=TLSRPTv1; rua=ftp://x.example/r",        /* no usable URI */
        "v=TLSRPTv1; rua=mailto:a@x.example,",      /* trailing comma */
        "v=TLSRPTv1; rua=mailto:a@x.example,,mailto:b@x.example",
        "v=TLSRPTv1; rua=mailto:nobody",            /* no domain */
        "v=TLSRPTv1; rua=mailto:a@b@c",
        "v=TLSRPTv1; rua=mailto:a%40x@x.example",   /* escapes refused */
        "v=TLSRPTv1; rua=mailto:a@x.example!10m",   /* '!' must be encoded */
        "v=TLSRPTv1; rua=mailto:a b@x.example",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(rpt(bad[i], &r) == -1, "accepted: %s", bad[i]);
    const char *recs[] = { "v=TLSRPTv1; rua=mailto:a@x.example", "v=DMARC1; p=none", "v=TLSRPTv1;rua=x" };
    size_t lens[] = { strlen(recs[0]), strlen(recs[1]), strlen(recs[2]) };
    ck_assert_int_eq(tls_txt_select(recs, lens, 2, "v=TLSRPTv1"), 0);
    ck_assert_int_eq(tls_txt_select(recs, lens, 3, "v=TLSRPTv1"), -1);
}
END_TEST

START_TEST(txt_many)
{
    /* more than TLSRPT_RUA_MAX URIs: the first are kept, the rest counted */
    char rec[1024];
    size_t n = (size_t)snprintf(rec, sizeof rec, "v=TLSRPTv1; rua=mailto:r0@x.example");
    for (int i = 1; i < TLSRPT_RUA_MAX + 3; i++)
        n += (size_t)snprintf(rec + n, sizeof rec - n, ",mailto:r%d@x.example", i);
    struct tlsrpt_record r;
    ck_assert_int_eq(rpt(rec, &r), 0);
    ck_assert_uint_eq(r.n, TLSRPT_RUA_MAX);
    ck_assert_uint_eq(r.skipped, 3);
    /* a record longer than TLS_TXT_MAX is refused */
    static char big[TLS_TXT_MAX + 64];
    n = (size_t)snprintf(big, sizeof big, "v=TLSRPTv1; rua=mailto:a@x.example; x=");
    memset(big + n, 'a', sizeof big - n - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(rpt(big, &r), -1);
}
END_TEST

static const char *sts_lines[] = { "version: STSv1", "mode: testing", "mx: mx1.example.com", "max_age: 86400" };
static const char *sts_mx[] = { "mx1.example.com" };

static void one_report(struct tlsrpt_policy *pol, struct tlsrpt_failure *f)
{
    memset(f, 0, sizeof *f * 2);
    f[0] = (struct tlsrpt_failure){ "certificate-host-mismatch", "192.0.2.1", "mx1.example.com", NULL,
                                    "198.51.100.7", 3, "X509_V_ERR_HOSTNAME_MISMATCH", NULL };
    f[1] = (struct tlsrpt_failure){ "starttls-not-supported", "192.0.2.1", "mx1.example.com", "mx1 \"q\"",
                                    "198.51.100.7", 1, NULL, NULL };
    *pol = (struct tlsrpt_policy){ "sts", sts_lines, 4, "example.com", sts_mx, 1, 10, 4, f, 2 };
}

START_TEST(report_json_exact)
{
    struct tlsrpt_failure f[2];
    struct tlsrpt_policy pol[2];
    one_report(&pol[0], f);
    pol[1] = (struct tlsrpt_policy){ "no-policy-found", NULL, 0, "example.com", NULL, 0, 2, 0, NULL, 0 };
    struct tlsrpt_report r = { "Ferry test/org", 1480550400, 1480636800, "tlsrpt@sender.example",
                               "2016-12-01T00:00:00Z_example.com", pol, 2 };
    struct buf b;
    buf_init(&b, 1 << 20);
    char err[128];
    ck_assert_int_eq(tlsrpt_report_json(&r, &b, err, sizeof err), 0);
    const char *want =
        "{\"organization-name\":\"Ferry test/org\",\"date-range\":{\"start-datetime\":\"2016-12-01T00:00:00Z\","
        "\"end-datetime\":\"2016-12-02T00:00:00Z\"},\"contact-info\":\"tlsrpt@sender.example\","
        "\"report-id\":\"2016-12-01T00:00:00Z_example.com\",\"policies\":[{\"policy\":{\"policy-type\":\"sts\","
        "\"policy-string\":[\"version: STSv1\",\"mode: testing\",\"mx: mx1.example.com\",\"max_age: 86400\"],"
        "\"policy-domain\":\"example.com\",\"mx-host\":[\"mx1.example.com\"]},\"summary\":{"
        "\"total-successful-session-count\":10,\"total-failure-session-count\":4},\"failure-details\":[{"
        "\"result-type\":\"certificate-host-mismatch\",\"sending-mta-ip\":\"192.0.2.1\","
        "\"receiving-mx-hostname\":\"mx1.example.com\",\"receiving-ip\":\"198.51.100.7\","
        "\"failed-session-count\":3,\"failure-reason-code\":\"X509_V_ERR_HOSTNAME_MISMATCH\"},{"
        "\"result-type\":\"starttls-not-supported\",\"sending-mta-ip\":\"192.0.2.1\","
        "\"receiving-mx-hostname\":\"mx1.example.com\",\"receiving-mx-helo\":\"mx1 \\\"q\\\"\","
        "\"receiving-ip\":\"198.51.100.7\",\"failed-session-count\":1}]},{\"policy\":{"
        "\"policy-type\":\"no-policy-found\",\"policy-domain\":\"example.com\"},\"summary\":{"
        "\"total-successful-session-count\":2,\"total-failure-session-count\":0}}]}";
    ck_assert_str_eq(b.data, want);
    /* and json-c reads it back */
    json_object *o = json_tokener_parse(b.data);
    ck_assert_ptr_nonnull(o);
    json_object_put(o);
    buf_free(&b);
}
END_TEST

START_TEST(report_refused)
{
    struct tlsrpt_failure f[2];
    struct tlsrpt_policy pol;
    struct tlsrpt_report r = { "org", 0, 86400, "a@b.example", "id", &pol, 1 };
    struct buf b;
    buf_init(&b, 1 << 20);
    char err[128];
    one_report(&pol, f);
    pol.failed = 5;     /* details add up to 4 */
    ck_assert_int_eq(tlsrpt_report_json(&r, &b, err, sizeof err), -1);
    ck_assert_str_eq(err, "failure details add up to 4, not 5");
    one_report(&pol, f);
    f[1].result_type = "made-up";
    ck_assert_int_eq(tlsrpt_report_json(&r, &b, err, sizeof err), -1);
    one_report(&pol, f);
    f[0].receiving_ip = NULL;
    ck_assert_int_eq(tlsrpt_report_json(&r, &b, err, sizeof err), -1);
    one_report(&pol, f);
    pol.type = "dane";
    ck_assert_int_eq(tlsrpt_report_json(&r, &b, err, sizeof err), -1);
    one_report(&pol, f);
    r.end = r.start;
    ck_assert_int_eq(tlsrpt_report_json(&r, &b, err, sizeof err), -1);
    ck_assert_uint_eq(b.len, 0);
    ck_assert(tlsrpt_result_type_ok("sts-webpki-invalid"));
    ck_assert(!tlsrpt_result_type_ok("success"));
    buf_free(&b);
}
END_TEST

START_TEST(gzip_roundtrip)
{
    const char *text = "{\"organization-name\":\"x\"}";
    struct buf gz, gz2;
    buf_init(&gz, 1 << 16);
    buf_init(&gz2, 1 << 16);
    ck_assert_int_eq(gzip_compress(text, strlen(text), 1024, &gz), 0);
    ck_assert_int_eq(gzip_compress(text, strlen(text), 1024, &gz2), 0);
    /* RFC 1952 magic, and stable bytes */
    ck_assert_uint_ge(gz.len, 18);
    ck_assert_int_eq((unsigned char)gz.data[0], 0x1f);
    ck_assert_int_eq((unsigned char)gz.data[1], 0x8b);
    ck_assert_uint_eq(gz.len, gz2.len);
    ck_assert(memcmp(gz.data, gz2.data, gz.len) == 0);
    /* the round trip through zlib is test_dmarc_report's (dmarc_report_gzip is this) */
    /* over max_in, and into a full buffer */
    buf_reset(&gz);
    ck_assert_int_eq(gzip_compress(text, strlen(text), 4, &gz), -1);
    struct buf tiny;
    buf_init(&tiny, 8);
    ck_assert_int_eq(gzip_compress(text, strlen(text), 1024, &tiny), -1);
    buf_free(&tiny);
    buf_free(&gz);
    buf_free(&gz2);
}
END_TEST

START_TEST(names)
{
    char s[256];
    ck_assert_int_eq(tlsrpt_report_filename("mail.sndr.example.com", "example.net", 1470013207, 1470186007, "001",
                                            s, sizeof s), 0);
    ck_assert_str_eq(s, "mail.sndr.example.com!example.net!1470013207!1470186007!001.json.gz");
    ck_assert_int_eq(tlsrpt_report_filename("a.example", "b.example", 1, 2, NULL, s, sizeof s), 0);
    ck_assert_str_eq(s, "a.example!b.example!1!2.json.gz");
    ck_assert_int_eq(tlsrpt_report_filename("a.example", "b.example", 1, 2, "0-1", s, sizeof s), -1);
    ck_assert_int_eq(tlsrpt_report_filename("a!example", "b.example", 1, 2, NULL, s, sizeof s), -1);
    ck_assert_int_eq(tlsrpt_report_filename("a.example", "b.example", 1, 2, NULL, s, 10), -1);
    ck_assert_int_eq(tlsrpt_report_subject("example.net", "mail.sender.example.com", "735ff.e317+bf22029@example.net",
                                           s, sizeof s), 0);
    ck_assert_str_eq(s, "Report Domain: example.net Submitter: mail.sender.example.com "
                        "Report-ID: <735ff.e317+bf22029@example.net>");
    ck_assert_int_eq(tlsrpt_report_subject("example.net", "s.example", "no-at", s, sizeof s), -1);
    ck_assert_int_eq(tlsrpt_report_subject("example.net\r\nBcc: x", "s.example", "a@b", s, sizeof s), -1);
}
END_TEST

static Suite *tlsrpt_suite(void)
{
    Suite *s = suite_create("tlsrpt");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, txt_valid);
    tcase_add_test(tc, txt_invalid);
    tcase_add_test(tc, txt_many);
    tcase_add_test(tc, report_json_exact);
    tcase_add_test(tc, report_refused);
    tcase_add_test(tc, gzip_roundtrip);
    tcase_add_test(tc, names);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(tlsrpt_suite)

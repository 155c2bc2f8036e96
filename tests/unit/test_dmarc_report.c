/*
 * test_dmarc_report.c — auth/dmarc_report_xml.h and dmarc_report_mail.h pieces:
 * rua URI parsing (mailto only, %-decoding, "!size" units, refusals), XML
 * escaping (markup characters, controls, invalid UTF-8), gzip round trip, the
 * file name, and that a report without rows or ID is refused.
 */
#include "auth/dmarc_report_mail.h"
#include "tests/unit/unit.h"

#include <string.h>
#include <zlib.h>

START_TEST(rua_uris)
{
    struct dmarc_rua d;
    const char *why;
    ck_assert_int_eq(dmarc_rua_parse("mailto:dmarc@example.com", &d, &why), 0);
    ck_assert_str_eq(d.addr, "dmarc@example.com");
    ck_assert_uint_eq(d.max_size, 0);
    ck_assert_int_eq(dmarc_rua_parse("MailTo:a%2Bb@example.com!10m", &d, &why), 0);
    ck_assert_str_eq(d.addr, "a+b@example.com");
    ck_assert_uint_eq(d.max_size, 10ULL << 20);
    ck_assert_int_eq(dmarc_rua_parse("mailto:r@example.com!500", &d, &why), 0);
    ck_assert_uint_eq(d.max_size, 500);
    ck_assert_int_eq(dmarc_rua_parse("mailto:r@example.com?subject=x!2k", &d, &why), 0);
    ck_assert_uint_eq(d.max_size, 2048);
    ck_assert_int_eq(dmarc_rua_parse("  mailto:r@example.com!1t", &d, &why), 0);
    ck_assert_uint_eq(d.max_size, 1ULL << 40);
    ck_assert_int_eq(dmarc_rua_parse("https://example.com/rua", &d, &why), -1);
    ck_assert_ptr_nonnull(strstr(why, "mailto"));
    ck_assert_int_eq(dmarc_rua_parse("mailto:a@example.com%2Cb@example.net", &d, &why), -1);
    ck_assert_int_eq(dmarc_rua_parse("mailto:a@example.com!", &d, &why), -1);
    ck_assert_int_eq(dmarc_rua_parse("mailto:a@example.com!10x", &d, &why), -1);
    ck_assert_int_eq(dmarc_rua_parse("mailto:a@example.com!99999999999999999999", &d, &why), -1);
    ck_assert_int_eq(dmarc_rua_parse("mailto:a@[192.0.2.1]", &d, &why), -1);
    ck_assert_int_eq(dmarc_rua_parse("mailto:nobody", &d, &why), -1);
    ck_assert_int_eq(dmarc_rua_parse("mailto:a%zz@example.com", &d, &why), -1);
    ck_assert_int_eq(dmarc_rua_parse("mailto:a%0a@example.com", &d, &why), -1);
}
END_TEST

START_TEST(xml_escaping)
{
    struct buf b;
    buf_init(&b, 1024);
    ck_assert_int_eq(dmarc_xml_escape(&b, "a<b>&\"c'\x01\xc3\xa9"), 0);
    ck_assert_str_eq(b.data, "a&lt;b&gt;&amp;&quot;c&apos; \xc3\xa9");
    buf_reset(&b);
    ck_assert_int_eq(dmarc_xml_escape(&b, "bad\xff\xfe utf8"), 0);
    ck_assert_str_eq(b.data, "bad?? utf8");
    buf_free(&b);
}
END_TEST

START_TEST(gzip_round_trip_and_name)
{
    struct buf gz;
    buf_init(&gz, 1 << 20);
    const char *text = "<feedback>hello hello hello hello</feedback>\n";
    ck_assert_int_eq(dmarc_report_gzip(text, strlen(text), &gz), 0);
    ck_assert_uint_ge(gz.len, 18);
    ck_assert_int_eq((unsigned char)gz.data[0], 0x1f);
    ck_assert_int_eq((unsigned char)gz.data[1], 0x8b);
    ck_assert(gz.data[4] == 0 && gz.data[5] == 0 && gz.data[6] == 0 && gz.data[7] == 0);   /* no time stamp */
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(inflateInit2(&z, 16 + 15), Z_OK);
    char out[256];
    z.next_in = (Bytef *)gz.data;
    z.avail_in = (uInt)gz.len;
    z.next_out = (Bytef *)out;
    z.avail_out = sizeof out;
    ck_assert_int_eq(inflate(&z, Z_FINISH), Z_STREAM_END);
    ck_assert_uint_eq(z.total_out, strlen(text));
    ck_assert(memcmp(out, text, strlen(text)) == 0);
    inflateEnd(&z);
    buf_free(&gz);

    struct dmarc_agg_report r;
    memset(&r, 0, sizeof r);
    strcpy(r.domain, "example.com");
    r.begin = 86400;
    r.end = 2 * 86400;
    strcpy(r.report_id, "abc123");
    struct dmarc_report_sender s = { .receiver = "mx.example.net" };
    char name[256];
    dmarc_report_filename(&s, &r, name, sizeof name);
    ck_assert_str_eq(name, "mx.example.net!example.com!86400!172799!abc123.xml.gz");
    /* no rows: the schema wants at least one record, so no report */
    struct dmarc_report_meta m = { .org_name = "o", .email = "e@example.net" };
    struct buf x;
    buf_init(&x, 4096);
    ck_assert_int_eq(dmarc_report_xml(&r, &m, &x), -1);
    ck_assert_uint_eq(x.len, 0);
    buf_free(&x);
}
END_TEST

Suite *dmarc_report_suite(void)
{
    Suite *s = suite_create("dmarc_report");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, rua_uris);
    tcase_add_test(tc, xml_escaping);
    tcase_add_test(tc, gzip_round_trip_and_name);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(dmarc_report_suite)

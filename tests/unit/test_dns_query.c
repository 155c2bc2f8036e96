/*
 * test_dns_query.c — the query half of lib/dns.h: the exact bytes
 * dns_build_query writes (header, EDNS0 OPT with and without DO), the name
 * limits it enforces (63-octet labels, 253-octet names, empty labels, control
 * octets) and the odd octets it must carry unchanged (SPF macro output), plus
 * type names and answer copy/free.
 */
#include "lib/dns.h"
#include "lib/dns_internal.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

static struct dns_answer ans;
static uint32_t ttl;

static void teardown(void)
{
    dns_answer_free(&ans);
}

START_TEST(build_query_bytes)
{
    uint8_t out[512];
    static const uint8_t want[] = {
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,   /* RD, 1 q, 1 ar */
        7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 3, 'c', 'o', 'm', 0,
        0x00, 0x0f, 0x00, 0x01,                                                 /* MX IN */
        0x00, 0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00,       /* OPT 1232 DO */
    };
    int n = dns_build_query("example.com", DNS_T_MX, 0x1234, true, out, sizeof out);
    ck_assert_int_eq(n, (int)sizeof want);
    ck_assert(memcmp(out, want, sizeof want) == 0);
    /* the final dot changes nothing */
    uint8_t out2[512];
    ck_assert_int_eq(dns_build_query("example.com.", DNS_T_MX, 0x1234, true, out2, sizeof out2), n);
    ck_assert(memcmp(out, out2, (size_t)n) == 0);
    /* without DO the OPT record is still there, flags zero */
    n = dns_build_query("example.com", DNS_T_MX, 0x1234, false, out, sizeof out);
    ck_assert_int_eq(n, (int)sizeof want);
    ck_assert(memcmp(out, want, sizeof want - 4) == 0);
    ck_assert_int_eq(out[sizeof want - 4], 0);
    /* too small an output buffer */
    ck_assert_int_eq(dns_build_query("example.com", DNS_T_MX, 1, true, out, sizeof want - 1), -1);
    ck_assert_int_eq(dns_build_query("example.com", DNS_T_MX, 1, true, out, sizeof want), (int)sizeof want);
    /* the query we build is what the parser checks answers against */
    out[2] |= 0x80;
    ck_assert_int_eq(dns_parse_response(out, sizeof want, "EXAMPLE.com", DNS_T_MX, 1, &ans, &ttl), 0);
    ck_assert_int_eq(ans.status, DNS_NODATA);
}
END_TEST

START_TEST(build_query_names)
{
    uint8_t out[600];
    char name_buf[300];
    /* label of 63 ok, 64 not */
    memset(name_buf, 'a', 63);
    strcpy(name_buf + 63, ".com");
    ck_assert_int_gt(dns_build_query(name_buf, DNS_T_A, 1, true, out, sizeof out), 0);
    memset(name_buf, 'a', 64);
    strcpy(name_buf + 64, ".com");
    ck_assert_int_eq(dns_build_query(name_buf, DNS_T_A, 1, true, out, sizeof out), -1);
    /* 253 octets (255 on the wire) ok, 254 not; a final dot does not count */
    char *s = name_buf;
    for (int i = 0; i < 4; i++) {
        memset(s, 'a' + i, 63);
        s[63] = '.';
        s += 64;
    }
    name_buf[253] = '\0';      /* 63.63.63.61 */
    ck_assert_uint_eq(strlen(name_buf), 253);
    int n = dns_build_query(name_buf, DNS_T_A, 1, true, out, sizeof out);
    ck_assert_int_eq(n, 12 + 255 + 4 + 11);
    strcat(name_buf, ".");
    ck_assert_int_eq(dns_build_query(name_buf, DNS_T_A, 1, true, out, sizeof out), n);
    name_buf[253] = 'x';
    name_buf[254] = '\0';
    ck_assert_int_eq(dns_build_query(name_buf, DNS_T_A, 1, true, out, sizeof out), -1);
    const char *bad[] = { "", ".", "..", "a..b", ".a", "a\tb", "a\x7f", "a\nb.c", "a\rb" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(dns_build_query(bad[i], DNS_T_A, 1, true, out, sizeof out) == -1, "\"%s\" built", bad[i]);
    /* odd but legal octets (underscores, UTF-8) are sent as they are */
    n = dns_build_query("_dmarc.ex_ample.b\xc3\xbc", DNS_T_TXT, 1, true, out, sizeof out);
    ck_assert_int_gt(n, 0);
    ck_assert(memcmp(out + 12, "\6_dmarc\10ex_ample\3b\xc3\xbc\0", 21) == 0);
    /* SPF macros can put a space, '%', '\\' or ldns syntax octets in a label: each
       goes on the wire as the octet itself (RFC 7208 §4.8, §7.3) */
    n = dns_build_query("a b%c\\d.x\"y(z);@$.test", DNS_T_A, 1, true, out, sizeof out);
    ck_assert_int_gt(n, 0);
    ck_assert(memcmp(out + 12, "\7a b%c\\d\11x\"y(z);@$\4test\0", 24) == 0);
}
END_TEST

START_TEST(types_and_copy)
{
    ck_assert_uint_eq(dns_type_parse("MX"), DNS_T_MX);
    ck_assert_uint_eq(dns_type_parse("mx"), DNS_T_MX);
    ck_assert_uint_eq(dns_type_parse("aaaa"), DNS_T_AAAA);
    ck_assert_uint_eq(dns_type_parse("TLSA"), DNS_T_TLSA);
    ck_assert_uint_eq(dns_type_parse("PTR"), DNS_T_PTR);
    ck_assert_uint_eq(dns_type_parse("txt"), DNS_T_TXT);
    ck_assert_uint_eq(dns_type_parse("A"), DNS_T_A);
    ck_assert_uint_eq(dns_type_parse("CNAME"), 0);
    ck_assert_uint_eq(dns_type_parse(""), 0);
    ck_assert_uint_eq(dns_type_parse("MXX"), 0);
    ck_assert_str_eq(dns_type_name(DNS_T_AAAA), "AAAA");
    ck_assert_str_eq(dns_type_name(DNS_T_TLSA), "TLSA");
    ck_assert_str_eq(dns_type_name(5), "?");
    ck_assert_str_eq(dns_status_name(DNS_NXDOMAIN), "nxdomain");
    ck_assert_str_eq(dns_status_name((enum dns_status)42), "?");

    struct dns_answer empty, copy;
    memset(&empty, 0, sizeof empty);
    empty.status = DNS_NODATA;
    strcpy(empty.error, "x has no MX record");
    ck_assert_int_eq(dns_answer_copy(&copy, &empty), 0);
    ck_assert_int_eq(copy.status, DNS_NODATA);
    ck_assert_ptr_null(copy.records);
    ck_assert_str_eq(copy.error, "x has no MX record");
    dns_answer_free(&copy);
    dns_answer_free(&copy);     /* freeing twice is harmless */
}
END_TEST

Suite *dns_query_suite(void)
{
    Suite *s = suite_create("dns_query");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, build_query_bytes);
    tcase_add_test(tc, build_query_names);
    tcase_add_test(tc, types_and_copy);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(dns_query_suite)

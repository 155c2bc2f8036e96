/*
 * test_hdr_value.c — lib/hdr_value.h, fed raw strings: values written into
 * result fields can never end a quoted-string, a comment or the field, whatever
 * a stranger put in them (security review #9), and the readers accept the
 * spellings a peer may use (#11).
 */
#include "lib/hdr_value.h"
#include "tests/unit/unit.h"

#include <string.h>

static const char *fmt(int (*f)(struct buf *, const char *), const char *v)
{
    static struct buf b;
    buf_free(&b);
    buf_init(&b, 4096);
    ck_assert_int_eq(f(&b, v), 0);
    return b.data ? b.data : "";
}

START_TEST(values_are_tokens_or_quoted)
{
    ck_assert_str_eq(fmt(hdr_value_append, "pass"), "pass");
    ck_assert_str_eq(fmt(hdr_value_append, "/gCrinpc"), "\"/gCrinpc\"");
    /* the review's case: b=AB"... once gave header.b="AB"" */
    ck_assert_str_eq(fmt(hdr_value_append, "AB\"x"), "\"AB\\\"x\"");
    ck_assert_str_eq(fmt(hdr_value_append, "a\\b"), "\"a\\\\b\"");
    ck_assert_str_eq(fmt(hdr_value_append, "a;b"), "\"a;b\"");
    ck_assert_str_eq(fmt(hdr_value_append, "a\r\nX-Evil: 1"), "\"a??X-Evil: 1\"");
    ck_assert_str_eq(fmt(hdr_value_append, ""), "\"\"");
    ck_assert_str_eq(fmt(hdr_value_append, "\xc3\xa9"), "\"??\"");
}
END_TEST

START_TEST(pvalues)
{
    ck_assert_str_eq(fmt(hdr_pvalue_append, "user@example.com"), "user@example.com");
    ck_assert_str_eq(fmt(hdr_pvalue_append, "mail.example.com"), "mail.example.com");
    ck_assert_str_eq(fmt(hdr_pvalue_append, "a.b+tag@example.com"), "a.b+tag@example.com");
    ck_assert_str_eq(fmt(hdr_pvalue_append, "\"odd local\"@example.com"), "\"\\\"odd local\\\"@example.com\"");
    ck_assert_str_eq(fmt(hdr_pvalue_append, "x@exa mple.com"), "\"x@exa mple.com\"");
    ck_assert_str_eq(fmt(hdr_pvalue_append, "a..b@example.com"), "\"a..b@example.com\"");
    ck_assert_str_eq(fmt(hdr_pvalue_append, "ip4:192.0.2.1"), "\"ip4:192.0.2.1\"");
    ck_assert_str_eq(fmt(hdr_dot_atom_append, "..x"), "\"..x\"");
    ck_assert_str_eq(fmt(hdr_dot_atom_append, "-all"), "-all");
    ck_assert_str_eq(fmt(hdr_dot_atom_append, "a=b"), "a=b");
}
END_TEST

START_TEST(comments)
{
    ck_assert_str_eq(fmt(hdr_ctext_append, "bad (sig) \\"), "bad \\(sig\\) \\\\");
    ck_assert_str_eq(fmt(hdr_ctext_append, "x\r\ny"), "x??y");
}
END_TEST

START_TEST(reading_values)
{
    char out[16];
    const char *s = "\"local\\\"host\" ;";
    size_t n = strlen(s);
    ck_assert_uint_eq(hdr_value_read(s, 0, n, out, sizeof out), 13);
    ck_assert_str_eq(out, "local\"host");
    ck_assert_uint_eq(hdr_value_read("mx.test;", 0, 8, out, sizeof out), 7);
    ck_assert_str_eq(out, "mx.test");
    ck_assert_uint_eq(hdr_value_read("\"open", 0, 5, out, sizeof out), 0);       /* unterminated */
    ck_assert_uint_eq(hdr_value_read("\"a\\", 0, 3, out, sizeof out), 0);
    ck_assert_uint_eq(hdr_value_read(";x", 0, 2, out, sizeof out), 0);           /* no value */
    ck_assert_uint_eq(hdr_value_read("0123456789abcdefXYZ", 0, 19, out, sizeof out), 0);   /* too long */
    ck_assert_uint_eq(hdr_value_read("\"a\r\n b\"", 0, 7, out, sizeof out), 7);  /* folded inside quotes */
    ck_assert_str_eq(out, "a b");
    /* comments nested deeper than the bound leave nothing usable */
    char deep[200];
    memset(deep, '(', 100);
    strcpy(deep + 100, "x");
    ck_assert_uint_eq(hdr_skip_cfws(deep, 0, strlen(deep)), strlen(deep));
    ck_assert_uint_eq(hdr_skip_cfws(" (a (b) \\) c) x", 0, 15), 14);
}
END_TEST

START_TEST(field_names)
{
    size_t v = 0;
    ck_assert(hdr_field_is("From: a", 7, "From", &v));
    ck_assert_uint_eq(v, 5);
    ck_assert(hdr_field_is("from \t: a", 9, "From", &v));
    ck_assert_uint_eq(v, 7);
    ck_assert(!hdr_field_is("From-X: a", 9, "From", &v));
    ck_assert(!hdr_field_is("From a", 6, "From", &v));
    ck_assert(!hdr_field_is("From", 4, "From", &v));
    ck_assert(!hdr_field_is("Fro: a", 6, "From", NULL));
}
END_TEST

Suite *hdr_value_suite(void)
{
    Suite *s = suite_create("hdr_value");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, values_are_tokens_or_quoted);
    tcase_add_test(tc, pvalues);
    tcase_add_test(tc, comments);
    tcase_add_test(tc, reading_values);
    tcase_add_test(tc, field_names);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(hdr_value_suite)

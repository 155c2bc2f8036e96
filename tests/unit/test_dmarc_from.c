/*
 * Unit tests of auth/dmarc_from: the author domain of raw header sections, one test
 * per From: edge case of dmarc_from.h, and dmarc_domain_canon (IDN, case, LDH).
 */
#include "auth/dmarc_from.h"
#include "tests/unit/unit.h"

#include <string.h>

static struct dmarc_from from(const char *hdr)
{
    struct dmarc_from f;
    dmarc_from_extract(hdr, strlen(hdr), &f);
    return f;
}

#define BODY "To: r@example.net\r\nSubject: x\r\n\r\nbody From: evil@bank.example\r\n"

START_TEST(one_mailbox)
{
    struct dmarc_from f = from("From: Joe <joe@Mail.EXAMPLE.com>\r\n" BODY);
    ck_assert_int_eq(f.status, DMARC_FROM_OK);
    ck_assert_str_eq(f.domain, "mail.example.com");
    ck_assert_uint_eq(f.fields, 1);
    ck_assert_uint_eq(f.mailboxes, 1);
    /* folded, comments, bare addr-spec, final-dot-less */
    f = from("Subject: s\r\nFROM:\r\n (c) joe (x) @ (y) example.org\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_OK);
    ck_assert_str_eq(f.domain, "example.org");
}
END_TEST

START_TEST(no_from)
{
    struct dmarc_from f = from("To: r@example.net\r\nSubject: x\r\n\r\nFrom: a@b.example\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_ABSENT);
    ck_assert_str_eq(f.domain, "");
    f = from("");
    ck_assert_int_eq(f.status, DMARC_FROM_ABSENT);
}
END_TEST

START_TEST(several_fields)
{
    struct dmarc_from f = from("From: a@example.com\r\nFrom: b@EXAMPLE.com\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_OK);          /* one domain, two fields */
    ck_assert_str_eq(f.domain, "example.com");
    ck_assert_uint_eq(f.fields, 2);
    f = from("From: a@example.com\r\nFrom: b@bank.example\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_MULTI_DOMAIN);
    ck_assert_str_eq(f.domain, "");
    ck_assert_ptr_nonnull(strstr(f.reason, "bank.example"));
    /* more fields than can be kept */
    char many[1024] = "";
    for (int i = 0; i < 9; i++)
        strcat(many, "From: a@example.com\r\n");
    strcat(many, "\r\n");
    f = from(many);
    ck_assert_int_eq(f.status, DMARC_FROM_MULTI_DOMAIN);
    ck_assert_uint_eq(f.fields, 9);
}
END_TEST

START_TEST(several_mailboxes)
{
    struct dmarc_from f = from("From: a@example.com, \"B\" <b@example.com>\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_OK);
    ck_assert_uint_eq(f.mailboxes, 2);
    f = from("From: a@example.com, b@sub.example.com\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_MULTI_DOMAIN);   /* a subdomain is another domain */
}
END_TEST

START_TEST(groups)
{
    struct dmarc_from f = from("From: Team: a@example.com, b@example.com;\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_OK);
    ck_assert_str_eq(f.domain, "example.com");
    f = from("From: undisclosed-senders:;\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_EMPTY);
    f = from("From:\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_EMPTY);
    f = from("From: Team: a@example.com;, b@example.org\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_MULTI_DOMAIN);
    f = from("From: A: B: c@example.com;;\r\n\r\n");   /* nested group */
    ck_assert_int_eq(f.status, DMARC_FROM_SYNTAX);
}
END_TEST

START_TEST(encoded_display_name)
{
    /* an encoded word that decodes to "<ceo@bank.example>" changes nothing */
    struct dmarc_from f = from("From: =?utf-8?q?=3Cceo=40bank=2Eexample=3E?= <x@attacker.example>\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_OK);
    ck_assert_str_eq(f.domain, "attacker.example");
    f = from("From: \"ceo@bank.example\" <x@attacker.example>\r\n\r\n");
    ck_assert_str_eq(f.domain, "attacker.example");
}
END_TEST

START_TEST(idn)
{
    struct dmarc_from f = from("From: =?utf-8?q?M=C3=BCller?= <m@B\xc3\xbc" "cher.example>\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_OK);
    ck_assert_str_eq(f.domain, "xn--bcher-kva.example");
    ck_assert_str_eq(f.written, "B\xc3\xbc" "cher.example");
    /* A-label and U-label forms are the same author domain */
    f = from("From: a@xn--bcher-kva.example, b@b\xc3\xbc" "cher.example\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_OK);
    ck_assert_str_eq(f.domain, "xn--bcher-kva.example");
    /* malformed UTF-8 in the domain */
    f = from("From: m@b\xc3" "cher.example\r\n\r\n");
    ck_assert(f.status == DMARC_FROM_SYNTAX || f.status == DMARC_FROM_BAD_NAME);
}
END_TEST

START_TEST(bad_names)
{
    struct dmarc_from f = from("From: a@exa_mple.com\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_BAD_NAME);
    f = from("From: a@-example.com\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_BAD_NAME);
    f = from("From: a@example-.com\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_BAD_NAME);
    char big[400] = "From: a@";
    memset(big + strlen(big), 'x', 70);
    strcat(big, ".example\r\n\r\n");
    f = from(big);
    ck_assert_int_eq(f.status, DMARC_FROM_BAD_NAME);   /* a 70-octet label */
    f = from("From: a@[192.0.2.1]\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_LITERAL);
    f = from("From: John Smith john@example.com\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_SYNTAX);
    f = from("From: <a@example.com\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_SYNTAX);
    f = from("From: a@example.com.\r\n\r\n");
    ck_assert_int_eq(f.status, DMARC_FROM_SYNTAX);
}
END_TEST

START_TEST(canon)
{
    char out[256];
    ck_assert_int_eq(dmarc_domain_canon("Example.COM.", out, sizeof out), 0);
    ck_assert_str_eq(out, "example.com");
    ck_assert_int_eq(dmarc_domain_canon("b\xc3\xbc" "cher.example", out, sizeof out), 0);
    ck_assert_str_eq(out, "xn--bcher-kva.example");
    ck_assert_int_eq(dmarc_domain_canon("", out, sizeof out), -1);
    ck_assert_int_eq(dmarc_domain_canon(".", out, sizeof out), -1);
    ck_assert_int_eq(dmarc_domain_canon("a..b", out, sizeof out), -1);
    ck_assert_int_eq(dmarc_domain_canon("a b.example", out, sizeof out), -1);
    ck_assert_int_eq(dmarc_domain_canon("localhost", out, sizeof out), 0);
    char small[8];
    ck_assert_int_eq(dmarc_domain_canon("example.com", small, sizeof small), -1);
}
END_TEST

static Suite *dmarc_from_suite(void)
{
    Suite *s = suite_create("dmarc_from");
    TCase *t = tcase_create("from");
    tcase_add_test(t, one_mailbox);
    tcase_add_test(t, no_from);
    tcase_add_test(t, several_fields);
    tcase_add_test(t, several_mailboxes);
    tcase_add_test(t, groups);
    tcase_add_test(t, encoded_display_name);
    tcase_add_test(t, idn);
    tcase_add_test(t, bad_names);
    tcase_add_test(t, canon);
    suite_add_tcase(s, t);
    return s;
}

UNIT_MAIN(dmarc_from_suite)

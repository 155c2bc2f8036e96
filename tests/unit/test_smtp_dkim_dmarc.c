/* Unit tests for smtpd/smtp_dkim_dmarc's pure helpers: the From: domain and the
   removal of forged Authentication-Results fields, fed raw header bytes. */
#include "smtpd/smtp_dkim_dmarc.h"
#include "tests/unit/unit.h"

#include <string.h>

static const char *from_domain(const char *hdr)
{
    static char out[256];
    if (policy_from_domain(hdr, strlen(hdr), out, sizeof out) < 0)
        return NULL;
    return out;
}

START_TEST(from_domains)
{
    ck_assert_str_eq(from_domain("From: a@Example.ORG\r\n"), "example.org");
    ck_assert_str_eq(from_domain("Subject: x\r\nFrom: \"Doe, J <x@evil.test>\" <j@good.test>\r\n"), "good.test");
    ck_assert_str_eq(from_domain("From: J (comment <x@evil.test>) <j@good.test>\r\n"), "good.test");
    ck_assert_str_eq(from_domain("from:\r\n\tLong Name\r\n <j@folded.test>\r\n"), "folded.test");
    ck_assert_str_eq(from_domain("From: j@bare.test (Joe)\r\n"), "bare.test");
    ck_assert_ptr_null(from_domain("From: <j@dot.test.>\r\n"));       /* not an RFC 5322 domain */
    ck_assert_ptr_null(from_domain("Subject: no from\r\n"));
    ck_assert_ptr_null(from_domain("From: a@one.test\r\nFrom: b@two.test\r\n"));       /* two authors */
    ck_assert_ptr_null(from_domain("From: a@one.test, b@two.test\r\n"));               /* two mailboxes */
    ck_assert_ptr_null(from_domain("From: no address here\r\n"));
    ck_assert_ptr_null(from_domain("From: <a@>\r\n"));
    ck_assert_ptr_null(from_domain("X-From: a@x.test\r\n"));
    /* the obsolete "From :" is a From field (RFC 5322 4.5.3): it counts, and two of them are two authors */
    ck_assert_str_eq(from_domain("From : a@obs.test\r\n"), "obs.test");
    ck_assert_ptr_null(from_domain("From: a@one.test\r\nFROM\t: b@two.test\r\n"));
}
END_TEST

static const char *strip(const char *hdr, const char *id, int *removed)
{
    static struct buf out;
    buf_free(&out);
    buf_init(&out, 1 << 16);
    *removed = policy_strip_forged_ar(hdr, strlen(hdr), id, &out);
    return out.data ? out.data : "";
}

START_TEST(forged_results)
{
    int n;
    const char *hdr = "Authentication-Results: mx.example.test; spf=pass\r\n"
                      "Subject: s\r\n"
                      "authentication-results:   (a comment) MX.Example.Test;\r\n dkim=pass\r\n"
                      "Authentication-Results: mx.example.test.evil; dkim=pass\r\n"
                      "Authentication-Results: other.test; dkim=fail\r\n"
                      "Authentication-Results:mx.example.test;none\r\n"
                      "X-Authentication-Results: mx.example.test; keep\r\n";
    ck_assert_str_eq(strip(hdr, "mx.example.test", &n),
                     "Subject: s\r\n"
                     "Authentication-Results: mx.example.test.evil; dkim=pass\r\n"
                     "Authentication-Results: other.test; dkim=fail\r\n"
                     "X-Authentication-Results: mx.example.test; keep\r\n");
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(strip(hdr, "", &n), hdr);       /* no authserv-id: nothing to judge */
    ck_assert_int_eq(n, 0);
    ck_assert_str_eq(strip("Subject: only\r\n", "mx", &n), "Subject: only\r\n");
    ck_assert_str_eq(strip("", "mx", &n), "");
    /* security review #11: white space before the colon, a quoted authserv-id,
       a quoted-pair inside it, folding before it; all ours, all removed */
    const char *odd = "Authentication-Results : mx.example.test; dkim=pass\r\n"
                      "Authentication-Results: \"mx.example.test\"; dkim=pass\r\n"
                      "Authentication-Results:\t\"mx.exa\\mple.test\" 1; spf=pass\r\n"
                      "Authentication-Results:\r\n (c) \"MX.EXAMPLE.TEST\";\r\n dkim=pass\r\n"
                      "Authentication-Results: \"mx.example.test.x\"; dkim=pass\r\n"
                      "Authentication-Results: \"mx.example.test; dkim=pass\r\n"
                      "Subject: s\r\n";
    ck_assert_str_eq(strip(odd, "mx.example.test", &n),
                     "Authentication-Results: \"mx.example.test.x\"; dkim=pass\r\n"
                     "Subject: s\r\n");
    ck_assert_int_eq(n, 5);       /* the unterminated id cannot be shown not to be ours */
    /* a last field without CRLF is kept as it is */
    ck_assert_str_eq(strip("Subject: a\r\nX: b", "mx", &n), "Subject: a\r\nX: b");
}
END_TEST

Suite *smtp_policy_suite(void)
{
    Suite *s = suite_create("smtp_policy");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, from_domains);
    tcase_add_test(tc, forged_results);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(smtp_policy_suite)

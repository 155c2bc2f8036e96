/*
 * test_smtp_cmd.c — smtpd/smtp_cmd.h, fed raw command lines (without CRLF).
 *
 * Covers: every verb in any case, with and without arguments; MAIL/RCPT paths and
 * ESMTP parameters (keyword and value grammar of RFC 5321 §4.1.2, duplicates, the
 * SMTP_MAX_PARAMS limit); spaces after FROM:/TO:; a missing colon; unknown verbs;
 * SMTPUTF8 enabling UTF-8 in the MAIL path and utf8_ok for RCPT; NUL, CR and LF
 * inside a line; the line length limit; and the reply each error carries; paths
 * without angle brackets (bare_path) and their ambiguous forms.
 */
#include "smtpd/smtp_cmd.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

static struct smtp_cmd cmd;

static void ok_n(const char *line, size_t len, bool utf8_ok, enum smtp_verb verb)
{
    struct smtp_error err = { 0, NULL, NULL };
    ck_assert_msg(smtp_cmd_parse(line, len, utf8_ok, &cmd, &err) == 0, "\"%s\" rejected: %d %s %s", line,
                  err.code, err.enhanced ? err.enhanced : "", err.text ? err.text : "");
    ck_assert_int_eq(cmd.verb, verb);
    ck_assert_ptr_nonnull(cmd.arg);
}

static void ok(const char *line, bool utf8_ok, enum smtp_verb verb)
{
    ok_n(line, strlen(line), utf8_ok, verb);
}

static void bad_n(const char *line, size_t len, bool utf8_ok, int code, const char *enhanced)
{
    struct smtp_error err = { 0, NULL, NULL };
    ck_assert_msg(smtp_cmd_parse(line, len, utf8_ok, &cmd, &err) < 0, "\"%s\" accepted", line);
    ck_assert_msg(err.code == code, "\"%s\": code %d, want %d", line, err.code, code);
    ck_assert_msg(err.enhanced && strcmp(err.enhanced, enhanced) == 0, "\"%s\": %s, want %s", line,
                  err.enhanced ? err.enhanced : "(null)", enhanced);
    ck_assert_msg(err.text && *err.text, "\"%s\": no text", line);
}

static void bad(const char *line, bool utf8_ok, int code, const char *enhanced)
{
    bad_n(line, strlen(line), utf8_ok, code, enhanced);
}

START_TEST(verbs_and_case)
{
    const struct {
        const char *line;
        enum smtp_verb verb;
    } v[] = {
        { "HELO example.com", SMTP_VERB_HELO }, { "helo example.com", SMTP_VERB_HELO },
        { "EHLO example.com", SMTP_VERB_EHLO }, { "eHlO example.com", SMTP_VERB_EHLO },
        { "MAIL FROM:<a@b>", SMTP_VERB_MAIL }, { "mail from:<a@b>", SMTP_VERB_MAIL },
        { "RCPT TO:<a@b>", SMTP_VERB_RCPT }, { "rcpt to:<a@b>", SMTP_VERB_RCPT },
        { "DATA", SMTP_VERB_DATA }, { "data", SMTP_VERB_DATA }, { "RSET", SMTP_VERB_RSET },
        { "rset", SMTP_VERB_RSET }, { "NOOP", SMTP_VERB_NOOP }, { "noop", SMTP_VERB_NOOP },
        { "QUIT", SMTP_VERB_QUIT }, { "Quit", SMTP_VERB_QUIT }, { "VRFY bob", SMTP_VERB_VRFY },
        { "vrfy bob", SMTP_VERB_VRFY }, { "EXPN list", SMTP_VERB_EXPN }, { "expn list", SMTP_VERB_EXPN },
        { "HELP", SMTP_VERB_HELP }, { "help", SMTP_VERB_HELP }, { "STARTTLS", SMTP_VERB_STARTTLS },
        { "starttls", SMTP_VERB_STARTTLS }, { "AUTH PLAIN", SMTP_VERB_AUTH }, { "auth plain", SMTP_VERB_AUTH },
        { "BDAT 10", SMTP_VERB_BDAT }, { "bdat 10 last", SMTP_VERB_BDAT },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        ok(v[i].line, false, v[i].verb);
    ck_assert_str_eq(smtp_verb_name(SMTP_VERB_STARTTLS), "STARTTLS");
    ck_assert_str_eq(smtp_verb_name(SMTP_VERB_MAIL), "MAIL");
    ck_assert_str_eq(smtp_verb_name((enum smtp_verb)99), "?");
}
END_TEST

START_TEST(unknown_verbs)
{
    bad("FOO", false, 500, "5.5.2");
    bad("FOO bar", false, 500, "5.5.2");
    bad("", false, 500, "5.5.2");
    bad(" HELO x", false, 500, "5.5.2");
    bad("HEL", false, 500, "5.5.2");
    bad("HELOX x", false, 500, "5.5.2");
    bad("MAILFROM:<a@b>", false, 500, "5.5.2");
    bad("DATA\tx", false, 500, "5.5.2");
    bad("STARTTLSX", false, 500, "5.5.2");
    bad("\xc3\xa9", false, 500, "5.5.2");
}
END_TEST

START_TEST(arguments)
{
    ok("HELO mail.example.com", false, SMTP_VERB_HELO);
    ck_assert_str_eq(cmd.arg, "mail.example.com");
    ok("EHLO [192.0.2.1]", false, SMTP_VERB_EHLO);
    ck_assert_str_eq(cmd.arg, "[192.0.2.1]");
    ok("EHLO [IPv6:2001:db8::1]", false, SMTP_VERB_EHLO);
    ok("EHLO mypc  ", false, SMTP_VERB_EHLO);   /* trailing spaces tolerated */
    ck_assert_str_eq(cmd.arg, "mypc");
    bad("EHLO", false, 501, "5.5.4");
    bad("HELO", false, 501, "5.5.4");
    bad("EHLO ", false, 501, "5.5.4");
    bad("EHLO a b", false, 501, "5.5.2");
    bad("EHLO  a", false, 501, "5.5.2");
    bad("EHLO a_b", false, 501, "5.5.2");
    bad("EHLO [300.0.0.1]", false, 501, "5.5.2");
    bad("EHLO b\xc3\xbc" "cher.de", false, 501, "5.5.2");

    /* verbs that take none */
    const char *noarg[] = { "DATA", "RSET", "QUIT", "STARTTLS" };
    const enum smtp_verb noarg_verb[] = { SMTP_VERB_DATA, SMTP_VERB_RSET, SMTP_VERB_QUIT, SMTP_VERB_STARTTLS };
    for (size_t i = 0; i < 4; i++) {
        char line[64];
        snprintf(line, sizeof line, "%s", noarg[i]);
        ok(line, false, noarg_verb[i]);
        ck_assert_str_eq(cmd.arg, "");
        snprintf(line, sizeof line, "%s ", noarg[i]);
        struct smtp_error err;
        ck_assert_int_eq(smtp_cmd_parse(line, strlen(line), false, &cmd, &err), 0);
        snprintf(line, sizeof line, "%s x", noarg[i]);
        bad(line, false, 501, "5.5.4");
        snprintf(line, sizeof line, "%s  ", noarg[i]);
        bad(line, false, 501, "5.5.4");
    }

    /* verbs that need one */
    bad("VRFY", false, 501, "5.5.4");
    bad("EXPN", false, 501, "5.5.4");
    bad("AUTH", false, 501, "5.5.4");
    bad("AUTH ", false, 501, "5.5.4");
    ok("AUTH PLAIN dGVzdA==", false, SMTP_VERB_AUTH);
    ck_assert_str_eq(cmd.arg, "PLAIN dGVzdA==");
    ok("VRFY <bob@example.com>", false, SMTP_VERB_VRFY);
    ck_assert_str_eq(cmd.arg, "<bob@example.com>");

    /* optional */
    ok("NOOP", false, SMTP_VERB_NOOP);
    ck_assert_str_eq(cmd.arg, "");
    ok("NOOP anything at all", false, SMTP_VERB_NOOP);
    ck_assert_str_eq(cmd.arg, "anything at all");
    ok("HELP MAIL", false, SMTP_VERB_HELP);
    ck_assert_str_eq(cmd.arg, "MAIL");

    /* BDAT size [LAST] */
    ok("BDAT 0", false, SMTP_VERB_BDAT);
    ck_assert_str_eq(cmd.arg, "0");
    ok("BDAT 1000 LAST", false, SMTP_VERB_BDAT);
    ck_assert_str_eq(cmd.arg, "1000 LAST");
    ok("BDAT 12345678901234567890", false, SMTP_VERB_BDAT);
    bad("BDAT", false, 501, "5.5.4");
    bad("BDAT x", false, 501, "5.5.4");
    bad("BDAT -1", false, 501, "5.5.4");
    bad("BDAT 123456789012345678901", false, 501, "5.5.4");
    bad("BDAT 10 FIRST", false, 501, "5.5.4");
    bad("BDAT 10 LAST x", false, 501, "5.5.4");
    bad("BDAT 10  LAST", false, 501, "5.5.4");
    bad("BDAT 10LAST", false, 501, "5.5.4");
}
END_TEST

START_TEST(mail_and_rcpt_paths)
{
    ok("MAIL FROM:<alice@example.com>", false, SMTP_VERB_MAIL);
    ck_assert_str_eq(cmd.path.local, "alice");
    ck_assert_str_eq(cmd.path.domain, "example.com");
    ck_assert(!cmd.null_path);
    ck_assert_uint_eq(cmd.nparams, 0);
    ok("MAIL FROM:<>", false, SMTP_VERB_MAIL);
    ck_assert(cmd.null_path);
    ok("MAIL FROM: <a@b>", false, SMTP_VERB_MAIL);     /* tolerated */
    ok("MAIL FROM:   <a@b>", false, SMTP_VERB_MAIL);
    ok("RCPT TO: <a@b>", false, SMTP_VERB_RCPT);
    ok("MAIL FROM:<a@b> ", false, SMTP_VERB_MAIL);
    ok("MAIL FROM:<@x,@y:a@b>", false, SMTP_VERB_MAIL);
    ck_assert_str_eq(cmd.path.domain, "b");
    ok("RCPT TO:<Postmaster>", false, SMTP_VERB_RCPT);
    ck_assert_int_eq(cmd.path.domain_kind, ADDR_DOMAIN_NONE);
    ok("RCPT TO:<\"a b\"@example.com>", false, SMTP_VERB_RCPT);
    ck_assert(cmd.path.quoted);

    bad("MAIL FROM <a@b>", false, 501, "5.5.2");       /* missing colon */
    bad("RCPT TO <a@b>", false, 501, "5.5.2");
    bad("MAIL", false, 501, "5.5.2");
    bad("RCPT", false, 501, "5.5.2");
    bad("MAIL TO:<a@b>", false, 501, "5.5.2");
    bad("RCPT FROM:<a@b>", false, 501, "5.5.2");
    bad("MAIL  FROM:<a@b>", false, 501, "5.5.2");
    bad("MAIL FROM :<a@b>", false, 501, "5.5.2");
    bad("MAIL FROM:", false, 501, "5.1.7");
    bad("MAIL FROM:<a@b", false, 501, "5.1.7");
    bad("MAIL FROM:<Postmaster>", false, 501, "5.1.7");
    bad("RCPT TO:<>", false, 501, "5.1.3");
    {
        struct smtp_error err;
        ck_assert_int_eq(smtp_cmd_parse("RCPT TO:<>", 10, false, &cmd, &err), -1);
        ck_assert_str_eq(err.text, "Empty recipient address");
    }
    bad("RCPT TO:<a..b@c>", false, 501, "5.1.3");
    bad("RCPT TO:<a@b>x", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b>SIZE=1", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b>\tSIZE=1", false, 501, "5.5.4");
}
END_TEST

START_TEST(bare_paths)
{
    ok("MAIL FROM:alice@example.com", false, SMTP_VERB_MAIL);
    ck_assert(cmd.bare_path);
    ck_assert(!cmd.null_path);
    ck_assert_str_eq(cmd.path.local, "alice");
    ck_assert_str_eq(cmd.path.domain, "example.com");
    ck_assert_uint_eq(cmd.nparams, 0);
    ok("RCPT TO: bob@example.com", false, SMTP_VERB_RCPT);
    ck_assert(cmd.bare_path);
    ck_assert_str_eq(cmd.path.local, "bob");
    ok("rcpt to:   bob@example.com  ", false, SMTP_VERB_RCPT);
    ck_assert(cmd.bare_path);
    ok("RCPT TO:postmaster", false, SMTP_VERB_RCPT);
    ck_assert_int_eq(cmd.path.domain_kind, ADDR_DOMAIN_NONE);
    ok("MAIL FROM:a@[192.0.2.1]", false, SMTP_VERB_MAIL);
    ck_assert_int_eq(cmd.path.domain_kind, ADDR_DOMAIN_IPV4);
    ok("MAIL FROM:<a@b>", false, SMTP_VERB_MAIL);
    ck_assert(!cmd.bare_path);

    /* parameters after a bare address: the address ends at the first space */
    ok("MAIL FROM:a@b SIZE=100 BODY=8BITMIME", false, SMTP_VERB_MAIL);
    ck_assert_str_eq(cmd.path.domain, "b");
    ck_assert_uint_eq(cmd.nparams, 2);
    ck_assert_str_eq(smtp_cmd_param(&cmd, "SIZE")->value, "100");
    ok("RCPT TO:a@b NOTIFY=NEVER", false, SMTP_VERB_RCPT);
    ck_assert_uint_eq(cmd.nparams, 1);
    bad("MAIL FROM:a@b SIZE=1 SIZE=2", false, 501, "5.5.4");
    bad("MAIL FROM:a@b =x", false, 501, "5.5.4");
    /* SMTPUTF8 after a bare address opens UTF-8 in it, as in brackets */
    ok("MAIL FROM:j\xc3\xb6rg@b SMTPUTF8", false, SMTP_VERB_MAIL);
    ck_assert(cmd.path.utf8);
    bad("MAIL FROM:j\xc3\xb6rg@b", false, 501, "5.1.7");
    ok("RCPT TO:j\xc3\xb6rg@b", true, SMTP_VERB_RCPT);

    /* ambiguous or half forms stay errors */
    bad("MAIL FROM:\"a b\"@example.com", false, 501, "5.1.7");   /* quoted local part */
    bad("MAIL FROM:\"ab\"@example.com", false, 501, "5.1.7");
    bad("RCPT TO:\"a>b\"@example.com", false, 501, "5.1.3");
    bad("MAIL FROM:a@b>", false, 501, "5.1.7");                   /* half a Path */
    bad("MAIL FROM:a@b<x@y>", false, 501, "5.1.7");
    bad("RCPT TO:a@b<>", false, 501, "5.1.3");
    bad("MAIL FROM:@x:a@b", false, 501, "5.1.7");                 /* source route */
    bad("MAIL FROM:@x,@y:a@b", false, 501, "5.1.7");
    bad("MAIL FROM:", false, 501, "5.1.7");                       /* not a null path */
    bad("MAIL FROM: ", false, 501, "5.1.7");
    bad("MAIL FROM:  SIZE=1", false, 501, "5.1.7");
    bad("MAIL FROM:postmaster", false, 501, "5.1.7");
    bad("RCPT TO:a", false, 501, "5.1.3");
    bad("RCPT TO:a@", false, 501, "5.1.3");
    bad("RCPT TO:a..b@c", false, 501, "5.1.3");
    bad("RCPT TO:a@b..c", false, 501, "5.1.3");
    bad("MAIL FROM:a@b\tSIZE=1", false, 501, "5.1.7");            /* a tab is not a separator */
    bad("MAIL FROM:a@b,c@d", false, 501, "5.1.7");
    bad_n("MAIL FROM:a@b\0x", 15, false, 500, "5.5.2");
    {
        char line[400];
        memset(line, 'a', sizeof line);
        memcpy(line, "RCPT TO:", 8);
        memcpy(line + 300, "@example.com", 13);
        bad(line, false, 501, "5.1.3");                            /* longer than a Path */
    }
}
END_TEST

START_TEST(parameters)
{
    ok("MAIL FROM:<a@b> SIZE=1000 BODY=8BITMIME", false, SMTP_VERB_MAIL);
    ck_assert_uint_eq(cmd.nparams, 2);
    ck_assert_str_eq(cmd.params[0].key, "SIZE");
    ck_assert_str_eq(cmd.params[0].value, "1000");
    ck_assert_str_eq(smtp_cmd_param(&cmd, "size")->value, "1000");
    ck_assert_str_eq(smtp_cmd_param(&cmd, "Body")->value, "8BITMIME");
    ck_assert_ptr_null(smtp_cmd_param(&cmd, "AUTH"));
    ok("MAIL FROM:<a@b>   SMTPUTF8   X-Y=z  ", false, SMTP_VERB_MAIL);
    ck_assert_uint_eq(cmd.nparams, 2);
    ck_assert_ptr_null(cmd.params[0].value);
    ck_assert_str_eq(cmd.params[1].key, "X-Y");
    ok("RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@c", false, SMTP_VERB_RCPT);
    ck_assert_str_eq(smtp_cmd_param(&cmd, "ORCPT")->value, "rfc822;a+2Bb@c");
    /* esmtp-value: any of %d33-60 / %d62-126 */
    ok("MAIL FROM:<a@b> X=!\"#$%&'()*+,-./:;<>?@[\\]^_`{|}~", false, SMTP_VERB_MAIL);
    ok("MAIL FROM:<a@b> 9X=1", false, SMTP_VERB_MAIL);      /* keyword may start with a digit */
    ok("MAIL FROM:<> AUTH=<>", false, SMTP_VERB_MAIL);

    bad("MAIL FROM:<a@b> SIZE=", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b> =1", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b> -X=1", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b> X_Y=1", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b> X=a=b", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b> X=\x01", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b> X=\x7f", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b> X=\xc3\xa9", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b> X\xc3\xa9=1 SMTPUTF8", false, 501, "5.5.4");
    bad("MAIL FROM:<a@b> SIZE=1 size=2", false, 501, "5.5.4");
    bad("RCPT TO:<a@b> NOTIFY=NEVER notify=NEVER", false, 501, "5.5.4");

    /* SMTP_MAX_PARAMS exactly, then one more */
    char line[512];
    size_t n = (size_t)snprintf(line, sizeof line, "MAIL FROM:<a@b>");
    for (int i = 0; i < SMTP_MAX_PARAMS; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, " P%d=%d", i, i);
    ok(line, false, SMTP_VERB_MAIL);
    ck_assert_uint_eq(cmd.nparams, SMTP_MAX_PARAMS);
    ck_assert_str_eq(cmd.params[SMTP_MAX_PARAMS - 1].value, "15");
    snprintf(line + n, sizeof line - n, " EXTRA");
    bad(line, false, 501, "5.5.4");
}
END_TEST

START_TEST(smtputf8)
{
    const char *mail = "MAIL FROM:<j\xc3\xb6rg@b\xc3\xbc" "cher.example>";
    char line[128];
    bad(mail, false, 501, "5.1.7");
    bad(mail, true, 501, "5.1.7");          /* utf8_ok is for RCPT only */
    snprintf(line, sizeof line, "%s SMTPUTF8", mail);
    ok(line, false, SMTP_VERB_MAIL);
    ck_assert(cmd.path.utf8);
    ck_assert(smtp_cmd_param(&cmd, "SMTPUTF8"));
    snprintf(line, sizeof line, "%s BODY=8BITMIME smtputf8", mail);
    ok(line, false, SMTP_VERB_MAIL);
    snprintf(line, sizeof line, "%s SMTPUTF8X", mail);
    bad(line, false, 501, "5.1.7");
    snprintf(line, sizeof line, "%s X-SMTPUTF8", mail);
    bad(line, false, 501, "5.1.7");
    /* malformed UTF-8 is refused even with SMTPUTF8 */
    bad("MAIL FROM:<j\xc0\xafrg@x> SMTPUTF8", false, 501, "5.1.7");
    bad("MAIL FROM:<j\xed\xa0\x80@x> SMTPUTF8", false, 501, "5.1.7");
    /* with SMTPUTF8 a parameter value may carry UTF-8 */
    ok("MAIL FROM:<a@b> SMTPUTF8 X=\xc3\xa9", false, SMTP_VERB_MAIL);
    bad("MAIL FROM:<a@b> SMTPUTF8 X=\xc3", false, 501, "5.5.4");

    const char *rcpt = "RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b.example>";
    bad(rcpt, false, 501, "5.1.3");
    ok(rcpt, true, SMTP_VERB_RCPT);
    ck_assert(cmd.path.utf8);
    bad("RCPT TO:<\xff@x>", true, 501, "5.1.3");
    /* the parser does not judge which parameters a verb may carry: the session does */
    ok("RCPT TO:<a@b> SMTPUTF8", false, SMTP_VERB_RCPT);
}
END_TEST

START_TEST(raw_bytes_and_length)
{
    bad_n("NOOP\0x", 6, false, 500, "5.5.2");
    bad_n("MAIL FROM:<a@b>\0 SIZE=1", 22, false, 500, "5.5.2");
    bad_n("RCPT TO:<a\0b@c>", 15, false, 500, "5.5.2");
    bad_n("\0", 1, false, 500, "5.5.2");
    bad("NOOP\r", false, 500, "5.5.2");
    bad("NOOP\rQUIT", false, 500, "5.5.2");
    bad("NOOP\nQUIT", false, 500, "5.5.2");
    /* only len bytes are read: a command followed by garbage beyond len is fine */
    ok_n("QUIT and garbage", 4, false, SMTP_VERB_QUIT);

    /* 510 octets of text (512 with CRLF) is the longest legal line */
    char line[600];
    memcpy(line, "NOOP ", 5);
    memset(line + 5, 'x', sizeof line - 5);
    ok_n(line, 510, false, SMTP_VERB_NOOP);
    ck_assert_uint_eq(strlen(cmd.arg), 505);
    bad_n(line, 511, false, 500, "5.5.2");
    bad_n(line, 599, false, 500, "5.5.2");
}
END_TEST

START_TEST(rcpt_after_errors_is_clean)
{
    /* a failed parse must not leave state that a later good parse shows */
    struct smtp_error err;
    ck_assert_int_eq(smtp_cmd_parse("MAIL FROM:<a@b> SIZE=1 X", 24, false, &cmd, &err), 0);
    ck_assert_uint_eq(cmd.nparams, 2);
    ck_assert_int_eq(smtp_cmd_parse("RCPT TO:<c@d>", 13, false, &cmd, &err), 0);
    ck_assert_uint_eq(cmd.nparams, 0);
    ck_assert(!cmd.null_path);
    ck_assert_str_eq(cmd.path.local, "c");
}
END_TEST

Suite *smtp_cmd_suite(void)
{
    Suite *s = suite_create("smtp_cmd");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, verbs_and_case);
    tcase_add_test(tc, unknown_verbs);
    tcase_add_test(tc, arguments);
    tcase_add_test(tc, mail_and_rcpt_paths);
    tcase_add_test(tc, bare_paths);
    tcase_add_test(tc, parameters);
    tcase_add_test(tc, smtputf8);
    tcase_add_test(tc, raw_bytes_and_length);
    tcase_add_test(tc, rcpt_after_errors_is_clean);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(smtp_cmd_suite)

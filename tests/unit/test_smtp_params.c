/*
 * test_smtp_params.c — smtpd/smtp_params.h, fed whole command lines through
 * smtp_cmd_parse.
 *
 * Covers: xtext decoding (hexchars upper-case only, '+'/'=' and non-printables
 * refused, decoded text printable ASCII, the 100-octet ENVID bound); NOTIFY lists
 * (case, NEVER alone, duplicates, empty items); ORCPT rfc822 and utf-8 (RFC 6533
 * \x{HEXPOINT} rules, raw UTF-8 only under SMTPUTF8); every MAIL and RCPT
 * parameter accepted and refused with its exact code; REQUIRETLS only under TLS;
 * parameters after HELO; duplicates refused by the command parser.
 */
#include "smtpd/smtp_cmd.h"
#include "smtpd/smtp_params.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

static struct smtp_cmd cmd;
static struct smtp_error err;

/* Parse a MAIL line and judge its parameters; returns the reply code (250 when ok). */
static int mail(const char *line, bool esmtp, bool tls, struct smtp_mail_params *mp)
{
    if (smtp_cmd_parse(line, strlen(line), false, &cmd, &err) < 0)
        return err.code;
    if (smtp_mail_params(&cmd, esmtp, tls, mp, &err) < 0)
        return err.code;
    return 250;
}

static int rcpt(const char *line, bool utf8, struct smtp_rcpt_params *rp)
{
    if (smtp_cmd_parse(line, strlen(line), utf8, &cmd, &err) < 0)
        return err.code;
    if (smtp_rcpt_params(&cmd, true, utf8, rp, &err) < 0)
        return err.code;
    return 250;
}

static int xt(const char *in, char *out, size_t outsz)
{
    return xtext_decode(in, strlen(in), out, outsz);
}

START_TEST(xtext)
{
    char out[128];
    ck_assert_int_eq(xt("abc", out, sizeof out), 0);
    ck_assert_str_eq(out, "abc");
    ck_assert_int_eq(xt("", out, sizeof out), 0);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(xt("a+2Bb+3Dc+20d", out, sizeof out), 0);
    ck_assert_str_eq(out, "a+b=c d");
    ck_assert_int_eq(xt("+41+7E", out, sizeof out), 0);       /* a plain char may be encoded too */
    ck_assert_str_eq(out, "A~");
    static const char *const bad[] = {
        "a+2b", "+", "+4", "a+", "+G0", "+-1", "a=b", "a b", "+0A", "+00", "+7F", "+80", "+FF",
        "\x7f", "a\x01", "\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(xt(bad[i], out, sizeof out) < 0, "xtext \"%s\" accepted", bad[i]);
    /* bounds: exactly fits, one over */
    ck_assert_int_eq(xt("abcd", out, 5), 0);
    ck_assert_int_lt(xt("abcde", out, 5), 0);
    ck_assert_int_lt(xt("abc+41", out, 4), 0);
    /* a hexchar cut by the length, not by a NUL */
    ck_assert_int_lt(xtext_decode("+41", 2, out, sizeof out), 0);
}
END_TEST

START_TEST(notify)
{
    unsigned f;
    ck_assert_int_eq(smtp_notify_parse("NEVER", &f), 0);
    ck_assert_uint_eq(f, ENV_NOTIFY_NEVER);
    ck_assert_int_eq(smtp_notify_parse("success,Failure,DELAY", &f), 0);
    ck_assert_uint_eq(f, ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY);
    ck_assert_int_eq(smtp_notify_parse("DELAY", &f), 0);
    ck_assert_uint_eq(f, ENV_NOTIFY_DELAY);
    static const char *const bad[] = {
        "", "NEVER,SUCCESS", "SUCCESS,NEVER", "SUCCESS,SUCCESS", "SUCCESS,", ",SUCCESS", "SUCCESS,,DELAY",
        "ALWAYS", "SUCCES", "SUCCESSX", "SUCCESS;DELAY", "NEVER,NEVER",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(smtp_notify_parse(bad[i], &f) < 0, "NOTIFY \"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(orcpt)
{
    enum env_orcpt_type t;
    char out[ENV_ORCPT_MAX + 1];
    const char *why;
    ck_assert_int_eq(smtp_orcpt_parse("rfc822;bob+2Bx@example.org", false, &t, out, sizeof out, &why), 0);
    ck_assert_int_eq(t, ENV_ORCPT_RFC822);
    ck_assert_str_eq(out, "bob+x@example.org");
    ck_assert_int_eq(smtp_orcpt_parse("RFC822;a@b", false, &t, out, sizeof out, &why), 0);
    ck_assert_int_eq(smtp_orcpt_parse("utf-8;j\\x{FC}rgen@example.org", false, &t, out, sizeof out, &why), 0);
    ck_assert_int_eq(t, ENV_ORCPT_UTF8);
    ck_assert_str_eq(out, "j\xc3\xbcrgen@example.org");
    ck_assert_int_eq(smtp_orcpt_parse("UTF-8;a\\x{20}b\\x{2B}\\x{3D}\\x{5C}\\x{1F600}\\x{10FFFF}", false, &t, out,
                                      sizeof out, &why), 0);
    ck_assert_str_eq(out, "a b+=\\\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf");
    ck_assert_int_eq(smtp_orcpt_parse("utf-8;j\xc3\xbcrgen@example.org", true, &t, out, sizeof out, &why), 0);
    ck_assert_str_eq(out, "j\xc3\xbcrgen@example.org");
    static const char *const bad[] = {
        "a@b", ";a@b", "x400;a@b", "rfc822;", "rfc822;a+2bb", "rfc822;a+0Ab", "rfc822 ;a@b",
        "utf-8;", "utf-8;a+b", "utf-8;a\\b", "utf-8;a\\x{41}", "utf-8;a\\x{0A}", "utf-8;a\\x{7F}",
        "utf-8;a\\x{D800}", "utf-8;a\\x{110000}", "utf-8;a\\x{00FC}", "utf-8;a\\x{F}", "utf-8;a\\x{1234567}",
        "utf-8;a\\x{FC", "utf-8;a\\X{FC}", "utf-8;a\\x(FC)", "utf-8;a\\x{}", "utf-8;j\xc3\xbcrgen@x",
        "utf8;a@b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(smtp_orcpt_parse(bad[i], false, &t, out, sizeof out, &why) < 0, "ORCPT \"%s\" accepted", bad[i]);
    /* the decoded bound */
    char small[4];
    ck_assert_int_lt(smtp_orcpt_parse("rfc822;abcd", false, &t, small, sizeof small, &why), 0);
    ck_assert_int_lt(smtp_orcpt_parse("utf-8;ab\\x{FC}", false, &t, small, sizeof small, &why), 0);
    ck_assert_int_eq(smtp_orcpt_parse("utf-8;abc", false, &t, small, sizeof small, &why), 0);
}
END_TEST

START_TEST(mail_params)
{
    struct smtp_mail_params mp;
    ck_assert_int_eq(mail("MAIL FROM:<a@b.example> RET=hdrs ENVID=QQ+2B1 SIZE=10 BODY=8BITMIME", true, false, &mp),
                     250);
    ck_assert_int_eq(mp.ret, ENV_RET_HDRS);
    ck_assert_str_eq(mp.envid, "QQ+1");
    ck_assert_uint_eq(mp.size, 10);
    ck_assert(mp.body_8bit);
    ck_assert(!mp.requiretls);
    ck_assert_int_eq(mail("MAIL FROM:<> RET=FULL", true, false, &mp), 250);
    ck_assert_int_eq(mp.ret, ENV_RET_FULL);
    ck_assert_str_eq(mp.envid, "");
    ck_assert_int_eq(mail("MAIL FROM:<a@b.example>", true, false, &mp), 250);
    ck_assert_int_eq(mp.ret, ENV_RET_UNSET);

    /* ENVID: 100 decoded characters, not 101; encoded length does not count */
    char line[512], id[128];
    memset(id, 'x', 100);
    id[100] = '\0';
    snprintf(line, sizeof line, "MAIL FROM:<a@b.example> ENVID=%s", id);
    ck_assert_int_eq(mail(line, true, false, &mp), 250);
    ck_assert_uint_eq(strlen(mp.envid), 100);
    snprintf(line, sizeof line, "MAIL FROM:<a@b.example> ENVID=%sx", id);
    ck_assert_int_eq(mail(line, true, false, &mp), 501);
    snprintf(line, sizeof line, "MAIL FROM:<a@b.example> ENVID=+2B%.99s", id);
    ck_assert_int_eq(mail(line, true, false, &mp), 250);

    /* REQUIRETLS: only under TLS */
    ck_assert_int_eq(mail("MAIL FROM:<a@b.example> REQUIRETLS", true, false, &mp), 530);
    ck_assert_str_eq(err.enhanced, "5.7.10");
    ck_assert_int_eq(mail("MAIL FROM:<a@b.example> REQUIRETLS", true, true, &mp), 250);
    ck_assert(mp.requiretls);
    ck_assert_int_eq(mail("MAIL FROM:<a@b.example> REQUIRETLS=YES", true, true, &mp), 501);

    static const struct {
        const char *line;
        int code;
    } bad[] = {
        { "MAIL FROM:<a@b.example> RET=ALL", 501 },
        { "MAIL FROM:<a@b.example> RET", 501 },
        { "MAIL FROM:<a@b.example> RET=FULL RET=HDRS", 501 },
        { "MAIL FROM:<a@b.example> RET=FULL ret=FULL", 501 },
        { "MAIL FROM:<a@b.example> ENVID", 501 },
        { "MAIL FROM:<a@b.example> ENVID=", 501 },
        { "MAIL FROM:<a@b.example> ENVID=a+2bc", 501 },
        { "MAIL FROM:<a@b.example> ENVID=a+0Dc", 501 },
        { "MAIL FROM:<a@b.example> ENVID=a+b", 501 },
        { "MAIL FROM:<a@b.example> ENVID=a ENVID=b", 501 },
        { "MAIL FROM:<a@b.example> BODY=BINARYMIME", 504 },
        { "MAIL FROM:<a@b.example> BODY=9BIT", 501 },
        { "MAIL FROM:<a@b.example> SIZE=x", 501 },
        { "MAIL FROM:<a@b.example> SIZE=1 SIZE=2", 501 },
        { "MAIL FROM:<a@b.example> SMTPUTF8=1", 501 },
        { "MAIL FROM:<a@b.example> NOTIFY=NEVER", 555 },
        { "MAIL FROM:<a@b.example> FOO=BAR", 555 },
        { "MAIL FROM:<a@b.example> X-FOO", 555 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int code = mail(bad[i].line, true, true, &mp);
        ck_assert_msg(code == bad[i].code, "\"%s\": %d, expected %d", bad[i].line, code, bad[i].code);
        ck_assert_msg(err.enhanced[0] == '5' && !strcmp(err.enhanced + 1, ".5.4"), "\"%s\": %s", bad[i].line,
                      err.enhanced);
    }
    /* parameters after HELO */
    ck_assert_int_eq(mail("MAIL FROM:<a@b.example> RET=FULL", false, false, &mp), 555);
    ck_assert_int_eq(mail("MAIL FROM:<a@b.example>", false, false, &mp), 250);
}
END_TEST

START_TEST(rcpt_params)
{
    struct smtp_rcpt_params rp;
    ck_assert_int_eq(rcpt("RCPT TO:<bob@example.org> NOTIFY=success,delay ORCPT=rfc822;Bob+40example.org", false,
                          &rp), 250);
    ck_assert_uint_eq(rp.notify, ENV_NOTIFY_SUCCESS | ENV_NOTIFY_DELAY);
    ck_assert_int_eq(rp.orcpt_type, ENV_ORCPT_RFC822);
    ck_assert_str_eq(rp.orcpt, "Bob@example.org");
    ck_assert_int_eq(rcpt("RCPT TO:<bob@example.org>", false, &rp), 250);
    ck_assert_uint_eq(rp.notify, 0);
    ck_assert_int_eq(rp.orcpt_type, ENV_ORCPT_NONE);
    ck_assert_int_eq(rcpt("RCPT TO:<b\xc3\xb6@example.org> ORCPT=utf-8;b\xc3\xb6@example.org", true, &rp), 250);
    ck_assert_str_eq(rp.orcpt, "b\xc3\xb6@example.org");

    static const struct {
        const char *line;
        int code;
    } bad[] = {
        { "RCPT TO:<b@example.org> NOTIFY=NEVER,FAILURE", 501 },
        { "RCPT TO:<b@example.org> NOTIFY=FAILURE,FAILURE", 501 },
        { "RCPT TO:<b@example.org> NOTIFY=SOMETIMES", 501 },
        { "RCPT TO:<b@example.org> NOTIFY", 501 },
        { "RCPT TO:<b@example.org> NOTIFY=NEVER NOTIFY=NEVER", 501 },
        { "RCPT TO:<b@example.org> ORCPT=rfc822;a@b ORCPT=rfc822;a@b", 501 },
        { "RCPT TO:<b@example.org> ORCPT=x400;a", 501 },
        { "RCPT TO:<b@example.org> ORCPT=a@b", 501 },
        { "RCPT TO:<b@example.org> ORCPT", 501 },
        { "RCPT TO:<b@example.org> ORCPT=rfc822;a+2bb", 501 },
        { "RCPT TO:<b@example.org> ORCPT=utf-8;a\\x{41}", 501 },
        { "RCPT TO:<b@example.org> RET=FULL", 555 },
        { "RCPT TO:<b@example.org> FOO", 555 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int code = rcpt(bad[i].line, false, &rp);
        ck_assert_msg(code == bad[i].code, "\"%s\": %d, expected %d", bad[i].line, code, bad[i].code);
        ck_assert_str_eq(err.enhanced + 1, ".5.4");
    }
    /* raw UTF-8 in ORCPT without SMTPUTF8 never gets past the command parser */
    ck_assert_int_eq(rcpt("RCPT TO:<b@example.org> ORCPT=utf-8;b\xc3\xb6@example.org", false, &rp), 501);
    /* after HELO */
    ck_assert_int_eq(smtp_cmd_parse("RCPT TO:<b@example.org> NOTIFY=NEVER", 36, false, &cmd, &err), 0);
    ck_assert_int_lt(smtp_rcpt_params(&cmd, false, false, &rp, &err), 0);
    ck_assert_int_eq(err.code, 555);
}
END_TEST

/* DMTP (receiver-pull): a known keyword only when pull_mode is on. */
START_TEST(mail_dmtp)
{
    struct smtp_mail_params mp;
    const char *line = "MAIL FROM:<a@b.example> SIZE=10 DMTP";
    ck_assert_int_eq(smtp_cmd_parse(line, strlen(line), false, &cmd, &err), 0);
    ck_assert_int_eq(smtp_mail_params(&cmd, true, false, &mp, &err), -1);
    ck_assert_int_eq(err.code, 555);
    ck_assert_int_eq(smtp_mail_params_dmtp(&cmd, true, false, false, &mp, &err), -1);
    ck_assert_int_eq(smtp_mail_params_dmtp(&cmd, true, false, true, &mp, &err), 0);
    ck_assert(mp.dmtp);
    ck_assert_int_eq((int)mp.size, 10);
    line = "MAIL FROM:<a@b.example> dmtp";
    ck_assert_int_eq(smtp_cmd_parse(line, strlen(line), false, &cmd, &err), 0);
    ck_assert_int_eq(smtp_mail_params_dmtp(&cmd, true, false, true, &mp, &err), 0);
    ck_assert(mp.dmtp);
    line = "MAIL FROM:<a@b.example> DMTP=yes";
    ck_assert_int_eq(smtp_cmd_parse(line, strlen(line), false, &cmd, &err), 0);
    ck_assert_int_eq(smtp_mail_params_dmtp(&cmd, true, false, true, &mp, &err), -1);
    ck_assert_int_eq(err.code, 501);
    line = "MAIL FROM:<a@b.example>";
    ck_assert_int_eq(smtp_cmd_parse(line, strlen(line), false, &cmd, &err), 0);
    ck_assert_int_eq(smtp_mail_params_dmtp(&cmd, true, false, true, &mp, &err), 0);
    ck_assert(!mp.dmtp);
    line = "MAIL FROM:<a@b.example> DMTP";
    ck_assert_int_eq(smtp_cmd_parse(line, strlen(line), false, &cmd, &err), 0);
    ck_assert_int_eq(smtp_mail_params_dmtp(&cmd, false, false, true, &mp, &err), -1);   /* after HELO */
    ck_assert_int_eq(err.code, 555);
}
END_TEST

Suite *smtp_params_suite(void)
{
    Suite *s = suite_create("smtp_params");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, xtext);
    tcase_add_test(tc, notify);
    tcase_add_test(tc, orcpt);
    tcase_add_test(tc, mail_params);
    tcase_add_test(tc, mail_dmtp);
    tcase_add_test(tc, rcpt_params);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(smtp_params_suite)

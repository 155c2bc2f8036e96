/*
 * test_smtp_cmds.c — delivery/smtp_cmds.h: command lines and the DATA body encoder.
 *
 * Covers: xtext and utf-8-addr-xtext (checked by decoding them again with the
 * server side's own parser), MAIL/RCPT parameters present only when the peer
 * offers the extension and the envelope needs it, the length bound, and the body
 * encoder fed every split of tricky inputs (leading dots, bare LF/CR, CRLF split
 * between chunks, a last line without its end, an empty message).
 */
#include "delivery/smtp_cmds.h"
#include "smtpd/smtp_params.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(xtext)
{
    char out[64];
    ck_assert_int_eq(smtp_xtext_encode("a+b=c d\x7f", out, sizeof out), 0);
    ck_assert_str_eq(out, "a+2Bb+3Dc+20d+7F");
    char back[64];
    ck_assert_int_eq(xtext_decode("a+2Bb+3Dc", 9, back, sizeof back), 0);
    ck_assert_str_eq(back, "a+b=c");
    ck_assert_int_eq(smtp_xtext_encode("abc", out, 4), 0);
    ck_assert_int_eq(smtp_xtext_encode("abc", out, 3), -1);
    ck_assert_int_eq(smtp_xtext_encode("a+", out, 3), -1);
}
END_TEST

START_TEST(utf8_xtext)
{
    char out[128];
    ck_assert_int_eq(smtp_utf8_xtext_encode("j\xc3\xb6rg+x=\\@b\xc3\xa4r.test", out, sizeof out), 0);
    ck_assert_str_eq(out, "j\\x{F6}rg\\x{2B}x\\x{3D}\\x{5C}@b\\x{E4}r.test");
    /* the server side's parser reads it back to the same UTF-8 */
    enum env_orcpt_type t;
    char back[128], param[160];
    const char *why = NULL;
    snprintf(param, sizeof param, "utf-8;%s", out);
    ck_assert_msg(smtp_orcpt_parse(param, false, &t, back, sizeof back, &why) == 0, "%s", why);
    ck_assert_str_eq(back, "j\xc3\xb6rg+x=\\@b\xc3\xa4r.test");
    ck_assert_int_eq(smtp_utf8_xtext_encode("\xf0\x9f\x98\x80@x", out, sizeof out), 0);
    ck_assert_str_eq(out, "\\x{1F600}@x");
    ck_assert_int_eq(smtp_utf8_xtext_encode("a b", out, sizeof out), 0);
    ck_assert_str_eq(out, "a\\x{20}b");
    /* malformed UTF-8, overlong, surrogate, control */
    const char *bad[] = {"\xc3", "\xc0\xaf", "\xed\xa0\x80", "a\tb", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(smtp_utf8_xtext_encode(bad[i], out, sizeof out), -1);
    ck_assert_int_eq(smtp_utf8_xtext_encode("\xc3\xb6", out, 6), -1);
}
END_TEST

static struct envelope env;

static void setup(void)
{
    env_init(&env);
    strcpy(env.sender, "alice@a.test");
    env.size = 1234;
    ck_assert_int_eq(env_add_rcpt(&env, "bob@b.test"), 0);
}

static void teardown(void)
{
    env_free(&env);
}

START_TEST(mail_params)
{
    struct smtp_ehlo none, all;
    memset(&none, 0, sizeof none);
    memset(&all, 0, sizeof all);
    all.size = all.eightbitmime = all.smtputf8 = all.dsn = all.requiretls = true;
    char out[SMTP_CMD_MAX];
    ck_assert_int_eq(smtp_build_mail(&env, &none, out, sizeof out), 26);
    ck_assert_str_eq(out, "MAIL FROM:<alice@a.test>\r\n");
    ck_assert_int_eq(smtp_build_mail(&env, &all, out, sizeof out), (int)strlen(out));
    ck_assert_str_eq(out, "MAIL FROM:<alice@a.test> SIZE=1234\r\n");
    env.body_8bit = env.smtputf8 = env.requiretls = true;
    env.ret = ENV_RET_HDRS;
    strcpy(env.envid, "id+1=x");
    smtp_build_mail(&env, &all, out, sizeof out);
    ck_assert_str_eq(out, "MAIL FROM:<alice@a.test> SIZE=1234 BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=HDRS "
                          "ENVID=id+2B1+3Dx\r\n");
    smtp_build_mail(&env, &none, out, sizeof out);
    ck_assert_str_eq(out, "MAIL FROM:<alice@a.test>\r\n");
    env.sender[0] = '\0';
    env.ret = ENV_RET_FULL;
    env.envid[0] = '\0';
    all.size = false;
    env.body_8bit = env.smtputf8 = env.requiretls = false;
    smtp_build_mail(&env, &all, out, sizeof out);
    ck_assert_str_eq(out, "MAIL FROM:<> RET=FULL\r\n");
    ck_assert_int_eq(smtp_build_mail(&env, &all, out, 10), -1);
}
END_TEST

START_TEST(rcpt_params)
{
    struct smtp_ehlo none, dsn;
    memset(&none, 0, sizeof none);
    memset(&dsn, 0, sizeof dsn);
    dsn.dsn = true;
    char out[SMTP_CMD_MAX];
    struct env_rcpt *r = &env.rcpts[0];
    smtp_build_rcpt(r, &dsn, out, sizeof out);
    ck_assert_str_eq(out, "RCPT TO:<bob@b.test>\r\n");
    r->notify = ENV_NOTIFY_SUCCESS | ENV_NOTIFY_FAILURE;
    r->orcpt_type = ENV_ORCPT_RFC822;
    strcpy(r->orcpt, "Bob+x@b.test");
    smtp_build_rcpt(r, &dsn, out, sizeof out);
    ck_assert_str_eq(out, "RCPT TO:<bob@b.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+2Bx@b.test\r\n");
    smtp_build_rcpt(r, &none, out, sizeof out);
    ck_assert_str_eq(out, "RCPT TO:<bob@b.test>\r\n");
    r->notify = ENV_NOTIFY_NEVER;
    r->orcpt_type = ENV_ORCPT_UTF8;
    strcpy(r->orcpt, "b\xc3\xb6@b.test");
    smtp_build_rcpt(r, &dsn, out, sizeof out);
    ck_assert_str_eq(out, "RCPT TO:<bob@b.test> NOTIFY=NEVER ORCPT=utf-8;b\\x{F6}@b.test\r\n");
    /* a stored value that cannot be encoded is left out */
    strcpy(r->orcpt, "b\xc3@b.test");
    smtp_build_rcpt(r, &dsn, out, sizeof out);
    ck_assert_str_eq(out, "RCPT TO:<bob@b.test> NOTIFY=NEVER\r\n");
}
END_TEST

/* Encodes s in chunks of step octets (0: whole) and returns the result (static). */
static const char *body(const char *s, size_t len, size_t step)
{
    static char out[4096];
    struct smtp_body b;
    smtp_body_init(&b);
    size_t o = 0;
    for (size_t off = 0; off < len;) {
        size_t n = step && step < len - off ? step : len - off;
        size_t w = smtp_body_encode(&b, s + off, n, out + o);
        ck_assert_uint_le(w, 2 * n + 1);
        o += w;
        off += n;
    }
    o += smtp_body_finish(&b, out + o);
    out[o] = '\0';
    return out;
}

static void body_case(const char *in, const char *want)
{
    size_t len = strlen(in);
    ck_assert_str_eq(body(in, len, 0), want);
    for (size_t step = 1; step < len; step++)
        ck_assert_msg(!strcmp(body(in, len, step), want), "step %zu: %s", step, body(in, len, step));
}

START_TEST(body_encoding)
{
    body_case("", ".\r\n");
    body_case("a\r\n", "a\r\n.\r\n");
    body_case("a", "a\r\n.\r\n");
    body_case(".\r\n", "..\r\n.\r\n");
    body_case("a\r\n.\r\n..x\r\n.", "a\r\n..\r\n...x\r\n..\r\n.\r\n");
    body_case("a.b\r\n x.\r\n", "a.b\r\n x.\r\n.\r\n");
    body_case("bare\nlf\n.dot", "bare\r\nlf\r\n..dot\r\n.\r\n");
    body_case("bare\rcr\r.x\r", "bare\r\ncr\r\n..x\r\n.\r\n");
    body_case("\r\n\r\n", "\r\n\r\n.\r\n");
    body_case("8bit \xc3\xa4\r\n", "8bit \xc3\xa4\r\n.\r\n");
}
END_TEST

START_TEST(body_worst_case)
{
    /* every octet needing the most room */
    char in[64], out[2 * 64 + 1];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = i % 2 ? '.' : '\r';
    struct smtp_body b;
    smtp_body_init(&b);
    size_t w = smtp_body_encode(&b, in, sizeof in, out);
    ck_assert_uint_le(w, sizeof out);
    ck_assert_uint_eq(w, 32 * 4);
}
END_TEST

/* The encoder as the RFC states it, one octet at a time: the oracle the span-copying
   smtp_body_encode is compared with. */
static size_t body_reference(const char *in, size_t n, char *out)
{
    enum { START, MID, CR } st = START;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (st == CR) {
            out[o++] = '\n';
            st = START;
            if (c == '\n')
                continue;
        }
        if (c == '\r') {
            out[o++] = '\r';
            st = CR;
        } else if (c == '\n') {
            out[o++] = '\r';
            out[o++] = '\n';
            st = START;
        } else {
            if (c == '.' && st == START)
                out[o++] = '.';
            out[o++] = c;
            st = MID;
        }
    }
    if (st == CR)
        out[o++] = '\n';
    else if (st == MID) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    return o + 3;
}

START_TEST(body_matches_reference)
{
    /* random bodies over an alphabet rich in CR, LF and dots, cut at random points */
    static char in[3000], want[2 * sizeof in + 8], got[2 * sizeof in + 8];
    static const char alphabet[] = "\r\n.\r\n.ab \xc3";
    unsigned seed = 12345;
    for (int round = 0; round < 400; round++) {
        size_t len = (size_t)(rand_r(&seed) % sizeof in);
        for (size_t i = 0; i < len; i++)
            in[i] = rand_r(&seed) % 4 ? alphabet[rand_r(&seed) % (sizeof alphabet - 1)] : (char)('a' + i % 26);
        size_t wn = body_reference(in, len, want);
        struct smtp_body b;
        smtp_body_init(&b);
        size_t o = 0;
        for (size_t off = 0; off < len;) {
            size_t n = 1 + (size_t)(rand_r(&seed) % 700);
            if (n > len - off)
                n = len - off;
            size_t w = smtp_body_encode(&b, in + off, n, got + o);
            ck_assert_uint_le(w, 2 * n + 1);
            o += w;
            off += n;
        }
        o += smtp_body_finish(&b, got + o);
        ck_assert_uint_eq(o, wn);
        ck_assert_msg(memcmp(got, want, wn) == 0, "round %d differs", round);
    }
}
END_TEST

Suite *smtp_cmds_suite(void)
{
    Suite *s = suite_create("smtp_cmds");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, xtext);
    tcase_add_test(tc, utf8_xtext);
    tcase_add_test(tc, mail_params);
    tcase_add_test(tc, rcpt_params);
    tcase_add_test(tc, body_encoding);
    tcase_add_test(tc, body_worst_case);
    tcase_add_test(tc, body_matches_reference);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(smtp_cmds_suite)

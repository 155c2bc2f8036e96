/*
 * test_smtp_reply.c — delivery/smtp_reply.h fed raw bytes, split at every offset.
 *
 * Covers: one-line and multi-line replies, a bare code, LF-only line ends, several
 * replies in one read, enhanced status codes (present, absent, class mismatch,
 * malformed), every kind of garbage (bad code, bad separator, code change, NUL,
 * bare CR, long line, too many lines, too much text), the sticky error state,
 * flattening for DSNs, and the EHLO keyword list (sizes, AUTH forms, case).
 */
#include "delivery/smtp_reply.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feeds s in pieces of `step` octets (0: all at once); collects up to 8 replies.
   Returns the number of replies, or -1 on a parse error. */
static int feed_split(const char *s, size_t len, size_t step, struct smtp_reply *out, size_t max)
{
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    size_t off = 0;
    int n = 0;
    while (off < len) {
        size_t piece = step ? step : len;
        if (piece > len - off)
            piece = len - off;
        size_t pos = 0;
        while (pos < piece) {
            size_t used = 0;
            char err[128];
            enum smtp_feed_result r = smtp_reply_feed(&p, s + off + pos, piece - pos, &used, &out[n], err,
                                                      sizeof err);
            ck_assert(used <= piece - pos);
            if (r == SMTP_FEED_ERROR) {
                ck_assert(err[0] != '\0');
                return -1;
            }
            pos += used;
            if (r == SMTP_FEED_REPLY) {
                n++;
                ck_assert((size_t)n <= max);
            } else {
                ck_assert_uint_eq(pos, piece);
            }
        }
        off += piece;
    }
    return n;
}

/* Every split of s must give the same replies as feeding it whole. */
static int feed_all_splits(const char *s, struct smtp_reply *out, size_t max)
{
    size_t len = strlen(s);
    int whole = feed_split(s, len, 0, out, max);
    for (size_t step = 1; step < len; step++) {
        struct smtp_reply again[8];
        int n = feed_split(s, len, step, again, 8);
        ck_assert_int_eq(n, whole);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(again[i].code, out[i].code);
            ck_assert_str_eq(again[i].text, out[i].text);
            ck_assert_str_eq(again[i].enhanced, out[i].enhanced);
        }
    }
    return whole;
}

START_TEST(one_line)
{
    struct smtp_reply r[8];
    ck_assert_int_eq(feed_all_splits("250 2.1.0 Ok\r\n", r, 8), 1);
    ck_assert_int_eq(r[0].code, 250);
    ck_assert_str_eq(r[0].enhanced, "2.1.0");
    ck_assert_str_eq(r[0].text, "250 2.1.0 Ok");
    ck_assert_uint_eq(r[0].nlines, 1);
}
END_TEST

START_TEST(multi_line)
{
    struct smtp_reply r[8];
    ck_assert_int_eq(feed_all_splits("550-5.1.1 The mailbox\r\n550-is unknown\r\n550 5.1.1 go away\r\n", r, 8),
                     1);
    ck_assert_int_eq(r[0].code, 550);
    ck_assert_str_eq(r[0].enhanced, "5.1.1");
    ck_assert_str_eq(r[0].text, "550-5.1.1 The mailbox\n550-is unknown\n550 5.1.1 go away");
    ck_assert_uint_eq(r[0].nlines, 3);
    char flat[256];
    smtp_reply_flatten(&r[0], flat, sizeof flat);
    ck_assert_str_eq(flat, "550 5.1.1 The mailbox is unknown 5.1.1 go away");
}
END_TEST

START_TEST(bare_code_and_lf)
{
    struct smtp_reply r[8];
    ck_assert_int_eq(feed_all_splits("354\r\n221 bye\n250-a\n250\r\n", r, 8), 3);
    ck_assert_int_eq(r[0].code, 354);
    ck_assert_str_eq(r[0].text, "354");
    ck_assert_str_eq(r[0].enhanced, "");
    ck_assert_int_eq(r[1].code, 221);
    ck_assert_str_eq(r[1].text, "221 bye");
    ck_assert_int_eq(r[2].code, 250);
    ck_assert_str_eq(r[2].text, "250-a\n250");
}
END_TEST

START_TEST(incomplete_is_more)
{
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    struct smtp_reply r;
    size_t used;
    char err[128];
    ck_assert(!smtp_reply_pending(&p));
    ck_assert_int_eq(smtp_reply_feed(&p, "250-first\r\n250 sec", 18, &used, &r, err, sizeof err), SMTP_FEED_MORE);
    ck_assert_uint_eq(used, 18);
    ck_assert(smtp_reply_pending(&p));
    ck_assert_int_eq(smtp_reply_feed(&p, "ond\r\n220 x\r\n", 12, &used, &r, err, sizeof err), SMTP_FEED_REPLY);
    ck_assert_uint_eq(used, 5);
    ck_assert_str_eq(r.text, "250-first\n250 second");
    ck_assert(!smtp_reply_pending(&p));
}
END_TEST

START_TEST(enhanced_codes)
{
    struct smtp_reply r[8];
    ck_assert_int_eq(feed_all_splits("451 4.7.1 try later\r\n", r, 8), 1);
    ck_assert_str_eq(r[0].enhanced, "4.7.1");
    /* class differs from the reply's: not trusted */
    ck_assert_int_eq(feed_all_splits("550 2.1.5 odd\r\n", r, 8), 1);
    ck_assert_str_eq(r[0].enhanced, "");
    /* malformed ones */
    const char *bad[] = {"550 5.1 x\r\n", "550 5..1 x\r\n", "550 5.1.1234 x\r\n", "550 5.1.1x\r\n",
                         "550 6.1.1 x\r\n", "550 x5.1.1\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(feed_all_splits(bad[i], r, 8), 1);
        ck_assert_msg(r[0].enhanced[0] == '\0', "%s gave %s", bad[i], r[0].enhanced);
    }
    ck_assert_int_eq(feed_all_splits("250 2.0.0\r\n", r, 8), 1);
    ck_assert_str_eq(r[0].enhanced, "2.0.0");
    ck_assert_int_eq(feed_all_splits("550 5.100.200 big\r\n", r, 8), 1);
    ck_assert_str_eq(r[0].enhanced, "5.100.200");
    char buf[16];
    ck_assert_int_eq(feed_all_splits("421 closing\r\n", r, 8), 1);
    ck_assert_str_eq(smtp_reply_status(&r[0], buf, sizeof buf), "4.0.0");
}
END_TEST

START_TEST(garbage)
{
    struct smtp_reply r[8];
    const char *bad[] = {
        "hello\r\n", "25\r\n", "2500 x\r\n", "650 x\r\n", "160 x\r\n", "270 x\r\n", "25a x\r\n", "250_x\r\n",
        "250-a\r\n251 b\r\n", "250-a\r\nxyz\r\n", "\r\n", "250 a\rb\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(feed_all_splits(bad[i], r, 8) == -1, "accepted: %s", bad[i]);
    /* NUL inside a line */
    ck_assert_int_eq(feed_split("250 a\0b\r\n", 9, 0, r, 8), -1);
}
END_TEST

START_TEST(sticky_error)
{
    struct smtp_reply_parser p;
    smtp_reply_parser_init(&p);
    struct smtp_reply r;
    size_t used;
    char err[128];
    ck_assert_int_eq(smtp_reply_feed(&p, "xx\r\n", 4, &used, &r, err, sizeof err), SMTP_FEED_ERROR);
    ck_assert_int_eq(smtp_reply_feed(&p, "250 ok\r\n", 8, &used, &r, err, sizeof err), SMTP_FEED_ERROR);
}
END_TEST

START_TEST(limits)
{
    static struct smtp_reply r[8];
    /* a line at the limit passes, one octet more fails, even with no end in sight */
    size_t n = SMTP_REPLY_LINE_MAX;
    char *line = malloc(n + 3);
    memset(line, 'a', n);
    memcpy(line, "250 ", 4);
    memcpy(line + n, "\r\n", 3);
    ck_assert_int_eq(feed_split(line, n + 2, 0, r, 8), 1);
    ck_assert_uint_eq(r[0].len, n);
    line[n] = 'a';
    ck_assert_int_eq(feed_split(line, n + 2, 0, r, 8), -1);
    ck_assert_int_eq(feed_split(line, n + 1, 7, r, 8), -1);
    free(line);

    /* too many lines */
    char *many = malloc((SMTP_REPLY_MAX_LINES + 1) * 8 + 1);
    char *p = many;
    for (int i = 0; i < SMTP_REPLY_MAX_LINES; i++)
        p += sprintf(p, "250-x\r\n");
    strcpy(p, "250 x\r\n");
    ck_assert_int_eq(feed_split(many, strlen(many), 0, r, 8), -1);
    /* exactly at the limit */
    ck_assert_int_eq(feed_split(many + 7, strlen(many + 7), 0, r, 8), 1);
    ck_assert_uint_eq(r[0].nlines, SMTP_REPLY_MAX_LINES);
    free(many);

    /* too much text in total: 10 lines of 1000 octets */
    char *big = malloc(11 * 1003);
    p = big;
    for (int i = 0; i < 10; i++) {
        p += sprintf(p, "250%c", i == 9 ? ' ' : '-');
        memset(p, 'b', 996);
        p += 996;
        p += sprintf(p, "\r\n");
    }
    ck_assert_int_eq(feed_split(big, (size_t)(p - big), 0, r, 8), -1);
    free(big);
}
END_TEST

static struct smtp_ehlo ehlo_of(const char *s)
{
    struct smtp_reply r[8];
    ck_assert_int_eq(feed_all_splits(s, r, 8), 1);
    struct smtp_ehlo e;
    ck_assert_int_eq(smtp_ehlo_parse(&r[0], &e), 0);
    return e;
}

START_TEST(ehlo_keywords)
{
    struct smtp_ehlo e = ehlo_of("250-mx.example.test hello PIPELINING\r\n250-pipelining\r\n250-SIZE 10485760\r\n"
                                 "250-8BITMIME\r\n250-SMTPUTF8\r\n250-CHUNKING\r\n250-DSN\r\n250-STARTTLS\r\n"
                                 "250-ENHANCEDSTATUSCODES\r\n250-AUTH PLAIN LOGIN CRAM-MD5 FOO\r\n"
                                 "250 REQUIRETLS\r\n");
    ck_assert(e.pipelining && e.size && e.eightbitmime && e.smtputf8 && e.chunking && e.dsn && e.starttls &&
              e.enhancedstatuscodes && e.requiretls);
    ck_assert_uint_eq(e.size_limit, 10485760);
    ck_assert_uint_eq(e.auth, SMTP_AUTH_PLAIN | SMTP_AUTH_LOGIN | SMTP_AUTH_CRAM_MD5 | SMTP_AUTH_OTHER);
    ck_assert(!e.binarymime);
}
END_TEST

START_TEST(ehlo_greeting_only_and_odd_forms)
{
    /* the greeting line names no extension, even if it looks like one */
    struct smtp_ehlo e = ehlo_of("250 PIPELINING\r\n");
    ck_assert(!e.pipelining);
    e = ehlo_of("250-host\r\n250-size\r\n250-AUTH=login xoauth2\r\n250 8bitmimex\r\n");
    ck_assert(e.size);
    ck_assert_uint_eq(e.size_limit, 0);
    ck_assert_uint_eq(e.auth, SMTP_AUTH_LOGIN | SMTP_AUTH_XOAUTH2);
    ck_assert(!e.eightbitmime);
    e = ehlo_of("250-host\r\n250-SIZE junk\r\n250 SIZE 99999999999999999999999\r\n");
    ck_assert(e.size);
    ck_assert_uint_eq(e.size_limit, 0);

    struct smtp_reply r[8];
    ck_assert_int_eq(feed_all_splits("502 5.5.1 no EHLO\r\n", r, 8), 1);
    ck_assert_int_eq(smtp_ehlo_parse(&r[0], &e), -1);
}
END_TEST

START_TEST(flatten_bounds)
{
    struct smtp_reply r[8];
    ck_assert_int_eq(feed_all_splits("250-a\tb\r\n250 c\r\n", r, 8), 1);
    char out[8];
    smtp_reply_flatten(&r[0], out, sizeof out);
    ck_assert_str_eq(out, "250 a?b");
    char big[64];
    smtp_reply_flatten(&r[0], big, sizeof big);
    ck_assert_str_eq(big, "250 a?b c");
}
END_TEST

Suite *smtp_reply_suite(void)
{
    Suite *s = suite_create("smtp_reply");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, one_line);
    tcase_add_test(tc, multi_line);
    tcase_add_test(tc, bare_code_and_lf);
    tcase_add_test(tc, incomplete_is_more);
    tcase_add_test(tc, enhanced_codes);
    tcase_add_test(tc, garbage);
    tcase_add_test(tc, sticky_error);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, ehlo_keywords);
    tcase_add_test(tc, ehlo_greeting_only_and_odd_forms);
    tcase_add_test(tc, flatten_bounds);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(smtp_reply_suite)

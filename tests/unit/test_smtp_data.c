/*
 * test_smtp_data.c — smtpd/smtp_data.h, the DATA byte stream.
 *
 * Covers: exact output and flags for a simple message, dot-unstuffing and an
 * empty message; only CRLF.CRLF ends the data — "\n.\n", "\r\n.\n", "\n.\r\n"
 * and "\r.\r\n" do not, and set bare_lf/bare_cr; the 1000-octet line limit
 * (including CRLF); the same output, flags and consumed count whether the input
 * comes in one piece, split in two at every position, or one octet at a time;
 * octets after the terminator are left unconsumed. smtp_text (BDAT content):
 * the same flags for bare CR, bare LF and long lines, whatever the split,
 * a CRLF across two chunks, a CR at the very end.
 */
#include "smtpd/smtp_data.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct result {
    char *out;
    size_t outlen;
    size_t consumed;
    bool bare_lf, bare_cr, long_line, done;
};

static void result_free(struct result *r)
{
    free(r->out);
    r->out = NULL;
}

/* Feed in[0..n) in pieces; cuts[] are the offsets where a new feed starts. */
static struct result run_cuts(const char *in, size_t n, const size_t *cuts, size_t ncuts)
{
    struct result r;
    struct smtp_data d;
    memset(&r, 0, sizeof r);
    smtp_data_init(&d);
    r.out = malloc(n + 2 * (ncuts + 1) + 1);
    ck_assert_ptr_nonnull(r.out);
    size_t start = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        size_t len = end - start;
        char *piece = malloc(len + 1);      /* exact, so over-reads show up under ASan */
        char *out = malloc(len + 2);
        ck_assert(piece && out);
        memcpy(piece, in + start, len);
        size_t outlen = 12345;
        size_t used = smtp_data_feed(&d, piece, len, out, &outlen);
        ck_assert_uint_le(used, len);
        ck_assert_uint_le(outlen, len + 2);
        if (used < len)
            ck_assert(d.done);
        memcpy(r.out + r.outlen, out, outlen);
        r.outlen += outlen;
        r.consumed += used;
        free(piece);
        free(out);
        if (used < len)
            break;          /* the caller stops feeding once done */
        start = end;
    }
    r.out[r.outlen] = '\0';
    r.bare_lf = d.bare_lf;
    r.bare_cr = d.bare_cr;
    r.long_line = d.long_line;
    r.done = d.done;
    return r;
}

static struct result run(const char *in, size_t n)
{
    return run_cuts(in, n, NULL, 0);
}

static struct result run_s(const char *in)
{
    return run(in, strlen(in));
}

START_TEST(simple_message)
{
    const char *in = "Subject: hi\r\n\r\nHello.\r\n.\r\n";
    struct result r = run_s(in);
    ck_assert(r.done);
    ck_assert_uint_eq(r.consumed, strlen(in));
    ck_assert_uint_eq(r.outlen, strlen("Subject: hi\r\n\r\nHello.\r\n"));
    ck_assert_str_eq(r.out, "Subject: hi\r\n\r\nHello.\r\n");
    ck_assert(!r.bare_lf && !r.bare_cr && !r.long_line);
    result_free(&r);

    /* not finished yet */
    r = run_s("Subject: hi\r\n\r\nHello.\r\n");
    ck_assert(!r.done);
    ck_assert_str_eq(r.out, "Subject: hi\r\n\r\nHello.\r\n");
    result_free(&r);
    r = run_s("a\r\n.");
    ck_assert(!r.done);
    ck_assert_str_eq(r.out, "a\r\n");
    result_free(&r);
    r = run_s("a\r\n.\r");
    ck_assert(!r.done);
    ck_assert_str_eq(r.out, "a\r\n");
    ck_assert(!r.bare_cr);
    result_free(&r);
}
END_TEST

START_TEST(dot_unstuffing)
{
    struct result r = run_s("..x\r\n.\r\n");
    ck_assert(r.done);
    ck_assert_str_eq(r.out, ".x\r\n");
    result_free(&r);

    r = run_s("a\r\n..\r\n...\r\n.y\r\nb.c\r\n .\r\n.\r\n");
    ck_assert(r.done);
    ck_assert_str_eq(r.out, "a\r\n.\r\n..\r\ny\r\nb.c\r\n .\r\n");
    ck_assert(!r.bare_lf && !r.bare_cr && !r.long_line);
    result_free(&r);
}
END_TEST

START_TEST(empty_message)
{
    struct result r = run_s(".\r\n");
    ck_assert(r.done);
    ck_assert_uint_eq(r.consumed, 3);
    ck_assert_uint_eq(r.outlen, 0);
    ck_assert(!r.bare_lf && !r.bare_cr && !r.long_line);
    result_free(&r);

    r = run_s("\r\n.\r\n");
    ck_assert(r.done);
    ck_assert_str_eq(r.out, "\r\n");
    result_free(&r);
}
END_TEST

/* Each of these must not end the data, must pass the octets through and must
   set the flag; a real CRLF.CRLF afterwards still ends it. */
START_TEST(only_crlf_dot_crlf_ends)
{
    static const struct {
        const char *in;
        const char *out;    /* output for "a" + in */
        bool lf, cr;
    } t[] = {
        { "\n.\n", "a\n.\n", true, false },
        { "\r\n.\n", "a\r\n\n", true, false },
        { "\n.\r\n", "a\n.\r\n", true, false },
        { "\r.\r\n", "a\r.\r\n", false, true },
        { "\r.\r", "a\r.", false, true },
        { "\r\n.\r.\r\n", "a\r\n\r.\r\n", false, true },
        { "\r\n.\rx\r\n", "a\r\n\rx\r\n", false, true },
        { "\n\n.\n\n", "a\n\n.\n\n", true, false },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char in[64];
        snprintf(in, sizeof in, "a%s", t[i].in);
        struct result r = run_s(in);
        ck_assert_msg(!r.done, "case %zu ended the data", i);
        ck_assert_uint_eq(r.consumed, strlen(in));
        ck_assert_msg(strcmp(r.out, t[i].out) == 0, "case %zu: output differs", i);
        ck_assert_msg(r.bare_lf == t[i].lf && r.bare_cr == t[i].cr,
                      "case %zu: bare_lf %d bare_cr %d", i, r.bare_lf, r.bare_cr);
        result_free(&r);

        /* A proper end afterwards still works. */
        snprintf(in, sizeof in, "a%s\r\n.\r\n", t[i].in);
        r = run_s(in);
        ck_assert_msg(r.done, "case %zu: CRLF.CRLF afterwards did not end the data", i);
        ck_assert_uint_eq(r.consumed, strlen(in));
        result_free(&r);
    }

    /* at the very start of the data, too */
    static const char *const start[] = { ".\n", ".\r.\r\n", ".\rx\r\n" };
    for (size_t i = 0; i < sizeof start / sizeof start[0]; i++) {
        struct result r = run_s(start[i]);
        ck_assert_msg(!r.done, "start case %zu ended the data", i);
        ck_assert(r.bare_lf || r.bare_cr);
        result_free(&r);
    }
}
END_TEST

START_TEST(line_length)
{
    char in[2100];
    /* 998 octets + CRLF = 1000: fine */
    memset(in, 'x', 998);
    strcpy(in + 998, "\r\n.\r\n");
    struct result r = run_s(in);
    ck_assert(r.done);
    ck_assert(!r.long_line);
    ck_assert_uint_eq(r.outlen, 1000);
    result_free(&r);

    /* 999 octets + CRLF = 1001: flagged, still passed through */
    memset(in, 'x', 999);
    strcpy(in + 999, "\r\n.\r\n");
    r = run_s(in);
    ck_assert(r.done);
    ck_assert(r.long_line);
    ck_assert_uint_eq(r.outlen, 1001);
    result_free(&r);

    /* two lines of 1000 each: fine (the count restarts on each line) */
    memset(in, 'x', 998);
    memcpy(in + 998, "\r\n", 2);
    memset(in + 1000, 'y', 998);
    strcpy(in + 1998, "\r\n.\r\n");
    r = run_s(in);
    ck_assert(r.done);
    ck_assert(!r.long_line);
    result_free(&r);

    /* a stuffed line counts its dot: "." + 998 + CRLF = 1001 on the wire */
    in[0] = '.';
    memset(in + 1, 'x', 998);
    strcpy(in + 999, "\r\n.\r\n");
    r = run_s(in);
    ck_assert(r.long_line);
    ck_assert_uint_eq(r.outlen, 1000);
    result_free(&r);
    in[0] = '.';
    memset(in + 1, 'x', 997);
    strcpy(in + 998, "\r\n.\r\n");
    r = run_s(in);
    ck_assert(!r.long_line);
    result_free(&r);
}
END_TEST

static const char *const split_inputs[] = {
    "Subject: hi\r\n\r\nHello.\r\n..dot\r\n.\r\n",
    ".\r\n",
    "..\r\n.\r\n",
    "a\n.\nb\r\n.\r\n",
    "a\r\n.\nb\r\n.\r\n",
    "a\n.\r\nb\r\n.\r\n",
    "a\r.\r\nb\r\n.\r\n",
    "a\r\n.\r.\r\n.\r\n",
    "a\r\n.\rb\r\r\n.\r\n",
    "\r\r\n\n\r\n.\r\n",
    "x\r\n.\r\nMAIL FROM:<a@b>\r\n",
    "no end yet\r\n.",
    "no end yet\r\n.\r",
};

static void assert_same_result(const struct result *a, const struct result *b, const char *what,
                               size_t input, size_t at)
{
    ck_assert_msg(a->outlen == b->outlen && memcmp(a->out, b->out, a->outlen) == 0,
                  "input %zu, %s at %zu: output differs", input, what, at);
    ck_assert_msg(a->consumed == b->consumed, "input %zu, %s at %zu: consumed %zu vs %zu",
                  input, what, at, a->consumed, b->consumed);
    ck_assert_msg(a->bare_lf == b->bare_lf && a->bare_cr == b->bare_cr &&
                  a->long_line == b->long_line && a->done == b->done,
                  "input %zu, %s at %zu: flags differ", input, what, at);
}

START_TEST(split_anywhere)
{
    for (size_t t = 0; t < sizeof split_inputs / sizeof split_inputs[0]; t++) {
        const char *in = split_inputs[t];
        size_t n = strlen(in);
        struct result whole = run(in, n);
        for (size_t cut = 0; cut <= n; cut++) {
            struct result r = run_cuts(in, n, &cut, 1);
            assert_same_result(&whole, &r, "two feeds split", t, cut);
            result_free(&r);
        }
        size_t *cuts = malloc((n + 1) * sizeof *cuts);
        ck_assert_ptr_nonnull(cuts);
        for (size_t i = 0; i < n; i++)
            cuts[i] = i + 1;
        struct result r = run_cuts(in, n, cuts, n > 0 ? n - 1 : 0);
        assert_same_result(&whole, &r, "one octet at a time", t, 0);
        result_free(&r);
        free(cuts);
        result_free(&whole);
    }
}
END_TEST

START_TEST(split_long_lines)
{
    char in[1100];
    memset(in, 'x', 999);
    strcpy(in + 999, "\r\n.\r\n");
    size_t n = strlen(in);
    struct result whole = run(in, n);
    ck_assert(whole.long_line);
    for (size_t cut = 0; cut <= n; cut++) {
        struct result r = run_cuts(in, n, &cut, 1);
        assert_same_result(&whole, &r, "two feeds split", 0, cut);
        result_free(&r);
    }
    result_free(&whole);
}
END_TEST

START_TEST(stops_after_terminator)
{
    const char *in = "body\r\n.\r\nQUIT\r\n";
    struct result r = run_s(in);
    ck_assert(r.done);
    ck_assert_uint_eq(r.consumed, strlen("body\r\n.\r\n"));
    ck_assert_str_eq(r.out, "body\r\n");
    result_free(&r);

    /* pipelined command right after an empty message */
    r = run_s(".\r\nRSET\r\n");
    ck_assert(r.done);
    ck_assert_uint_eq(r.consumed, 3);
    ck_assert_uint_eq(r.outlen, 0);
    result_free(&r);

    /* once done, further feeds consume nothing */
    struct smtp_data d;
    char out[32];
    size_t outlen;
    smtp_data_init(&d);
    ck_assert_uint_eq(smtp_data_feed(&d, ".\r\n", 3, out, &outlen), 3);
    ck_assert(d.done);
    ck_assert_uint_eq(smtp_data_feed(&d, "more\r\n", 6, out, &outlen), 0);
    ck_assert_uint_eq(outlen, 0);
    /* init resets */
    smtp_data_init(&d);
    ck_assert(!d.done && !d.bare_lf && !d.bare_cr && !d.long_line);
    ck_assert_uint_eq(smtp_data_feed(&d, "x\r\n", 3, out, &outlen), 3);
    ck_assert_uint_eq(outlen, 3);
}
END_TEST

/* Feed in one piece with normalize on; returns the output (static). */
static const char *normalized(const char *in, struct smtp_data *d)
{
    static char out[4096];
    size_t n = strlen(in), outlen;
    ck_assert(SMTP_DATA_OUT_MAX(n) < sizeof out);
    smtp_data_init(d);
    smtp_data_set_normalize(d, true);
    smtp_data_feed(d, in, n, out, &outlen);
    ck_assert_uint_le(outlen, SMTP_DATA_OUT_MAX(n));
    out[outlen] = '\0';
    return out;
}

START_TEST(normalize_bare_newlines)
{
    struct smtp_data d;
    ck_assert_str_eq(normalized("a\nb\rc\r\n.\r\n", &d), "a\r\nb\r\nc\r\n");
    ck_assert(d.done && d.bare_lf && d.bare_cr);
    /* Still no end of data after a bare LF or CR: "\n.\r\n" is content, written as
       a line holding a dot (the SMTP client stuffs it when relaying). */
    ck_assert_str_eq(normalized("x\n.\r\ny\r\n.\r\n", &d), "x\r\n.\r\ny\r\n");
    ck_assert(d.done);
    ck_assert_str_eq(normalized("x\r.\r\n", &d), "x\r\n.\r\n");
    ck_assert(!d.done);
    ck_assert_str_eq(normalized("x\r\n.\ry\r\n.\r\n", &d), "x\r\n\r\ny\r\n");
    ck_assert(d.done && d.bare_cr);
    /* A stray CR right before CRLF. */
    ck_assert_str_eq(normalized("x\r\r\n.\r\n", &d), "x\r\n\r\n");
    ck_assert(d.done);
}
END_TEST

START_TEST(nul_is_flagged)
{
    struct smtp_data d;
    char out[64];
    size_t outlen;
    smtp_data_init(&d);
    smtp_data_feed(&d, "a\0b\r\n.\r\n", 9, out, &outlen);
    ck_assert(d.done && d.nul);
    ck_assert_uint_eq(outlen, 5);
    smtp_data_init(&d);
    smtp_data_feed(&d, ".\0\r\n.\r\n", 8, out, &outlen);
    ck_assert(d.done && d.nul);
    smtp_data_init(&d);
    smtp_data_feed(&d, "ab\r\n.\r\n", 7, out, &outlen);
    ck_assert(d.done && !d.nul);
}
END_TEST

struct text_case {
    const char *in;
    bool bare_lf, bare_cr, long_line;
};

static void check_text(const char *in, size_t n, bool bare_lf, bool bare_cr, bool long_line)
{
    /* whole, and split in two at every position */
    for (size_t cut = 0; cut <= n; cut++) {
        struct smtp_text t;
        smtp_text_init(&t);
        smtp_text_feed(&t, in, cut);
        smtp_text_feed(&t, in + cut, n - cut);
        smtp_text_end(&t);
        ck_assert_msg(t.bare_lf == bare_lf && t.bare_cr == bare_cr && t.long_line == long_line,
                      "\"%.40s\" cut at %zu: lf %d cr %d long %d", in, cut, t.bare_lf, t.bare_cr, t.long_line);
    }
}

START_TEST(text_checks)
{
    static const struct text_case cases[] = {
        { "a\r\nb\r\n", false, false, false },
        { "", false, false, false },
        { "no final crlf", false, false, false },
        { "a\r\n.\r\n\r\n.\r\n", false, false, false },
        { "a\nb\r\n", true, false, false },
        { "a\r\n.\n", true, false, false },
        { "a\rb\r\n", false, true, false },
        { "a\r\r\n", false, true, false },
        { "a\r", false, true, false },
        { "\n", true, false, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_text(cases[i].in, strlen(cases[i].in), cases[i].bare_lf, cases[i].bare_cr, cases[i].long_line);
    /* binary octets, NUL included, are not judged */
    check_text("\0\x01\xff\x80\r\n", 6, false, false, false);

    /* 1000 octets with CRLF pass, 1001 do not; a bare LF restarts the count as in DATA */
    char line[1100];
    memset(line, 'x', sizeof line);
    memcpy(line + 998, "\r\n", 2);
    check_text(line, 1000, false, false, false);
    memset(line, 'x', sizeof line);
    memcpy(line + 999, "\r\n", 2);
    check_text(line, 1001, false, false, true);
    memset(line, 'x', sizeof line);
    check_text(line, 1001, false, false, true);     /* unterminated last line too */
    line[600] = '\n';
    check_text(line, 1001, true, false, false);
}
END_TEST

Suite *smtp_data_suite(void)
{
    Suite *s = suite_create("smtp_data");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, simple_message);
    tcase_add_test(tc, dot_unstuffing);
    tcase_add_test(tc, empty_message);
    tcase_add_test(tc, only_crlf_dot_crlf_ends);
    tcase_add_test(tc, line_length);
    tcase_add_test(tc, split_anywhere);
    tcase_add_test(tc, split_long_lines);
    tcase_add_test(tc, stops_after_terminator);
    tcase_add_test(tc, normalize_bare_newlines);
    tcase_add_test(tc, nul_is_flagged);
    tcase_add_test(tc, text_checks);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(smtp_data_suite)

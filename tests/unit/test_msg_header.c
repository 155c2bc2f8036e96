/*
 * test_msg_header.c — lib/msg_header.h.
 *
 * Covers: the RFC 5322 Appendix A messages (A.1.1-A.1.3, A.5 with folding and
 * comments, A.6.3 obsolete WSP before ':' and a whitespace-only fold); unfolding;
 * every malformed-line kind ending the header section; a message with no header
 * section, one ending at EOF (with and without a final CRLF), an empty one; the
 * same result for every chunking (whole, 1 octet, primes, every split point);
 * end_in_chunk and holdback while streaming; a 10 MB header line and a 2000-octet
 * name within bounded memory; the Received: hop count; kept values per name; bare
 * CR, bare LF and NUL octets; watch registration limits.
 */
#include "lib/msg_header.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"From", "Sender", "Date", "Message-ID", "Reply-To",
                                    "To", "Cc", "Subject", "MIME-Version", "X-A"};

static void setup(struct msg_header *s, size_t value_max)
{
    struct msg_header_opts o = {.value_max = value_max};
    msg_header_init(s, &o);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        ck_assert_int_eq(msg_header_watch(s, names[i], 1), 0);
    ck_assert_int_eq(msg_header_watch(s, "DKIM-Signature", 2), 0);
    ck_assert_int_eq(msg_header_watch(s, "Received", 0), 0);
}

/*
 * Scan msg in chunks of `chunk` octets (0: whole). Checks on the way that
 * ENDED comes exactly once and end_in_chunk agrees with end_offset, and that the
 * holdback never passes its bound.
 */
static void scan(struct msg_header *s, const char *msg, size_t len, size_t chunk,
                 size_t value_max)
{
    setup(s, value_max);
    int ended = 0;
    size_t at = 0;
    if (chunk == 0)
        chunk = len ? len : 1;
    while (at < len) {
        size_t n = len - at < chunk ? len - at : chunk;
        ptrdiff_t rel = -12345;
        enum msg_header_result r = msg_header_feed(s, msg + at, n, &rel);
        ck_assert_int_ne(r, MSG_HEADER_ERROR);
        if (r == MSG_HEADER_ENDED) {
            ended++;
            ck_assert_int_eq((int64_t)at + rel, (int64_t)s->end_offset);
            ck_assert_int_le(rel, (ptrdiff_t)n);
        }
        ck_assert_uint_le(msg_header_holdback(s), MSG_HEADER_LINE_MAX + 1);
        at += n;
    }
    enum msg_header_result r = msg_header_finish(s);
    if (r == MSG_HEADER_ENDED)
        ended++;
    ck_assert_int_eq(ended, 1);
    ck_assert_int_ne(s->end, MSG_HEADER_END_NONE);
    ck_assert_uint_le(s->end_offset, s->body_offset);
    ck_assert_uint_le(s->body_offset, len);
}

static const char *val(const struct msg_header *s, const char *name, size_t i)
{
    const struct msg_header_value *v = msg_header_value(s, name, i);
    if (!v)
        return NULL;
    return v->data ? v->data : "";
}

static void assert_same(const struct msg_header *a, const struct msg_header *b)
{
    ck_assert_int_eq(a->end, b->end);
    ck_assert_uint_eq(a->end_offset, b->end_offset);
    ck_assert_uint_eq(a->body_offset, b->body_offset);
    ck_assert_uint_eq(a->fields, b->fields);
    ck_assert_uint_eq(a->received, b->received);
    ck_assert_int_eq(a->long_line, b->long_line);
    ck_assert_int_eq(a->unterminated, b->unterminated);
    ck_assert_ptr_eq(a->malformed_reason, b->malformed_reason);
    ck_assert_uint_eq(a->nwatch, b->nwatch);
    for (size_t w = 0; w < a->nwatch; w++) {
        ck_assert_uint_eq(a->watch[w].count, b->watch[w].count);
        for (size_t i = 0; i < a->watch[w].keep && i < a->watch[w].count; i++) {
            const struct msg_header_value *x = &a->watch[w].values[i], *y = &b->watch[w].values[i];
            ck_assert_uint_eq(x->len, y->len);
            ck_assert_int_eq(x->truncated, y->truncated);
            ck_assert(x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
        }
    }
}

/* Every chunking of msg gives the one-shot result. */
static void all_chunkings(const char *msg, size_t len)
{
    struct msg_header whole, part;
    scan(&whole, msg, len, 0, 0);
    static const size_t sizes[] = {1, 2, 3, 5, 7, 13, 64};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        scan(&part, msg, len, sizes[k], 0);
        assert_same(&whole, &part);
        msg_header_free(&part);
    }
    /* two chunks, split at every point */
    for (size_t split = 0; split <= len; split++) {
        setup(&part, 0);
        msg_header_feed(&part, msg, split, NULL);
        msg_header_feed(&part, msg + split, len - split, NULL);
        msg_header_finish(&part);
        assert_same(&whole, &part);
        msg_header_free(&part);
    }
    msg_header_free(&whole);
}

#define MSG(s) s, sizeof(s) - 1

static const char a11[] =
    "From: John Doe <jdoe@machine.example>\r\n"
    "To: Mary Smith <mary@example.net>\r\n"
    "Subject: Saying Hello\r\n"
    "Date: Fri, 21 Nov 1997 09:55:06 -0600\r\n"
    "Message-ID: <1234@local.machine.example>\r\n"
    "\r\n"
    "This is a message just to say hello.\r\n"
    "So, \"Hello\".\r\n";

static const char a12[] =
    "From: \"Joe Q. Public\" <john.q.public@example.com>\r\n"
    "To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\r\n"
    "Cc: <boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>\r\n"
    "Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
    "Message-ID: <5678.21-Nov-1997@example.com>\r\n"
    "\r\n"
    "Hi everyone.\r\n";

static const char a13[] =
    "From: Pete <pete@silly.example>\r\n"
    "To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\r\n"
    "Cc: Undisclosed recipients:;\r\n"
    "Date: Thu, 13 Feb 1969 23:32:54 -0330\r\n"
    "Message-ID: <testabcd.1234@silly.example>\r\n"
    "\r\n"
    "Testing.\r\n";

static const char a5[] =
    "From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\r\n"
    "To:A Group(Some people)\r\n"
    "     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
    "         joe@example.org,\r\n"
    "  John <jdoe@one.test> (my dear friend); (the end of the group)\r\n"
    "Cc:(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;\r\n"
    "Date: Thu,\r\n"
    "      13\r\n"
    "        Feb\r\n"
    "          1969\r\n"
    "      23:32\r\n"
    "               -0330 (Newfoundland Time)\r\n"
    "Message-ID:              <testabcd.1234@silly.test>\r\n"
    "\r\n"
    "Testing.\r\n";

static const char a63[] =
    "From  : John Doe <jdoe@machine(comment).  example>\r\n"
    "To    : Mary Smith\r\n"
    "  \r\n"
    "          <mary@example.net>\r\n"
    "Subject     : Saying Hello\r\n"
    "Date  : Fri, 21 Nov 1997 09(comment):   55  :  06 -0600\r\n"
    "Message-ID  : <1234   @   local(blah)  .machine .example>\r\n"
    "\r\n"
    "This is a message just to say hello.\r\n"
    "So, \"Hello\".\r\n";

START_TEST(appendix_a_1_1)
{
    struct msg_header s;
    scan(&s, MSG(a11), 0, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EMPTY_LINE);
    size_t hdr = strstr(a11, "\r\n\r\n") - a11 + 2;
    ck_assert_uint_eq(s.end_offset, hdr);
    ck_assert_uint_eq(s.body_offset, hdr + 2);
    ck_assert_uint_eq(s.fields, 5);
    ck_assert_str_eq(val(&s, "From", 0), "John Doe <jdoe@machine.example>");
    ck_assert_str_eq(val(&s, "to", 0), "Mary Smith <mary@example.net>");
    ck_assert_str_eq(val(&s, "SUBJECT", 0), "Saying Hello");
    ck_assert_str_eq(val(&s, "Date", 0), "Fri, 21 Nov 1997 09:55:06 -0600");
    ck_assert_str_eq(val(&s, "message-id", 0), "<1234@local.machine.example>");
    ck_assert_uint_eq(msg_header_count(&s, "Sender"), 0);
    ck_assert_ptr_null(val(&s, "Sender", 0));
    ck_assert_ptr_null(s.malformed_reason);
    ck_assert(!s.long_line && !s.unterminated);
    msg_header_free(&s);
    all_chunkings(MSG(a11));
}
END_TEST

START_TEST(appendix_a_1_2_and_3)
{
    struct msg_header s;
    scan(&s, MSG(a12), 0, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EMPTY_LINE);
    ck_assert_str_eq(val(&s, "Cc", 0),
                     "<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>");
    msg_header_free(&s);
    all_chunkings(MSG(a12));

    scan(&s, MSG(a13), 0, 0);
    ck_assert_str_eq(val(&s, "To", 0),
                     "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;");
    ck_assert_str_eq(val(&s, "Cc", 0), "Undisclosed recipients:;");
    ck_assert_uint_eq(s.fields, 5);
    msg_header_free(&s);
    all_chunkings(MSG(a13));
}
END_TEST

START_TEST(appendix_a_5_folding)
{
    struct msg_header s;
    scan(&s, MSG(a5), 0, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EMPTY_LINE);
    ck_assert_uint_eq(s.fields, 5);
    ck_assert_str_eq(val(&s, "To", 0),
                     "A Group(Some people)     :Chris Jones <c@(Chris's host.)public.example>,"
                     "         joe@example.org,  John <jdoe@one.test> (my dear friend); "
                     "(the end of the group)");
    ck_assert_str_eq(val(&s, "Date", 0), "Thu,      13        Feb          1969      23:32"
                                         "               -0330 (Newfoundland Time)");
    ck_assert_str_eq(val(&s, "Message-ID", 0), "<testabcd.1234@silly.test>");
    msg_header_free(&s);
    all_chunkings(MSG(a5));
}
END_TEST

START_TEST(appendix_a_6_3_obsolete)
{
    struct msg_header s;
    scan(&s, MSG(a63), 0, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EMPTY_LINE);
    ck_assert_ptr_null(s.malformed_reason);
    ck_assert_uint_eq(s.fields, 5);
    ck_assert_str_eq(val(&s, "From", 0), "John Doe <jdoe@machine(comment).  example>");
    ck_assert_str_eq(val(&s, "To", 0), "Mary Smith            <mary@example.net>");
    ck_assert_str_eq(val(&s, "Subject", 0), "Saying Hello");
    ck_assert_str_eq(val(&s, "Message-ID", 0), "<1234   @   local(blah)  .machine .example>");
    msg_header_free(&s);
    all_chunkings(MSG(a63));
}
END_TEST

START_TEST(unfolding_and_trimming)
{
    static const char m[] = "Subject: This\r\n is a test\r\n\tof folding  \r\n"
                            "X-A:\r\n   leading\r\n  \r\n"
                            "From:\r\n"
                            "\r\n";
    struct msg_header s;
    scan(&s, MSG(m), 0, 0);
    ck_assert_str_eq(val(&s, "Subject", 0), "This is a test\tof folding");
    ck_assert_str_eq(val(&s, "X-A", 0), "leading");
    ck_assert_str_eq(val(&s, "From", 0), "");
    ck_assert_uint_eq(msg_header_count(&s, "From"), 1);
    msg_header_free(&s);
    all_chunkings(MSG(m));
}
END_TEST

static void malformed_case(const char *m, size_t len, size_t bad_at, size_t fields,
                           const char *reason_part)
{
    struct msg_header s;
    scan(&s, m, len, 0, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_MALFORMED);
    ck_assert_uint_eq(s.end_offset, bad_at);
    ck_assert_uint_eq(s.body_offset, bad_at);
    ck_assert_uint_eq(s.fields, fields);
    ck_assert_ptr_nonnull(s.malformed_reason);
    ck_assert_msg(strstr(s.malformed_reason, reason_part), "reason \"%s\" lacks \"%s\"",
                  s.malformed_reason, reason_part);
    msg_header_free(&s);
    all_chunkings(m, len);
}

START_TEST(malformed_lines_end_the_header)
{
    /* a text line: "Hello world" has a space, then a non-':' */
    malformed_case(MSG("From: a@b\r\nHello world\r\n\r\nbody\r\n"), 11, 1, "not allowed");
    malformed_case(MSG("From: a@b\r\nNoColon\r\nTo: c@d\r\n\r\n"), 11, 1, "no ':'");
    malformed_case(MSG(" folded first\r\nFrom: a@b\r\n\r\n"), 0, 0, "continuation");
    malformed_case(MSG("From: a@b\r\n:empty name\r\n\r\n"), 11, 1, "empty field name");
    malformed_case(MSG("From: a@b\r\n\rX: y\r\n\r\n"), 11, 1, "bare CR");
    malformed_case(MSG("From: a@b\r\n\0X: y\r\n\r\n"), 11, 1, "neither");
    malformed_case(MSG("From: a@b\r\nX\0Y: y\r\n\r\n"), 11, 1, "not allowed");
    malformed_case(MSG("From: a@b\r\n\xc3\xa9t\xc3\xa9: y\r\n\r\n"), 11, 1, "neither");
    malformed_case(MSG("From: a@b\r\nName Two: y\r\n\r\n"), 11, 1, "not allowed");
    /* an unfinished last line without ':' at EOF */
    malformed_case(MSG("From: a@b\r\nTrailing"), 11, 1, "no ':'");
    malformed_case(MSG("From: a@b\r\n\r"), 11, 1, "bare CR");
}
END_TEST

START_TEST(no_header_section)
{
    struct msg_header s;
    scan(&s, MSG("\r\nbody only\r\n"), 0, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EMPTY_LINE);
    ck_assert_uint_eq(s.end_offset, 0);
    ck_assert_uint_eq(s.body_offset, 2);
    ck_assert_uint_eq(s.fields, 0);
    msg_header_free(&s);

    scan(&s, "", 0, 0, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EOF);
    ck_assert_uint_eq(s.end_offset, 0);
    ck_assert(!s.unterminated);
    msg_header_free(&s);
}
END_TEST

START_TEST(header_ends_at_eof)
{
    static const char m1[] = "From: a@b\r\nTo: c@d\r\n";
    struct msg_header s;
    scan(&s, MSG(m1), 0, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EOF);
    ck_assert_uint_eq(s.end_offset, sizeof m1 - 1);
    ck_assert_uint_eq(s.body_offset, sizeof m1 - 1);
    ck_assert(!s.unterminated);
    ck_assert_uint_eq(s.fields, 2);
    msg_header_free(&s);
    all_chunkings(MSG(m1));

    static const char m2[] = "From: a@b\r\nSubject: no CRLF  ";
    scan(&s, MSG(m2), 0, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EOF);
    ck_assert_uint_eq(s.end_offset, sizeof m2 - 1);
    ck_assert(s.unterminated);
    ck_assert_str_eq(val(&s, "Subject", 0), "no CRLF");
    msg_header_free(&s);
    all_chunkings(MSG(m2));

    static const char m3[] = "From: a@b\r";    /* a CR at EOF is a value octet */
    scan(&s, MSG(m3), 0, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EOF);
    ck_assert(s.unterminated);
    ck_assert_str_eq(val(&s, "From", 0), "a@b\r");
    msg_header_free(&s);
    all_chunkings(MSG(m3));
}
END_TEST

START_TEST(streaming_end_and_holdback)
{
    struct msg_header s;
    ptrdiff_t rel = 0;
    setup(&s, 0);
    ck_assert_int_eq(msg_header_feed(&s, "From: a\r\nSubj", 13, &rel), MSG_HEADER_MORE);
    ck_assert_uint_eq(msg_header_holdback(&s), 4);
    ck_assert_int_eq(msg_header_feed(&s, "ect: x\r\n", 8, &rel), MSG_HEADER_MORE);
    ck_assert_uint_eq(msg_header_holdback(&s), 0);
    ck_assert_int_eq(msg_header_feed(&s, "\r", 1, &rel), MSG_HEADER_MORE);
    ck_assert_uint_eq(msg_header_holdback(&s), 1);
    ck_assert_int_eq(msg_header_feed(&s, "\nbody\r\n", 7, &rel), MSG_HEADER_ENDED);
    ck_assert_int_eq(rel, -1);               /* the CR came in the previous chunk */
    ck_assert_uint_eq(s.end_offset, 21);
    ck_assert_uint_eq(s.body_offset, 23);
    ck_assert_int_eq(msg_header_feed(&s, "more\r\n", 6, &rel), MSG_HEADER_BODY);
    ck_assert_int_eq(msg_header_finish(&s), MSG_HEADER_BODY);
    ck_assert_uint_eq(s.offset, 35);
    ck_assert_uint_eq(msg_header_holdback(&s), 0);
    msg_header_free(&s);

    /* the end inside one chunk: the offset of the empty line within it */
    setup(&s, 0);
    ck_assert_int_eq(msg_header_feed(&s, "From: a\r\n", 9, &rel), MSG_HEADER_MORE);
    ck_assert_int_eq(msg_header_feed(&s, "To: b\r\n\r\nhi\r\n", 13, &rel), MSG_HEADER_ENDED);
    ck_assert_int_eq(rel, 7);
    msg_header_free(&s);

    /* a malformed line that began in an earlier chunk: negative, within the holdback */
    setup(&s, 0);
    ck_assert_int_eq(msg_header_feed(&s, "From: a\r\nHello", 14, &rel), MSG_HEADER_MORE);
    ck_assert_uint_eq(msg_header_holdback(&s), 5);
    ck_assert_int_eq(msg_header_feed(&s, " there\r\n", 8, &rel), MSG_HEADER_ENDED);
    ck_assert_int_eq(rel, -5);
    msg_header_free(&s);
}
END_TEST

START_TEST(huge_line_bounded)
{
    size_t big = 10u << 20;
    char *m = malloc(big + 64);
    ck_assert_ptr_nonnull(m);
    size_t n = (size_t)sprintf(m, "Subject: ");
    memset(m + n, 'x', big);
    n += big;
    n += (size_t)sprintf(m + n, "\r\nFrom: a@b\r\n\r\nbody");
    struct msg_header s;
    scan(&s, m, n, 4096, 8192);
    const struct msg_header_value *v = msg_header_value(&s, "Subject", 0);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v->len, 8192);
    ck_assert(v->truncated);
    ck_assert_uint_le(v->cap, 8193);
    ck_assert(s.long_line);
    ck_assert_str_eq(val(&s, "From", 0), "a@b");
    ck_assert_int_eq(s.end, MSG_HEADER_END_EMPTY_LINE);
    ck_assert_uint_eq(s.end_offset, n - 6);
    msg_header_free(&s);

    /* the same, one octet at a time, for the first 100 kB */
    struct msg_header one, whole;
    scan(&whole, m, 100000, 0, 8192);
    scan(&one, m, 100000, 1, 8192);
    assert_same(&whole, &one);
    msg_header_free(&one);
    msg_header_free(&whole);

    /* a 2000-octet name without ':' is decided by octet 999 */
    memset(m, 'a', 2000);
    memcpy(m + 2000, ": v\r\n\r\n", 7);
    scan(&s, m, 2007, 1, 0);
    ck_assert_int_eq(s.end, MSG_HEADER_END_MALFORMED);
    ck_assert_uint_eq(s.end_offset, 0);
    ck_assert_ptr_nonnull(strstr(s.malformed_reason, "998"));
    msg_header_free(&s);
    /* a 998-octet line is fine, 999 is long */
    memset(m, 'b', 998);
    memcpy(m, "X-B:", 4);
    memcpy(m + 998, "\r\n\r\n", 4);
    scan(&s, m, 1002, 0, 0);
    ck_assert(!s.long_line);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EMPTY_LINE);
    msg_header_free(&s);
    memset(m, 'b', 999);
    memcpy(m, "X-B:", 4);
    memcpy(m + 999, "\r\n\r\n", 4);
    scan(&s, m, 1003, 0, 0);
    ck_assert(s.long_line);
    msg_header_free(&s);
    free(m);
}
END_TEST

static void received_n(size_t hops, bool looping)
{
    char *m = malloc(hops * 40 + 64);
    size_t n = 0;
    for (size_t i = 0; i < hops; i++)
        n += (size_t)sprintf(m + n, "received: from h%zu by x; date\r\n", i);
    n += (size_t)sprintf(m + n, "From: a@b\r\n\r\n");
    struct msg_header s;
    scan(&s, m, n, 7, 0);
    ck_assert_uint_eq(s.received, hops);
    ck_assert_uint_eq(msg_header_count(&s, "Received"), hops);
    ck_assert_int_eq(msg_header_looping(&s), looping);
    msg_header_free(&s);
    free(m);
}

START_TEST(hop_count)
{
    received_n(0, false);
    received_n(100, false);
    received_n(101, true);
    /* counted without being watched */
    struct msg_header s;
    msg_header_init(&s, NULL);
    msg_header_feed(&s, MSG("Received: x\r\nReceived : y\r\n\r\n"), NULL);
    ck_assert_uint_eq(msg_header_count(&s, "received"), 2);
    msg_header_free(&s);
}
END_TEST

START_TEST(kept_values)
{
    static const char m[] = "DKIM-Signature: one\r\nFrom: first\r\ndkim-signature: two\r\n"
                            "From: second\r\nDKIM-Signature: three\r\n\r\n";
    struct msg_header s;
    scan(&s, MSG(m), 0, 0);
    ck_assert_uint_eq(msg_header_count(&s, "DKIM-Signature"), 3);
    ck_assert_str_eq(val(&s, "DKIM-Signature", 0), "one");
    ck_assert_str_eq(val(&s, "DKIM-Signature", 1), "two");
    ck_assert_ptr_null(val(&s, "DKIM-Signature", 2));
    ck_assert_uint_eq(msg_header_count(&s, "From"), 2);
    ck_assert_str_eq(val(&s, "From", 0), "first");
    ck_assert_ptr_null(val(&s, "From", 1));
    ck_assert_uint_eq(msg_header_count(&s, "X-Unwatched"), 0);
    ck_assert_uint_eq(s.fields, 5);
    msg_header_free(&s);
    all_chunkings(MSG(m));
}
END_TEST

START_TEST(odd_octets)
{
    struct msg_header s;
    /* a bare LF does not end a line: it is an octet of the value */
    static const char lf[] = "From: a\nTo: b\r\n\r\n";
    scan(&s, MSG(lf), 0, 0);
    ck_assert_uint_eq(s.fields, 1);
    ck_assert_str_eq(val(&s, "From", 0), "a\nTo: b");
    ck_assert_int_eq(s.end, MSG_HEADER_END_EMPTY_LINE);
    msg_header_free(&s);
    all_chunkings(MSG(lf));
    /* LF-only line ends: the second line is malformed */
    malformed_case(MSG("From: a\r\n\nbody\n"), 9, 1, "neither");

    static const char cr[] = "X-A: a\rb\r\r\n\r\n";
    scan(&s, MSG(cr), 0, 0);
    const struct msg_header_value *v = msg_header_value(&s, "X-A", 0);
    ck_assert_uint_eq(v->len, 4);
    ck_assert_mem_eq(v->data, "a\rb\r", 4);
    msg_header_free(&s);
    all_chunkings(MSG(cr));

    static const char nul[] = "X-A: a\0b\r\nFrom: \0\r\n\r\n\0";
    scan(&s, MSG(nul), 0, 0);
    v = msg_header_value(&s, "X-A", 0);
    ck_assert_uint_eq(v->len, 3);
    ck_assert_mem_eq(v->data, "a\0b", 3);
    ck_assert_uint_eq(msg_header_value(&s, "From", 0)->len, 1);
    ck_assert_int_eq(s.end, MSG_HEADER_END_EMPTY_LINE);
    msg_header_free(&s);
    all_chunkings(MSG(nul));

    /* UTF-8 in values (RFC 6532) is kept as is */
    scan(&s, MSG("Subject: caf\xc3\xa9\r\n\r\n"), 0, 0);
    ck_assert_str_eq(val(&s, "Subject", 0), "caf\xc3\xa9");
    msg_header_free(&s);
}
END_TEST

START_TEST(watch_limits)
{
    struct msg_header s;
    msg_header_init(&s, NULL);
    ck_assert_int_eq(msg_header_watch(&s, "From", 1), 0);
    ck_assert_int_eq(msg_header_watch(&s, "from", 1), -1);
    ck_assert_int_eq(msg_header_watch(&s, "", 1), -1);
    ck_assert_int_eq(msg_header_watch(&s, "Bad:Name", 1), -1);
    ck_assert_int_eq(msg_header_watch(&s, "Bad Name", 1), -1);
    ck_assert_int_eq(msg_header_watch(&s, "To", MSG_HEADER_KEEP_MAX + 1), -1);
    char name[80];
    memset(name, 'n', sizeof name);
    name[MSG_HEADER_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(msg_header_watch(&s, name, 1), -1);
    name[MSG_HEADER_NAME_MAX] = '\0';
    ck_assert_int_eq(msg_header_watch(&s, name, 1), 0);
    for (int i = 2; i < MSG_HEADER_WATCH_MAX; i++) {
        snprintf(name, sizeof name, "X-%d", i);
        ck_assert_int_eq(msg_header_watch(&s, name, 1), 0);
    }
    ck_assert_int_eq(msg_header_watch(&s, "X-Last", 1), -1);
    msg_header_feed(&s, "X", 1, NULL);
    msg_header_free(&s);
    msg_header_init(&s, NULL);
    msg_header_feed(&s, "X", 1, NULL);
    ck_assert_int_eq(msg_header_watch(&s, "From", 1), -1);    /* too late */
    msg_header_free(&s);
}
END_TEST

Suite *msg_header_suite(void)
{
    Suite *s = suite_create("msg_header");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, appendix_a_1_1);
    tcase_add_test(tc, appendix_a_1_2_and_3);
    tcase_add_test(tc, appendix_a_5_folding);
    tcase_add_test(tc, appendix_a_6_3_obsolete);
    tcase_add_test(tc, unfolding_and_trimming);
    tcase_add_test(tc, malformed_lines_end_the_header);
    tcase_add_test(tc, no_header_section);
    tcase_add_test(tc, header_ends_at_eof);
    tcase_add_test(tc, streaming_end_and_holdback);
    tcase_add_test(tc, huge_line_bounded);
    tcase_add_test(tc, hop_count);
    tcase_add_test(tc, kept_values);
    tcase_add_test(tc, odd_octets);
    tcase_add_test(tc, watch_limits);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(msg_header_suite)

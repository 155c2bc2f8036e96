/* Unit tests for queue/maildrop: the drop-file format, fed raw bytes. */
#include "queue/maildrop.h"
#include "tests/unit/unit.h"

#include <string.h>

static int parse(const char *text, struct envelope *e, size_t *body, char *err)
{
    env_init(e);
    return maildrop_parse(text, strlen(text), e, body, err, 256);
}

START_TEST(round_trip)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    char err[256];
    char *rcpts[] = { "bob@example.test", "\"odd user\"@[192.0.2.1]", "j\xc3\xb6rg@example.test" };
    ck_assert_int_eq(maildrop_write_envelope(&b, "alice@example.org", rcpts, 3, err, sizeof err), 0);
    buf_puts(&b, "Subject: hi\n\nbody\n");
    struct envelope e;
    size_t body;
    ck_assert_int_eq(parse(b.data, &e, &body, err), 0);
    ck_assert_str_eq(e.sender, "alice@example.org");
    ck_assert_uint_eq(e.nrcpts, 3);
    ck_assert_str_eq(e.rcpts[1].addr, "\"odd user\"@[192.0.2.1]");
    ck_assert(e.smtputf8);
    ck_assert_str_eq(b.data + body, "Subject: hi\n\nbody\n");
    env_free(&e);
    buf_reset(&b);
    ck_assert_int_eq(maildrop_write_envelope(&b, "", rcpts, 1, err, sizeof err), 0);
    ck_assert_int_eq(parse(b.data, &e, &body, err), 0);
    ck_assert_str_eq(e.sender, "");
    ck_assert(!e.smtputf8);
    env_free(&e);
    buf_free(&b);
}
END_TEST

START_TEST(writer_refuses_bad_addresses)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    char err[256];
    char *bad[] = { "no-at-sign" };
    char *good[] = { "a@b.example" };
    ck_assert_int_eq(maildrop_write_envelope(&b, "x@y", bad, 1, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "<no-at-sign>"));
    ck_assert_int_eq(maildrop_write_envelope(&b, "bad sender", good, 1, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "sender"));
    ck_assert_int_eq(maildrop_write_envelope(&b, "x@y", good, 0, err, sizeof err), -1);
    /* review: a valid but long address was written, then refused by the parser at
       the pickup (ferry-sendmail had said 0): now refused here; what is written
       always parses */
    char longrcpt[400], longsnd[400];
    memset(longrcpt, 'a', 300);
    strcpy(longrcpt + 300, "@b.example");
    char *lr[] = { longrcpt };
    ck_assert_int_eq(maildrop_write_envelope(&b, "x@y", lr, 1, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "longer than 254"));
    /* exactly 254 octets: c@ and a domain of four labels (62, 62, 62, 63) */
    strcpy(longsnd, "c@");
    for (int l = 0; l < 4; l++) {
        size_t at = strlen(longsnd), w = l == 3 ? 63 : 62;
        memset(longsnd + at, 'a' + l, w);
        longsnd[at + w] = l == 3 ? '\0' : '.';
        longsnd[at + w + 1] = '\0';
    }
    ck_assert_uint_eq(strlen(longsnd), 254);
    buf_reset(&b);
    ck_assert_int_eq(maildrop_write_envelope(&b, longsnd, good, 1, err, sizeof err), 0);
    buf_puts(&b, "Subject: s\n\nbody\n");
    struct envelope e;
    env_init(&e);
    size_t off;
    ck_assert_msg(maildrop_parse(b.data, b.len, &e, &off, err, sizeof err) == 0, "%s", err);
    env_free(&e);
    buf_free(&b);
}
END_TEST

START_TEST(parser_rejects)
{
    static const struct { const char *text, *why; } cases[] = {
        { "", "not a maildrop file" },
        { "FERRY-DROP 2\nsender -\nrcpt a@b\n\n", "not a maildrop file" },
        { "FERRY-DROP 1\nsender -\nrcpt a@b\n", "does not end with an empty line" },
        { "FERRY-DROP 1\nrcpt a@b\nsender -\n\n", "line 2: a recipient before the sender" },
        { "FERRY-DROP 1\nsender -\nsender -\n\n", "line 3: a second sender" },
        { "FERRY-DROP 1\nsender -\n\n", "at least one rcpt" },
        { "FERRY-DROP 1\nsender x\nrcpt a@b\n\n", "line 2: the sender is not a valid mailbox" },
        { "FERRY-DROP 1\nsender -\nrcpt a@b c\n\n", "line 3: the recipient is not a valid mailbox" },
        { "FERRY-DROP 1\nsender -\nrcpt a@b\nbcc c@d\n\n", "line 4: expected" },
        { "FERRY-DROP 1\nsender -\nrcpt a@b\r\n\n", "line 3: the recipient" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct envelope e;
        size_t body;
        char err[256];
        ck_assert_msg(parse(cases[i].text, &e, &body, err) == -1, "case %zu parsed", i);
        ck_assert_msg(strstr(err, cases[i].why), "case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].why);
        env_free(&e);
    }
    /* A NUL in the envelope stops the line early: never a valid address. */
    const char nul[] = "FERRY-DROP 1\nsender -\nrcpt a@b\0c\n\n";
    struct envelope e;
    size_t body;
    char err[256];
    env_init(&e);
    ck_assert_int_eq(maildrop_parse(nul, sizeof nul - 1, &e, &body, err, sizeof err), -1);
    env_free(&e);
}
END_TEST

START_TEST(too_many_recipients)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_puts(&b, "FERRY-DROP 1\nsender -\n");
    for (int i = 0; i <= MAILDROP_MAX_RCPTS; i++)
        buf_printf(&b, "rcpt u%d@example.test\n", i);
    buf_puts(&b, "\n");
    struct envelope e;
    size_t body;
    char err[256];
    ck_assert_int_eq(parse(b.data, &e, &body, err), -1);
    ck_assert_ptr_nonnull(strstr(err, "more than 1000 recipients"));
    env_free(&e);
    buf_free(&b);
}
END_TEST

static const char *wire(const char *in, size_t len, bool *eight, char *err)
{
    static struct buf b;
    buf_free(&b);
    buf_init(&b, 1 << 16);
    if (maildrop_to_wire(in, len, &b, eight, err, 256) < 0)
        return NULL;
    return b.data ? b.data : "";
}

START_TEST(to_wire)
{
    bool eight;
    char err[256];
    ck_assert_str_eq(wire("a\nb\r\nc\rd", 8, &eight, err), "a\r\nb\r\nc\r\nd\r\n");
    ck_assert(!eight);
    ck_assert_str_eq(wire("\n\n", 2, &eight, err), "\r\n\r\n");
    ck_assert_str_eq(wire("", 0, &eight, err), "");
    ck_assert_str_eq(wire("caf\xc3\xa9\n", 6, &eight, err), "caf\xc3\xa9\r\n");
    ck_assert(eight);
    ck_assert_ptr_null(wire("a\0b\n", 4, &eight, err));
    ck_assert_ptr_nonnull(strstr(err, "line 1 of the message contains a NUL"));
    char longline[1100];
    memset(longline, 'x', sizeof longline);
    ck_assert_ptr_nonnull(wire(longline, 998, &eight, err));
    ck_assert_ptr_null(wire(longline, 999, &eight, err));
    ck_assert_ptr_nonnull(strstr(err, "longer than 998"));
}
END_TEST

/* The verdict ferry-sendmail and the pickup share: line rules as maildrop_to_wire,
   and the wire size (CRLF ends) plus room for Received: within the limit. */
START_TEST(check_message)
{
    char err[256];
    ck_assert_int_eq(maildrop_check_message("a\nb\n", 4, 10000, err, sizeof err), 0);
    ck_assert_int_eq(maildrop_check_message("x\n\0\n", 4, 10000, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "line 2 of the message contains a NUL"));
    static char big[1600];
    memset(big, 'y', sizeof big);
    memcpy(big, "S: 1\nS: 2\n\n", 11);
    ck_assert_int_eq(maildrop_check_message(big, sizeof big, 10000, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "line 4 of the message is longer than 998"));
    /* 3 lines of 1 octet: 9 octets on the wire */
    ck_assert_int_eq(maildrop_check_message("a\nb\nc", 5, MAILDROP_TRACE_MAX + 9, err, sizeof err), 0);
    ck_assert_int_eq(maildrop_check_message("a\nb\nc", 5, MAILDROP_TRACE_MAX + 8, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "over the size limit"));
}
END_TEST

Suite *maildrop_suite(void)
{
    Suite *s = suite_create("maildrop");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, writer_refuses_bad_addresses);
    tcase_add_test(tc, parser_rejects);
    tcase_add_test(tc, too_many_recipients);
    tcase_add_test(tc, to_wire);
    tcase_add_test(tc, check_message);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(maildrop_suite)

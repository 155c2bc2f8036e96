/* Unit tests for queue/dsn: DSN messages compared with golden files in
   tests/data/dsn/ (FERRY_REGEN=1 rewrites them; review the diff before committing). */
#include "queue/dsn.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOW     1795392000      /* Mon, 23 Nov 2026 00:00:00 UTC */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char data[1 << 16];
    *len = fread(data, 1, sizeof data - 1, f);
    data[*len] = '\0';
    fclose(f);
    return data;
}

static void check_golden(const char *name, const struct buf *b)
{
    char path[256];
    snprintf(path, sizeof path, "tests/data/dsn/%s.out", name);
    if (getenv("FERRY_REGEN")) {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(b->data, 1, b->len, f);
        fclose(f);
    }
    size_t len;
    char *want = slurp(path, &len);
    ck_assert_msg(want != NULL, "missing golden file %s", path);
    ck_assert_msg(len == b->len && memcmp(want, b->data, len) == 0,
                  "%s differs from the golden file:\n%s", name, b->data);
}

static const char *original(size_t *len)
{
    static char copy[1 << 16];
    char *p = slurp("tests/data/dsn/original.in", len);
    ck_assert_ptr_nonnull(p);
    memcpy(copy, p, *len + 1);
    return copy;
}

/* Every line ends in CRLF and none exceeds 998 octets. */
static void check_lines(const struct buf *b)
{
    size_t start = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] == '\n') {
            ck_assert_msg(i > 0 && b->data[i - 1] == '\r', "bare LF at %zu", i);
            ck_assert_msg(i - start <= 999, "line of %zu octets at %zu", i - start - 1, start);
            start = i + 1;
        } else if (b->data[i] == '\r') {
            ck_assert_msg(i + 1 < b->len && b->data[i + 1] == '\n', "bare CR at %zu", i);
        }
    }
}

START_TEST(failed_returns_full_message)
{
    setenv("TZ", "UTC", 1);
    tzset();
    size_t len;
    const char *msg = original(&len);
    char longdiag[1500];
    strcpy(longdiag, "550-5.1.1 The email account that you tried to reach does not exist.\r\n"
                     "Injected-Header: evil\r\n550 5.1.1 ");
    while (strlen(longdiag) < 1200)
        strcat(longdiag, "please try double-checking the recipient's address for typos ");
    struct dsn_rcpt rc[2] = {
        { .final_recipient = "bob@example.test", .orcpt_type = "rfc822", .orcpt = "Bob@Example.TEST",
          .action = DSN_FAILED, .status = "5.1.1", .remote_mta = "mx.example.test",
          .diagnostic = longdiag, .diagnostic_is_smtp = true, .last_attempt = NOW - 60 },
        { .final_recipient = "carol@example.test", .action = DSN_FAILED, .status = "5.2.2",
          .diagnostic = "mailbox is over quota", .last_attempt = NOW - 30 },
    };
    struct dsn_report r = {
        .reporting_mta = "mx.example.org", .queue_id = "0ABCDEF0123456789", .envid = "QQ314159",
        .original_sender = "alice@example.org", .received_from_mta = "client.example.org",
        .arrival = NOW - 3600, .now = NOW, .rcpts = rc, .nrcpts = 2,
    };
    struct buf b;
    buf_init(&b, 1 << 20);
    bool eight;
    char err[256];
    ck_assert_int_eq(dsn_build(&r, msg, len, "SEED", &b, &eight, err, sizeof err), 0);
    ck_assert(!eight);
    check_lines(&b);
    ck_assert_ptr_null(strstr(b.data, "\r\nInjected-Header:"));
    /* The original contains the first boundary candidate: another is chosen. */
    ck_assert_ptr_nonnull(strstr(b.data, "boundary=\"=_ferry_SEED_1\""));
    ck_assert_ptr_nonnull(strstr(b.data, "Content-Type: message/rfc822\r\n"));
    check_golden("failed_full", &b);
    buf_free(&b);
}
END_TEST

START_TEST(delayed_returns_headers_only)
{
    setenv("TZ", "UTC", 1);
    tzset();
    size_t len;
    const char *msg = original(&len);
    struct dsn_rcpt rc = { .final_recipient = "dave@example.net", .action = DSN_DELAYED, .status = "4.4.1",
                           .diagnostic = "connect to mx.example.net[198.51.100.9]:25: Connection refused",
                           .last_attempt = NOW - 10, .will_retry_until = NOW + 4 * 86400 };
    struct dsn_report r = {
        .reporting_mta = "mx.example.org", .queue_id = "0ABCDEF0123456789",
        .original_sender = "alice@example.org", .arrival = NOW - 4 * 3600, .now = NOW,
        .rcpts = &rc, .nrcpts = 1,
    };
    struct buf b;
    buf_init(&b, 1 << 20);
    bool eight;
    char err[256];
    ck_assert_int_eq(dsn_build(&r, msg, len, "SEED2", &b, &eight, err, sizeof err), 0);
    check_lines(&b);
    ck_assert_ptr_nonnull(strstr(b.data, "Subject: Delayed Mail (still being retried)\r\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "Content-Type: text/rfc822-headers\r\n"));
    ck_assert_ptr_null(strstr(b.data, "Shall we meet"));
    check_golden("delayed_headers", &b);
    buf_free(&b);
}
END_TEST

START_TEST(success_for_utf8_mail_uses_global_types)
{
    setenv("TZ", "UTC", 1);
    tzset();
    const char *msg = "From: J\xc3\xb6rg <j\xc3\xb6rg@example.org>\r\nSubject: hi\r\n\r\nbody\r\n";
    struct dsn_rcpt rc = { .final_recipient = "\xc3\xa9mile@example.test", .action = DSN_DELIVERED,
                           .status = "2.0.0", .diagnostic = "delivered to mailbox", .last_attempt = NOW };
    struct dsn_report r = {
        .reporting_mta = "mx.example.org", .queue_id = "0ABCDEF0123456789",
        .original_sender = "j\xc3\xb6rg@example.org", .arrival = NOW - 5, .now = NOW, .smtputf8 = true,
        .rcpts = &rc, .nrcpts = 1,
    };
    struct buf b;
    buf_init(&b, 1 << 20);
    bool eight;
    char err[256];
    ck_assert_int_eq(dsn_build(&r, msg, strlen(msg), "SEED3", &b, &eight, err, sizeof err), 0);
    ck_assert(eight);
    ck_assert_ptr_nonnull(strstr(b.data, "report-type=global-delivery-status"));
    ck_assert_ptr_nonnull(strstr(b.data, "Content-Type: message/global-delivery-status\r\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "Final-Recipient: utf-8; \xc3\xa9mile@example.test\r\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "Content-Type: message/global-headers\r\n"));
    check_golden("delivered_utf8", &b);
    buf_free(&b);
}
END_TEST

START_TEST(errors)
{
    struct dsn_report r = { .reporting_mta = "h", .queue_id = "q", .original_sender = "a@b", .now = NOW };
    struct buf b;
    buf_init(&b, 200);
    bool eight;
    char err[256];
    ck_assert_int_eq(dsn_build(&r, "", 0, "S", &b, &eight, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "at least one recipient"));
    struct dsn_rcpt rc = { .final_recipient = "x@y", .action = DSN_FAILED, .status = "5.0.0" };
    r.rcpts = &rc;
    r.nrcpts = 1;
    ck_assert_int_eq(dsn_build(&r, "Subject: x\r\n\r\nbody\r\n", 21, "S", &b, &eight, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "does not fit"));
    ck_assert_uint_eq(b.len, 0);
    rc.status = NULL;
    ck_assert_int_eq(dsn_build(&r, "", 0, "S", &b, &eight, err, sizeof err), -1);
    buf_free(&b);
}
END_TEST

Suite *dsn_suite(void)
{
    Suite *s = suite_create("dsn");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, failed_returns_full_message);
    tcase_add_test(tc, delayed_returns_headers_only);
    tcase_add_test(tc, success_for_utf8_mail_uses_global_types);
    tcase_add_test(tc, errors);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(dsn_suite)

/* Unit tests for smtpd/smtp_trace: transcript lines, escaping, secrets, limits. */
#include "smtpd/smtp_trace.h"
#include "tests/unit/unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/ferry-trace-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The file's text with the "<time> " prefix of each line removed. */
static char *read_trace(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.trace", dir, id);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char out[8192];
    size_t o = 0;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *sp = strchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        for (char *p = line; p < sp; p++)
            ck_assert(*p == '.' || (*p >= '0' && *p <= '9'));
        size_t n = strlen(sp + 1);
        ck_assert(o + n < sizeof out);
        memcpy(out + o, sp + 1, n);
        o += n;
    }
    out[o] = '\0';
    fclose(f);
    return out;
}

START_TEST(transcript_lines)
{
    char err[256];
    struct smtp_trace *t = smtp_trace_open(dir, "S1", 1000, err, sizeof err);
    ck_assert_msg(t != NULL, "%s", err);
    smtp_trace_server(t, "220 mx ESMTP\r\n", 14);
    smtp_trace_client(t, "EHLO client\r\n", 13, false);
    smtp_trace_note(t, "TLS established %s", "TLSv1.3");
    smtp_trace_client(t, "MAIL FROM:<a\x01@b>\r\n", 17, false);
    smtp_trace_close(t);
    ck_assert_str_eq(read_trace("S1"),
                     "S: 220 mx ESMTP\n"
                     "C: EHLO client\n"
                     "*: TLS established TLSv1.3\n"
                     "C: MAIL FROM:<a\\x01@b>\n");
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/S1.trace", dir);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

START_TEST(secrets_are_masked)
{
    char err[256];
    struct smtp_trace *t = smtp_trace_open(dir, "S2", 1000, err, sizeof err);
    ck_assert_ptr_nonnull(t);
    smtp_trace_client(t, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", 34, false);
    smtp_trace_client(t, "auth login\r\n", 12, false);
    smtp_trace_client(t, "YWxpY2U=\r\n", 10, true);
    smtp_trace_close(t);
    char *txt = read_trace("S2");
    ck_assert_str_eq(txt, "C: AUTH PLAIN ***\nC: auth login\nC: ***\n");
    ck_assert_ptr_null(strstr(txt, "AGFsaWNl"));
}
END_TEST

START_TEST(data_lines_show_bare_cr_and_lf)
{
    char err[256];
    struct smtp_trace *t = smtp_trace_open(dir, "S3", 1000, err, sizeof err);
    ck_assert_ptr_nonnull(t);
    /* Split across calls, including between CR and LF. */
    smtp_trace_data(t, "Subject: x\r", 11);
    smtp_trace_data(t, "\n\r\nbody\nmore\rend\r", 17);
    smtp_trace_data(t, "\n", 1);
    smtp_trace_server(t, "250 ok\r\n", 8);
    smtp_trace_close(t);
    ck_assert_str_eq(read_trace("S3"),
                     "D: Subject: x\n"
                     "D: \n"
                     "D: body\\x0a\n"
                     "D: more\\x0dend\n"
                     "S: 250 ok\n");
}
END_TEST

START_TEST(data_limit)
{
    char err[256];
    struct smtp_trace *t = smtp_trace_open(dir, "S4", 5, err, sizeof err);
    ck_assert_ptr_nonnull(t);
    smtp_trace_data(t, "abc", 3);
    smtp_trace_data(t, "defgh\r\n", 7);
    smtp_trace_close(t);
    ck_assert_str_eq(read_trace("S4"), "D: abcde\n*: 5 octets of message content not traced (trace limit 5)\n");
}
END_TEST

START_TEST(never_replaces_or_follows)
{
    char err[256], path[128];
    snprintf(path, sizeof path, "%s/S5.trace", dir);
    ck_assert_int_eq(symlink("/etc/passwd", path), 0);
    ck_assert_ptr_null(smtp_trace_open(dir, "S5", 10, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "S5.trace"));
    ck_assert_ptr_null(smtp_trace_open("/nonexistent-dir", "S6", 10, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/S6.trace"));
    smtp_trace_close(NULL);
    smtp_trace_client(NULL, "x", 1, false);
}
END_TEST

Suite *smtp_trace_suite(void)
{
    Suite *s = suite_create("smtp_trace");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, transcript_lines);
    tcase_add_test(tc, secrets_are_masked);
    tcase_add_test(tc, data_lines_show_bare_cr_and_lf);
    tcase_add_test(tc, data_limit);
    tcase_add_test(tc, never_replaces_or_follows);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(smtp_trace_suite)

/*
 * test_bounce.c — queue/bounce.h against a spool in a temporary directory.
 *
 * Covers: the NOTIFY defaults of rcpt_wants_dsn; status extraction from SMTP
 * replies and local results; a bounce queued to the sender from the null sender,
 * with one DSN for several recipients; a failed null-sender message going to the
 * postmaster as a double bounce; a failed double bounce dropped (nothing queued);
 * queue_admin's bounce and delete.
 */
#include "lib/settings.h"
#include "queue/bounce.h"
#include "queue/queue_admin.h"
#include "tests/unit/unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static struct spool sp;
static struct ferry_config cfg;

static void setup(void)
{
    char err[256];
    strcpy(dir, "/tmp/ferry-bounce-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_int_eq(spool_prepare(dir, false, 0, 0, err, sizeof err), 0);
    ck_assert_int_eq(spool_open(&sp, dir, err, sizeof err), 0);
    ck_assert_int_eq(settings_load(NULL, &cfg, err, sizeof err), 0);
}

static void teardown(void)
{
    spool_close(&sp);
    settings_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char original[] = "From: a@example.org\r\nSubject: lunch\r\n\r\nnoon\r\n";

/* An original in the spool: queued from `sender` to the given recipients. */
static void queue_original(const char *sender, enum env_kind kind, struct envelope *e, int *fd)
{
    char id[QID_LEN + 1];
    ck_assert_int_eq(bounce_inject(&sp, "x@example.net", kind, original, strlen(original), false, false, id), 0);
    bool corrupt;
    char err[256];
    ck_assert_int_eq(spool_env_read(&sp, id, e, &corrupt, err, sizeof err), 0);
    str_copy(e->sender, sender, sizeof e->sender);
    ck_assert_int_eq(env_add_rcpt(e, "y@example.net"), 0);
    e->rcpts[0].state = e->rcpts[1].state = RCPT_FAILED;
    strcpy(e->rcpts[0].result, "550 5.1.1 no such user");
    strcpy(e->rcpts[1].result, "5.4.7 message expired");
    ck_assert_int_eq(spool_env_write(&sp, e), 0);
    *fd = spool_msg_open(&sp, id);
    ck_assert_int_ge(*fd, 0);
}

static char *read_msg(const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "%s/queue/%s.msg", dir, id);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char data[65536];
    size_t n = fread(data, 1, sizeof data - 1, f);
    data[n] = '\0';
    fclose(f);
    return data;
}

START_TEST(notify_defaults)
{
    struct env_rcpt r;
    memset(&r, 0, sizeof r);
    ck_assert(rcpt_wants_dsn(&r, DSN_FAILED));
    ck_assert(rcpt_wants_dsn(&r, DSN_DELAYED));
    ck_assert(!rcpt_wants_dsn(&r, DSN_DELIVERED));
}
END_TEST

START_TEST(result_status)
{
    char st[16];
    bool smtp;
    bounce_result_status("550 5.1.1 no such user", st, &smtp);
    ck_assert_str_eq(st, "5.1.1");
    ck_assert(smtp);
    bounce_result_status("451 try again later", st, &smtp);
    ck_assert_str_eq(st, "4.0.0");
    ck_assert(smtp);
    bounce_result_status("554-5.7.1 go away", st, &smtp);
    ck_assert_str_eq(st, "5.7.1");
    bounce_result_status("5.4.7 message expired", st, &smtp);
    ck_assert_str_eq(st, "5.4.7");
    ck_assert(!smtp);
    bounce_result_status("4.4.3 no remote delivery", st, &smtp);
    ck_assert_str_eq(st, "4.4.3");
    bounce_result_status("5.4.", st, &smtp);
    ck_assert_str_eq(st, "5.0.0");
    bounce_result_status("", st, &smtp);
    ck_assert_str_eq(st, "5.0.0");
    bounce_result_status("5.1234.1 x", st, &smtp);
    ck_assert_str_eq(st, "5.0.0");
}
END_TEST

START_TEST(bounce_to_sender_one_dsn)
{
    struct envelope e;
    int fd;
    queue_original("alice@example.org", ENV_KIND_NORMAL, &e, &fd);
    size_t idx[2] = { 0, 1 };
    char id[QID_LEN + 1], err[256];
    ck_assert_int_eq(bounce_queue(&sp, &cfg, &e, fd, DSN_FAILED, idx, 2, time(NULL), id, err, sizeof err), 0);
    ck_assert(qid_valid(id));
    struct envelope b;
    bool corrupt;
    ck_assert_int_eq(spool_env_read(&sp, id, &b, &corrupt, err, sizeof err), 0);
    ck_assert_str_eq(b.sender, "");
    ck_assert_uint_eq(b.nrcpts, 1);
    ck_assert_str_eq(b.rcpts[0].addr, "alice@example.org");
    ck_assert_int_eq(b.kind, ENV_KIND_BOUNCE);
    const char *m = read_msg(id);
    ck_assert_ptr_nonnull(strstr(m, "To: <alice@example.org>\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "Final-Recipient: rfc822; x@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "Final-Recipient: rfc822; y@example.net\r\nAction: failed\r\nStatus: 5.4.7\r\n"));
    ck_assert_ptr_nonnull(strstr(m, "Diagnostic-Code: smtp; 550 5.1.1 no such user"));
    ck_assert_ptr_nonnull(strstr(m, "Content-Type: message/rfc822"));
    ck_assert_ptr_nonnull(strstr(m, "noon"));
    env_free(&b);
    env_free(&e);
    close(fd);
}
END_TEST

START_TEST(null_sender_goes_to_postmaster_once)
{
    struct envelope e;
    int fd;
    queue_original("", ENV_KIND_BOUNCE, &e, &fd);
    size_t idx[1] = { 0 };
    char id[QID_LEN + 1], err[256], want[300];
    ck_assert_int_eq(bounce_queue(&sp, &cfg, &e, fd, DSN_FAILED, idx, 1, time(NULL), id, err, sizeof err), 0);
    ck_assert(qid_valid(id));
    struct envelope b;
    bool corrupt;
    ck_assert_int_eq(spool_env_read(&sp, id, &b, &corrupt, err, sizeof err), 0);
    snprintf(want, sizeof want, "postmaster@%s", cfg.local_domains.items[0]);
    ck_assert_str_eq(b.rcpts[0].addr, want);
    ck_assert_int_eq(b.kind, ENV_KIND_DOUBLE_BOUNCE);
    /* no delay notice about a bounce */
    ck_assert_int_eq(bounce_queue(&sp, &cfg, &e, fd, DSN_DELAYED, idx, 1, time(NULL), id, err, sizeof err), 0);
    ck_assert_str_eq(id, "");
    env_free(&b);
    env_free(&e);
    close(fd);

    /* the double bounce itself failing: dropped, nothing queued */
    queue_original("", ENV_KIND_DOUBLE_BOUNCE, &e, &fd);
    int before = spool_scan(&sp, false, NULL, NULL);
    ck_assert_int_eq(bounce_queue(&sp, &cfg, &e, fd, DSN_FAILED, idx, 1, time(NULL), id, err, sizeof err), 0);
    ck_assert_str_eq(id, "");
    ck_assert_int_eq(spool_scan(&sp, false, NULL, NULL), before);
    env_free(&e);
    close(fd);
}
END_TEST

START_TEST(admin_bounce_and_delete)
{
    struct envelope e;
    int fd;
    queue_original("alice@example.org", ENV_KIND_NORMAL, &e, &fd);
    close(fd);
    e.rcpts[0].state = RCPT_DEFERRED;
    e.rcpts[1].state = RCPT_DELIVERED;
    ck_assert_int_eq(spool_env_write(&sp, &e), 0);
    char bid[QID_LEN + 1], msg[512];
    ck_assert_int_eq(qadmin_apply(&sp, &cfg, QADMIN_HOLD, e.id, bid, msg, sizeof msg), 0);
    struct envelope got;
    bool corrupt;
    char err[256];
    ck_assert_int_eq(spool_env_read(&sp, e.id, &got, &corrupt, err, sizeof err), 0);
    ck_assert(got.hold);
    env_free(&got);
    ck_assert_int_eq(qadmin_apply(&sp, &cfg, QADMIN_FLUSH, e.id, bid, msg, sizeof msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "on hold"));
    ck_assert_int_eq(qadmin_apply(&sp, &cfg, QADMIN_BOUNCE, e.id, bid, msg, sizeof msg), 0);
    ck_assert(qid_valid(bid));
    const char *m = read_msg(bid);
    /* only the recipient still to do is reported */
    ck_assert_ptr_nonnull(strstr(m, "Final-Recipient: rfc822; x@example.net\r\nAction: failed\r\nStatus: 5.0.0\r\n"));
    ck_assert_ptr_null(strstr(m, "y@example.net"));
    ck_assert_ptr_nonnull(strstr(m, "returned by the administrator"));
    ck_assert_int_eq(spool_env_read(&sp, e.id, &got, &corrupt, err, sizeof err), -1);
    char dsn_id[QID_LEN + 1];
    strcpy(dsn_id, bid);
    ck_assert_int_eq(qadmin_apply(&sp, &cfg, QADMIN_DELETE, dsn_id, bid, msg, sizeof msg), 0);
    ck_assert_int_eq(spool_scan(&sp, false, NULL, NULL), 0);
    ck_assert_int_eq(qadmin_apply(&sp, &cfg, QADMIN_DELETE, e.id, bid, msg, sizeof msg), -1);
    ck_assert_ptr_nonnull(strstr(msg, "not in the queue"));
    ck_assert_int_eq(qadmin_apply(&sp, &cfg, QADMIN_HOLD, "nope", bid, msg, sizeof msg), -1);
    env_free(&e);
}
END_TEST

Suite *bounce_suite(void)
{
    Suite *s = suite_create("bounce");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, notify_defaults);
    tcase_add_test(tc, result_status);
    tcase_add_test(tc, bounce_to_sender_one_dsn);
    tcase_add_test(tc, null_sender_goes_to_postmaster_once);
    tcase_add_test(tc, admin_bounce_and_delete);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(bounce_suite)

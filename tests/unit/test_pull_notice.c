/* Unit tests for pull/notice: the record format (round trip, tampering), and the
   Berkeley DB store on real files: batch add, get, list per user, H, fetch request,
   drop, expiry, and a notice surviving a kill -9 right after notice_add returns. */
#include "pull/notice.h"
#include "tests/unit/unit.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64], err[512];
static struct msid_key key;
static struct fdb_env *env;
static struct notice_store *st;

static void setup(void)
{
    strcpy(dir, "/tmp/ferry-notice-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    memset(key.k, 3, sizeof key.k);
    ck_assert_msg(fdb_env_open(dir, &env, err, sizeof err) == 0, "%s", err);
    st = notice_open(env, &key, err, sizeof err);
    ck_assert_msg(st != NULL, "%s", err);
}

static void teardown(void)
{
    notice_close(st);
    fdb_env_close(env);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct pull_notice make(const char *user, const char *rcpt)
{
    struct pull_notice n;
    memset(&n, 0, sizeof n);
    strcpy(n.user, user);
    strcpy(n.msid, "0ABCDEFGHIJKLMNO-0077359400-ABCDEFGHIJKLMNOPQRSTUV0123");
    strcpy(n.sender, "someone@far.example");
    strcpy(n.recipient, rcpt);
    strcpy(n.subject, "Hello\r\nBcc: injected");
    strcpy(n.peer_ip, "192.0.2.25");
    strcpy(n.peer_name, "mx.far.example");
    return n;
}

static int collect(const struct pull_notice *n, void *arg)
{
    strcat(arg, n->recipient);
    strcat(arg, ";");
    return 0;
}

START_TEST(add_get_list)
{
    struct pull_notice b[3] = { make("alice", "alice@here.example"), make("Bob", "bob@here.example"),
                                make("alicex", "alicex@here.example") };
    ck_assert_msg(notice_add(st, b, 3, 1000, 14 * 86400, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(strlen(b[0].id), NOTICE_ID_LEN);
    ck_assert_str_ne(b[0].id, b[1].id);
    ck_assert_str_eq(b[1].user, "bob");
    ck_assert_str_eq(b[0].subject, "Hello Bcc: injected");        /* one line, whatever came in */
    struct pull_notice g;
    ck_assert_int_eq(notice_get(st, "alice", b[0].id, &g, err, sizeof err), 0);
    ck_assert_str_eq(g.sender, "someone@far.example");
    ck_assert_str_eq(g.peer_name, "mx.far.example");
    ck_assert_int_eq((long long)g.expires, 1000 + 14 * 86400);
    ck_assert_int_eq(g.state, NOTICE_PENDING);
    ck_assert_int_eq(notice_get(st, "bob", b[0].id, &g, err, sizeof err), 1);   /* someone else's */
    ck_assert_int_eq(notice_get(st, "alice", "zz", &g, err, sizeof err), 1);
    char got[512] = "";
    ck_assert_int_eq(notice_list(st, "alice", collect, got, NULL), 0);
    ck_assert_str_eq(got, "alice@here.example;");
    got[0] = '\0';
    ck_assert_int_eq(notice_list(st, NULL, collect, got, NULL), 0);
    ck_assert_str_eq(got, "alice@here.example;alicex@here.example;bob@here.example;");
    /* H */
    ck_assert(notice_h_ok(st, &g, g.h));
    char wrong[NOTICE_H_LEN + 1];
    strcpy(wrong, g.h);
    wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
    ck_assert(!notice_h_ok(st, &g, wrong));
    ck_assert(!notice_h_ok(st, &g, ""));
    ck_assert(!notice_h_ok(st, &b[1], g.h));                           /* another notice's H */
}
END_TEST

/* The pull scan's windows: max records each, resuming after the last one read,
   every notice seen once per pass, then the start again. */
START_TEST(list_in_windows)
{
    struct pull_notice b[5] = { make("a", "a1@h.example"), make("aa", "a2@h.example"), make("b", "b1@h.example"),
                                make("c", "c1@h.example"), make("cc", "c2@h.example") };
    ck_assert_msg(notice_add(st, b, 5, 1000, 100, err, sizeof err) == 0, "%s", err);
    char cur[PULL_USER_MAX + NOTICE_ID_LEN + 3], next[sizeof cur], got[512] = "";
    size_t curlen = 0, nextlen = 0;
    ck_assert_int_eq(notice_list_from(st, cur, curlen, 2, collect, got, next, sizeof next, &nextlen), 1);
    ck_assert_str_eq(got, "a1@h.example;a2@h.example;");
    memcpy(cur, next, nextlen), curlen = nextlen;
    ck_assert_int_eq(notice_list_from(st, cur, curlen, 2, collect, got, next, sizeof next, &nextlen), 1);
    ck_assert_str_eq(got, "a1@h.example;a2@h.example;b1@h.example;c1@h.example;");
    memcpy(cur, next, nextlen), curlen = nextlen;
    ck_assert_int_eq(notice_list_from(st, cur, curlen, 2, collect, got, next, sizeof next, &nextlen), 0);
    ck_assert_str_eq(got, "a1@h.example;a2@h.example;b1@h.example;c1@h.example;c2@h.example;");
    ck_assert_uint_eq(nextlen, 0);          /* the end: the next pass starts over */
    got[0] = '\0';
    ck_assert_int_eq(notice_list_from(st, NULL, 0, 10, collect, got, next, sizeof next, &nextlen), 0);
    ck_assert_str_eq(got, "a1@h.example;a2@h.example;b1@h.example;c1@h.example;c2@h.example;");
}
END_TEST

START_TEST(update_drop_expire)
{
    struct pull_notice b[2] = { make("alice", "alice@here.example"), make("alice", "alice2@here.example") };
    ck_assert_int_eq(notice_add(st, b, 1, 1000, 100, err, sizeof err), 0);
    ck_assert_int_eq(notice_add(st, b + 1, 1, 5000, 100, err, sizeof err), 0);
    ck_assert_int_eq(notice_update(st, "alice", b[0].id, NOTICE_FETCH_REQUESTED, 1, 1050, err, sizeof err), 0);
    struct pull_notice g;
    ck_assert_int_eq(notice_get(st, "alice", b[0].id, &g, err, sizeof err), 0);
    ck_assert_int_eq(g.state, NOTICE_FETCH_REQUESTED);
    ck_assert_int_eq((long long)g.requested, 1050);
    ck_assert_uint_eq(g.attempts, 1);
    ck_assert_int_eq(notice_update(st, "alice", "0123456789abcdef", NOTICE_AUTO, 0, 1, err, sizeof err), 1);
    size_t dropped;
    ck_assert_int_eq(notice_expire(st, 1099, 100, &dropped), 0);
    ck_assert_uint_eq(dropped, 0);
    ck_assert_int_eq(notice_expire(st, 1100, 100, &dropped), 0);
    ck_assert_uint_eq(dropped, 1);
    ck_assert_int_eq(notice_get(st, "alice", b[0].id, &g, err, sizeof err), 1);
    ck_assert_int_eq(notice_get(st, "alice", b[1].id, &g, err, sizeof err), 0);
    ck_assert_int_eq(notice_drop(st, "alice", b[1].id, err, sizeof err), 0);
    ck_assert_int_eq(notice_drop(st, "alice", b[1].id, err, sizeof err), 1);
}
END_TEST

START_TEST(batch_all_or_nothing)
{
    struct pull_notice b[2] = { make("alice", "alice@here.example"), make("bob", "bob@here.example") };
    strcpy(b[1].peer_ip, "");                                   /* invalid: nothing stored */
    ck_assert_int_eq(notice_add(st, b, 2, 1000, 100, err, sizeof err), -1);
    char got[256] = "";
    ck_assert_int_eq(notice_list(st, NULL, collect, got, NULL), 0);
    ck_assert_str_eq(got, "");
    ck_assert_int_eq(notice_add(st, b, 0, 1000, 100, err, sizeof err), -1);
}
END_TEST

START_TEST(record_format)
{
    struct pull_notice n = make("alice", "alice@here.example"), back;
    strcpy(n.id, "0000000a0000000b");
    strcpy(n.h, "0123456789ABCDEF");
    memset(n.subject, 0, sizeof n.subject);
    strcpy(n.subject, "Hi");
    char rec[4096];
    int len = notice_serialize(&n, rec, sizeof rec);
    ck_assert_int_gt(len, 0);
    ck_assert_int_eq(notice_parse(rec, (size_t)len, &back, err, sizeof err), 0);
    ck_assert_mem_eq(&n, &back, sizeof n);
    /* any flipped octet before the end line is caught */
    for (int i = 0; i < len - 13; i++) {
        char t[4096];
        memcpy(t, rec, (size_t)len);
        t[i] ^= 0x20;
        ck_assert_msg(notice_parse(t, (size_t)len, &back, err, sizeof err) < 0, "flip at %d accepted", i);
    }
    ck_assert_int_eq(notice_parse(rec, (size_t)len - 1, &back, err, sizeof err), -1);
    strcpy(n.sender, "a\nb@c");                                 /* a newline can never be written */
    ck_assert_int_eq(notice_serialize(&n, rec, sizeof rec), -1);
}
END_TEST

START_TEST(survives_kill)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct fdb_env *e2;
        struct notice_store *s2;
        struct pull_notice n = make("carol", "carol@here.example");
        if (fdb_env_open(dir, &e2, err, sizeof err) < 0 || !(s2 = notice_open(e2, &key, err, sizeof err)) ||
            notice_add(s2, &n, 1, 2000, 100, err, sizeof err) < 0)
            _exit(1);
        if (write(fds[1], n.id, NOTICE_ID_LEN) != NOTICE_ID_LEN)
            _exit(1);
        kill(getpid(), SIGKILL);        /* no close, no checkpoint: as a crash */
    }
    close(fds[1]);
    char id[NOTICE_ID_LEN + 1] = "";
    ck_assert_int_eq(read(fds[0], id, NOTICE_ID_LEN), NOTICE_ID_LEN);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFSIGNALED(status));
    notice_close(st);
    fdb_env_close(env);
    ck_assert_int_eq(fdb_env_open(dir, &env, err, sizeof err), 0);     /* recovery runs */
    st = notice_open(env, &key, err, sizeof err);
    struct pull_notice g;
    ck_assert_int_eq(notice_get(st, "carol", id, &g, err, sizeof err), 0);
    ck_assert_str_eq(g.recipient, "carol@here.example");
}
END_TEST

static Suite *pull_notice_suite(void)
{
    Suite *s = suite_create("pull_notice");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, add_get_list);
    tcase_add_test(tc, update_drop_expire);
    tcase_add_test(tc, list_in_windows);
    tcase_add_test(tc, batch_all_or_nothing);
    tcase_add_test(tc, record_format);
    tcase_add_test(tc, survives_kill);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(pull_notice_suite)

/* mbox writer: separator, mboxrd quoting, line ends, locking, truncation on error. */
#include "delivery/mbox.h"
#include "unit.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/ferry-mbox-XXXXXX";
static char path[256];

static void setup(void)
{
    strcpy(dir, "/tmp/ferry-mbox-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/alice", dir);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct msg_src msg_fd(const char *text)
{
    char p[300];
    snprintf(p, sizeof p, "%s/msg", dir);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    lseek(fd, 0, SEEK_SET);
    return (struct msg_src){ fd, strlen(text) };
}

static char *slurp(const char *p, size_t *len)
{
    static char buf[65536];
    int fd = open(p, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return buf;
}

/* What mbox_write makes of text (no From line, no prefix). */
static char *written(const char *text)
{
    struct msg_src in = msg_fd(text);
    char out[300];
    snprintf(out, sizeof out, "%s/out", dir);
    int fd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(mbox_write(fd, "", "", in), 0);
    close(fd);
    close(in.fd);
    return slurp(out, NULL);
}

START_TEST(from_line_format)
{
    char line[300];
    mbox_from_line("bob@example.test", 0, line, sizeof line);
    ck_assert_str_eq(line, "From bob@example.test Thu Jan  1 00:00:00 1970\n");
    mbox_from_line("", 1700000000, line, sizeof line);
    ck_assert_str_eq(line, "From MAILER-DAEMON Tue Nov 14 22:13:20 2023\n");
    mbox_from_line("\"a b\"@example.test", 0, line, sizeof line);
    ck_assert_str_eq(line, "From \"a_b\"@example.test Thu Jan  1 00:00:00 1970\n");
}
END_TEST

START_TEST(quoting_mboxrd)
{
    ck_assert_str_eq(written("Subject: x\r\n\r\nFrom here\r\n>From there\r\n>>From far\r\n"),
                     "Subject: x\n\n>From here\n>>From there\n>>>From far\n\n");
    /* Only "From " at a line start counts. */
    ck_assert_str_eq(written("a\r\nFromage\r\n From x\r\n>Frog\r\nFrom\r\n"),
                     "a\nFromage\n From x\n>Frog\nFrom\n\n");
    /* A From line split across two reads is still seen: done by the state
       machine, tested here with a line at the very end without a newline. */
    ck_assert_str_eq(written("x\r\nFrom y"), "x\n>From y\n\n");
    ck_assert_str_eq(written("x\r\n>>Fr"), "x\n>>Fr\n\n");
}
END_TEST

START_TEST(line_ends)
{
    ck_assert_str_eq(written("a\r\nb\rc\r\n"), "a\nb\rc\n\n");
    ck_assert_str_eq(written("no newline"), "no newline\n\n");
    ck_assert_str_eq(written("ends in cr\r"), "ends in cr\r\n\n");
}
END_TEST

START_TEST(deliver_appends)
{
    struct delivery_status st;
    struct msg_src in = msg_fd("Subject: one\r\n\r\nFrom me\r\n");
    mbox_deliver(path, "bob@example.test", "Delivered-To: alice@example.test\n", in, 1, &st);
    ck_assert_int_eq(st.result, DELIVERY_OK);
    close(in.fd);
    in = msg_fd("Subject: two\r\n\r\nbody\r\n");
    mbox_deliver(path, "", "", in, 1, &st);
    ck_assert_int_eq(st.result, DELIVERY_OK);
    close(in.fd);
    char *m = slurp(path, NULL);
    ck_assert_ptr_nonnull(strstr(m, "Delivered-To: alice@example.test\nSubject: one\n\n>From me\n\nFrom MAILER-DAEMON "));
    ck_assert_int_eq(strncmp(m, "From bob@example.test ", 22), 0);
    ck_assert_ptr_nonnull(strstr(m, "Subject: two\n\nbody\n\n"));
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    char lock[300];
    snprintf(lock, sizeof lock, "%s.lock", path);
    ck_assert_int_ne(access(lock, F_OK), 0);
}
END_TEST

/* Someone else's dotlock on the test mbox; its name goes into lock. */
static void hold_dotlock(char *lock, size_t size)
{
    snprintf(lock, size, "%s.lock", path);
    int l = open(lock, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(l, 0);
    close(l);
}

/* Age the lock past MBOX_STALE_LOCK. */
static void make_stale(const char *lock)
{
    struct timeval old[2] = { { time(NULL) - MBOX_STALE_LOCK - 10, 0 }, { time(NULL) - MBOX_STALE_LOCK - 10, 0 } };
    ck_assert_int_eq(utimes(lock, old), 0);
}

START_TEST(dotlock_held_defers)
{
    char lock[300];
    hold_dotlock(lock, sizeof lock);
    struct delivery_status st;
    struct msg_src in = msg_fd("x\r\n");
    mbox_deliver(path, "bob@example.test", "", in, 1, &st);
    ck_assert_int_eq(st.result, DELIVERY_DEFER);
    ck_assert_int_eq(strncmp(st.text, "4.2.0 ", 6), 0);
    ck_assert_int_eq(access(lock, F_OK), 0);        /* someone else's lock is left alone */
    ck_assert_int_ne(access(path, F_OK), 0);
    /* The same lock, old enough to be stale, is removed and delivery goes on. */
    make_stale(lock);
    lseek(in.fd, 0, SEEK_SET);
    mbox_deliver(path, "bob@example.test", "", in, 1, &st);
    ck_assert_int_eq(st.result, DELIVERY_OK);
    ck_assert_int_ne(access(lock, F_OK), 0);
    close(in.fd);
}
END_TEST

/* Security review #6: the daemon's wait (MBOX_LOCK_WAIT) is one try: a held
   dotlock defers at once instead of stalling the queue process for seconds; a
   stale one is still removed on that single try. */
START_TEST(daemon_lock_wait_does_not_block)
{
    ck_assert_uint_eq(MBOX_LOCK_WAIT, 0);
    char lock[300];
    hold_dotlock(lock, sizeof lock);
    struct delivery_status st;
    struct msg_src in = msg_fd("x\r\n");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mbox_deliver(path, "bob@example.test", "", in, MBOX_LOCK_WAIT, &st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_int_eq(st.result, DELIVERY_DEFER);
    ck_assert_msg(strstr(st.text, "4.2.0 mailbox") && strstr(st.text, "is locked"), "%s", st.text);
    ck_assert_msg(took < 0.2, "a held lock took %.2f s to defer", took);
    ck_assert_int_eq(access(lock, F_OK), 0);
    make_stale(lock);
    lseek(in.fd, 0, SEEK_SET);
    mbox_deliver(path, "bob@example.test", "", in, MBOX_LOCK_WAIT, &st);
    ck_assert_msg(st.result == DELIVERY_OK, "%s", st.text);
    ck_assert_int_ne(access(lock, F_OK), 0);
    close(in.fd);
}
END_TEST

START_TEST(fcntl_lock_held_defers)
{
    int fd = open(path, O_CREAT | O_RDWR, 0600);
    ck_assert_int_ge(fd, 0);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_SETLK, &fl) < 0)
            _exit(1);
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        sleep(5);
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(p[0], &c, 1), 1);
    struct delivery_status st;
    struct msg_src in = msg_fd("x\r\n");
    mbox_deliver(path, "bob@example.test", "", in, 1, &st);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ck_assert_int_eq(st.result, DELIVERY_DEFER);
    ck_assert_msg(strstr(st.text, "locked by another process") != NULL, "%s", st.text);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_size, 0);
    close(in.fd);
    close(fd);
}
END_TEST

/* A write that fails half way (the file size limit) leaves the mbox as it was. */
START_TEST(write_error_truncates)
{
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    const char before[] = "From old@example.test Thu Jan  1 00:00:00 1970\nSubject: old\n\nold\n\n";
    ck_assert_int_eq(write(fd, before, strlen(before)), (ssize_t)strlen(before));
    close(fd);
    char big[20000];
    memset(big, 'a', sizeof big - 3);
    strcpy(big + sizeof big - 3, "\r\n");
    struct msg_src in = msg_fd(big);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = { 4096, 4096 };
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    struct delivery_status st;
    mbox_deliver(path, "bob@example.test", "", in, 1, &st);
    ck_assert_int_eq(st.result, DELIVERY_DEFER);
    ck_assert_msg(strncmp(st.text, "4.2.2 ", 6) == 0, "%s", st.text);
    size_t n;
    char *m = slurp(path, &n);
    ck_assert_uint_eq(n, strlen(before));
    ck_assert_str_eq(m, before);
    close(in.fd);
}
END_TEST

START_TEST(not_a_file_fails)
{
    ck_assert_int_eq(mkdir(path, 0700), 0);
    struct msg_src in = msg_fd("x\r\n");
    struct delivery_status st;
    mbox_deliver(path, "bob@example.test", "", in, 1, &st);
    ck_assert_int_eq(st.result, DELIVERY_FAIL);
    ck_assert_msg(strncmp(st.text, "5.3.5 ", 6) == 0, "%s", st.text);
    /* A symbolic link is not followed. */
    char link[300];
    snprintf(link, sizeof link, "%s/bob", dir);
    ck_assert_int_eq(symlink("/etc/passwd", link), 0);
    lseek(in.fd, 0, SEEK_SET);
    mbox_deliver(link, "bob@example.test", "", in, 1, &st);
    ck_assert_int_eq(st.result, DELIVERY_FAIL);
    close(in.fd);
}
END_TEST

Suite *mbox_suite(void)
{
    Suite *s = suite_create("mbox");
    TCase *tc = tcase_create("mbox");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, from_line_format);
    tcase_add_test(tc, quoting_mboxrd);
    tcase_add_test(tc, line_ends);
    tcase_add_test(tc, deliver_appends);
    tcase_add_test(tc, dotlock_held_defers);
    tcase_add_test(tc, daemon_lock_wait_does_not_block);
    tcase_add_test(tc, fcntl_lock_held_defers);
    tcase_add_test(tc, write_error_truncates);
    tcase_add_test(tc, not_a_file_fails);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(mbox_suite)

/*
 * test_fdpass.c — lib/fdpass.h over a real SOCK_SEQPACKET socketpair.
 *
 * Covers: a record and a descriptor arrive together, and the descriptor names
 * the same open file (an inode and a shared offset); a record without one gives
 * -1; a record longer than the buffer is reported cut; end of file is 0;
 * MSG_DONTWAIT on an empty socket is EAGAIN; a descriptor the receiver has no
 * room for (RLIMIT_NOFILE) is reported lost, and the record still arrives.
 */
#include "lib/fdpass.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int sv[2];

static void setup(void)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void teardown(void)
{
    close(sv[0]);
    close(sv[1]);
}

START_TEST(record_and_descriptor_arrive_together)
{
    FILE *tmp = tmpfile();
    ck_assert_ptr_nonnull(tmp);
    int fd = fileno(tmp);
    ck_assert_int_eq(write(fd, "abc", 3), 3);
    const char msg[] = "park 42";
    ck_assert_int_eq(fdpass_send(sv[0], msg, sizeof msg, fd, 0), 0);
    char got[64];
    int rfd;
    bool lost, cut;
    ck_assert_int_eq(fdpass_recv(sv[1], got, sizeof got, &rfd, &lost, &cut, 0), (ssize_t)sizeof msg);
    ck_assert_str_eq(got, msg);
    ck_assert(!lost && !cut);
    ck_assert_int_ge(rfd, 0);
    ck_assert_int_ne(rfd, fd);
    struct stat a, b;
    ck_assert_int_eq(fstat(fd, &a), 0);
    ck_assert_int_eq(fstat(rfd, &b), 0);
    ck_assert_uint_eq(a.st_ino, b.st_ino);
    ck_assert_int_eq(lseek(rfd, 0, SEEK_CUR), 3);          /* one open file, one offset */
    ck_assert_int_eq(fcntl(rfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    close(rfd);
    fclose(tmp);
}
END_TEST

START_TEST(record_without_descriptor)
{
    ck_assert_int_eq(fdpass_send(sv[0], "x", 1, -1, 0), 0);
    char got[8];
    int rfd;
    bool lost, cut;
    ck_assert_int_eq(fdpass_recv(sv[1], got, sizeof got, &rfd, &lost, &cut, 0), 1);
    ck_assert_int_eq(rfd, -1);
    ck_assert(!lost && !cut);
}
END_TEST

START_TEST(long_record_is_cut_eof_and_empty)
{
    char big[100];
    memset(big, 'b', sizeof big);
    ck_assert_int_eq(fdpass_send(sv[0], big, sizeof big, -1, 0), 0);
    char got[16];
    int rfd;
    bool lost, cut;
    ck_assert_int_eq(fdpass_recv(sv[1], got, sizeof got, &rfd, &lost, &cut, 0), (ssize_t)sizeof got);
    ck_assert(cut);
    ck_assert_int_eq(fdpass_recv(sv[1], got, sizeof got, &rfd, &lost, &cut, MSG_DONTWAIT), -1);
    ck_assert_int_eq(errno, EAGAIN);                        /* the rest of the cut record is gone */
    close(sv[0]);
    sv[0] = -1;
    ck_assert_int_eq(fdpass_recv(sv[1], got, sizeof got, &rfd, &lost, &cut, 0), 0);
}
END_TEST

START_TEST(descriptor_without_room_is_reported_lost)
{
    int fd = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fdpass_send(sv[0], "y", 1, fd, 0), 0);
    struct rlimit old, tight;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    /* The lowest free descriptor as the limit: every one below it is taken. */
    int probe = dup(fd);
    ck_assert_int_ge(probe, 0);
    close(probe);
    tight.rlim_cur = (rlim_t)probe;
    tight.rlim_max = old.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &tight), 0);
    char got[8];
    int rfd;
    bool lost, cut;
    ssize_t n = fdpass_recv(sv[1], got, sizeof got, &rfd, &lost, &cut, 0);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(rfd, -1);
    ck_assert(lost);
    close(fd);
}
END_TEST

Suite *fdpass_suite(void)
{
    Suite *s = suite_create("fdpass");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, record_and_descriptor_arrive_together);
    tcase_add_test(tc, record_without_descriptor);
    tcase_add_test(tc, long_record_is_cut_eof_and_empty);
    tcase_add_test(tc, descriptor_without_room_is_reported_lost);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(fdpass_suite)

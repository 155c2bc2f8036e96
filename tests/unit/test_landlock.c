/*
 * test_landlock.c — lib/landlock.h in a forked child: after confining it to one
 * read-write directory and one read-only file, it may create and read files in
 * the directory and read that file, and nothing else: /etc/passwd (readable by
 * anyone), a sibling directory, a link out of the allowed directory all give
 * EACCES. Skipped where the kernel has no Landlock.
 */
#include "lib/landlock.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int try_open(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    close(fd);
    return 0;
}

/* In the child: 0 when every expectation held, else the number of the one that failed. */
static int confined_child(const char *base)
{
    char rw[512], ro[512], other[512], path[600], link[600];
    snprintf(rw, sizeof rw, "%s/rw", base);
    snprintf(ro, sizeof ro, "%s/ro.txt", base);
    snprintf(other, sizeof other, "%s/other", base);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return 100;
    struct landlock_path paths[] = { { rw, true }, { ro, false }, { "/nonexistent/skipped", false } };
    char err[256];
    int r = landlock_confine(paths, 3, err, sizeof err);
    if (r == 0)
        return 77;                          /* no Landlock here */
    if (r < 0)
        return 101;
    snprintf(path, sizeof path, "%s/new", rw);
    if (try_open(path, O_WRONLY | O_CREAT | O_EXCL) != 0)
        return 1;
    if (try_open(path, O_RDONLY) != 0)
        return 2;
    if (try_open(ro, O_RDONLY) != 0)
        return 3;
    if (try_open(ro, O_WRONLY) != EACCES)
        return 4;
    if (try_open("/etc/passwd", O_RDONLY) != EACCES)
        return 5;
    snprintf(path, sizeof path, "%s/x", other);
    if (try_open(path, O_WRONLY | O_CREAT) != EACCES)
        return 6;
    snprintf(link, sizeof link, "%s/out", rw);       /* a link in the allowed place leads nowhere */
    if (try_open(link, O_RDONLY) != EACCES)
        return 7;
    return 0;
}

START_TEST(confined_to_what_was_allowed)
{
    char base[] = "/tmp/ferry-landlock-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(base));
    char rw[512], ro[512], other[512], link[600];
    snprintf(rw, sizeof rw, "%s/rw", base);
    snprintf(ro, sizeof ro, "%s/ro.txt", base);
    snprintf(other, sizeof other, "%s/other", base);
    snprintf(link, sizeof link, "%s/out", rw);
    ck_assert_int_eq(mkdir(rw, 0700), 0);
    ck_assert_int_eq(mkdir(other, 0700), 0);
    FILE *f = fopen(ro, "w");
    ck_assert_ptr_nonnull(f);
    fputs("x\n", f);
    fclose(f);
    ck_assert_int_eq(symlink("/etc/passwd", link), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(confined_child(base));
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    int rc = WEXITSTATUS(status);
    /* The parent is not confined: the same file opens here. */
    ck_assert_int_eq(try_open("/etc/passwd", O_RDONLY), 0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    ck_assert_int_eq(system(cmd), 0);
    if (rc == 77)
        return;                             /* kernel without Landlock: nothing to check */
    ck_assert_msg(rc == 0, "expectation %d failed in the confined child", rc);
}
END_TEST

Suite *landlock_suite(void)
{
    Suite *s = suite_create("landlock");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, confined_to_what_was_allowed);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(landlock_suite)

/*
 * test_safe_dir.c — lib/safe_dir.h in a temporary directory, as root acting for
 * an unprivileged user (uid/gid 65534): a link where a directory should be is
 * refused and its target left alone; a directory of a third user is refused; a
 * fresh one is made and handed over; a link in root's own directory is followed,
 * one inside the user's directory is not; an ancestor the user owns is refused.
 * Without root the privileged cases are skipped (chown needs root).
 */
#include "lib/safe_dir.h"
#include "tests/unit/unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define USER_ID 65534

static char top[64];
static char err[512];
static const struct safe_owner user = { true, USER_ID, USER_ID };

static void setup(void)
{
    strcpy(top, "/tmp/ferry-safedir-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(top));
    chmod(top, 0755);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", top);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *at(const char *rel)
{
    static char bufs[4][256];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, 256, "%s/%s", top, rel);
    return b;
}

START_TEST(fresh_directory_is_made_and_handed_over)
{
    if (geteuid() != 0)
        return;
    int fd = safe_dir_prepare(at("a/b/spool"), 0711, &user, err, sizeof err);
    ck_assert_msg(fd >= 0, "%s", err);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(st.st_uid, USER_ID);
    ck_assert_int_eq(st.st_mode & 07777, 0711);
    int sub = safe_dir_make(fd, "maildrop", at("a/b/spool/maildrop"), 01733, &user, err, sizeof err);
    ck_assert_msg(sub >= 0, "%s", err);
    ck_assert_int_eq(fstat(sub, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 01733);
    ck_assert_int_eq(stat(at("a/b"), &st), 0);
    ck_assert_int_eq(st.st_uid, 0);          /* parents are made, not given away */
    close(sub);
    close(fd);
}
END_TEST

START_TEST(planted_link_is_refused_and_target_untouched)
{
    if (geteuid() != 0)
        return;
    int fd = safe_dir_prepare(at("spool"), 0711, &user, err, sizeof err);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(mkdir(at("target"), 0700), 0);
    ck_assert_int_eq(symlink(at("target"), at("spool/held")), 0);
    ck_assert_int_eq(safe_dir_make(fd, "held", "spool/held", 0700, &user, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "spool/held is a symbolic link"));
    struct stat st;
    ck_assert_int_eq(stat(at("target"), &st), 0);
    ck_assert_int_eq(st.st_uid, 0);
    ck_assert_int_eq(st.st_mode & 07777, 0700);
    /* the same link as the leaf of a whole path */
    ck_assert_int_eq(symlink(at("target"), at("db")), 0);
    ck_assert_int_eq(safe_dir_prepare(at("db"), 0700, &user, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "is a symbolic link"));
    close(fd);
}
END_TEST

START_TEST(someone_elses_directory_is_refused)
{
    if (geteuid() != 0)
        return;
    int fd = safe_dir_prepare(at("spool"), 0711, &user, err, sizeof err);
    ck_assert_int_ge(fd, 0);
    /* Inside the user's own directory only the user's own directories pass. */
    ck_assert_int_eq(mkdir(at("spool/queue"), 0700), 0);
    ck_assert_int_eq(chown(at("spool/queue"), 1, 1), 0);
    ck_assert_int_eq(safe_dir_make(fd, "queue", "spool/queue", 0700, &user, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "owned by uid 1"));
    ck_assert_int_eq(mkdir(at("spool/held"), 0700), 0);      /* root's, in the user's directory */
    ck_assert_int_eq(safe_dir_make(fd, "held", "spool/held", 0700, &user, err, sizeof err), -1);
    struct stat st;
    ck_assert_int_eq(stat(at("spool/held"), &st), 0);
    ck_assert_int_eq(st.st_uid, 0);
    close(fd);
}
END_TEST

START_TEST(links_followed_only_where_the_user_cannot_change_them)
{
    if (geteuid() != 0)
        return;
    /* root's own link in root's own directory: the administrator's choice */
    ck_assert_int_eq(mkdir(at("real"), 0755), 0);
    ck_assert_int_eq(symlink("real", at("var")), 0);
    int fd = safe_dir_prepare(at("var/spool"), 0711, &user, err, sizeof err);
    ck_assert_msg(fd >= 0, "%s", err);
    close(fd);
    struct stat st;
    ck_assert_int_eq(stat(at("real/spool"), &st), 0);
    ck_assert_int_eq(st.st_uid, USER_ID);
    /* a path through the user's directory (an ancestor it owns) is refused, link or not */
    ck_assert_int_eq(mkdir(at("real/spool/x"), 0755), 0);
    ck_assert_int_eq(chown(at("real/spool/x"), USER_ID, USER_ID), 0);
    ck_assert_int_eq(safe_dir_prepare(at("var/spool/x/db"), 0700, &user, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "may be changed by uid 65534"));
    ck_assert_int_eq(mkdir(at("rootdir"), 0700), 0);
    ck_assert_int_eq(symlink(at("rootdir"), at("real/spool/l")), 0);
    ck_assert_int_eq(safe_dir_prepare(at("var/spool/l/db"), 0700, &user, err, sizeof err), -1);
    ck_assert_int_eq(access(at("rootdir/db"), F_OK), -1);
    /* a link whose target runs through the user's directory */
    ck_assert_int_eq(symlink(at("real/spool/x"), at("viauser")), 0);
    ck_assert_int_eq(safe_dir_prepare(at("viauser/db"), 0700, &user, err, sizeof err), -1);
    ck_assert_int_eq(access(at("real/spool/x/db"), F_OK), -1);
}
END_TEST

START_TEST(unprivileged_follows_and_keeps_mode)
{
    const struct safe_owner self = { false, geteuid(), getegid() };
    ck_assert_int_eq(mkdir(at("real"), 0755), 0);
    ck_assert_int_eq(symlink("real", at("var")), 0);
    int fd = safe_dir_prepare(at("var/mail"), 0700 | SAFE_DIR_KEEP_MODE, &self, err, sizeof err);
    ck_assert_msg(fd >= 0, "%s", err);
    close(fd);
    ck_assert_int_eq(chmod(at("real/mail"), 0750), 0);
    fd = safe_dir_prepare(at("var/mail"), 0700 | SAFE_DIR_KEEP_MODE, &self, err, sizeof err);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct stat st;
    ck_assert_int_eq(stat(at("real/mail"), &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0750);
    ck_assert_int_eq(safe_dir_prepare(at("var/.."), 0700, &self, err, sizeof err), -1);
}
END_TEST

Suite *safe_dir_suite(void)
{
    Suite *s = suite_create("safe_dir");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, fresh_directory_is_made_and_handed_over);
    tcase_add_test(tc, planted_link_is_refused_and_target_untouched);
    tcase_add_test(tc, someone_elses_directory_is_refused);
    tcase_add_test(tc, links_followed_only_where_the_user_cannot_change_them);
    tcase_add_test(tc, unprivileged_follows_and_keeps_mode);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(safe_dir_suite)

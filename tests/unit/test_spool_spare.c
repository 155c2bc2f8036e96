/*
 * test_spool_spare.c — queue/spool_spare.h, in a temporary spool.
 *
 * Covers: a delivered file retired leaves queue/ at once, is emptied and
 * published in spare/ by the pool's thread, and the next draft takes that very
 * inode (and commits a correct message into it); a file someone still holds
 * open is never reused (the taker's lease is refused; the draft gets a new
 * inode and the spare is unlinked); a spare that is not empty, has two links or
 * is a link is refused and removed, a hidden one is ignored; at SPARE_MAX files
 * the pool unlinks instead of keeping; opening the pool removes hidden
 * leftovers; spare_clean empties spare/; without spare/ both sides fall back;
 * a take that fails for a reason that may pass (here EXDEV) pauses taking,
 * leaves the spare where it was, and taking resumes after the pause.
 */
#include "queue/spool.h"
#include "queue/spool_spare.h"
#include "tests/unit/spool_fixture.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];
static char spdir[128];
static struct spool sp;
static char err[256];

static void setup(void)
{
    strcpy(root, "/tmp/ferry-test-spare-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(spdir, sizeof spdir, "%s/spool", root);
    ck_assert_msg(spool_prepare(spdir, false, 0, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(spool_open(&sp, spdir, err, sizeof err) == 0, "%s", err);
}

static void teardown(void)
{
    spool_close(&sp);
    rm_rf(root);
}

static const char *path_of(const char *sub, const char *name)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", spdir, sub, name);
    return path;
}

static ino_t inode_of(const char *sub, const char *name)
{
    struct stat st;
    ck_assert_msg(stat(path_of(sub, name), &st) == 0, "%s/%s: %s", sub, name, strerror(errno));
    return st.st_ino;
}

/* A committed format-2 message; its ID in id. */
static void queue_one(const char *body, char id[QID_LEN + 1])
{
    struct envelope e;
    env_init(&e);
    e.arrival = time(NULL);
    strcpy(e.sender, "alice@example.com");
    strcpy(e.protocol, "ESMTP");
    ck_assert_int_eq(env_add_rcpt(&e, "bob@example.org"), 0);
    ck_assert_int_eq(spool_enqueue(&sp, &e, body, strlen(body)), 0);
    strcpy(id, e.id);
    env_free(&e);
}

/* Retire ids through a pool and wait for its thread (close drains it). */
static void retire(char (*ids)[QID_LEN + 1], size_t n, int expect)
{
    struct spare_pool *p = malloc(sizeof *p);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(spare_pool_open(p, spdir, sp.queue_dirfd), expect == 1 ? 0 : -1);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(spare_retire(p, ids[i]), expect);
        if (expect == 1) {
            char name[QID_LEN + 8];
            snprintf(name, sizeof name, "%s.msg", ids[i]);
            ck_assert_int_ne(access(path_of("queue", name), F_OK), 0);    /* out of queue/ at once */
        }
    }
    spare_pool_close(p);
    free(p);
}

START_TEST(retired_file_is_taken)
{
    char id[1][QID_LEN + 1], name[QID_LEN + 8];
    queue_one("Subject: old\r\n\r\nthe old message\r\n", id[0]);
    snprintf(name, sizeof name, "%s.msg", id[0]);
    ino_t old = inode_of("queue", name);
    retire(id, 1, 1);
    ck_assert_int_eq(spool_count_files(spdir, "queue"), 0);
    ck_assert_int_eq(spool_count_files(spdir, "spare"), 1);
    struct stat st;
    ck_assert_int_eq(stat(path_of("spare", id[0]), &st), 0);      /* published under its old ID */
    ck_assert_uint_eq(st.st_ino, old);
    ck_assert_int_eq(st.st_size, 0);                              /* emptied: no old text kept */

    spool_take_spares(&sp);
    char nid[QID_LEN + 1];
    const char *body = "Subject: new\r\n\r\nthe new one\r\n";
    queue_one(body, nid);
    snprintf(name, sizeof name, "%s.msg", nid);
    ck_assert_uint_eq(inode_of("queue", name), old);              /* the same inode, reused */
    ck_assert_int_eq(spool_count_files(spdir, "spare"), 0);
    ck_assert_int_eq(spool_count_files(spdir, "incoming"), 0);
    struct envelope got;
    bool corrupt = true;
    ck_assert_msg(spool_env_read(&sp, nid, &got, &corrupt, err, sizeof err) == 0, "%s", err);
    ck_assert(got.spool_embedded);
    ck_assert_uint_eq(got.size, strlen(body));
    env_free(&got);
    char buf[128] = "";
    int fd = spool_msg_open(&sp, nid);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, strlen(body), 0), (ssize_t)strlen(body));
    close(fd);
    ck_assert_str_eq(buf, body);

    /* Nothing left: the next draft creates its file. */
    queue_one(body, nid);
    snprintf(name, sizeof name, "%s.msg", nid);
    ck_assert_uint_ne(inode_of("queue", name), old);
}
END_TEST

START_TEST(held_open_is_not_reused)
{
    char id[1][QID_LEN + 1], name[QID_LEN + 8];
    queue_one("Subject: x\r\n\r\nbody\r\n", id[0]);
    snprintf(name, sizeof name, "%s.msg", id[0]);
    ino_t old = inode_of("queue", name);
    int reader = open(path_of("queue", name), O_RDONLY);     /* a reader that kept it open */
    ck_assert_int_ge(reader, 0);
    retire(id, 1, 1);
    ck_assert_int_eq(spool_count_files(spdir, "spare"), 1);
    spool_take_spares(&sp);
    char nid[QID_LEN + 1];
    queue_one("Subject: y\r\n\r\nother\r\n", nid);
    snprintf(name, sizeof name, "%s.msg", nid);
    ck_assert_uint_ne(inode_of("queue", name), old);             /* a new inode */
    ck_assert_int_eq(spool_count_files(spdir, "spare"), 0);      /* the held one unlinked */
    ck_assert_int_eq(spool_count_files(spdir, "incoming"), 0);
    struct stat st;
    ck_assert_int_eq(fstat(reader, &st), 0);
    ck_assert_uint_eq(st.st_nlink, 0);                            /* the reader's alone now */
    close(reader);
}
END_TEST

START_TEST(bad_spares_are_refused)
{
    char a[QID_LEN + 1], b[QID_LEN + 1], c[QID_LEN + 1], hidden[QID_LEN + 2];
    qid_new(a);
    qid_new(b);
    qid_new(c);
    int fd = open(path_of("spare", a), O_WRONLY | O_CREAT | O_EXCL, 0600);     /* not empty */
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "old", 3), 3);
    close(fd);
    fd = open(path_of("spare", b), O_WRONLY | O_CREAT | O_EXCL, 0600);        /* two links */
    ck_assert_int_ge(fd, 0);
    close(fd);
    char other[PATH_MAX];
    snprintf(other, sizeof other, "%s/elsewhere", root);
    ck_assert_int_eq(link(path_of("spare", b), other), 0);
    ck_assert_int_eq(symlink(other, path_of("spare", c)), 0);     /* a link */
    snprintf(hidden, sizeof hidden, ".%s", c);
    fd = open(path_of("spare", hidden), O_WRONLY | O_CREAT | O_EXCL, 0600);   /* not published */
    ck_assert_int_ge(fd, 0);
    close(fd);
    ino_t hidden_ino = inode_of("spare", hidden);

    spool_take_spares(&sp);
    char nid[QID_LEN + 1], name[QID_LEN + 8];
    queue_one("Subject: z\r\n\r\nz\r\n", nid);
    snprintf(name, sizeof name, "%s.msg", nid);
    ino_t got = inode_of("queue", name);
    ck_assert_uint_ne(got, hidden_ino);
    ck_assert_int_eq(spool_count_files(spdir, "spare"), 1);       /* only the hidden one is left */
    ck_assert_int_eq(access(path_of("spare", hidden), F_OK), 0);
    ck_assert_int_eq(spool_count_files(spdir, "incoming"), 0);
    struct stat st;
    ck_assert_int_eq(stat(other, &st), 0);                       /* what the link named is untouched */
    ck_assert_uint_eq(st.st_nlink, 1);
}
END_TEST

START_TEST(full_pool_unlinks)
{
    char name[QID_LEN + 1];
    for (int i = 0; i < SPARE_MAX; i++) {
        qid_new(name);
        int fd = open(path_of("spare", name), O_WRONLY | O_CREAT | O_EXCL, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);
    }
    char id[1][QID_LEN + 1];
    queue_one("Subject: x\r\n\r\nbody\r\n", id[0]);
    retire(id, 1, 1);
    ck_assert_int_eq(spool_count_files(spdir, "queue"), 0);
    ck_assert_int_eq(spool_count_files(spdir, "spare"), SPARE_MAX);
    ck_assert_int_ne(access(path_of("spare", id[0]), F_OK), 0);
    ck_assert_int_eq(spare_clean(spdir), SPARE_MAX);
    ck_assert_int_eq(spool_count_files(spdir, "spare"), 0);
}
END_TEST

START_TEST(open_removes_hidden_leftovers)
{
    char id[QID_LEN + 1], hidden[QID_LEN + 2];
    qid_new(id);
    snprintf(hidden, sizeof hidden, ".%s", id);
    int fd = open(path_of("spare", hidden), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct spare_pool *p = malloc(sizeof *p);
    ck_assert_int_eq(spare_pool_open(p, spdir, sp.queue_dirfd), 0);
    ck_assert_int_eq(spool_count_files(spdir, "spare"), 0);
    /* Retiring a message that is not there leaves it to the caller. */
    ck_assert_int_eq(spare_retire(p, id), 0);
    spare_pool_close(p);
    free(p);
}
END_TEST

START_TEST(failed_take_pauses)
{
    char spare[QID_LEN + 1], nid[QID_LEN + 1], name[QID_LEN + 8];
    qid_new(spare);
    int fd = open(path_of("spare", spare), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    struct spare_taker *t = spare_taker_new(spdir);
    ck_assert_ptr_nonnull(t);
    /* incoming/ on another filesystem: the rename fails with EXDEV. */
    char shm[] = "/dev/shm/ferry-test-spare-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(shm));
    int real_incoming = t->incoming_dirfd;
    t->incoming_dirfd = open(shm, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(t->incoming_dirfd, 0);
    qid_new(nid);
    ck_assert_int_eq(spare_take(t, nid), -1);
    ck_assert_int_ge(t->dirfd, 0);                              /* paused, not off */
    ck_assert(t->idle_until > 0);
    ck_assert_int_eq(access(path_of("spare", spare), F_OK), 0); /* the spare stays */
    /* Within the pause nothing is tried, even where it would now work. */
    close(t->incoming_dirfd);
    t->incoming_dirfd = real_incoming;
    ck_assert_int_eq(spare_take(t, nid), -1);
    ck_assert_int_eq(access(path_of("spare", spare), F_OK), 0);
    /* After it, the spare is taken. */
    t->idle_until = 1;
    fd = spare_take(t, nid);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(name, sizeof name, "%s.msg", nid);
    ck_assert_int_eq(access(path_of("incoming", name), F_OK), 0);
    ck_assert_int_ne(access(path_of("spare", spare), F_OK), 0);
    spare_taker_free(t);
    rmdir(shm);
}
END_TEST

START_TEST(no_spare_dir_falls_back)
{
    ck_assert_int_eq(rmdir(path_of("spare", "")), 0);
    char id[1][QID_LEN + 1], name[QID_LEN + 8];
    queue_one("Subject: x\r\n\r\nbody\r\n", id[0]);
    retire(id, 1, 0);                       /* off: the caller unlinks */
    snprintf(name, sizeof name, "%s.msg", id[0]);
    ck_assert_int_eq(access(path_of("queue", name), F_OK), 0);
    spool_take_spares(&sp);
    ck_assert_ptr_null(sp.spare);
    char nid[QID_LEN + 1];
    queue_one("Subject: y\r\n\r\nbody\r\n", nid);
    ck_assert_int_eq(spool_count_files(spdir, "queue"), 2);
    ck_assert_int_eq(spare_clean(spdir), 0);
}
END_TEST

Suite *spool_spare_suite(void)
{
    Suite *s = suite_create("spool_spare");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, retired_file_is_taken);
    tcase_add_test(tc, held_open_is_not_reused);
    tcase_add_test(tc, bad_spares_are_refused);
    tcase_add_test(tc, full_pool_unlinks);
    tcase_add_test(tc, open_removes_hidden_leftovers);
    tcase_add_test(tc, failed_take_pauses);
    tcase_add_test(tc, no_spare_dir_falls_back);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(spool_spare_suite)

/*
 * test_spool.c — queue/spool.h, in a temporary directory.
 *
 * Covers: spool_prepare makes incoming/, queue/, held/, corrupt/; a draft
 * (message bytes + envelope) committed lands in queue/ as one file (format 2:
 * message, envelope, trailer) and leaves incoming/ empty; spool_env_read of it,
 * of a damaged envelope or trailer inside it, of a format-1 pair written by hand
 * (a torn message, a missing one, a missing envelope); spool_env_write writes
 * ID.env and cuts ID.msg back to the message; a crash between the two; removal;
 * spool_quarantine with its ID.reason; spool_scan visiting in ID order (format-2
 * files and pairs, each once), and with clean_strays removing a lone .msg without
 * a trailer and .tmp files; spool_clean_incoming; spool_draft_abort; a batch of
 * three committed at once.
 */
#include "queue/spool.h"
#include "lib/msgfile.h"
#include "tests/unit/spool_fixture.h"
#include "tests/unit/unit.h"

#include <dirent.h>
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
    strcpy(root, "/tmp/ferry-test-spool-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(spdir, sizeof spdir, "%s/a/b/spool", root);
    ck_assert_msg(spool_prepare(spdir, false, 0, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(spool_open(&sp, spdir, err, sizeof err) == 0, "%s", err);
}

static void teardown(void)
{
    spool_close(&sp);
    rm_rf(root);
}

static int count_files(const char *sub)
{
    return spool_count_files(spdir, sub);
}

static bool exists(const char *sub, const char *id, const char *ext)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/%s%s", spdir, sub, id, ext);
    return stat(path, &st) == 0;
}

static void touch(const char *sub, const char *name, const char *content)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", spdir, sub, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(content, f);
    fclose(f);
}

/* A draft with message text body, its envelope written, not committed. */
static void make_draft(struct spool_draft *d, const char *body, struct envelope *e)
{
    ck_assert_int_eq(spool_draft_new(&sp, d), 0);
    ck_assert(qid_valid(d->id));
    ck_assert_int_ge(d->msg_fd, 0);
    ck_assert(exists("incoming", d->id, ".msg"));
    ck_assert_int_eq(write(d->msg_fd, body, strlen(body)), (ssize_t)strlen(body));
    env_init(e);
    strcpy(e->id, d->id);
    e->arrival = time(NULL);
    e->size = strlen(body);
    strcpy(e->sender, "alice@example.com");
    strcpy(e->protocol, "ESMTP");
    ck_assert_int_eq(env_add_rcpt(e, "bob@example.org"), 0);
    ck_assert_int_eq(spool_draft_put_env(&sp, d, e), 0);
    ck_assert(d->has_env);
    ck_assert(!exists("incoming", d->id, ".env"));     /* one file per message */
}

static off_t file_size(const char *sub, const char *id, const char *ext)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s/%s%s", spdir, sub, id, ext);
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* Overwrite octets of queue/ID.msg at off (off < 0: from the end). */
static void poke(const char *id, off_t off, const char *bytes)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/queue/%s.msg", spdir, id);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    if (off < 0)
        off += file_size("queue", id, ".msg");
    ck_assert_int_eq(pwrite(fd, bytes, strlen(bytes), off), (ssize_t)strlen(bytes));
    close(fd);
}

/* queue/ID.env written by hand (no cut of ID.msg, as spool_env_write would). */
static void write_env_file(const struct envelope *e)
{
    struct buf b;
    buf_init(&b, ENV_MAX_SIZE);
    ck_assert_int_eq(env_serialize(e, &b), 0);
    char name[64], *text = malloc(b.len + 1);
    memcpy(text, b.data, b.len);
    text[b.len] = '\0';
    snprintf(name, sizeof name, "%s.env", e->id);
    touch("queue", name, text);
    free(text);
    buf_free(&b);
}

/* A format-1 pair as an earlier version (and ferrytest.inject) writes it:
   queue/ID.msg exactly the message, queue/ID.env beside it. */
static void write_pair(const char *id, const char *body)
{
    struct envelope e;
    env_init(&e);
    strcpy(e.id, id);
    e.arrival = time(NULL);
    e.size = strlen(body);
    strcpy(e.sender, "carol@example.com");
    strcpy(e.protocol, "ESMTP");
    ck_assert_int_eq(env_add_rcpt(&e, "dan@example.org"), 0);
    char name[64];
    snprintf(name, sizeof name, "%s.msg", id);
    touch("queue", name, body);
    write_env_file(&e);
    env_free(&e);
}

static void commit_one(char id[QID_LEN + 1], const char *body)
{
    struct spool_draft d, *dp = &d;
    struct envelope e;
    make_draft(&d, body, &e);
    ck_assert_int_eq(spool_commit(&sp, &dp, 1), 0);
    strcpy(id, d.id);
    env_free(&e);
}

START_TEST(prepare_makes_tree)
{
    static const char *const subs[] = { "incoming", "queue", "held", "corrupt" };
    for (size_t i = 0; i < 4; i++) {
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", spdir, subs[i]);
        ck_assert_msg(stat(path, &st) == 0 && S_ISDIR(st.st_mode), "%s missing", path);
        ck_assert_uint_eq(st.st_mode & 0777, 0700);
    }
    struct stat st;
    ck_assert_int_eq(stat(spdir, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0711);     /* others pass through to maildrop/ only */
    char drop[PATH_MAX];
    snprintf(drop, sizeof drop, "%s/maildrop", spdir);
    ck_assert_int_eq(stat(drop, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 01733);
    /* a mode changed by hand is put right */
    ck_assert_int_eq(chmod(drop, 0777), 0);
    ck_assert_int_eq(spool_prepare(spdir, false, 0, 0, err, sizeof err), 0);
    ck_assert_int_eq(stat(drop, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 01733);
    /* again: idempotent */
    ck_assert_int_eq(spool_prepare(spdir, false, 0, 0, err, sizeof err), 0);
    /* a spool that does not exist cannot be opened */
    struct spool other;
    char missing[200];
    snprintf(missing, sizeof missing, "%s/nope", root);
    ck_assert_int_lt(spool_open(&other, missing, err, sizeof err), 0);
}
END_TEST

START_TEST(commit_and_read)
{
    struct spool_draft d, *dp = &d;
    struct envelope e, got;
    bool corrupt = true;
    make_draft(&d, "Subject: x\r\n\r\nbody\r\n", &e);
    /* not committed yet: nothing in queue/ */
    ck_assert_int_eq(count_files("queue"), 0);
    ck_assert_int_eq(spool_commit(&sp, &dp, 1), 0);
    ck_assert_int_eq(d.msg_fd, -1);
    ck_assert(exists("queue", d.id, ".msg"));
    ck_assert(!exists("queue", d.id, ".env"));
    ck_assert_int_eq(count_files("incoming"), 0);
    ck_assert_int_eq(count_files("queue"), 1);      /* exactly one file */

    /* Format 2: the message, the envelope at e.size, a trailer naming it. */
    int fd = spool_msg_open(&sp, d.id);
    ck_assert_int_ge(fd, 0);
    unsigned long long fsize, off, msize;
    unsigned long len;
    ck_assert_int_eq(msgfile_trailer_read(fd, d.id, &fsize, &off, &len), 1);
    ck_assert_uint_eq(off, e.size);
    ck_assert_uint_eq(fsize, off + len + MSGFILE_TRAILER_LEN);
    ck_assert_int_eq(msgfile_msg_size(fd, d.id, &msize), 0);
    ck_assert_uint_eq(msize, e.size);
    char env_head[12] = "";
    ck_assert_int_eq(pread(fd, env_head, 11, (off_t)off), 11);
    ck_assert_str_eq(env_head, "FERRY-ENV 1");
    /* the trailer belongs to its file: another ID does not match it */
    ck_assert_int_eq(msgfile_trailer_read(fd, "0123456789ABCDEF", &fsize, &off, &len), 2);

    ck_assert_msg(spool_env_read(&sp, d.id, &got, &corrupt, err, sizeof err) == 0, "%s", err);
    ck_assert(!corrupt);
    ck_assert(got.spool_embedded);
    ck_assert_str_eq(got.id, d.id);
    ck_assert_str_eq(got.sender, "alice@example.com");
    ck_assert_uint_eq(got.size, strlen("Subject: x\r\n\r\nbody\r\n"));
    ck_assert_uint_eq(got.nrcpts, 1);
    env_free(&got);

    /* What every reader does: the message's size octets, never to end of file. */
    char buf[64];
    unsigned long long left = e.size;
    ssize_t n = msg_read(fd, &left, buf, sizeof buf - 1);
    ck_assert_int_eq(msg_read(fd, &left, buf + n, sizeof buf - 1 - (size_t)n), 0);
    close(fd);
    ck_assert_int_eq(n, (ssize_t)e.size);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "Subject: x\r\n\r\nbody\r\n");
    env_free(&e);
}
END_TEST

START_TEST(read_torn_and_missing)
{
    char id[QID_LEN + 1], path[PATH_MAX];
    struct envelope got;
    bool corrupt = false;
    qid_new(id);
    write_pair(id, "0123456789\r\n");
    ck_assert_msg(spool_env_read(&sp, id, &got, &corrupt, err, sizeof err) == 0, "%s", err);
    ck_assert(!got.spool_embedded);
    ck_assert_str_eq(got.sender, "carol@example.com");
    env_free(&got);
    snprintf(path, sizeof path, "%s/queue/%s.msg", spdir, id);
    ck_assert_int_eq(truncate(path, 5), 0);
    ck_assert_int_lt(spool_env_read(&sp, id, &got, &corrupt, err, sizeof err), 0);
    ck_assert(corrupt);
    ck_assert_ptr_nonnull(strstr(err, "wrong size"));

    /* message gone */
    ck_assert_int_eq(unlink(path), 0);
    corrupt = false;
    ck_assert_int_lt(spool_env_read(&sp, id, &got, &corrupt, err, sizeof err), 0);
    ck_assert(corrupt);
    ck_assert_ptr_nonnull(strstr(err, "missing"));

    /* envelope absent: an error, but nothing to quarantine */
    corrupt = true;
    ck_assert_int_lt(spool_env_read(&sp, "0123456789ABCDEF", &got, &corrupt, err, sizeof err), 0);
    ck_assert(!corrupt);

    /* envelope absent and a message without a trailer: a stray, not corrupt */
    corrupt = true;
    write_pair(id, "0123456789\r\n");
    snprintf(path, sizeof path, "%s/queue/%s.env", spdir, id);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_lt(spool_env_read(&sp, id, &got, &corrupt, err, sizeof err), 0);
    ck_assert(!corrupt);
    ck_assert_int_eq(errno, ENOENT);

    /* envelope damaged */
    char id2[QID_LEN + 1];
    qid_new(id2);
    write_pair(id2, "hello\r\n");
    snprintf(path, sizeof path, "%s/queue/%s.env", spdir, id2);
    int fd = open(path, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "X", 1, 20), 1);
    close(fd);
    corrupt = false;
    ck_assert_int_lt(spool_env_read(&sp, id2, &got, &corrupt, err, sizeof err), 0);
    ck_assert(corrupt);
}
END_TEST

/* The envelope inside ID.msg: a changed octet (its CRC), a trailer that is
   damaged or names another offset, an envelope naming another ID. */
START_TEST(read_embedded_damaged)
{
    char id[QID_LEN + 1];
    struct envelope got;
    bool corrupt = false;

    commit_one(id, "0123456789\r\n");
    /* the sender's first letter, inside the envelope: only the CRC tells */
    char path[PATH_MAX], text[1024];
    snprintf(path, sizeof path, "%s/queue/%s.msg", spdir, id);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t tl = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[tl] = '\0';
    char *alice = strstr(text, "alice@");
    ck_assert_ptr_nonnull(alice);
    poke(id, alice - text, "b");
    ck_assert_int_lt(spool_env_read(&sp, id, &got, &corrupt, err, sizeof err), 0);
    ck_assert(corrupt);
    ck_assert_msg(strstr(err, "checksum"), "%s", err);

    commit_one(id, "0123456789\r\n");
    poke(id, -MSGFILE_TRAILER_LEN + 13 + 15, "0");      /* the offset's last digit: c -> 0 */
    corrupt = false;
    ck_assert_int_lt(spool_env_read(&sp, id, &got, &corrupt, err, sizeof err), 0);
    ck_assert(corrupt);
    ck_assert_msg(strstr(err, "trailer"), "%s", err);

    commit_one(id, "0123456789\r\n");
    poke(id, -MSGFILE_TRAILER_LEN + 13 + 3, "g");       /* not a hex digit */
    corrupt = false;
    ck_assert_int_lt(spool_env_read(&sp, id, &got, &corrupt, err, sizeof err), 0);
    ck_assert(corrupt);

    /* torn before the trailer: no trailer at all, so it reads as a stray */
    commit_one(id, "0123456789\r\n");
    snprintf(path, sizeof path, "%s/queue/%s.msg", spdir, id);
    ck_assert_int_eq(truncate(path, file_size("queue", id, ".msg") - 10), 0);
    corrupt = true;
    ck_assert_int_lt(spool_env_read(&sp, id, &got, &corrupt, err, sizeof err), 0);
    ck_assert(!corrupt);
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(env_write_updates)
{
    char id[QID_LEN + 1];
    struct envelope e;
    bool corrupt;
    commit_one(id, "hi\r\n");
    ck_assert_int_eq(spool_env_read(&sp, id, &e, &corrupt, err, sizeof err), 0);
    ck_assert(e.spool_embedded);
    ck_assert_int_eq(count_files("queue"), 1);
    e.attempts = 4;
    e.next_attempt = 1900000000;
    e.rcpts[0].state = RCPT_FAILED;
    strcpy(e.rcpts[0].result, "550 5.1.1 unknown user");
    ck_assert_int_eq(env_add_rcpt(&e, "dave@example.net"), 0);
    ck_assert_int_eq(spool_env_write(&sp, &e), 0);
    env_free(&e);

    ck_assert_int_eq(spool_env_read(&sp, id, &e, &corrupt, err, sizeof err), 0);
    ck_assert_uint_eq(e.attempts, 4);
    ck_assert_int_eq((long long)e.next_attempt, 1900000000LL);
    ck_assert_uint_eq(e.nrcpts, 2);
    ck_assert_int_eq(e.rcpts[0].state, RCPT_FAILED);
    ck_assert_str_eq(e.rcpts[0].result, "550 5.1.1 unknown user");
    ck_assert_str_eq(e.rcpts[1].addr, "dave@example.net");
    ck_assert(!e.spool_embedded);
    /* ID.env written, ID.msg cut back to the message: a format-1 pair */
    ck_assert(exists("queue", id, ".env"));
    ck_assert_int_eq(file_size("queue", id, ".msg"), 4);
    /* no temp file left behind */
    ck_assert_int_eq(count_files("queue"), 2);
    /* a second update leaves the message alone */
    e.attempts = 5;
    ck_assert_int_eq(spool_env_write(&sp, &e), 0);
    ck_assert_int_eq(file_size("queue", id, ".msg"), 4);
    env_free(&e);
    ck_assert_int_eq(spool_env_read(&sp, id, &e, &corrupt, err, sizeof err), 0);
    ck_assert_uint_eq(e.attempts, 5);
    env_free(&e);
    /* once the ID.env is gone the message is a stray: its envelope never comes back */
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/queue/%s.env", spdir, id);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(spool_scan(&sp, true, NULL, NULL), 0);
    ck_assert(!exists("queue", id, ".msg"));
}
END_TEST

/* A crash after ID.env was written but before ID.msg was cut back: ID.env wins,
   and the longer ID.msg is accepted only with a trailer naming the message's end. */
START_TEST(env_written_not_cut)
{
    char id[QID_LEN + 1];
    struct envelope e;
    bool corrupt;
    commit_one(id, "hello\r\n");
    off_t whole = file_size("queue", id, ".msg");
    ck_assert_int_eq(spool_env_read(&sp, id, &e, &corrupt, err, sizeof err), 0);
    e.attempts = 7;
    write_env_file(&e);
    env_free(&e);
    ck_assert_msg(spool_env_read(&sp, id, &e, &corrupt, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(e.attempts, 7);
    ck_assert(!e.spool_embedded);
    env_free(&e);
    ck_assert_int_eq(spool_scan(&sp, true, NULL, NULL), 1);      /* once, not twice */
    ck_assert_int_eq(file_size("queue", id, ".msg"), whole);     /* nothing removed */
    /* the trailer no longer names the message's end: torn */
    poke(id, -MSGFILE_TRAILER_LEN + 13 + 15, "0");
    ck_assert_int_lt(spool_env_read(&sp, id, &e, &corrupt, err, sizeof err), 0);
    ck_assert(corrupt);
    ck_assert_msg(strstr(err, "wrong size"), "%s", err);
}
END_TEST

START_TEST(remove_files)
{
    char id[QID_LEN + 1], keep[QID_LEN + 1];
    commit_one(id, "a\r\n");
    commit_one(keep, "b\r\n");
    ck_assert_int_eq(spool_remove(&sp, id), 0);
    ck_assert(!exists("queue", id, ".msg"));
    ck_assert(exists("queue", keep, ".msg"));
    /* removing again is not an error */
    ck_assert_int_eq(spool_remove(&sp, id), 0);
    /* the queue's one-unlink removal of a message whose envelope is inside */
    ck_assert_int_eq(spool_remove_unsynced(&sp, keep, true), 0);
    ck_assert_int_eq(count_files("queue"), 0);
    /* a format-1 pair: both files go */
    qid_new(id);
    write_pair(id, "c\r\n");
    ck_assert_int_eq(spool_remove_unsynced(&sp, id, false), 0);
    ck_assert_int_eq(count_files("queue"), 0);
}
END_TEST

START_TEST(quarantine)
{
    char id[QID_LEN + 1], path[PATH_MAX];
    commit_one(id, "a\r\n");
    ck_assert_int_eq(spool_quarantine(&sp, id, "checksum mismatch"), 0);
    ck_assert(!exists("queue", id, ".msg"));
    ck_assert(exists("corrupt", id, ".msg"));        /* the envelope inside goes along */
    qid_new(id);
    write_pair(id, "a\r\n");
    ck_assert_int_eq(spool_quarantine(&sp, id, "checksum mismatch"), 0);
    ck_assert(!exists("queue", id, ".env"));
    ck_assert(!exists("queue", id, ".msg"));
    ck_assert(exists("corrupt", id, ".env"));
    ck_assert(exists("corrupt", id, ".msg"));
    snprintf(path, sizeof path, "%s/corrupt/%s.reason", spdir, id);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[128] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(line, "checksum mismatch\n");

    /* only an envelope */
    char id2[QID_LEN + 1];
    qid_new(id2);
    write_pair(id2, "b\r\n");
    snprintf(path, sizeof path, "%s/queue/%s.msg", spdir, id2);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(spool_quarantine(&sp, id2, "message missing"), 0);
    ck_assert(exists("corrupt", id2, ".env"));
    ck_assert(exists("corrupt", id2, ".reason"));
    ck_assert_int_eq(count_files("queue"), 0);

    /* nothing to move */
    ck_assert_int_lt(spool_quarantine(&sp, "0123456789ABCDEF", "nothing"), 0);
}
END_TEST

struct visits {
    char ids[16][QID_LEN + 1];
    unsigned files[16];
    int n;
};

static void visit(const char *id, void *arg)
{
    struct visits *v = arg;
    ck_assert_int_lt(v->n, 16);
    strcpy(v->ids[v->n++], id);
}

static void visit_files(const char *id, unsigned files, void *arg)
{
    struct visits *v = arg;
    v->files[v->n] = files;
    visit(id, arg);
}

START_TEST(scan)
{
    char ids[4][QID_LEN + 1];
    for (int i = 0; i < 3; i++)
        commit_one(ids[i], "x\r\n");
    qid_new(ids[3]);
    write_pair(ids[3], "y\r\n");       /* a format-1 pair, visited too */
    /* strays: a message without envelope, leftover temp files, foreign names */
    char lone[QID_LEN + 1];
    qid_new(lone);
    char name[64];
    snprintf(name, sizeof name, "%s.msg", lone);
    touch("queue", name, "orphan");
    snprintf(name, sizeof name, "%s.env.tmp", ids[0]);
    touch("queue", name, "half");
    touch("queue", "junk.tmp", "");
    touch("queue", "README", "not ours");

    struct visits v = { .n = 0 };
    ck_assert_int_eq(spool_scan(&sp, false, visit, &v), 4);
    ck_assert_int_eq(v.n, 4);
    ck_assert_int_eq(count_files("queue"), 3 + 2 + 4);     /* nothing cleaned */

    /* Unopened: every ID with a .msg or .env, the stray too, each once; the
       queue's envelope read decides, and spool_remove_stray removes the stray
       (but nothing with an envelope, inside or beside). */
    v.n = 0;
    ck_assert_int_eq(spool_scan_unopened(&sp, visit_files, &v), 5);
    ck_assert_int_eq(v.n, 5);
    for (int i = 0; i < 5; i++) {
        /* what the listing showed: the pair both, the rest ID.msg alone */
        bool pair = !strcmp(v.ids[i], ids[3]);
        ck_assert_uint_eq(v.files[i], pair ? SPOOL_HAS_ENV | SPOOL_HAS_MSG : SPOOL_HAS_MSG);
        /* and the listed read finds each envelope, or says ENOENT for the stray */
        struct envelope e;
        bool corrupt;
        int r = spool_env_read_listed(&sp, v.ids[i], v.files[i], &e, &corrupt, err, sizeof err);
        if (!strcmp(v.ids[i], lone)) {
            ck_assert_int_eq(r, -1);
            ck_assert(!corrupt);
            ck_assert_int_eq(errno, ENOENT);
        } else {
            ck_assert_int_eq(r, 0);
            ck_assert_str_eq(e.id, v.ids[i]);
            ck_assert(e.spool_embedded == !pair);
            env_free(&e);
        }
    }
    /* Not listed, but there after all (format 1): the full read finds it. */
    {
        struct envelope e;
        bool corrupt;
        ck_assert_int_eq(spool_env_read_listed(&sp, ids[3], SPOOL_HAS_MSG, &e, &corrupt, err, sizeof err), 0);
        ck_assert(!e.spool_embedded);
        env_free(&e);
    }
    ck_assert_int_eq(count_files("queue"), 3 + 2 + 4);     /* nothing cleaned */
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(spool_remove_stray(&sp, ids[i]), 0);
    ck_assert_int_eq(spool_remove_stray(&sp, lone), 1);
    ck_assert(!exists("queue", lone, ".msg"));
    ck_assert_int_eq(spool_remove_stray(&sp, lone), 0);     /* gone: nothing to do */
    ck_assert_int_eq(count_files("queue"), 3 + 2 + 3);
    snprintf(name, sizeof name, "%s.msg", lone);
    touch("queue", name, "orphan");                          /* back, for the clean below */

    v.n = 0;
    ck_assert_int_eq(spool_scan(&sp, true, visit, &v), 4);
    ck_assert_int_eq(v.n, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(v.ids[i], ids[i]);            /* ID order (creation order) */
        ck_assert(exists("queue", ids[i], ".msg"));
    }
    ck_assert(exists("queue", ids[3], ".env"));
    ck_assert(!exists("queue", lone, ".msg"));
    ck_assert(!exists("queue", ids[0], ".env.tmp"));
    ck_assert(!exists("queue", "junk", ".tmp"));
    ck_assert(exists("queue", "README", ""));
    ck_assert_int_eq(count_files("queue"), 6);

    /* scanning again (rewinds the shared directory offset) */
    v.n = 0;
    ck_assert_int_eq(spool_scan(&sp, true, visit, &v), 4);
    ck_assert_int_eq(spool_scan(&sp, false, NULL, NULL), 4);

    /* The start-up cleaner's part: *.tmp only. */
    snprintf(name, sizeof name, "%s.env.tmp", ids[1]);
    touch("queue", name, "half");
    snprintf(name, sizeof name, "%s.msg", lone);
    touch("queue", name, "orphan");
    ck_assert_int_eq(spool_remove_temps(&sp), 1);
    ck_assert(!exists("queue", ids[1], ".env.tmp"));
    ck_assert(exists("queue", lone, ".msg"));
    ck_assert(exists("queue", "README", ""));
}
END_TEST

/* IDs not in creation order on disk: the visit order is by ID. */
START_TEST(scan_order)
{
    static const char *const names[] = { "0V00000000000000", "0000000000000001", "00A0000000000000",
                                         "0000000000000000", "1000000000000000" };
    static const char *const sorted[] = { "0000000000000000", "0000000000000001", "00A0000000000000",
                                          "0V00000000000000", "1000000000000000" };
    for (int i = 0; i < 5; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.env", names[i]);
        touch("queue", name, "");
        snprintf(name, sizeof name, "%s.msg", names[i]);
        touch("queue", name, "");
    }
    touch("queue", "0000000000000abc.env", "");     /* not a queue ID: ignored */
    struct visits v = { .n = 0 };
    ck_assert_int_eq(spool_scan(&sp, true, visit, &v), 5);
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(v.ids[i], sorted[i]);
}
END_TEST

START_TEST(clean_incoming)
{
    ck_assert_int_eq(spool_clean_incoming(&sp), 0);
    struct spool_draft d;
    struct envelope e;
    make_draft(&d, "abandoned\r\n", &e);
    close(d.msg_fd);
    env_free(&e);
    touch("incoming", "other.tmp", "x");
    ck_assert_int_eq(count_files("incoming"), 2);
    ck_assert_int_eq(spool_clean_incoming(&sp), 2);
    ck_assert_int_eq(count_files("incoming"), 0);
    ck_assert_int_eq(count_files("queue"), 0);
}
END_TEST

START_TEST(draft_abort)
{
    struct spool_draft d;
    struct envelope e;
    make_draft(&d, "never mind\r\n", &e);
    char id[QID_LEN + 1];
    strcpy(id, d.id);
    /* header fields cannot go in front once the envelope is behind the message */
    ck_assert_int_lt(spool_draft_prepend(&sp, &d, "X: y\r\n", 6), 0);
    ck_assert_int_eq(errno, EINVAL);
    spool_draft_abort(&sp, &d);
    ck_assert_int_eq(d.msg_fd, -1);
    ck_assert(!d.has_env);
    ck_assert(!exists("incoming", id, ".msg"));
    ck_assert_int_eq(count_files("incoming"), 0);
    ck_assert_int_eq(count_files("queue"), 0);
    /* aborting twice is harmless */
    spool_draft_abort(&sp, &d);
    env_free(&e);

    /* before the envelope was written */
    ck_assert_int_eq(spool_draft_new(&sp, &d), 0);
    ck_assert_int_eq(count_files("incoming"), 1);
    spool_draft_abort(&sp, &d);
    ck_assert_int_eq(count_files("incoming"), 0);

    /* an envelope whose size is not the message's is refused */
    ck_assert_int_eq(spool_draft_new(&sp, &d), 0);
    ck_assert_int_eq(write(d.msg_fd, "abc", 3), 3);
    env_init(&e);
    strcpy(e.id, d.id);
    e.size = 2;
    ck_assert_int_eq(env_add_rcpt(&e, "bob@example.org"), 0);
    ck_assert_int_lt(spool_draft_put_env(&sp, &d, &e), 0);
    ck_assert_int_eq(errno, EINVAL);
    env_free(&e);
    spool_draft_abort(&sp, &d);

    /* a prepend before the envelope moves the message, and put_env follows it */
    ck_assert_int_eq(spool_draft_new(&sp, &d), 0);
    ck_assert_int_eq(write(d.msg_fd, "body\r\n", 6), 6);
    ck_assert_int_eq(spool_draft_prepend(&sp, &d, "X: y\r\n", 6), 0);
    env_init(&e);
    strcpy(e.id, d.id);
    e.size = 12;
    ck_assert_int_eq(env_add_rcpt(&e, "bob@example.org"), 0);
    ck_assert_int_eq(spool_draft_put_env(&sp, &d, &e), 0);
    struct spool_draft *one = &d;
    strcpy(id, d.id);
    ck_assert_int_eq(spool_commit(&sp, &one, 1), 0);
    env_free(&e);
    bool corrupt;
    ck_assert_msg(spool_env_read(&sp, id, &e, &corrupt, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(e.size, 12);
    env_free(&e);
    ck_assert_int_eq(spool_remove(&sp, id), 0);

    /* committing a draft without an envelope fails and aborts it */
    ck_assert_int_eq(spool_draft_new(&sp, &d), 0);
    struct spool_draft *dp = &d;
    ck_assert_int_lt(spool_commit(&sp, &dp, 1), 0);
    ck_assert_int_eq(count_files("incoming"), 0);
    ck_assert_int_eq(count_files("queue"), 0);
}
END_TEST

START_TEST(batch_commit)
{
    struct spool_draft d[3], *dp[3];
    struct envelope e[3];
    const char *bodies[3] = { "one\r\n", "two two\r\n", "three three three\r\n" };
    for (int i = 0; i < 3; i++) {
        make_draft(&d[i], bodies[i], &e[i]);
        dp[i] = &d[i];
    }
    ck_assert_int_eq(count_files("incoming"), 3);
    ck_assert_int_eq(spool_commit(&sp, dp, 3), 0);
    ck_assert_int_eq(count_files("incoming"), 0);
    ck_assert_int_eq(count_files("queue"), 3);
    for (int i = 0; i < 3; i++) {
        struct envelope got;
        bool corrupt;
        ck_assert_msg(spool_env_read(&sp, d[i].id, &got, &corrupt, err, sizeof err) == 0, "%s", err);
        ck_assert_uint_eq(got.size, strlen(bodies[i]));
        env_free(&got);
        env_free(&e[i]);
    }
    struct visits v = { .n = 0 };
    ck_assert_int_eq(spool_scan(&sp, true, visit, &v), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_str_eq(v.ids[i], d[i].id);
}
END_TEST

Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, prepare_makes_tree);
    tcase_add_test(tc, commit_and_read);
    tcase_add_test(tc, read_torn_and_missing);
    tcase_add_test(tc, read_embedded_damaged);
    tcase_add_test(tc, env_write_updates);
    tcase_add_test(tc, env_written_not_cut);
    tcase_add_test(tc, remove_files);
    tcase_add_test(tc, quarantine);
    tcase_add_test(tc, scan);
    tcase_add_test(tc, scan_order);
    tcase_add_test(tc, clean_incoming);
    tcase_add_test(tc, draft_abort);
    tcase_add_test(tc, batch_commit);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(spool_suite)

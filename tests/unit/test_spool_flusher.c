/*
 * test_spool_flusher.c — queue/spool_flusher.h, with a real libevent loop and a
 * spool in a temporary directory.
 *
 * Covers: a batch is not reported before the loop runs, and once reported ok
 * every draft is in queue/ (readable, right size) and incoming/ is empty; an
 * fsync that fails (a draft whose message descriptor is a pipe: fsync says
 * EINVAL) fails the whole batch, which is aborted, nothing of it in queue/ or
 * incoming/, while a batch beside it commits; a draft without an envelope fails
 * its batch; max_batches is a bound (EAGAIN, drafts untouched, a place frees
 * when a callback runs); drain runs every callback without the loop, including a
 * batch committed from a callback; many batches through few threads, each
 * callback re-committing (run under ThreadSanitizer too: see BENCH.md); an empty
 * batch; free with nothing committed.
 */
#include "queue/spool_flusher.h"
#include "tests/unit/spool_fixture.h"
#include "tests/unit/unit.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[64];
static char spdir[128];
static struct spool sp;
static char err[256];
static struct event_base *base;

static void setup(void)
{
    strcpy(root, "/tmp/ferry-test-flusher-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
    snprintf(spdir, sizeof spdir, "%s/spool", root);
    ck_assert_msg(spool_prepare(spdir, false, 0, 0, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(spool_open(&sp, spdir, err, sizeof err) == 0, "%s", err);
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
}

static void teardown(void)
{
    event_base_free(base);
    spool_close(&sp);
    rm_rf(root);
}

static int count_files(const char *sub)
{
    return spool_count_files(spdir, sub);
}

/* A draft with a message of `len` octets and its envelope, not committed. */
static void make_draft(struct spool_draft *d, size_t len)
{
    char body[4096];
    ck_assert_uint_le(len, sizeof body);
    memset(body, 'x', len);
    ck_assert_int_eq(spool_draft_new(&sp, d), 0);
    ck_assert_int_eq(write(d->msg_fd, body, len), (ssize_t)len);
    struct envelope e;
    env_init(&e);
    strcpy(e.id, d->id);
    e.arrival = time(NULL);
    e.size = len;
    strcpy(e.sender, "alice@example.com");
    strcpy(e.protocol, "ESMTP");
    ck_assert_int_eq(env_add_rcpt(&e, "bob@example.org"), 0);
    ck_assert_int_eq(spool_draft_put_env(&sp, d, &e), 0);
    env_free(&e);
}

/* What a callback saw. */
struct outcome {
    int calls;
    int err;
};

static void record(void *arg, int e)
{
    struct outcome *o = arg;
    o->calls++;
    o->err = e;
}

/* Run the loop until every outcome has been reported (bounded). */
static void run_until(struct outcome **os, size_t n)
{
    for (int turns = 0; turns < 100000; turns++) {
        size_t done = 0;
        for (size_t i = 0; i < n; i++)
            done += os[i]->calls > 0;
        if (done == n)
            return;
        event_base_loop(base, EVLOOP_ONCE);
    }
    ck_abort_msg("the flusher never reported");
}

static bool in_incoming(const struct spool_draft *d)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/incoming/%s.msg", spdir, d->id);
    /* One file per draft: the envelope is behind the message (format 2). */
    return stat(path, &st) == 0 && d->has_env;
}

static bool queued_ok(const struct spool_draft *d, size_t len)
{
    struct envelope got;
    bool corrupt;
    if (spool_env_read(&sp, d->id, &got, &corrupt, err, sizeof err) < 0)
        return false;
    bool ok = got.size == len;
    env_free(&got);
    return ok;
}

START_TEST(batch_commits)
{
    struct spool_flusher *fl = spool_flusher_new(base, &sp, 4, 2);
    ck_assert_ptr_nonnull(fl);
    struct spool_draft d[5], *dp[5];
    for (int i = 0; i < 5; i++) {
        make_draft(&d[i], 100 + (size_t)i);
        dp[i] = &d[i];
    }
    struct outcome o = { 0, -1 }, *op = &o;
    ck_assert_int_eq(spool_flusher_commit(fl, dp, 5, record, &o), 0);
    /* Never inside the call: only the loop reports. */
    ck_assert_int_eq(o.calls, 0);
    ck_assert_uint_eq(spool_flusher_in_flight(fl), 1);
    run_until(&op, 1);
    ck_assert_int_eq(o.calls, 1);
    ck_assert_int_eq(o.err, 0);
    ck_assert_uint_eq(spool_flusher_in_flight(fl), 0);
    ck_assert_int_eq(count_files("incoming"), 0);
    ck_assert_int_eq(count_files("queue"), 5);     /* one file per message */
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(queued_ok(&d[i], 100 + (size_t)i), "%s", err);
        ck_assert_int_eq(d[i].msg_fd, -1);     /* closed by the commit */
        ck_assert(!d[i].has_env);
    }
    struct spool_flusher_stats st;
    spool_flusher_stats(fl, &st);
    ck_assert_uint_eq(st.batches, 1);
    ck_assert_uint_eq(st.drafts, 5);
    spool_flusher_free(fl);
}
END_TEST

START_TEST(fsync_failure_fails_the_batch_only)
{
    struct spool_flusher *fl = spool_flusher_new(base, &sp, 3, 4);
    ck_assert_ptr_nonnull(fl);
    struct spool_draft bad[3], good[2], *bp[3], *gp[2];
    for (int i = 0; i < 3; i++) {
        make_draft(&bad[i], 50);
        bp[i] = &bad[i];
    }
    for (int i = 0; i < 2; i++) {
        make_draft(&good[i], 60);
        gp[i] = &good[i];
    }
    /* The middle draft's message descriptor becomes a pipe: fsync fails (EINVAL)
       as it would on an I/O error, and its name in incoming/ stays. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_ge(dup2(p[0], bad[1].msg_fd), 0);
    close(p[0]);
    close(p[1]);
    struct outcome ob = { 0, 0 }, og = { 0, -1 }, *os[2] = { &ob, &og };
    ck_assert_int_eq(spool_flusher_commit(fl, bp, 3, record, &ob), 0);
    ck_assert_int_eq(spool_flusher_commit(fl, gp, 2, record, &og), 0);
    run_until(os, 2);
    ck_assert_int_eq(ob.err, EINVAL);
    ck_assert_int_eq(og.err, 0);
    for (int i = 0; i < 3; i++) {
        ck_assert(!queued_ok(&bad[i], 50));
        ck_assert_int_eq(bad[i].msg_fd, -1);   /* aborted: closed, names gone */
        ck_assert_str_eq(bad[i].id, "");
    }
    for (int i = 0; i < 2; i++)
        ck_assert_msg(queued_ok(&good[i], 60), "%s", err);
    ck_assert_int_eq(count_files("incoming"), 0);
    ck_assert_int_eq(count_files("queue"), 2);
    spool_flusher_free(fl);
}
END_TEST

START_TEST(missing_envelope_fails)
{
    struct spool_flusher *fl = spool_flusher_new(base, &sp, 2, 2);
    struct spool_draft d, *dp = &d;
    ck_assert_int_eq(spool_draft_new(&sp, &d), 0);      /* no envelope written */
    struct outcome o = { 0, 0 }, *op = &o;
    ck_assert_int_eq(spool_flusher_commit(fl, &dp, 1, record, &o), 0);
    run_until(&op, 1);
    ck_assert_int_eq(o.err, EINVAL);
    ck_assert_int_eq(count_files("incoming"), 0);
    ck_assert_int_eq(count_files("queue"), 0);
    spool_flusher_free(fl);
}
END_TEST

START_TEST(bounded_batches)
{
    struct spool_flusher *fl = spool_flusher_new(base, &sp, 2, 1);
    struct spool_draft a, b, *ap = &a, *bp = &b;
    make_draft(&a, 10);
    make_draft(&b, 20);
    struct outcome oa = { 0, -1 }, ob = { 0, -1 }, *op[2] = { &oa, &ob };
    ck_assert_int_eq(spool_flusher_commit(fl, &ap, 1, record, &oa), 0);
    ck_assert(spool_flusher_full(fl));
    /* In flight until the loop has run its callback, however fast the disk. */
    errno = 0;
    ck_assert_int_eq(spool_flusher_commit(fl, &bp, 1, record, &ob), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_ge(b.msg_fd, 0);          /* untouched */
    ck_assert(in_incoming(&b));
    run_until(&op[0], 1);
    ck_assert(!spool_flusher_full(fl));
    ck_assert_int_eq(spool_flusher_commit(fl, &bp, 1, record, &ob), 0);
    run_until(&op[1], 1);
    ck_assert_int_eq(oa.err, 0);
    ck_assert_int_eq(ob.err, 0);
    ck_assert_int_eq(count_files("queue"), 2);
    struct spool_flusher_stats st;
    spool_flusher_stats(fl, &st);
    ck_assert_uint_eq(st.max_in_flight, 1);
    spool_flusher_free(fl);
}
END_TEST

/* A chain: each callback commits the next batch, until none is left. */
struct chain {
    struct spool_flusher *fl;
    struct spool_draft (*d)[4];
    struct spool_draft *(*dp)[4];
    int next, total, settled, failed;
};

static void chain_done(void *arg, int e)
{
    struct chain *c = arg;
    c->settled++;
    if (e)
        c->failed++;
    if (c->next < c->total) {
        int i = c->next++;
        ck_assert_int_eq(spool_flusher_commit(c->fl, c->dp[i], 4, chain_done, c), 0);
    }
}

START_TEST(many_batches_few_threads)
{
    enum { BATCHES = 40, WIDTH = 3 };
    struct spool_flusher *fl = spool_flusher_new(base, &sp, 3, WIDTH);
    static struct spool_draft d[BATCHES][4];
    static struct spool_draft *dp[BATCHES][4];
    for (int i = 0; i < BATCHES; i++)
        for (int j = 0; j < 4; j++) {
            make_draft(&d[i][j], (size_t)(1 + i * 4 + j));
            dp[i][j] = &d[i][j];
        }
    struct chain c = { fl, d, dp, 0, BATCHES, 0, 0 };
    for (; c.next < WIDTH; c.next++)
        ck_assert_int_eq(spool_flusher_commit(fl, dp[c.next], 4, chain_done, &c), 0);
    for (int turns = 0; c.settled < BATCHES && turns < 1000000; turns++)
        event_base_loop(base, EVLOOP_ONCE);
    ck_assert_int_eq(c.settled, BATCHES);
    ck_assert_int_eq(c.failed, 0);
    ck_assert_int_eq(count_files("queue"), BATCHES * 4);
    ck_assert_int_eq(count_files("incoming"), 0);
    for (int i = 0; i < BATCHES; i++)
        for (int j = 0; j < 4; j++)
            ck_assert_msg(queued_ok(&d[i][j], (size_t)(1 + i * 4 + j)), "%s", err);
    struct spool_flusher_stats st;
    spool_flusher_stats(fl, &st);
    ck_assert_uint_eq(st.batches, BATCHES);
    ck_assert_uint_le(st.max_in_flight, WIDTH);
    spool_flusher_free(fl);
}
END_TEST

START_TEST(drain_without_the_loop)
{
    enum { BATCHES = 6 };
    struct spool_flusher *fl = spool_flusher_new(base, &sp, 2, 2);
    static struct spool_draft d[BATCHES][4];
    static struct spool_draft *dp[BATCHES][4];
    for (int i = 0; i < BATCHES; i++)
        for (int j = 0; j < 4; j++) {
            make_draft(&d[i][j], 30);
            dp[i][j] = &d[i][j];
        }
    struct chain c = { fl, d, dp, 0, BATCHES, 0, 0 };
    for (; c.next < 2; c.next++)
        ck_assert_int_eq(spool_flusher_commit(fl, dp[c.next], 4, chain_done, &c), 0);
    /* The loop never runs: drain waits for the two in flight and for the four
       their callbacks commit. */
    spool_flusher_drain(fl);
    ck_assert_int_eq(c.settled, BATCHES);
    ck_assert_int_eq(c.failed, 0);
    ck_assert_uint_eq(spool_flusher_in_flight(fl), 0);
    ck_assert_int_eq(count_files("queue"), BATCHES * 4);
    spool_flusher_free(fl);
}
END_TEST

START_TEST(empty_batch_and_idle_free)
{
    struct spool_flusher *fl = spool_flusher_new(base, &sp, 2, 2);
    struct outcome o = { 0, -1 }, *op = &o;
    ck_assert_int_eq(spool_flusher_commit(fl, NULL, 0, record, &o), 0);
    ck_assert_int_eq(o.calls, 0);
    run_until(&op, 1);
    ck_assert_int_eq(o.err, 0);
    spool_flusher_free(fl);
    /* Never committed anything: no thread was started, free is plain. */
    spool_flusher_free(spool_flusher_new(base, &sp, 8, 4));
    spool_flusher_free(NULL);
}
END_TEST

Suite *spool_flusher_suite(void)
{
    Suite *s = suite_create("spool_flusher");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, batch_commits);
    tcase_add_test(tc, fsync_failure_fails_the_batch_only);
    tcase_add_test(tc, missing_envelope_fails);
    tcase_add_test(tc, bounded_batches);
    tcase_add_test(tc, many_batches_few_threads);
    tcase_add_test(tc, drain_without_the_loop);
    tcase_add_test(tc, empty_batch_and_idle_free);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(spool_flusher_suite)

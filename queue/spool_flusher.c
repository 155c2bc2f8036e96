/* spool_flusher — see spool_flusher.h. One mutex guards the lists and every
   batch's counters; the fsyncs, renames and the directory fsync run without it. */
#include "queue/spool_flusher.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A worker's stack holds a few path buffers (spool_commit_publish, the aborts):
   256 KB is ample even under AddressSanitizer, where glibc's default would
   reserve 8 MB of address space per thread for nothing. */
#define WORKER_STACK (256 * 1024)

enum batch_state { B_SYNCING, B_PUBLISHING, B_DONE };

struct batch {
    struct batch *next;             /* on the syncing list, then on the done list */
    enum batch_state state;
    struct spool_draft **drafts;    /* the caller's array */
    size_t n;
    size_t files;                   /* n * SPOOL_DRAFT_FILES */
    size_t handed_out;              /* files given to a thread so far */
    size_t finished;                /* files whose fsync has returned (or was skipped) */
    int err;                        /* the first error; 0: none */
    spool_flusher_done_fn done;
    void *arg;
};

struct spool_flusher {
    struct spool *sp;
    struct event *wake_ev;
    int wake_fd;                    /* eventfd: a worker put a batch on the done list */
    pthread_mutex_t mu;
    pthread_cond_t work_cv;         /* a file to fsync, or stop */
    pthread_cond_t done_cv;         /* a batch reached the done list (drain) */
    struct batch *syncing;          /* oldest first: its files are handed out first */
    struct batch *done_head, **done_tail;
    bool stop;
    /* the loop's thread only */
    pthread_t *tids;
    unsigned nthreads, want_threads;
    size_t in_flight;
    unsigned max_batches;
    struct spool_flusher_stats stats;
};

/* Under mu: the oldest batch with a file not yet given to a thread. */
static struct batch *next_work(struct spool_flusher *fl)
{
    for (struct batch *b = fl->syncing; b; b = b->next)
        if (b->handed_out < b->files)
            return b;
    return NULL;
}

/* Under mu: b's last fsync returned; take it off the syncing list. */
static void unlink_syncing(struct spool_flusher *fl, struct batch *b)
{
    for (struct batch **pp = &fl->syncing; *pp; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            b->next = NULL;
            return;
        }
    }
}

/* PUBLISHING, without the lock: every file of the batch has been fsync'd (or one
   failed), no other thread holds the batch any more. Names go into queue/ only
   now, after all the data is on disk. */
static void publish(struct spool_flusher *fl, struct batch *b)
{
    if (b->err)
        spool_commit_abort(fl->sp, b->drafts, b->n);
    else if (spool_commit_publish(fl->sp, b->drafts, b->n) < 0)
        b->err = errno ? errno : EIO;
}

static void *worker(void *arg)
{
    struct spool_flusher *fl = arg;
    pthread_mutex_lock(&fl->mu);
    for (;;) {
        struct batch *b = next_work(fl);
        if (!b) {
            if (fl->stop)
                break;
            pthread_cond_wait(&fl->work_cv, &fl->mu);
            continue;
        }
        /* SYNCING: claim one file. Once the batch has failed, its other files
           need no fsync: the batch is aborted whatever they say. */
        size_t k = b->handed_out++;
        bool skip = b->err != 0;
        pthread_mutex_unlock(&fl->mu);
        int e = 0;
        if (!skip && spool_draft_sync_file(b->drafts[k / SPOOL_DRAFT_FILES], (unsigned)(k % SPOOL_DRAFT_FILES)) < 0)
            e = errno ? errno : EIO;
        pthread_mutex_lock(&fl->mu);
        if (e && !b->err)
            b->err = e;
        if (++b->finished < b->files)
            continue;
        /* This thread finished the batch's last file: it publishes the batch. */
        unlink_syncing(fl, b);
        b->state = B_PUBLISHING;
        pthread_mutex_unlock(&fl->mu);
        publish(fl, b);
        pthread_mutex_lock(&fl->mu);
        b->state = B_DONE;
        *fl->done_tail = b;
        fl->done_tail = &b->next;
        pthread_cond_broadcast(&fl->done_cv);
        /* Wake the loop. An eventfd write fails only when its counter would
           overflow, and then the loop has a wake-up pending already. */
        uint64_t one = 1;
        ssize_t w = write(fl->wake_fd, &one, sizeof one);
        (void)w;
    }
    pthread_mutex_unlock(&fl->mu);
    return NULL;
}

/* The loop's thread: run the callbacks of every batch on the done list. */
static void run_done(struct spool_flusher *fl)
{
    pthread_mutex_lock(&fl->mu);
    struct batch *list = fl->done_head;
    fl->done_head = NULL;
    fl->done_tail = &fl->done_head;
    pthread_mutex_unlock(&fl->mu);
    while (list) {
        struct batch *b = list;
        list = b->next;
        fl->in_flight--;
        /* A callback may commit the next batch at once: the place is free. */
        b->done(b->arg, b->err);
        free(b);
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct spool_flusher *fl = arg;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);     /* resets the counter; EAGAIN: nothing new */
    (void)r;
    run_done(fl);
}

struct spool_flusher *spool_flusher_new(struct event_base *base, struct spool *sp, unsigned threads,
                                        unsigned max_batches)
{
    struct spool_flusher *fl = calloc(1, sizeof *fl);
    if (!fl)
        return NULL;
    fl->sp = sp;
    fl->want_threads = threads ? threads : 1;
    fl->max_batches = max_batches ? max_batches : 1;
    fl->done_tail = &fl->done_head;
    fl->tids = calloc(fl->want_threads, sizeof *fl->tids);
    fl->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!fl->tids || fl->wake_fd < 0)
        goto fail;
    fl->wake_ev = event_new(base, fl->wake_fd, EV_READ | EV_PERSIST, on_wake, fl);
    if (!fl->wake_ev || event_add(fl->wake_ev, NULL) < 0)
        goto fail;
    pthread_mutex_init(&fl->mu, NULL);
    pthread_cond_init(&fl->work_cv, NULL);
    pthread_cond_init(&fl->done_cv, NULL);
    return fl;
fail:
    if (fl->wake_ev)
        event_free(fl->wake_ev);
    if (fl->wake_fd >= 0)
        close(fl->wake_fd);
    free(fl->tids);
    free(fl);
    return NULL;
}

/* Start the threads still missing; 0 when at least one runs. Signals stay with
   the loop's thread (its libevent signal handling): the workers block them all. */
static int start_threads(struct spool_flusher *fl)
{
    if (fl->nthreads == fl->want_threads)
        return 0;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_STACK);
    int e = 0;
    while (fl->nthreads < fl->want_threads) {
        if ((e = pthread_create(&fl->tids[fl->nthreads], &attr, worker, fl)) != 0)
            break;
        fl->nthreads++;
    }
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (fl->nthreads == 0) {
        errno = e;
        return -1;
    }
    return 0;       /* fewer threads than asked for: slower, still correct */
}

int spool_flusher_commit(struct spool_flusher *fl, struct spool_draft **drafts, size_t n,
                         spool_flusher_done_fn done, void *arg)
{
    if (fl->in_flight >= fl->max_batches) {
        errno = EAGAIN;
        return -1;
    }
    if (start_threads(fl) < 0)
        return -1;
    struct batch *b = calloc(1, sizeof *b);
    if (!b)
        return -1;
    b->state = B_SYNCING;
    b->drafts = drafts;
    b->n = n;
    b->files = n * SPOOL_DRAFT_FILES;
    b->done = done;
    b->arg = arg;
    /* Cheap and in this thread: start every file's writeback before any thread
       waits on one (spool_commit_begin says why). */
    spool_commit_begin(drafts, n);
    fl->in_flight++;
    fl->stats.batches++;
    fl->stats.drafts += n;
    if (fl->in_flight > fl->stats.max_in_flight)
        fl->stats.max_in_flight = (unsigned)fl->in_flight;
    pthread_mutex_lock(&fl->mu);
    if (n == 0) {
        /* Nothing to sync: straight to the done list, through the same wake-up
           as every other batch, so done never runs inside this call. */
        b->state = B_DONE;
        *fl->done_tail = b;
        fl->done_tail = &b->next;
        uint64_t one = 1;
        ssize_t w = write(fl->wake_fd, &one, sizeof one);
        (void)w;
    } else {
        struct batch **pp = &fl->syncing;
        while (*pp)
            pp = &(*pp)->next;
        *pp = b;
        pthread_cond_broadcast(&fl->work_cv);
    }
    pthread_mutex_unlock(&fl->mu);
    return 0;
}

bool spool_flusher_full(const struct spool_flusher *fl)
{
    return fl->in_flight >= fl->max_batches;
}

size_t spool_flusher_in_flight(const struct spool_flusher *fl)
{
    return fl->in_flight;
}

void spool_flusher_stats(const struct spool_flusher *fl, struct spool_flusher_stats *st)
{
    *st = fl->stats;
}

void spool_flusher_drain(struct spool_flusher *fl)
{
    while (fl->in_flight) {
        pthread_mutex_lock(&fl->mu);
        while (!fl->done_head)
            pthread_cond_wait(&fl->done_cv, &fl->mu);
        pthread_mutex_unlock(&fl->mu);
        run_done(fl);
    }
}

void spool_flusher_free(struct spool_flusher *fl)
{
    if (!fl)
        return;
    spool_flusher_drain(fl);
    pthread_mutex_lock(&fl->mu);
    fl->stop = true;
    pthread_cond_broadcast(&fl->work_cv);
    pthread_mutex_unlock(&fl->mu);
    for (unsigned i = 0; i < fl->nthreads; i++)
        pthread_join(fl->tids[i], NULL);
    event_free(fl->wake_ev);
    close(fl->wake_fd);
    pthread_mutex_destroy(&fl->mu);
    pthread_cond_destroy(&fl->work_cv);
    pthread_cond_destroy(&fl->done_cv);
    free(fl->tids);
    free(fl);
}

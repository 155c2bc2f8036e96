/*
 * spool_flusher — group commit off the event loop: the fsyncs of a batch of
 * drafts run on a few threads at once, and the caller's libevent loop is told
 * when the batch is committed (or not).
 *
 * Why (issue 16, BENCH.md): spool_commit fsyncs a batch's files one after another
 * in the calling thread, two per message and then the directory, and while it
 * did so the smtp process's event loop stood still: no other session was read,
 * so the next batch began to form only once this one was durable. With the
 * flusher the loop hands a batch over and goes on reading; the files are fsync'd
 * concurrently from several threads, which lets ext4's journal fold them into
 * shared commits (as it folds the fsyncs of Postfix's many cleanup processes);
 * the directory fsync follows once every file of the batch is on disk.
 *
 * A batch moves through three states:
 *   SYNCING     its files' fsyncs (SPOOL_DRAFT_FILES per draft) are handed out
 *               to the threads, oldest batch first, in any order;
 *   PUBLISHING  the thread whose fsync was the batch's last renames the batch
 *               into queue/ and fsyncs queue/ (spool_commit_publish), or aborts
 *               every draft of it when any fsync failed;
 *   DONE        on the done list; an eventfd wakes the loop, which runs the
 *               batch's callback there, never on a worker thread.
 * The promise is spool_commit's (spool.h): the callback's err == 0 means every
 * draft of the batch is in queue/ and on stable storage, and only then may the
 * caller answer 250; otherwise none is, and every draft was aborted.
 *
 * Bounds: `threads` worker threads and at most `max_batches` batches in flight;
 * beyond that spool_flusher_commit refuses (EAGAIN) and the caller keeps
 * forming its next batch until a callback frees a place. The threads start at
 * the first commit, not in spool_flusher_new: a process confines itself
 * (Landlock) after setting up, and confinement covers the calling thread and
 * the threads it creates afterwards, never those that already exist. Worker
 * threads block every signal, touch only the drafts of the batch they work on,
 * read struct spool, and never log.
 *
 * Not thread-safe for callers: every function here is for the loop's thread.
 */
#ifndef FERRY_SPOOL_FLUSHER_H
#define FERRY_SPOOL_FLUSHER_H

#include <stdbool.h>
#include <stddef.h>

#include "queue/spool.h"

struct event_base;
struct spool_flusher;

/* Called on the loop's thread once the batch is settled: err 0, committed;
   otherwise an errno (ENOSPC, EIO...), and every draft of it was aborted. */
typedef void (*spool_flusher_done_fn)(void *arg, int err);

struct spool_flusher_stats {
    unsigned long long batches;        /* handed to spool_flusher_commit and taken */
    unsigned long long drafts;
    unsigned max_in_flight;            /* the most batches in flight at once */
};

/* NULL when out of memory or out of descriptors (the eventfd). */
struct spool_flusher *spool_flusher_new(struct event_base *base, struct spool *sp, unsigned threads,
                                        unsigned max_batches);
/* Hand over drafts[0..n): 0, and done(arg, err) runs later from the loop. The
   array and the drafts stay the caller's memory but belong to the flusher until
   then: the caller neither reads nor frees them meanwhile. -1 with errno
   (EAGAIN: max_batches are in flight; or no thread could be started): nothing
   was done, the drafts are untouched. */
int  spool_flusher_commit(struct spool_flusher *fl, struct spool_draft **drafts, size_t n,
                          spool_flusher_done_fn done, void *arg);
/* max_batches are in flight: a commit now would be refused. */
bool spool_flusher_full(const struct spool_flusher *fl);
size_t spool_flusher_in_flight(const struct spool_flusher *fl);
void spool_flusher_stats(const struct spool_flusher *fl, struct spool_flusher_stats *st);
/* Wait for every batch in flight, running each callback (a callback may commit
   again: that batch is waited for too). For a loop that has stopped. */
void spool_flusher_drain(struct spool_flusher *fl);
/* Drain, stop and join the threads, free. NULL is ignored. */
void spool_flusher_free(struct spool_flusher *fl);

#endif

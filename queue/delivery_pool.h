/*
 * delivery_pool — the queue process's delivery workers: every local delivery
 * (Maildir, mbox, pipe, file, LMTP, and the resolution that decides among them)
 * runs in one of at most local_concurrency worker processes, so the queue's
 * event loop never waits on a command, a lock, a disk or an LMTP server.
 *
 * Workers are forked from the queue process on demand (same user, nothing
 * inherited open but the channel and stdio) and kept for the next job, one job
 * at a time each (delivery/local_worker.h, wire format delivery/local_job.h).
 * A job that finds every worker busy waits here in order of submission.
 *
 * Answers come back through the callbacks, on the event loop: add (an
 * expansion target, before its recipient's result), result, home (resolved to
 * a delivery the parent must make as a system user), then done, once, after
 * every recipient of the job has had exactly one result or home. A worker that
 * dies (EOF on its channel) gives every recipient not yet answered DEFER
 * "4.3.0 delivery agent died"; one that runs past the job's time limit
 * (LOCAL_JOB_GRACE + n * pipe_timeout + 4 * lmtp_timeout seconds for n
 * recipients: pipe and LMTP bound themselves, this is the backstop) is killed
 * with SIGKILL and gives DEFER 4.4.7; one that sends what the protocol does not
 * allow is killed and treated as dead. Nothing is lost: the recipient stays in
 * the envelope and is tried again.
 */
#ifndef FERRY_DELIVERY_POOL_H
#define FERRY_DELIVERY_POOL_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/delivery.h"
#include "lib/settings.h"

#define LOCAL_JOB_GRACE 10

struct event_base;
struct delivery_pool;

struct delivery_pool_cb {
    void (*add)(void *arg, unsigned index, const char *target);
    void (*result)(void *arg, unsigned index, const struct delivery_status *st);
    void (*home)(void *arg, unsigned index, const char *user, const char *rcpt);
    void (*done)(void *arg);
};

struct delivery_pool *delivery_pool_new(struct event_base *base, const struct ferry_config *cfg);
/* Kills the workers (SIGTERM; a job in progress is tried again by the next
   queue process) and forgets the jobs without calling back. */
void delivery_pool_free(struct delivery_pool *p);

/* Deliver message id to rcpts[k] (envelope index index[k]), k < n <=
   LOCAL_JOB_MAX_RCPTS. 0: the callbacks will run (never before this returns);
   -1: out of memory or a field that cannot be sent, and nothing will run. */
int delivery_pool_submit(struct delivery_pool *p, const char *id, const char *sender, bool junk,
                         const unsigned *index, const char *const *rcpts, size_t n,
                         const struct delivery_pool_cb *cb, void *arg);

/* Jobs waiting for a worker (not counting those being delivered). */
size_t delivery_pool_backlog(const struct delivery_pool *p);

#endif

/* smtp_commit — the smtp process's group commit (smtp_server.h).
 *
 * A session whose message is whole and whose envelope is written joins the
 * forming batch (smtp_server_commit) and waits in SS_COMMIT, reading nothing.
 * Once per turn of the event loop the forming batch is handed to the spool
 * flusher (queue/spool_flusher.h), which fsyncs its files on worker threads
 * while this loop goes on reading other sessions; those that finish meanwhile
 * form the next batch. When the flusher says a batch is durable each of its
 * sessions gets its 250 (and the parent the queue ID); when it says the batch
 * failed, each gets 452 or 451 and nothing of it is queued. No reply is sent
 * before its batch's callback: that is the promise (DESIGN.md).
 *
 * A session in a batch, forming or in flight, is marked `committing`: its draft
 * belongs to the batch, so smtp_server_session_gone defers freeing it until the
 * outcome is back (a client that drops the connection meanwhile still has its
 * message kept: at-least-once, never lost).
 */
#include "smtpd/smtp_server.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "queue/spool_flusher.h"
#include "smtpd/smtp_proc.h"
#include "smtpd/smtp_session.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* Threads fsyncing at once. Each waits on the disk, not the CPU, so there may
   be more than CPUs: the more fsyncs are issued together, the more of them one
   journal commit serves. Batches in flight: a batch forms while the ones before
   it are on disk; the bound keeps the fds and memory of waiting batches small
   (each holds at most one draft per session anyway). */
#ifndef COMMIT_THREADS          /* -D for an experiment (BENCH.md) */
#define COMMIT_THREADS 8
#endif
#ifndef COMMIT_MAX_BATCHES
#define COMMIT_MAX_BATCHES 4
#endif

/* A batch handed to the flusher: its sessions, and their drafts in the same order. */
struct commit_batch {
    struct smtp_server *srv;
    size_t n;
    struct smtp_session **sessions;
    struct spool_draft **drafts;
};

int smtp_commit_init(struct smtp_server *srv)
{
    srv->flusher = spool_flusher_new(srv->base, &srv->spool, COMMIT_THREADS, COMMIT_MAX_BATCHES);
    return srv->flusher ? 0 : -1;
}

/* The flusher's verdict on a batch, on the loop's thread. */
static void batch_done(void *arg, int err)
{
    struct commit_batch *cb = arg;
    struct smtp_server *srv = cb->srv;
    for (size_t i = 0; i < cb->n; i++) {
        struct smtp_session *s = cb->sessions[i];
        s->committing = false;
        if (!err)
            ipc_chan_send(srv->parent, PROC_QUEUE_NEW, s->draft.id, QID_LEN);
        smtp_session_committed(s, !err, err);       /* may free the session */
    }
    free(cb->sessions);
    free(cb->drafts);
    free(cb);
    /* A place in flight is free: the batch that formed meanwhile goes now. */
    if (srv->nbatch)
        event_active(srv->commit_ev, 0, 0);
}

/* Fail a forming batch without handing it over (out of memory, no thread). */
static void batch_refused(struct smtp_server *srv, struct smtp_session **sessions, size_t n, int err)
{
    for (size_t i = 0; i < n; i++) {
        sessions[i]->committing = false;
        spool_draft_abort(&srv->spool, &sessions[i]->draft);
    }
    for (size_t i = 0; i < n; i++)
        smtp_session_committed(sessions[i], false, err);
    free(sessions);
}

/* commit_ev: hand the forming batch to the flusher, unless max batches are in
   flight already (then batch_done activates this again). */
void smtp_commit_run(int fd, short what, void *arg)
{
    struct smtp_server *srv = arg;
    size_t n = srv->nbatch;
    if (n == 0 || spool_flusher_full(srv->flusher))
        return;
    struct smtp_session **sessions = srv->batch;
    srv->batch = NULL;
    srv->nbatch = srv->batch_cap = 0;
    struct commit_batch *cb = malloc(sizeof *cb);
    struct spool_draft **drafts = calloc(n, sizeof *drafts);
    if (!cb || !drafts) {
        free(cb);
        free(drafts);
        batch_refused(srv, sessions, n, ENOMEM);
        return;
    }
    for (size_t i = 0; i < n; i++)
        drafts[i] = &sessions[i]->draft;
    *cb = (struct commit_batch){ srv, n, sessions, drafts };
    if (spool_flusher_commit(srv->flusher, drafts, n, batch_done, cb) < 0) {
        int e = errno;
        log_error("cannot start the group commit: %s", strerror(e));
        free(cb);
        free(drafts);
        batch_refused(srv, sessions, n, e);
    }
}

void smtp_server_commit(struct smtp_server *srv, struct smtp_session *s)
{
    if (srv->nbatch == srv->batch_cap) {
        size_t cap = srv->batch_cap ? srv->batch_cap * 2 : 16;
        struct smtp_session **p = realloc(srv->batch, cap * sizeof *p);
        if (!p) {
            spool_draft_abort(&srv->spool, &s->draft);
            smtp_session_committed(s, false, ENOMEM);
            return;
        }
        srv->batch = p;
        srv->batch_cap = cap;
    }
    s->committing = true;
    srv->batch[srv->nbatch++] = s;
    /* Every session that finishes its data in this turn of the loop joins the batch. */
    event_active(srv->commit_ev, 0, 0);
}

void smtp_commit_stop(struct smtp_server *srv)
{
    /* Batches in flight finish and are answered (their replies may not reach the
       clients any more, but what was committed is queued and the parent hears of
       it). The forming batch was never handed over: its drafts are aborted with
       their sessions, unacknowledged. */
    spool_flusher_drain(srv->flusher);
    for (size_t i = 0; i < srv->nbatch; i++)
        srv->batch[i]->committing = false;
    srv->nbatch = 0;
    struct spool_flusher_stats st;
    spool_flusher_stats(srv->flusher, &st);
    if (st.batches)
        log_info("group commit: %llu messages in %llu batches (%.2f per batch), at most %u in flight",
                 st.drafts, st.batches, (double)st.drafts / (double)st.batches, st.max_in_flight);
    spool_flusher_free(srv->flusher);
    srv->flusher = NULL;
}

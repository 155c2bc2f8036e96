/*
 * queue_proc_int — what the queue process's files share: its context, one
 * attempt's state, and the steps each file offers the others. Internal to
 * queue/queue_proc.c (index, timers, parent, control), queue/queue_attempt.c
 * (one attempt at one message) and queue/queue_attempt_local.c (its local and
 * home-directory deliveries).
 */
#ifndef FERRY_QUEUE_PROC_INT_H
#define FERRY_QUEUE_PROC_INT_H

#include "delivery/local.h"
#include "lib/ipc.h"
#include "lib/envelope.h"
#include "queue/pull_hold.h"
#include "lib/qid.h"
#include "queue/scheduler.h"
#include "queue/spool.h"
#include "queue/spool_spare.h"

#include <event2/util.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define LOCAL_DEST        "@local"      /* cannot be a domain name */

struct attempt;

struct queue_proc {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct spool spool;
    struct ipc_chan *parent;
    struct sched *sched;
    struct sched_params params;
    struct event *due_timer;
    struct event *rescan_timer;
    struct event *remove_sync_ev;   /* one fsync of queue/ for the removals of a loop turn */
    bool remove_pending;            /* removals not yet fsync'd */
    bool first_scan;                /* the scan at start: a stray ID.msg is removed */
    struct spare_pool spare;        /* delivered files kept for reuse (spool_spare.h) */
    struct control *control;
    int lock_fd;
    struct dns_client *dns;
    struct remote_lines *ob;
    struct attempt *inflight;       /* attempts waiting for remote results */
    size_t ninflight;
    struct delivery_pool *pool;     /* local deliveries (queue/delivery_pool.h) */
    struct pull_hold hold;          /* DMTP sending side (pull_hold = yes) */
    bool have_hold;
    struct event *held_timer;       /* expiry of held messages */
    struct pull_client *pull;       /* DMTP pulls (pull_mode = on); NULL */
};

struct dest_name {
    char s[SCHED_DEST_MAX + 1];
};

/*
 * An attempt: one message, the destinations due in this pass. Local
 * recipients are delivered at once; remote ones go to outbound as one job per
 * destination (and per SMTP_CLIENT_MAX_RCPTS recipients), and the attempt
 * waits for their results. finish_attempt then does the rest in one step:
 * DSNs, expiry, next attempts, the envelope rewrite.
 */
struct attempt {
    struct queue_proc *q;
    char id[QID_LEN + 1];
    struct envelope e;
    int fd;
    int64_t now;
    time_t now_wall;
    size_t nd;
    struct dest_name *dests;        /* the destinations attempted */
    struct dest_name *names;        /* each recipient's destination */
    bool *deferred_dest;
    size_t *fail_idx, *ok_idx, *relay_idx, *delay_idx, *exp_idx;
    size_t nf, nok, nrelay, nexp;
    size_t remote_pending;
    struct remote_job *jobs;
    size_t njobs;
    size_t *job_rcpts;
    struct local_batch lb;          /* alias expansions and home deliveries, from the workers */
    bool *add_lost;                 /* an expansion target could not be kept (memory) */
    bool *home_wait;                /* home deliveries the parent has yet to answer */
    struct event *home_timer;       /* gives up on the parent's answers */
    size_t n0;                      /* recipients before expansions */
    struct attempt *next;
};

/* queue_proc.c */
int64_t qp_mono_ms(void);
/* A recipient's destination: its domain in lower case, or LOCAL_DEST. */
void qp_rcpt_dest(const struct ferry_config *cfg, const char *addr, char *out, size_t outsz);
/* Arms the due timer for the earliest job. */
void qp_arm(struct queue_proc *q);
/* Every recipient of id is done: remove it from queue/; the fsync of queue/ comes
   once for all the removals of this loop turn (queue_proc.c, on_remove_sync);
   env_inside: the envelope is only inside ID.msg (no ID.env: queue/spool.h). */
void qp_remove_delivered(struct queue_proc *q, const char *id, bool env_inside);
/* Read an envelope; a corrupt one is quarantined (and forgotten), a missing one
   forgotten. 0 ok. */
int qp_read_env(struct queue_proc *q, const char *id, struct envelope *e);
/* (Re)index one message from its envelope; due now when force. */
void qp_load_message(struct queue_proc *q, const char *id, bool force);

/* queue_attempt.c */
void qp_attempt_message(struct queue_proc *q, const char *id, const char *const *dests, size_t nd);
void qp_attempt_free(struct attempt *a);
bool qp_attempt_busy(const struct queue_proc *q, const char *id);
/* One recipient's outcome into the envelope and the DSN lists. */
void qp_record(struct attempt *a, size_t i, const struct delivery_status *st, bool relayed, const char *remote,
               const char *tls);
/* One awaited result is in; the last one finishes the attempt (and frees a). */
void qp_pending_done(struct attempt *a);
/* The failure for a recipient no delivery worker could be asked about. */
void qp_deliver_recipient(struct queue_proc *q, const struct envelope *e, struct env_rcpt *r, int msg_fd,
                          struct delivery_status *st);

/* queue_attempt_local.c */
void qp_submit_local(struct attempt *a, const size_t *idx, size_t n);
/* PROC_HOME_RESULT from the parent. */
void qp_on_home_result(struct queue_proc *q, const void *data, size_t len);

#endif

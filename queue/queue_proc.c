/*
 * queue_proc — the queue process: keeps the index of what is queued, attempts
 * what is due, bounces what fails, and serves the admin control socket.
 *
 * Index (queue/scheduler.h): loaded with one scan of queue/ at start, then kept
 * current — PROC_QUEUE_NEW from the parent adds a message the smtp process has
 * committed, each attempt re-arms or removes its jobs, admin requests change
 * them. One timer is armed for the earliest due time (libevent timers run on
 * the monotonic clock); a slow safety rescan (queue_scan_interval, 1 h by
 * default) indexes whatever is on disk but not in the index. The reverse (an
 * indexed message whose files are gone) is found when its job falls due: the
 * missing envelope removes it from the index. A pass pops at most PASS_MAX due
 * jobs and groups them by message, so each message is read, attempted and
 * rewritten once per pass whatever the number of its destinations due.
 *
 * Per recipient, an attempt ends delivered, failed (5xx: bounced) or deferred
 * (4xx: tried again after a jittered back-off from retry_min doubling to
 * retry_max). A deferring remote destination is marked down until its retry
 * time, so its other messages wait for that time instead of each costing an
 * attempt. Local recipients share the "@local" destination, which is never
 * marked down: one full mailbox must not delay the others. Local deliveries run
 * in delivery workers (queue/delivery_pool.h), never on this loop; their answers
 * come back on it, like remote ones, and the attempt ends when all are in.
 * Message age (wall time since arrival): past delay_warning_time, one delay DSN;
 * past queue_lifetime, every recipient still to do fails with 5.4.7. A message
 * carrying more than LOOP_MAX_RECEIVED Received: fields fails at its first
 * attempt with 5.4.6 (a mail loop).
 *
 * Crash safety (RFC 5321 6.1: at least once, never lost): a DSN is committed to
 * the spool (bounce_queue) before the original's envelope records the outcome;
 * the envelope is rewritten atomically (or removed) after each attempt. A crash
 * in between repeats a delivery or a DSN; it never loses either.
 *
 * This file: the index, the timers, the parent and control channels, the entry
 * point. One attempt is in queue_attempt.c, its local and home deliveries in
 * queue_attempt_local.c; what they share is in queue_proc_int.h.
 */
#include "queue/queue_proc_int.h"
#include "delivery/delivery.h"
#include "delivery/local.h"
#include "lib/buf.h"
#include "lib/dns.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/proc_msg.h"
#include "queue/control.h"
#include "queue/delivery_pool.h"
#include "queue/remote_lines.h"
#include "queue/pull_client.h"
#include "queue/pull_hold.h"
#include "queue/queue_admin.h"
#include "queue/queue_proc.h"
#include "queue/report_runner.h"
#include "queue/scheduler.h"
#include "queue/spool.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PASS_MAX          256
#define DEST_CONCURRENCY  20

#define HELD_SWEEP_S   60
#define HELD_SWEEP_MAX 1000

static void on_held_timer(evutil_socket_t fd, short what, void *arg)
{
    struct queue_proc *q = arg;
    pull_hold_expire_start(&q->hold, time(NULL), HELD_SWEEP_MAX);
    struct timeval tv = { HELD_SWEEP_S, 0 };
    evtimer_add(q->held_timer, &tv);
}

int64_t qp_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A recipient's destination: its domain in lower case, or LOCAL_DEST. */
void qp_rcpt_dest(const struct ferry_config *cfg, const char *addr, char *out, size_t outsz)
{
    struct mailbox m;
    const char *why;
    if (addr_parse_mailbox(addr, strlen(addr), true, &m, &why) < 0 || m.domain_kind != ADDR_DOMAIN_NAME ||
        settings_is_local_domain(cfg, m.domain)) {
        str_copy(out, LOCAL_DEST, outsz);   /* bad addresses fail at once, locally */
        return;
    }
    str_copy(out, m.domain, outsz);
    str_lower(out);
}

void qp_arm(struct queue_proc *q)
{
    int64_t next = sched_next_due(q->sched);
    if (next == SCHED_NEVER) {
        evtimer_del(q->due_timer);
        return;
    }
    int64_t delay = next - qp_mono_ms();
    if (delay < 0)
        delay = 0;
    struct timeval tv = { (time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000 };
    evtimer_add(q->due_timer, &tv);
}

/* ---- loading ---- */

struct dest_due {
    const char *dest;
    int64_t due;
};

static int cmp_dest_due(const void *a, const void *b)
{
    const struct dest_due *x = a, *y = b;
    int c = strcmp(x->dest, y->dest);
    return c ? c : (x->due > y->due) - (x->due < y->due);
}

/* Read an envelope; a corrupt one is quarantined (and forgotten), a missing one
   forgotten. files: what a scan listed (spool_env_read_listed), or both. 0 ok. */
static int read_env(struct queue_proc *q, const char *id, unsigned files, struct envelope *e)
{
    bool corrupt;
    char err[256];
    if (spool_env_read_listed(&q->spool, id, files, e, &corrupt, err, sizeof err) == 0)
        return 0;
    if (corrupt) {
        log_msg(LOG_LVL_ERROR, id, "quarantined to corrupt/: %s", err);
        spool_quarantine(&q->spool, id, err);
    } else if (errno != ENOENT) {
        log_msg(LOG_LVL_WARN, id, "%s", err);
        return -1;      /* unreadable for now (EMFILE...): keep its jobs */
    } else if (q->first_scan) {
        /* Only the scan at start removes strays: later, a test's (or an older
           tool's) two-file rename into queue/ could be seen between its steps.
           Tools that write pairs into queue/ must not race a start either: the
           tests' harness injects only after the queue's "ready" line. */
        spool_remove_stray(&q->spool, id);
    }
    sched_remove_msg(q->sched, id);
    return -1;
}

int qp_read_env(struct queue_proc *q, const char *id, struct envelope *e)
{
    return read_env(q, id, SPOOL_HAS_ENV | SPOOL_HAS_MSG, e);
}

/* (Re)index one message from its envelope; due now when force. */
static void load_message(struct queue_proc *q, const char *id, unsigned files, bool force)
{
    struct envelope e;
    if (read_env(q, id, files, &e) < 0)
        return;
    sched_remove_msg(q->sched, id);
    time_t now_wall = time(NULL);
    int64_t now = qp_mono_ms();
    struct dest_name *names = calloc(e.nrcpts, sizeof *names);
    struct dest_due *dd = calloc(e.nrcpts, sizeof *dd);
    size_t n = 0;
    if (!names || !dd) {
        log_msg(LOG_LVL_ERROR, id, "out of memory indexing the message; the next rescan retries");
        goto out;
    }
    for (size_t i = 0; i < e.nrcpts; i++) {
        if (!rcpt_todo(&e.rcpts[i]))
            continue;
        qp_rcpt_dest(q->cfg, e.rcpts[i].addr, names[n].s, sizeof names[n].s);
        dd[n].dest = names[n].s;
        dd[n].due = force ? now : sched_due_from_wall(e.rcpts[i].next_attempt, now_wall, now,
                                                       q->params.retry_max_ms);
        n++;
    }
    if (n == 0) {
        /* Every recipient is done but the envelope is still here (a crash between
           the last rewrite and the removal): finish the removal. */
        spool_remove(&q->spool, id);
        log_msg(LOG_LVL_INFO, id, "removed (no recipient left)");
        goto out;
    }
    /* One job per destination, due at its earliest recipient. */
    qsort(dd, n, sizeof *dd, cmp_dest_due);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && !strcmp(dd[i].dest, dd[i - 1].dest))
            continue;
        if (sched_put(q->sched, id, dd[i].dest, dd[i].due) < 0)
            log_msg(LOG_LVL_ERROR, id, "out of memory indexing the message; the next rescan retries");
    }
    if (e.hold)
        sched_hold(q->sched, id, true, now);
out:
    free(names);
    free(dd);
    env_free(&e);
}

void qp_load_message(struct queue_proc *q, const char *id, bool force)
{
    load_message(q, id, SPOOL_HAS_ENV | SPOOL_HAS_MSG, force);
}

static int cmp_due(const void *a, const void *b)
{
    const struct sched_due *x = a, *y = b;
    return strcmp(x->id, y->id);
}

/* Removals are fsync'd once per turn of the loop, not once each (issue 16): a
   delivered message's removal only guards against delivering it twice after a
   crash (its recipients are done; nothing can be lost), and one fsync of queue/
   after every attempt that ended in this turn serves them all. With one fsync
   per removal on this loop the queue delivered at most one message per journal
   commit, which made it the bottleneck of relaying once intake got faster. */
static void on_remove_sync(evutil_socket_t fd, short what, void *arg)
{
    struct queue_proc *q = arg;
    if (!q->remove_pending)
        return;
    q->remove_pending = false;
    if (fsync(q->spool.queue_dirfd) < 0)
        log_error("cannot fsync the queue directory after removals: %s", strerror(errno));
}

void qp_remove_delivered(struct queue_proc *q, const char *id, bool env_inside)
{
    /* A format-2 file leaves queue/ by a rename, and a thread of spare_pool's
       empties it for the next draft, or unlinks it, and fsyncs queue/
       (queue/spool_spare.h): no inode freed here, none created there, and the
       loop does not wait for the disk. */
    if (env_inside && spare_retire(&q->spare, id) == 1) {
        log_msg(LOG_LVL_INFO, id, "removed");
        return;
    }
    if (spool_remove_unsynced(&q->spool, id, env_inside) < 0) {
        log_msg(LOG_LVL_ERROR, id, "cannot remove from the queue: %s", strerror(errno));
        return;
    }
    log_msg(LOG_LVL_INFO, id, "removed");
    q->remove_pending = true;
    event_active(q->remove_sync_ev, 0, 0);
}

static void on_due(evutil_socket_t fd, short what, void *arg)
{
    struct queue_proc *q = arg;
    static struct sched_due due[PASS_MAX];
    size_t n = sched_pop_due(q->sched, qp_mono_ms(), due, PASS_MAX);
    qsort(due, n, sizeof due[0], cmp_due);
    for (size_t i = 0; i < n; ) {
        const char *dests[PASS_MAX];
        size_t k = 0;
        size_t j = i;
        for (; j < n && !strcmp(due[j].id, due[i].id); j++)
            dests[k++] = due[j].dest;
        qp_attempt_message(q, due[i].id, dests, k);
        i = j;
    }
    /* More may be due: the timer fires again at once, after pending events
       (new messages, admin requests) have had their turn. */
    qp_arm(q);
}

/* ---- rescan, parent, control ---- */

static void rescan_visit(const char *id, unsigned files, void *arg)
{
    struct queue_proc *q = arg;
    if (!sched_has_msg(q->sched, id))
        load_message(q, id, files, false);
}

static void rescan(struct queue_proc *q)
{
    size_t before = sched_msg_count(q->sched);
    /* Unopened: an ID indexed already is skipped by rescan_visit, and any other
       is opened once, by its envelope read. */
    if (spool_scan_unopened(&q->spool, rescan_visit, q) < 0)
        log_error("cannot scan %s/queue: %s", q->spool.dir, strerror(errno));
    if (sched_msg_count(q->sched) != before)
        log_info("queue scan: %zu messages indexed (%zu before)", sched_msg_count(q->sched), before);
    qp_arm(q);
}

static void on_rescan(evutil_socket_t fd, short what, void *arg)
{
    struct queue_proc *q = arg;
    rescan(q);
    struct timeval tv = { (time_t)q->cfg->queue_scan_interval, 0 };
    evtimer_add(q->rescan_timer, &tv);
}

static void on_parent_msg(struct ipc_chan *c, uint32_t type, const void *data, size_t len, void *arg)
{
    struct queue_proc *q = arg;
    if (type == PROC_HOME_RESULT) {
        qp_on_home_result(q, data, len);
        return;
    }
    if (type == PROC_PULL_NUDGE) {
        pull_client_nudge(q->pull);
        return;
    }
    if (type == PROC_QUEUE_NEW && len == QID_LEN) {
        char id[QID_LEN + 1];
        memcpy(id, data, QID_LEN);
        id[QID_LEN] = '\0';
        if (qid_valid(id)) {
            qp_load_message(q, id, true);
            qp_arm(q);
        }
        return;
    }
    log_warn("unexpected message %u (%zu octets) from the parent", type, len);
}

/* A message a forked child committed to queue/ (a pulled message, or a notice
   of the held/ expiry sweep): index it now. */
static void on_pulled(const char *id, void *arg)
{
    struct queue_proc *q = arg;
    qp_load_message(q, id, true);
    qp_arm(q);
}

static int on_control(const char *verb, const char *arg, char *reply, size_t replylen, void *ctx)
{
    struct queue_proc *q = ctx;
    enum qadmin_op op;
    if (!strcmp(verb, "pull")) {        /* ferryctl pull fetch: look at the notices now */
        pull_client_nudge(q->pull);
        snprintf(reply, replylen, q->pull ? "pulls are being looked at" : "pulls are off (pull_mode = off)");
        return 0;
    }
    if (qadmin_op_parse(verb, &op) < 0) {
        snprintf(reply, replylen, "unknown request \"%.32s\"", verb);
        return -1;
    }
    int64_t now = qp_mono_ms();
    if (op == QADMIN_FLUSH && !arg[0]) {
        size_t n = sched_flush(q->sched, NULL, now);
        qp_arm(q);
        log_info("queue flushed by the administrator: %zu jobs due now", n);
        snprintf(reply, replylen, "%zu deliver%s due now", n, n == 1 ? "y is" : "ies are");
        return 0;
    }
    if (op != QADMIN_FLUSH && op != QADMIN_RELEASE && qp_attempt_busy(q, arg)) {
        snprintf(reply, replylen, "%s is being delivered right now; try again when the attempt ends", arg);
        return 1;
    }
    char bounce_id[QID_LEN + 1];
    if (qadmin_apply(&q->spool, q->cfg, op, arg, bounce_id, reply, replylen) < 0)
        return -1;
    switch (op) {
    case QADMIN_DELETE:
        sched_remove_msg(q->sched, arg);
        break;
    case QADMIN_BOUNCE:
        sched_remove_msg(q->sched, arg);
        if (bounce_id[0])
            qp_load_message(q, bounce_id, true);
        break;
    case QADMIN_HOLD:
        if (!sched_has_msg(q->sched, arg))
            qp_load_message(q, arg, false);
        sched_hold(q->sched, arg, true, now);
        break;
    case QADMIN_RELEASE:
    case QADMIN_FLUSH:
        /* Re-read, then due now: the administrator asked for an attempt, so the
           destinations' down marks are cleared too. */
        qp_load_message(q, arg, true);
        sched_flush(q->sched, arg, now);
        break;
    }
    qp_arm(q);
    return 0;
}

static void on_parent_close(struct ipc_chan *c, void *arg)
{
    struct queue_proc *q = arg;
    log_error("parent process went away; stopping");
    event_base_loopexit(q->base, NULL);
}

static void on_sigterm(evutil_socket_t fd, short what, void *arg)
{
    struct queue_proc *q = arg;
    event_base_loopexit(q->base, NULL);
}

int queue_process_main(const struct ferry_config *cfg, int parent_fd, const struct relayhost_creds *creds)
{
    struct queue_proc q;
    memset(&q, 0, sizeof q);
    q.cfg = cfg;
    q.params.retry_min_ms = (int64_t)cfg->retry_min * 1000;
    q.params.retry_max_ms = (int64_t)cfg->retry_max * 1000;
    q.params.dest_concurrency = DEST_CONCURRENCY;
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    char err[256];
    /* The queue lock first: ferryctl may be changing the spool right now. */
    q.lock_fd = control_lock(cfg->spool_dir, true);
    if (q.lock_fd < 0) {
        log_error("cannot lock %s/queue.lock: %s", cfg->spool_dir, strerror(errno));
        return 1;
    }
    if (spool_open(&q.spool, cfg->spool_dir, err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    spare_pool_open(&q.spare, cfg->spool_dir, q.spool.queue_dirfd);
    q.sched = sched_new(&q.params);
    q.base = event_base_new();
    if (!q.base || !q.sched)
        return 1;
    q.parent = ipc_chan_new(q.base, parent_fd, on_parent_msg, on_parent_close, &q);
    q.due_timer = evtimer_new(q.base, on_due, &q);
    q.rescan_timer = evtimer_new(q.base, on_rescan, &q);
    q.remove_sync_ev = event_new(q.base, -1, 0, on_remove_sync, &q);
    q.pool = delivery_pool_new(q.base, cfg);
    struct event *sigterm = evsignal_new(q.base, SIGTERM, on_sigterm, &q);
    struct event *sigint = evsignal_new(q.base, SIGINT, on_sigterm, &q);
    if (!q.parent || !q.due_timer || !q.rescan_timer || !q.remove_sync_ev || !sigterm || !sigint || !q.pool)
        return 1;
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    q.control = control_open(q.base, cfg->spool_dir, on_control, &q, err, sizeof err);
    if (!q.control)
        log_warn("%s; ferryctl cannot reach the running queue", err);
    struct dns_config dnscfg;
    settings_dns_config(cfg, &dnscfg);
    q.dns = dns_client_new(q.base, &dnscfg);
    if (!q.dns) {
        log_error("cannot start the DNS client");
        return 1;
    }
    if (cfg->pull_hold) {
        if (pull_hold_open(&q.hold, q.base, cfg, err, sizeof err) < 0)
            log_warn("DMTP: %s; peers that offer MSID get plain SMTP", err);
        else
            q.have_hold = true;
        q.hold.queued = on_pulled;          /* a notice to a sender, queued by the expiry sweep */
        q.hold.queued_arg = &q;
    }
    q.ob = remote_lines_new(q.base, cfg, q.dns, creds, q.have_hold ? &q.hold.hooks : NULL, err, sizeof err);
    if (creds)
        relayhost_creds_wipe((struct relayhost_creds *)creds);     /* outbound keeps its own copy */
    if (!q.ob) {
        log_error("%s", err);
        return 1;
    }

    /* One scan loads what was queued before we started; from then on the index
       is kept current and the rescan only reconciles. */
    q.first_scan = true;
    rescan(&q);
    q.first_scan = false;
    struct timeval tv = { (time_t)cfg->queue_scan_interval, 0 };
    evtimer_add(q.rescan_timer, &tv);
    if (cfg->pull_mode == PULL_MODE_ON && !(q.pull = pull_client_new(q.base, cfg, &q.spool, on_pulled, &q, err,
                                                                      sizeof err)))
        log_warn("DMTP pulls unavailable: %s", err);
    if (q.have_hold && (q.held_timer = evtimer_new(q.base, on_held_timer, &q)) != NULL)
        on_held_timer(-1, 0, &q);
    struct report_runner *reports = report_runner_start(q.base, cfg);
    if (!reports)
        log_warn("DMARC aggregate reports will not be sent: out of memory");
    log_info("queue process ready: %zu messages queued", sched_msg_count(q.sched));
    event_base_dispatch(q.base);

    /* Remote attempts still out are dropped: their envelopes on disk still list
       what is left, and the next start tries it again. */
    report_runner_free(reports);
    remote_lines_free(q.ob);
    pull_client_free(q.pull);
    if (q.held_timer)
        event_free(q.held_timer);
    if (q.have_hold)
        pull_hold_close(&q.hold);
    delivery_pool_free(q.pool);     /* local deliveries still out: likewise */
    while (q.inflight) {
        struct attempt *a = q.inflight;
        q.inflight = a->next;
        qp_attempt_free(a);
    }
    dns_client_free(q.dns);
    control_close(q.control);
    ipc_chan_free(q.parent);
    event_free(q.due_timer);
    event_free(q.rescan_timer);
    on_remove_sync(-1, 0, &q);      /* removals of the last turn, if any */
    event_free(q.remove_sync_ev);
    event_free(sigterm);
    event_free(sigint);
    sched_free(q.sched);
    spare_pool_close(&q.spare);
    spool_close(&q.spool);
    event_base_free(q.base);
    close(q.lock_fd);
    log_info("queue process stopped");
    return 0;
}

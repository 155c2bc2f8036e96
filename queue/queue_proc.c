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
 */
#include "delivery/delivery.h"
#include "delivery/home_delivery.h"
#include "delivery/local.h"
#include "delivery/local_job.h"
#include "lib/buf.h"
#include "lib/dns.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/proc_msg.h"
#include "queue/bounce.h"
#include "queue/control.h"
#include "queue/delivery_pool.h"
#include "queue/outbound.h"
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

#define LOCAL_DEST        "@local"      /* cannot be a domain name */
#define PASS_MAX          256
#define DEST_CONCURRENCY  20
#define LOOP_MAX_RECEIVED 100           /* RFC 5321 6.3: a hop count; 100 is what it suggests */
#define HEADER_SCAN_MAX   (256 * 1024)
/* Messages with remote deliveries in progress at once: each holds its message
   file open and its envelope in memory. Jobs beyond it wait in the index. */
#define INFLIGHT_MAX      400
#define BUSY_RETRY_MS     1000
/* Local jobs waiting for a delivery worker; past it, messages with local
   recipients wait in the index (each waiting attempt holds its file open). */
#define LOCAL_BACKLOG_MAX 256

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
    struct control *control;
    int lock_fd;
    struct dns_client *dns;
    struct outbound *ob;
    struct attempt *inflight;       /* attempts waiting for remote results */
    size_t ninflight;
    struct delivery_pool *pool;     /* local deliveries (queue/delivery_pool.h) */
    struct pull_hold hold;          /* DMTP sending side (pull_hold = yes) */
    bool have_hold;
    struct event *held_timer;       /* expiry of held messages */
    struct pull_client *pull;       /* DMTP pulls (pull_mode = on); NULL */
};

#define HELD_SWEEP_S   60
#define HELD_SWEEP_MAX 1000

static void on_held_timer(evutil_socket_t fd, short what, void *arg)
{
    struct queue_proc *q = arg;
    pull_hold_expire(&q->hold, time(NULL), HELD_SWEEP_MAX);
    struct timeval tv = { HELD_SWEEP_S, 0 };
    evtimer_add(q->held_timer, &tv);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct dest_name {
    char s[SCHED_DEST_MAX + 1];
};

/* A recipient's destination: its domain in lower case, or LOCAL_DEST. */
static void rcpt_dest(const struct ferry_config *cfg, const char *addr, char *out, size_t outsz)
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

static void arm(struct queue_proc *q)
{
    int64_t next = sched_next_due(q->sched);
    if (next == SCHED_NEVER) {
        evtimer_del(q->due_timer);
        return;
    }
    int64_t delay = next - mono_ms();
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
   forgotten. 0 ok. */
static int read_env(struct queue_proc *q, const char *id, struct envelope *e)
{
    bool corrupt;
    char err[256];
    if (spool_env_read(&q->spool, id, e, &corrupt, err, sizeof err) == 0)
        return 0;
    if (corrupt) {
        log_msg(LOG_LVL_ERROR, id, "quarantined to corrupt/: %s", err);
        spool_quarantine(&q->spool, id, err);
    } else if (errno != ENOENT) {
        log_msg(LOG_LVL_WARN, id, "%s", err);
        return -1;      /* unreadable for now (EMFILE...): keep its jobs */
    }
    sched_remove_msg(q->sched, id);
    return -1;
}

/* (Re)index one message from its envelope; due now when force. */
static void load_message(struct queue_proc *q, const char *id, bool force)
{
    struct envelope e;
    if (read_env(q, id, &e) < 0)
        return;
    sched_remove_msg(q->sched, id);
    time_t now_wall = time(NULL);
    int64_t now = mono_ms();
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
        rcpt_dest(q->cfg, e.rcpts[i].addr, names[n].s, sizeof names[n].s);
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

/* ---- delivery ---- */

/* Expansions (aliases, virtual entries) become new recipients to do; remote
   ones are routed like any other. RFC 3461 §5.2.7: a single expansion carries
   NOTIFY and ORCPT on unchanged (§5.2.7.2, no DSN here); several get ORCPT and
   NOTIFY without SUCCESS, the original's SUCCESS being answered by an
   "expanded" DSN (§5.2.7.3 (c), in record()). If they cannot be added, the
   original is deferred instead. True when recipients were added. */
static bool add_expansions(struct queue_proc *q, struct envelope *e, size_t n0, const struct local_batch *b,
                           time_t now_wall)
{
    bool added = false;
    for (size_t i = 0; i < n0 && b->add; i++) {
        const struct local_new_rcpts *x = &b->add[i];
        if (!x->n)
            continue;
        size_t before = e->nrcpts;
        size_t k = 0;
        while (k < x->n && env_add_rcpt(e, x->v[k]) == 0)
            k++;
        struct env_rcpt *r = &e->rcpts[i];
        if (k < x->n) {
            e->nrcpts = before;
            r->state = RCPT_DEFERRED;
            r->next_attempt = now_wall + (time_t)(q->params.retry_min_ms / 1000);
            snprintf(r->result, sizeof r->result, "4.3.0 cannot add the %zu recipients it expands to", x->n);
            continue;
        }
        for (size_t k2 = 0; k2 < x->n; k2++) {
            struct env_rcpt *n = &e->rcpts[before + k2];
            n->notify = x->n == 1 ? r->notify : (r->notify & ~(unsigned)ENV_NOTIFY_SUCCESS);
            if (r->notify && !n->notify)
                n->notify = ENV_NOTIFY_NEVER;   /* SUCCESS alone: nothing more is asked */
            n->orcpt_type = r->orcpt_type;
            str_copy(n->orcpt, r->orcpt, sizeof n->orcpt);
        }
        added = true;
    }
    return added;
}

/* A local recipient no delivery worker could be asked about (memory ran
   short), or an address that cannot be routed at all. */
static void deliver_recipient(struct queue_proc *q, const struct envelope *e, struct env_rcpt *r,
                              int msg_fd, struct delivery_status *st)
{
    struct mailbox m;
    const char *why;
    if (local_is_target(r->addr)) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 out of memory for local delivery");
        return;
    }
    if (addr_parse_mailbox(r->addr, strlen(r->addr), true, &m, &why) < 0) {
        delivery_set(st, DELIVERY_FAIL, "5.1.3 bad recipient address: %s", why);
        return;
    }
    if (m.domain_kind != ADDR_DOMAIN_NAME) {
        /* Accepted only from trusted clients; Ferry does not route to bare IP
           addresses (RFC 5321 §4.1.3 allows it, nothing needs it). */
        delivery_set(st, DELIVERY_FAIL, "5.1.2 Ferry does not deliver to address literals");
        return;
    }
    delivery_set(st, DELIVERY_DEFER, "4.3.0 out of memory for local delivery");
}

/* Received: fields in the header section (at most HEADER_SCAN_MAX octets read). */
static int count_received(int fd)
{
    char *p = malloc(HEADER_SCAN_MAX + 1);
    if (!p)
        return 0;
    ssize_t got = pread(fd, p, HEADER_SCAN_MAX, 0);
    int n = 0;
    for (ssize_t i = 0; got > 0 && i < got; ) {
        const char *line = p + i;
        const char *nl = memchr(line, '\n', (size_t)(got - i));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(got - i);
        if (ll == 0 || (ll == 1 && line[0] == '\r'))
            break;      /* the empty line: end of the header section */
        if (ll >= 9 && !strncasecmp(line, "Received:", 9))
            n++;
        i += (ssize_t)ll + 1;
    }
    free(p);
    return n;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i]))
            return true;
    return false;
}

/* Queue a DSN; on failure the caller keeps the recipients to do. */
static bool send_dsn(struct queue_proc *q, const struct envelope *e, int fd, enum dsn_action a,
                     const size_t *idx, size_t n, time_t now)
{
    char new_id[QID_LEN + 1], err[256];
    if (bounce_queue(&q->spool, q->cfg, e, fd, a, idx, n, now, new_id, err, sizeof err) < 0) {
        log_msg(LOG_LVL_ERROR, e->id, "%s", err);
        return false;
    }
    if (new_id[0])
        load_message(q, new_id, true);
    return true;
}

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
    struct outbound_job *jobs;
    size_t njobs;
    size_t *job_rcpts;
    struct local_batch lb;          /* alias expansions and home deliveries, from the workers */
    bool *add_lost;                 /* an expansion target could not be kept (memory) */
    bool *home_wait;                /* home deliveries the parent has yet to answer */
    struct event *home_timer;       /* gives up on the parent's answers */
    size_t n0;                      /* recipients before expansions */
    struct attempt *next;
};

static void attempt_free(struct attempt *a)
{
    if (a->fd >= 0)
        close(a->fd);
    free(a->dests);
    free(a->names);
    free(a->deferred_dest);
    free(a->fail_idx);
    free(a->ok_idx);
    free(a->relay_idx);
    free(a->delay_idx);
    free(a->exp_idx);
    free(a->jobs);
    free(a->job_rcpts);
    free(a->home_wait);
    free(a->add_lost);
    if (a->home_timer)
        event_free(a->home_timer);
    local_batch_free(&a->lb);
    env_free(&a->e);
    free(a);
}

static bool attempt_busy(const struct queue_proc *q, const char *id)
{
    for (const struct attempt *a = q->inflight; a; a = a->next)
        if (!strcmp(a->id, id))
            return true;
    return false;
}

/* One recipient's outcome into the envelope and the DSN lists. */
static void record(struct attempt *a, size_t i, const struct delivery_status *st, bool relayed,
                   const char *remote, const char *tls)
{
    struct env_rcpt *r = &a->e.rcpts[i];
    r->attempts++;
    r->last_attempt = a->now_wall;
    str_copy(r->result, st->text, sizeof r->result);
    const char *status = "sent";
    size_t expanded = i < a->n0 && a->lb.add ? a->lb.add[i].n : 0;
    if (st->result == DELIVERY_OK) {
        r->state = RCPT_DELIVERED;
        if (relayed)
            a->relay_idx[a->nrelay++] = i;
        else if (expanded == 1)
            ;   /* RFC 3461 §5.2.7.2: a single forwarding address carries the request on */
        else if (expanded > 1 && (r->notify & ENV_NOTIFY_SUCCESS))
            a->exp_idx[a->nexp++] = i;     /* §5.2.7.3 (c): "expanded" */
        else if (expanded == 0 && rcpt_wants_dsn(r, DSN_DELIVERED))
            a->ok_idx[a->nok++] = i;
    } else if (st->result == DELIVERY_FAIL) {
        r->state = RCPT_FAILED;
        status = "bounced";
        if (rcpt_wants_dsn(r, DSN_FAILED))
            a->fail_idx[a->nf++] = i;
    } else {
        r->state = RCPT_DEFERRED;
        status = "deferred";
        for (size_t k = 0; k < a->nd; k++)
            if (!strcmp(a->names[i].s, a->dests[k].s))
                a->deferred_dest[k] = true;
    }
    if (remote)
        log_msg(LOG_LVL_INFO, a->id, "to=<%s> status=%s attempts=%u relay=%s tls=\"%s\" (%s)", r->addr, status,
                r->attempts, remote[0] ? remote : "none", tls && tls[0] ? tls : "none", r->result);
    else
        log_msg(LOG_LVL_INFO, a->id, "to=<%s> status=%s attempts=%u (%s)", r->addr, status, r->attempts,
                r->result);
}

static void finish_attempt(struct attempt *a);

/* One awaited result (remote, local job or home) is in; the last one finishes
   the attempt. */
static void pending_done(struct attempt *a)
{
    if (--a->remote_pending > 0)
        return;
    struct queue_proc *q = a->q;
    struct attempt **pp = &q->inflight;
    while (*pp && *pp != a)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = a->next;
        q->ninflight--;
    }
    finish_attempt(a);
    arm(q);
}

static void on_remote_done(struct outbound_job *j, const struct smtp_client_result *r, void *arg)
{
    struct attempt *a = arg;
    char remote[sizeof r->remote_host + sizeof r->remote_ip + 4];
    if (r->remote_host[0] && r->remote_ip[0])
        snprintf(remote, sizeof remote, "%s[%s]", r->remote_host, r->remote_ip);
    else
        str_copy(remote, r->remote_host, sizeof remote);
    for (size_t k = 0; k < r->nrcpts; k++)
        record(a, r->rcpts[k].index, &r->rcpts[k].st, r->rcpts[k].dsn_relayed, remote, r->tls);
    if (r->nrcpts < j->nrcpts) {
        /* Answered in part only (out of memory building the answer): the rest
           are tried again later. */
        struct delivery_status st;
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 out of memory recording the delivery result");
        for (size_t k = r->nrcpts; k < j->nrcpts; k++)
            record(a, j->rcpts[k], &st, false, "", NULL);
    }
    pending_done(a);
}

/* Home deliveries (mailbox_owner = system) go to the parent; its answer comes
   back as PROC_HOME_RESULT. False when the request cannot be sent. */
static bool request_home(struct attempt *a, size_t i)
{
    struct home_request hr;
    memset(&hr, 0, sizeof hr);
    str_copy(hr.id, a->id, sizeof hr.id);
    hr.index = (unsigned)i;
    str_copy(hr.user, a->lb.home_user[i], sizeof hr.user);
    str_copy(hr.sender, a->e.sender, sizeof hr.sender);
    str_copy(hr.rcpt, a->lb.home_rcpt[i], sizeof hr.rcpt);
    hr.junk = a->e.quarantine[0] != '\0';
    char line[1024];
    int n = home_request_format(&hr, line, sizeof line);
    return n > 0 && ipc_chan_send(a->q->parent, PROC_HOME_DELIVER, line, (size_t)n) == 0;
}

/* The parent never answered (it dropped the request, or the queue process was
   told nothing): the deliveries still awaited are tried again later. */
static void on_home_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct attempt *a = arg;
    size_t waiting = 0;
    struct delivery_status st;
    for (size_t i = 0; i < a->n0; i++) {
        if (!a->home_wait[i])
            continue;
        a->home_wait[i] = false;
        delivery_set(&st, DELIVERY_DEFER, "4.4.7 no answer about the delivery as %s", a->lb.home_user[i]);
        record(a, i, &st, false, NULL, NULL);
        waiting++;
    }
    if (waiting == 0)
        return;
    a->remote_pending -= waiting - 1;
    pending_done(a);        /* the last: may free a */
}

static void on_home_result(struct queue_proc *q, const void *data, size_t len)
{
    struct home_result hr;
    if (home_result_parse(data, len, &hr) < 0) {
        log_warn("malformed home delivery result from the parent (%zu octets)", len);
        return;
    }
    for (struct attempt *a = q->inflight; a; a = a->next) {
        if (strcmp(a->id, hr.id) != 0)
            continue;
        if (hr.index >= a->n0 || !a->lb.home || !a->lb.home[hr.index] || !a->home_wait[hr.index])
            break;
        a->home_wait[hr.index] = false;
        record(a, hr.index, &hr.st, false, NULL, NULL);
        pending_done(a);
        return;
    }
    log_warn("%s: home delivery result for an attempt no longer waiting (index %u)", hr.id, hr.index);
}

/* A worker resolved recipient i to a mailbox the parent writes as a system user. */
static void start_home(struct attempt *a, size_t i)
{
    struct queue_proc *q = a->q;
    if (!a->home_wait)
        a->home_wait = calloc(a->n0, sizeof *a->home_wait);
    if (a->home_wait && !a->home_timer) {
        a->home_timer = evtimer_new(q->base, on_home_timeout, a);
        struct timeval tv = {HOME_TIMEOUT_SECONDS + 60, 0};
        if (a->home_timer)
            evtimer_add(a->home_timer, &tv);
    }
    if (a->home_wait && a->home_timer && request_home(a, i)) {
        a->home_wait[i] = true;
        a->remote_pending++;
        return;
    }
    struct delivery_status st;
    delivery_set(&st, DELIVERY_DEFER, "4.3.0 cannot ask the parent to deliver as %s", a->lb.home_user[i]);
    record(a, i, &st, false, NULL, NULL);
}

/* ---- answers from the delivery workers (queue/delivery_pool.h) ---- */

static void on_local_add(void *arg, unsigned index, const char *target)
{
    struct attempt *a = arg;
    struct local_new_rcpts *x = &a->lb.add[index];
    if (x->n == 0 || (x->n & (x->n - 1)) == 0) {     /* grow by doubling */
        void *v = realloc(x->v, (x->n ? 2 * x->n : 1) * sizeof *x->v);
        if (!v) {
            a->add_lost[index] = true;
            return;
        }
        x->v = v;
    }
    str_copy(x->v[x->n++], target, sizeof x->v[0]);
}

static void on_local_result(void *arg, unsigned index, const struct delivery_status *st)
{
    struct attempt *a = arg;
    struct delivery_status lost;
    if (st->result == DELIVERY_OK && a->add_lost[index]) {
        delivery_set(&lost, DELIVERY_DEFER, "4.3.0 out of memory keeping the expansion");
        st = &lost;
    }
    if (st->result != DELIVERY_OK) {
        /* Only an OK carries an expansion; a worker that died after sending part
           of one leaves nothing behind. */
        free(a->lb.add[index].v);
        a->lb.add[index].v = NULL;
        a->lb.add[index].n = 0;
    }
    record(a, index, st, false, NULL, NULL);
}

static void on_local_home(void *arg, unsigned index, const char *user, const char *rcpt)
{
    struct attempt *a = arg;
    a->lb.home[index] = true;
    str_copy(a->lb.home_user[index], user, sizeof a->lb.home_user[index]);
    str_copy(a->lb.home_rcpt[index], rcpt, sizeof a->lb.home_rcpt[index]);
    start_home(a, index);
}

static void on_local_done(void *arg)
{
    pending_done(arg);
}

static const struct delivery_pool_cb local_cb = { on_local_add, on_local_result, on_local_home, on_local_done };

/* Hand the local recipients idx[0..n) of a to the delivery workers: one job per
   recipient, except those that must share an LMTP transaction
   (local_txn_key), at most LOCAL_JOB_MAX_RCPTS a job. */
static void submit_local(struct attempt *a, const size_t *idx, size_t n)
{
    struct queue_proc *q = a->q;
    if (n == 0)
        return;
    char **keys = calloc(n, sizeof *keys);
    bool *taken = calloc(n, sizeof *taken);
    unsigned *jidx = calloc(LOCAL_JOB_MAX_RCPTS, sizeof *jidx);
    const char **jrcpt = calloc(LOCAL_JOB_MAX_RCPTS, sizeof *jrcpt);
    a->add_lost = calloc(a->n0, sizeof *a->add_lost);
    bool ok = keys && taken && jidx && jrcpt && a->add_lost && local_batch_alloc(&a->lb, a->n0) == 0;
    for (size_t g = 0; ok && g < n; g++) {
        char key[PATH_MAX + 8];
        local_txn_key(q->cfg, a->e.rcpts[idx[g]].addr, key, sizeof key);
        if (key[0] && !(keys[g] = strdup(key)))
            ok = false;
    }
    for (size_t g = 0; g < n; g++) {
        if (taken[g])
            continue;
        size_t k = 0;
        for (size_t h = g; ok && h < n && k < LOCAL_JOB_MAX_RCPTS; h++) {
            if (taken[h] || (h != g && (!keys[g] || !keys[h] || strcmp(keys[g], keys[h]))))
                continue;
            taken[h] = true;
            jidx[k] = (unsigned)idx[h];
            jrcpt[k++] = a->e.rcpts[idx[h]].addr;
        }
        if (ok && delivery_pool_submit(q->pool, a->id, a->e.sender, a->e.quarantine[0] != '\0', jidx, jrcpt, k,
                                       &local_cb, a) == 0) {
            a->remote_pending++;
            continue;
        }
        /* Out of memory: this job's recipients (or, when ok is false, just
           recipient g) are tried again later. */
        if (k == 0) {
            taken[g] = true;
            jidx[k++] = (unsigned)idx[g];
        }
        for (size_t x = 0; x < k; x++) {
            struct delivery_status st;
            deliver_recipient(q, &a->e, &a->e.rcpts[jidx[x]], a->fd, &st);
            record(a, jidx[x], &st, false, NULL, NULL);
        }
    }
    for (size_t g = 0; keys && g < n; g++)
        free(keys[g]);
    free(keys);
    free(taken);
    free(jidx);
    free(jrcpt);
}

/* Hand the remote recipients of a to outbound, grouped by destination. */
static void submit_remote(struct attempt *a, const size_t *remote, size_t nremote)
{
    struct queue_proc *q = a->q;
    if (nremote == 0)
        return;
    a->job_rcpts = malloc(nremote * sizeof *a->job_rcpts);
    a->jobs = calloc(nremote, sizeof *a->jobs);       /* at most one job per recipient */
    if (!a->job_rcpts || !a->jobs) {
        struct delivery_status st;
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 out of memory starting remote delivery");
        for (size_t k = 0; k < nremote; k++)
            record(a, remote[k], &st, false, NULL, NULL);
        return;
    }
    size_t used = 0;
    for (size_t k = 0; k < a->nd; k++) {
        const char *dest = a->dests[k].s;
        if (!strcmp(dest, LOCAL_DEST))
            continue;
        size_t start = used;
        for (size_t x = 0; x < nremote; x++)
            if (!strcmp(a->names[remote[x]].s, dest))
                a->job_rcpts[used++] = remote[x];
        for (size_t off = start; off < used; off += SMTP_CLIENT_MAX_RCPTS) {
            struct outbound_job *j = &a->jobs[a->njobs++];
            j->env = &a->e;
            j->rcpts = &a->job_rcpts[off];
            j->nrcpts = used - off < SMTP_CLIENT_MAX_RCPTS ? used - off : SMTP_CLIENT_MAX_RCPTS;
            j->msg_fd = a->fd;
            str_copy(j->dest, dest, sizeof j->dest);
            j->done = on_remote_done;
            j->arg = a;
            if (outbound_submit(q->ob, j) < 0) {
                struct delivery_status st;
                delivery_set(&st, DELIVERY_DEFER, "4.3.0 out of memory queueing the remote delivery");
                for (size_t x = 0; x < j->nrcpts; x++)
                    record(a, j->rcpts[x], &st, false, NULL, NULL);
                a->njobs--;
                continue;
            }
            a->remote_pending++;
        }
    }
}

static void attempt_message(struct queue_proc *q, const char *id, const char *const *dests, size_t nd)
{
    int64_t now = mono_ms();
    bool local = in_list(LOCAL_DEST, dests, nd);
    if (attempt_busy(q, id) || (q->ninflight >= INFLIGHT_MAX && !local) ||
        (local && delivery_pool_backlog(q->pool) >= LOCAL_BACKLOG_MAX)) {
        /* Still out with its previous attempt, or too many out already: later,
           without counting an attempt. */
        for (size_t k = 0; k < nd; k++)
            sched_put(q->sched, id, dests[k], now + BUSY_RETRY_MS);
        return;
    }
    struct attempt *a = calloc(1, sizeof *a);
    if (!a) {
        for (size_t k = 0; k < nd; k++)
            sched_put(q->sched, id, dests[k], now + q->params.retry_min_ms);
        return;
    }
    a->q = q;
    a->fd = -1;
    a->now = now;
    a->now_wall = time(NULL);
    str_copy(a->id, id, sizeof a->id);
    if (read_env(q, id, &a->e) < 0) {
        /* Unreadable for now but not gone: its popped jobs must not stay in
           flight for ever. */
        for (size_t k = 0; k < nd && sched_has_msg(q->sched, id); k++)
            sched_put(q->sched, id, dests[k], now + q->params.retry_min_ms);
        attempt_free(a);
        return;
    }
    if (a->e.hold) {
        sched_hold(q->sched, id, true, now);
        attempt_free(a);
        return;
    }
    struct envelope *e = &a->e;
    size_t n = e->nrcpts;
    a->nd = nd;
    a->dests = calloc(nd, sizeof *a->dests);
    a->names = calloc(n, sizeof *a->names);
    a->deferred_dest = calloc(nd, sizeof *a->deferred_dest);
    a->fail_idx = calloc(n, sizeof *a->fail_idx);
    a->ok_idx = calloc(n, sizeof *a->ok_idx);
    a->relay_idx = calloc(n, sizeof *a->relay_idx);
    a->delay_idx = calloc(n, sizeof *a->delay_idx);
    a->exp_idx = calloc(n, sizeof *a->exp_idx);
    size_t *remote = calloc(n, sizeof *remote);
    size_t *local_idx = calloc(n, sizeof *local_idx);
    if (!local_idx || !a->dests || !a->names || !a->deferred_dest || !a->fail_idx || !a->ok_idx || !a->relay_idx ||
        !a->delay_idx || !a->exp_idx || !remote) {
        log_msg(LOG_LVL_ERROR, id, "out of memory; trying again later");
        goto retry_later;
    }
    for (size_t k = 0; k < nd; k++)
        str_copy(a->dests[k].s, dests[k], sizeof a->dests[k].s);
    a->fd = spool_msg_open(&q->spool, id);
    if (a->fd < 0) {
        log_msg(LOG_LVL_WARN, id, "cannot open the message: %s", strerror(errno));
        goto retry_later;
    }
    for (size_t i = 0; i < n; i++)
        rcpt_dest(q->cfg, e->rcpts[i].addr, a->names[i].s, sizeof a->names[i].s);

    int received = e->attempts == 0 ? count_received(a->fd) : 0;
    size_t nremote = 0, nlocal = 0;
    a->n0 = n;
    for (size_t i = 0; i < n; i++) {
        struct env_rcpt *r = &e->rcpts[i];
        if (!rcpt_todo(r) || !in_list(a->names[i].s, dests, nd))
            continue;
        struct delivery_status st;
        if (received > LOOP_MAX_RECEIVED) {
            delivery_set(&st, DELIVERY_FAIL, "5.4.6 mail loop: %d Received: header fields (more than %d)",
                         received, LOOP_MAX_RECEIVED);
        } else if (strcmp(a->names[i].s, LOCAL_DEST) != 0) {
            remote[nremote++] = i;
            continue;
        } else {
            local_idx[nlocal++] = i;
            continue;
        }
        record(a, i, &st, false, NULL, NULL);
    }
    /* Local deliveries run in the workers; their answers, like the remote
       ones, come back on the event loop (on_local_*). */
    submit_local(a, local_idx, nlocal);
    submit_remote(a, remote, nremote);
    free(remote);
    free(local_idx);
    if (a->remote_pending == 0) {
        finish_attempt(a);
        return;
    }
    a->next = q->inflight;
    q->inflight = a;
    q->ninflight++;
    return;

retry_later:
    free(remote);
    free(local_idx);
    for (size_t k = 0; k < nd; k++)
        sched_put(q->sched, id, dests[k], now + q->params.retry_min_ms);
    attempt_free(a);
}

static void finish_attempt(struct attempt *a)
{
    struct queue_proc *q = a->q;
    struct envelope *e = &a->e;
    const char *id = a->id;
    int64_t now = mono_ms();
    time_t now_wall = time(NULL);
    size_t nd = a->nd, nf = a->nf, nok = a->nok, ndelay = 0;
    size_t *fail_idx = a->fail_idx, *ok_idx = a->ok_idx, *delay_idx = a->delay_idx;
    int fd = a->fd;

    enum sched_age age = env_pending(e) == 0 ? SCHED_AGE_YOUNG :
        sched_age_check(e->arrival, now_wall, q->cfg->queue_lifetime, q->cfg->delay_warning_time, e->delay_warned);
    if (age == SCHED_AGE_EXPIRED) {
        /* Every recipient still to do fails now, whatever its destination, so
           the sender gets one DSN for all of them. */
        for (size_t i = 0; i < e->nrcpts; i++) {
            struct env_rcpt *r = &e->rcpts[i];
            if (!rcpt_todo(r))
                continue;
            char text[sizeof r->result];
            snprintf(text, sizeof text, "5.4.7 message expired after %llus in the queue; last result: %s",
                     (unsigned long long)(now_wall - e->arrival), r->result[0] ? r->result : "not attempted");
            str_copy(r->result, text, sizeof r->result);
            r->state = RCPT_FAILED;
            if (!r->last_attempt)
                r->last_attempt = now_wall;
            log_msg(LOG_LVL_INFO, id, "to=<%s> status=expired attempts=%u (%s)", r->addr, r->attempts, r->result);
            if (rcpt_wants_dsn(r, DSN_FAILED))
                fail_idx[nf++] = i;
        }
    } else if (age == SCHED_AGE_WARN) {
        for (size_t i = 0; i < e->nrcpts; i++)
            if (e->rcpts[i].state == RCPT_DEFERRED && rcpt_wants_dsn(&e->rcpts[i], DSN_DELAYED))
                delay_idx[ndelay++] = i;
        e->delay_warned = true;
    }

    /* DSNs before the envelope: each is durable in the spool before the
       original's new state is written (see the top of this file). */
    if (nf && !send_dsn(q, e, fd, DSN_FAILED, fail_idx, nf, now_wall)) {
        /* Not reported yet, so not failed yet: keep them to do. */
        for (size_t k = 0; k < nf; k++) {
            e->rcpts[fail_idx[k]].state = RCPT_DEFERRED;
            e->rcpts[fail_idx[k]].next_attempt = 0;
        }
    }
    if (ndelay && e->sender[0] && !send_dsn(q, e, fd, DSN_DELAYED, delay_idx, ndelay, now_wall))
        e->delay_warned = false;
    if (nok && !send_dsn(q, e, fd, DSN_DELIVERED, ok_idx, nok, now_wall))
        log_msg(LOG_LVL_WARN, id, "success notification lost: it could not be queued");
    if (a->nrelay && !send_dsn(q, e, fd, DSN_RELAYED, a->relay_idx, a->nrelay, now_wall))
        log_msg(LOG_LVL_WARN, id, "relay notification lost: it could not be queued");
    if (a->nexp && !send_dsn(q, e, fd, DSN_EXPANDED, a->exp_idx, a->nexp, now_wall))
        log_msg(LOG_LVL_WARN, id, "expansion notification lost: it could not be queued");
    e->attempts++;

    /* Next attempt per destination attempted; a deferring remote destination
       is down until then for all its messages. */
    for (size_t k = 0; k < nd; k++) {
        const char *dest = a->dests[k].s;
        unsigned attempts = 0;
        bool todo = false;
        for (size_t i = 0; i < e->nrcpts; i++) {
            if (rcpt_todo(&e->rcpts[i]) && !strcmp(a->names[i].s, dest)) {
                todo = true;
                if (e->rcpts[i].attempts > attempts)
                    attempts = e->rcpts[i].attempts;
            }
        }
        if (!todo) {
            sched_remove_job(q->sched, id, dest);
            continue;
        }
        int64_t delay = sched_backoff(&q->params, attempts ? attempts : 1, (uint32_t)random());
        /* Never sleep past the expiry: the bounce is due at queue_lifetime, not
           at the first retry after it. */
        int64_t to_expiry = ((int64_t)e->arrival + (int64_t)q->cfg->queue_lifetime - (int64_t)now_wall) * 1000;
        if (to_expiry >= 0 && to_expiry < delay)
            delay = to_expiry;
        /* Likewise the delay warning is due at delay_warning_time. */
        int64_t to_warn = ((int64_t)e->arrival + (int64_t)q->cfg->delay_warning_time - (int64_t)now_wall) * 1000;
        if (q->cfg->delay_warning_time && !e->delay_warned && to_warn >= 0 && to_warn < delay)
            delay = to_warn;
        for (size_t i = 0; i < e->nrcpts; i++)
            if (rcpt_todo(&e->rcpts[i]) && !strcmp(a->names[i].s, dest))
                e->rcpts[i].next_attempt = now_wall + (time_t)((delay + 999) / 1000);
        sched_put(q->sched, id, dest, now + delay);
        if (a->deferred_dest[k] && strcmp(dest, LOCAL_DEST) != 0)
            sched_dest_down(q->sched, dest, now + delay);
        else if (!a->deferred_dest[k])
            sched_dest_up(q->sched, dest);
    }
    bool expanded = add_expansions(q, e, a->n0, &a->lb, now_wall);
    e->next_attempt = env_earliest_next(e);
    close(a->fd);
    a->fd = -1;
    if (env_pending(e) == 0) {
        sched_remove_msg(q->sched, id);
        if (spool_remove(&q->spool, id) < 0)
            log_msg(LOG_LVL_ERROR, id, "cannot remove from the queue: %s", strerror(errno));
        else
            log_msg(LOG_LVL_INFO, id, "removed");
    } else {
        if (spool_env_write(&q->spool, e) < 0)
            log_msg(LOG_LVL_ERROR, id, "cannot update the envelope: %s", strerror(errno));
        else if (age == SCHED_AGE_EXPIRED || expanded)
            load_message(q, id, false);     /* drops the jobs of destinations now done, indexes new ones */
    }
    attempt_free(a);
}

static int cmp_due(const void *a, const void *b)
{
    const struct sched_due *x = a, *y = b;
    return strcmp(x->id, y->id);
}

static void on_due(evutil_socket_t fd, short what, void *arg)
{
    struct queue_proc *q = arg;
    static struct sched_due due[PASS_MAX];
    size_t n = sched_pop_due(q->sched, mono_ms(), due, PASS_MAX);
    qsort(due, n, sizeof due[0], cmp_due);
    for (size_t i = 0; i < n; ) {
        const char *dests[PASS_MAX];
        size_t k = 0;
        size_t j = i;
        for (; j < n && !strcmp(due[j].id, due[i].id); j++)
            dests[k++] = due[j].dest;
        attempt_message(q, due[i].id, dests, k);
        i = j;
    }
    /* More may be due: the timer fires again at once, after pending events
       (new messages, admin requests) have had their turn. */
    arm(q);
}

/* ---- rescan, parent, control ---- */

static void rescan_visit(const char *id, void *arg)
{
    struct queue_proc *q = arg;
    if (!sched_has_msg(q->sched, id))
        load_message(q, id, false);
}

static void rescan(struct queue_proc *q)
{
    size_t before = sched_msg_count(q->sched);
    if (spool_scan(&q->spool, false, rescan_visit, q) < 0)
        log_error("cannot scan %s/queue: %s", q->spool.dir, strerror(errno));
    if (sched_msg_count(q->sched) != before)
        log_info("queue scan: %zu messages indexed (%zu before)", sched_msg_count(q->sched), before);
    arm(q);
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
        on_home_result(q, data, len);
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
            load_message(q, id, true);
            arm(q);
        }
        return;
    }
    log_warn("unexpected message %u (%zu octets) from the parent", type, len);
}

/* A pulled message was committed to queue/: index it now. */
static void on_pulled(const char *id, void *arg)
{
    struct queue_proc *q = arg;
    load_message(q, id, true);
    arm(q);
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
    int64_t now = mono_ms();
    if (op == QADMIN_FLUSH && !arg[0]) {
        size_t n = sched_flush(q->sched, NULL, now);
        arm(q);
        log_info("queue flushed by the administrator: %zu jobs due now", n);
        snprintf(reply, replylen, "%zu deliver%s due now", n, n == 1 ? "y is" : "ies are");
        return 0;
    }
    if (op != QADMIN_FLUSH && op != QADMIN_RELEASE && attempt_busy(q, arg)) {
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
            load_message(q, bounce_id, true);
        break;
    case QADMIN_HOLD:
        if (!sched_has_msg(q->sched, arg))
            load_message(q, arg, false);
        sched_hold(q->sched, arg, true, now);
        break;
    case QADMIN_RELEASE:
    case QADMIN_FLUSH:
        /* Re-read, then due now: the administrator asked for an attempt, so the
           destinations' down marks are cleared too. */
        load_message(q, arg, true);
        sched_flush(q->sched, arg, now);
        break;
    }
    arm(q);
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

int queue_process_main(const struct ferry_config *cfg, int parent_fd, const struct relay_creds *creds)
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
    q.sched = sched_new(&q.params);
    q.base = event_base_new();
    if (!q.base || !q.sched)
        return 1;
    q.parent = ipc_chan_new(q.base, parent_fd, on_parent_msg, on_parent_close, &q);
    q.due_timer = evtimer_new(q.base, on_due, &q);
    q.rescan_timer = evtimer_new(q.base, on_rescan, &q);
    q.pool = delivery_pool_new(q.base, cfg);
    struct event *sigterm = evsignal_new(q.base, SIGTERM, on_sigterm, &q);
    struct event *sigint = evsignal_new(q.base, SIGINT, on_sigterm, &q);
    if (!q.parent || !q.due_timer || !q.rescan_timer || !sigterm || !sigint || !q.pool)
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
        if (pull_hold_open(&q.hold, cfg, err, sizeof err) < 0)
            log_warn("DMTP: %s; peers that offer MSID get plain SMTP", err);
        else
            q.have_hold = true;
    }
    q.ob = outbound_new(q.base, cfg, q.dns, creds, q.have_hold ? &q.hold.hooks : NULL, err, sizeof err);
    if (creds)
        relay_creds_wipe((struct relay_creds *)creds);     /* outbound keeps its own copy */
    if (!q.ob) {
        log_error("%s", err);
        return 1;
    }

    /* One scan loads what was queued before we started; from then on the index
       is kept current and the rescan only reconciles. */
    rescan(&q);
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
    outbound_free(q.ob);
    pull_client_free(q.pull);
    if (q.held_timer)
        event_free(q.held_timer);
    if (q.have_hold)
        pull_hold_close(&q.hold);
    delivery_pool_free(q.pool);     /* local deliveries still out: likewise */
    while (q.inflight) {
        struct attempt *a = q.inflight;
        q.inflight = a->next;
        attempt_free(a);
    }
    dns_client_free(q.dns);
    control_close(q.control);
    ipc_chan_free(q.parent);
    event_free(q.due_timer);
    event_free(q.rescan_timer);
    event_free(sigterm);
    event_free(sigint);
    sched_free(q.sched);
    spool_close(&q.spool);
    event_base_free(q.base);
    close(q.lock_fd);
    log_info("queue process stopped");
    return 0;
}

/* queue_attempt — one attempt at one message (see queue_proc.c's opening comment):
   routes its recipients to the delivery workers and to outbound, records each
   outcome, then finishes in one step: DSNs, expiry, next attempts, the envelope
   rewrite. Local and home-directory deliveries are in queue_attempt_local.c. */
#include "queue/queue_proc_int.h"
#include "delivery/delivery.h"
#include "delivery/local.h"
#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "queue/bounce.h"
#include "queue/delivery_pool.h"
#include "queue/remote_lines.h"
#include "queue/scheduler.h"
#include "queue/spool.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_RECEIVED 100           /* RFC 5321 6.3: a hop count; 100 is what it suggests */
#define HEADER_SCAN_MAX   (256 * 1024)
/* Messages with remote deliveries in progress at once: each holds its message
   file open and its envelope in memory. Jobs beyond it wait in the index. */
#define INFLIGHT_MAX      400
#define BUSY_RETRY_MS     1000
/* Local jobs waiting for a delivery worker; past it, messages with local
   recipients wait in the index (each waiting attempt holds its file open). */
#define LOCAL_BACKLOG_MAX 256

static void finish_attempt(struct attempt *a);

/* ---- delivery ---- */

/* Expansions (aliases, virtual entries) become new recipients to do; remote
   ones are routed like any other. RFC 3461 §5.2.7: a single expansion carries
   NOTIFY and ORCPT on unchanged (§5.2.7.2, no DSN here); several get ORCPT and
   NOTIFY without SUCCESS, the original's SUCCESS being answered by an
   "expanded" DSN (§5.2.7.3 (c), in qp_record()). If they cannot be added, the
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
void qp_deliver_recipient(struct queue_proc *q, const struct envelope *e, struct env_rcpt *r,
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
static int count_received(struct msg_src msg)
{
    char *p = malloc(HEADER_SCAN_MAX + 1);
    if (!p)
        return 0;
    ssize_t got = msg_pread(msg, p, HEADER_SCAN_MAX, 0);     /* not into the envelope behind it */
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
        qp_load_message(q, new_id, true);
    return true;
}

void qp_attempt_free(struct attempt *a)
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

bool qp_attempt_busy(const struct queue_proc *q, const char *id)
{
    for (const struct attempt *a = q->inflight; a; a = a->next)
        if (!strcmp(a->id, id))
            return true;
    return false;
}

/* One recipient's outcome into the envelope and the DSN lists. */
void qp_record(struct attempt *a, size_t i, const struct delivery_status *st, bool relayed,
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

/* One awaited result (remote, local job or home) is in; the last one finishes
   the attempt. */
void qp_pending_done(struct attempt *a)
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
    qp_arm(q);
}

static void on_remote_done(struct remote_job *j, const struct smtp_client_result *r, void *arg)
{
    struct attempt *a = arg;
    char remote[sizeof r->remote_host + sizeof r->remote_ip + 4];
    if (r->remote_host[0] && r->remote_ip[0])
        snprintf(remote, sizeof remote, "%s[%s]", r->remote_host, r->remote_ip);
    else
        str_copy(remote, r->remote_host, sizeof remote);
    for (size_t k = 0; k < r->nrcpts; k++)
        qp_record(a, r->rcpts[k].index, &r->rcpts[k].st, r->rcpts[k].dsn_relayed, remote, r->tls);
    if (r->nrcpts < j->nrcpts) {
        /* Answered in part only (out of memory building the answer): the rest
           are tried again later. */
        struct delivery_status st;
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 out of memory recording the delivery result");
        for (size_t k = r->nrcpts; k < j->nrcpts; k++)
            qp_record(a, j->rcpts[k], &st, false, "", NULL);
    }
    qp_pending_done(a);
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
            qp_record(a, remote[k], &st, false, NULL, NULL);
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
            struct remote_job *j = &a->jobs[a->njobs++];
            j->env = &a->e;
            j->rcpts = &a->job_rcpts[off];
            j->nrcpts = used - off < SMTP_CLIENT_MAX_RCPTS ? used - off : SMTP_CLIENT_MAX_RCPTS;
            j->msg_fd = a->fd;
            str_copy(j->dest, dest, sizeof j->dest);
            j->done = on_remote_done;
            j->arg = a;
            if (remote_lines_submit(q->ob, j) < 0) {
                struct delivery_status st;
                delivery_set(&st, DELIVERY_DEFER, "4.3.0 out of memory queueing the remote delivery");
                for (size_t x = 0; x < j->nrcpts; x++)
                    qp_record(a, j->rcpts[x], &st, false, NULL, NULL);
                a->njobs--;
                continue;
            }
            a->remote_pending++;
        }
    }
}

void qp_attempt_message(struct queue_proc *q, const char *id, const char *const *dests, size_t nd)
{
    int64_t now = qp_mono_ms();
    bool local = in_list(LOCAL_DEST, dests, nd);
    if (qp_attempt_busy(q, id) || (q->ninflight >= INFLIGHT_MAX && !local) ||
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
    if (qp_read_env(q, id, &a->e) < 0) {
        /* Unreadable for now but not gone: its popped jobs must not stay in
           flight for ever. */
        for (size_t k = 0; k < nd && sched_has_msg(q->sched, id); k++)
            sched_put(q->sched, id, dests[k], now + q->params.retry_min_ms);
        qp_attempt_free(a);
        return;
    }
    if (a->e.hold) {
        sched_hold(q->sched, id, true, now);
        qp_attempt_free(a);
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
        qp_rcpt_dest(q->cfg, e->rcpts[i].addr, a->names[i].s, sizeof a->names[i].s);

    int received = e->attempts == 0 ? count_received((struct msg_src){ a->fd, e->size }) : 0;
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
        qp_record(a, i, &st, false, NULL, NULL);
    }
    /* Local deliveries run in the workers; their answers, like the remote
       ones, come back on the event loop (on_local_*). */
    qp_submit_local(a, local_idx, nlocal);
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
    qp_attempt_free(a);
}

static void finish_attempt(struct attempt *a)
{
    struct queue_proc *q = a->q;
    struct envelope *e = &a->e;
    const char *id = a->id;
    int64_t now = qp_mono_ms();
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
    /* Read from inside ID.msg and the file still longer than the message: no
       ID.env was written since (spool_env_write would have cut it back), so
       the removal is one unlink. Envelopes are written only on this loop
       (queue_admin.c too), so nothing comes between this fstat and the unlink. */
    struct stat st;
    bool env_inside = e->spool_embedded && fstat(a->fd, &st) == 0 && (unsigned long long)st.st_size > e->size;
    close(a->fd);
    a->fd = -1;
    if (env_pending(e) == 0) {
        sched_remove_msg(q->sched, id);
        qp_remove_delivered(q, id, env_inside);     /* fsync'd with this turn's other removals */
    } else {
        if (spool_env_write(&q->spool, e) < 0)
            log_msg(LOG_LVL_ERROR, id, "cannot update the envelope: %s", strerror(errno));
        else if (age == SCHED_AGE_EXPIRED || expanded)
            qp_load_message(q, id, false);     /* drops the jobs of destinations now done, indexes new ones */
    }
    qp_attempt_free(a);
}


/* remote_lines — see remote_lines.h. */
#include "queue/remote_lines.h"
#include "delivery/remote_attempt.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEST_BUCKETS 256

struct ob_dest {
    char name[256];
    struct remote_job *head, *tail;
    size_t waiting;             /* jobs in the line */
    size_t pending;             /* waiting + in sessions */
    unsigned active;            /* sessions */
    int64_t next_start;         /* rate limit: earliest next message start (ms) */
    struct event *kick_timer;
    bool kicking;               /* inside kick(): d must outlive the loop */
    struct remote_lines *o;
    struct ob_dest *next;       /* hash chain */
};

/* One session toward a destination: the job it carries now, and the plan and
   client that carry it (delivery/remote_attempt.h). */
struct ob_session {
    struct remote_lines *o;
    struct ob_dest *d;
    struct remote_job *job;
    struct remote_attempt *attempt;
    struct ob_session *prev, *next;     /* every live session, for remote_lines_free */
};

struct remote_lines {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct remote_ctx *remote;
    bool relay;                 /* relayhost: every destination shares one line */
    unsigned active;
    struct ob_dest *buckets[DEST_BUCKETS];
    struct ob_session *sessions;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned hash_name(const char *s)
{
    unsigned h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h % DEST_BUCKETS;
}

static void kick(struct ob_dest *d);

static void dest_maybe_free(struct ob_dest *d);

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    kick(arg);
    dest_maybe_free(arg);
}

static struct ob_dest *dest_find(const struct remote_lines *o, const char *name)
{
    for (struct ob_dest *d = o->buckets[hash_name(name)]; d; d = d->next)
        if (!strcmp(d->name, name))
            return d;
    return NULL;
}

static struct ob_dest *dest_get(struct remote_lines *o, const char *name)
{
    struct ob_dest *d = dest_find(o, name);
    if (d)
        return d;
    d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    str_copy(d->name, name, sizeof d->name);
    d->o = o;
    d->kick_timer = evtimer_new(o->base, on_kick, d);
    if (!d->kick_timer) {
        free(d);
        return NULL;
    }
    unsigned h = hash_name(name);
    d->next = o->buckets[h];
    o->buckets[h] = d;
    return d;
}

/* A destination with nothing left is forgotten (its rate state with it: an
   idle destination owes no spacing). */
static void dest_maybe_free(struct ob_dest *d)
{
    if (d->kicking || d->pending || d->active)
        return;
    int64_t wait = d->next_start - now_ms();
    if (wait > 0) {
        /* Its rate spacing still runs: look again when it is over (on_kick). */
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
        evtimer_add(d->kick_timer, &tv);
        return;
    }
    struct remote_lines *o = d->o;
    struct ob_dest **pp = &o->buckets[hash_name(d->name)];
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp)
        *pp = d->next;
    event_free(d->kick_timer);
    free(d);
}

static struct remote_job *dest_pop(struct ob_dest *d)
{
    struct remote_job *j = d->head;
    if (j) {
        d->head = j->next;
        if (!d->head)
            d->tail = NULL;
        j->next = NULL;
        d->waiting--;
    }
    return j;
}

static void dest_push_front(struct ob_dest *d, struct remote_job *j)
{
    j->next = d->head;
    d->head = j;
    if (!d->tail)
        d->tail = j;
    d->waiting++;
}

/* Milliseconds to wait before the next message may start toward d, and books
   that start. */
static unsigned rate_book(struct ob_dest *d)
{
    unsigned long long rate = d->o->cfg->smtp_dest_rate;
    if (!rate)
        return 0;
    int64_t now = now_ms(), gap = (int64_t)(1000 / rate);
    int64_t start = d->next_start > now ? d->next_start : now;
    d->next_start = start + (gap > 0 ? gap : 1);
    return (unsigned)(start - now);
}

/* ---- answering jobs ---- */

static void job_done(struct remote_lines *o, struct ob_dest *d, struct remote_job *j, const struct smtp_client_result *r)
{
    d->pending--;
    j->done(j, r, j->arg);
}

/* A result made here (no session), the same status for every recipient. */
static void job_answer(struct remote_lines *o, struct ob_dest *d, struct remote_job *j, const struct delivery_status *st)
{
    struct remote_uniform u;
    remote_uniform_init(&u, j->rcpts, j->nrcpts, st, NULL, NULL);
    job_done(o, d, j, &u.r);
    remote_uniform_free(&u);
}

/* Every job still in d's line gets st: the destination is unreachable now. */
static void dest_answer_all(struct ob_dest *d, const struct delivery_status *st)
{
    struct remote_job *j;
    while ((j = dest_pop(d)))
        job_answer(d->o, d, j, st);
}

/* ---- sessions ---- */

/* Unlinks s and frees it (its attempt, when there is one, is the caller's to
   end first). */
static void session_free(struct ob_session *s)
{
    struct remote_lines *o = s->o;
    if (s->prev)
        s->prev->next = s->next;
    else
        o->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

static void session_end(struct ob_session *s)
{
    struct remote_lines *o = s->o;
    struct ob_dest *d = s->d;
    session_free(s);
    d->active--;
    o->active--;
    kick(d);
    /* A slot in the total limit may be free now for another destination. */
    if (o->active < o->cfg->smtp_total_concurrency) {
        for (size_t b = 0; b < DEST_BUCKETS; b++)
            for (struct ob_dest *x = o->buckets[b]; x; x = x->next)
                if (x != d && x->head && !evtimer_pending(x->kick_timer, NULL)) {
                    struct timeval zero = {0, 0};
                    evtimer_add(x->kick_timer, &zero);
                }
    }
    dest_maybe_free(d);     /* last: d is not looked at after this */
}

/* A transaction is over (remote_attempt.h): answer its job, then give the
   session the destination's next job, or let it end. */
static void on_attempt_done(struct remote_attempt *ra, const struct smtp_client_result *r, bool dest_down, void *arg)
{
    struct ob_session *s = arg;
    struct remote_lines *o = s->o;
    struct ob_dest *d = s->d;
    struct remote_job *j = s->job;
    s->job = NULL;
    bool requeued = false;
    if (r->not_attempted && !j->requeued) {
        /* The cached connection was gone (or could not take this message):
           once more, on a fresh session, which tries every MX. */
        j->requeued = requeued = true;
        dest_push_front(d, j);
        log_msg(LOG_LVL_INFO, j->env->id, "not sent on the reused connection to %s (%s); retrying on a new one",
                r->remote_host, r->nrcpts ? r->rcpts[0].st.text : "");
    } else {
        struct delivery_status down_st = r->nrcpts ? r->rcpts[0].st : (struct delivery_status){0};
        job_done(o, d, j, r);
        if (dest_down)
            dest_answer_all(d, &down_st);
    }
    if (d->head && !requeued && remote_attempt_can_take(ra, d->head->env)) {
        struct remote_job *n = dest_pop(d);
        struct smtp_txn_params t = {n->env, n->rcpts, n->nrcpts, n->msg_fd, rate_book(d)};
        if (remote_attempt_next(ra, &t) == 0) {
            s->job = n;
            return;
        }
        dest_push_front(d, n);
    }
    s->attempt = NULL;      /* it ends itself after this callback */
    session_end(s);
}

static void session_start(struct ob_dest *d, struct remote_job *j)
{
    struct remote_lines *o = d->o;
    struct ob_session *s = calloc(1, sizeof *s);
    if (!s) {
        struct delivery_status st;
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 out of memory starting a delivery");
        job_answer(o, d, j, &st);
        return;
    }
    s->o = o;
    s->d = d;
    s->job = j;
    s->next = o->sessions;
    if (o->sessions)
        o->sessions->prev = s;
    o->sessions = s;
    d->active++;
    o->active++;
    struct smtp_txn_params t = {j->env, j->rcpts, j->nrcpts, j->msg_fd, 0};
    struct delivery_status st;
    s->attempt = remote_attempt_start(o->remote, d->name, &t, on_attempt_done, s, &st);
    if (!s->attempt) {
        s->job = NULL;
        job_answer(o, d, j, &st);
        session_end(s);
    }
}

static void kick(struct ob_dest *d)
{
    struct remote_lines *o = d->o;
    if (d->kicking)
        return;
    d->kicking = true;
    while (d->head && d->active < o->cfg->smtp_dest_concurrency && o->active < o->cfg->smtp_total_concurrency) {
        if (o->cfg->smtp_dest_rate) {
            int64_t now = now_ms();
            if (d->next_start > now) {
                int64_t wait = d->next_start - now;
                struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
                evtimer_add(d->kick_timer, &tv);
                break;
            }
            rate_book(d);
        }
        session_start(d, dest_pop(d));
    }
    d->kicking = false;
}

/* ---- the module ---- */

struct remote_lines *remote_lines_new(struct event_base *base, const struct ferry_config *cfg, struct dns_client *dns,
                              const struct relayhost_creds *creds, const struct smtp_dmtp_hooks *dmtp, char *err,
                              size_t errsz)
{
    struct remote_lines *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    o->base = base;
    o->cfg = cfg;
    o->relay = cfg->relayhost[0] != '\0';
    o->remote = remote_ctx_new(base, cfg, dns, creds, dmtp, err, errsz);
    if (!o->remote) {
        free(o);
        return NULL;
    }
    return o;
}

int remote_lines_submit(struct remote_lines *o, struct remote_job *j)
{
    /* Through a relay host every domain shares one line: the limits and the
       dead-host answer are the relay's (it is one server, whatever the domain). */
    struct ob_dest *d = dest_get(o, o->relay ? "[relayhost]" : j->dest);
    if (!d)
        return -1;
    j->next = NULL;
    j->requeued = false;
    if (d->tail)
        d->tail->next = j;
    else
        d->head = j;
    d->tail = j;
    d->waiting++;
    d->pending++;
    /* Sessions start from the loop, so the caller finishes its pass first. */
    if (!evtimer_pending(d->kick_timer, NULL)) {
        struct timeval zero = {0, 0};
        evtimer_add(d->kick_timer, &zero);
    }
    return 0;
}

void remote_lines_free(struct remote_lines *o)
{
    if (!o)
        return;
    while (o->sessions) {
        remote_attempt_cancel(o->sessions->attempt);
        session_free(o->sessions);
    }
    remote_ctx_free(o->remote);     /* and the clients still closing after their last message */
    for (size_t b = 0; b < DEST_BUCKETS; b++) {
        struct ob_dest *d = o->buckets[b];
        while (d) {
            struct ob_dest *n = d->next;
            event_free(d->kick_timer);
            free(d);
            d = n;
        }
    }
    free(o);
}

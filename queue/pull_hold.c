/* pull_hold — see pull_hold.h. */
#include "queue/pull_hold.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/msg_header.h"
#include "lib/netaddr.h"
#include "pull/dmtp_cmd.h"
#include "lib/qid.h"
#include "queue/bounce.h"
#include "queue/disk_child.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUBJECT_SCAN_MAX (64 * 1024)

void pull_hold_subject(struct msg_src msg, char *out, size_t outsz)
{
    out[0] = '\0';
    struct msg_header h;
    msg_header_init(&h, NULL);
    if (msg_header_watch(&h, "Subject", 1) < 0) {
        msg_header_free(&h);
        return;
    }
    char buf[4096];
    off_t off = 0;
    enum msg_header_result r = MSG_HEADER_MORE;
    while (r == MSG_HEADER_MORE && off < SUBJECT_SCAN_MAX) {
        ssize_t n = msg_pread(msg, buf, sizeof buf, (unsigned long long)off);
        if (n <= 0) {
            msg_header_finish(&h);
            break;
        }
        r = msg_header_feed(&h, buf, (size_t)n, NULL);
        off += n;
    }
    const struct msg_header_value *v = msg_header_value(&h, "Subject", 0);
    if (v && v->data)
        str_copyn(out, v->data, v->len, outsz);
    msg_header_free(&h);
}

/* One hold being written: the envelope and the MSID line are made on the loop
   (an HMAC, a Subject: read from the start of the queued message), the copy and
   its fsyncs by a forked disk_child (queue/disk_child.h), as the pulled-message
   store is (pull_client.c). The child opens held/ afresh for its own flock.
   Crash ordering is held.h's: a kill -9 of the queue process while the child
   works leaves the queued message untouched (its recipients are marked only
   after the MSID's 2xx), so the next attempt holds it again; the child finishes
   on its own, and its copy, offered to nobody, expires. */
struct hold_job {
    struct pull_hold *p;
    struct hold_job *prev, *next;   /* p->jobs */
    struct envelope he;
    int msg_fd;                     /* the queued message, inherited by the child */
    char line[DMTP_LINE_MAX + 1];
    size_t len;
    char from_id[QID_LEN + 1];      /* the queued original, for the log */
    smtp_dmtp_held_fn held;
    void *client;
    struct disk_child *child;
    bool abandoned;                 /* nobody waits for it: withdraw it when written */
};

static void job_free(struct hold_job *j)
{
    struct pull_hold *p = j->p;
    if (j->prev)
        j->prev->next = j->next;
    else if (p->jobs == j)
        p->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    env_free(&j->he);
    free(j);
}

static int create_child(void *arg, char *result, size_t *len)
{
    struct hold_job *j = arg;
    struct held_store h;
    char err[256];
    *len = 0;
    if (held_open(&h, j->p->cfg->spool_dir, err, sizeof err) < 0) {
        *len = (size_t)snprintf(result, DISK_CHILD_RESULT_MAX, "%s", err);
        return 1;
    }
    int r = held_create(&h, &j->he, j->msg_fd);
    if (r < 0)
        *len = (size_t)snprintf(result, DISK_CHILD_RESULT_MAX, "cannot write spool/held/%s: %s", j->he.id,
                                strerror(errno));
    held_close(&h);
    return r < 0 ? 1 : 0;
}

static void created(int code, const char *result, size_t rlen, void *arg)
{
    struct hold_job *j = arg;
    struct pull_hold *p = j->p;
    char err[DISK_CHILD_RESULT_MAX + 64];
    j->child = NULL;
    if (code == 0)
        log_msg(LOG_LVL_INFO, j->he.id, "held from %s for a pull by %s: msid=%s nrcpt=%zu expires=%lld", j->from_id,
                j->he.pull_rmta, j->he.pull_msid, j->he.nrcpts, (long long)j->he.pull_expires);
    if (j->abandoned) {
        if (code == 0) {
            if (held_discard(&p->store, j->he.id) < 0)
                log_msg(LOG_LVL_WARN, j->he.id, "cannot withdraw the unoffered held copy: %s (it expires)",
                        strerror(errno));
            else
                log_msg(LOG_LVL_INFO, j->he.id, "held copy withdrawn: the session ended before the MSID went out");
        }
        job_free(j);
        return;
    }
    if (code != 0)
        snprintf(err, sizeof err, "%.*s", (int)rlen, code < 0 ? "the held-copy writer died" : result);
    smtp_dmtp_held_fn held = j->held;
    void *client = j->client;
    char id[QID_LEN + 1];
    str_copy(id, j->he.id, sizeof id);
    if (code == 0)
        held(client, true, j->line, j->len, id, NULL);
    else
        held(client, false, NULL, 0, NULL, code < 0 ? "the held-copy writer died" : err);
    job_free(j);
}

static void *hold(void *arg, const struct envelope *env, int msg_fd, const size_t *rcpts, size_t n,
                  const struct sockaddr *rmta, bool ascii_only, smtp_dmtp_held_fn held, void *client, char *err,
                  size_t errsz)
{
    struct pull_hold *p = arg;
    struct hold_job *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    j->p = p;
    j->msg_fd = msg_fd;
    j->held = held;
    j->client = client;
    str_copy(j->from_id, env->id, sizeof j->from_id);
    struct envelope *he = &j->he;
    env_init(he);
    qid_new(he->id);
    he->arrival = env->arrival;
    he->size = env->size;
    str_copy(he->sender, env->sender, sizeof he->sender);
    str_copy(he->client_addr, env->client_addr, sizeof he->client_addr);
    str_copy(he->client_helo, env->client_helo, sizeof he->client_helo);
    str_copy(he->protocol, env->protocol, sizeof he->protocol);
    he->body_8bit = env->body_8bit;
    he->smtputf8 = env->smtputf8;
    /* What a notice to the sender needs (pull_notify_unpulled): RET, ENVID and
       each recipient's NOTIFY and ORCPT (RFC 3461), and whether it is a bounce. */
    he->ret = env->ret;
    str_copy(he->envid, env->envid, sizeof he->envid);
    he->kind = env->kind;
    for (size_t i = 0; i < n; i++) {
        const struct env_rcpt *from = &env->rcpts[rcpts[i]];
        if (env_add_rcpt(he, from->addr) < 0) {
            snprintf(err, errsz, "out of memory");
            goto fail;
        }
        struct env_rcpt *to = &he->rcpts[i];
        to->notify = from->notify;
        to->orcpt_type = from->orcpt_type;
        str_copy(to->orcpt, from->orcpt, sizeof to->orcpt);
        snprintf(to->result, sizeof to->result, "held for pull (queued as %s)", env->id);
    }
    time_t now = time(NULL);
    he->pull_expires = now + (time_t)p->cfg->pull_expiry;
    netaddr_ntop(rmta, he->pull_rmta, sizeof he->pull_rmta);
    if (msid_make(&p->key, he->id, rmta, he->pull_expires, he->pull_msid, sizeof he->pull_msid) < 0) {
        snprintf(err, errsz, "cannot make an msid for %s", he->pull_rmta);
        goto fail;
    }
    char subject[1000];
    pull_hold_subject((struct msg_src){ msg_fd, env->size }, subject, sizeof subject);
    int len = dmtp_format_msid(j->line, sizeof j->line, he->pull_msid, subject, ascii_only);
    if (len < 0) {
        snprintf(err, errsz, "cannot format the MSID command");
        goto fail;
    }
    j->len = (size_t)len;
    j->next = p->jobs;
    if (p->jobs)
        p->jobs->prev = j;
    p->jobs = j;
    log_msg(LOG_LVL_DEBUG, he->id, "writing the held copy of %s for a pull by %s", env->id, he->pull_rmta);
    j->child = disk_child_run(p->base, create_child, j, created, j);
    if (!j->child) {
        snprintf(err, errsz, "cannot start writing spool/held/%s: %s", he->id, strerror(errno));
        job_free(j);
        return NULL;
    }
    return j;
fail:
    env_free(he);
    free(j);
    return NULL;
}

static void abandon(void *arg, void *job)
{
    struct hold_job *j = job;
    (void)arg;
    j->abandoned = true;        /* the child goes on; created() withdraws its copy */
}

static void settle(void *arg, const char *handle, bool accepted)
{
    struct pull_hold *p = arg;
    if (accepted) {
        log_msg(LOG_LVL_INFO, handle, "MSID accepted: held until every recipient pulls or the hold expires");
        return;
    }
    /* Refused: nobody will ever pull this copy; the queued original is retried or
       bounced as the reply says. */
    if (held_discard(&p->store, handle) < 0)
        log_msg(LOG_LVL_WARN, handle, "cannot remove the refused held copy: %s", strerror(errno));
    else
        log_msg(LOG_LVL_INFO, handle, "MSID refused: held copy removed");
}

int pull_hold_open(struct pull_hold *p, struct event_base *base, const struct ferry_config *cfg, char *err,
                   size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->cfg = cfg;
    p->base = base;
    if (held_open(&p->store, cfg->spool_dir, err, errlen) < 0)
        return -1;
    if (msid_key_load(cfg->data_dir, &p->key, err, errlen) < 0) {
        held_close(&p->store);
        return -1;
    }
    p->hooks.hold = hold;
    p->hooks.abandon = abandon;
    p->hooks.settle = settle;
    p->hooks.arg = p;
    return 0;
}

void pull_hold_close(struct pull_hold *p)
{
    /* Holds still being written: their children finish on their own; the copies,
       offered to nobody, expire (the queued originals are still to do). */
    while (p->jobs) {
        disk_child_forget(p->jobs->child);
        job_free(p->jobs);
    }
    disk_child_forget(p->sweep);
    p->sweep = NULL;
    held_close(&p->store);
    memset(&p->key, 0, sizeof p->key);
}

/* The sweep reads every held envelope and removes files under held/.lock, which
   the smtp process's GTML marks wait for: a forked disk_child does it, so the
   queue loop neither reads nor waits on that lock. A fork rather than a
   bounded step per loop turn: the sweep's stray cleanup must see the directory
   under one lock hold (held.c), which a step cannot split. The child opens held/
   again: a flock belongs to the open file description, and one shared with this
   process would not keep the two apart. Crash-safe as held_expire is (each
   removal is .env first), so a kill -9 of either process mid-sweep loses
   nothing: the next sweep finishes it. */
struct sweep_arg {
    const struct ferry_config *cfg;
    time_t now;
    size_t max;
    struct spool sp;                /* pull_notify_unpulled: where the notices go */
    char ids[DISK_CHILD_RESULT_MAX + 1];   /* the notices queued, for the result */
    size_t idlen;
};

/* Sweeps queue at most this many notices each, so that every notice's ID fits
   in the child's result and the queue indexes it at once; the rest of the
   expired messages wait for the next sweep (they are refused to GTML already:
   the msid's expiry is checked first). */
#define NOTICES_PER_SWEEP (DISK_CHILD_RESULT_MAX / (QID_LEN + 1))

/* pull_notify_unpulled: the sender learns which recipients never pulled, in a
   failure DSN (RFC 3464) naming each with status 5.4.7 and what happened.
   Not for a message from the null sender (it would go to postmaster as a double
   bounce about mail nobody asked for), nor for recipients whose NOTIFY excludes
   failure. */
static int tell_sender(struct envelope *e, int msg_fd, void *arg)
{
    struct sweep_arg *a = arg;
    if (!e->sender[0])
        return 0;
    size_t *idx = calloc(e->nrcpts ? e->nrcpts : 1, sizeof *idx);
    if (!idx)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < e->nrcpts; i++) {
        struct env_rcpt *r = &e->rcpts[i];
        if (r->state != RCPT_PENDING || !rcpt_wants_dsn(r, DSN_FAILED))
            continue;
        snprintf(r->result, sizeof r->result,
                 "5.4.7 the receiving MTA [%s] was told of this message (DMTP, msid %s) but did not fetch it "
                 "before the hold expired", e->pull_rmta, e->pull_msid);
        r->state = RCPT_FAILED;
        r->last_attempt = a->now;
        idx[n++] = i;
    }
    int rc = 0;
    char id[QID_LEN + 1], err[256];
    if (n && bounce_queue(&a->sp, a->cfg, e, msg_fd, DSN_FAILED, idx, n, a->now, id, err, sizeof err) < 0) {
        log_msg(LOG_LVL_WARN, e->id, "cannot queue the notice of recipients who never pulled: %s", err);
        rc = -1;
    } else if (n && id[0]) {
        log_msg(LOG_LVL_INFO, e->id, "sender <%s> told that %zu recipient%s never pulled: notice %s", e->sender, n,
                n == 1 ? "" : "s", id);
        if (a->idlen + QID_LEN + 1 <= DISK_CHILD_RESULT_MAX)
            a->idlen += (size_t)snprintf(a->ids + a->idlen, sizeof a->ids - a->idlen, "%s ", id);
    }
    free(idx);
    return rc;
}

static int sweep_child(void *arg, char *result, size_t *len)
{
    struct sweep_arg *a = arg;
    struct held_store h;
    char err[256];
    *len = 0;
    if (held_open(&h, a->cfg->spool_dir, err, sizeof err) < 0) {
        *len = (size_t)snprintf(result, DISK_CHILD_RESULT_MAX, "%s", err);
        return 1;
    }
    bool notify = a->cfg->pull_notify_unpulled;
    if (notify && spool_open(&a->sp, a->cfg->spool_dir, err, sizeof err) < 0) {
        held_close(&h);
        *len = (size_t)snprintf(result, DISK_CHILD_RESULT_MAX, "%s (no held message removed)", err);
        return 1;
    }
    size_t max = notify && a->max > NOTICES_PER_SWEEP ? NOTICES_PER_SWEEP : a->max;
    int n = held_expire(&h, a->now, max, notify ? tell_sender : NULL, a);
    held_close(&h);
    if (notify)
        spool_close(&a->sp);
    memcpy(result, a->ids, a->idlen);
    *len = a->idlen;
    return n < 0 ? 1 : 0;
}

static void swept(int code, const char *result, size_t len, void *arg)
{
    struct pull_hold *p = arg;
    p->sweep = NULL;
    if (code != 0) {
        log_warn("held/ expiry sweep failed%s%.*s", len ? ": " : "", (int)len, result);
        return;
    }
    /* The notices the child queued: indexed now, not at the next queue scan. */
    for (size_t i = 0; i + QID_LEN <= len; i += QID_LEN + 1) {
        char id[QID_LEN + 1];
        memcpy(id, result + i, QID_LEN);
        id[QID_LEN] = '\0';
        if (qid_valid(id) && p->queued)
            p->queued(id, p->queued_arg);
    }
}

bool pull_hold_expire_start(struct pull_hold *p, time_t now, size_t max)
{
    if (p->sweep)
        return false;           /* the last one is still going */
    struct sweep_arg a = { .cfg = p->cfg, .now = now, .max = max };
    p->sweep = disk_child_run(p->base, sweep_child, &a, swept, p);
    if (!p->sweep)
        log_warn("cannot start the held/ expiry sweep: %s (next time)", strerror(errno));
    return p->sweep != NULL;
}

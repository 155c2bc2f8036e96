/* pull_hold — see pull_hold.h. */
#include "queue/pull_hold.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/msg_header.h"
#include "lib/netaddr.h"
#include "pull/dmtp_cmd.h"
#include "lib/qid.h"
#include "queue/disk_child.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SUBJECT_SCAN_MAX (64 * 1024)

void pull_hold_subject(int msg_fd, char *out, size_t outsz)
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
        ssize_t n = pread(msg_fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR)
            continue;
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

static int hold(void *arg, const struct envelope *env, int msg_fd, const size_t *rcpts, size_t n,
                const struct sockaddr *rmta, bool ascii_only, char *line, size_t linesz, char *handle,
                size_t handlesz, char *err, size_t errsz)
{
    struct pull_hold *p = arg;
    struct envelope he;
    env_init(&he);
    qid_new(he.id);
    he.arrival = env->arrival;
    he.size = env->size;
    str_copy(he.sender, env->sender, sizeof he.sender);
    str_copy(he.client_addr, env->client_addr, sizeof he.client_addr);
    str_copy(he.client_helo, env->client_helo, sizeof he.client_helo);
    str_copy(he.protocol, env->protocol, sizeof he.protocol);
    he.body_8bit = env->body_8bit;
    he.smtputf8 = env->smtputf8;
    for (size_t i = 0; i < n; i++) {
        if (env_add_rcpt(&he, env->rcpts[rcpts[i]].addr) < 0) {
            snprintf(err, errsz, "out of memory");
            env_free(&he);
            return -1;
        }
        snprintf(he.rcpts[i].result, sizeof he.rcpts[i].result, "held for pull (queued as %s)", env->id);
    }
    time_t now = time(NULL);
    he.pull_expires = now + (time_t)p->cfg->pull_expiry;
    netaddr_ntop(rmta, he.pull_rmta, sizeof he.pull_rmta);
    if (msid_make(&p->key, he.id, rmta, he.pull_expires, he.pull_msid, sizeof he.pull_msid) < 0) {
        snprintf(err, errsz, "cannot make an msid for %s", he.pull_rmta);
        env_free(&he);
        return -1;
    }
    char subject[1000];
    pull_hold_subject(msg_fd, subject, sizeof subject);
    int len = dmtp_format_msid(line, linesz, he.pull_msid, subject, ascii_only);
    if (len < 0) {
        snprintf(err, errsz, "cannot format the MSID command");
        env_free(&he);
        return -1;
    }
    if (held_create(&p->store, &he, msg_fd) < 0) {
        snprintf(err, errsz, "cannot write spool/held/%s: %s", he.id, strerror(errno));
        env_free(&he);
        return -1;
    }
    log_msg(LOG_LVL_INFO, he.id, "held from %s for a pull by %s: msid=%s nrcpt=%zu expires=%lld", env->id,
            he.pull_rmta, he.pull_msid, he.nrcpts, (long long)he.pull_expires);
    str_copy(handle, he.id, handlesz);
    env_free(&he);
    return len;
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
    if (held_remove(&p->store, handle) < 0)
        log_msg(LOG_LVL_WARN, handle, "cannot remove the refused held copy: %s", strerror(errno));
    else
        log_msg(LOG_LVL_INFO, handle, "MSID refused: held copy removed");
}

int pull_hold_open(struct pull_hold *p, const struct ferry_config *cfg, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->cfg = cfg;
    if (held_open(&p->store, cfg->spool_dir, err, errlen) < 0)
        return -1;
    if (msid_key_load(cfg->data_dir, &p->key, err, errlen) < 0) {
        held_close(&p->store);
        return -1;
    }
    p->hooks.hold = hold;
    p->hooks.settle = settle;
    p->hooks.arg = p;
    return 0;
}

void pull_hold_close(struct pull_hold *p)
{
    disk_child_forget(p->sweep);
    p->sweep = NULL;
    held_close(&p->store);
    memset(&p->key, 0, sizeof p->key);
}

int pull_hold_expire(struct pull_hold *p, time_t now, size_t max)
{
    return held_expire(&p->store, now, max, NULL, NULL);
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
};

static int sweep_child(void *arg, char *result, size_t *len)
{
    const struct sweep_arg *a = arg;
    struct held_store h;
    char err[256];
    if (held_open(&h, a->cfg->spool_dir, err, sizeof err) < 0) {
        *len = (size_t)snprintf(result, DISK_CHILD_RESULT_MAX, "%s", err);
        return 1;
    }
    int n = held_expire(&h, a->now, a->max, NULL, NULL);
    held_close(&h);
    *len = 0;
    return n < 0 ? 1 : 0;
}

static void swept(int code, const char *result, size_t len, void *arg)
{
    struct pull_hold *p = arg;
    p->sweep = NULL;
    if (code != 0)
        log_warn("held/ expiry sweep failed%s%.*s", len ? ": " : "", (int)len, result);
}

bool pull_hold_expire_start(struct pull_hold *p, struct event_base *base, time_t now, size_t max)
{
    if (p->sweep)
        return false;           /* the last one is still going */
    struct sweep_arg a = { p->cfg, now, max };
    p->sweep = disk_child_run(base, sweep_child, &a, swept, p);
    if (!p->sweep)
        log_warn("cannot start the held/ expiry sweep: %s (next time)", strerror(errno));
    return p->sweep != NULL;
}

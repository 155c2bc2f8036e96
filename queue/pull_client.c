/* pull_client — see pull_client.h. */
#include "queue/pull_client_int.h"
#include "delivery/tls_client.h"
#include "lib/log.h"
#include "pull/greylist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#define CANDIDATES_MAX  200
#define EXPIRE_MAX      1000
#define EXPIRE_EVERY_S  60
#define SCAN_READ_MAX   1000

/* ---- back-off, per notice, in memory ---- */

struct backoff *pull_backoff_slot(struct pull_client *p, const struct pull_notice *n, bool make)
{
    char key[sizeof p->backoff[0].key];
    snprintf(key, sizeof key, "%s %s", n->user, n->id);
    struct backoff *free_slot = NULL, *oldest = &p->backoff[0];
    for (size_t i = 0; i < BACKOFF_SLOTS; i++) {
        if (!strcmp(p->backoff[i].key, key))
            return &p->backoff[i];
        if (!p->backoff[i].key[0] && !free_slot)
            free_slot = &p->backoff[i];
        if (p->backoff[i].next < oldest->next)
            oldest = &p->backoff[i];
    }
    if (!make)
        return NULL;
    struct backoff *b = free_slot ? free_slot : oldest;
    str_copy(b->key, key, sizeof b->key);
    b->next = 0;
    b->plaintext = false;
    return b;
}

/* The next scan at t at the latest: a back-off shorter than the scan period
   ends on time, not at the next periodic scan. */
void pull_wake_at(struct pull_client *p, time_t t)
{
    time_t now = time(NULL);
    if (p->next_scan && t >= p->next_scan)
        return;
    struct timeval tv = { t > now ? t - now : 0, 0 };
    evtimer_del(p->timer);
    evtimer_add(p->timer, &tv);
    p->next_scan = now + tv.tv_sec;
}

/* ---- the scan ---- */

/* Fairness: the store lists notices by user, then age, so taking the first
   CANDIDATES_MAX would let one user (or one peer, through one user) with many
   notices take every slot, scan after scan. Each user and each peer gets at most
   PER_KEY_MAX candidates; the candidates are then started oldest first. */
#define PER_KEY_MAX 2

struct scan {
    struct pull_client *p;
    struct pull_notice *c;
    size_t n;
    time_t now;
};

static size_t taken(const struct scan *sc, const struct pull_notice *n, bool by_user)
{
    size_t k = 0;
    for (size_t i = 0; i < sc->n; i++)
        k += by_user ? !strcmp(sc->c[i].user, n->user) : !strcmp(sc->c[i].peer_ip, n->peer_ip);
    return k;
}

static int collect(const struct pull_notice *n, void *arg)
{
    struct scan *sc = arg;
    if (n->state != NOTICE_AUTO && n->state != NOTICE_FETCH_REQUESTED)
        return 0;
    struct backoff *b = pull_backoff_slot(sc->p, n, false);
    if (b && b->next > sc->now)
        return 0;
    if (taken(sc, n, true) >= PER_KEY_MAX || taken(sc, n, false) >= PER_KEY_MAX)
        return 0;
    sc->c[sc->n++] = *n;
    return sc->n >= CANDIDATES_MAX;
}

/* Oldest request first: a fetch asked for by the user counts from then. */
static int by_age(const void *a, const void *b)
{
    const struct pull_notice *x = a, *y = b;
    time_t tx = x->requested ? x->requested : x->created, ty = y->requested ? y->requested : y->created;
    return tx < ty ? -1 : tx > ty;
}

static bool peer_busy(const struct pull_client *p, const char *ip)
{
    for (const struct pull_session *s = p->active; s; s = s->next)
        if (!strcmp(s->n.peer_ip, ip))
            return true;
    return false;
}

static bool notice_busy(const struct pull_client *p, const struct pull_notice *n)
{
    for (const struct pull_session *s = p->active; s; s = s->next)
        if (!strcmp(s->n.id, n->id) && !strcmp(s->n.user, n->user))
            return true;
    return false;
}

/* The expiry sweeps of the notice and greylist stores (Berkeley DB writes and
   their log flushes, up to EXPIRE_MAX records each) run in a forked disk_child
   at most every EXPIRE_EVERY_S, one at a time, so the loop does no database
   write for them. A fork, not a worker job: the child needs only data_dir and
   the msid key, and opens its own environment (lib/db.h: a handle never crosses
   a fork). Each record is removed in its own transaction, so a kill -9 of the
   child costs at most a Berkeley DB recovery, and the next sweep goes on. */
struct expiry_arg {
    const struct ferry_config *cfg;
    const struct msid_key *key;
    time_t now;
};

static int expiry_child(void *arg, char *result, size_t *len)
{
    const struct expiry_arg *a = arg;
    struct fdb_env *env;
    char err[256];
    *len = 0;
    if (fdb_env_open(a->cfg->data_dir, &env, err, sizeof err) < 0) {
        *len = (size_t)snprintf(result, DISK_CHILD_RESULT_MAX, "%s", err);
        return 1;
    }
    struct notice_store *ns = notice_open(env, a->key, err, sizeof err);
    size_t dropped = 0;
    if (ns) {
        notice_expire(ns, a->now, EXPIRE_MAX, &dropped);
        notice_close(ns);
        if (dropped)
            log_info("DMTP: %zu pending notices expired", dropped);
    }
    struct greylist_store *g = greylist_open(env, err, sizeof err);
    if (g) {
        struct greylist_params gp = { (time_t)a->cfg->pull_greylist_delay, (time_t)a->cfg->pull_greylist_window,
                                      (time_t)a->cfg->pull_greylist_lifetime };
        size_t gone = 0;
        greylist_expire(g, &gp, a->now, EXPIRE_MAX, &gone);
        greylist_close(g);
    }
    fdb_env_close(env);
    return ns ? 0 : 1;
}

static void expiry_done(int code, const char *result, size_t len, void *arg)
{
    struct pull_client *p = arg;
    p->expiry = NULL;
    if (code != 0)
        log_warn("DMTP notice expiry sweep failed%s%.*s", len ? ": " : "", (int)len, result);
}

static void start_expiry(struct pull_client *p, time_t now)
{
    if (p->expiry || now - p->last_expiry < EXPIRE_EVERY_S)
        return;
    p->last_expiry = now;
    struct expiry_arg a = { p->cfg, &p->key, now };
    p->expiry = disk_child_run(p->base, expiry_child, &a, expiry_done, p);
    if (!p->expiry)
        log_warn("cannot start the DMTP notice expiry sweep: %s (next time)", strerror(errno));
}

static void scan(struct pull_client *p)
{
    time_t now = time(NULL);
    p->last_scan = now;
    start_expiry(p, now);
    struct scan sc = { p, calloc(CANDIDATES_MAX, sizeof(struct pull_notice)), 0, now };
    if (!sc.c)
        return;
    /* A window of at most SCAN_READ_MAX records from where the last scan
       stopped, not the whole store each time: the read per scan is bounded
       like the candidates are, and a store of N notices is gone through in
       N / SCAN_READ_MAX scans, then again from the start. */
    char next[sizeof p->cursor];
    size_t nextlen = 0;
    if (notice_list_from(p->notices, p->cursor, p->cursor_len, SCAN_READ_MAX, collect, &sc, next, sizeof next,
                         &nextlen) < 0)
        nextlen = 0;
    memcpy(p->cursor, next, nextlen);
    p->cursor_len = nextlen;
    qsort(sc.c, sc.n, sizeof *sc.c, by_age);
    double mono = (double)now;
    for (size_t i = 0; i < sc.n && p->nactive < PULL_ACTIVE_MAX; i++) {
        const struct pull_notice *n = &sc.c[i];
        if (notice_busy(p, n) || peer_busy(p, n->peer_ip))
            continue;
        if (ratelimit_exceeded(p->peer_rate, n->peer_ip, mono))
            continue;
        ratelimit_hit(p->peer_rate, n->peer_ip, mono);
        pull_session_start(p, n);
    }
    free(sc.c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pull_client *p = arg;
    /* Armed before the scan: a pull that fails inside it may bring the next one
       forward (wake_at). */
    struct timeval tv = { PULL_SCAN_S, 0 };
    evtimer_add(p->timer, &tv);
    time_t now = time(NULL);
    p->next_scan = now + PULL_SCAN_S;
    scan(p);
    /* And a back-off that ends before then still ends on time, whatever scans
       (nudges) came between its start and now. */
    time_t soon = 0;
    for (size_t i = 0; i < BACKOFF_SLOTS; i++)
        if (p->backoff[i].key[0] && p->backoff[i].next > now && (!soon || p->backoff[i].next < soon))
            soon = p->backoff[i].next;
    if (soon)
        pull_wake_at(p, soon);
}

void pull_client_nudge(struct pull_client *p)
{
    if (!p)
        return;
    /* A peer sending MSIDs in a loop must not buy one whole scan each: nudges
       are folded into at most one scan a second. */
    time_t now = time(NULL);
    pull_wake_at(p, now - p->last_scan < 1 ? now + 1 : now);
}

struct pull_client *pull_client_new(struct event_base *base, const struct ferry_config *cfg, struct spool *sp,
                                    void (*queued)(const char *id, void *arg), void *arg, char *err,
                                    size_t errlen)
{
    struct pull_client *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->base = base;
    p->cfg = cfg;
    p->sp = sp;
    p->queued = queued;
    p->arg = arg;
    if (msid_key_load(cfg->data_dir, &p->key, err, errlen) < 0 || fdb_env_open(cfg->data_dir, &p->env, err, errlen) < 0 ||
        !(p->notices = notice_open(p->env, &p->key, err, errlen)) ||
        !(p->lists = pull_lists_open(p->env, true, err, errlen))) {
        pull_client_free(p);
        return NULL;
    }
    if (err[0])     /* a list that cannot be opened yet: correspondents are not noted until it can */
        log_warn("DMTP pull client: %s; tried again at each use", err);
    char tls_err[256] = "";
    p->tls_ctx = tls_client_ctx_new(cfg->smtp_tls_ca_file[0] ? cfg->smtp_tls_ca_file : NULL, tls_err, sizeof tls_err);
    if (!p->tls_ctx)
        log_warn("DMTP pull client: no STARTTLS on pulls: %s", tls_err);
    p->peer_rate = ratelimit_new(10000, PULL_PEER_RATE, 60);
    p->timer = evtimer_new(base, on_timer, p);
    if (!p->peer_rate || !p->timer) {
        snprintf(err, errlen, "out of memory");
        pull_client_free(p);
        return NULL;
    }
    pull_client_nudge(p);
    return p;
}

void pull_client_free(struct pull_client *p)
{
    if (!p)
        return;
    p->closing = true;
    while (p->active)
        pull_session_end(p->active);
    disk_child_forget(p->expiry);
    if (p->timer)
        event_free(p->timer);
    ratelimit_free(p->peer_rate);
    SSL_CTX_free(p->tls_ctx);
    if (p->lists)
        pull_lists_close(p->lists);
    if (p->notices)
        notice_close(p->notices);
    if (p->env)
        fdb_env_close(p->env);
    memset(&p->key, 0, sizeof p->key);
    free(p);
}

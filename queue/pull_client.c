/* pull_client — see pull_client.h. */
#include "queue/pull_client.h"
#include "delivery/smtp_reply.h"
#include "lib/buf.h"
#include "lib/db.h"
#include "lib/log.h"
#include "lib/mail_date.h"
#include "lib/netaddr.h"
#include "lib/ratelimit.h"
#include "pull/classify.h"
#include "pull/dmtp_cmd.h"
#include "pull/greylist.h"
#include "pull/msid.h"
#include "pull/notice.h"
#include "queue/disk_child.h"

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
#define BACKOFF_SLOTS   1000
#define TIMEOUT_S       120
#define LINE_MAX_OCTETS 65536
#define EXPIRE_MAX      1000
#define EXPIRE_EVERY_S  60
#define SCAN_READ_MAX   1000

enum ps_state { PS_CONNECT, PS_GREETING, PS_EHLO, PS_GTML, PS_BODY, PS_STORE, PS_QUIT };

struct backoff {
    char key[PULL_USER_MAX + NOTICE_ID_LEN + 2];
    time_t next;
};

struct pull_session;

struct pull_client {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct spool *sp;
    void (*queued)(const char *id, void *arg);
    void *arg;
    struct fdb_env *env;
    struct msid_key key;
    struct notice_store *notices;
    struct pull_lists *lists;
    struct ratelimit *peer_rate;
    struct event *timer;
    time_t last_scan;               /* nudges within a second of a scan wait for the next second */
    time_t next_scan;               /* when the timer runs the next scan */
    bool closing;                   /* pull_client_free: no more scans */
    time_t last_expiry;
    char cursor[PULL_USER_MAX + NOTICE_ID_LEN + 3];  /* where the next scan reads from */
    size_t cursor_len;                                 /* 0: the start */
    struct disk_child *expiry;      /* the running notice/greylist expiry sweep */
    struct pull_session *active;
    size_t nactive;
    struct backoff backoff[BACKOFF_SLOTS];
};

struct pull_session {
    struct pull_client *pc;
    struct pull_session *next;
    struct pull_notice n;
    struct bufferevent *bev;
    struct event *timer;
    enum ps_state state;
    struct smtp_reply_parser parser;
    struct smtp_reply reply;
    struct buf body;
    bool body_started;
    struct timespec deadline;       /* monotonic: the whole pull must end by then */
    struct envelope env;            /* of the pulled message, from PS_STORE on */
    char hdr[1200];                 /* its Received: field */
    size_t hdr_len;
    struct disk_child *store;       /* PS_STORE: the child writing it to the spool */
    bool peer_gone;                 /* the SMTA hung up during PS_STORE */
};

/* ---- back-off, per notice, in memory ---- */

static struct backoff *backoff_slot(struct pull_client *p, const struct pull_notice *n, bool make)
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
    return b;
}

/* ---- one pull ---- */

static void wake_at(struct pull_client *p, time_t t);

static void session_end(struct pull_session *s)
{
    struct pull_client *p = s->pc;
    struct pull_session **pp = &p->active;
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = s->next;
        p->nactive--;
    }
    if (s->store)
        disk_child_forget(s->store);
    if (s->bev)
        bufferevent_free(s->bev);
    if (s->timer)
        event_free(s->timer);
    buf_free(&s->body);
    env_free(&s->env);
    free(s);
    /* A slot, and this peer's one-at-a-time place, are free: the notices that
       waited for them (the same peer's next, say) start now, not at the next
       periodic scan, which would allow a peer one pull per PULL_SCAN_S. */
    if (!p->closing)
        pull_client_nudge(p);
}

/* The next scan at t at the latest: a back-off shorter than the scan period
   ends on time, not at the next periodic scan. */
static void wake_at(struct pull_client *p, time_t t)
{
    time_t now = time(NULL);
    if (p->next_scan && t >= p->next_scan)
        return;
    struct timeval tv = { t > now ? t - now : 0, 0 };
    evtimer_del(p->timer);
    evtimer_add(p->timer, &tv);
    p->next_scan = now + tv.tv_sec;
}

__attribute__((format(printf, 2, 3)))
static void pull_failed(struct pull_session *s, const char *fmt, ...)
{
    struct pull_client *p = s->pc;
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    char err[256];
    time_t now = time(NULL);
    notice_update(p->notices, s->n.user, s->n.id, s->n.state, 1, now, err, sizeof err);
    unsigned k = s->n.attempts < 20 ? s->n.attempts : 20;
    unsigned long long d = p->cfg->pull_retry_min << k;
    time_t delay = (time_t)(d > p->cfg->pull_retry_max ? p->cfg->pull_retry_max : d);
    struct backoff *b = backoff_slot(p, &s->n, true);
    b->next = now + delay;
    wake_at(p, b->next);
    log_info("pull %s for <%s> from [%s] failed (attempt %u, next in %llds): %s", s->n.id, s->n.recipient,
             s->n.peer_ip, s->n.attempts + 1, (long long)delay, why);
    session_end(s);
}

static bool send_line(struct pull_session *s, const char *line)
{
    return bufferevent_write(s->bev, line, strlen(line)) == 0;
}

/* Milliseconds until the pull's deadline (negative: past it). */
static long long ms_left(const struct pull_session *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return ((long long)s->deadline.tv_sec - now.tv_sec) * 1000 + (s->deadline.tv_nsec - now.tv_nsec) / 1000000;
}

/* The timer for the next read: TIMEOUT_S of silence, but never past the pull's
   deadline (pull_deadline), so a peer that trickles a line now and then cannot
   keep a pull slot (and the peer's one-at-a-time place) for ever. */
static void arm(struct pull_session *s)
{
    long long left = ms_left(s);
    if (left > (long long)TIMEOUT_S * 1000)
        left = (long long)TIMEOUT_S * 1000;
    if (left < 0)
        left = 0;
    struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
    evtimer_add(s->timer, &tv);
}

/* The whole message is here: store it, then forget the notice, then QUIT.

   The store (spool_enqueue: the message and envelope written and fsync'd, then
   renamed into queue/) is a forked disk_child's, so a multi-megabyte pull never
   holds the queue loop for its fsyncs; the session waits in PS_STORE, reading
   nothing. A fork rather than a delivery-pool job: the body is already in this
   process's memory and the child has it copy-on-write, where a worker would need
   it sent over a channel first. The promise is unchanged: the notice is dropped
   and our QUIT (which tells the SMTA it may let the message go) sent only after
   the child reported the message committed. A kill -9 of the queue process while
   the child works leaves the notice, so the message is pulled again (at least
   once, never lost); the child, not killed with it, finishes or is undone by the
   spool's start-up cleanup of incoming/. */
static int store_child(void *arg, char *result, size_t *len)
{
    struct pull_session *s = arg;
    struct pull_client *p = s->pc;
    struct envelope *e = &s->env;
    struct buf msg;
    buf_init(&msg, (size_t)p->cfg->message_size_limit + sizeof s->hdr);
    int r = buf_append(&msg, s->hdr, s->hdr_len) | buf_append(&msg, s->body.data ? s->body.data : "", s->body.len);
    if (r < 0) {
        *len = (size_t)snprintf(result, DISK_CHILD_RESULT_MAX, "out of memory building the pulled message");
        return 1;
    }
    for (size_t i = 0; i < msg.len && !e->body_8bit; i++)
        e->body_8bit = (unsigned char)msg.data[i] >= 0x80;
    if (spool_enqueue(p->sp, e, msg.data, msg.len) < 0) {
        *len = (size_t)snprintf(result, DISK_CHILD_RESULT_MAX, "cannot queue the pulled message: %s", strerror(errno));
        return 1;
    }
    *len = strlen(e->id);
    memcpy(result, e->id, *len);
    return 0;
}

static void stored(int code, const char *result, size_t rlen, void *arg)
{
    struct pull_session *s = arg;
    struct pull_client *p = s->pc;
    const struct pull_notice *n = &s->n;
    s->store = NULL;
    if (code != 0) {
        if (code < 0)
            pull_failed(s, "the store of the pulled message died");
        else
            pull_failed(s, "%.*s", (int)rlen, result);
        return;
    }
    if (rlen > QID_LEN) {
        pull_failed(s, "the store of the pulled message answered nonsense");
        return;
    }
    memcpy(s->env.id, result, rlen);
    s->env.id[rlen] = '\0';
    log_msg(LOG_LVL_INFO, s->env.id, "pulled from [%s] for <%s>: notice %s msid=%s size=%llu sender=<%s>",
            n->peer_ip, n->recipient, n->id, n->msid, (unsigned long long)(s->hdr_len + s->body.len), n->sender);
    char err[256];
    time_t now = time(NULL);
    if (notice_drop(p->notices, n->user, n->id, err, sizeof err) < 0)
        log_warn("pull %s: cannot drop the notice: %s (it may be pulled again)", n->id, err);
    if (n->sender[0])
        pull_correspondent_note(p->lists, n->user, n->sender, PULL_CORR_PULLED, now);
    struct backoff *b = backoff_slot(p, n, false);
    if (b)
        b->key[0] = '\0';
    if (p->queued)
        p->queued(s->env.id, p->arg);
    buf_free(&s->body);
    if (s->peer_gone) {
        session_end(s);
        return;
    }
    /* Our QUIT tells the SMTA the message arrived whole. */
    s->state = PS_QUIT;
    bufferevent_enable(s->bev, EV_READ);
    if (!send_line(s, "QUIT\r\n"))
        session_end(s);
    else
        arm(s);
}

static void delivered(struct pull_session *s)
{
    struct pull_client *p = s->pc;
    const struct pull_notice *n = &s->n;
    char date[64];
    time_t now = time(NULL);
    mail_date(now, date, sizeof date);
    struct envelope *e = &s->env;
    qid_new(e->id);
    int hl = snprintf(s->hdr, sizeof s->hdr,
                      "Received: from %s ([%s])\r\n\tby %s with DMTP pull (GTML) id %s\r\n"
                      "\tfor <%s> (notice %s, msid %s); %s\r\n",
                      n->peer_name[0] ? n->peer_name : "unknown", n->peer_ip, p->cfg->hostname, e->id,
                      n->recipient, n->id, n->msid, date);
    if (hl < 0 || (size_t)hl >= sizeof s->hdr) {
        pull_failed(s, "cannot build the Received: field");
        return;
    }
    s->hdr_len = (size_t)hl;
    str_copy(e->sender, n->sender, sizeof e->sender);
    str_copy(e->client_addr, n->peer_ip, sizeof e->client_addr);
    str_copy(e->client_helo, n->peer_name, sizeof e->client_helo);
    str_copy(e->protocol, "ESMTP", sizeof e->protocol);
    e->arrival = now;
    if (env_add_rcpt(e, n->recipient) < 0) {
        pull_failed(s, "out of memory");
        return;
    }
    s->state = PS_STORE;
    bufferevent_disable(s->bev, EV_READ);
    evtimer_del(s->timer);
    s->store = disk_child_run(p->base, store_child, s, stored, s);
    if (!s->store)
        pull_failed(s, "cannot start the store of the pulled message: %s", strerror(errno));
}

/* Body lines until the lone dot. 1 done, 0 more to come, -1 failed (ended). */
static int read_body(struct pull_session *s, struct evbuffer *in)
{
    size_t limit = (size_t)s->pc->cfg->message_size_limit;
    for (;;) {
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_CRLF_STRICT);
        if (eol.pos < 0) {
            if (evbuffer_get_length(in) > LINE_MAX_OCTETS) {
                pull_failed(s, "a line of the message is longer than %d octets", LINE_MAX_OCTETS);
                return -1;
            }
            return 0;
        }
        size_t len = (size_t)eol.pos;
        char *line = malloc(len + 2);
        if (!line) {
            pull_failed(s, "out of memory");
            return -1;
        }
        evbuffer_remove(in, line, len + 2);
        if (!s->body_started && len == 4 && !memcmp(line, "DATA", 4)) {
            s->body_started = true;      /* the draft's "send DATA command followed by the message" */
            free(line);
            continue;
        }
        s->body_started = true;
        if (len == 1 && line[0] == '.') {
            free(line);
            return 1;
        }
        const char *p = line[0] == '.' ? line + 1 : line;
        size_t plen = line[0] == '.' ? len - 1 : len;
        if (s->body.len + plen + 2 > limit) {
            free(line);
            pull_failed(s, "the message is larger than message_size_limit (%llu)",
                        (unsigned long long)limit);
            return -1;
        }
        int r = buf_append(&s->body, p, plen) | buf_append(&s->body, "\r\n", 2);
        free(line);
        if (r < 0) {
            pull_failed(s, "out of memory");
            return -1;
        }
    }
}

/* 0: the session goes on; -1: it ended (s is gone). */
static int on_reply(struct pull_session *s, const struct smtp_reply *r)
{
    char flat[SMTP_REPLY_TEXT_MAX < 400 ? SMTP_REPLY_TEXT_MAX : 400];
    smtp_reply_flatten(r, flat, sizeof flat);
    switch (s->state) {
    case PS_GREETING: {
        if (r->code / 100 != 2) {
            pull_failed(s, "greeting: %s", flat);
            return -1;
        }
        char line[300];
        snprintf(line, sizeof line, "EHLO %s\r\n", s->pc->cfg->hostname);
        s->state = PS_EHLO;
        if (!send_line(s, line)) {
            pull_failed(s, "out of memory");
            return -1;
        }
        return 0;
    }
    case PS_EHLO: {
        if (r->code / 100 != 2) {
            pull_failed(s, "EHLO: %s", flat);
            return -1;
        }
        char line[DMTP_LINE_MAX + 1];
        if (dmtp_format_gtml(line, sizeof line, s->n.msid, s->n.recipient) < 0) {
            pull_failed(s, "cannot format GTML");
            return -1;
        }
        s->state = PS_GTML;
        if (!send_line(s, line)) {
            pull_failed(s, "out of memory");
            return -1;
        }
        return 0;
    }
    case PS_GTML:
        if (r->code == 250 || r->code == 354) {
            s->state = PS_BODY;
            return 0;
        }
        pull_failed(s, "GTML refused: %s", flat);
        return -1;
    case PS_QUIT:
        session_end(s);
        return -1;
    default:
        return 0;
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct pull_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    arm(s);
    while (evbuffer_get_length(in) > 0) {
        if (s->state == PS_BODY) {
            int r = read_body(s, in);
            if (r == 1)
                delivered(s);
            return;         /* 0: more later; -1 and 1: s may be gone or in PS_QUIT */
        }
        size_t len = evbuffer_get_length(in);
        if (len > 4096)
            len = 4096;
        const char *data = (const char *)evbuffer_pullup(in, (ssize_t)len);
        size_t used = 0;
        char err[160];
        enum smtp_feed_result fr = smtp_reply_feed(&s->parser, data, len, &used, &s->reply, err, sizeof err);
        evbuffer_drain(in, used);
        if (fr == SMTP_FEED_ERROR) {
            if (s->state == PS_QUIT)
                session_end(s);
            else
                pull_failed(s, "unreadable reply: %s", err);
            return;
        }
        if (fr != SMTP_FEED_REPLY)
            return;         /* a reply in part: more later */
        if (on_reply(s, &s->reply) < 0)
            return;
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct pull_session *s = arg;
    if (s->state == PS_STORE) {
        /* The store goes on: the message was received whole, and is kept. */
        s->peer_gone = true;
        bufferevent_disable(s->bev, EV_READ | EV_WRITE);
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        s->state = PS_GREETING;
        arm(s);
        return;
    }
    if (s->state == PS_QUIT) {
        session_end(s);
        return;
    }
    pull_failed(s, "%s", what & BEV_EVENT_EOF ? "the connection was closed"
                                              : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct pull_session *s = arg;
    if (s->state == PS_QUIT)
        session_end(s);
    else if (ms_left(s) <= 0)
        pull_failed(s, "the pull took longer than pull_deadline (%llus)", (unsigned long long)s->pc->cfg->pull_deadline);
    else
        pull_failed(s, "timeout");
}

static int peer_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof *a6;
        return 0;
    }
    return -1;
}

static void start_pull(struct pull_client *p, const struct pull_notice *n)
{
    struct pull_session *s = calloc(1, sizeof *s);
    if (!s)
        return;
    s->pc = p;
    s->n = *n;
    env_init(&s->env);
    buf_init(&s->body, (size_t)p->cfg->message_size_limit + 2);
    smtp_reply_parser_init(&s->parser);
    s->next = p->active;
    p->active = s;
    p->nactive++;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (peer_sockaddr(n->peer_ip, (uint16_t)p->cfg->smtp_port, &ss, &sl) < 0) {
        pull_failed(s, "the recorded peer address is not an IP address");
        return;
    }
    if (!p->cfg->pull_private_peers && pull_addr_is_private((const struct sockaddr *)&ss)) {
        pull_failed(s, "will not connect to a private or loopback address (pull_private_peers = no)");
        return;
    }
    s->timer = evtimer_new(p->base, on_timeout, s);
    clock_gettime(CLOCK_MONOTONIC, &s->deadline);
    s->deadline.tv_sec += (time_t)p->cfg->pull_deadline;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        pull_failed(s, "cannot create a socket: %s", strerror(errno));
        return;
    }
    /* From the address our outbound mail uses: the one the SMTA most likely
       handed the msid to when it is also our MX address. */
    const char *src = ss.ss_family == AF_INET ? p->cfg->smtp_source_ipv4 : p->cfg->smtp_source_ipv6;
    struct sockaddr_storage bs;
    socklen_t bl;
    if (src && src[0] && peer_sockaddr(src, 0, &bs, &bl) == 0 && bind(fd, (struct sockaddr *)&bs, bl) < 0) {
        close(fd);
        pull_failed(s, "cannot bind the source address %s: %s", src, strerror(errno));
        return;
    }
    s->bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!s->timer || !s->bev) {
        if (!s->bev)
            close(fd);
        pull_failed(s, "out of memory");
        return;
    }
    bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    s->state = PS_CONNECT;
    arm(s);
    log_info("pull %s for <%s>: connecting to [%s]:%llu (%s)", n->id, n->recipient, n->peer_ip,
             (unsigned long long)p->cfg->smtp_port, notice_state_name(n->state));
    if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&ss, (int)sl) < 0)
        pull_failed(s, "cannot connect: %s", strerror(errno));
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
    struct backoff *b = backoff_slot(sc->p, n, false);
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
        start_pull(p, n);
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
        wake_at(p, soon);
}

void pull_client_nudge(struct pull_client *p)
{
    if (!p)
        return;
    /* A peer sending MSIDs in a loop must not buy one whole scan each: nudges
       are folded into at most one scan a second. */
    time_t now = time(NULL);
    wake_at(p, now - p->last_scan < 1 ? now + 1 : now);
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
        session_end(p->active);
    disk_child_forget(p->expiry);
    if (p->timer)
        event_free(p->timer);
    ratelimit_free(p->peer_rate);
    if (p->lists)
        pull_lists_close(p->lists);
    if (p->notices)
        notice_close(p->notices);
    if (p->env)
        fdb_env_close(p->env);
    memset(&p->key, 0, sizeof p->key);
    free(p);
}

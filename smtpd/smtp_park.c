/* smtp_park — see smtp_park.h. */
#include "smtpd/smtp_park.h"
#include "smtpd/conn_holder.h"
#include "lib/fdpass.h"
#include "lib/log.h"
#include "smtpd/smtp_dmtp.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session_int.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SWEEP_MS 250
#define PARK_FD_RESERVE 64
#define REFILL_MS 50
#define HOLDER_RESTART_SECONDS 10   /* after a holder could not start or died */

/* How a parked session's connection was carried, so that it is rebuilt alike. */
enum park_kind { PK_PLAIN, PK_TLS_SOCKET, PK_TLS_FILTER };
enum park_wake { WAKE_INPUT, WAKE_TIMEOUT, WAKE_LIMITS };

struct smtp_parked {
    uint32_t slot;
    uint64_t token;
    enum park_kind kind;
    SSL *ssl;                   /* ours while parked (TLS kinds) */
    struct event *timer;        /* the command timeout, counted from the last input */
    enum park_wake wake;        /* why it is being asked back */
};

struct smtp_park {
    struct smtp_server *srv;
    unsigned long long above, low, holder_cap;
    int link;                   /* -1: no holder */
    pid_t pid;
    double restart_after;       /* monotonic seconds */
    struct event *link_ev, *write_ev, *sweep;
    struct smtp_session **slots;
    uint32_t *gen;
    size_t nslots;
    uint32_t *free_slots;
    size_t nfree;
    size_t parked;
    struct holder_msg *pending;     /* RETURN and DROP records that met a full link */
    size_t npending, pending_cap;
    /* Descriptors kept for connections coming back: a parked client may speak
       when accept() has taken every other descriptor, and a record whose
       descriptor cannot be installed loses it (MSG_CTRUNC). Each is released
       just before a record is read and taken again after; with none left the
       link is not read until one can be had (the client waits, nothing is
       lost). */
    int reserve_src;                /* /dev/null, duplicated into reserve[] */
    int reserve[PARK_FD_RESERVE];
    size_t nreserve, reserve_want;  /* reserve_want: a sixteenth of the limit, 4 to PARK_FD_RESERVE */
    unsigned long long fd_limit;
    struct event *refill_ev;        /* retries the reserve while the link is not read */
    struct event *fail_ev;          /* ends the holder outside the caller (out of memory) */
    const char *fail_why;
};

static void end_holder(struct smtp_park *p, const char *why);

size_t smtp_park_count(const struct smtp_park *p)
{
    return p ? p->parked : 0;
}

/* ---- slots ------------------------------------------------------------------- */

static bool take_slot(struct smtp_park *p, struct smtp_session *s, uint32_t *slot, uint64_t *token)
{
    if (p->nfree == 0) {
        size_t n = p->nslots ? p->nslots * 2 : 1024;
        if (n > HOLDER_SLOTS_MAX)
            return false;
        struct smtp_session **sl = realloc(p->slots, n * sizeof *sl);
        if (!sl)
            return false;
        p->slots = sl;
        uint32_t *g = realloc(p->gen, n * sizeof *g);
        if (!g)
            return false;
        p->gen = g;
        uint32_t *f = realloc(p->free_slots, n * sizeof *f);
        if (!f)
            return false;
        p->free_slots = f;
        for (size_t i = n; i-- > p->nslots;) {
            p->slots[i] = NULL;
            p->gen[i] = 0;
            p->free_slots[p->nfree++] = (uint32_t)i;
        }
        p->nslots = n;
    }
    *slot = p->free_slots[--p->nfree];
    p->slots[*slot] = s;
    *token = ((uint64_t)++p->gen[*slot] << 32) | *slot;
    return true;
}

static void put_slot(struct smtp_park *p, uint32_t slot)
{
    p->slots[slot] = NULL;
    p->free_slots[p->nfree++] = slot;
}

/* ---- the link ------------------------------------------------------------------ */

/* RETURN and DROP: never lost, never blocking (queued when the link is full). */
static void send_record(struct smtp_park *p, enum holder_op op, uint32_t slot, uint64_t token)
{
    struct holder_msg m = { op, slot, token };
    if (p->link < 0)
        return;
    if (p->npending == 0 && fdpass_send(p->link, &m, sizeof m, -1, MSG_DONTWAIT) == 0)
        return;
    if (p->npending == p->pending_cap) {
        size_t n = p->pending_cap ? p->pending_cap * 2 : 64;
        struct holder_msg *q = realloc(p->pending, n * sizeof *q);
        if (!q) {
            /* Not from here: the caller may be a session on its way out. */
            p->fail_why = "out of memory for its records";
            event_active(p->fail_ev, 0, 0);
            return;
        }
        p->pending = q;
        p->pending_cap = n;
    }
    p->pending[p->npending++] = m;
    event_add(p->write_ev, NULL);
}

static void on_link_writable(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_park *p = arg;
    size_t done = 0;
    while (done < p->npending && fdpass_send(p->link, &p->pending[done], sizeof p->pending[done], -1,
                                             MSG_DONTWAIT) == 0)
        done++;
    if (done < p->npending && errno != EAGAIN && errno != EWOULDBLOCK) {
        end_holder(p, strerror(errno));
        return;
    }
    memmove(p->pending, p->pending + done, (p->npending - done) * sizeof *p->pending);
    p->npending -= done;
    if (p->npending)
        event_add(p->write_ev, NULL);
}

/* The session is no longer parked: free what parking held (not the SSL). */
static void unlink_parked(struct smtp_park *p, struct smtp_session *s)
{
    struct smtp_parked *pk = s->parked;
    put_slot(p, pk->slot);
    event_free(pk->timer);
    free(pk);
    s->parked = NULL;
    p->parked--;
}

/* The holder gave the connection back: rebuild it as it was, and go on. */
static void unpark(struct smtp_park *p, struct smtp_session *s, int fd)
{
    struct smtp_parked *pk = s->parked;
    struct event_base *base = p->srv->base;
    struct bufferevent *bev = NULL, *under = NULL;
    SSL *ssl = pk->ssl;
    enum park_wake wake = pk->wake;
    switch (pk->kind) {
    case PK_PLAIN:
        bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
        break;
    case PK_TLS_SOCKET:
        /* A new socket BIO for the same TLS session; the bufferevent takes our
           reference to the SSL (it frees it with the connection; if it cannot
           be made, it has freed the SSL, not the socket). */
        if (SSL_set_fd(ssl, fd) == 1) {
            bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_OPEN, BEV_OPT_CLOSE_ON_FREE);
            if (!bev)
                ssl = NULL;
        }
        break;
    case PK_TLS_FILTER:
        /* As STARTTLS left it: the TLS filter over a plain bufferevent. */
        under = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (under)
            bev = bufferevent_openssl_filter_new(base, under, ssl, BUFFEREVENT_SSL_OPEN, 0);
        break;
    }
    unlink_parked(p, s);
    if (!bev) {
        log_error("session %s: cannot take its connection back from the holder: out of memory", s->id);
        if (under)
            bufferevent_free(under);
        else if (fd >= 0)
            close(fd);
        if (ssl)
            SSL_free(ssl);
        s->end_reason = "lost-while-parked";
        smtp_server_session_gone(p->srv, s);
        return;
    }
    if (ssl)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    smtp_session_attach(s, bev);
    log_debug("session %s: connection back from the holder (%s)", s->id,
              wake == WAKE_TIMEOUT ? "timeout" : wake == WAKE_LIMITS ? "limits" : "input");
    /* One more active session: idle ones may need parking again. */
    smtp_park_note_active(p->srv);
    if (wake == WAKE_TIMEOUT)
        smtp_session_timed_out(s);
    else if (wake == WAKE_LIMITS && smtp_limits_enforce(s))
        return;
    /* Input, or a hang-up: the bufferevent reads it on this loop's next turn. */
}

/* A parked session whose connection will not come back: end it. */
static void lose(struct smtp_park *p, struct smtp_session *s, const char *why)
{
    SSL *ssl = s->parked->ssl;
    unlink_parked(p, s);
    if (ssl)
        SSL_free(ssl);
    log_info("session %s: connection from [%s] lost while parked: %s", s->id, s->peer_ip, why);
    s->end_reason = "lost-while-parked";
    smtp_server_session_gone(p->srv, s);
}

bool smtp_park_reserve_full(struct smtp_park *p)
{
    if (!p || p->reserve_src < 0)
        return true;
    while (p->nreserve < p->reserve_want) {
        int fd = fcntl(p->reserve_src, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return false;
        p->reserve[p->nreserve++] = fd;
    }
    return true;
}

/* Short of it: connections coming back go first, new ones wait in the backlog
   while descriptors freed by parking refill the reserve. */
static void refill_reserve(struct smtp_park *p)
{
    if (!smtp_park_reserve_full(p))
        smtp_server_pause_accepting(p->srv);
}

static void on_link(evutil_socket_t fd, short what, void *arg);

/* No descriptor to spare for a connection coming back: stop reading the link
   (the holder waits, blocked on it) until one is free again. */
static void link_starved(struct smtp_park *p)
{
    event_del(p->link_ev);
    struct timeval tv = { 0, REFILL_MS * 1000 };
    evtimer_add(p->refill_ev, &tv);
}

static void on_refill(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_park *p = arg;
    refill_reserve(p);
    if (p->link < 0)
        return;
    if (p->nreserve == 0 && p->reserve_src >= 0) {
        link_starved(p);
        return;
    }
    event_add(p->link_ev, NULL);
    on_link(p->link, EV_READ, p);
}

static void on_link(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_park *p = arg;
    for (int i = 0; i < 512 && p->link >= 0; i++) {
        if (p->reserve_src >= 0) {      /* else no reserve: read as if there were room */
            refill_reserve(p);
            if (p->nreserve == 0) {
                link_starved(p);
                return;
            }
            close(p->reserve[--p->nreserve]);   /* room for what this record carries */
        }
        struct holder_msg m;
        int cfd;
        bool lost, cut;
        ssize_t r = fdpass_recv(p->link, &m, sizeof m, &cfd, &lost, &cut, MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0 || r != (ssize_t)sizeof m || cut || m.slot >= p->nslots ||
            (m.op != HOLDER_BACK && m.op != HOLDER_LOST)) {
            if (cfd >= 0)
                close(cfd);
            end_holder(p, r == 0 ? "it exited" : r < 0 ? strerror(errno) : "a malformed record");
            return;
        }
        struct smtp_session *s = p->slots[m.slot];
        if (!s || !s->parked || s->parked->token != m.token) {
            if (cfd >= 0)
                close(cfd);     /* dropped meanwhile: the DROP and this crossed */
            continue;
        }
        if (m.op == HOLDER_BACK && cfd >= 0)
            unpark(p, s, cfd);
        else
            lose(p, s, lost ? "no descriptor free to take it back" : "the holder could not keep it");
    }
}

/* ---- the holder ------------------------------------------------------------- */

static bool holder_up(struct smtp_park *p)
{
    if (p->link >= 0)
        return true;
    if (smtp_server_now(p->srv) < p->restart_after)
        return false;
    char err[256];
    int link;
    pid_t pid = conn_holder_start(&link, err, sizeof err);
    if (pid < 0) {
        log_error("cannot start the connection holder: %s", err);
        p->restart_after = smtp_server_now(p->srv) + HOLDER_RESTART_SECONDS;
        return false;
    }
    p->link_ev = event_new(p->srv->base, link, EV_READ | EV_PERSIST, on_link, p);
    p->write_ev = event_new(p->srv->base, link, EV_WRITE, on_link_writable, p);
    if (!p->link_ev || !p->write_ev || event_add(p->link_ev, NULL) < 0) {
        close(link);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (p->link_ev)
            event_free(p->link_ev);
        if (p->write_ev)
            event_free(p->write_ev);
        p->link_ev = p->write_ev = NULL;
        p->restart_after = smtp_server_now(p->srv) + HOLDER_RESTART_SECONDS;
        return false;
    }
    p->link = link;
    p->pid = pid;
    log_info("connection holder started, pid %ld: idle sessions are parked above %llu connections (holder room "
             "%llu)", (long)pid, p->above, p->holder_cap);
    return true;
}

/* The link is gone or broken: every parked session ends. */
static void end_holder(struct smtp_park *p, const char *why)
{
    if (p->link < 0)
        return;
    event_free(p->link_ev);
    event_free(p->write_ev);
    p->link_ev = p->write_ev = NULL;
    evtimer_del(p->refill_ev);
    event_del(p->fail_ev);      /* whatever asked for this end, it is done */
    close(p->link);
    p->link = -1;
    p->npending = 0;
    /* It exits once the link closes; SIGKILL makes the wait short whatever it
       was doing. */
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    if (p->parked) {
        log_error("connection holder ended (%s): %zu parked sessions lost", why, p->parked);
        p->restart_after = smtp_server_now(p->srv) + HOLDER_RESTART_SECONDS;
    }
    for (size_t i = 0; i < p->nslots && p->parked; i++)
        if (p->slots[i] && p->slots[i]->parked)
            lose(p, p->slots[i], "the connection holder ended");
}

/* ---- parking ------------------------------------------------------------------ */

static bool buffers_empty(struct bufferevent *b)
{
    return !b || (evbuffer_get_length(bufferevent_get_input(b)) == 0 &&
                  evbuffer_get_length(bufferevent_get_output(b)) == 0);
}

static bool parkable(const struct smtp_session *s, double now)
{
    switch (s->state) {
    case SS_INIT: case SS_READY: case SS_MAIL: case SS_RCPT:
        break;
    default:
        return false;
    }
    if (s->parked || !s->bev || now - s->last_read < PARK_IDLE_SECONDS)
        return false;
    if ((s->greet_timer && evtimer_pending(s->greet_timer, NULL)) ||
        (s->auth_timer && evtimer_pending(s->auth_timer, NULL)) || s->auth_q || s->sasl)
        return false;
    if (s->committing || s->have_draft || s->sender_check || s->output_blocked || s->discarding_line ||
        s->gtml || !smtp_dmtp_quiet(s))
        return false;
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    if (ssl && SSL_pending(ssl) > 0)
        return false;
    return buffers_empty(s->bev) && buffers_empty(bufferevent_get_underlying(s->bev));
}

static void on_parked_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_session *s = arg;
    s->parked->wake = WAKE_TIMEOUT;
    send_record(s->srv->park, HOLDER_RETURN, s->parked->slot, s->parked->token);
}

void smtp_park_wake_for_limits(struct smtp_session *s)
{
    if (s->parked->wake == WAKE_INPUT)
        s->parked->wake = WAKE_LIMITS;
    send_record(s->srv->park, HOLDER_RETURN, s->parked->slot, s->parked->token);
}

static bool park(struct smtp_park *p, struct smtp_session *s, double now)
{
    struct smtp_parked *pk = calloc(1, sizeof *pk);
    if (!pk)
        return false;
    pk->timer = evtimer_new(p->srv->base, on_parked_timeout, s);
    if (!pk->timer || !take_slot(p, s, &pk->slot, &pk->token)) {
        if (pk->timer)
            event_free(pk->timer);
        free(pk);
        return false;
    }
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    struct bufferevent *under = bufferevent_get_underlying(s->bev);
    pk->kind = !ssl ? PK_PLAIN : under ? PK_TLS_FILTER : PK_TLS_SOCKET;
    pk->ssl = ssl;
    struct holder_msg m = { HOLDER_PARK, pk->slot, pk->token };
    /* A full link, or no descriptor to send with: the session stays here. */
    if (p->npending || fdpass_send(p->link, &m, sizeof m, bufferevent_getfd(under ? under : s->bev), MSG_DONTWAIT) < 0) {
        put_slot(p, pk->slot);
        event_free(pk->timer);
        free(pk);
        return false;
    }
    /* The holder has its own copy now: ours goes with the bufferevents. The
       TLS session stays with us: an extra reference where the bufferevent
       would free it, and the filter never does. */
    if (pk->kind == PK_TLS_SOCKET)
        SSL_up_ref(ssl);
    bufferevent_free(s->bev);
    if (under)
        bufferevent_free(under);
    s->bev = NULL;
    s->parked = pk;
    p->parked++;
    double left = (double)p->srv->cfg->smtp_timeout - (now - s->last_read);
    struct timeval tv = { left < 1 ? 1 : (time_t)left, 0 };
    evtimer_add(pk->timer, &tv);
    return true;
}

static void sweep(struct smtp_park *p)
{
    struct smtp_server *srv = p->srv;
    size_t active = srv->nsessions - p->parked;
    if (active <= p->above)
        return;
    if (!holder_up(p))
        return;
    double now = smtp_server_now(srv);
    size_t before = p->parked;
    for (struct smtp_session *s = srv->sessions; s && active > p->low && p->parked < p->holder_cap; s = s->next)
        if (parkable(s, now) && park(p, s, now))
            active--;
    if (p->parked > before)
        log_debug("parked %zu idle sessions (%zu in all, %zu active)", p->parked - before, p->parked, active);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_park *p = arg;
    sweep(p);
    if (p->srv->nsessions - p->parked > p->above) {
        struct timeval tv = { 0, SWEEP_MS * 1000 };
        evtimer_add(p->sweep, &tv);
    }
}

void smtp_park_note_active(struct smtp_server *srv)
{
    struct smtp_park *p = srv->park;
    if (!p || srv->nsessions - p->parked <= p->above || evtimer_pending(p->sweep, NULL))
        return;
    struct timeval tv = { 0, SWEEP_MS * 1000 };
    evtimer_add(p->sweep, &tv);
}

void smtp_park_session_gone(struct smtp_session *s)
{
    struct smtp_park *p = s->srv->park;
    if (!s->parked)
        return;
    uint32_t slot = s->parked->slot;
    uint64_t token = s->parked->token;
    SSL *ssl = s->parked->ssl;
    unlink_parked(p, s);
    if (ssl)
        SSL_free(ssl);
    send_record(p, HOLDER_DROP, slot, token);
}

static void on_fail(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_park *p = arg;
    end_holder(p, p->fail_why ? p->fail_why : "failed");
}

struct smtp_park *smtp_park_new(struct smtp_server *srv, unsigned long long fd_limit)
{
    struct smtp_park *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->srv = srv;
    p->link = -1;
    if (fd_limit > (1ull << 22))
        fd_limit = 1ull << 22;
    p->fd_limit = fd_limit;
    p->reserve_want = fd_limit / 16 < 4 ? 4 : fd_limit / 16 > PARK_FD_RESERVE ? PARK_FD_RESERVE : fd_limit / 16;
    /* Any descriptor will do as the reserve's source; an eventfd needs no file. */
    p->reserve_src = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (p->reserve_src < 0)
        p->reserve_src = eventfd(0, EFD_CLOEXEC);
    if (p->reserve_src < 0)
        log_warn("no descriptor reserve for parked connections: %s", strerror(errno));
    p->refill_ev = evtimer_new(srv->base, on_refill, p);
    p->fail_ev = event_new(srv->base, -1, 0, on_fail, p);
    if (!p->refill_ev || !p->fail_ev) {
        if (p->refill_ev)
            event_free(p->refill_ev);
        if (p->fail_ev)
            event_free(p->fail_ev);
        free(p);
        return NULL;
    }
    p->above = srv->cfg->smtp_park_above ? srv->cfg->smtp_park_above : fd_limit / 2;
    p->low = p->above * 3 / 4;
    /* The holder has the same limit; a few for its own link, epoll and stdio. */
    p->holder_cap = fd_limit > 16 ? fd_limit - 16 : 0;
    p->sweep = evtimer_new(srv->base, on_sweep, p);
    if (!p->sweep) {
        event_free(p->refill_ev);
        event_free(p->fail_ev);
        free(p);
        return NULL;
    }
    return p;
}

void smtp_park_start(struct smtp_park *p)
{
    /* At start, while the smtp process is small: a child shares its parent's
       pages until either writes them, and one forked from a process holding
       thousands of sessions would soon own a copy of each page they touch. */
    if (!p)
        return;
    refill_reserve(p);
    /* What start-up left open (descriptors are dense now: the lowest free one
       counts them) and the reserve are not for sessions; parking must begin
       well before the rest is used up, whatever smtp_park_above says. */
    int probe = fcntl(p->reserve_src >= 0 ? p->reserve_src : 0, F_DUPFD_CLOEXEC, 0);
    unsigned long long used = probe < 0 ? 64 : (unsigned long long)probe + 16;
    if (probe >= 0)
        close(probe);
    unsigned long long usable = p->fd_limit > used ? p->fd_limit - used : 1;
    if (p->above > usable * 3 / 4) {
        p->above = usable * 3 / 4 ? usable * 3 / 4 : 1;
        p->low = p->above * 3 / 4;
    }
    holder_up(p);
}

void smtp_park_free(struct smtp_park *p)
{
    if (!p)
        return;
    end_holder(p, "stopping");
    event_free(p->sweep);
    event_free(p->refill_ev);
    event_free(p->fail_ev);
    while (p->nreserve)
        close(p->reserve[--p->nreserve]);
    if (p->reserve_src >= 0)
        close(p->reserve_src);
    free(p->slots);
    free(p->gen);
    free(p->free_slots);
    free(p->pending);
    free(p);
}

/* pull_session — one DMTP pull; see pull_client.h and pull_client_int.h. */
#include "queue/pull_client_int.h"
#include "lib/log.h"
#include "lib/mail_date.h"
#include "lib/qid.h"
#include "pull/dmtp_cmd.h"
#include "queue/pull_tls.h"

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

#define TIMEOUT_S       120
#define LINE_MAX_OCTETS 65536

void pull_session_end(struct pull_session *s)
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
    struct backoff *b = pull_backoff_slot(p, &s->n, true);
    b->next = now + delay;
    pull_wake_at(p, b->next);
    log_info("pull %s for <%s> from [%s] failed (attempt %u, next in %llds): %s", s->n.id, s->n.recipient,
             s->n.peer_ip, s->n.attempts + 1, (long long)delay, why);
    pull_session_end(s);
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
    struct backoff *b = pull_backoff_slot(p, n, false);
    if (b)
        b->key[0] = '\0';
    if (p->queued)
        p->queued(s->env.id, p->arg);
    buf_free(&s->body);
    if (s->peer_gone) {
        pull_session_end(s);
        return;
    }
    /* Our QUIT tells the SMTA the message arrived whole. */
    s->state = PS_QUIT;
    bufferevent_enable(s->bev, EV_READ);
    if (!send_line(s, "QUIT\r\n"))
        pull_session_end(s);
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
                      "Received: from %s ([%s])\r\n\tby %s with DMTP pull (GTML) id %s%s%s%s\r\n"
                      "\tfor <%s> (notice %s, msid %s); %s\r\n",
                      n->peer_name[0] ? n->peer_name : "unknown", n->peer_ip, p->cfg->hostname, e->id,
                      s->tls_trace[0] ? "\r\n\t(using " : "", s->tls_trace, s->tls_trace[0] ? ")" : "",
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

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static int send_gtml(struct pull_session *s)
{
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

static int send_ehlo(struct pull_session *s)
{
    char line[300];
    snprintf(line, sizeof line, "EHLO %s\r\n", s->pc->cfg->hostname);
    s->state = PS_EHLO;
    if (!send_line(s, line)) {
        pull_failed(s, "out of memory");
        return -1;
    }
    return 0;
}

/* 220 to STARTTLS: the connection becomes the TLS filter over it (pull_tls.h). */
static int start_tls(struct pull_session *s)
{
    char err[200];
    const char *sni = s->n.peer_name[0] ? s->n.peer_name : s->n.peer_ip;
    if (pull_tls_start(s->pc->base, &s->bev, s->pc->tls_ctx, sni, err, sizeof err) < 0) {
        pull_failed(s, "STARTTLS: %s", err);
        return -1;
    }
    bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    smtp_reply_parser_init(&s->parser);
    s->state = PS_HANDSHAKE;
    arm(s);
    return -1;      /* the plain connection's input is not to be read any more */
}

/* 0: read on; -1: stop reading this buffer (the session ended, or its
   connection was replaced by TLS). */
static int on_reply(struct pull_session *s, const struct smtp_reply *r)
{
    char flat[SMTP_REPLY_TEXT_MAX < 400 ? SMTP_REPLY_TEXT_MAX : 400];
    smtp_reply_flatten(r, flat, sizeof flat);
    struct smtp_ehlo ehlo;
    switch (s->state) {
    case PS_GREETING:
        if (r->code / 100 != 2) {
            pull_failed(s, "greeting: %s", flat);
            return -1;
        }
        return send_ehlo(s);
    case PS_EHLO:
        if (r->code / 100 != 2) {
            pull_failed(s, "EHLO: %s", flat);
            return -1;
        }
        if (!s->tls_trace[0] && !s->plaintext && s->pc->tls_ctx && smtp_ehlo_parse(r, &ehlo) == 0 &&
            ehlo.starttls) {
            s->state = PS_STARTTLS;
            if (!send_line(s, "STARTTLS\r\n")) {
                pull_failed(s, "out of memory");
                return -1;
            }
            return 0;
        }
        return send_gtml(s);
    case PS_STARTTLS:
        if (r->code == 220)
            return start_tls(s);
        /* refused: the pull goes on in plaintext, as a push at level may would */
        log_info("pull %s for <%s>: [%s] refused STARTTLS (%s); pulling without TLS", s->n.id, s->n.recipient,
                 s->n.peer_ip, flat);
        return send_gtml(s);
    case PS_GTML:
        if (r->code == 250 || r->code == 354) {
            s->state = PS_BODY;
            return 0;
        }
        pull_failed(s, "GTML refused: %s", flat);
        return -1;
    case PS_QUIT:
        pull_session_end(s);
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
                pull_session_end(s);
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
    if (s->state == PS_HANDSHAKE) {
        if (what & BEV_EVENT_CONNECTED) {
            char line[300];
            pull_tls_describe(s->bev, line, sizeof line, s->tls_trace, sizeof s->tls_trace);
            log_info("pull %s for <%s>: STARTTLS with [%s]: %s", s->n.id, s->n.recipient, s->n.peer_ip, line);
            if (send_ehlo(s) == 0)      /* RFC 3207 §4.2: what the holder said before TLS is forgotten */
                arm(s);
            return;
        }
        /* The next try of this notice goes without STARTTLS (pull_tls.h), so a
           holder with broken TLS is not locked out for good. */
        char why[200];
        pull_tls_error(s->bev, why, sizeof why);
        pull_backoff_slot(s->pc, &s->n, true)->plaintext = true;
        pull_failed(s, "TLS handshake failed: %s", why);
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        s->state = PS_GREETING;
        arm(s);
        return;
    }
    if (s->state == PS_QUIT) {
        pull_session_end(s);
        return;
    }
    pull_failed(s, "%s", what & BEV_EVENT_EOF ? "the connection was closed"
                                              : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct pull_session *s = arg;
    if (s->state == PS_HANDSHAKE)
        pull_backoff_slot(s->pc, &s->n, true)->plaintext = true;     /* as a failed handshake */
    if (s->state == PS_QUIT)
        pull_session_end(s);
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

void pull_session_start(struct pull_client *p, const struct pull_notice *n)
{
    struct pull_session *s = calloc(1, sizeof *s);
    if (!s)
        return;
    s->pc = p;
    s->n = *n;
    struct backoff *b = pull_backoff_slot(p, n, false);
    s->plaintext = b && b->plaintext;
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

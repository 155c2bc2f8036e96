/* smtp_client — see smtp_client.h. The session's life: connecting to each target
   in turn, reading replies, timers, results and reuse. Greeting, EHLO, TLS and AUTH
   are in smtp_client_hello.c; MAIL to the end of data in smtp_client_txn.c. */
#include "delivery/smtp_client_int.h"
#include "lib/buf.h"
#include "lib/netaddr.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Octets handed to the reply parser per step (the input buffer is read in these). */
#define READ_STEP   4096
/* Transactions per connection before it is closed anyway: a long-lived session
   pins one server process and hides a changed MX set. */
#define REUSE_MAX   100

void smtp_timeouts_default(struct smtp_timeouts *t)
{
    t->connect = 30 * 1000;
    t->greeting = 5 * 60 * 1000;
    t->helo = 5 * 60 * 1000;
    t->mail = 5 * 60 * 1000;
    t->rcpt = 5 * 60 * 1000;
    t->data_init = 2 * 60 * 1000;
    t->data_block = 3 * 60 * 1000;
    t->data_final = 10 * 60 * 1000;
    t->quit = 60 * 1000;
}

void sc_arm(struct smtp_client *c, unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

void sc_close_conn(struct smtp_client *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    smtp_reply_parser_init(&c->parser);
}

const char *sc_reply_flat(const struct smtp_reply *r, char *buf, size_t bufsz)
{
    smtp_reply_flatten(r, buf, bufsz);
    return buf;
}

bool sc_write_out(struct smtp_client *c, const char *s, size_t n)
{
    return bufferevent_write(c->bev, s, n) == 0;
}

/* The transaction is over; the callback runs from the timer, so no caller up
   the stack still uses c. keep: the session stays usable. */
void sc_txn_end(struct smtp_client *c, bool keep)
{
    sc_hold_abandon(c);
    if (!keep)
        sc_close_conn(c);
    c->res.session_open = keep && c->bev != NULL && c->txn_on_conn < REUSE_MAX;
    c->state = SC_TXN_END;
    evtimer_del(c->timer);
    sc_arm(c, 0);
}

/* The session is over: the timer frees the client (never from inside a callback
   that still uses it). */
static void end_session(struct smtp_client *c)
{
    sc_close_conn(c);
    c->state = SC_FREE;
    sc_arm(c, 0);
}

/* ---- results ---- */

void sc_set_rcpt(struct smtp_client *c, size_t i, enum delivery_result r, const char *reply, const char *fmt,
                     ...)
{
    struct smtp_rcpt_result *rr = &c->res.rcpts[i];
    rr->st.result = r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rr->st.text, sizeof rr->st.text, fmt, ap);
    va_end(ap);
    str_copy(rr->reply, reply ? reply : "", sizeof rr->reply);
    const struct env_rcpt *er = &c->env->rcpts[rr->index];
    rr->dsn_relayed = r == DELIVERY_OK && !c->peer.dsn && (er->notify & ENV_NOTIFY_SUCCESS);
    c->stand[i] = RS_DONE;
}

/* Every open recipient gets the same text. */
void sc_set_open_rcpts(struct smtp_client *c, enum delivery_result r, const char *text)
{
    for (size_t i = 0; i < c->res.nrcpts; i++)
        if (c->stand[i] != RS_DONE)
            sc_set_rcpt(c, i, r, NULL, "%s", text);
}

/* A reply decides recipient i: 2xx OK, 4xx DEFER, 5xx FAIL. */
void sc_rcpt_from_reply(struct smtp_client *c, size_t i, const struct smtp_reply *r, const char *in_reply_to)
{
    char flat[SMTP_CLIENT_REPLY_MAX], code[16];
    sc_reply_flat(r, flat, sizeof flat);
    enum delivery_result res;
    const char *status = smtp_reply_status(r, code, sizeof code);
    switch (r->code / 100) {
    case 2: res = DELIVERY_OK; break;
    case 5: res = DELIVERY_FAIL; break;
    case 4: res = DELIVERY_DEFER; break;
    default: res = DELIVERY_DEFER; status = "4.5.0"; break;   /* 3xx where none belongs */
    }
    sc_set_rcpt(c, i, res, flat, "%s host %s said: %s (in reply to %s)", status, c->label, flat, in_reply_to);
}

/* ---- failures before MAIL ---- */

/* On a fresh connection the next target is tried; on a reused one the message
   was never offered (not_attempted), and the caller may retry it elsewhere. */
__attribute__((format(printf, 3, 4)))
void sc_host_fail(struct smtp_client *c, enum delivery_result r, const char *fmt, ...)
{
    char text[sizeof c->host_temp.text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (c->txn_on_conn > 1) {
        c->res.not_attempted = true;
        sc_set_open_rcpts(c, DELIVERY_DEFER, text);
        sc_txn_end(c, false);
        return;
    }
    struct delivery_status *st = r == DELIVERY_FAIL ? &c->host_perm : &c->host_temp;
    delivery_set(st, r, "%s", text);
    if (r == DELIVERY_FAIL)
        c->any_perm = true;
    else
        c->any_temp = true;
    /* A peer that talks gets a QUIT, sent straight to the socket when nothing else
       waits to go out (bufferevent_free would drop a queued one); best effort.
       Not over TLS: the bytes would break the record layer. */
    if (c->bev && !c->tls_active && c->state >= SC_GREETING &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        (void)!send(bufferevent_getfd(c->bev), "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
    sc_close_conn(c);
    evtimer_del(c->timer);
    if (!c->tls_plain_retry)
        c->target++;
    c->state = SC_IDLE;
    sc_arm(c, 0);
}

/* Every target failed before a transaction began. */
static void give_up(struct smtp_client *c)
{
    const struct delivery_status *st = c->any_temp ? &c->host_temp : &c->host_perm;
    for (size_t i = 0; i < c->res.nrcpts; i++) {
        c->res.rcpts[i].st = *st;
        c->stand[i] = RS_DONE;
    }
    sc_txn_end(c, false);
}

/* Once MAIL is out, a broken session ends the attempt: open recipients defer. */
__attribute__((format(printf, 2, 3)))
void sc_txn_abort(struct smtp_client *c, const char *fmt, ...)
{
    char text[sizeof c->res.rcpts[0].st.text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* A reused connection that died before the server took any part of the
       message (a cached connection the server had already dropped): nothing was
       delivered, so the message may go again at once on a fresh connection. */
    bool untouched = c->txn_on_conn > 1 && (c->state == SC_MAIL || c->state == SC_RCPT) && c->accepted == 0;
    for (size_t i = 0; untouched && i < c->res.nrcpts; i++)
        untouched = c->stand[i] == RS_OPEN;
    c->res.not_attempted = untouched;
    sc_set_open_rcpts(c, DELIVERY_DEFER, text);
    sc_txn_end(c, false);
}

/* Each reply goes to the step that waits for it: the session's set-up
   (smtp_client_hello.c) or the transaction (smtp_client_txn.c). */
static void on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    evtimer_del(c->timer);
    switch (c->state) {
    case SC_GREETING:
    case SC_EHLO:
    case SC_HELO:
    case SC_STARTTLS:
    case SC_AUTH:
    case SC_RSET:
    case SC_WAIT:
        sc_hello_reply(c, r);
        return;
    case SC_MAIL:
    case SC_RCPT:
    case SC_DATA:
    case SC_HOLD:
    case SC_MSID:
    case SC_BODY:
    case SC_DOT:
        sc_txn_reply(c, r);
        return;
    case SC_QUIT:
        end_session(c);
        return;
    default:
        return;
    }
}

/* Before MAIL a broken connection moves on to the next target; after, it ends
   the attempt. */
static bool in_transaction(const struct smtp_client *c)
{
    return c->state >= SC_MAIL && c->state <= SC_DOT;
}

static const char *waiting_for(enum sc_state s)
{
    switch (s) {
    case SC_GREETING: return "the greeting";
    case SC_HANDSHAKE: return "the TLS handshake";
    case SC_EHLO: return "the reply to EHLO";
    case SC_HELO: return "the reply to HELO";
    case SC_STARTTLS: return "the reply to STARTTLS";
    case SC_AUTH: return "the reply to AUTH";
    case SC_RSET: return "the reply to RSET";
    case SC_WAIT: return "the next message";
    case SC_MAIL: return "the reply to MAIL FROM";
    case SC_RCPT: return "the reply to RCPT TO";
    case SC_DATA: return "the reply to DATA";
    case SC_HOLD: return "the held copy of the message to be written";
    case SC_MSID: return "the reply to MSID";
    case SC_BODY: return "the end of the message data";
    case SC_DOT: return "the reply to the end of the message data";
    default: return "a reply";
    }
}

/* Nothing is read while the results wait for the callback or the client is
   being freed. */
static bool reading(const struct smtp_client *c)
{
    return c->state != SC_TXN_END && c->state != SC_FREE && c->state != SC_IDLE;
}

void sc_on_read(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (c->bev == bev && reading(c) && evbuffer_get_length(in) > 0) {
        size_t len = evbuffer_get_length(in);
        if (len > READ_STEP)
            len = READ_STEP;
        const char *data = (const char *)evbuffer_pullup(in, (ssize_t)len);
        if (!data)
            return;
        size_t used = 0;
        char err[160];
        enum smtp_feed_result fr = smtp_reply_feed(&c->parser, data, len, &used, &c->reply, err, sizeof err);
        evbuffer_drain(in, used);
        if (fr == SMTP_FEED_ERROR) {
            if (c->state == SC_QUIT) {
                end_session(c);
            } else if (in_transaction(c)) {
                sc_txn_abort(c, "4.5.0 host %s sent an unreadable reply: %s", c->label, err);
            } else {
                sc_host_fail(c, DELIVERY_DEFER, "4.5.0 host %s sent an unreadable reply: %s", c->label, err);
            }
            return;
        }
        if (fr == SMTP_FEED_REPLY)
            on_reply(c, &c->reply);
    }
}

void sc_on_write(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;
    if (c->bev == bev && c->state == SC_BODY)
        sc_fill_body(c);
}

static void connected(struct smtp_client *c)
{
    if (c->tls_mode == SMTP_TLS_IMPLICIT) {
        sc_tls_begin(c);
        return;
    }
    c->state = SC_GREETING;
    sc_arm(c, c->to.greeting);
}

void sc_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_client *c = arg;
    if (c->bev != bev)
        return;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == SC_HANDSHAKE)
            sc_tls_done(c);
        else if (c->state == SC_CONNECT)
            connected(c);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    const char *why = (what & BEV_EVENT_EOF) ? "the connection was closed" : evutil_socket_error_to_string(err);
    evtimer_del(c->timer);
    if (what & BEV_EVENT_TIMEOUT) {
        /* Only the body's writes have a bufferevent timeout (data_block). */
        sc_txn_abort(c, "4.4.2 timeout sending the message data to %s (no progress for %u ms)", c->label,
                  c->to.data_block);
        return;
    }
    if (c->state == SC_HANDSHAKE) {
        char ssl_err[200];
        sc_ssl_error_text(c, ssl_err, sizeof ssl_err);
        str_copy(c->tls_desc, "handshake failed", sizeof c->tls_desc);
        if (c->tls.handshake_failed)
            c->tls.handshake_failed(c->tls.arg, c->target, bufferevent_openssl_get_ssl(c->bev), false);
        if (c->tls_mode == SMTP_TLS_MAY && c->txn_on_conn == 0) {
            /* Opportunistic TLS that cannot be had: the same host in the clear. */
            c->tls_plain_retry = true;
        }
        sc_host_fail(c, DELIVERY_DEFER, "4.7.5 TLS handshake with %s failed: %s", c->label, ssl_err);
        return;
    }
    if (c->state == SC_CONNECT)
        sc_host_fail(c, DELIVERY_DEFER, "4.4.1 cannot connect to %s: %s", c->label, evutil_socket_error_to_string(err));
    else if (c->state == SC_QUIT) {
        end_session(c);
    } else if (in_transaction(c))
        sc_txn_abort(c, "4.4.2 lost the connection with %s while waiting for %s: %s", c->label,
                  waiting_for(c->state), why);
    else if (reading(c))
        sc_host_fail(c, DELIVERY_DEFER, "4.4.2 lost the connection with %s while waiting for %s: %s", c->label,
                  waiting_for(c->state), why);
    else
        sc_close_conn(c);      /* closed while the results wait: session_open no more */
}

/* Starts a connection to the current target; false (with the failure recorded)
   when it cannot even begin. */
static bool start_connect(struct smtp_client *c)
{
    const struct mx_target *t = &c->targets[c->target];
    char ip[64];
    netaddr_ntop((const struct sockaddr *)&t->sa, ip, sizeof ip);
    snprintf(c->label, sizeof c->label, "%s[%s]", t->host, ip);
    str_copy(c->res.remote_host, t->host, sizeof c->res.remote_host);
    str_copy(c->res.remote_ip, ip, sizeof c->res.remote_ip);
    c->res.targets_tried++;
    memset(&c->peer, 0, sizeof c->peer);
    c->tls_active = false;
    c->tls_verified = false;
    c->authed = false;
    c->txn_on_conn = 0;
    str_copy(c->tls_desc, "none", sizeof c->tls_desc);
    c->tls_mode = c->have_tls_hooks ? c->tls.mode(c->tls.arg, c->target) : SMTP_TLS_OFF;
    if (c->tls_plain_retry) {
        c->tls_plain_retry = false;
        c->tls_mode = SMTP_TLS_OFF;
        str_copy(c->tls_desc, "none (the TLS handshake failed; opportunistic TLS went on in the clear)",
                 sizeof c->tls_desc);
    }

    int fd = socket(t->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->any_temp = true;
        delivery_set(&c->host_temp, DELIVERY_DEFER, "4.4.1 cannot create a socket for %s: %s", c->label,
                     strerror(errno));
        return false;
    }
    if (c->source_len > 0 && c->source.ss_family == t->sa.ss_family &&
        bind(fd, (const struct sockaddr *)&c->source, c->source_len) < 0) {
        char src[64];
        netaddr_ntop((const struct sockaddr *)&c->source, src, sizeof src);
        c->any_temp = true;
        delivery_set(&c->host_temp, DELIVERY_DEFER, "4.4.1 cannot bind the source address %s to reach %s: %s", src,
                     c->label, strerror(errno));
        close(fd);
        return false;
    }
    c->bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        c->any_temp = true;
        delivery_set(&c->host_temp, DELIVERY_DEFER, "4.3.0 out of memory connecting to %s", c->label);
        return false;
    }
    bufferevent_setcb(c->bev, sc_on_read, sc_on_write, sc_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    smtp_reply_parser_init(&c->parser);
    c->state = SC_CONNECT;
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&t->sa, (int)t->salen) < 0) {
        int e = errno;
        sc_close_conn(c);
        c->any_temp = true;
        delivery_set(&c->host_temp, DELIVERY_DEFER, "4.4.1 cannot connect to %s: %s", c->label, strerror(e));
        return false;
    }
    sc_arm(c, c->to.connect);
    return true;
}

int smtp_client_local_addr(const struct smtp_client *c, char *out, size_t outsz)
{
    evutil_socket_t fd = c->bev ? bufferevent_getfd(c->bev) : -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    netaddr_ntop((const struct sockaddr *)&ss, out, outsz);
    return out[0] ? 0 : -1;
}

static struct smtp_client *live_clients;

static void free_client(struct smtp_client *c)
{
    if (c->live_prev)
        c->live_prev->live_next = c->live_next;
    else if (live_clients == c)
        live_clients = c->live_next;
    if (c->live_next)
        c->live_next->live_prev = c->live_prev;
    sc_hold_abandon(c);
    sc_close_conn(c);
    if (c->timer)
        event_free(c->timer);
    free(c->res.rcpts);
    free(c->stand);
    free(c->next_rcpts);
    free(c->next_stand);
    if (c->auth_pass) {
        OPENSSL_cleanse(c->auth_pass, strlen(c->auth_pass));
        free(c->auth_pass);
    }
    free(c->auth_user);
    free(c);
}

/* The transaction's results go to the caller; then the next transaction, or QUIT. */
static void deliver(struct smtp_client *c)
{
    for (size_t i = 0; i < c->res.nrcpts; i++)
        if (c->stand[i] != RS_DONE)
            sc_set_rcpt(c, i, DELIVERY_DEFER, NULL, "4.4.2 the session with %s ended without a result", c->label);
    if (!c->bev)
        c->res.session_open = false;
    str_copy(c->res.tls, c->tls_desc, sizeof c->res.tls);
    c->res.tls_verified = c->tls_verified;
    c->res.txn_on_conn = c->txn_on_conn;
    c->in_callback = true;
    c->next_set = false;
    c->done(c, &c->res, c->arg);
    c->in_callback = false;
    if (c->next_set && c->bev) {
        free(c->res.rcpts);
        free(c->stand);
        c->res.rcpts = c->next_rcpts;
        c->stand = c->next_stand;
        c->next_rcpts = NULL;
        c->next_stand = NULL;
        c->res.nrcpts = c->next.nrcpts;
        c->res.not_attempted = false;
        c->env = c->next.env;
        c->msg_fd = c->next.msg_fd;
        c->done = c->next_done;
        c->arg = c->next_arg;
        c->txn_on_conn++;
        c->state = SC_WAIT;
        sc_arm(c, c->next.delay_ms);
        return;
    }
    if (c->bev && sc_write_out(c, "QUIT\r\n", 6)) {
        c->state = SC_QUIT;
        sc_arm(c, c->to.quit);
        return;
    }
    end_session(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_client *c = arg;
    switch (c->state) {
    case SC_IDLE:
        while (c->target < c->ntargets) {
            if (start_connect(c))
                return;
            c->target++;
        }
        give_up(c);
        return;
    case SC_TXN_END:
        deliver(c);
        return;
    case SC_WAIT:
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
            /* Something arrived unasked between transactions (a 421, a stray
               reply): the session is out of step; a fresh one is safer. */
            sc_host_fail(c, DELIVERY_DEFER, "4.4.2 host %s sent data between transactions", c->label);
            return;
        }
        if (c->need_rset) {
            if (!sc_write_out(c, "RSET\r\n", 6)) {
                sc_host_fail(c, DELIVERY_DEFER, "4.3.0 out of memory talking to %s", c->label);
                return;
            }
            c->state = SC_RSET;
            sc_arm(c, c->to.mail);
        } else {
            sc_start_txn(c);
        }
        return;
    case SC_CONNECT:
        sc_host_fail(c, DELIVERY_DEFER, "4.4.1 connection to %s timed out", c->label);
        return;
    case SC_HOLD:
        sc_txn_abort(c, "4.3.0 the held copy of the message for a pull by %s was not written in time", c->label);
        return;
    case SC_QUIT:
        end_session(c);
        return;
    case SC_HANDSHAKE:
        /* A handshake that stalls is one that failed: the hooks count it (a
           peer, or someone between, that stops answering mid-handshake must
           not go unreported), and opportunistic TLS goes on in the clear as
           after any failed handshake. */
        str_copy(c->tls_desc, "handshake timed out", sizeof c->tls_desc);
        if (c->tls.handshake_failed)
            c->tls.handshake_failed(c->tls.arg, c->target, bufferevent_openssl_get_ssl(c->bev), true);
        if (c->tls_mode == SMTP_TLS_MAY && c->txn_on_conn == 0)
            c->tls_plain_retry = true;
        sc_host_fail(c, DELIVERY_DEFER, "4.7.5 TLS handshake with %s timed out", c->label);
        return;
    case SC_FREE:
        free_client(c);
        return;
    default:
        if (in_transaction(c))
            sc_txn_abort(c, "4.4.2 timeout waiting for %s from %s", waiting_for(c->state), c->label);
        else
            sc_host_fail(c, DELIVERY_DEFER, "4.4.2 timeout waiting for %s from %s", waiting_for(c->state), c->label);
        return;
    }
}

static bool rcpts_valid(const struct envelope *e, const size_t *rcpts, size_t n)
{
    if (!e || n == 0 || n > SMTP_CLIENT_MAX_RCPTS)
        return false;
    for (size_t i = 0; i < n; i++)
        if (rcpts[i] >= e->nrcpts)
            return false;
    return true;
}

static int alloc_txn(const size_t *rcpts, size_t n, struct smtp_rcpt_result **out, enum rcpt_stand **stand)
{
    *out = calloc(n, sizeof **out);
    *stand = calloc(n, sizeof **stand);
    if (!*out || !*stand) {
        free(*out);
        free(*stand);
        *out = NULL;
        *stand = NULL;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        (*out)[i].index = rcpts[i];
    return 0;
}

struct smtp_client *smtp_client_start(struct event_base *base, const struct smtp_client_params *p,
                                      smtp_client_done done, void *arg)
{
    if (!rcpts_valid(p->env, p->rcpts, p->nrcpts) || p->ntargets == 0 || p->ntargets > MX_MAX_ADDRS ||
        p->msg_fd < 0 || !p->helo_name || !done || p->source_len > sizeof(struct sockaddr_storage) ||
        (p->tls && (!p->tls->mode || !p->tls->new_ssl || !p->tls->judge)) || (!p->auth_user != !p->auth_pass)) {
        errno = EINVAL;
        return NULL;
    }
    struct smtp_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->base = base;
    str_copy(c->helo, p->helo_name, sizeof c->helo);
    if (p->source && p->source_len) {
        memcpy(&c->source, p->source, p->source_len);
        c->source_len = p->source_len;
    }
    c->to = p->timeouts;
    c->auth_needs_verified = p->auth_needs_verified;
    if (p->dmtp && p->dmtp->hold && p->dmtp->abandon && p->dmtp->settle) {
        c->dmtp = *p->dmtp;
        c->have_dmtp = true;
    }
    c->live_next = live_clients;
    if (live_clients)
        live_clients->live_prev = c;
    live_clients = c;
    if (p->tls) {
        c->tls = *p->tls;
        c->have_tls_hooks = true;
    }
    c->env = p->env;
    c->msg_fd = p->msg_fd;
    memcpy(c->targets, p->targets, p->ntargets * sizeof p->targets[0]);
    c->ntargets = p->ntargets;
    c->done = done;
    c->arg = arg;
    c->res.nrcpts = p->nrcpts;
    c->timer = evtimer_new(base, on_timer, c);
    if (p->auth_user) {
        c->auth_user = strdup(p->auth_user);
        c->auth_pass = strdup(p->auth_pass);
    }
    if (alloc_txn(p->rcpts, p->nrcpts, &c->res.rcpts, &c->stand) < 0 || !c->timer ||
        (p->auth_user && (!c->auth_user || !c->auth_pass))) {
        free_client(c);
        errno = ENOMEM;
        return NULL;
    }
    smtp_reply_parser_init(&c->parser);
    c->state = SC_IDLE;
    sc_arm(c, 0);   /* the first connection starts from the loop, never in here */
    return c;
}

int smtp_client_next(struct smtp_client *c, const struct smtp_txn_params *t, smtp_client_done done, void *arg)
{
    if (!c->in_callback || !c->res.session_open || c->next_set || !done || t->msg_fd < 0 ||
        !rcpts_valid(t->env, t->rcpts, t->nrcpts)) {
        errno = EINVAL;
        return -1;
    }
    if (alloc_txn(t->rcpts, t->nrcpts, &c->next_rcpts, &c->next_stand) < 0) {
        errno = ENOMEM;
        return -1;
    }
    c->next = *t;
    c->next.rcpts = NULL;           /* copied into next_rcpts */
    c->next_done = done;
    c->next_arg = arg;
    c->next_set = true;
    return 0;
}

void smtp_client_cancel(struct smtp_client *c)
{
    if (c)
        free_client(c);
}

void smtp_client_cancel_all(void)
{
    while (live_clients)
        free_client(live_clients);
}

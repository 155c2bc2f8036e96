/* smtp_client — see smtp_client.h. */
#include "delivery/smtp_client.h"
#include "delivery/smtp_cmds.h"
#include "delivery/smtp_reply.h"
#include "pull/dmtp_cmd.h"
#include "auth/credentials.h"
#include "lib/buf.h"
#include "lib/netaddr.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The body is read and encoded until this much waits in the output buffer, and
   topped up again when it drains below the low mark. */
#define BODY_HIGH   (256 * 1024)
#define BODY_LOW    (64 * 1024)
#define BODY_CHUNK  8192
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

enum sc_state {
    SC_IDLE,        /* between targets: the timer starts the next connection */
    SC_CONNECT,
    SC_HANDSHAKE,   /* TLS handshake (after STARTTLS's 220, or implicit TLS) */
    SC_GREETING,
    SC_EHLO,
    SC_HELO,
    SC_STARTTLS,    /* waiting for the reply to STARTTLS */
    SC_AUTH,        /* waiting for a reply in the AUTH exchange (auth_step) */
    SC_WAIT,        /* an open session waiting to begin the next transaction */
    SC_RSET,        /* waiting for the reply to RSET before the next transaction */
    SC_MAIL,        /* waiting for the reply to MAIL */
    SC_RCPT,        /* waiting for the reply to RCPT number rcpt_i */
    SC_DATA,        /* waiting for the reply to DATA */
    SC_MSID,        /* waiting for the reply to MSID (DMTP, instead of DATA) */
    SC_BODY,        /* sending the message */
    SC_DOT,         /* waiting for the reply to the end of data */
    SC_TXN_END,     /* the timer delivers the transaction's results */
    SC_QUIT,        /* no transaction left: waiting for the reply to QUIT */
    SC_FREE         /* the timer frees the client */
};

/* Where each recipient stands in this transaction. */
enum rcpt_stand { RS_OPEN, RS_ACCEPTED, RS_DONE };

enum auth_step { AUTH_PLAIN_SENT, AUTH_LOGIN_SENT, AUTH_USER_SENT, AUTH_PASS_SENT };

struct smtp_client {
    struct event_base *base;
    char helo[256];
    struct sockaddr_storage source;
    socklen_t source_len;
    struct smtp_timeouts to;
    struct smtp_tls_hooks tls;
    bool have_tls_hooks;
    char *auth_user, *auth_pass;
    bool auth_needs_verified;
    struct smtp_dmtp_hooks dmtp;
    bool have_dmtp;
    struct smtp_client *live_prev, *live_next;   /* every client alive, for cancel_all */
    struct mx_target targets[MX_MAX_ADDRS];
    size_t ntargets;

    /* The transaction in progress. */
    const struct envelope *env;
    int msg_fd;
    smtp_client_done done;
    void *arg;
    enum rcpt_stand *stand;
    struct smtp_client_result res;
    unsigned delay_ms;

    /* The next one, set by smtp_client_next during the callback. */
    bool in_callback;
    bool next_set;
    struct smtp_txn_params next;
    smtp_client_done next_done;
    void *next_arg;
    struct smtp_rcpt_result *next_rcpts;
    enum rcpt_stand *next_stand;

    enum sc_state state;
    size_t target;                 /* the one connected or being tried */
    char label[DNS_NAME_MAX + 72]; /* "host[ip]" of that target, for texts */
    struct bufferevent *bev;
    struct event *timer;
    struct smtp_reply_parser parser;
    struct smtp_reply reply;
    struct smtp_ehlo peer;
    enum smtp_tls_mode tls_mode;   /* of the current target */
    bool tls_plain_retry;          /* MAY: the handshake failed; this target again, in clear */
    bool tls_active;
    bool tls_verified;
    char tls_desc[200];
    bool authed;
    enum auth_step auth_step;
    unsigned txn_on_conn;          /* transactions begun on this connection */
    bool need_rset;                /* the last transaction did not end at a final dot */

    bool mail_failed;
    size_t rcpt_i;
    size_t accepted;
    bool discard_data;             /* a 354 came with nobody to deliver to */
    bool wants_msid;               /* a -00 peer replied 253: MSID, not DATA */
    char hold[64];                 /* the DMTP hold of this transaction (hooks' handle) */
    bool bdat;                     /* this transaction sends the body with BDAT (RFC 3030) */
    struct smtp_body body;
    off_t body_off;
    off_t body_size;               /* BDAT: the octets announced */

    /* The last failure of a target before MAIL, of each kind. */
    struct delivery_status host_temp, host_perm;
    bool any_temp, any_perm;
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void after_hello(struct smtp_client *c);

static void arm(struct smtp_client *c, unsigned ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

static void close_conn(struct smtp_client *c)
{
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    smtp_reply_parser_init(&c->parser);
}

static const char *reply_flat(const struct smtp_reply *r, char *buf, size_t bufsz)
{
    smtp_reply_flatten(r, buf, bufsz);
    return buf;
}

static bool write_out(struct smtp_client *c, const char *s, size_t n)
{
    return bufferevent_write(c->bev, s, n) == 0;
}

/* The transaction is over; the callback runs from the timer, so no caller up
   the stack still uses c. keep: the session stays usable. */
static void txn_end(struct smtp_client *c, bool keep)
{
    if (!keep)
        close_conn(c);
    c->res.session_open = keep && c->bev != NULL && c->txn_on_conn < REUSE_MAX;
    c->state = SC_TXN_END;
    evtimer_del(c->timer);
    arm(c, 0);
}

/* ---- results ---- */

static void set_rcpt(struct smtp_client *c, size_t i, enum delivery_result r, const char *reply, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
static void set_rcpt(struct smtp_client *c, size_t i, enum delivery_result r, const char *reply, const char *fmt,
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
static void set_open_rcpts(struct smtp_client *c, enum delivery_result r, const char *text)
{
    for (size_t i = 0; i < c->res.nrcpts; i++)
        if (c->stand[i] != RS_DONE)
            set_rcpt(c, i, r, NULL, "%s", text);
}

/* A reply decides recipient i: 2xx OK, 4xx DEFER, 5xx FAIL. */
static void rcpt_from_reply(struct smtp_client *c, size_t i, const struct smtp_reply *r, const char *in_reply_to)
{
    char flat[SMTP_CLIENT_REPLY_MAX], code[16];
    reply_flat(r, flat, sizeof flat);
    enum delivery_result res;
    const char *status = smtp_reply_status(r, code, sizeof code);
    switch (r->code / 100) {
    case 2: res = DELIVERY_OK; break;
    case 5: res = DELIVERY_FAIL; break;
    case 4: res = DELIVERY_DEFER; break;
    default: res = DELIVERY_DEFER; status = "4.5.0"; break;   /* 3xx where none belongs */
    }
    set_rcpt(c, i, res, flat, "%s host %s said: %s (in reply to %s)", status, c->label, flat, in_reply_to);
}

/* ---- failures before MAIL ---- */

/* On a fresh connection the next target is tried; on a reused one the message
   was never offered (not_attempted), and the caller may retry it elsewhere. */
__attribute__((format(printf, 3, 4)))
static void host_fail(struct smtp_client *c, enum delivery_result r, const char *fmt, ...)
{
    char text[sizeof c->host_temp.text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (c->txn_on_conn > 1) {
        c->res.not_attempted = true;
        set_open_rcpts(c, DELIVERY_DEFER, text);
        txn_end(c, false);
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
    close_conn(c);
    evtimer_del(c->timer);
    if (!c->tls_plain_retry)
        c->target++;
    c->state = SC_IDLE;
    arm(c, 0);
}

/* Every target failed before a transaction began. */
static void give_up(struct smtp_client *c)
{
    const struct delivery_status *st = c->any_temp ? &c->host_temp : &c->host_perm;
    for (size_t i = 0; i < c->res.nrcpts; i++) {
        c->res.rcpts[i].st = *st;
        c->stand[i] = RS_DONE;
    }
    txn_end(c, false);
}

/* Once MAIL is out, a broken session ends the attempt: open recipients defer. */
__attribute__((format(printf, 2, 3)))
static void txn_abort(struct smtp_client *c, const char *fmt, ...)
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
    set_open_rcpts(c, DELIVERY_DEFER, text);
    txn_end(c, false);
}

/* ---- the body ---- */

/* BDAT: the stored octets as they are, exactly body_size of them. */
static void fill_bdat(struct smtp_client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char in[BODY_CHUNK];
    while (evbuffer_get_length(out) < BODY_HIGH && c->body_off < c->body_size) {
        size_t want = (size_t)(c->body_size - c->body_off) < sizeof in ? (size_t)(c->body_size - c->body_off)
                                                                          : sizeof in;
        ssize_t n = pread(c->msg_fd, in, want, c->body_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* The count is promised: the connection must go (the server drops
               an incomplete chunk). */
            txn_abort(c, "4.3.0 cannot read the queued message: %s", n < 0 ? strerror(errno) : "it shrank");
            return;
        }
        if (evbuffer_add(out, in, (size_t)n) < 0) {
            txn_abort(c, "4.3.0 out of memory sending the message to %s", c->label);
            return;
        }
        c->body_off += n;
    }
    if (c->body_off == c->body_size) {
        c->state = SC_DOT;
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        arm(c, c->to.data_final);
    }
}

static void fill_body(struct smtp_client *c)
{
    if (c->bdat) {
        fill_bdat(c);
        return;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char in[BODY_CHUNK];
    char enc[2 * BODY_CHUNK + 8];
    while (evbuffer_get_length(out) < BODY_HIGH) {
        ssize_t n = pread(c->msg_fd, in, sizeof in, c->body_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* Closing without the final dot makes the server drop what it has. */
            txn_abort(c, "4.3.0 cannot read the queued message: %s", strerror(errno));
            return;
        }
        size_t w = n == 0 ? smtp_body_finish(&c->body, enc) : smtp_body_encode(&c->body, in, (size_t)n, enc);
        if (evbuffer_add(out, enc, w) < 0) {
            txn_abort(c, "4.3.0 out of memory sending the message to %s", c->label);
            return;
        }
        if (n == 0) {
            c->state = SC_DOT;
            bufferevent_set_timeouts(c->bev, NULL, NULL);
            arm(c, c->to.data_final);
            return;
        }
        c->body_off += n;
    }
}

static void start_body(struct smtp_client *c)
{
    c->state = SC_BODY;
    evtimer_del(c->timer);
    struct timeval block = {(time_t)(c->to.data_block / 1000), (suseconds_t)(c->to.data_block % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, NULL, &block);
    bufferevent_setwatermark(c->bev, EV_WRITE, BODY_LOW, 0);
    smtp_body_init(&c->body);
    c->body_off = 0;
    fill_body(c);
}

/* RFC 3030: the whole message as one chunk, "BDAT n LAST", no dot-stuffing and
   no 354 round trip. */
static void start_bdat(struct smtp_client *c)
{
    struct stat sb;
    if (fstat(c->msg_fd, &sb) < 0) {
        txn_abort(c, "4.3.0 cannot read the queued message: %s", strerror(errno));
        return;
    }
    char line[64];
    int n = snprintf(line, sizeof line, "BDAT %lld LAST\r\n", (long long)sb.st_size);
    if (!write_out(c, line, (size_t)n)) {
        txn_abort(c, "4.3.0 out of memory talking to %s", c->label);
        return;
    }
    c->body_size = sb.st_size;
    start_body(c);
}

/* ---- the transaction ---- */

static bool send_rcpt(struct smtp_client *c, size_t i)
{
    char line[SMTP_CMD_MAX];
    int n = smtp_build_rcpt(&c->env->rcpts[c->res.rcpts[i].index], &c->peer, line, sizeof line);
    return n > 0 && write_out(c, line, (size_t)n);
}

/* What keeps this message from this peer, as a failure text; NULL when nothing. */
static bool message_mismatch(struct smtp_client *c, char *text, size_t textsz)
{
    const struct envelope *e = c->env;
    /* RFC 8689 §4.2.2: never in the clear, never to a peer that would not pass
       the requirement on; the next MX may qualify. */
    if (e->requiretls && !c->tls_verified)
        snprintf(text, textsz, "5.7.10 the message requires TLS (REQUIRETLS) and the session with %s is not "
                 "verified TLS", c->label);
    else if (e->requiretls && !c->peer.requiretls)
        snprintf(text, textsz, "5.7.30 the message requires TLS (REQUIRETLS) and host %s does not offer "
                 "REQUIRETLS", c->label);
    else if (c->peer.size && c->peer.size_limit > 0 && e->size > c->peer.size_limit)
        snprintf(text, textsz, "5.3.4 the message (%llu octets) exceeds the limit of host %s (SIZE %llu)",
                 e->size, c->label, c->peer.size_limit);
    else if (e->body_8bit && !c->peer.eightbitmime)
        snprintf(text, textsz, "5.6.3 the message has an 8-bit body and host %s does not offer 8BITMIME",
                 c->label);
    else if (e->smtputf8 && !c->peer.smtputf8)
        snprintf(text, textsz, "5.6.7 the message needs SMTPUTF8 and host %s does not offer it", c->label);
    else
        return false;
    return true;
}

static void start_txn(struct smtp_client *c)
{
    const struct envelope *e = c->env;
    char why[sizeof c->host_perm.text];
    if (message_mismatch(c, why, sizeof why)) {
        if (c->txn_on_conn > 1) {
            /* A reused session cannot take this message, but another MX might:
               not attempted, for the caller to retry on a fresh session (which
               tries every MX). The session stays. */
            char text[sizeof c->host_perm.text + 32];
            snprintf(text, sizeof text, "4.4.0 not sent on a reused session: %s", why);
            c->res.not_attempted = true;
            set_open_rcpts(c, DELIVERY_DEFER, text);
            c->need_rset = false;
            txn_end(c, true);
        } else {
            host_fail(c, DELIVERY_FAIL, "%s", why);
        }
        return;
    }
    char line[SMTP_CMD_MAX];
    int n = smtp_build_mail(e, &c->peer, line, sizeof line);
    if (n < 0) {
        if (c->txn_on_conn > 1) {
            set_open_rcpts(c, DELIVERY_FAIL, "5.1.7 the sender address does not fit in a MAIL command");
            txn_end(c, true);
        } else {
            host_fail(c, DELIVERY_FAIL, "5.1.7 the sender address <%.300s> does not fit in a MAIL command",
                      e->sender);
        }
        return;
    }
    bool ok = write_out(c, line, (size_t)n);
    c->bdat = c->peer.chunking && !c->peer.msid;
    if (c->peer.pipelining) {
        /* RFC 2920: MAIL, every RCPT and DATA go in one write; the replies come back
           in the same order. With CHUNKING the BDAT waits for the RCPT replies: a
           chunk sent to nobody would still have to be transferred whole. */
        for (size_t i = 0; ok && i < c->res.nrcpts; i++)
            ok = send_rcpt(c, i);
        if (!c->bdat && !c->peer.msid)
            ok = ok && write_out(c, "DATA\r\n", 6);
    }
    c->state = SC_MAIL;
    c->need_rset = true;
    c->mail_failed = false;
    c->discard_data = false;
    c->wants_msid = false;
    c->rcpt_i = 0;
    c->accepted = 0;
    if (!ok) {
        txn_abort(c, "4.3.0 cannot send the envelope to %s (out of memory or an address too long)", c->label);
        return;
    }
    arm(c, c->to.mail);
}

static void send_hello(struct smtp_client *c, const char *verb, enum sc_state next)
{
    char line[300];
    int n = snprintf(line, sizeof line, "%s %s\r\n", verb, c->helo);
    if (!write_out(c, line, (size_t)n)) {
        host_fail(c, DELIVERY_DEFER, "4.3.0 out of memory talking to %s", c->label);
        return;
    }
    c->state = next;
    arm(c, c->to.helo);
}

/* ---- TLS ---- */

static void tls_begin(struct smtp_client *c)
{
    char err[200] = "";
    SSL *ssl = c->tls.new_ssl(c->tls.arg, c->target, err, sizeof err);
    if (!ssl) {
        host_fail(c, DELIVERY_DEFER, "4.7.5 cannot set up TLS for %s: %s", c->label, err);
        return;
    }
    /* Anything the server sent after its 220 would be read as if it came over
       TLS: an injected command (CVE-2011-0411 and kin). The handshake must start
       from a clean buffer. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        SSL_free(ssl);
        host_fail(c, DELIVERY_DEFER, "4.7.0 host %s sent data after its reply to STARTTLS", c->label);
        return;
    }
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    struct bufferevent *f = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                           BEV_OPT_CLOSE_ON_FREE);
    if (!f) {
        /* libevent's failure path may already have freed the SSL and the
           connection under it (CLOSE_ON_FREE): leak them rather than free twice
           (out of memory only). */
        c->bev = NULL;
        host_fail(c, DELIVERY_DEFER, "4.3.0 out of memory starting TLS with %s", c->label);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
    c->bev = f;
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    smtp_reply_parser_init(&c->parser);
    c->tls_active = true;
    c->state = SC_HANDSHAKE;
    arm(c, c->to.helo);
}

static void tls_done(struct smtp_client *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    bool verified = false;
    char desc[sizeof c->tls_desc] = "";
    if (!c->tls.judge(c->tls.arg, c->target, ssl, &verified, desc, sizeof desc)) {
        str_copy(c->tls_desc, desc, sizeof c->tls_desc);
        host_fail(c, DELIVERY_DEFER, "4.7.5 TLS with %s is not acceptable: %s", c->label, desc);
        return;
    }
    c->tls_verified = verified;
    str_copy(c->tls_desc, desc, sizeof c->tls_desc);
    if (c->tls_mode == SMTP_TLS_IMPLICIT) {
        c->state = SC_GREETING;
        arm(c, c->to.greeting);
        return;
    }
    /* RFC 3207 §4.2: forget what the server said before TLS, ask again. */
    memset(&c->peer, 0, sizeof c->peer);
    send_hello(c, "EHLO", SC_EHLO);
}

static const char *ssl_error_text(struct smtp_client *c, char *buf, size_t bufsz)
{
    unsigned long e = c->bev ? bufferevent_get_openssl_error(c->bev) : 0;
    if (!e)
        e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, buf, bufsz);
    else
        str_copy(buf, "the connection was closed during the handshake", bufsz);
    ERR_clear_error();
    return buf;
}

/* ---- AUTH (RFC 4954) ---- */

static bool send_b64_line(struct smtp_client *c, const char *prefix, const unsigned char *data, size_t len)
{
    char b64[1024];
    if (cred_b64_encode(data, len, b64, sizeof b64) < 0)
        return false;
    char line[1100];
    int n = snprintf(line, sizeof line, "%s%s\r\n", prefix, b64);
    bool ok = n > 0 && (size_t)n < sizeof line && write_out(c, line, (size_t)n);
    OPENSSL_cleanse(line, sizeof line);
    OPENSSL_cleanse(b64, sizeof b64);
    return ok;
}

static void auth_begin(struct smtp_client *c)
{
    if (!c->tls_active) {
        host_fail(c, DELIVERY_DEFER, "4.7.0 will not send credentials to %s without TLS", c->label);
        return;
    }
    if (c->auth_needs_verified && !c->tls_verified) {
        host_fail(c, DELIVERY_DEFER, "4.7.0 will not send credentials to %s: its certificate was not verified",
                  c->label);
        return;
    }
    bool ok;
    if (c->peer.auth & SMTP_AUTH_PLAIN) {
        /* authzid empty, authcid, password (RFC 4616) */
        size_t ul = strlen(c->auth_user), pl = strlen(c->auth_pass);
        unsigned char msg[600];
        if (ul + pl + 2 > sizeof msg) {
            host_fail(c, DELIVERY_DEFER, "4.7.0 the AUTH user name and password are too long");
            return;
        }
        msg[0] = 0;
        memcpy(msg + 1, c->auth_user, ul);
        msg[1 + ul] = 0;
        memcpy(msg + 2 + ul, c->auth_pass, pl);
        ok = send_b64_line(c, "AUTH PLAIN ", msg, ul + pl + 2);
        OPENSSL_cleanse(msg, sizeof msg);
        c->auth_step = AUTH_PLAIN_SENT;
    } else if (c->peer.auth & SMTP_AUTH_LOGIN) {
        ok = write_out(c, "AUTH LOGIN\r\n", 12);
        c->auth_step = AUTH_LOGIN_SENT;
    } else {
        host_fail(c, DELIVERY_DEFER, "4.7.0 host %s offers no AUTH mechanism Ferry can use (PLAIN, LOGIN)",
                  c->label);
        return;
    }
    if (!ok) {
        host_fail(c, DELIVERY_DEFER, "4.3.0 cannot send AUTH to %s", c->label);
        return;
    }
    c->state = SC_AUTH;
    arm(c, c->to.helo);
}

static void auth_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX];
    if (r->code == 235 && (c->auth_step == AUTH_PLAIN_SENT || c->auth_step == AUTH_PASS_SENT)) {
        c->authed = true;
        after_hello(c);
        return;
    }
    if (r->code == 334 && (c->auth_step == AUTH_LOGIN_SENT || c->auth_step == AUTH_USER_SENT)) {
        /* LOGIN: the server's two prompts get the user name, then the password. */
        bool user = c->auth_step == AUTH_LOGIN_SENT;
        const char *secret = user ? c->auth_user : c->auth_pass;
        if (!send_b64_line(c, "", (const unsigned char *)secret, strlen(secret))) {
            host_fail(c, DELIVERY_DEFER, "4.3.0 cannot send AUTH to %s", c->label);
            return;
        }
        c->auth_step = user ? AUTH_USER_SENT : AUTH_PASS_SENT;
        arm(c, c->to.helo);
        return;
    }
    /* A refusal is ours to fix (credentials, mechanism): temporary, so nothing
       bounces while the administrator corrects it. */
    host_fail(c, DELIVERY_DEFER, "4.7.0 host %s did not accept our credentials: %s", c->label,
              reply_flat(r, flat, sizeof flat));
}

/*
 * After a successful EHLO or HELO: TLS first when the target's mode asks for it,
 * then AUTH when configured, then the transaction.
 */
static void after_hello(struct smtp_client *c)
{
    if (!c->tls_active && (c->tls_mode == SMTP_TLS_MAY || c->tls_mode == SMTP_TLS_MUST)) {
        if (c->peer.starttls) {
            if (!write_out(c, "STARTTLS\r\n", 10)) {
                host_fail(c, DELIVERY_DEFER, "4.3.0 out of memory talking to %s", c->label);
                return;
            }
            c->state = SC_STARTTLS;
            arm(c, c->to.helo);
            return;
        }
        if (c->tls_mode == SMTP_TLS_MUST) {
            host_fail(c, DELIVERY_DEFER, "4.7.4 TLS is required for %s and it does not offer STARTTLS", c->label);
            return;
        }
    }
    if (c->auth_user && !c->authed) {
        auth_begin(c);
        return;
    }
    c->txn_on_conn = 1;
    c->res.txn_on_conn = 1;
    start_txn(c);
}

/* The transaction after the last RCPT reply. */
static void send_msid(struct smtp_client *c);

static void after_rcpts(struct smtp_client *c)
{
    if (c->peer.msid || (c->wants_msid && !c->peer.pipelining)) {
        if (c->mail_failed || c->accepted == 0)
            txn_end(c, true);
        else
            send_msid(c);
        return;
    }
    if (c->bdat) {
        if (c->mail_failed || c->accepted == 0)
            txn_end(c, true);
        else
            start_bdat(c);
        return;
    }
    if (c->peer.pipelining) {
        c->state = SC_DATA;      /* DATA went out with the RCPTs */
        arm(c, c->to.data_init);
    } else if (c->mail_failed || c->accepted == 0) {
        txn_end(c, true);
    } else if (!write_out(c, "DATA\r\n", 6)) {
        txn_abort(c, "4.3.0 out of memory talking to %s", c->label);
    } else {
        c->state = SC_DATA;
        arm(c, c->to.data_init);
    }
}

static void apply_to_accepted(struct smtp_client *c, const struct smtp_reply *r, const char *in_reply_to)
{
    for (size_t i = 0; i < c->res.nrcpts; i++)
        if (c->stand[i] == RS_ACCEPTED)
            rcpt_from_reply(c, i, r, in_reply_to);
}

/* DMTP: the message is held here and only its reference goes out. */
static void send_msid(struct smtp_client *c)
{
    size_t *idx = calloc(c->accepted, sizeof *idx);
    if (!idx) {
        txn_abort(c, "4.3.0 out of memory holding the message for %s", c->label);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->res.nrcpts && n < c->accepted; i++)
        if (c->stand[i] == RS_ACCEPTED)
            idx[n++] = c->res.rcpts[i].index;
    char line[DMTP_LINE_MAX + 1], err[200] = "";
    const struct mx_target *t = &c->targets[c->target];
    int len = c->dmtp.hold(c->dmtp.arg, c->env, c->msg_fd, idx, n, (const struct sockaddr *)&t->sa,
                           !c->peer.smtputf8, line, sizeof line, c->hold, sizeof c->hold, err, sizeof err);
    free(idx);
    if (len < 0) {
        c->hold[0] = '\0';
        txn_abort(c, "4.3.0 cannot hold the message for a pull by %s: %s", c->label, err);
        return;
    }
    if (!write_out(c, line, (size_t)len)) {
        txn_abort(c, "4.3.0 out of memory talking to %s", c->label);
        return;
    }
    c->state = SC_MSID;
    arm(c, c->to.data_final);
}

static void msid_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX];
    bool ok = r->code / 100 == 2;
    if (ok) {
        reply_flat(r, flat, sizeof flat);
        for (size_t i = 0; i < c->res.nrcpts; i++)
            if (c->stand[i] == RS_ACCEPTED)
                set_rcpt(c, i, DELIVERY_OK, flat, "2.0.0 held for pull as %s; host %s said: %s (in reply to MSID)",
                         c->hold, c->label, flat);
    } else {
        apply_to_accepted(c, r, "MSID");
    }
    c->dmtp.settle(c->dmtp.arg, c->hold, ok);
    c->hold[0] = '\0';
    c->need_rset = !ok;
    txn_end(c, true);
}

static void on_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX], code[16];
    int cls = r->code / 100;
    evtimer_del(c->timer);
    switch (c->state) {
    case SC_GREETING:
        if (cls == 2)
            send_hello(c, "EHLO", SC_EHLO);
        else
            host_fail(c, cls == 5 ? DELIVERY_FAIL : DELIVERY_DEFER, "%s host %s refused to talk to us: %s",
                      cls == 5 ? smtp_reply_status(r, code, sizeof code) : "4.4.2", c->label,
                      reply_flat(r, flat, sizeof flat));
        return;
    case SC_EHLO:
        if (cls == 2) {
            smtp_ehlo_parse(r, &c->peer);
            c->peer.msid = c->peer.msid && c->have_dmtp;
            after_hello(c);
        } else if (cls == 5) {
            send_hello(c, "HELO", SC_HELO);
        } else {
            host_fail(c, DELIVERY_DEFER, "4.4.2 host %s did not accept EHLO: %s", c->label,
                      reply_flat(r, flat, sizeof flat));
        }
        return;
    case SC_HELO:
        if (cls == 2) {
            memset(&c->peer, 0, sizeof c->peer);
            after_hello(c);
        } else {
            host_fail(c, cls == 5 ? DELIVERY_FAIL : DELIVERY_DEFER, "%s host %s accepted neither EHLO nor HELO: %s",
                      cls == 5 ? smtp_reply_status(r, code, sizeof code) : "4.4.2", c->label,
                      reply_flat(r, flat, sizeof flat));
        }
        return;
    case SC_STARTTLS:
        if (r->code == 220) {
            tls_begin(c);
        } else if (c->tls_mode == SMTP_TLS_MUST) {
            host_fail(c, DELIVERY_DEFER, "4.7.4 TLS is required for %s and it refused STARTTLS: %s", c->label,
                      reply_flat(r, flat, sizeof flat));
        } else {
            /* Opportunistic: the session goes on in the clear (RFC 3207 §4.1). */
            c->tls_mode = SMTP_TLS_OFF;
            after_hello(c);
        }
        return;
    case SC_AUTH:
        auth_reply(c, r);
        return;
    case SC_RSET:
        if (cls == 2) {
            c->need_rset = false;
            start_txn(c);
        } else {
            host_fail(c, DELIVERY_DEFER, "4.4.2 host %s did not accept RSET: %s", c->label,
                      reply_flat(r, flat, sizeof flat));
        }
        return;
    case SC_WAIT:
        /* Unasked, between transactions: most likely a 421 before closing. */
        host_fail(c, DELIVERY_DEFER, "4.4.2 host %s ended the session: %s", c->label,
                  reply_flat(r, flat, sizeof flat));
        return;
    case SC_MAIL:
        if (r->code == 421 && c->txn_on_conn > 1) {
            /* The server timed the cached connection out: nothing was taken. */
            c->res.not_attempted = true;
            set_open_rcpts(c, DELIVERY_DEFER, "4.4.2 the reused connection was closed by the server (421)");
            txn_end(c, false);
            return;
        }
        if (cls != 2) {
            c->mail_failed = true;
            for (size_t i = 0; i < c->res.nrcpts; i++)
                rcpt_from_reply(c, i, r, "MAIL FROM");
        } else if (c->have_dmtp && dmtp_reply_wants_msid(r->code)) {
            c->wants_msid = true;
        }
        if (c->peer.pipelining) {
            c->state = SC_RCPT;  /* the RCPT replies follow, whatever MAIL got */
            arm(c, c->to.rcpt);
        } else if (c->mail_failed) {
            txn_end(c, true);
        } else if (!send_rcpt(c, 0)) {
            txn_abort(c, "4.3.0 cannot send RCPT to %s", c->label);
        } else {
            c->state = SC_RCPT;
            arm(c, c->to.rcpt);
        }
        return;
    case SC_RCPT:
        if (!c->mail_failed) {
            if (cls == 2) {
                c->stand[c->rcpt_i] = RS_ACCEPTED;
                c->accepted++;
                if (c->have_dmtp && dmtp_reply_wants_msid(r->code))
                    c->wants_msid = true;
            } else {
                rcpt_from_reply(c, c->rcpt_i, r, "RCPT TO");
            }
        }
        if (++c->rcpt_i < c->res.nrcpts) {
            if (!c->peer.pipelining && !send_rcpt(c, c->rcpt_i)) {
                txn_abort(c, "4.3.0 cannot send RCPT to %s", c->label);
                return;
            }
            arm(c, c->to.rcpt);
        } else {
            after_rcpts(c);
        }
        return;
    case SC_DATA:
        if (c->have_dmtp && !c->mail_failed && c->accepted > 0 && dmtp_reply_wants_msid(r->code)) {
            send_msid(c);       /* -00: "don't send DATA, send MSID" */
            return;
        }
        if (r->code == 354) {
            if (c->mail_failed || c->accepted == 0) {
                /* RFC 2920 §3.1: a server should have refused DATA here; an empty
                   message ends it without delivering anything to anyone. */
                c->discard_data = true;
                if (!write_out(c, ".\r\n", 3)) {
                    txn_end(c, false);
                    return;
                }
                c->state = SC_DOT;
                arm(c, c->to.data_final);
            } else {
                start_body(c);
            }
            return;
        }
        if (!c->mail_failed)
            apply_to_accepted(c, r, "DATA");
        txn_end(c, true);
        return;
    case SC_MSID:
        msid_reply(c, r);
        return;
    case SC_DOT:
        if (!c->discard_data)
            apply_to_accepted(c, r, c->bdat ? "BDAT LAST" : "end of DATA");
        c->need_rset = false;
        txn_end(c, true);
        return;
    case SC_BODY:
        /* A reply in the middle of the data: the server gave up on the message. */
        if (cls == 4 || cls == 5) {
            apply_to_accepted(c, r, "the message data");
            txn_end(c, false);
        } else {
            txn_abort(c, "4.5.0 host %s replied in the middle of the message data: %s", c->label,
                      reply_flat(r, flat, sizeof flat));
        }
        return;
    case SC_QUIT:
        close_conn(c);
        c->state = SC_FREE;
        arm(c, 0);
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

static void on_read(struct bufferevent *bev, void *arg)
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
                close_conn(c);
                c->state = SC_FREE;
                arm(c, 0);
            } else if (in_transaction(c)) {
                txn_abort(c, "4.5.0 host %s sent an unreadable reply: %s", c->label, err);
            } else {
                host_fail(c, DELIVERY_DEFER, "4.5.0 host %s sent an unreadable reply: %s", c->label, err);
            }
            return;
        }
        if (fr == SMTP_FEED_REPLY)
            on_reply(c, &c->reply);
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct smtp_client *c = arg;
    if (c->bev == bev && c->state == SC_BODY)
        fill_body(c);
}

static void connected(struct smtp_client *c)
{
    if (c->tls_mode == SMTP_TLS_IMPLICIT) {
        tls_begin(c);
        return;
    }
    c->state = SC_GREETING;
    arm(c, c->to.greeting);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_client *c = arg;
    if (c->bev != bev)
        return;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == SC_HANDSHAKE)
            tls_done(c);
        else if (c->state == SC_CONNECT)
            connected(c);
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    const char *why = (what & BEV_EVENT_EOF) ? "the connection was closed" : evutil_socket_error_to_string(err);
    evtimer_del(c->timer);
    if (what & BEV_EVENT_TIMEOUT) {
        /* Only the body's writes have a bufferevent timeout (data_block). */
        txn_abort(c, "4.4.2 timeout sending the message data to %s (no progress for %u ms)", c->label,
                  c->to.data_block);
        return;
    }
    if (c->state == SC_HANDSHAKE) {
        char ssl_err[200];
        ssl_error_text(c, ssl_err, sizeof ssl_err);
        str_copy(c->tls_desc, "handshake failed", sizeof c->tls_desc);
        if (c->tls_mode == SMTP_TLS_MAY && c->txn_on_conn == 0) {
            /* Opportunistic TLS that cannot be had: the same host in the clear. */
            c->tls_plain_retry = true;
        }
        host_fail(c, DELIVERY_DEFER, "4.7.5 TLS handshake with %s failed: %s", c->label, ssl_err);
        return;
    }
    if (c->state == SC_CONNECT)
        host_fail(c, DELIVERY_DEFER, "4.4.1 cannot connect to %s: %s", c->label, evutil_socket_error_to_string(err));
    else if (c->state == SC_QUIT) {
        close_conn(c);
        c->state = SC_FREE;
        arm(c, 0);
    } else if (in_transaction(c))
        txn_abort(c, "4.4.2 lost the connection with %s while waiting for %s: %s", c->label,
                  waiting_for(c->state), why);
    else if (reading(c))
        host_fail(c, DELIVERY_DEFER, "4.4.2 lost the connection with %s while waiting for %s: %s", c->label,
                  waiting_for(c->state), why);
    else
        close_conn(c);      /* closed while the results wait: session_open no more */
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
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    smtp_reply_parser_init(&c->parser);
    c->state = SC_CONNECT;
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&t->sa, (int)t->salen) < 0) {
        int e = errno;
        close_conn(c);
        c->any_temp = true;
        delivery_set(&c->host_temp, DELIVERY_DEFER, "4.4.1 cannot connect to %s: %s", c->label, strerror(e));
        return false;
    }
    arm(c, c->to.connect);
    return true;
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
    close_conn(c);
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
            set_rcpt(c, i, DELIVERY_DEFER, NULL, "4.4.2 the session with %s ended without a result", c->label);
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
        arm(c, c->next.delay_ms);
        return;
    }
    if (c->bev && write_out(c, "QUIT\r\n", 6)) {
        c->state = SC_QUIT;
        arm(c, c->to.quit);
        return;
    }
    close_conn(c);
    c->state = SC_FREE;
    arm(c, 0);
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
            host_fail(c, DELIVERY_DEFER, "4.4.2 host %s sent data between transactions", c->label);
            return;
        }
        if (c->need_rset) {
            if (!write_out(c, "RSET\r\n", 6)) {
                host_fail(c, DELIVERY_DEFER, "4.3.0 out of memory talking to %s", c->label);
                return;
            }
            c->state = SC_RSET;
            arm(c, c->to.mail);
        } else {
            start_txn(c);
        }
        return;
    case SC_CONNECT:
        host_fail(c, DELIVERY_DEFER, "4.4.1 connection to %s timed out", c->label);
        return;
    case SC_QUIT:
        close_conn(c);
        c->state = SC_FREE;
        arm(c, 0);
        return;
    case SC_FREE:
        free_client(c);
        return;
    default:
        if (in_transaction(c))
            txn_abort(c, "4.4.2 timeout waiting for %s from %s", waiting_for(c->state), c->label);
        else
            host_fail(c, DELIVERY_DEFER, "4.4.2 timeout waiting for %s from %s", waiting_for(c->state), c->label);
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
    if (p->dmtp && p->dmtp->hold && p->dmtp->settle) {
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
    arm(c, 0);   /* the first connection starts from the loop, never in here */
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

/* smtp_client_hello — the session before the first transaction: EHLO or HELO,
   STARTTLS and the handshake's verdict, AUTH (see smtp_client.h). */
#include "delivery/smtp_client_int.h"
#include "auth/credentials.h"
#include "lib/buf.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

static void after_hello(struct smtp_client *c);

static void send_hello(struct smtp_client *c, const char *verb, enum sc_state next)
{
    char line[300];
    int n = snprintf(line, sizeof line, "%s %s\r\n", verb, c->helo);
    if (!sc_write_out(c, line, (size_t)n)) {
        sc_host_fail(c, DELIVERY_DEFER, "4.3.0 out of memory talking to %s", c->label);
        return;
    }
    c->state = next;
    sc_arm(c, c->to.helo);
}

/* ---- TLS ---- */

void sc_tls_begin(struct smtp_client *c)
{
    char err[200] = "";
    SSL *ssl = c->tls.new_ssl(c->tls.arg, c->target, err, sizeof err);
    if (!ssl) {
        sc_host_fail(c, DELIVERY_DEFER, "4.7.5 cannot set up TLS for %s: %s", c->label, err);
        return;
    }
    /* Anything the server sent after its 220 would be read as if it came over
       TLS: an injected command (CVE-2011-0411 and kin). The handshake must start
       from a clean buffer. */
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        SSL_free(ssl);
        sc_host_fail(c, DELIVERY_DEFER, "4.7.0 host %s sent data after its reply to STARTTLS", c->label);
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
        sc_host_fail(c, DELIVERY_DEFER, "4.3.0 out of memory starting TLS with %s", c->label);
        return;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
    c->bev = f;
    bufferevent_setcb(c->bev, sc_on_read, sc_on_write, sc_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    smtp_reply_parser_init(&c->parser);
    c->tls_active = true;
    c->state = SC_HANDSHAKE;
    sc_arm(c, c->to.helo);
}

void sc_tls_done(struct smtp_client *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    bool verified = false;
    char desc[sizeof c->tls_desc] = "";
    if (!c->tls.judge(c->tls.arg, c->target, ssl, &verified, desc, sizeof desc)) {
        str_copy(c->tls_desc, desc, sizeof c->tls_desc);
        sc_host_fail(c, DELIVERY_DEFER, "4.7.5 TLS with %s is not acceptable: %s", c->label, desc);
        return;
    }
    c->tls_verified = verified;
    str_copy(c->tls_desc, desc, sizeof c->tls_desc);
    if (c->tls_mode == SMTP_TLS_IMPLICIT) {
        c->state = SC_GREETING;
        sc_arm(c, c->to.greeting);
        return;
    }
    /* RFC 3207 §4.2: forget what the server said before TLS, ask again. */
    memset(&c->peer, 0, sizeof c->peer);
    send_hello(c, "EHLO", SC_EHLO);
}

const char *sc_ssl_error_text(struct smtp_client *c, char *buf, size_t bufsz)
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
    bool ok = n > 0 && (size_t)n < sizeof line && sc_write_out(c, line, (size_t)n);
    OPENSSL_cleanse(line, sizeof line);
    OPENSSL_cleanse(b64, sizeof b64);
    return ok;
}

static void auth_begin(struct smtp_client *c)
{
    if (!c->tls_active) {
        sc_host_fail(c, DELIVERY_DEFER, "4.7.0 will not send credentials to %s without TLS", c->label);
        return;
    }
    if (c->auth_needs_verified && !c->tls_verified) {
        sc_host_fail(c, DELIVERY_DEFER, "4.7.0 will not send credentials to %s: its certificate was not verified",
                  c->label);
        return;
    }
    bool ok;
    if (c->peer.auth & SMTP_AUTH_PLAIN) {
        /* authzid empty, authcid, password (RFC 4616) */
        size_t ul = strlen(c->auth_user), pl = strlen(c->auth_pass);
        unsigned char msg[600];
        if (ul + pl + 2 > sizeof msg) {
            sc_host_fail(c, DELIVERY_DEFER, "4.7.0 the AUTH user name and password are too long");
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
        ok = sc_write_out(c, "AUTH LOGIN\r\n", 12);
        c->auth_step = AUTH_LOGIN_SENT;
    } else {
        sc_host_fail(c, DELIVERY_DEFER, "4.7.0 host %s offers no AUTH mechanism Ferry can use (PLAIN, LOGIN)",
                  c->label);
        return;
    }
    if (!ok) {
        sc_host_fail(c, DELIVERY_DEFER, "4.3.0 cannot send AUTH to %s", c->label);
        return;
    }
    c->state = SC_AUTH;
    sc_arm(c, c->to.helo);
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
            sc_host_fail(c, DELIVERY_DEFER, "4.3.0 cannot send AUTH to %s", c->label);
            return;
        }
        c->auth_step = user ? AUTH_USER_SENT : AUTH_PASS_SENT;
        sc_arm(c, c->to.helo);
        return;
    }
    /* A refusal is ours to fix (credentials, mechanism): temporary, so nothing
       bounces while the administrator corrects it. */
    sc_host_fail(c, DELIVERY_DEFER, "4.7.0 host %s did not accept our credentials: %s", c->label,
              sc_reply_flat(r, flat, sizeof flat));
}

/*
 * After a successful EHLO or HELO: TLS first when the target's mode asks for it,
 * then AUTH when configured, then the transaction.
 */
static void after_hello(struct smtp_client *c)
{
    if (!c->tls_active && (c->tls_mode == SMTP_TLS_MAY || c->tls_mode == SMTP_TLS_MUST)) {
        if (c->peer.starttls) {
            if (!sc_write_out(c, "STARTTLS\r\n", 10)) {
                sc_host_fail(c, DELIVERY_DEFER, "4.3.0 out of memory talking to %s", c->label);
                return;
            }
            c->state = SC_STARTTLS;
            sc_arm(c, c->to.helo);
            return;
        }
        if (c->tls.no_starttls)
            c->tls.no_starttls(c->tls.arg, c->target);
        if (c->tls_mode == SMTP_TLS_MUST) {
            sc_host_fail(c, DELIVERY_DEFER, "4.7.4 TLS is required for %s and it does not offer STARTTLS", c->label);
            return;
        }
    }
    if (c->auth_user && !c->authed) {
        auth_begin(c);
        return;
    }
    c->txn_on_conn = 1;
    c->res.txn_on_conn = 1;
    sc_start_txn(c);
}

/* ---- the replies before the first transaction ---- */

/* A refusal: permanent with the server's own status when it says 5xx, 4.4.2
   otherwise. */
static enum delivery_result refusal(const struct smtp_reply *r, char *code, size_t codesz, const char **status)
{
    bool perm = r->code / 100 == 5;
    *status = perm ? smtp_reply_status(r, code, codesz) : "4.4.2";
    return perm ? DELIVERY_FAIL : DELIVERY_DEFER;
}

static void greeting_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX], code[16];
    const char *status;
    if (r->code / 100 == 2) {
        send_hello(c, "EHLO", SC_EHLO);
        return;
    }
    enum delivery_result res = refusal(r, code, sizeof code, &status);
    sc_host_fail(c, res, "%s host %s refused to talk to us: %s", status, c->label,
                 sc_reply_flat(r, flat, sizeof flat));
}

static void ehlo_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX];
    switch (r->code / 100) {
    case 2:
        smtp_ehlo_parse(r, &c->peer);
        c->peer.msid = c->peer.msid && c->have_dmtp;
        after_hello(c);
        return;
    case 5:
        send_hello(c, "HELO", SC_HELO);
        return;
    default:
        sc_host_fail(c, DELIVERY_DEFER, "4.4.2 host %s did not accept EHLO: %s", c->label,
                     sc_reply_flat(r, flat, sizeof flat));
        return;
    }
}

static void helo_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX], code[16];
    const char *status;
    if (r->code / 100 == 2) {
        memset(&c->peer, 0, sizeof c->peer);
        after_hello(c);
        return;
    }
    enum delivery_result res = refusal(r, code, sizeof code, &status);
    sc_host_fail(c, res, "%s host %s accepted neither EHLO nor HELO: %s", status, c->label,
                 sc_reply_flat(r, flat, sizeof flat));
}

static void starttls_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX];
    if (r->code == 220) {
        sc_tls_begin(c);
        return;
    }
    if (c->tls.no_starttls)
        c->tls.no_starttls(c->tls.arg, c->target);
    if (c->tls_mode == SMTP_TLS_MUST) {
        sc_host_fail(c, DELIVERY_DEFER, "4.7.4 TLS is required for %s and it refused STARTTLS: %s", c->label,
                     sc_reply_flat(r, flat, sizeof flat));
    } else {
        /* Opportunistic: the session goes on in the clear (RFC 3207 §4.1). */
        c->tls_mode = SMTP_TLS_OFF;
        after_hello(c);
    }
}

static void rset_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX];
    if (r->code / 100 == 2) {
        c->need_rset = false;
        sc_start_txn(c);
    } else {
        sc_host_fail(c, DELIVERY_DEFER, "4.4.2 host %s did not accept RSET: %s", c->label,
                     sc_reply_flat(r, flat, sizeof flat));
    }
}

void sc_hello_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX];
    switch (c->state) {
    case SC_GREETING: greeting_reply(c, r); return;
    case SC_EHLO: ehlo_reply(c, r); return;
    case SC_HELO: helo_reply(c, r); return;
    case SC_STARTTLS: starttls_reply(c, r); return;
    case SC_AUTH: auth_reply(c, r); return;
    case SC_RSET: rset_reply(c, r); return;
    case SC_WAIT:
        /* Unasked, between transactions: most likely a 421 before closing. */
        sc_host_fail(c, DELIVERY_DEFER, "4.4.2 host %s ended the session: %s", c->label,
                     sc_reply_flat(r, flat, sizeof flat));
        return;
    default:
        return;
    }
}

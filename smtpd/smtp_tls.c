/*
 * smtp_tls — the session's TLS: STARTTLS (RFC 3207) and the handshake of
 * implicit TLS (RFC 8314), on libevent's OpenSSL bufferevents.
 *
 * STARTTLS answers 220 in clear text, throws away every octet the client sent
 * after the STARTTLS line (a client, or a man in the middle, cannot slip commands
 * into the encrypted session that way: the CVE-2011-0411 class), wraps the
 * connection in a TLS filter, and forgets the session's state: the client must say
 * EHLO again (§4.2). Nothing is read until the handshake ends.
 */
#include "lib/log.h"
#include "lib/tls.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session_int.h"
#include "smtpd/smtp_trace.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <string.h>

void smtp_tls_starttls(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    if (cmd->arg[0]) {
        smtp_session_reply(s, "501 5.5.4 Syntax: STARTTLS takes no argument");
        return;
    }
    if (s->tls) {
        smtp_session_reply(s, "503 5.5.1 TLS is already active");
        return;
    }
    if (!s->srv->tls) {
        smtp_session_reply(s, "454 4.7.0 TLS not available");
        return;
    }
    if (s->state != SS_INIT && s->state != SS_READY) {
        smtp_session_reply(s, "503 5.5.1 STARTTLS is not allowed inside a mail transaction (RSET first)");
        return;
    }
    SSL *ssl = SSL_new(s->srv->tls);
    if (!ssl) {
        smtp_session_reply(s, "454 4.7.0 TLS not available (out of memory)");
        return;
    }
    smtp_session_reply(s, "220 2.0.0 Ready to start TLS");
    /* Whatever the client pipelined after STARTTLS was sent in clear text and must
       not be read as if it came through TLS. */
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t junk = evbuffer_get_length(in);
    if (junk) {
        log_warn("session %s: discarded %zu octets sent after STARTTLS before the handshake", s->id, junk);
        smtp_trace_note(s->trace, "discarded %zu octets pipelined after STARTTLS", junk);
        evbuffer_drain(in, junk);
    }
    /* Without CLOSE_ON_FREE: at the end the filter goes first and the plain
       connection is kept until our last TLS records have left (smtp_tls_close). */
    struct bufferevent *f = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, 0);
    if (!f) {
        SSL_free(ssl);
        log_error("session %s: cannot start TLS", s->id);
        return;
    }
    /* RFC 3207 4.2: forget everything learnt before TLS. */
    smtp_session_reset_transaction(s);
    s->helo[0] = '\0';
    s->esmtp = false;
    s->state = SS_HANDSHAKE;
    smtp_session_attach(s, f);
}

void smtp_tls_established(struct smtp_session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    tls_describe(ssl, s->tls_version, sizeof s->tls_version, s->tls_cipher, sizeof s->tls_cipher, &s->tls_bits);
    s->tls = true;
    log_info("session %s: TLS established with [%s]: %s %s (%d bits)", s->id, s->peer_ip, s->tls_version,
             s->tls_cipher, s->tls_bits);
    smtp_trace_note(s->trace, "TLS established: %s %s (%d bits)", s->tls_version, s->tls_cipher, s->tls_bits);
    if (s->kind == LISTEN_SMTPS) {
        smtp_session_begin_greeting(s);
    } else {
        s->state = SS_INIT;         /* the client speaks next: EHLO */
    }
    /* Records that came with the end of the handshake were not read while it ran. */
    smtp_session_resume(s);
}

void smtp_tls_failed(struct smtp_session *s)
{
    unsigned long e = bufferevent_get_openssl_error(s->bev);
    char why[256];
    if (e)
        ERR_error_string_n(e, why, sizeof why);
    else
        snprintf(why, sizeof why, "connection closed");
    log_info("session %s: TLS handshake with [%s] failed: %s", s->id, s->peer_ip, why);
    smtp_trace_note(s->trace, "TLS handshake failed: %s", why);
    s->end_reason = "tls-failed";
}

/* The plain connection under a finished STARTTLS session: freed once what the TLS
   layer queued (the last reply, close_notify) has been written, or on error. */
static void linger_write(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_free(bev);
}

static void linger_event(struct bufferevent *bev, short what, void *arg)
{
    bufferevent_free(bev);
}

void smtp_tls_close(struct smtp_session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    if (ssl)
        SSL_shutdown(ssl);      /* queues close_notify; we do not wait for the peer's */
    struct bufferevent *under = bufferevent_get_underlying(s->bev);
    bufferevent_free(s->bev);
    s->bev = NULL;
    if (!under)
        return;         /* smtps: the bufferevent freed the SSL with the socket */
    /* A filter without CLOSE_ON_FREE leaves its SSL to us (the close_notify
       is in under's output already). */
    SSL_free(ssl);
    if (evbuffer_get_length(bufferevent_get_output(under)) == 0) {
        bufferevent_free(under);
        return;
    }
    struct timeval tv = { 10, 0 };
    bufferevent_set_timeouts(under, &tv, &tv);
    bufferevent_setcb(under, NULL, linger_write, linger_event, NULL);
    bufferevent_disable(under, EV_READ);
    bufferevent_enable(under, EV_WRITE);
}

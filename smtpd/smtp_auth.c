/*
 * smtp_auth — the AUTH command (RFC 4954) in the session, over auth/sasl.h.
 *
 * AUTH is offered under TLS only (or also to loopback clients with
 * auth_plaintext_loopback), once per session, outside a transaction. While an
 * exchange runs the session is in AUTH and every line is a SASL response (up to
 * 12288 octets; traced as ***). A failure is answered only after
 * auth_failure_delay, with reading paused meanwhile, and counted per client
 * address: auth_max_failures within auth_lockout lock the address out of AUTH
 * (454 4.7.0) until the failures age out.
 *
 * The session never holds a credential: each time auth/sasl.h stops with a
 * question (is this the password, the SCRAM parameters, is this the proof), it
 * goes to the auth process (authproc.h) and the session waits in AUTH_WAIT,
 * reading paused, while the event loop serves everyone else; the answer resumes
 * it. No answer within AUTHPROC_TIMEOUT_MS: 454 4.7.0, not counted as a failure.
 */
#include "auth/sasl.h"
#include "lib/log.h"
#include "lib/netaddr.h"
#include "lib/ratelimit.h"
#include "smtpd/authproc.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session_int.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <string.h>

static bool is_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

bool smtp_auth_offered(const struct smtp_session *s)
{
    return s->srv->auth && !s->authenticated &&
           (s->tls || (s->srv->cfg->auth_plaintext_loopback && is_loopback(&s->peer)));
}

static void finish(struct smtp_session *s)
{
    sasl_free(s->sasl);
    s->sasl = NULL;
    s->state = SS_READY;
}

static void on_fail_delay(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_session *s = arg;
    if (s->state != SS_AUTH_WAIT)       /* the session ended meanwhile (a timeout, shutdown) */
        return;
    smtp_session_reply(s, "%s", s->auth_pending_reply);
    finish(s);
    smtp_session_resume(s);
}

/* A failed or malformed exchange: count it, then answer after the delay. */
static void failed(struct smtp_session *s, const char *reply)
{
    const struct ferry_config *cfg = s->srv->cfg;
    log_info("session %s: AUTH %s failed for [%s] user=%s: %s", s->id, sasl_mech_name(s->sasl), s->peer_ip,
             sasl_user(s->sasl)[0] ? sasl_user(s->sasl) : "-", sasl_reason(s->sasl));
    ratelimit_hit(s->srv->auth_failures, s->peer_ip, smtp_server_now(s->srv));
    snprintf(s->auth_pending_reply, sizeof s->auth_pending_reply, "%s", reply);
    s->state = SS_AUTH_WAIT;
    if (!s->auth_timer)
        s->auth_timer = evtimer_new(s->srv->base, on_fail_delay, s);
    struct timeval tv = { (time_t)cfg->auth_failure_delay, 0 };
    if (!s->auth_timer || evtimer_add(s->auth_timer, &tv) < 0)
        on_fail_delay(-1, 0, s);
}

static void outcome(struct smtp_session *s, enum sasl_status st, const char *challenge);

static void on_verdict(void *arg, const struct sasl_verdict *v)
{
    struct smtp_session *s = arg;
    s->auth_q = 0;
    if (s->state != SS_AUTH_WAIT || !s->sasl)      /* ended meanwhile (shutdown, a timeout) */
        return;
    char challenge[SASL_CHALLENGE_MAX];
    outcome(s, sasl_answer(s->sasl, v, challenge, sizeof challenge), challenge);
    if (s->state != SS_AUTH_WAIT)
        smtp_session_resume(s);
}

/* The exchange needs a secret: ask the auth process and wait, reading paused. */
static void ask(struct smtp_session *s)
{
    struct sasl_request q;
    sasl_get_request(s->sasl, &q);
    s->state = SS_AUTH_WAIT;
    s->auth_q = authclient_ask(s->srv->auth, &q, on_verdict, s);
    if (!s->auth_q) {
        struct sasl_verdict v = { .ok = -1 };
        char challenge[SASL_CHALLENGE_MAX];
        outcome(s, sasl_answer(s->sasl, &v, challenge, sizeof challenge), challenge);
    }
}

static void outcome(struct smtp_session *s, enum sasl_status st, const char *challenge)
{
    switch (st) {
    case SASL_VERIFY:
        ask(s);
        return;
    case SASL_TEMPFAIL:
        log_warn("session %s: AUTH %s for [%s]: %s", s->id, sasl_mech_name(s->sasl), s->peer_ip, sasl_reason(s->sasl));
        smtp_session_reply(s, "454 4.7.0 Temporary authentication failure");
        finish(s);
        return;
    case SASL_CONTINUE:
        s->state = SS_AUTH;
        smtp_session_reply(s, "334 %s", challenge);
        return;
    case SASL_SUCCESS:
        s->authenticated = true;
        str_copy(s->auth_user, sasl_user(s->sasl), sizeof s->auth_user);
        log_info("session %s: AUTH %s succeeded for [%s] user=%s", s->id, sasl_mech_name(s->sasl), s->peer_ip,
                 s->auth_user);
        smtp_session_reply(s, "235 2.7.0 Authentication successful");
        finish(s);
        return;
    case SASL_CANCELLED:
        smtp_session_reply(s, "501 5.0.0 Authentication cancelled");
        finish(s);
        return;
    case SASL_MALFORMED:
        failed(s, "501 5.5.2 Malformed authentication response");
        return;
    case SASL_FAIL:
        failed(s, "535 5.7.8 Authentication credentials invalid");
        return;
    }
}

void smtp_auth_command(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    if (s->authenticated) {
        smtp_session_reply(s, "503 5.5.1 Already authenticated");
        return;
    }
    if (s->state != SS_READY) {
        smtp_session_reply(s, "503 5.5.1 AUTH needs EHLO first and no transaction in progress");
        return;
    }
    if (!smtp_auth_offered(s)) {
        smtp_session_reply(s, "538 5.7.11 Encryption required for requested authentication mechanism");
        return;
    }
    if (ratelimit_exceeded(s->srv->auth_failures, s->peer_ip, smtp_server_now(s->srv))) {
        log_info("session %s: AUTH refused for [%s]: locked out after repeated failures", s->id, s->peer_ip);
        smtp_session_reply(s, "454 4.7.0 Too many failed authentications from your address, try again later");
        return;
    }
    char mech[32];
    const char *sp = strchr(cmd->arg, ' ');
    size_t mlen = sp ? (size_t)(sp - cmd->arg) : strlen(cmd->arg);
    if (mlen == 0 || mlen >= sizeof mech) {
        smtp_session_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        return;
    }
    memcpy(mech, cmd->arg, mlen);
    mech[mlen] = '\0';
    s->sasl = sasl_start(mech);
    if (!s->sasl) {
        smtp_session_reply(s, "504 5.5.4 Unrecognized authentication type (use %s)", sasl_mechanisms());
        return;
    }
    char challenge[SASL_CHALLENGE_MAX];
    outcome(s, sasl_initial(s->sasl, sp ? sp + 1 : NULL, challenge, sizeof challenge), challenge);
}

void smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
    char challenge[SASL_CHALLENGE_MAX];
    outcome(s, sasl_step(s->sasl, line, len, challenge, sizeof challenge), challenge);
}

void smtp_auth_free(struct smtp_session *s)
{
    if (s->auth_q)
        authclient_cancel(s->srv->auth, s->auth_q);
    s->auth_q = 0;
    sasl_free(s->sasl);
    s->sasl = NULL;
    if (s->auth_timer)
        event_free(s->auth_timer);
    s->auth_timer = NULL;
}

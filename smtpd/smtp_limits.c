/*
 * smtp_limits — how many sessions may be open, and how long one may stay
 * without doing what SMTP is for (declared in smtp_session_int.h).
 *
 * Sessions are counted in two pools, the smtp listeners (mail from others) and
 * the submission and smtps listeners together (our own users): a flood of idle
 * connections to port 25 fills only its own pool and never takes submission's
 * places. max_connections_per_ip is counted within a pool for the same reason.
 *
 * Progress: a session must complete a mail transaction (a message accepted and
 * queued) within smtp_idle_session_limit of connecting or of its previous one,
 * and may send at most smtp_junk_command_limit junk commands in between: NOOP,
 * RSET, HELP, VRFY, EXPN, EHLO, HELO, and every command that got an error reply
 * (4xx or 5xx; unknown and malformed commands among them). A completed
 * transaction starts both counts afresh. A transaction under way is never cut
 * short by the time limit (smtp_timeout and data_timeout bound it); if the time
 * ran out meanwhile, the session is closed as soon as it is outside a
 * transaction again. Authenticated sessions are held to the same rules: a mail
 * client has no reason to keep a session without sending, and reconnecting is
 * cheap.
 */
#include "lib/log.h"
#include "smtpd/smtp_park.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session_int.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <string.h>

static bool submission_pool(enum listen_kind kind)
{
    return kind != LISTEN_SMTP;
}

/* Our own networks (relay_networks) are exempt from the per-address limits
   (max_connections_per_ip, max_connection_rate) unless relay_networks_limit_exempt
   = no: an application server or a relaying host submitting many messages over
   many short connections is not a flood, and it is ours. The pool limits
   (smtp_max_sessions, submission_max_sessions) still hold, so even a trusted
   client cannot take every session. RFC-NOTES.md, "Per-address limits". */
bool smtp_limits_exempt(const struct smtp_session *s)
{
    const struct ferry_config *cfg = s->srv->cfg;
    return cfg->relay_networks_limit_exempt && settings_is_relay_client(cfg, (const struct sockaddr *)&s->peer);
}

const char *smtp_limits_connect(const struct smtp_session *s, const char **detail)
{
    const struct ferry_config *cfg = s->srv->cfg;
    bool sub = submission_pool(s->kind);
    size_t in_pool = 0, from_ip = 0;
    /* s itself is already in the list, so both counts include it. */
    for (const struct smtp_session *o = s->srv->sessions; o; o = o->next) {
        if (submission_pool(o->kind) != sub)
            continue;
        in_pool++;
        from_ip += strcmp(o->peer_ip, s->peer_ip) == 0;
    }
    *detail = "";
    if (in_pool > (sub ? cfg->submission_max_sessions : cfg->smtp_max_sessions))
        return sub ? "over submission_max_sessions" : "over smtp_max_sessions";
    *detail = " from your address";
    if (from_ip > cfg->max_connections_per_ip && !smtp_limits_exempt(s))
        return "over max_connections_per_ip";
    return NULL;
}

bool smtp_limits_junk_verb(enum smtp_verb verb)
{
    switch (verb) {
    case SMTP_VERB_NOOP: case SMTP_VERB_RSET: case SMTP_VERB_HELP: case SMTP_VERB_VRFY: case SMTP_VERB_EXPN:
    case SMTP_VERB_EHLO: case SMTP_VERB_HELO:
        return true;
    default:
        return false;
    }
}

/* Between transactions, and able to hear a reply. */
static bool outside_transaction(const struct smtp_session *s)
{
    switch (s->state) {
    case SS_PREGREET: case SS_INIT: case SS_READY: case SS_AUTH: case SS_AUTH_WAIT:
        return true;
    default:
        return false;
    }
}

static void on_idle_limit(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_session *s = arg;
    s->idle_expired = true;
    if (s->parked) {            /* enforced once its connection is back */
        smtp_park_wake_for_limits(s);
        return;
    }
    if (s->state == SS_HANDSHAKE) {
        /* Nothing can be said in clear text in the middle of a TLS handshake. */
        log_warn("session %s: disconnecting [%s]: no mail transaction within %llus (smtp_idle_session_limit), "
                 "during a TLS handshake", s->id, s->peer_ip, s->srv->cfg->smtp_idle_session_limit);
        s->end_reason = "idle-limit";
        smtp_server_session_gone(s->srv, s);
        return;
    }
    smtp_limits_enforce(s);
}

int smtp_limits_start(struct smtp_session *s)
{
    s->idle_timer = evtimer_new(s->srv->base, on_idle_limit, s);
    if (!s->idle_timer)
        return -1;
    struct timeval tv = { (time_t)s->srv->cfg->smtp_idle_session_limit, 0 };
    return evtimer_add(s->idle_timer, &tv);
}

void smtp_limits_count(struct smtp_session *s)
{
    if (s->cmd_junk || s->reply_class == '4' || s->reply_class == '5')
        s->junk++;
}

void smtp_limits_transaction_done(struct smtp_session *s)
{
    s->junk = 0;
    s->idle_expired = false;
    if (s->idle_timer) {
        struct timeval tv = { (time_t)s->srv->cfg->smtp_idle_session_limit, 0 };
        evtimer_add(s->idle_timer, &tv);
    }
}

static void close_now(struct smtp_session *s, const char *reason, const char *fmt, unsigned long long n)
{
    s->end_reason = reason;
    if (s->bev)
        bufferevent_enable(s->bev, EV_WRITE);
    smtp_session_reply(s, fmt, s->srv->cfg->hostname, n);
    smtp_session_close_after_reply(s);
}

bool smtp_limits_enforce(struct smtp_session *s)
{
    const struct ferry_config *cfg = s->srv->cfg;
    if (s->state == SS_CLOSING)
        return true;
    if (s->junk >= cfg->smtp_junk_command_limit) {
        log_warn("session %s: disconnecting [%s]: %u junk commands without a completed mail transaction "
                 "(smtp_junk_command_limit)", s->id, s->peer_ip, s->junk);
        close_now(s, "junk-commands", "421 4.7.0 %s Too many commands without a completed mail transaction "
                  "(limit %llu), closing connection", cfg->smtp_junk_command_limit);
        return true;
    }
    if (s->idle_expired && outside_transaction(s)) {
        log_warn("session %s: disconnecting [%s]: no mail transaction within %llus (smtp_idle_session_limit)",
                 s->id, s->peer_ip, cfg->smtp_idle_session_limit);
        close_now(s, "idle-limit", "421 4.4.2 %s No mail transaction completed within %llu seconds, "
                  "closing connection", cfg->smtp_idle_session_limit);
        return true;
    }
    return false;
}

void smtp_limits_free(struct smtp_session *s)
{
    if (s->idle_timer)
        event_free(s->idle_timer);
    s->idle_timer = NULL;
}

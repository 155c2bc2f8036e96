/* smtp_session — see smtp_session.h. */
#include "smtpd/smtp_session.h"
#include "smtpd/smtp_arc_seal.h"
#include "smtpd/sender_identity.h"
#include "delivery/delivery.h"
#include "lib/buf.h"
#include "lib/ratelimit.h"
#include "lib/log.h"
#include "auth/sasl.h"
#include "auth/userdb.h"
#include "smtpd/relay_access.h"
#include "smtpd/smtp_dkim_dmarc.h"
#include "smtpd/smtp_sender.h"
#include "smtpd/smtp_cmd.h"
#include "smtpd/smtp_dmtp.h"
#include "smtpd/smtp_params.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_trace.h"
#include "smtpd/smtp_gtml.h"
#include "pull/dmtp_cmd.h"
#include "smtpd/smtp_session_int.h"
#include "smtpd/smtp_park.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Refuse new mail (452 4.3.1) when the spool has less free space than this. */
#define SPOOL_MIN_FREE (16ULL * 1024 * 1024)
/* Input buffered per session, and replies queued for a client that does not read. */
#define SESSION_INPUT_MAX  (256 * 1024)
#define SESSION_OUTPUT_MAX (64 * 1024)

static void on_read(struct bufferevent *bev, void *arg);
static void on_sender_done(void *arg, const struct sender_verdict *v);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static void vreply(struct smtp_session *s, const char *fmt, va_list ap);
static void reply(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply(s, fmt, ap);
    va_end(ap);
}

void smtp_session_reply(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply(s, fmt, ap);
    va_end(ap);
}

/* Is the session under TLS? The STARTTLS work adds `bool tls` to the session;
   until then no session is, and this becomes `return s->tls;`. */
static bool session_tls(const struct smtp_session *s)
{
    return s->tls;
}

static void vreply(struct smtp_session *s, const char *fmt, va_list ap)
{
    char line[1024];
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 3)
        n = (int)sizeof line - 3;
    line[n++] = '\r';
    line[n++] = '\n';
    if (!s->bev) {
        /* Parked (smtp_park.h): only sessions with nothing in flight park, so
           nothing should answer one; should something, it is said, not lost silently. */
        log_error("session %s: reply while its connection is parked, not sent: %.*s", s->id, n - 2, line);
        return;
    }
    bufferevent_write(s->bev, line, (size_t)n);
    smtp_trace_server(s->trace, line, (size_t)n);
    s->reply_class = line[0];
    if (line[0] == '5')
        s->errors++;
}

/* Close once the output has drained: on_write frees the session. Callers have
   just queued a reply, so the output is never empty here and the session is
   never freed under a caller that is still using it. */
static void close_after_reply(struct smtp_session *s)
{
    s->state = SS_CLOSING;
    bufferevent_disable(s->bev, EV_READ);
}

void smtp_session_close_after_reply(struct smtp_session *s)
{
    close_after_reply(s);
}

static void reset_transaction(struct smtp_session *s)
{
    smtp_policy_free(s->policy);      /* cancels its DNS lookups */
    s->policy = NULL;
    smtp_sender_check_cancel(s->sender_check);
    s->sender_check = NULL;
    s->spf_results[0] = s->spf_fields[0] = s->data_refusal[0] = s->spf_domain[0] = '\0';
    s->spf_result = SPF_NONE;
    s->seal_forward = false;
    if (s->have_draft)
        spool_draft_abort(&s->srv->spool, &s->draft);
    s->have_draft = false;
    env_free(&s->env);
    s->data_size = 0;
    s->data_errno = 0;
    s->too_big = false;
    free(s->wbuf);      /* see smtp_session.h: idle sessions hold no write buffer */
    s->wbuf = NULL;
    s->wlen = 0;
    s->wflushed = false;
    smtp_dmtp_reset(s);
}

/* One line per session for operators: who, how, what came of it. */
static void log_summary(const struct smtp_session *s)
{
    log_info("session %s end=%s client=[%s] kind=%s helo=%s tls=%s auth=%s messages=%u rcpts=%u octets=%llu%s%s",
             s->id, s->end_reason ? s->end_reason : "disconnect", s->peer_ip, listen_kind_name(s->kind),
             s->helo[0] ? s->helo : "-", s->tls ? s->tls_version : "no", s->authenticated ? s->auth_user : "no", s->messages, s->rcpts_accepted,
             s->octets, s->last_qid[0] ? " last_id=" : "", s->last_qid);
}

void smtp_session_reset_transaction(struct smtp_session *s)
{
    reset_transaction(s);
}

void smtp_session_timeouts(struct smtp_session *s, bool data)
{
    const struct ferry_config *cfg = s->srv->cfg;
    struct timeval tv = { (time_t)(data ? cfg->data_timeout : cfg->smtp_timeout), 0 };
    bufferevent_set_timeouts(s->bev, &tv, &tv);
}

void smtp_session_free(struct smtp_session *s)
{
    reset_transaction(s);
    if (s->state != SS_PREGREET || s->end_reason)
        log_summary(s);
    smtp_trace_note(s->trace, "session ends: %s", s->end_reason ? s->end_reason : "disconnect");
    smtp_trace_close(s->trace);
    if (s->greet_timer)
        event_free(s->greet_timer);
    smtp_limits_free(s);
    smtp_auth_free(s);
    smtp_gtml_free(s);
    smtp_dmtp_free(s);
    smtp_park_session_gone(s);
    if (s->bev && bufferevent_openssl_get_ssl(s->bev))
        smtp_tls_close(s);
    else if (s->bev)
        bufferevent_free(s->bev);
    free(s);
}

static void greet(struct smtp_session *s)
{
    if (!smtp_dmtp_may_greet(s))
        return;
    s->state = SS_INIT;
    reply(s, "220 %s ESMTP Ferry", s->srv->cfg->hostname);
}

void smtp_session_greet(struct smtp_session *s)
{
    greet(s);
}

static void on_greet_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_session *s = arg;
    if (s->state == SS_PREGREET)
        greet(s);
}

static void refuse_at_connect(struct smtp_session *s, const char *reason, const char *fmt, const char *what)
{
    log_warn("session %s refused connection from %s: %s", s->id, s->peer_ip, reason);
    s->end_reason = "refused";
    reply(s, fmt, s->srv->cfg->hostname, what);
    close_after_reply(s);
}

void smtp_session_start(struct smtp_server *srv, int fd, const struct sockaddr *sa, socklen_t len,
                        const struct listen_addr *listener)
{
    const struct ferry_config *cfg = srv->cfg;
    struct smtp_session *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return;
    }
    s->srv = srv;
    s->listener = listener;
    s->kind = listener->kind;
    qid_new(s->id);
    memcpy(&s->peer, sa, len < sizeof s->peer ? len : sizeof s->peer);
    netaddr_ntop(sa, s->peer_ip, sizeof s->peer_ip);
    s->draft.msg_fd = -1;
    s->draft.has_env = false;
    s->state = SS_PREGREET;
    struct bufferevent *bev = NULL;
    if (s->kind == LISTEN_SMTPS && srv->tls) {
        /* Implicit TLS (RFC 8314): the handshake comes before the greeting. */
        SSL *ssl = SSL_new(srv->tls);
        if (ssl && !(bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                          BEV_OPT_CLOSE_ON_FREE)))
            SSL_free(ssl);
        s->state = SS_HANDSHAKE;
    } else {
        bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!bev) {
        close(fd);
        free(s);
        return;
    }
    /* Link it in first, so every exit path goes through smtp_server_session_gone. */
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    smtp_session_attach(s, bev);

    if (listener->trace_dir[0]) {
        char err[512];
        s->trace = smtp_trace_open(listener->trace_dir, s->id, cfg->trace_max_data, err, sizeof err);
        if (!s->trace)
            log_warn("session %s: no trace: %s", s->id, err);
        smtp_trace_note(s->trace, "connection from [%s]:%u to %s", s->peer_ip, netaddr_port(sa), listener->text);
    }
    const char *detail, *over = smtp_limits_connect(s, &detail);
    if (over) {
        refuse_at_connect(s, over, "421 4.7.0 %s Too many connections%s, try again later", detail);
        return;
    }
    if (srv->conn_rate && !smtp_limits_exempt(s) && !ratelimit_hit(srv->conn_rate, s->peer_ip, smtp_server_now(srv))) {
        refuse_at_connect(s, "over max_connection_rate",
                          "421 4.7.0 %s Too many connections%s, try again later", " per minute from your address");
        return;
    }
    if (smtp_limits_start(s) < 0 || smtp_dmtp_start(s) < 0) {
        refuse_at_connect(s, "out of memory", "421 4.3.0 %s Local error%s, try again later", "");
        return;
    }
    log_info("session %s connect from [%s]:%u kind=%s", s->id, s->peer_ip, netaddr_port(sa),
             listen_kind_name(s->kind));
    s->last_read = smtp_server_now(srv);
    smtp_park_note_active(srv);
    if (s->state != SS_HANDSHAKE)
        smtp_session_begin_greeting(s);
}

void smtp_session_attach(struct smtp_session *s, struct bufferevent *bev)
{
    s->bev = bev;
    bufferevent_setcb(bev, on_read, on_write, on_event, s);
    /* Bound what one client can make us hold: unread input stops being read past
       the high-water mark, and replies it does not read stop command processing
       (see on_read). */
    bufferevent_setwatermark(bev, EV_READ, 0, SESSION_INPUT_MAX);
    struct timeval tv = { (time_t)s->srv->cfg->smtp_timeout, 0 };
    bufferevent_set_timeouts(bev, &tv, &tv);
    if (s->state == SS_HANDSHAKE)   /* a client that closes without close_notify simply left */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

void smtp_session_begin_greeting(struct smtp_session *s)
{
    const struct ferry_config *cfg = s->srv->cfg;
    s->state = SS_PREGREET;
    if (cfg->greeting_delay == 0) {
        greet(s);
        return;
    }
    /* Wait before greeting; a client that speaks first is not following RFC 5321 3.1
       (spamware often does not wait). */
    s->greet_timer = evtimer_new(s->srv->base, on_greet_timer, s);
    struct timeval delay = { (time_t)cfg->greeting_delay, 0 };
    if (!s->greet_timer || evtimer_add(s->greet_timer, &delay) < 0)
        greet(s);
}

void smtp_session_shutdown(struct smtp_session *s)
{
    if (s->parked) {
        /* Its connection is in the holder: dropped, without a 421 (smtp_park.h). */
        s->end_reason = "shutdown";
        smtp_server_session_gone(s->srv, s);
        return;
    }
    /* Sessions with no message at stake are told now; DATA, BDAT chunks and commits
       finish first, and a TLS handshake cannot be answered in clear text. */
    if (s->state == SS_PREGREET || s->state == SS_INIT || s->state == SS_READY || s->state == SS_MAIL ||
        s->state == SS_RCPT || s->state == SS_BDAT || s->state == SS_BDAT_FAILED || s->state == SS_CHECK ||
        s->state == SS_AUTH || s->state == SS_AUTH_WAIT) {
        s->end_reason = "shutdown";
        reply(s, "421 4.3.2 %s Service shutting down, closing connection", s->srv->cfg->hostname);
        close_after_reply(s);
    }
}

/* ---- commands ---------------------------------------------------------------- */

static void do_ehlo(struct smtp_session *s, const struct smtp_cmd *cmd, bool esmtp)
{
    const struct ferry_config *cfg = s->srv->cfg;
    reset_transaction(s);
    str_copy(s->helo, cmd->arg, sizeof s->helo);
    s->esmtp = esmtp;
    s->state = SS_READY;
    if (!esmtp) {
        reply(s, "250 %s Hello %s [%s]", cfg->hostname, s->helo, s->peer_ip);
        return;
    }
    reply(s, "250-%s Hello %s [%s]", cfg->hostname, s->helo, s->peer_ip);
    reply(s, "250-PIPELINING");
    reply(s, "250-SIZE %llu", cfg->message_size_limit);
    reply(s, "250-8BITMIME");
    reply(s, "250-ENHANCEDSTATUSCODES");
    reply(s, "250-SMTPUTF8");
    reply(s, "250-CHUNKING");
    reply(s, "250-DSN");
    if (s->srv->tls && !s->tls && s->kind != LISTEN_SMTPS)
        reply(s, "250-STARTTLS");
    if (smtp_auth_offered(s))
        reply(s, "250-AUTH %s", sasl_mechanisms());
    if (session_tls(s))
        reply(s, "250-REQUIRETLS");     /* RFC 8689 §2: only once TLS is up */
    smtp_dmtp_ehlo(s);
    reply(s, "250 HELP");
}

/* Enough room in the spool for a message of `size` octets (0: unknown) plus a margin? */
static bool spool_has_room(struct smtp_session *s, unsigned long long size)
{
    struct statvfs vfs;
    if (statvfs(s->srv->spool.dir, &vfs) < 0)
        return true;    /* cannot tell; the write itself will say */
    if (vfs.f_flag & ST_RDONLY)
        return false;   /* a read-only spool takes nothing, like a full one */
    unsigned long long avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
    return avail >= SPOOL_MIN_FREE + size;
}

/* Designated senders for our own users: see sender_identity.h. */
static bool user_owns(struct smtp_session *s, const char *address)
{
    return sender_identity_owns(s->srv, s->auth_user, false, address);
}

static void do_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    const struct ferry_config *cfg = s->srv->cfg;
    if (s->state == SS_INIT) {
        reply(s, "503 5.5.1 Send EHLO or HELO first");
        return;
    }
    if (s->state != SS_READY) {
        reply(s, "503 5.5.1 Nested MAIL command (RSET first)");
        return;
    }
    if (s->kind != LISTEN_SMTP && !s->authenticated) {
        /* RFC 6409 4.3: a submission server requires authentication. */
        reply(s, "530 5.7.0 Authentication required");
        return;
    }
    struct smtp_mail_params mp;
    struct smtp_error err;
    if (smtp_mail_params_dmtp(cmd, s->esmtp, session_tls(s), s->dmtp != NULL, &mp, &err) < 0) {
        reply(s, "%d %s %s", err.code, err.enhanced, err.text);
        return;
    }
    unsigned long long size = mp.size;
    if (size > cfg->message_size_limit) {
        reply(s, "552 5.3.4 Message size exceeds fixed limit of %llu octets", cfg->message_size_limit);
        return;
    }
    if (!spool_has_room(s, size)) {
        log_warn("refused mail from [%s]: spool %s is short of space or read-only", s->peer_ip,
                 s->srv->spool.dir);
        reply(s, "452 4.3.1 Insufficient system storage, try again later");
        return;
    }
    env_init(&s->env);
    smtp_dmtp_mail(s, mp.dmtp);
    if (!cmd->null_path && addr_format(&cmd->path, s->env.sender, sizeof s->env.sender) < 0) {
        reply(s, "501 5.1.7 Sender address too long");
        return;
    }
    s->env.body_8bit = mp.body_8bit;
    s->env.smtputf8 = mp.smtputf8;
    s->env.ret = mp.ret;
    str_copy(s->env.envid, mp.envid, sizeof s->env.envid);
    s->env.requiretls = mp.requiretls;
    const struct ferry_config *c = s->srv->cfg;
    /* Whatever the listener: an authenticated session speaks for its user only
       (SECURITY.md, "Sender identity"). The null path stays open for the user's own
       notifications (vacation replies, MDNs); its From: is checked at the end. */
    if (s->authenticated && s->env.sender[0] && !user_owns(s, s->env.sender)) {
        log_info("session %s: user %s may not send as <%s>", s->id, s->auth_user, s->env.sender);
        reply(s, "553 5.7.1 Sender address <%s> is not owned by user %s", s->env.sender, s->auth_user);
        env_free(&s->env);
        return;
    }
    bool stranger = s->kind == LISTEN_SMTP && !s->authenticated &&
                    !settings_is_relay_client(c, (const struct sockaddr *)&s->peer);
    if (stranger && (c->spf_check || c->dmp_check != DMP_CHECK_OFF)) {
        /* Reading pauses (CHECK) until the lookups answer; pipelined commands wait. */
        s->state = SS_CHECK;
        s->in_sender_start = true;
        s->sender_check = smtp_sender_check_start(s->srv, (const struct sockaddr *)&s->peer, s->helo,
                                                  s->env.sender, s->id, on_sender_done, s);
        s->in_sender_start = false;
        return;
    }
    s->state = SS_MAIL;
    reply(s, "250 2.1.0 Sender <%s> ok", s->env.sender);
}

/* "Name: value\r\n", folded after each "; " so lines stay short (the key=value
   pairs of Received-SPF). */
static void fold_field(char *out, size_t outsz, const char *name, const char *value)
{
    struct buf b;
    buf_init(&b, outsz - 1);
    int r = buf_printf(&b, "%s: ", name);
    for (const char *p = value; *p; p++) {
        if (p[0] == ';' && p[1] == ' ') {
            r |= buf_puts(&b, ";\r\n\t");
            p++;
        } else {
            r |= buf_append(&b, p, 1);
        }
    }
    r |= buf_puts(&b, "\r\n");
    str_copy(out, r == 0 && b.data ? b.data : "", outsz);
    buf_free(&b);
}

static void on_sender_done(void *arg, const struct sender_verdict *v)
{
    struct smtp_session *s = arg;
    s->sender_check = NULL;
    if (s->state != SS_CHECK)           /* the session is ending (a timeout, shutdown) */
        return;
    if (v->reply[0]) {
        s->junk++;              /* answered after the command was counted: a refusal is junk too */
        reply(s, "%s", v->reply);
        env_free(&s->env);
        s->state = SS_READY;
    } else {
        str_copy(s->spf_results, v->auth_results, sizeof s->spf_results);
        if (v->received_spf[0])
            fold_field(s->spf_fields, sizeof s->spf_fields, "Received-SPF", v->received_spf);
        str_copy(s->data_refusal, v->data_reply, sizeof s->data_refusal);
        s->spf_result = v->spf;
        str_copy(s->spf_domain, v->spf_domain, sizeof s->spf_domain);
        s->state = SS_MAIL;
        reply(s, "250 2.1.0 Sender <%s> ok", s->env.sender);
    }
    if (!s->in_sender_start) {      /* answered later: read what was pipelined meanwhile */
        bufferevent_enable(s->bev, EV_READ);
        on_read(s->bev, s);
    }
}

static void do_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    const struct ferry_config *cfg = s->srv->cfg;
    if (s->state != SS_MAIL && s->state != SS_RCPT) {
        reply(s, "503 5.5.1 Need MAIL before RCPT");
        return;
    }
    struct smtp_rcpt_params rp;
    struct smtp_error err;
    if (smtp_rcpt_params(cmd, s->esmtp, s->env.smtputf8, &rp, &err) < 0) {
        reply(s, "%d %s %s", err.code, err.enhanced, err.text);
        return;
    }
    if (s->env.nrcpts >= cfg->max_recipients) {
        reply(s, "452 4.5.3 Too many recipients");
        return;
    }
    struct mailbox m = cmd->path;
    if (m.domain_kind == ADDR_DOMAIN_NONE) {
        /* RCPT TO:<Postmaster> (RFC 5321 4.1.1.3): this host's postmaster, which
           lives in the first local domain. */
        str_copy(m.local, "postmaster", sizeof m.local);
        str_copy(m.domain, cfg->local_domains.n ? cfg->local_domains.items[0] : cfg->hostname, sizeof m.domain);
        m.domain_kind = ADDR_DOMAIN_NAME;
    }
    char addr[ADDR_PATH_MAX + 1];
    if (addr_format(&m, addr, sizeof addr) < 0) {
        reply(s, "501 5.1.3 Recipient address too long");
        return;
    }
    if (smtp_dmtp_reply_rcpt(s, &m, addr))
        return;     /* a reply to a DMTP intent message: answered */
    struct relay_client client = {
        .authenticated = s->authenticated,
        .trusted_network = settings_is_relay_client(cfg, (const struct sockaddr *)&s->peer),
    };
    const char *why;
    enum relay_decision route = relay_decide(cfg, &m, &client, &why);
    if (route == RELAY_DENY) {
        log_info("reject RCPT from [%s]: <%s>: %s (from=<%s>)", s->peer_ip, addr, why, s->env.sender);
        reply(s, "554 5.7.1 <%s>: %s", addr, why);
        return;
    }
    char name[ADDR_LOCAL_MAX + 1];
    if (route == RELAY_LOCAL) {
        enum mailbox_name_verdict nv = local_mailbox_name(&m, cfg->recipient_delimiter, name, sizeof name, &why);
        if (nv != MAILBOX_NAME_OK) {
            log_info("reject RCPT from [%s]: <%s>: %s (from=<%s>)", s->peer_ip, addr, why, s->env.sender);
            reply(s, "550 %s <%s>: %s", nv == MAILBOX_NAME_RESERVED ? "5.1.1" : "5.1.3", addr, why);
            return;
        }
        /* local_recipients = known: only what local delivery would take (users,
           mailboxes, aliases, virtual entries, catch-alls); see delivery/local_rcpt.h. */
        char lwhy[300];
        enum local_rcpt_verdict v = cfg->local_recipients == RCPT_ANY ? LOCAL_RCPT_OK
            : local_rcpt_check(cfg, &s->srv->local_maps, addr, lwhy, sizeof lwhy);
        if (v == LOCAL_RCPT_UNKNOWN) {
            log_info("reject RCPT from [%s]: <%s>: %s (from=<%s>)", s->peer_ip, addr, lwhy, s->env.sender);
            if (!strncmp(lwhy, "5.1.1", 5))
                reply(s, "550 5.1.1 <%s>: Recipient address rejected: no such user", addr);
            else
                reply(s, "550 %s", lwhy);
            return;
        }
        if (v == LOCAL_RCPT_TEMPFAIL) {
            log_warn("RCPT from [%s]: <%s> deferred: %s", s->peer_ip, addr, lwhy);
            reply(s, "451 4.3.0 <%s>: Recipient address cannot be checked now; try again later", addr);
            return;
        }
    }
    if (smtp_dmtp_rcpt(s, addr, route == RELAY_LOCAL ? name : NULL) < 0)
        return;
    if (env_add_rcpt(&s->env, addr) < 0) {
        reply(s, "452 4.5.3 Too many recipients");
        return;
    }
    if (route != RELAY_OUTBOUND && smtp_arc_seal_rcpt(s, route == RELAY_INBOUND, addr))
        s->seal_forward = true;
    struct env_rcpt *r = &s->env.rcpts[s->env.nrcpts - 1];
    r->notify = rp.notify;
    r->orcpt_type = rp.orcpt_type;
    str_copy(r->orcpt, rp.orcpt, sizeof r->orcpt);
    s->state = SS_RCPT;
    reply(s, "250 2.1.5 Recipient <%s> ok", addr);
}

static void do_data(struct smtp_session *s)
{
    if (s->state == SS_MAIL) {
        reply(s, "554 5.5.1 No valid recipients");
        return;
    }
    if (s->state == SS_BDAT || s->state == SS_BDAT_FAILED) {
        /* RFC 3030 §2: never both in one transaction. */
        reply(s, "503 5.5.1 DATA cannot follow BDAT in the same transaction (RSET first)");
        return;
    }
    if (s->state != SS_RCPT) {
        reply(s, "503 5.5.1 Need MAIL and RCPT before DATA");
        return;
    }
    const char *dmtp_refusal = smtp_dmtp_data_refusal(s);
    if (dmtp_refusal) {
        reply(s, "%s", dmtp_refusal);
        return;
    }
    const char *refusal = smtp_session_begin_message(s);
    if (refusal) {
        reply(s, "%s", refusal);
        return;
    }
    smtp_data_init(&s->data);
    smtp_data_set_normalize(&s->data, s->srv->cfg->bare_newlines == BARE_NL_NORMALIZE);
    s->state = SS_DATA;
    smtp_session_timeouts(s, true);
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

static void handle_command(struct smtp_session *s, const char *line, size_t len)
{
    if (smtp_dmtp_command(s, line, len))
        return;
    struct smtp_cmd *cmd = malloc(sizeof *cmd);
    if (!cmd) {
        s->end_reason = "no-memory";
        reply(s, "421 4.3.0 Out of memory");
        close_after_reply(s);
        return;
    }
    struct smtp_error err;
    bool utf8 = s->state == SS_MAIL || s->state == SS_RCPT ? s->env.smtputf8 : false;
    if (dmtp_cmd_verb(line, len) == DMTP_VERB_GTML) {     /* DMTP pull (smtp_gtml.h) */
        smtp_gtml_command(s, line, len);
        free(cmd);
        return;
    }
    if (smtp_cmd_parse(line, len, utf8, cmd, &err) < 0) {
        reply(s, "%d %s %s", err.code, err.enhanced, err.text);
        free(cmd);
        return;
    }
    s->cmd_junk = smtp_limits_junk_verb(cmd->verb);
    const struct ferry_config *cfg = s->srv->cfg;
    if (cmd->bare_path) {
        bool mail = cmd->verb == SMTP_VERB_MAIL;
        if (cfg->strict_envelopes) {
            reply(s, "501 %s Syntax: %s (angle brackets required)", mail ? "5.1.7" : "5.1.3",
                  mail ? "MAIL FROM:<address>" : "RCPT TO:<address>");
            free(cmd);
            return;
        }
        if (!s->noted_bare_path)        /* once: a client must not turn each command into a log line */
            log_info("session %s: note: %s without angle brackets accepted from [%s] (strict_envelopes = no; "
                     "noted once per session)", s->id, mail ? "MAIL FROM" : "RCPT TO", s->peer_ip);
        s->noted_bare_path = true;
    }
    switch (cmd->verb) {
    case SMTP_VERB_EHLO:
    case SMTP_VERB_HELO:
        do_ehlo(s, cmd, cmd->verb == SMTP_VERB_EHLO);
        break;
    case SMTP_VERB_MAIL:
        do_mail(s, cmd);
        break;
    case SMTP_VERB_RCPT:
        do_rcpt(s, cmd);
        break;
    case SMTP_VERB_DATA:
        do_data(s);
        break;
    case SMTP_VERB_RSET:
        reset_transaction(s);
        if (s->state != SS_INIT)
            s->state = SS_READY;
        reply(s, "250 2.0.0 Ok");
        break;
    case SMTP_VERB_NOOP:
        reply(s, "250 2.0.0 Ok");
        break;
    case SMTP_VERB_QUIT:
        smtp_gtml_quit(s);
        s->end_reason = "quit";
        reply(s, "221 2.0.0 %s Bye", cfg->hostname);
        close_after_reply(s);
        break;
    case SMTP_VERB_VRFY:
        reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
        break;
    case SMTP_VERB_EXPN:
        reply(s, "502 5.5.1 EXPN not available");
        break;
    case SMTP_VERB_HELP:
        reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP");
        break;
    case SMTP_VERB_BDAT:
        smtp_bdat_command(s, cmd);
        break;
    case SMTP_VERB_STARTTLS:
        smtp_tls_starttls(s, cmd);
        break;
    case SMTP_VERB_AUTH:
        smtp_auth_command(s, cmd);
        break;
    }
    free(cmd);
}

/* ---- reading ------------------------------------------------------------------ */

/* Feed buffered input to the data parser; true when the message is complete. */
static bool read_data(struct smtp_session *s, struct evbuffer *in)
{
    char out[SMTP_DATA_OUT_MAX(4096)];
    while (evbuffer_get_length(in) > 0 && !s->data.done) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, 4096, NULL, &v, 1) < 1)
            break;
        size_t n = v.iov_len < 4096 ? v.iov_len : 4096, olen;
        size_t used = smtp_data_feed(&s->data, v.iov_base, n, out, &olen);
        smtp_trace_data(s->trace, out, olen);
        smtp_session_content(s, out, olen);
        evbuffer_drain(in, used);
    }
    return s->data.done;
}

/* States in which no more input is taken: the session waits for something else
   (DNS, a commit, a handshake, a delay) or is ending. */
static bool reading_paused(const struct smtp_session *s)
{
    switch (s->state) {
    case SS_CLOSING: case SS_COMMIT: case SS_PREGREET: case SS_CHECK: case SS_HANDSHAKE: case SS_AUTH_WAIT:
        return true;
    default:
        return false;
    }
}

void smtp_session_resume(struct smtp_session *s)
{
    bufferevent_enable(s->bev, EV_READ);
    on_read(s->bev, s);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct smtp_session *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    s->last_read = smtp_server_now(s->srv);     /* how long it has been idle (smtp_park.h) */
    if (s->state == SS_PREGREET && evbuffer_get_length(in) > 0) {
        log_info("session %s: [%s] talked before the greeting; refused", s->id, s->peer_ip);
        smtp_trace_note(s->trace, "client talked before the greeting");
        evbuffer_drain(in, evbuffer_get_length(in));
        s->end_reason = "early-talker";
        reply(s, "554 5.5.1 %s Protocol error: you talked before the greeting", s->srv->cfg->hostname);
        close_after_reply(s);
        return;
    }
    while (!reading_paused(s)) {
        if (smtp_limits_enforce(s))
            return;
        if (s->state == SS_DATA) {
            if (!read_data(s, in))
                return;
            smtp_session_finish_message(s);
            continue;
        }
        if (s->state == SS_CHUNK) {
            if (!smtp_bdat_read(s, in))
                return;
            smtp_bdat_chunk_done(s);
            continue;
        }
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        if (evbuffer_get_length(bufferevent_get_output(bev)) > SESSION_OUTPUT_MAX) {
            /* A pipelining client that does not read its replies: wait for on_write. */
            bufferevent_disable(bev, EV_READ);
            s->output_blocked = true;
            return;
        }
        /* A SASL response may be longer than a command (RFC 4954 4: 12288 octets). */
        size_t limit = s->state == SS_AUTH ? SASL_LINE_MAX + 2 : SMTP_CMD_LINE_MAX;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
        if (eol.pos < 0) {
            if (avail >= limit) {
                /* Never buffer a line without bound: skip it and answer at its end. */
                evbuffer_drain(in, avail);
                s->discarding_line = true;
            }
            return;
        }
        size_t total = (size_t)eol.pos + 1;
        s->cmd_junk = false;        /* what this line does decides whether it is junk */
        s->reply_class = 0;
        if (s->discarding_line || total > limit) {
            evbuffer_drain(in, total);
            s->discarding_line = false;
            if (s->state == SS_AUTH) {          /* an oversize AUTH exchange ends it */
                smtp_auth_free(s);
                s->state = SS_READY;
                reply(s, "500 5.5.6 Authentication exchange line is too long");
            } else {
                reply(s, "500 5.5.2 Line too long (limit is %d octets with CRLF)", SMTP_CMD_LINE_MAX);
            }
            smtp_limits_count(s);
            continue;
        }
        char line[SASL_LINE_MAX + 3];
        evbuffer_remove(in, line, total);
        line[total] = '\0';
        smtp_trace_client(s->trace, line, total, s->state == SS_AUTH);
        if (total < 2 || line[total - 2] != '\r') {
            reply(s, "500 5.5.2 Syntax error: command lines must end with CRLF, not a bare LF");
        } else if (s->state == SS_AUTH) {
            smtp_auth_line(s, line, total - 2);
        } else {
            handle_command(s, line, total - 2);
        }
        smtp_limits_count(s);
        if (!reading_paused(s) && s->errors >= s->srv->cfg->max_errors) {
            log_warn("session %s: disconnecting [%s]: %u errors", s->id, s->peer_ip, s->errors);
            s->end_reason = "errors";
            reply(s, "421 4.7.0 %s Too many errors, closing connection", s->srv->cfg->hostname);
            close_after_reply(s);
        }
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct smtp_session *s = arg;
    if (s->state == SS_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        smtp_server_session_gone(s->srv, s);
        return;
    }
    if (s->output_blocked && !reading_paused(s)) {
        s->output_blocked = false;
        bufferevent_enable(bev, EV_READ);
        on_read(bev, s);
    }
}

void smtp_session_timed_out(struct smtp_session *s)
{
    log_info("session %s: timeout from [%s] in state %d", s->id, s->peer_ip, (int)s->state);
    s->end_reason = "timeout";
    bufferevent_enable(s->bev, EV_WRITE);
    reply(s, "421 4.4.2 %s Timeout, closing connection", s->srv->cfg->hostname);
    close_after_reply(s);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_session *s = arg;
    if ((what & BEV_EVENT_CONNECTED) && s->state == SS_HANDSHAKE) {
        smtp_tls_established(s);
        return;
    }
    if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) && s->state == SS_HANDSHAKE) {
        smtp_tls_failed(s);
        smtp_server_session_gone(s->srv, s);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (s->state == SS_COMMIT)
            return;
        if (s->state == SS_CLOSING) {     /* the peer stopped reading our last reply */
            smtp_server_session_gone(s->srv, s);
            return;
        }
        smtp_session_timed_out(s);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (s->state == SS_DATA || s->state == SS_CHUNK) {
            log_info("session %s: lost connection from [%s] during %s", s->id, s->peer_ip,
                     s->state == SS_DATA ? "DATA" : "BDAT");
            s->end_reason = "lost-in-data";
        }
        if (s->state == SS_COMMIT) {
            /* The commit will finish; the message is kept (the client may send it
               again: at-least-once, never lost). Free it then. */
            log_info("session %s: client went away while its message is being committed; keeping it", s->id);
            s->state = SS_CLOSING;
            return;
        }
        log_debug("disconnect from [%s]", s->peer_ip);
        smtp_server_session_gone(s->srv, s);
    }
}

/* smtp_dmtp_reply — see smtp_dmtp.h: replies to intent messages, and the regular
   correspondents of our users.

   A reply is mail to dmtp-pull+ID.H@<hostname or a local domain> (or to plain
   dmtp-pull@..., the token then found in In-Reply-To, References or Subject). It
   counts only from the notice's own user: an authenticated session whose user is
   the notice's user, or a ferry-sendmail drop by the local login of that name; and
   only with the right H. It sets the notice to NOTICE_FETCH_REQUESTED and nudges
   the queue process's pull client, so the pull starts now rather than at its next
   periodic scan (the user is waiting for the message), and is consumed: the reply message itself is
   discarded, never delivered (its text says nothing we need), and one log line per
   notice says so. Over SMTP a stranger's RCPT to that address is refused 550, and
   so is a wrong token (one reply for every failure; the log has the reason). */
#include "lib/log.h"
#include "lib/msg_header.h"
#include "pull/intent.h"
#include "smtpd/smtp_dmtp_int.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REPLY_HEADER_MAX (64 * 1024)    /* octets of a reply read for its token */

/* Is m our intent-reply address? */
static bool is_pull_address(const struct smtp_server *srv, const struct mailbox *m)
{
    const size_t ll = strlen(INTENT_LOCAL_PART);
    if (m->domain_kind != ADDR_DOMAIN_NAME || !str_nieq(m->local, INTENT_LOCAL_PART, ll) ||
        (m->local[ll] && !strchr("+-_=", m->local[ll])))
        return false;
    return str_ieq(m->domain, srv->cfg->hostname) || settings_is_local_domain(srv->cfg, m->domain);
}

/* The token in a reply's header section (In-Reply-To, References, Subject). */
static int token_from_header(const char *msg, size_t len, char id[NOTICE_ID_LEN + 1], char h[NOTICE_H_LEN + 1])
{
    struct msg_header mh;
    msg_header_init(&mh, NULL);
    msg_header_watch(&mh, "In-Reply-To", 1);
    msg_header_watch(&mh, "References", 1);
    msg_header_watch(&mh, "Subject", 1);
    msg_header_feed(&mh, msg, len, NULL);
    msg_header_finish(&mh);
    const struct msg_header_value *irt = msg_header_value(&mh, "In-Reply-To", 0);
    const struct msg_header_value *refs = msg_header_value(&mh, "References", 0);
    const struct msg_header_value *subj = msg_header_value(&mh, "Subject", 0);
    int r = intent_reply_token(NULL, irt && irt->data ? irt->data : NULL, NULL, id, h);
    if (r < 0)
        r = intent_reply_token(NULL, refs && refs->data ? refs->data : NULL, subj && subj->data ? subj->data : NULL,
                               id, h);
    msg_header_free(&mh);
    return r;
}

/* Check that user may reply to notice id with h; with act, mark it fetch-requested.
   0 ok; -1 refused (the reason logged under log_id). */
static int request_fetch(struct smtp_server *srv, const char *who, const char *id, const char *h, bool act,
                         const char *log_id)
{
    char user[PULL_USER_MAX + 1], err[512];
    const char *why;
    struct pull_notice n;
    if (pull_user_name(who, user, sizeof user, &why) < 0) {
        log_info("%s: dmtp reply from \"%s\" refused: %s", log_id, who, why);
        return -1;
    }
    int r = notice_get(srv->pull->notices, user, id, &n, err, sizeof err);
    if (r != 0) {
        log_info("%s: dmtp reply from %s for notice %s refused: %s", log_id, user, id,
                 r < 0 ? err : "no such notice of this user");
        return -1;
    }
    if (!notice_h_ok(srv->pull->notices, &n, h)) {
        log_info("%s: dmtp reply from %s for notice %s refused: wrong token", log_id, user, id);
        return -1;
    }
    if (!act)
        return 0;
    if (notice_update(srv->pull->notices, user, id, NOTICE_FETCH_REQUESTED, 0, time(NULL), err, sizeof err) != 0) {
        log_error("%s: dmtp reply from %s for notice %s: cannot update it: %s", log_id, user, id, err);
        return -1;
    }
    log_info("%s: dmtp notice %s of %s: fetch requested by reply (msid=%s from=<%s>); the reply is discarded",
             log_id, id, user, n.msid, n.sender);
    smtp_server_pull_nudge(srv);
    return 0;
}

bool smtp_dmtp_reply_rcpt(struct smtp_session *s, const struct mailbox *m, const char *addr)
{
    struct smtp_dmtp *d = s->dmtp;
    if (!d || !is_pull_address(s->srv, m))
        return false;
    char id[NOTICE_ID_LEN + 1] = "", h[NOTICE_H_LEN + 1] = "";
    bool tokened = intent_reply_token(m->local, NULL, NULL, id, h) == 0;
    bool ok = s->authenticated && d->nreplies < DMTP_MAX_REPLIES &&
              (!tokened || request_fetch(s->srv, s->auth_user, id, h, false, s->id) == 0);
    if (!s->authenticated)
        log_info("session %s: dmtp reply to <%s> from unauthenticated [%s] refused", s->id, addr, s->peer_ip);
    if (!ok) {
        smtp_session_reply(s, "550 5.7.1 <%s>: only the recipient of this notice may reply to it", addr);
        return true;
    }
    struct dmtp_reply_req *q = &d->replies[d->nreplies++];
    str_copy(q->user, s->auth_user, sizeof q->user);
    str_copy(q->id, tokened ? id : "", sizeof q->id);
    str_copy(q->h, tokened ? h : "", sizeof q->h);
    if (s->state == SS_MAIL)
        s->state = SS_RCPT;
    smtp_session_reply(s, "250 2.1.5 <%s> ok: reply to a pull notice", addr);
    return true;
}

/* The draft's header section (what was written so far), NUL-terminated; NULL when
   it cannot be read. */
static char *read_draft_head(struct smtp_session *s, size_t *len)
{
    char *b = malloc(REPLY_HEADER_MAX + 1);
    if (!b)
        return NULL;
    ssize_t n = pread(s->draft.msg_fd, b, REPLY_HEADER_MAX, 0);
    if (n < 0) {
        free(b);
        return NULL;
    }
    b[n] = '\0';
    *len = (size_t)n;
    return b;
}

bool smtp_dmtp_reply_pending(const struct smtp_session *s)
{
    return s->dmtp && s->dmtp->nreplies > 0;
}

bool smtp_dmtp_reply_finish(struct smtp_session *s)
{
    struct smtp_dmtp *d = s->dmtp;
    if (!d || d->nreplies == 0)
        return false;
    char *head = NULL;
    size_t hlen = 0;
    char hid[NOTICE_ID_LEN + 1], hh[NOTICE_H_LEN + 1];
    bool have_header_token = false;
    for (size_t i = 0; i < d->nreplies; i++) {
        struct dmtp_reply_req *q = &d->replies[i];
        if (q->id[0]) {
            request_fetch(s->srv, q->user, q->id, q->h, true, s->id);
            continue;
        }
        if (!head && (head = read_draft_head(s, &hlen)) != NULL)
            have_header_token = token_from_header(head, hlen, hid, hh) == 0;
        if (!have_header_token)
            log_info("session %s: dmtp reply from %s carries no notice token; discarded", s->id, q->user);
        else
            request_fetch(s->srv, q->user, hid, hh, true, s->id);
    }
    free(head);
    d->nreplies = 0;
    if (s->env.nrcpts > 0)
        return false;       /* the same message goes on to its other recipients */
    log_info("session %s: dmtp reply message from %s consumed (not delivered)", s->id, s->auth_user);
    smtp_session_reply(s, "250 2.0.0 Ok: reply to the pull notice taken");
    smtp_session_reset_transaction(s);
    smtp_limits_transaction_done(s);
    s->state = SS_READY;
    return true;
}

void smtp_dmtp_committed(struct smtp_session *s)
{
    if (s->dmtp && s->authenticated)
        smtp_pull_note_sent(s->srv, s->auth_user, &s->env);
}

void smtp_pull_note_sent(struct smtp_server *srv, const char *user, const struct envelope *e)
{
    if (!srv->pull)
        return;
    char u[PULL_USER_MAX + 1];
    const char *why;
    if (pull_user_name(user, u, sizeof u, &why) < 0)
        return;
    time_t now = time(NULL);
    for (size_t i = 0; i < e->nrcpts; i++) {
        const char *at = strrchr(e->rcpts[i].addr, '@');
        if (!at || settings_is_local_domain(srv->cfg, at + 1))
            continue;
        if (pull_correspondent_note(srv->pull->lists, u, e->rcpts[i].addr, PULL_CORR_SENT, now) < 0)
            log_warn("cannot note <%s> as a correspondent of %s", e->rcpts[i].addr, u);
    }
}

void smtp_pull_pickup_replies(struct smtp_server *srv, const char *user, struct envelope *e, const char *msg,
                              size_t len)
{
    if (!srv->pull)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < e->nrcpts; i++) {
        struct mailbox m;
        const char *why;
        bool ours = addr_parse_mailbox(e->rcpts[i].addr, strlen(e->rcpts[i].addr), true, &m, &why) == 0 &&
                    is_pull_address(srv, &m);
        if (!ours) {
            if (kept != i)
                e->rcpts[kept] = e->rcpts[i];
            kept++;
            continue;
        }
        char id[NOTICE_ID_LEN + 1], h[NOTICE_H_LEN + 1], log_id[128];
        snprintf(log_id, sizeof log_id, "pickup from %s", user);
        if (intent_reply_token(m.local, NULL, NULL, id, h) == 0 || token_from_header(msg, len, id, h) == 0)
            request_fetch(srv, user, id, h, true, log_id);      /* refused: logged, dropped silently (-03 §3.5) */
        else
            log_info("%s: dmtp reply carries no notice token; discarded", log_id);
    }
    e->nrcpts = kept;
}

/* smtp_dmtp — see smtp_dmtp.h: the stores, MAIL ... DMTP, RCPT classification,
   MSID, the DATA refusal and the dispatch of the DMTP verbs.

   MSID ordering (crash safety): the notices of every accepted recipient are
   written in one transaction (durable when notice_add returns), then one intent
   message per pending notice is queued with spool_enqueue (fsync'd and renamed
   into queue/ before it returns), and only then is 250 sent. A crash before the
   notices leaves nothing and the sender was told nothing: it sends MSID again. A
   crash between notices and intent messages leaves notices the user can still see
   with `ferryctl pull list` (and the sender, unanswered, sends MSID again: a
   second notice, never a lost one). When an intent message cannot be queued the
   notices just written are dropped again and the sender gets 451. */
#include "auth/spf.h"
#include "delivery/local_rcpt.h"
#include "lib/buf.h"
#include "lib/ipc.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/netaddr.h"
#include "lib/ratelimit.h"
#include "pull/intent.h"
#include "smtpd/smtp_proc.h"
#include "smtpd/smtp_dmtp_int.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INTENT_MSG_MAX (64 * 1024)

int smtp_pull_open(struct smtp_server *srv)
{
    const struct ferry_config *cfg = srv->cfg;
    if (cfg->pull_mode != PULL_MODE_ON)
        return 0;
    char err[512];
    struct smtp_pull *p = calloc(1, sizeof *p);
    if (!p) {
        log_error("DMTP: out of memory");
        return -1;
    }
    srv->pull = p;
    if (!srv->db) {
        log_error("DMTP: pull_mode = on needs the data_dir database");
        return -1;
    }
    if (msid_key_load(cfg->data_dir, &p->key, err, sizeof err) < 0 ||
        !(p->lists = pull_lists_open(srv->db, true, err, sizeof err))) {
        log_error("DMTP: %s", err);
        return -1;
    }
    /* A list that cannot be opened does not stop the server: mail that needs it
       is deferred (451 4.3.0) until it can be read again. */
    if (err[0])
        log_error("DMTP: %s; classification fails (451 4.3.0) until it can be opened", err);
    if (!(p->notices = notice_open(srv->db, &p->key, err, sizeof err)) ||
        !(p->grey = greylist_open(srv->db, err, sizeof err))) {
        log_error("DMTP: %s", err);
        return -1;
    }
    return 0;
}

void smtp_pull_close(struct smtp_server *srv)
{
    struct smtp_pull *p = srv->pull;
    if (!p)
        return;
    if (p->grey)
        greylist_close(p->grey);
    if (p->notices)
        notice_close(p->notices);
    if (p->lists)
        pull_lists_close(p->lists);
    ratelimit_free(p->intent_rate);
    memset(&p->key, 0, sizeof p->key);
    free(p);
    srv->pull = NULL;
}

void smtp_dmtp_reset(struct smtp_session *s)
{
    struct smtp_dmtp *d = s->dmtp;
    if (!d)
        return;
    d->mail_dmtp = false;
    d->txn_known = false;
    d->txn_unreadable = false;
    d->nrcpts = 0;
    d->nreplies = 0;
}

void smtp_dmtp_mail(struct smtp_session *s, bool dmtp)
{
    if (s->dmtp)
        s->dmtp->mail_dmtp = dmtp;
}

static int note_rcpt(struct smtp_dmtp *d, const char *addr, const char *user, bool allowed, bool capped)
{
    if (d->nrcpts == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        struct dmtp_rcpt_info *r = realloc(d->rcpts, cap * sizeof *r);
        if (!r)
            return -1;
        d->rcpts = r;
        d->cap = cap;
    }
    struct dmtp_rcpt_info *r = &d->rcpts[d->nrcpts++];
    str_copy(r->addr, addr, sizeof r->addr);
    str_copy(r->user, user ? user : "", sizeof r->user);
    r->allowed = allowed;
    r->capped = capped;
    return 0;
}

/* Is MAIL FROM's domain authenticated for this transaction? SPF pass for exactly
   that domain; DMARC cannot act here, before any message (RFC-NOTES.md). */
static bool sender_authenticated(const struct smtp_session *s)
{
    const char *at = strrchr(s->env.sender, '@');
    if (!at || s->spf_result != SPF_PASS)
        return false;
    size_t n = strlen(at + 1);
    return n == strlen(s->spf_domain) && str_nieq(at + 1, s->spf_domain, n);
}

/* The user's own lists (and correspondents) on this sender. A deny applies to the
   claimed address as it stands (it can only refuse); an allow only when the address
   is authenticated, else anyone could claim a user's friend and skip the pull.
   -1 when a list cannot be read: the caller defers the RCPT, since "not on the
   list" would let a denied sender be treated as unclassified and an allowed one
   be made to wait. */
static int classify_sender(struct smtp_session *s, const char *user, struct pull_verdict *v)
{
    struct smtp_pull *p = s->srv->pull;
    int corr = 0;
    if (s->srv->cfg->pull_auto_allow && s->env.sender[0] &&
        (corr = pull_correspondent_is(p->lists, user, s->env.sender)) < 0) {
        log_warn("session %s: cannot read the DMTP correspondents of %s; RCPT deferred", s->id, user);
        return -1;
    }
    if (pull_classify_sender_db(p->lists, user, s->env.sender, corr == 1, v) < 0) {
        log_warn("session %s: cannot read the DMTP sender list of %s; RCPT deferred", s->id, user);
        return -1;
    }
    if (v->cls == PULL_ALLOWED && !sender_authenticated(s)) {
        log_info("session %s: dmtp %s's allow of <%s> not applied: the sender's domain is not authenticated "
                 "(no SPF pass) (%s)", s->id, user, s->env.sender, v->reason);
        v->cls = PULL_UNCLASSIFIED;
        str_copy(v->reason, "sender allowed but not authenticated", sizeof v->reason);
    }
    return 0;
}

/* The user who owns local address addr, found as local delivery finds it (aliases,
   virtual map, sub-addressing; include files unread): the first mailbox among its
   targets. Notices, intent-message replies and per-user lists are keyed by that user,
   so an alias's mail is decided by the one who reads it. name (the address's own
   mailbox name) when the expansion names no mailbox or cannot be done now. */
static void owner_of(struct smtp_session *s, const char *addr, const char *name, char *out, size_t outsz)
{
    const struct ferry_config *cfg = s->srv->cfg;
    const char *bad;
    str_copy(out, name, outsz);
    if (local_maps_refresh(cfg, &s->srv->local_maps, &bad) < 0)
        return;
    struct local_rcpt_arg ra;
    struct local_resolver r;
    local_resolver_init(&r, &ra, cfg, &s->srv->local_maps);
    r.check_only = true;
    struct local_targets ts = { 0 };
    struct delivery_status st;
    if (local_resolve(&r, addr, &ts, &st) == 0)
        for (size_t i = 0; i < ts.n; i++)
            if (ts.v[i].kind == LT_MAILBOX) {
                str_copy(out, ts.v[i].arg, outsz);
                break;
            }
    local_targets_free(&ts);
}

int smtp_dmtp_rcpt(struct smtp_session *s, const char *addr, const char *local_user)
{
    struct smtp_dmtp *d = s->dmtp;
    if (!d)
        return 0;
    const struct ferry_config *cfg = s->srv->cfg;
    enum pull_class pc = smtp_dmtp_txn_class(s);
    if (d->txn_unreadable) {
        smtp_dmtp_say(s, DMTP_R_PEER_UNREADABLE);
        return -1;
    }
    char user[PULL_USER_MAX + 1] = "";
    const char *why;
    bool allowed = pc == PULL_ALLOWED;
    char owner[LOCAL_TARGET_MAX];
    if (local_user)
        owner_of(s, addr, local_user, owner, sizeof owner);
    if (local_user && pull_user_name(owner, user, sizeof user, &why) < 0)
        user[0] = '\0';
    if (user[0] && !s->authenticated && s->kind == LISTEN_SMTP &&
        !settings_is_relay_client(cfg, (const struct sockaddr *)&s->peer)) {
        struct pull_verdict v;
        if (classify_sender(s, user, &v) < 0) {
            smtp_dmtp_say(s, DMTP_R_USER_UNREADABLE);
            return -1;
        }
        if (v.cls == PULL_DENIED) {
            log_info("session %s: dmtp reject RCPT <%s> from=<%s> [%s]: %s", s->id, addr, s->env.sender,
                     s->peer_ip, v.reason);
            smtp_dmtp_say(s, DMTP_R_USER_DENIED);
            return -1;
        }
        if (v.cls == PULL_ALLOWED)
            allowed = true;
        if (pc == PULL_UNCLASSIFIED && !d->mail_dmtp && !allowed) {
            /* A legacy sender (-03 §3.8): pull_legacy decides. */
            if (cfg->pull_legacy == PULL_LEGACY_REJECT) {
                log_info("session %s: dmtp reject legacy RCPT <%s> from=<%s> [%s]", s->id, addr, s->env.sender,
                         s->peer_ip);
                smtp_dmtp_say(s, DMTP_R_LEGACY_REJECT);
                return -1;
            }
            if (cfg->pull_legacy == PULL_LEGACY_GREYLIST) {
                struct greylist_params gp = { (time_t)cfg->pull_greylist_delay, (time_t)cfg->pull_greylist_window,
                                              (time_t)cfg->pull_greylist_lifetime };
                enum greylist_verdict gv;
                const char *reason = "";
                if (greylist_check(s->srv->pull->grey, &gp, (const struct sockaddr *)&s->peer, s->env.sender, addr,
                                   time(NULL), &gv, &reason) < 0) {
                    /* A broken store must not stop mail: let it through, loudly. */
                    log_warn("session %s: greylist store failed for <%s>; accepting", s->id, addr);
                } else if (gv == GREYLIST_DEFER) {
                    log_info("session %s: dmtp greylisted RCPT <%s> from=<%s> [%s]: %s", s->id, addr,
                             s->env.sender, s->peer_ip, reason);
                    smtp_dmtp_say(s, DMTP_R_GREYLISTED);
                    return -1;
                } else {
                    log_info("session %s: dmtp greylist pass <%s> from=<%s> [%s]: %s", s->id, addr,
                             s->env.sender, s->peer_ip, reason);
                }
            }
        }
    }
    /* A DMTP sender's notice for this user will wait for the user: within the caps? */
    bool capped = false;
    if (user[0] && d->mail_dmtp && pc == PULL_UNCLASSIFIED && !allowed && !s->authenticated) {
        char reply[ADDR_PATH_MAX + 160];
        if (smtp_dmtp_cap_refusal(s, user, addr, reply, sizeof reply)) {
            smtp_session_reply(s, "%s", reply);
            return -1;
        }
        capped = true;
    }
    if (note_rcpt(d, addr, user, allowed, capped) < 0) {
        smtp_session_reply(s, "452 4.3.0 Out of memory, try again later");
        return -1;
    }
    return 0;
}

const char *smtp_dmtp_data_refusal(struct smtp_session *s)
{
    struct smtp_dmtp *d = s->dmtp;
    if (!d || !d->mail_dmtp || smtp_dmtp_txn_class(s) != PULL_UNCLASSIFIED)
        return NULL;
    const struct dmtp_reply *r = dmtp_reply(DMTP_R_DATA_REFUSED);
    snprintf(d->refusal, sizeof d->refusal, "%d %s %s", r->code, r->enhanced, r->text);
    log_info("session %s: dmtp refused DATA from unclassified [%s] from=<%s>", s->id, s->peer_ip, s->env.sender);
    return d->refusal;
}

static const struct dmtp_rcpt_info *find_rcpt(const struct smtp_dmtp *d, const char *addr)
{
    for (size_t i = 0; i < d->nrcpts; i++)
        if (!strcmp(d->rcpts[i].addr, addr))
            return &d->rcpts[i];
    return NULL;
}

/* The intent message for n as a draft in incoming/: a complete local message from
   the null sender (nothing is ever bounced for it). Committed by the caller with
   the others of the MSID. 0 ok; -1 with errno (nothing left behind). */
static int draft_intent(struct smtp_session *s, const struct pull_notice *n, time_t now, struct spool_draft *d,
                        char id[QID_LEN + 1])
{
    struct buf b;
    buf_init(&b, INTENT_MSG_MAX);
    struct envelope e;
    env_init(&e);
    int r = -1;
    if (intent_build(n, s->srv->cfg->hostname, now, &b) < 0 || env_add_rcpt(&e, n->recipient) < 0)
        goto out;
    if (spool_draft_new(&s->srv->spool, d) < 0)
        goto out;
    str_copy(e.id, d->id, sizeof e.id);
    e.size = b.len;
    e.arrival = now;
    str_copy(e.client_addr, s->peer_ip, sizeof e.client_addr);
    str_copy(e.client_helo, s->helo, sizeof e.client_helo);
    str_copy(e.protocol, "dmtp", sizeof e.protocol);
    e.body_8bit = true;     /* its body is UTF-8 */
    if (fd_write_all(d->msg_fd, b.data, b.len) < 0 || spool_draft_put_env(&s->srv->spool, d, &e) < 0) {
        int saved = errno;
        spool_draft_abort(&s->srv->spool, d);
        errno = saved;
        goto out;
    }
    str_copy(id, d->id, QID_LEN + 1);
    r = 0;
out:
    env_free(&e);
    buf_free(&b);
    return r;
}

/* Every pending notice's intent message, committed together (one group commit:
   spool_commit's single directory fsync for the batch, not one per recipient).
   0 ok; -1 nothing queued. */
static int queue_intents(struct smtp_session *s, const struct pull_notice *n, size_t count, time_t now)
{
    struct spool_draft *d = calloc(count, sizeof *d), **dp = calloc(count, sizeof *dp);
    char (*ids)[QID_LEN + 1] = calloc(count, sizeof *ids);
    const struct pull_notice **who = calloc(count, sizeof *who);
    size_t k = 0;
    int r = -1;
    if (!d || !dp || !ids || !who)
        goto out;
    for (size_t i = 0; i < count; i++) {
        if (n[i].state != NOTICE_PENDING)
            continue;
        if (draft_intent(s, &n[i], now, &d[k], ids[k]) < 0) {
            for (size_t j = 0; j < k; j++)
                spool_draft_abort(&s->srv->spool, &d[j]);
            goto out;
        }
        dp[k] = &d[k];
        who[k++] = &n[i];
    }
    if (k && spool_commit(&s->srv->spool, dp, k) < 0)   /* aborts the drafts itself */
        goto out;
    for (size_t j = 0; j < k; j++) {
        ipc_chan_send(s->srv->parent, PROC_QUEUE_NEW, ids[j], QID_LEN);
        log_msg(LOG_LVL_INFO, ids[j], "dmtp intent message for notice %s to=<%s> msid=%s", who[j]->id,
                who[j]->recipient, who[j]->msid);
    }
    r = 0;
out:
    free(d);
    free(dp);
    free(ids);
    free(who);
    return r;
}

static void msid_command(struct smtp_session *s, const char *line, size_t len)
{
    struct smtp_dmtp *d = s->dmtp;
    if (s->state != SS_RCPT || s->env.nrcpts == 0) {
        smtp_dmtp_say(s, DMTP_R_MSID_NO_RCPT);
        return;
    }
    struct dmtp_cmd cmd;
    struct dmtp_reply err;
    if (dmtp_cmd_parse(line, len, s->env.smtputf8, &cmd, &err) < 0) {
        smtp_session_reply(s, "%d %s %s", err.code, err.enhanced, err.text);
        return;
    }
    size_t count = s->env.nrcpts;
    struct pull_notice *n = calloc(count, sizeof *n);
    if (!n) {
        smtp_session_reply(s, "451 4.3.0 Out of memory, try again later");
        return;
    }
    bool peer_allowed = smtp_dmtp_txn_class(s) == PULL_ALLOWED;
    for (size_t i = 0; i < count; i++) {
        const struct dmtp_rcpt_info *ri = find_rcpt(d, s->env.rcpts[i].addr);
        if (!ri || !ri->user[0]) {
            /* Notices are for our own mailboxes; relayed mail has no one to tell. */
            smtp_session_reply(s, "554 5.7.1 <%s>: MSID only for local recipients; use DATA", s->env.rcpts[i].addr);
            free(n);
            return;
        }
        str_copy(n[i].user, ri->user, sizeof n[i].user);
        str_copy(n[i].msid, cmd.msid, sizeof n[i].msid);
        str_copy(n[i].sender, s->env.sender, sizeof n[i].sender);
        str_copy(n[i].recipient, ri->addr, sizeof n[i].recipient);
        str_copy(n[i].subject, cmd.subject, sizeof n[i].subject);
        str_copy(n[i].peer_ip, s->peer_ip, sizeof n[i].peer_ip);
        str_copy(n[i].peer_name, d->fcrdns, sizeof n[i].peer_name);
        n[i].state = peer_allowed || ri->allowed ? NOTICE_AUTO : NOTICE_PENDING;
        char reply[ADDR_PATH_MAX + 160];
        if (n[i].state == NOTICE_PENDING && !ri->capped &&
            smtp_dmtp_cap_refusal(s, ri->user, ri->addr, reply, sizeof reply)) {
            /* MAIL without DMTP (-00 clients): the caps are checked here instead of at RCPT */
            smtp_session_reply(s, "%s", reply);
            free(n);
            return;
        }
    }
    const struct ferry_config *cfg = s->srv->cfg;
    struct notice_store *ns = s->srv->pull->notices;
    char errtext[512];
    time_t now = time(NULL);
    if (notice_add(ns, n, count, now, (time_t)cfg->pull_expiry, errtext, sizeof errtext) < 0) {
        log_error("session %s: cannot store the DMTP notices for msid %s: %s", s->id, cmd.msid, errtext);
        smtp_session_reply(s, "451 4.3.0 Local error storing the notice, try again later");
        free(n);
        return;
    }
    if (queue_intents(s, n, count, now) < 0) {
        log_error("session %s: cannot queue the intent messages for msid %s (%s); notices withdrawn", s->id,
                  cmd.msid, strerror(errno));
        for (size_t j = 0; j < count; j++)
            if (notice_drop(ns, n[j].user, n[j].id, errtext, sizeof errtext) < 0)
                log_error("session %s: cannot withdraw notice %s: %s", s->id, n[j].id, errtext);
        smtp_session_reply(s, "451 4.3.0 Local error queueing the notice, try again later");
        free(n);
        return;
    }
    for (size_t i = 0; i < count; i++)
        log_info("session %s: dmtp notice %s user=%s from=<%s> to=<%s> msid=%s state=%s client=[%s]%s%s", s->id,
                 n[i].id, n[i].user, n[i].sender, n[i].recipient, n[i].msid, notice_state_name(n[i].state),
                 s->peer_ip, d->fcrdns[0] ? " fcrdns=" : "", d->fcrdns);
    bool pull_now = false;
    size_t intents = 0;
    for (size_t i = 0; i < count; i++) {
        pull_now = pull_now || n[i].state == NOTICE_AUTO;
        intents += n[i].state == NOTICE_PENDING;
    }
    smtp_dmtp_caps_count(s, intents);
    if (pull_now)
        smtp_server_pull_nudge(s->srv);     /* the queue pulls these at once */
    free(n);
    s->rcpts_accepted += (unsigned)count;
    smtp_limits_transaction_done(s);
    smtp_dmtp_say(s, DMTP_R_MSID_OK);
    smtp_session_reset_transaction(s);
    s->state = SS_READY;
}

static void gtml_command(struct smtp_session *s, const char *line, size_t len)
{
    if (s->state != SS_READY) {         /* after EHLO/HELO, outside a transaction */
        smtp_dmtp_say(s, DMTP_R_GTML_SEQUENCE);
        return;
    }
    struct dmtp_cmd cmd;
    struct dmtp_reply err;
    if (dmtp_cmd_parse(line, len, true, &cmd, &err) < 0) {
        smtp_session_reply(s, "%d %s %s", err.code, err.enhanced, err.text);
        return;
    }
    struct smtp_pull *p = s->srv->pull;
    if (!p->gtml) {
        log_info("session %s: GTML %s for <%s> from [%s] refused: no GTML service", s->id, cmd.msid,
                 cmd.receiver_text, s->peer_ip);
        smtp_dmtp_say(s, DMTP_R_GTML_REFUSED);
        return;
    }
    p->gtml(s, &cmd, p->gtml_arg);
}

/* QUIT, any case, nothing after it but blanks? */
static bool is_quit(const char *line, size_t len)
{
    if (len < 4 || !str_nieq(line, "QUIT", 4))
        return false;
    for (size_t i = 4; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t')
            return false;
    return true;
}

bool smtp_dmtp_command(struct smtp_session *s, const char *line, size_t len)
{
    struct smtp_dmtp *d = s->dmtp;
    if (!d)
        return false;
    if (d->quit_only) {
        if (is_quit(line, len))
            return false;           /* answered 221 as always */
        s->cmd_junk = true;         /* counts toward max_errors: a peer that insists is dropped */
        smtp_dmtp_say(s, DMTP_R_QUIT_ONLY);
        return true;
    }
    bool mail = len >= 4 && str_nieq(line, "MAIL", 4) && (len == 4 || line[4] == ' ' || line[4] == ':');
    if (mail && d->unreadable && !s->authenticated && !smtp_dmtp_reclassify(s)) {
        /* The peer lists could not be read at connect nor now: neither the allow
           nor the deny it may be on can be known, so no guess (RFC-NOTES.md). */
        smtp_dmtp_say(s, DMTP_R_PEER_UNREADABLE);
        return true;
    }
    if (mail && d->denied && !s->authenticated) {
        s->cmd_junk = true;         /* counts toward max_errors, as the old 503s did */
        smtp_dmtp_say(s, DMTP_R_DENIED);
        return true;
    }
    switch (dmtp_cmd_verb(line, len)) {
    case DMTP_VERB_MSID:
        msid_command(s, line, len);
        return true;
    case DMTP_VERB_GTML:
        gtml_command(s, line, len);
        return true;
    default:
        return false;
    }
}

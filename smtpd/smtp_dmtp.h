/*
 * smtp_dmtp — the receiving side (RMTA) of DMTP receiver-pull in the smtp process
 * (pull_mode = on; RFC-NOTES.md "DMTP"). With pull_mode = off none of this runs:
 * s->dmtp is NULL and every hook below returns at once.
 *
 * smtp_dmtp_peer.c  at connect: the peer's verified FCrDNS name (PTR, then A/AAAA
 *                   back to the peer, on the smtp process's asynchronous DNS client;
 *                   the greeting waits for it, at most pull_fcrdns_wait), the peer's
 *                   class (keyed lookups, pull_classify_peer_db); a denied peer is
 *                   greeted, refused MAIL (it may still pull, GTML); the EHLO keywords.
 * smtp_dmtp.c       the stores, the MAIL parameter, per-recipient classification at
 *                   RCPT (user lists, correspondents, greylisting of legacy senders),
 *                   the MSID verb (notices, then intent messages in one group commit,
 *                   durable before the 250; notices keyed by the address's owner), DATA/BDAT refusal, the dispatch of the DMTP verbs (GTML goes
 *                   to srv->pull->gtml, which the sending side installs).
 * smtp_dmtp_caps.c  the caps on pending notices (per user, per user and sender) and
 *                   on intent messages per peer IP an hour, checked at RCPT.
 * smtp_dmtp_reply.c replies to intent messages (dmtp-pull+ID.H@host from the notice's
 *                   own user, by AUTH or ferry-sendmail) and regular correspondents
 *                   (what our users send out).
 *
 * Every store write is one Berkeley DB transaction done synchronously in the event
 * loop (as the DMARC records are): short, and the MSID reply must wait for it anyway.
 */
#ifndef FERRY_SMTP_DMTP_H
#define FERRY_SMTP_DMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/addr.h"
#include "pull/classify.h"
#include "pull/dmtp_cmd.h"
#include "pull/greylist.h"
#include "pull/msid.h"
#include "pull/notice.h"
#include "lib/envelope.h"

struct smtp_server;
struct smtp_session;

/* The GTML verb (the sending side's service). Called outside a transaction with
   the parsed command; it replies (and may send the message) itself. */
typedef void (*smtp_gtml_fn)(struct smtp_session *s, const struct dmtp_cmd *cmd, void *arg);

/* Process-wide state, srv->pull (NULL when pull_mode = off). */
struct smtp_pull {
    struct msid_key key;
    struct pull_lists *lists;
    struct notice_store *notices;
    struct greylist_store *grey;
    struct ratelimit *intent_rate;      /* intent messages per peer IP (pull_max_intent_rate an hour) */
    /* NULL: GTML is answered DMTP_R_GTML_REFUSED. The sending side sets it at start. */
    smtp_gtml_fn gtml;
    void *gtml_arg;
};

/* At start of the smtp process (after srv->db is open). 0 ok (srv->pull NULL when
   pull_mode = off); -1 when pull_mode = on and a store cannot be opened (logged). */
int  smtp_pull_open(struct smtp_server *srv);
void smtp_pull_close(struct smtp_server *srv);

/* ---- session hooks (smtp_session.c) ---- */

/* At connect: make s->dmtp and start the FCrDNS lookups. -1 out of memory. */
int  smtp_dmtp_start(struct smtp_session *s);
void smtp_dmtp_free(struct smtp_session *s);
/* No lookup of the peer is in flight (nothing will call the session back). */
bool smtp_dmtp_quiet(const struct smtp_session *s);
/* Before the 220: false when the greeting must wait for the lookups (the session
   is greeted when they end). A denied peer is greeted: it may pull, not send. */
bool smtp_dmtp_may_greet(struct smtp_session *s);
/* The EHLO keyword lines (before the last one). */
void smtp_dmtp_ehlo(struct smtp_session *s);
/* A command line (no CRLF), before the SMTP parser: true when answered here
   (a denied peer's command, MSID, GTML). */
bool smtp_dmtp_command(struct smtp_session *s, const char *line, size_t len);
/* The transaction ends (RSET, EHLO, a message queued or refused). */
void smtp_dmtp_reset(struct smtp_session *s);
/* MAIL carried DMTP (pull_mode on): remember it. */
void smtp_dmtp_mail(struct smtp_session *s, bool dmtp);
/* RCPT of addr (route local: local_user is the mailbox name, else NULL), after
   the relay and recipient checks: 0 go on; -1 refused or deferred (answered). */
int  smtp_dmtp_rcpt(struct smtp_session *s, const char *addr, const char *local_user);
/* DATA or BDAT: NULL, or the refusal reply ("503 5.5.1 ..."). */
const char *smtp_dmtp_data_refusal(struct smtp_session *s);

/* smtp_dmtp_reply.c */
/* RCPT, before relay control: true when m is our dmtp-pull address (answered:
   250 for the notice's own authenticated user, else 550). */
bool smtp_dmtp_reply_rcpt(struct smtp_session *s, const struct mailbox *m, const char *addr);
/* The message is whole and passed the checks: act on the replies it carried.
   True when nothing is left to queue (answered 250, transaction reset). */
bool smtp_dmtp_reply_finish(struct smtp_session *s);
/* Replies to pull notices are pending: smtp_dmtp_reply_finish will read the
   message file, so its bytes must be written out first. */
bool smtp_dmtp_reply_pending(const struct smtp_session *s);
/* A message from an authenticated user was queued: note its remote recipients. */
void smtp_dmtp_committed(struct smtp_session *s);

/* Local submission (the maildrop pickup) by local user `user`: act on recipients
   that are replies to intent messages (removed from e), and note the remote ones
   as correspondents once queued. */
void smtp_pull_pickup_replies(struct smtp_server *srv, const char *user, struct envelope *e, const char *msg,
                              size_t len);
void smtp_pull_note_sent(struct smtp_server *srv, const char *user, const struct envelope *e);

#endif

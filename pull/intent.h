/*
 * intent — the DMTP intent message (draft -03 §3.5; RFC-NOTES.md "DMTP"): the short
 * RFC 5322 message put into a user's mailbox instead of mail an unclassified peer
 * offered, and the matching of the user's reply to it.
 *
 * The message comes From: the Mail Delivery System (MAILER-DAEMON@hostname), To:
 * the recipient, with a Subject naming the sender and ending "[pull ID.H]", a
 * Reply-To "dmtp-pull+ID.H@hostname", a Message-ID "<dmtp.ID.H@hostname>" and an
 * X-Ferry-Pull field "id=ID; h=H"; its UTF-8 body says who offered what, from
 * where, until when, and how to fetch (reply, or `ferryctl pull fetch USER ID`).
 * Text from the peer (subject, addresses) appears only in the body, already
 * one-line and bounded (pull/notice.h), and in the Subject as RFC 2047 when it is
 * not ASCII. Pure: notice and clock in, bytes out.
 *
 * intent_reply_token finds "ID.H" in a reply (envelope recipient local part, then
 * In-Reply-To/References, then Subject); the caller then loads the notice, checks
 * the reply came from its user, and checks H with notice_h_ok.
 */
#ifndef FERRY_PULL_INTENT_H
#define FERRY_PULL_INTENT_H

#include <stddef.h>
#include <time.h>

#include "lib/buf.h"
#include "pull/notice.h"

#define INTENT_LOCAL_PART "dmtp-pull"

/* Append the whole message (CRLF line ends) to out. now: the Date. 0 / -1 (out full,
   or hostname not a plain name). */
int intent_build(const struct pull_notice *n, const char *hostname, time_t now, struct buf *out);

/* Any of the three may be NULL. 0 found (id lower-case hex, h upper-case base32hex),
   -1 none. */
int intent_reply_token(const char *rcpt_local, const char *references, const char *subject,
                       char id[NOTICE_ID_LEN + 1], char h[NOTICE_H_LEN + 1]);

#endif

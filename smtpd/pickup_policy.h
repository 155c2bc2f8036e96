/*
 * pickup_policy — what happens to a local submission's header section between the
 * maildrop and the queue (SECURITY.md, "Sender identity" and "Header fields Ferry
 * writes"). The same rules as on the SMTP listeners, for ferry-sendmail's users:
 *
 *   - Authentication-Results fields claiming our authserv-id are removed (a local
 *     user cannot plant results a reader would take for ours);
 *   - a message whose first line starts with white space gets an empty line
 *     before it, so that line cannot continue the Received: field above it;
 *   - a trusted account (sender_identity_trusted) may set any sender and is
 *     signed for its From: domain; anyone else is signed only when both the
 *     envelope sender (or <>) and the single From: address are its own. An
 *     envelope sender that is not the user's gets an X-Authentication-Warning
 *     naming the user (as sendmail writes for untrusted -f), so the forgery is
 *     visible; the mail still goes (local users are known and logged).
 *
 * Input: msg holds our own trace fields (own_len octets, CRLF-ended) and then the
 * submitted message in wire form. On success it is replaced by what is to be
 * queued. -1 only when out of memory or over max (the caller retries later).
 */
#ifndef FERRY_PICKUP_POLICY_H
#define FERRY_PICKUP_POLICY_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/buf.h"

struct smtp_server;

struct pickup_submitter {
    uid_t uid;
    const char *user;       /* the account name of uid */
    const char *sender;     /* the envelope sender ("" for <>) */
    const char *log_id;     /* for log lines (the drop file's name) */
};

int pickup_policy_apply(struct smtp_server *srv, const struct pickup_submitter *who, struct buf *msg,
                        size_t own_len, size_t max);

#endif

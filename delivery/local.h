/*
 * local — local delivery: the recipients of one message that are delivered here.
 *
 * A delivery worker (delivery/local_worker.h) calls local_deliver_batch for the
 * queue process, once per job: recipients of one message in a local domain and
 * queued expansion targets (local_is_target), grouped by local_txn_key. Each wanted recipient is resolved (delivery/local_resolve.h:
 * virtual map, aliases, sub-addressing, catch-all) and
 *  - when it stands for exactly one local delivery (a mailbox, a file, a pipe, an
 *    LMTP server), that delivery is made and st[i] is its result;
 *  - otherwise (several deliveries, or a remote address) nothing is delivered,
 *    st[i] is OK "2.1.5 expanded to N recipients" and add[i] lists N new recipient
 *    strings. THE QUEUE MUST append each to the envelope as a new pending
 *    recipient (local ones are encoded "::kind rcpt<TAB>arg" and never expanded
 *    again, so alias loops cannot grow the envelope; remote ones are plain
 *    addresses the queue routes) and record the original as delivered, in one
 *    envelope write. A crash before that write re-expands the original, which
 *    delivered nothing: no duplicates.
 * Recipients whose delivery goes to the same LMTP server (mailbox_transport, or
 * lmtp: targets) share one LMTP transaction: one RCPT each, one DATA, one reply
 * each after the dot (RFC 2033). The connection then stays open LMTP_IDLE seconds
 * for the next message: the caller closes it then (lmtp_close; the delivery
 * worker does when no job came for that long).
 *
 * Mailboxes: Maildir under mail_dir or mbox under mbox_dir (mailbox_format, per
 * domain), or the mailbox_transport LMTP server; mailbox_quota applies to Maildir
 * and mbox targets (5.2.2, permanent). Maps: delivery/local_rcpt.h. Every failure
 * is classified where it happens (delivery.h: delivery_errno_class).
 */
#ifndef FERRY_LOCAL_H
#define FERRY_LOCAL_H

#include <stdbool.h>

#include "delivery/delivery.h"
#include "lib/msgfile.h"
#include "delivery/local_rcpt.h"
#include "lib/settings.h"

struct local_new_rcpts {
    char (*v)[ADDR_PATH_MAX + 1];
    size_t n;
};

struct local_batch {
    size_t n;
    bool *done;                      /* done[i]: st[i] holds recipient i's result */
    struct delivery_status *st;
    struct local_new_rcpts *add;     /* add[i]: its expansion (may be empty) */
    /* home[i] (mailbox_owner = system): not delivered here; the parent must
       deliver it as system user home_user[i] (delivery/home_delivery.h), with
       home_rcpt[i] as the Delivered-To address. done[i] is false then. */
    bool *home;
    char (*home_user)[64];
    char (*home_rcpt)[ADDR_PATH_MAX + 1];
};

/* Is this recipient string a queued expansion target (always delivered locally)? */
bool local_is_target(const char *rcpt_addr);

/* Deliver the message (msg: its size octets from offset 0) to each addrs[i] with want[i],
   i < n; junk: the message was quarantined at receipt (Maildir targets file it
   in their .Junk folder). 0 ok; -1 (b empty, nothing delivered) only when out
   of memory. */
int  local_deliver_batch(const struct ferry_config *cfg, struct local_maps *maps, const char *sender,
                         bool junk, const char *const *addrs, const bool *want, size_t n, struct msg_src msg,
                         struct local_batch *b);
void local_batch_free(struct local_batch *b);
/* Every array for n recipients, zeroed (what local_deliver_batch fills; the
   queue process fills one from its workers' answers). 0 ok, -1 out of memory. */
int  local_batch_alloc(struct local_batch *b, size_t n);

/* Which recipients must share one local_deliver_batch call, so that those going
   to one LMTP server share its transaction: key gets the same non-empty string
   for them ("lmtp SPEC" for a queued LMTP target; "resolve" for every address
   still to resolve, as any may turn out to be an LMTP mailbox), "" for a queued
   target delivered on its own. Pure. */
void local_txn_key(const struct ferry_config *cfg, const char *rcpt_addr, char *key, size_t keysz);

/* Closes the maps and the kept LMTP connection. */
void local_maps_free(struct local_maps *maps);

#endif

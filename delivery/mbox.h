/*
 * mbox — append one message to an mbox file (the mboxrd variant), safely.
 *
 * Called by local delivery (delivery/local.c) for mailboxes whose format is mbox
 * and for "/path/file" alias targets. Owns nothing between calls.
 *
 * Locking, both kinds, because mail readers use one or the other: first a dotlock
 * PATH.lock made with O_EXCL (one older than MBOX_STALE_LOCK seconds is taken to be
 * left by a dead process and removed), then an fcntl write lock on the file; each
 * is retried for up to lock_wait seconds, after which the result is DEFER 4.2.0
 * (mailbox busy). The daemon passes MBOX_LOCK_WAIT, 0: one try, no sleep. Local
 * delivery runs in a delivery worker (queue/delivery_pool.h), one of a bounded
 * pool, so a wait here would hold a worker the other mailboxes need (a held lock
 * cost 10 s per attempt before); a locked mailbox is simply retried with the
 * queue's back-off.
 *
 * Format: "From SENDER DATE" (asctime date, MAILER-DAEMON for the null sender),
 * the prefix header lines, the message with CRLF made LF, every line matching
 * /^>*From / given one more ">" (mboxrd: a reader removes exactly one), a final
 * LF when the message lacks one, and a blank line. The file is fsync'd before
 * success. On any write error the file is truncated back to its size before the
 * delivery, so the mbox is never left with half a message. The file is opened
 * with O_NOFOLLOW and created 0600.
 */
#ifndef FERRY_MBOX_H
#define FERRY_MBOX_H

#include <stddef.h>
#include <time.h>

#include "delivery/delivery.h"
#include "lib/msgfile.h"

#define MBOX_LOCK_WAIT   0
#define MBOX_STALE_LOCK  300

/* The "From " separator for sender and time, LF-terminated, into out. */
void mbox_from_line(const char *sender, time_t when, char *out, size_t outsz);

/* Write from_line, prefix and the message read from msg (its size octets from
   the current offset) to fd in mbox form. 0 ok, -1 with errno set. No locking, no truncation:
   the pieces mbox_deliver builds on, and the unit tests call directly. */
int  mbox_write(int fd, const char *from_line, const char *prefix, struct msg_src msg);

/* Lock (waiting up to lock_wait seconds for each lock), append, fsync, unlock. */
void mbox_deliver(const char *path, const char *sender, const char *prefix, struct msg_src msg,
                  unsigned lock_wait, struct delivery_status *st);

#endif

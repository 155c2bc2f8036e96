/*
 * held — the DMTP held store (spool held/): messages a receiving MTA took only a
 * reference to (MSID), kept until each recipient has pulled them (GTML) or the
 * hold expires (draft -03 §3.3, §3.6; RFC-NOTES.md "DMTP").
 *
 *   held/HID.msg   the message bytes, a copy of the queued message (never a hard
 *                  link: a queue file with two links is refused by home delivery)
 *   held/HID.env   an ordinary envelope (lib/envelope.h) with the "pull" record:
 *                  msid, the IP it was handed to, expiry. A recipient PENDING waits
 *                  for its pull; DELIVERED has pulled (its result says by whom).
 *
 * HID is a fresh queue ID, one per (message, receiving-MTA transaction): it is the
 * msid's lookup key (pull/msid.h).
 *
 * Crash ordering (the promise: a held message is never lost and never served
 * twice to the same recipient by our own doing):
 *  - held_create copies the message to HID.msg and fsyncs it, then writes
 *    HID.env.tmp, fsyncs, renames it to HID.env and fsyncs held/, all under the
 *    store lock and before the MSID command is sent (the queue process runs it in
 *    a forked child: queue/pull_hold.h). The .env is the commit mark: an HID.msg
 *    without it was never offered and is removed by held_scan(clean_strays),
 *    which the lock keeps away from a create in progress.
 *  - Only after the peer's 2xx to MSID does the queue envelope record those
 *    recipients as delivered ("held for pull"). A crash in between leaves the held
 *    copy (pullable until expiry) and the queue recipients still to do: the next
 *    attempt offers a new msid. At least once, never lost. A refused MSID, or a
 *    session that ended before its MSID went out, removes the held copy at once
 *    (held_discard: no msid for it is out there, so a removal undone by a power
 *    loss only leaves a copy nobody can pull, which expires).
 *  - A pull marks its recipient DELIVERED with an atomic envelope rewrite under
 *    the store lock, and only after the receiving MTA acknowledged the whole
 *    message (its QUIT); the last one removes the held message (.env first, then
 *    .msg). held_expire removes what is past pull_expires.
 *
 * Concurrency: the smtp process (GTML marks) and the queue process (create,
 * expire) share held/; every create and every read-modify-write of an envelope
 * runs under an exclusive flock on held/.lock, taken for a few file operations
 * at most (a create: the copy of one message), except by held_expire. The queue
 * process runs both held_create and held_expire in forked children
 * (pull_hold.h) with held/ opened afresh (a flock belongs to the open file
 * description), so that its loop never waits on the lock or the disk.
 * Errors: -1 with errno (held_create: ENOSPC and kin mean "try later").
 */
#ifndef FERRY_HELD_H
#define FERRY_HELD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/envelope.h"

struct held_store {
    int dirfd;          /* held/ */
    int lockfd;         /* held/.lock */
};

int  held_open(struct held_store *h, const char *spool_dir, char *err, size_t errlen);
void held_close(struct held_store *h);

/* Copy the message (msg_fd, from offset 0, e->size octets) and write the
   envelope e (its pull_* fields, recipients and sender set by the caller) as
   held/ID.{msg,env} under e->id (a fresh qid_new ID; one is made when e->id
   is not a queue ID), under the lock. Durable on return. Blocks (the lock, the
   copy, fsyncs): not for an event loop. */
int  held_create(struct held_store *h, struct envelope *e, int msg_fd);
/* 0 ok; -1 with err (*corrupt: the files exist but are bad). */
int  held_read(struct held_store *h, const char *id, struct envelope *e, bool *corrupt, char *err, size_t errlen);
int  held_msg_open(struct held_store *h, const char *id);
int  held_remove(struct held_store *h, const char *id);
/* Remove a hold that was never offered or was refused (no msid of it is out
   there): the files go, held/ is not fsync'd. 0 ok (or already gone), -1. */
int  held_discard(struct held_store *h, const char *id);

/* Recipient rcpt of held message id has pulled (by: the puller, for the log and
   `ferryctl queue show`). 1 when that was the last one and the message is gone,
   0 marked, -1 error (ENOENT: no such held message or recipient). */
int  held_mark_pulled(struct held_store *h, const char *id, const char *rcpt, const char *by, time_t now);

/* Visit the held IDs in order; with clean_strays, a message file without its
   envelope (never offered) is removed. Returns the number visited or -1. */
int  held_scan(struct held_store *h, bool clean_strays, void (*fn)(const char *id, void *arg), void *arg);

/* Remove up to max held messages whose hold ended at or before now (a held
   envelope that no longer parses is logged and left for the administrator,
   never deleted silently). For each expired one, fn (may be NULL) sees its
   envelope (who never pulled: the PENDING recipients; fn may change it) and
   the message, open on msg_fd, before the removal; fn's -1 is logged, and the
   message is removed all the same. Returns how many were removed, or -1. */
int  held_expire(struct held_store *h, time_t now, size_t max, int (*fn)(struct envelope *e, int msg_fd, void *arg),
                 void *arg);

/* Index of address rcpt (compared without case in the domain, exactly in the
   local part) among e's recipients, or -1. */
long held_rcpt_index(const struct envelope *e, const char *rcpt);

#endif

/*
 * bounce — turn recipients' outcomes into queued DSN messages (RFC 3464), and
 * put new messages of Ferry's own into the queue.
 *
 * Called by the queue process (after an attempt) and by the admin operations
 * (`ferryctl queue bounce`). One call queues one DSN covering every recipient
 * it is given of one message. Who receives it:
 *   - the original sender, with the null reverse-path on the DSN's envelope;
 *   - for a message with the null sender (a bounce, ours or another MTA's):
 *     postmaster@<first local domain>, once — that DSN is marked as a double
 *     bounce; a double bounce that fails is logged and dropped, never bounced,
 *     so no loop can form.
 * Durability: the DSN is written through the spool's draft and commit (fsync'd,
 * renamed, directory fsync'd) before bounce_queue returns 0. Callers update the
 * original's envelope only after that — a crash in between sends the DSN twice
 * rather than never.
 * Errors: -1 with err (disk full, message unreadable); nothing was queued then.
 */
#ifndef FERRY_BOUNCE_H
#define FERRY_BOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/settings.h"
#include "queue/dsn.h"
#include "lib/envelope.h"
#include "queue/spool.h"

/* Does this recipient want a DSN of this kind? One place for the NOTIFY rule
   (RFC 3461 4.1): NEVER → no; a list → only the listed conditions; no NOTIFY →
   failure and delay yes, success no. */
bool rcpt_wants_dsn(const struct env_rcpt *r, enum dsn_action kind);

/* The RFC 3463 status and the diagnostic of a recipient's last result:
   "550 5.1.1 text" (an SMTP reply: is_smtp), "5.4.7 text" (a local result). */
void bounce_result_status(const char *result, char status[16], bool *is_smtp);

/* Queue one DSN with `action` for recipients idx[0..n) of e (message bytes read
   from msg_fd). *new_id gets the DSN's queue ID, or "" when policy says no DSN
   (a failed double bounce: logged). 0 ok, -1 with err. */
int bounce_queue(struct spool *sp, const struct ferry_config *cfg, const struct envelope *e, int msg_fd,
                 enum dsn_action action, const size_t *idx, size_t n, time_t now,
                 char new_id[QID_LEN + 1], char *err, size_t errlen);

/* Queue a message of Ferry's own (data is CRLF text) from the null sender to rcpt.
   0 ok with new_id; -1 with errno. */
int bounce_inject(struct spool *sp, const char *rcpt, enum env_kind kind, const char *data, size_t len,
                  bool body_8bit, bool smtputf8, char new_id[QID_LEN + 1]);

#endif

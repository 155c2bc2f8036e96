/*
 * queue_admin — what `ferryctl queue` can do to one queued message, as spool
 * operations: flush (due now), hold, release, delete (no bounce), bounce (return
 * to the sender now, 5.0.0 "returned by the administrator").
 *
 * Two callers, never at once (see queue/control.h for how that is ensured): the
 * queue process, serving its control socket while the daemon runs (it then also
 * updates its scheduler), and ferryctl itself when the daemon is stopped.
 * Every change is an atomic envelope rewrite or a spool removal; a bounce is
 * committed before the original is removed (queue/bounce.h).
 * Errors: -1 with one sentence in msg naming the message (unknown ID, corrupt
 * envelope, disk full); the spool is unchanged then.
 */
#ifndef FERRY_QUEUE_ADMIN_H
#define FERRY_QUEUE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/settings.h"
#include "queue/spool.h"

enum qadmin_op { QADMIN_FLUSH, QADMIN_HOLD, QADMIN_RELEASE, QADMIN_DELETE, QADMIN_BOUNCE };

/* "flush", "hold", ... → op; -1 when unknown. */
int qadmin_op_parse(const char *word, enum qadmin_op *op);
const char *qadmin_op_name(enum qadmin_op op);

/* Apply op to queue/ID. 0 ok with a short note in msg; -1 with the error in msg.
   For QADMIN_BOUNCE, bounce_id gets the queued DSN's ID ("" when none was due). */
int qadmin_apply(struct spool *sp, const struct ferry_config *cfg, enum qadmin_op op, const char *id,
                 char bounce_id[QID_LEN + 1], char *msg, size_t msglen);

#endif

/*
 * privsep — which account each of ferryd's processes runs as, and the file modes
 * that follow from it. Used by the parent (to drop privileges and prepare the
 * directories) and by ferryctl (to become the same users).
 *
 *   user        the smtp process (default `ferry`); owns spool_dir and data_dir.
 *   queue_user  the queue process and its delivery workers (default `ferryq`);
 *               owns mail_dir. Unset and without a `ferryq` account, the queue runs
 *               as `user`, as before the split (older configs keep working).
 *
 * When the two differ ("split"), the spool and data_dir are shared through the
 * smtp user's primary group: the queue process holds it as a supplementary group,
 * the directories are set-group-id and group-writable (2770), and both processes
 * run with umask 007 so what one writes the other can read and replace. Not split,
 * everything stays owner-only (umask 077), as before.
 */
#ifndef FERRY_PRIVSEP_H
#define FERRY_PRIVSEP_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/settings.h"

#define PRIVSEP_DEFAULT_QUEUE_USER "ferryq"

/* Where the AUTH users' secrets live: auth_dir, or "<data_dir>-auth" when unset.
   Root's (0700) when ferryd runs as root; read only by the auth process and
   ferryctl (smtpd/authproc.h). */
const char *privsep_auth_dir(const struct ferry_config *cfg, char *buf, size_t bufsz);
/* Make or check the auth directory (0700): root's when we are root, reached
   without following anything `user` could change (lib/safe_dir.h). 0, or -1 with
   err. */
int privsep_prepare_auth_dir(const struct ferry_config *cfg, char *err, size_t errlen);
/* The queue process's own Berkeley DB environment (mta_sts.db, tlsrpt.db):
   queue_data_dir, or "<data_dir>-queue" when unset; queue_user's, 0700, so the
   smtp process can neither read nor poison what the queue trusts. */
const char *privsep_queue_data_dir(const struct ferry_config *cfg, char *buf, size_t bufsz);
/* Make or check it (as privsep_prepare_auth_dir, owned by queue_user). */
int privsep_prepare_queue_data_dir(const struct ferry_config *cfg, char *err, size_t errlen);
/* The queue process's account name (see above). */
const char *privsep_queue_user(const struct ferry_config *cfg);
/* Do the smtp and queue users differ (looked up; false when either is unknown)? */
bool privsep_split(const struct ferry_config *cfg);
/* The umask every daemon process and ferryctl (as the daemon's user) runs with. */
mode_t privsep_umask(const struct ferry_config *cfg);
/* The group bits to add to the shared directories' modes: 02070 split, else 0. */
mode_t privsep_dir_group_bits(const struct ferry_config *cfg);

/* Each child's copy of the configuration holds only what it needs (called in
   the child, right after fork). SMTP: no outbound settings (relayhost, its
   credentials file, the outbound TLS policy and CA file), no TLS key or
   certificate path (the context is built), no auth_dir or queue_data_dir, no
   mailbox_transport. QUEUE: no TLS key or certificate path, no relayhost
   credentials file (the credentials themselves are passed), no auth_dir, no
   dkim_key_dir. KEYS and AUTH keep nothing: the caller has copied the one
   directory each needs, and the whole configuration is freed and zeroed. */
enum privsep_role { PRIVSEP_SMTP, PRIVSEP_QUEUE, PRIVSEP_KEYS, PRIVSEP_AUTH };
void privsep_trim_config(struct ferry_config *cfg, enum privsep_role role);

#endif

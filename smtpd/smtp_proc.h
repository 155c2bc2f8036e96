/*
 * smtp_proc — what Ferry's processes say to each other, and how a child starts.
 *
 * The message types are in lib/proc_msg.h (so that queue/ needs nothing from
 * smtpd/), the queue process's entry point in queue/queue_proc.h. A child whose
 * parent socket closes exits: it has been orphaned.
 */
#ifndef FERRY_PROC_H
#define FERRY_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/proc_msg.h"
#include "lib/settings.h"
#include "queue/queue_proc.h"

#include <openssl/ssl.h>

/* The smtp process's entry point; returns the process exit status. */
int smtp_process_main(const struct ferry_config *cfg, int parent_fd, const int *listen_fds, SSL_CTX *tls);

/* Drop to user (by name) when running as root: setgroups, setgid, setuid, and a
   check that root cannot be regained. 0 ok (also when not root), -1 with err. */
int proc_drop_privileges(const char *user, char *err, size_t errlen);
/* Look the user up; 0 ok, -1 with err naming it. */
int proc_lookup_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen);
/* Reset the signal dispositions a child inherits from the parent's event loop. */
void proc_reset_signals(void);

#endif

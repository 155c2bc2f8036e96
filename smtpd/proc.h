/*
 * proc — what Ferry's processes say to each other, and how a child starts.
 *
 * The parent holds one socketpair per child and forwards between them, so a child
 * that is restarted needs no new wiring in the others. Messages (lib/ipc.h):
 *   PROC_QUEUE_NEW   smtp → parent → queue: payload is a committed queue ID.
 *   PROC_HOME_DELIVER  queue → parent: deliver as a system user (home_delivery.h
 *                    request); the parent forks and answers with
 *   PROC_HOME_RESULT parent → queue: the result line.
 *   PROC_PULL_NUDGE  smtp → parent → queue, no payload: DMTP notices to pull at once
 *                    were stored or marked (NOTICE_AUTO after an MSID, NOTICE_FETCH_REQUESTED
 *                    by a reply to an intent message); the pull client looks now.
 * A child whose parent socket closes exits: it has been orphaned.
 */
#ifndef FERRY_PROC_H
#define FERRY_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "lib/settings.h"

#include <openssl/ssl.h>

enum proc_msg { PROC_QUEUE_NEW = 1, PROC_HOME_DELIVER = 2, PROC_HOME_RESULT = 3, PROC_PULL_NUDGE = 4 };

/* Entry points of the children; each returns the process exit status. */
int smtp_process_main(const struct ferry_config *cfg, int parent_fd, const int *listen_fds, SSL_CTX *tls);
struct relay_creds;
int queue_process_main(const struct ferry_config *cfg, int parent_fd, const struct relay_creds *creds);

/* Drop to user (by name) when running as root: setgroups, setgid, setuid, and a
   check that root cannot be regained. 0 ok (also when not root), -1 with err. */
int proc_drop_privileges(const char *user, char *err, size_t errlen);
/* Look the user up; 0 ok, -1 with err naming it. */
int proc_lookup_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen);
/* Reset the signal dispositions a child inherits from the parent's event loop. */
void proc_reset_signals(void);

#endif

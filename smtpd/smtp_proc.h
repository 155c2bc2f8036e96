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

/* The smtp process's entry point; returns the process exit status. key_fd and
   auth_fd are its ends of the links to the key and auth processes (taken). */
int smtp_process_main(const struct ferry_config *cfg, int parent_fd, const int *listen_fds, SSL_CTX *tls, int key_fd,
                      int auth_fd);

/* Drop to user (by name) when running as root: setgroups, setgid, setuid, and a
   check that root cannot be regained; then PR_SET_NO_NEW_PRIVS (also when not
   root). 0 ok, -1 with err. */
int proc_drop_privileges(const char *user, char *err, size_t errlen);
/* The same, with share_with's primary group as a supplementary group (the queue
   process: lib/privsep.h). share_with NULL: no other group. */
int proc_drop_to(const char *user, const char *share_with, char *err, size_t errlen);
/* PR_SET_NO_NEW_PRIVS: no exec can raise privileges from here on. */
int proc_no_new_privs(char *err, size_t errlen);
/* Look the user up; 0 ok, -1 with err naming it. */
int proc_lookup_user(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen);

#endif

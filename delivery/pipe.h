/*
 * pipe — deliver a message to a command ("|command" alias targets).
 *
 * The command runs under /bin/sh -c in a new process group, with the message
 * (prefix lines first, LF line ends) on its standard input, standard output
 * discarded, and the first PIPE_STDERR_MAX octets of standard error kept for the
 * result. Environment: PATH=/usr/bin:/bin, HOME=/, SHELL=/bin/sh, SENDER,
 * RECIPIENT. When user is non-empty and the caller is root, the command runs as
 * that user (its groups, its uid); a non-root caller can only run it as itself,
 * so a user other than its own gives DEFER 4.3.0.
 *
 * Results: exit 0 → OK; EX_TEMPFAIL (75) → DEFER 4.3.0; EX_NOUSER (67) → FAIL
 * 5.1.1; EX_NOPERM (77) → FAIL 5.7.1; any other exit → FAIL 5.3.0; death by a
 * signal → DEFER 4.3.0; running longer than timeout seconds → the whole process
 * group is killed, DEFER 4.4.7 (the next attempt may be luckier). The first line
 * of standard error follows the code in the result text.
 */
#ifndef FERRY_PIPE_H
#define FERRY_PIPE_H

#include "delivery/delivery.h"
#include "lib/msgfile.h"

#define PIPE_STDERR_MAX 400

/* The result for a wait status (pure; the unit tests check the table). */
void pipe_status(int wstatus, bool timed_out, const char *cmd, const char *err_line,
                 struct delivery_status *st);

void pipe_deliver(const char *cmd, const char *user, unsigned timeout, const char *sender,
                  const char *rcpt, const char *prefix, struct msg_src msg, struct delivery_status *st);

#endif

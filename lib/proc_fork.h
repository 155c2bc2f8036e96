/*
 * proc_fork — fork a child that starts with default signal handling, with no
 * window in which a signal meant for the child is lost.
 *
 * Every daemon process runs libevent, whose signal handlers only write the
 * signal's number to a socket the event loop reads. A child inherits those
 * handlers (and that socket) until it resets them, so a SIGTERM that reaches it
 * in between (a stop right after a fork, on a loaded machine) is swallowed: the
 * child lives on, and a parent that then waits for it blocks for good. So all
 * signals are blocked across fork(); the child resets the handlers of the
 * signals daemons use (TERM, INT, HUP, QUIT, CHLD, USR1, USR2, ALRM) to the
 * default (SIGPIPE: ignored) and only then unblocks, so a signal sent meanwhile
 * stays pending and is delivered with its default action; the parent restores
 * its mask.
 */
#ifndef FERRY_PROC_FORK_H
#define FERRY_PROC_FORK_H

#include <stddef.h>
#include <sys/types.h>

/* fork(): in the child, with handlers reset and nothing blocked. */
pid_t proc_fork(void);
/* The child's half, for a process that is already the child (no mask change
   needed): every handler back to the default, SIGPIPE ignored, nothing blocked. */
void proc_signals_default(void);

/* In a child: close every descriptor from `from` up, except the nkeep in keep
   (close_range where the kernel has it, Linux 5.9; one by one up to the soft
   limit where it has not, so that nothing of the parent's is left behind on an
   older kernel either). */
void proc_close_from(int from, const int *keep, size_t nkeep);

/* The soft RLIMIT_NOFILE, raised to the hard limit for a daemon that holds many
   connections; the value it had is kept for proc_nofile_restore. *cur and *max
   get the limit now in force. 0, or -1 with errno (the limit unchanged). */
int  proc_nofile_raise(unsigned long long *cur, unsigned long long *max);
/* Put the soft limit back to what it was before proc_nofile_raise, in a child
   about to run another program (which may use select(), or close every
   descriptor up to the limit at start). */
void proc_nofile_restore(void);

#endif

/*
 * fdpass — one small record, with at most one descriptor riding along, over an
 * AF_UNIX SOCK_SEQPACKET socket (a record is never split or merged).
 *
 * fdpass_send never raises SIGPIPE; on a non-blocking socket it may fail with
 * EAGAIN, and then nothing was sent. fdpass_recv takes a descriptor close-on-
 * exec; one the kernel could not install (the receiver at its descriptor limit:
 * MSG_CTRUNC) is reported, not silently missing. Nothing here logs or allocates.
 */
#ifndef FERRY_FDPASS_H
#define FERRY_FDPASS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Send msg[0..len) and, when fd >= 0, a copy of fd (the caller still owns fd).
   0, or -1 with errno (EINTR retried). */
int fdpass_send(int sock, const void *msg, size_t len, int fd, int flags);
/* Receive one record into msg (at most len octets; a longer record is cut and
   *cut set). *fd: the descriptor that came with it, or -1; *fd_lost: one came
   but could not be installed. Returns the record's length, 0 at end of file,
   -1 with errno. flags: for recvmsg (MSG_DONTWAIT). */
ssize_t fdpass_recv(int sock, void *msg, size_t len, int *fd, bool *fd_lost, bool *cut, int flags);

#endif

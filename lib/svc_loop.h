/*
 * svc_loop — the loop of a small service process (the key and auth processes):
 * one request datagram at a time on its link, until its parent goes away.
 *
 * The link is a SOCK_SEQPACKET socket; serve(fd, arg) is called whenever it is
 * readable and reads (at most) one request, answering it on the same socket. The
 * parent channel is only watched: its closing (or any byte on it) ends the loop,
 * so a service never outlives ferryd. Blocking by design: a service has nothing
 * else to do. Returns 0 when the parent went away, 1 when poll failed.
 */
#ifndef FERRY_SVC_LOOP_H
#define FERRY_SVC_LOOP_H

int svc_loop(int parent_fd, int fd, void (*serve)(int fd, void *arg), void *arg);

#endif

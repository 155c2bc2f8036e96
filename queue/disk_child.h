/*
 * disk_child — run one piece of blocking disk work (writes with fsync, a
 * directory sweep under a lock) in a forked child, so that the queue process's
 * event loop never waits for it (DESIGN.md: the loop never blocks).
 *
 * disk_child_run forks; the child calls fn, which writes at most
 * DISK_CHILD_RESULT_MAX octets of result into its buffer and returns an exit
 * code, and the child sends both up a pipe and _exits (no atexit handlers, no
 * libevent, no Berkeley DB handle of the parent's is touched: fn must open
 * what it uses of those itself). The loop hears the pipe's end, reaps the
 * child, and calls done(code, result, len, arg) once; code is -1 when the
 * child died without a result (fork failed, killed). A child is never killed:
 * it may be mid-rename in the spool, and its work is all the durable kind.
 *
 * Why a fork rather than a delivery-pool worker: the work needs the message
 * bytes or directory fds the queue process already holds, and a fork hands
 * them over copy-on-write with nothing to serialise; it is a short, rare job
 * (a pull stored, a sweep a minute), so the fork's cost is small beside the
 * fsyncs it moves.
 *
 * disk_child_forget: the caller is going away; done is never called, the
 * child finishes on its own (a zombie until the queue process exits, at most).
 */
#ifndef FERRY_DISK_CHILD_H
#define FERRY_DISK_CHILD_H

#include <stddef.h>

#define DISK_CHILD_RESULT_MAX 256

struct event_base;
struct disk_child;

typedef int (*disk_child_fn)(void *arg, char *result, size_t *len);
typedef void (*disk_child_done)(int code, const char *result, size_t len, void *arg);

/* NULL (errno set) when it cannot start: the caller may do the work later. */
struct disk_child *disk_child_run(struct event_base *base, disk_child_fn fn, void *fnarg, disk_child_done done,
                                  void *donearg);
void disk_child_forget(struct disk_child *c);

#endif

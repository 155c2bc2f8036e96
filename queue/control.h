/*
 * control — how ferryctl reaches the running queue process, and how it knows
 * the queue process is not running.
 *
 * The queue process serves a unix socket, <spool_dir>/control.sock (mode 0600,
 * owned by the daemon's user, so only that user and root can connect). One
 * request per connection, one line each way, at most CONTROL_LINE_MAX octets:
 *
 *   request:  VERB [ARG] LF        VERB: flush, hold, release, delete, bounce
 *   reply:    "ok " TEXT LF   or   "error " TEXT LF   or   "busy " TEXT LF
 *
 * "busy": the message is out on a delivery attempt right now; the client asks
 * again shortly (ferryctl waits up to CONTROL_BUSY_WAIT_SECONDS).
 *
 * `flush` without ARG makes the whole queue due. The queue process performs the
 * request in its own event loop, between delivery attempts, so an admin change
 * never races an attempt on the same message.
 *
 * When the daemon is stopped, ferryctl works on the spool itself. To make sure
 * the two never act at once, the queue process holds an exclusive flock on
 * <spool_dir>/queue.lock for its whole life (taken, blocking, before it loads the
 * queue), and ferryctl takes the same lock, without waiting, before touching the
 * spool: if the lock is busy, a queue process is running and must be asked
 * through the socket.
 * Errors: control_request returns -1 with errno (ENOENT, ECONNREFUSED: nobody is
 * listening); the server logs and drops a connection that sends nonsense or
 * stays silent for CONTROL_TIMEOUT_SECONDS.
 */
#ifndef FERRY_CONTROL_H
#define FERRY_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_LINE_MAX        256
#define CONTROL_TIMEOUT_SECONDS 5
#define CONTROL_BUSY_WAIT_SECONDS 120

struct event_base;
struct control;

/* Handle one request: verb and arg ("" when none); write the reply text (without
   "ok "/"error ") to reply and return 0 for ok, -1 for error, 1 for busy. */
typedef int (*control_handler)(const char *verb, const char *arg, char *reply, size_t replylen, void *ctx);

struct control *control_open(struct event_base *base, const char *spool_dir, control_handler h, void *ctx,
                             char *err, size_t errlen);
void control_close(struct control *c);

/* Client side: send request (one line, no LF) and read the reply line into reply
   (with its "ok "/"error " prefix). 0 when a reply came; -1 with errno. */
int control_request(const char *spool_dir, const char *request, char *reply, size_t replylen);

/* The queue lock: an fd holding LOCK_EX on <spool_dir>/queue.lock, or -1 with
   errno (EWOULDBLOCK: held by another process, when wait is false). */
int control_lock(const char *spool_dir, bool wait);

#endif

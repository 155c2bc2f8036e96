/*
 * ipc — typed, length-prefixed messages between Ferry's processes.
 *
 * Wire: a 4-octet type, a 4-octet payload length (host order: both ends are the same
 * program on the same machine), then the payload, over a SOCK_STREAM socketpair.
 * Payloads above IPC_MAX_PAYLOAD are refused on send and treated as a broken peer on
 * receive. An ipc_chan runs on libevent and calls the handler once per whole message;
 * the on_close callback runs once when the peer goes away or sends garbage.
 */
#ifndef FERRY_IPC_H
#define FERRY_IPC_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct ipc_chan;

#define IPC_MAX_PAYLOAD (64 * 1024)

typedef void (*ipc_handler)(struct ipc_chan *chan, uint32_t type, const void *data,
                            size_t len, void *arg);
typedef void (*ipc_close_handler)(struct ipc_chan *chan, void *arg);

/* Takes ownership of fd (made non-blocking, closed by ipc_chan_free). */
struct ipc_chan *ipc_chan_new(struct event_base *base, int fd, ipc_handler on_msg,
                              ipc_close_handler on_close, void *arg);
int  ipc_chan_send(struct ipc_chan *chan, uint32_t type, const void *data, size_t len);
void ipc_chan_free(struct ipc_chan *chan);
/* The socket under a channel. A forked child closes it with close(), never with
   ipc_chan_free: the parent's event loop state (its epoll set) is shared across
   fork, and freeing the channel in the child would unregister it in the parent. */
int  ipc_chan_fd(const struct ipc_chan *chan);

/* Blocking helpers for code without an event loop. recv: 0 ok, -1 error/EOF;
   *data is malloc'd (NUL-terminated for convenience). */
int  ipc_send_blocking(int fd, uint32_t type, const void *data, size_t len);
int  ipc_recv_blocking(int fd, uint32_t *type, void **data, size_t *len);

#endif

/* ipc — see ipc.h.
 *
 * A user callback may free the channel (on_close always may; a message handler
 * may too). The read loop therefore marks the channel as "in a callback" and,
 * when the user asked to free it meanwhile, finishes the free itself afterwards
 * instead of touching freed memory. */
#include "lib/ipc.h"
#include "lib/fdio.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ipc_hdr {
    uint32_t type;
    uint32_t len;
};

struct ipc_chan {
    struct bufferevent *bev;
    ipc_handler on_msg;
    ipc_close_handler on_close;
    void *arg;
    int depth;            /* > 0 while a user callback runs */
    bool free_pending;    /* ipc_chan_free was called during a callback */
    bool closed;          /* on_close has been called */
};

static void really_free(struct ipc_chan *c)
{
    bufferevent_free(c->bev);
    free(c);
}

void ipc_chan_free(struct ipc_chan *c)
{
    if (!c)
        return;
    if (c->depth > 0) {
        c->free_pending = true;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    really_free(c);
}

/* Run on_close once; true when the channel is gone afterwards. */
static bool fire_close(struct ipc_chan *c)
{
    if (c->closed)
        return false;
    c->closed = true;
    bufferevent_disable(c->bev, EV_READ);
    if (c->on_close) {
        c->depth++;
        c->on_close(c, c->arg);
        c->depth--;
    }
    if (c->free_pending && c->depth == 0) {
        really_free(c);
        return true;
    }
    return false;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct ipc_chan *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (!c->closed && !c->free_pending) {
        struct ipc_hdr h;
        if (evbuffer_copyout(in, &h, sizeof h) < (ev_ssize_t)sizeof h)
            return;
        if (h.len > IPC_MAX_PAYLOAD) {
            fire_close(c);      /* a peer that lies about lengths is broken */
            return;
        }
        if (evbuffer_get_length(in) < sizeof h + h.len)
            return;
        evbuffer_drain(in, sizeof h);
        char *payload = malloc((size_t)h.len + 1);
        if (!payload) {
            fire_close(c);
            return;
        }
        evbuffer_remove(in, payload, h.len);
        payload[h.len] = '\0';
        c->depth++;
        c->on_msg(c, h.type, payload, h.len, c->arg);
        c->depth--;
        free(payload);
    }
    if (c->free_pending && c->depth == 0)
        really_free(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct ipc_chan *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        fire_close(c);
}

struct ipc_chan *ipc_chan_new(struct event_base *base, int fd, ipc_handler on_msg,
                              ipc_close_handler on_close, void *arg)
{
    struct ipc_chan *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    evutil_make_socket_nonblocking(fd);
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        free(c);
        return NULL;
    }
    c->on_msg = on_msg;
    c->on_close = on_close;
    c->arg = arg;
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return c;
}

int ipc_chan_fd(const struct ipc_chan *c)
{
    return (int)bufferevent_getfd(c->bev);
}

int ipc_chan_send(struct ipc_chan *c, uint32_t type, const void *data, size_t len)
{
    if (!c || len > IPC_MAX_PAYLOAD || c->closed || c->free_pending)
        return -1;
    struct ipc_hdr h = { type, (uint32_t)len };
    if (bufferevent_write(c->bev, &h, sizeof h) < 0)
        return -1;
    if (len && bufferevent_write(c->bev, data, len) < 0)
        return -1;
    return 0;
}

int ipc_send_blocking(int fd, uint32_t type, const void *data, size_t len)
{
    if (len > IPC_MAX_PAYLOAD) {
        errno = EMSGSIZE;
        return -1;
    }
    struct ipc_hdr h = { type, (uint32_t)len };
    if (fd_write_all(fd, &h, sizeof h) < 0)
        return -1;
    return len ? fd_write_all(fd, data, len) : 0;
}

int ipc_recv_blocking(int fd, uint32_t *type, void **data, size_t *len)
{
    struct ipc_hdr h;
    if (fd_read_all(fd, &h, sizeof h) < 0)
        return -1;
    if (h.len > IPC_MAX_PAYLOAD) {
        errno = EMSGSIZE;
        return -1;
    }
    char *p = malloc((size_t)h.len + 1);
    if (!p)
        return -1;
    if (fd_read_all(fd, p, h.len) < 0) {
        free(p);
        return -1;
    }
    p[h.len] = '\0';
    *type = h.type;
    *data = p;
    *len = h.len;
    return 0;
}

/* control — see control.h. */
#include "queue/control.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct control {
    struct event_base *base;
    int fd;
    struct event *ev;
    control_handler handler;
    void *ctx;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct control_conn {
    struct control *c;
    int fd;
    struct event *ev;
    char line[CONTROL_LINE_MAX + 1];
    size_t len;
};

static int sock_path(const char *spool_dir, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path, sizeof sa->sun_path, "%s/control.sock", spool_dir);
    if (n < 0 || (size_t)n >= sizeof sa->sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static void conn_free(struct control_conn *k)
{
    event_free(k->ev);
    close(k->fd);
    free(k);
}

static void conn_reply(struct control_conn *k, int r, const char *text)
{
    char out[CONTROL_LINE_MAX + 16];
    int n = snprintf(out, sizeof out, "%s %s\n", r == 0 ? "ok" : r > 0 ? "busy" : "error", text);
    if (n > 0) {
        size_t len = (size_t)n < sizeof out ? (size_t)n : sizeof out - 1;
        out[len - 1] = '\n';
        /* One short line into an empty socket buffer: it does not block. */
        if (write(k->fd, out, len) < 0)
            log_warn("control: cannot reply: %s", strerror(errno));
    }
}

static void on_conn(evutil_socket_t fd, short what, void *arg)
{
    struct control_conn *k = arg;
    if (what & EV_TIMEOUT) {
        log_warn("control: a client sent no request within %d seconds", CONTROL_TIMEOUT_SECONDS);
        conn_free(k);
        return;
    }
    ssize_t n = read(fd, k->line + k->len, CONTROL_LINE_MAX - k->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_free(k);
        return;
    }
    k->len += (size_t)n;
    k->line[k->len] = '\0';
    char *nl = memchr(k->line, '\n', k->len);
    if (!nl) {
        if (k->len >= CONTROL_LINE_MAX) {
            conn_reply(k, false, "request line too long");
            conn_free(k);
        }
        return;
    }
    *nl = '\0';
    char *arg2 = strchr(k->line, ' ');
    if (arg2)
        *arg2++ = '\0';
    char reply[CONTROL_LINE_MAX];
    reply[0] = '\0';
    int r = k->c->handler(k->line, arg2 ? arg2 : "", reply, sizeof reply, k->c->ctx);
    conn_reply(k, r, reply);
    conn_free(k);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0)
        return;
    struct control_conn *k = calloc(1, sizeof *k);
    if (!k) {
        close(cfd);
        return;
    }
    k->c = c;
    k->fd = cfd;
    k->ev = event_new(c->base, cfd, EV_READ | EV_PERSIST, on_conn, k);
    struct timeval tv = { CONTROL_TIMEOUT_SECONDS, 0 };
    if (!k->ev || event_add(k->ev, &tv) < 0) {
        if (k->ev)
            event_free(k->ev);
        close(cfd);
        free(k);
    }
}

struct control *control_open(struct event_base *base, const char *spool_dir, control_handler h, void *ctx,
                             char *err, size_t errlen)
{
    struct sockaddr_un sa;
    if (sock_path(spool_dir, &sa) < 0) {
        snprintf(err, errlen, "control socket path under %s is too long", spool_dir);
        return NULL;
    }
    struct control *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base = base;
    c->handler = h;
    c->ctx = ctx;
    str_copy(c->path, sa.sun_path, sizeof c->path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* The caller holds the queue lock, so a socket file left here is stale. */
    unlink(c->path);
    mode_t old = umask(077);
    int r = c->fd < 0 ? -1 : bind(c->fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    /* Owner-only, or also the group when the spool is shared (lib/privsep.h):
       ferryctl speaks to it as the spool's owner. */
    if (r < 0 || chmod(c->path, 0660 & ~old) < 0 || listen(c->fd, 16) < 0) {
        snprintf(err, errlen, "cannot serve %s: %s", c->path, strerror(errno));
        if (c->fd >= 0)
            close(c->fd);
        free(c);
        return NULL;
    }
    c->ev = event_new(base, c->fd, EV_READ | EV_PERSIST, on_accept, c);
    if (!c->ev || event_add(c->ev, NULL) < 0) {
        snprintf(err, errlen, "cannot watch %s", c->path);
        control_close(c);
        return NULL;
    }
    return c;
}

void control_close(struct control *c)
{
    if (!c)
        return;
    if (c->ev)
        event_free(c->ev);
    close(c->fd);
    unlink(c->path);
    free(c);
}

int control_request(const char *spool_dir, const char *request, char *reply, size_t replylen)
{
    struct sockaddr_un sa;
    if (sock_path(spool_dir, &sa) < 0)
        return -1;
    if (strlen(request) >= CONTROL_LINE_MAX || strchr(request, '\n')) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { CONTROL_TIMEOUT_SECONDS * 6, 0 };    /* a bounce may take a moment */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char line[CONTROL_LINE_MAX + 1];
    int n = snprintf(line, sizeof line, "%s\n", request);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || write(fd, line, (size_t)n) != n) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    size_t got = 0;
    while (got + 1 < replylen) {
        ssize_t r = read(fd, reply + got, replylen - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memchr(reply, '\n', got))
            break;
    }
    close(fd);
    reply[got] = '\0';
    char *nl = strchr(reply, '\n');
    if (!nl) {
        errno = EPROTO;
        return -1;
    }
    *nl = '\0';
    return 0;
}

int control_lock(const char *spool_dir, bool wait)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/queue.lock", spool_dir) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
        if (errno == EINTR)
            continue;
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

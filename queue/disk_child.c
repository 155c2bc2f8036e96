/* disk_child — see disk_child.h. */
#include "queue/disk_child.h"
#include "lib/proc_fork.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct disk_child {
    struct event *ev;
    pid_t pid;
    int fd;
    disk_child_done done;
    void *arg;
    char res[1 + DISK_CHILD_RESULT_MAX];   /* the code octet, then the result */
    size_t got;
};

static void release(struct disk_child *c)
{
    event_free(c->ev);
    close(c->fd);
    free(c);
}

static void on_pipe(evutil_socket_t fd, short what, void *arg)
{
    struct disk_child *c = arg;
    ssize_t n = read(fd, c->res + c->got, sizeof c->res - c->got);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n > 0) {
        c->got += (size_t)n;
        if (c->got < sizeof c->res)
            return;
        /* Full: the child has said all it may; its end follows. */
    }
    int status = 0;
    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
        ;
    int code = c->got > 0 && WIFEXITED(status) ? (unsigned char)c->res[0] : -1;
    c->done(code, c->res + 1, c->got > 0 ? c->got - 1 : 0, c->arg);
    release(c);
}

struct disk_child *disk_child_run(struct event_base *base, disk_child_fn fn, void *fnarg, disk_child_done done,
                                  void *donearg)
{
    struct disk_child *c = calloc(1, sizeof *c);
    int p[2];
    if (!c)
        return NULL;
    if (pipe2(p, O_CLOEXEC) < 0) {
        free(c);
        return NULL;
    }
    c->fd = p[0];
    c->done = done;
    c->arg = donearg;
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    /* The watch exists before the child does: no child the loop cannot hear of. */
    c->ev = event_new(base, p[0], EV_READ | EV_PERSIST, on_pipe, c);
    if (!c->ev || event_add(c->ev, NULL) < 0) {
        int saved = errno;
        if (c->ev)
            event_free(c->ev);
        close(p[0]);
        close(p[1]);
        free(c);
        errno = saved ? saved : ENOMEM;
        return NULL;
    }
    pid_t pid = proc_fork();
    if (pid < 0) {
        int saved = errno;
        close(p[1]);
        release(c);
        errno = saved;
        return NULL;
    }
    if (pid == 0) {
        char out[1 + DISK_CHILD_RESULT_MAX];
        size_t len = 0;
        int code = fn(fnarg, out + 1, &len);
        if (len > DISK_CHILD_RESULT_MAX)
            len = DISK_CHILD_RESULT_MAX;
        out[0] = (char)(code & 0xff);
        size_t off = 0;
        while (off < len + 1) {
            ssize_t n = write(p[1], out + off, len + 1 - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        _exit(code & 0xff);
    }
    close(p[1]);
    c->pid = pid;
    return c;
}

void disk_child_forget(struct disk_child *c)
{
    if (c)
        release(c);
}

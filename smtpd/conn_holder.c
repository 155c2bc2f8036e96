/* conn_holder — see conn_holder.h. */
#include "smtpd/conn_holder.h"
#include "lib/fdpass.h"
#include "lib/proc_fork.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define LINK_KEY UINT64_MAX     /* epoll data of the link; a connection's is its slot */

struct held {
    int fd;             /* -1: free */
    uint64_t token;
};

struct holder {
    int link, ep;
    struct held *tab;
    size_t cap;
};

/* A record to the smtp process. The link blocks here: the smtp process never
   blocks on it, and reads it on every turn of its loop. */
static void tell(struct holder *h, enum holder_op op, uint32_t slot, uint64_t token, int fd)
{
    struct holder_msg m = { op, slot, token };
    for (int tries = 0; fdpass_send(h->link, &m, sizeof m, fd, 0) < 0; tries++) {
        /* Short of kernel memory: wait and try again, for a while. */
        if ((errno == ENOBUFS || errno == ENOMEM) && tries < 1000) {
            usleep(10 * 1000);
            continue;
        }
        _exit(0);       /* the smtp process is gone: so is every reason to hold anything */
    }
}

static void give_back(struct holder *h, uint32_t slot)
{
    struct held *e = &h->tab[slot];
    epoll_ctl(h->ep, EPOLL_CTL_DEL, e->fd, NULL);   /* before close: the file lives on in the record */
    tell(h, HOLDER_BACK, slot, e->token, e->fd);
    close(e->fd);
    e->fd = -1;
}

static bool room_for(struct holder *h, uint32_t slot)
{
    if (slot < h->cap)
        return true;
    size_t cap = h->cap ? h->cap : 1024;
    while (cap <= slot)
        cap *= 2;
    struct held *t = realloc(h->tab, cap * sizeof *t);
    if (!t)
        return false;
    for (size_t i = h->cap; i < cap; i++)
        t[i].fd = -1;
    h->tab = t;
    h->cap = cap;
    return true;
}

static void on_record(struct holder *h, const struct holder_msg *m, int fd)
{
    if (m->slot >= HOLDER_SLOTS_MAX)
        _exit(2);
    if (m->op == HOLDER_PARK) {
        if (fd < 0 || !room_for(h, m->slot)) {
            if (fd >= 0)
                close(fd);
            tell(h, HOLDER_LOST, m->slot, m->token, -1);
            return;
        }
        struct held *e = &h->tab[m->slot];
        if (e->fd >= 0)
            give_back(h, m->slot);      /* cannot happen with a sane peer; lose nothing if it does */
        e->fd = fd;
        e->token = m->token;
        /* Readable (a command, or the peer closing) or hung up: either way the
           session must see it. */
        struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = m->slot };
        if (epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
            give_back(h, m->slot);
        return;
    }
    if (fd >= 0)
        close(fd);      /* only PARK carries one */
    if (m->slot >= h->cap || h->tab[m->slot].fd < 0 || h->tab[m->slot].token != m->token)
        return;         /* already handed back: the records crossed */
    if (m->op == HOLDER_RETURN) {
        give_back(h, m->slot);
    } else if (m->op == HOLDER_DROP) {
        struct held *e = &h->tab[m->slot];
        epoll_ctl(h->ep, EPOLL_CTL_DEL, e->fd, NULL);
        close(e->fd);
        e->fd = -1;
    } else {
        _exit(2);
    }
}

static int holder_main(int link)
{
    struct holder h = { .link = link, .ep = epoll_create1(EPOLL_CLOEXEC) };
    if (h.ep < 0)
        return 1;
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = LINK_KEY };
    if (epoll_ctl(h.ep, EPOLL_CTL_ADD, link, &ev) < 0)
        return 1;
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(h.ep, evs, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return 1;
        for (int i = 0; i < n; i++) {
            uint64_t key = evs[i].data.u64;
            if (key != LINK_KEY) {
                if (key < h.cap && h.tab[key].fd >= 0)
                    give_back(&h, (uint32_t)key);
                continue;
            }
            for (int k = 0; k < 256; k++) {     /* then the connections get their turn */
                struct holder_msg m;
                int fd;
                bool lost, cut;
                ssize_t r = fdpass_recv(link, &m, sizeof m, &fd, &lost, &cut, MSG_DONTWAIT);
                if (r == 0)
                    return 0;
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    break;
                if (r < 0 || r != (ssize_t)sizeof m || cut)
                    return 2;
                on_record(&h, &m, fd);
            }
        }
    }
}

pid_t conn_holder_start(int *link, char *err, size_t errlen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return -1;
    }
    pid_t pid = proc_fork();   /* the smtp process's handlers are not the holder's */
    if (pid < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        /* Only the link: no listener, no spool, no other process's link. Signals
           are the smtp process's business; the holder ends with the link (or with
           the smtp process, should that die first). */
        if (dup2(sv[1], 3) < 0)
            _exit(1);
        proc_close_from(4, NULL, 0);
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        signal(SIGPIPE, SIG_IGN);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(0);
        prctl(PR_SET_NAME, "ferryd-holder");
        _exit(holder_main(3));
    }
    close(sv[1]);
    int fl = fcntl(sv[0], F_GETFL);
    fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    *link = sv[0];
    return pid;
}

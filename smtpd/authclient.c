/* authclient — the smtp process's side of the auth process; see authproc.h. */
#include "smtpd/authproc.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Questions in flight at once: one per session in AUTH at most, so this bounds
   nothing a client controls beyond the session limits; past it, 454 at once. */
#define AUTHCLIENT_PENDING_MAX 1024

struct pending {
    struct pending *next;
    struct authclient *ac;
    uint64_t id;
    authclient_cb cb;
    void *arg;
    struct event *timer;
};

struct authclient {
    struct event_base *base;
    int fd;
    struct event *rd;
    uint64_t next_id;
    struct pending *pending;
    size_t npending;
};

static void unlink_pending(struct authclient *ac, struct pending *p)
{
    for (struct pending **pp = &ac->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            ac->npending--;
            break;
        }
    event_free(p->timer);
    free(p);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct pending *p = arg;
    struct authclient *ac = p->ac;
    authclient_cb cb = p->cb;
    void *cbarg = p->arg;
    log_warn("the auth process did not answer within %d ms", AUTHPROC_TIMEOUT_MS);
    unlink_pending(ac, p);
    struct sasl_verdict v = { .ok = -1 };
    cb(cbarg, &v);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct authclient *ac = arg;
    for (int i = 0; i < 64; i++) {
        struct authproc_rep r;
        ssize_t n = recv(ac->fd, &r, sizeof r, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;             /* EAGAIN; the parent keeps the other end, so no EOF */
        if (n != (ssize_t)sizeof r)
            continue;           /* garbage: not a whole reply */
        struct pending *p = ac->pending;
        while (p && p->id != r.id)
            p = p->next;
        if (!p)
            continue;           /* a reply to a predecessor's question */
        struct sasl_verdict v = { .ok = r.ok == 1 ? 1 : 0, .iterations = r.iterations };
        if (r.salt_len <= CRED_SALT_LEN) {
            memcpy(v.salt, r.salt, r.salt_len);
            v.salt_len = r.salt_len;
        }
        memcpy(v.server_sig, r.server_sig, sizeof v.server_sig);
        r.reason[sizeof r.reason - 1] = '\0';
        str_copy(v.reason, r.reason, sizeof v.reason);
        OPENSSL_cleanse(&r, sizeof r);
        authclient_cb cb = p->cb;
        void *cbarg = p->arg;
        unlink_pending(ac, p);
        cb(cbarg, &v);
    }
}

struct authclient *authclient_new(struct event_base *base, int fd)
{
    struct authclient *ac = calloc(1, sizeof *ac);
    if (!ac)
        return NULL;
    ac->base = base;
    ac->fd = fd;
    /* Ids from a random start: a reply meant for the smtp process before us
       (same socket) matches none of ours. */
    if (RAND_bytes((unsigned char *)&ac->next_id, sizeof ac->next_id) != 1)
        ac->next_id = (uint64_t)getpid() << 32;
    ac->rd = event_new(base, fd, EV_READ | EV_PERSIST, on_read, ac);
    if (!ac->rd || event_add(ac->rd, NULL) < 0) {
        if (ac->rd)
            event_free(ac->rd);
        free(ac);
        return NULL;
    }
    return ac;
}

void authclient_free(struct authclient *ac)
{
    if (!ac)
        return;
    while (ac->pending)
        unlink_pending(ac, ac->pending);
    event_free(ac->rd);
    close(ac->fd);
    free(ac);
}

uint64_t authclient_ask(struct authclient *ac, const struct sasl_request *q, authclient_cb cb, void *arg)
{
    if (!ac || ac->npending >= AUTHCLIENT_PENDING_MAX || q->len > AUTHPROC_DATA_MAX ||
        strlen(q->user) > SASL_USER_MAX)
        return 0;
    struct authproc_req *req = calloc(1, sizeof *req);
    struct pending *p = calloc(1, sizeof *p);
    if (!req || !p) {
        free(req);
        free(p);
        return 0;
    }
    if (++ac->next_id == 0)
        ac->next_id = 1;
    req->id = ac->next_id;
    req->q = (uint32_t)q->q;
    req->len = (uint32_t)q->len;
    str_copy(req->user, q->user, sizeof req->user);
    memcpy(req->proof, q->proof, sizeof req->proof);
    if (q->len)
        memcpy(req->data, q->data, q->len);
    size_t size = AUTHPROC_REQ_HDR + q->len;
    ssize_t sent = send(ac->fd, req, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    OPENSSL_cleanse(req, size);
    free(req);
    /* A full socket (the auth process stopped, or far behind) fails at once. */
    struct timeval tv = { AUTHPROC_TIMEOUT_MS / 1000, (AUTHPROC_TIMEOUT_MS % 1000) * 1000 };
    p->timer = sent == (ssize_t)size ? evtimer_new(ac->base, on_timeout, p) : NULL;
    if (!p->timer || evtimer_add(p->timer, &tv) < 0) {
        if (sent != (ssize_t)size)
            log_warn("cannot ask the auth process: %s", sent < 0 ? strerror(errno) : "short write");
        if (p->timer)
            event_free(p->timer);
        free(p);
        return 0;
    }
    p->ac = ac;
    p->id = ac->next_id;
    p->cb = cb;
    p->arg = arg;
    p->next = ac->pending;
    ac->pending = p;
    ac->npending++;
    return p->id;
}

void authclient_cancel(struct authclient *ac, uint64_t handle)
{
    for (struct pending *p = ac ? ac->pending : NULL; p; p = p->next)
        if (p->id == handle) {
            unlink_pending(ac, p);
            return;
        }
}

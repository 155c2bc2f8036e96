/* keyclient — the smtp process's side of the key process; see keyproc.h. */
#include "smtpd/keyproc.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct keyclient {
    pid_t server_pid;
    int fd;                     /* -1: not connected */
};

struct keyclient *keyclient_new(pid_t server_pid)
{
    struct keyclient *kc = calloc(1, sizeof *kc);
    if (kc) {
        kc->server_pid = server_pid;
        kc->fd = -1;
    }
    return kc;
}

static void drop(struct keyclient *kc)
{
    if (kc->fd >= 0)
        close(kc->fd);
    kc->fd = -1;
}

void keyclient_free(struct keyclient *kc)
{
    if (kc) {
        drop(kc);
        free(kc);
    }
}

/* Connect, and make sure the other end is the key process (root's, or ours when
   ferryd runs unprivileged), not whoever took the name first. */
static int connect_server(struct keyclient *kc, char *err, size_t errsz)
{
    struct sockaddr_un sa;
    socklen_t len = keyproc_addr(kc->server_pid, &sa);
    /* Non-blocking: a full backlog fails the request instead of stalling the loop. */
    kc->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct ucred cr;
    socklen_t crlen = sizeof cr;
    if (kc->fd < 0 || connect(kc->fd, (struct sockaddr *)&sa, len) < 0 ||
        getsockopt(kc->fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0) {
        snprintf(err, errsz, "the key process cannot be reached: %s", strerror(errno));
        drop(kc);
        return -1;
    }
    if (cr.uid != 0 && cr.uid != getuid()) {
        snprintf(err, errsz, "the key socket belongs to uid %ld, not to the key process", (long)cr.uid);
        drop(kc);
        return -1;
    }
    return 0;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* One request, one reply, within KEYPROC_TIMEOUT_MS all told. A failure drops the
   connection, so a late reply can never be taken for the next request's.
   -2: the key process could not be asked; -1: it said no. */
static int round_trip(struct keyclient *kc, const struct keyproc_req *q, struct keyproc_rep *r, char *err,
                      size_t errsz)
{
    if (kc->fd < 0 && connect_server(kc, err, errsz) < 0)
        return -2;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (send(kc->fd, q, sizeof *q, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof *q) {
        snprintf(err, errsz, "cannot send to the key process: %s", strerror(errno));
        drop(kc);
        return -2;
    }
    for (;;) {
        long left = KEYPROC_TIMEOUT_MS - ms_since(&t0);
        struct pollfd pf = { .fd = kc->fd, .events = POLLIN };
        int n = left > 0 ? poll(&pf, 1, (int)left) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errsz, "the key process did not answer within %d ms", KEYPROC_TIMEOUT_MS);
            drop(kc);
            return -2;
        }
        ssize_t got = recv(kc->fd, r, sizeof *r, MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got != (ssize_t)sizeof *r || r->len > sizeof r->data) {
            snprintf(err, errsz, "the key process went away");
            drop(kc);
            return -2;
        }
        if (r->status != 0) {
            snprintf(err, errsz, "key process: %.*s", (int)r->len, (const char *)r->data);
            return -1;
        }
        return 0;
    }
}

static int make_req(struct keyproc_req *q, enum keyproc_op op, const char *domain, const char *selector)
{
    memset(q, 0, sizeof *q);
    q->op = op;
    if (strlen(domain) >= sizeof q->domain || strlen(selector) >= sizeof q->selector)
        return -1;
    str_copy(q->domain, domain, sizeof q->domain);
    str_copy(q->selector, selector, sizeof q->selector);
    return 0;
}

int keyclient_info(struct keyclient *kc, const char *domain, const char *selector, enum dkim_algo *algo,
                   char *rec, size_t recsz, char *err, size_t errsz)
{
    struct keyproc_req q;
    struct keyproc_rep r;
    if (make_req(&q, KEYPROC_INFO, domain, selector) < 0) {
        snprintf(err, errsz, "domain or selector too long");
        return -1;
    }
    int rc = round_trip(kc, &q, &r, err, errsz);
    if (rc < 0)
        return rc;
    if (r.algo != DKIM_ALGO_RSA_SHA256 && r.algo != DKIM_ALGO_ED25519_SHA256) {
        snprintf(err, errsz, "key process named an unknown algorithm");
        return -1;
    }
    *algo = (enum dkim_algo)r.algo;
    size_t n = r.len < recsz ? r.len : recsz - 1;
    memcpy(rec, r.data, n);
    rec[n] = '\0';
    return 0;
}

int keyclient_sign(void *ctx, const struct dkim_sign_key *k, const unsigned char md[32], unsigned char *sig,
                   size_t *siglen)
{
    struct keyclient *kc = ctx;
    struct keyproc_req q;
    struct keyproc_rep r;
    char err[400];
    if (make_req(&q, KEYPROC_SIGN, k->domain, k->selector) < 0)
        return -1;
    q.algo = (uint32_t)k->algo;
    memcpy(q.digest, md, sizeof q.digest);
    if (round_trip(kc, &q, &r, err, sizeof err) < 0) {
        log_warn("dkim: %s/%s: %s", k->domain, k->selector, err);
        return -1;
    }
    if (r.len == 0 || r.len > *siglen || r.len > KEYPROC_SIG_MAX)
        return -1;
    memcpy(sig, r.data, r.len);
    *siglen = r.len;
    return 0;
}

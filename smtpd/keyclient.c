/* keyclient — the smtp process's side of the key process; see keyproc.h. */
#include "smtpd/keyproc.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct keyclient {
    int fd;
    uint64_t next_id;
    struct timespec open_at;    /* the breaker is open (fail fast) until then */
    bool open;
};

struct keyclient *keyclient_new(int fd)
{
    struct keyclient *kc = calloc(1, sizeof *kc);
    if (!kc)
        return NULL;
    kc->fd = fd;
    /* Ids from a random start: a late reply meant for the smtp process before us
       (same socket) matches none of ours. */
    if (RAND_bytes((unsigned char *)&kc->next_id, sizeof kc->next_id) != 1)
        kc->next_id = (uint64_t)getpid() << 32;
    return kc;
}

void keyclient_free(struct keyclient *kc)
{
    if (kc) {
        close(kc->fd);
        free(kc);
    }
}

void keyclient_reset(struct keyclient *kc)
{
    if (kc->open)
        log_info("a new key process is up: asking it again");
    kc->open = false;
}

static long ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Drop whatever is queued for us: replies to requests given up on. */
static void drain(struct keyclient *kc)
{
    struct keyproc_rep r;
    while (recv(kc->fd, &r, sizeof r, MSG_DONTWAIT) > 0)
        ;
}

/* The key process did not answer: fail fast for a while (see keyproc.h). */
static void trip(struct keyclient *kc)
{
    clock_gettime(CLOCK_MONOTONIC, &kc->open_at);
    kc->open = true;
    log_warn("the key process is not answering: messages to sign are deferred for %d s without asking it",
             KEYPROC_BACKOFF_SECONDS);
}

/* One request, one reply, within KEYPROC_TIMEOUT_MS all told.
   -2: the key process could not be asked; -1: it said no. */
static int round_trip(struct keyclient *kc, struct keyproc_req *q, struct keyproc_rep *r, char *err,
                      size_t errsz)
{
    if (kc->open && ms_since(&kc->open_at) < KEYPROC_BACKOFF_SECONDS * 1000L) {
        snprintf(err, errsz, "the key process did not answer a moment ago (retrying after %d s)",
                 KEYPROC_BACKOFF_SECONDS);
        return -2;
    }
    kc->open = false;
    drain(kc);
    if (++kc->next_id == 0)
        kc->next_id = 1;
    q->id = kc->next_id;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (send(kc->fd, q, sizeof *q, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof *q) {
        snprintf(err, errsz, "cannot send to the key process: %s", strerror(errno));
        trip(kc);
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
            trip(kc);
            return -2;
        }
        ssize_t got = recv(kc->fd, r, sizeof *r, MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (got != (ssize_t)sizeof *r || r->id != q->id)
            continue;           /* a predecessor's, or garbage: keep waiting for ours */
        if (r->len > sizeof r->data) {
            snprintf(err, errsz, "the key process sent a malformed reply");
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

int keyclient_promote(struct keyclient *kc, const char *domain, const char *selector, char *err, size_t errsz)
{
    struct keyproc_req q;
    struct keyproc_rep r;
    if (make_req(&q, KEYPROC_PROMOTE, domain, selector) < 0) {
        snprintf(err, errsz, "domain or selector too long");
        return -1;
    }
    return round_trip(kc, &q, &r, err, errsz) < 0 ? -1 : 0;
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

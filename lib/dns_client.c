/*
 * dns_client — the transport half of the DNS client (see dns.h): UDP then TCP on
 * truncation, a timeout per try, every server in turn for `rounds` passes, and the
 * TTL cache. One query is one struct dns_query with at most one try in flight.
 *
 * Each UDP try uses a fresh socket connect()ed to the server, so the kernel drops
 * datagrams from any other address, and a fresh random ID; an answer that does not
 * match the question is ignored and the try keeps waiting (an off-path forger has to
 * guess port and ID within the window).
 */
#include "lib/dns.h"
#include "lib/dns_internal.h"
#include "lib/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DNS_TCP_MAX 65535

struct cache_entry {
    struct cache_entry *hnext;            /* hash chain */
    struct cache_entry *lprev, *lnext;    /* LRU list, most recent first */
    char key[DNS_NAME_MAX + 8];
    uint64_t stored_ms, expires_ms;
    struct dns_answer answer;
};

struct dns_cache {
    struct cache_entry **buckets;
    size_t nbuckets;
    size_t count, max;
    struct cache_entry *lru_head, *lru_tail;
};

enum try_kind { TRY_NONE, TRY_UDP, TRY_TCP };

struct dns_query {
    struct dns_client *client;
    struct dns_query *prev, *next;
    char name[DNS_NAME_MAX + 2];
    uint16_t type;
    dns_callback cb;
    void *arg;
    uint16_t id;
    size_t server;
    unsigned round;
    enum try_kind kind;
    int fd;
    struct event *io;
    struct event *timer;
    struct event *deliver;                /* zero-delay callback for cache hits / errors */
    uint8_t packet[512];
    int packet_len;
    uint8_t *tcp_buf;                     /* length-prefixed answer being read */
    size_t tcp_have, tcp_sent;
    struct dns_answer result;
    bool have_result;
    bool starting;                        /* inside dns_lookup: results must wait for the loop */
    enum dns_status last_status;
    char last_error[128];
};

struct dns_client {
    struct event_base *base;
    struct dns_config cfg;
    struct dns_cache cache;
    struct dns_query *queries;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- cache ----------------------------------------------------------------- */

static size_t hash_key(const char *k)
{
    size_t h = 5381;
    for (; *k; k++)
        h = h * 33 + (unsigned char)*k;
    return h;
}

static void cache_key(const char *fqname, uint16_t type, char *out, size_t sz)
{
    snprintf(out, sz, "%s/%u", fqname, type);
    str_lower(out);
}

static void lru_unlink(struct dns_cache *c, struct cache_entry *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        c->lru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        c->lru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push(struct dns_cache *c, struct cache_entry *e)
{
    e->lnext = c->lru_head;
    e->lprev = NULL;
    if (c->lru_head)
        c->lru_head->lprev = e;
    c->lru_head = e;
    if (!c->lru_tail)
        c->lru_tail = e;
}

static void cache_remove(struct dns_cache *c, struct cache_entry *e)
{
    struct cache_entry **pp = &c->buckets[hash_key(e->key) % c->nbuckets];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    lru_unlink(c, e);
    dns_answer_free(&e->answer);
    free(e);
    c->count--;
}

static struct cache_entry *cache_find(struct dns_cache *c, const char *key)
{
    if (!c->nbuckets)
        return NULL;
    for (struct cache_entry *e = c->buckets[hash_key(key) % c->nbuckets]; e; e = e->hnext)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void cache_store(struct dns_client *cl, const struct dns_answer *a, uint32_t ttl)
{
    struct dns_cache *c = &cl->cache;
    if (!c->nbuckets || ttl == 0)
        return;
    if (ttl > cl->cfg.max_ttl)
        ttl = cl->cfg.max_ttl;
    char key[DNS_NAME_MAX + 8];
    cache_key(a->qname, a->qtype, key, sizeof key);
    struct cache_entry *old = cache_find(c, key);
    if (old)
        cache_remove(c, old);
    while (c->count >= c->max && c->lru_tail)
        cache_remove(c, c->lru_tail);
    struct cache_entry *e = calloc(1, sizeof *e);
    if (!e)
        return;
    if (dns_answer_copy(&e->answer, a) < 0) {
        free(e);
        return;
    }
    str_copy(e->key, key, sizeof e->key);
    e->stored_ms = now_ms();
    e->expires_ms = e->stored_ms + (uint64_t)ttl * 1000;
    size_t b = hash_key(key) % c->nbuckets;
    e->hnext = c->buckets[b];
    c->buckets[b] = e;
    lru_push(c, e);
    c->count++;
}

/* A fresh copy of a live cache entry, TTLs reduced by the time spent in the cache. */
static bool cache_lookup(struct dns_client *cl, const char *fqname, uint16_t type, struct dns_answer *out)
{
    char key[DNS_NAME_MAX + 8];
    cache_key(fqname, type, key, sizeof key);
    struct cache_entry *e = cache_find(&cl->cache, key);
    if (!e)
        return false;
    uint64_t now = now_ms();
    if (now >= e->expires_ms) {
        cache_remove(&cl->cache, e);
        return false;
    }
    if (dns_answer_copy(out, &e->answer) < 0)
        return false;
    uint32_t aged = (uint32_t)((now - e->stored_ms) / 1000);
    for (size_t i = 0; i < out->count; i++)
        out->records[i].ttl = out->records[i].ttl > aged ? out->records[i].ttl - aged : 0;
    out->from_cache = true;
    lru_unlink(&cl->cache, e);
    lru_push(&cl->cache, e);
    return true;
}

/* ---- queries ---------------------------------------------------------------- */

static void start_try(struct dns_query *q);

static void end_try(struct dns_query *q)
{
    if (q->io) {
        event_free(q->io);
        q->io = NULL;
    }
    if (q->fd >= 0) {
        close(q->fd);
        q->fd = -1;
    }
    free(q->tcp_buf);
    q->tcp_buf = NULL;
    q->tcp_have = q->tcp_sent = 0;
    q->kind = TRY_NONE;
    if (q->timer)
        evtimer_del(q->timer);
}

static void query_free(struct dns_query *q)
{
    struct dns_client *cl = q->client;
    end_try(q);
    if (q->timer)
        event_free(q->timer);
    if (q->deliver)
        event_free(q->deliver);
    if (q->have_result)
        dns_answer_free(&q->result);
    if (q->prev)
        q->prev->next = q->next;
    else
        cl->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    free(q);
}

/* Hand the result to the caller, then forget the query. */
static void finish(struct dns_query *q)
{
    if (q->starting) {
        /* Every try failed at once (no sockets, no memory) while dns_lookup still
           runs: it must return q alive, and the callback must come from the loop. */
        event_active(q->deliver, 0, 0);
        return;
    }
    dns_callback cb = q->cb;
    void *arg = q->arg;
    struct dns_answer a = q->result;
    q->have_result = false;
    query_free(q);
    cb(&a, arg);
    dns_answer_free(&a);
}

static void finish_status(struct dns_query *q, enum dns_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish_status(struct dns_query *q, enum dns_status st, const char *fmt, ...)
{
    memset(&q->result, 0, sizeof q->result);
    q->result.status = st;
    q->result.rcode = -1;
    q->result.qtype = q->type;
    str_copy(q->result.qname, q->name, sizeof q->result.qname);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->result.error, sizeof q->result.error, fmt, ap);
    va_end(ap);
    q->have_result = true;
    finish(q);
}

static void next_server(struct dns_query *q)
{
    end_try(q);
    struct dns_client *cl = q->client;
    if (++q->server >= cl->cfg.nservers) {
        q->server = 0;
        if (++q->round >= cl->cfg.rounds) {
            if (q->last_status == DNS_TIMEOUT)
                finish_status(q, DNS_TIMEOUT, "no answer: timed out after %u round%s over %zu server%s",
                              cl->cfg.rounds, cl->cfg.rounds == 1 ? "" : "s", cl->cfg.nservers,
                              cl->cfg.nservers == 1 ? "" : "s");
            else
                finish_status(q, q->last_status, "%s", q->last_error);
            return;
        }
    }
    start_try(q);
}

/* A response arrived for this try: use it, retry over TCP, or move on. Returns
   false when it was not an answer to our question (nothing happened); true when
   the query was finished or moved to another try (q may be gone). */
static bool handle_response(struct dns_query *q, const uint8_t *pkt, size_t len)
{
    struct dns_answer a;
    uint32_t ttl;
    bool truncated;
    if (dns_parse_packet(pkt, len, q->name, q->type, q->id, &a, &ttl, &truncated) < 0)
        return false;
    if (truncated && q->kind == TRY_UDP) {
        dns_answer_free(&a);
        end_try(q);
        q->kind = TRY_TCP;
        start_try(q);
        return true;
    }
    if (a.status == DNS_SERVFAIL || (a.status == DNS_ERROR && a.rcode >= 0)) {
        /* this server cannot help; another may */
        q->last_status = a.status;
        str_copy(q->last_error, a.error, sizeof q->last_error);
        dns_answer_free(&a);
        next_server(q);
        return true;
    }
    end_try(q);
    cache_store(q->client, &a, a.status == DNS_OK || a.status == DNS_NXDOMAIN || a.status == DNS_NODATA ? ttl : 0);
    q->result = a;
    q->have_result = true;
    finish(q);
    return true;
}

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
    struct dns_query *q = arg;
    uint8_t buf[DNS_TCP_MAX];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        /* ICMP port unreachable and the like: this server is not there. */
        q->last_status = DNS_TIMEOUT;
        next_server(q);
        return;
    }
    handle_response(q, buf, (size_t)n);     /* a mismatch is ignored: keep waiting */
}

static void on_tcp(evutil_socket_t fd, short what, void *arg)
{
    struct dns_query *q = arg;
    if (what & EV_WRITE) {
        uint8_t out[2 + sizeof q->packet];
        out[0] = (uint8_t)(q->packet_len >> 8);
        out[1] = (uint8_t)q->packet_len;
        memcpy(out + 2, q->packet, (size_t)q->packet_len);
        size_t total = (size_t)q->packet_len + 2;
        ssize_t n = send(fd, out + q->tcp_sent, total - q->tcp_sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            q->last_status = DNS_TIMEOUT;
            next_server(q);
            return;
        }
        q->tcp_sent += (size_t)n;
        if (q->tcp_sent == total) {
            event_free(q->io);
            q->io = event_new(q->client->base, fd, EV_READ | EV_PERSIST, on_tcp, q);
            if (!q->io || event_add(q->io, NULL) < 0) {
                finish_status(q, DNS_ERROR, "out of memory");
                return;
            }
        }
        return;
    }
    if (!q->tcp_buf && !(q->tcp_buf = malloc(2 + DNS_TCP_MAX))) {
        finish_status(q, DNS_ERROR, "out of memory");
        return;
    }
    size_t want = q->tcp_have < 2 ? 2 : 2 + (((size_t)q->tcp_buf[0] << 8) | q->tcp_buf[1]);
    ssize_t n = recv(fd, q->tcp_buf + q->tcp_have, want - q->tcp_have, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        q->last_status = DNS_TIMEOUT;
        next_server(q);
        return;
    }
    q->tcp_have += (size_t)n;
    if (q->tcp_have == 2 && want == 2)
        return;     /* now the length is known; read the rest next time */
    size_t total = 2 + (((size_t)q->tcp_buf[0] << 8) | q->tcp_buf[1]);
    if (q->tcp_have < total)
        return;
    if (!handle_response(q, q->tcp_buf + 2, total - 2)) {
        /* A TCP answer that does not match is not going to be followed by another. */
        q->last_status = DNS_ERROR;
        str_copy(q->last_error, "malformed or mismatched answer over TCP", sizeof q->last_error);
        next_server(q);
    }
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct dns_query *q = arg;
    q->last_status = DNS_TIMEOUT;
    next_server(q);
}

static void start_try(struct dns_query *q)
{
    struct dns_client *cl = q->client;
    const struct sockaddr_storage *sa = &cl->cfg.servers[q->server];
    socklen_t salen = cl->cfg.server_len[q->server];
    bool tcp = q->kind == TRY_TCP;
    if (!tcp) {
        uint16_t id;
        if (getrandom(&id, sizeof id, 0) != sizeof id)
            id = (uint16_t)(now_ms() ^ (uintptr_t)q);
        q->id = id;
        q->packet_len = dns_build_query(q->name, q->type, q->id, true, q->packet, sizeof q->packet);
        if (q->packet_len < 0) {
            finish_status(q, DNS_ERROR, "cannot build a query for %s", q->name);
            return;
        }
    }
    q->fd = socket(sa->ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (q->fd < 0 || (connect(q->fd, (const struct sockaddr *)sa, salen) < 0 && errno != EINPROGRESS)) {
        q->last_status = DNS_TIMEOUT;
        snprintf(q->last_error, sizeof q->last_error, "cannot reach the server: %s", strerror(errno));
        next_server(q);
        return;
    }
    q->kind = tcp ? TRY_TCP : TRY_UDP;
    if (!tcp && send(q->fd, q->packet, (size_t)q->packet_len, 0) < 0) {
        q->last_status = DNS_TIMEOUT;
        next_server(q);
        return;
    }
    q->io = event_new(cl->base, q->fd, (tcp ? EV_WRITE : EV_READ) | EV_PERSIST, tcp ? on_tcp : on_udp, q);
    struct timeval tv = { cl->cfg.timeout_ms / 1000, (suseconds_t)(cl->cfg.timeout_ms % 1000) * 1000 };
    if (!q->io || event_add(q->io, NULL) < 0 || evtimer_add(q->timer, &tv) < 0) {
        finish_status(q, DNS_ERROR, "out of memory");
        return;
    }
}

static void on_deliver(evutil_socket_t fd, short what, void *arg)
{
    finish(arg);
}

struct dns_query *dns_lookup(struct dns_client *cl, const char *name, uint16_t type, dns_callback cb, void *arg)
{
    struct dns_query *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->client = cl;
    q->type = type;
    q->cb = cb;
    q->arg = arg;
    q->fd = -1;
    q->last_status = DNS_TIMEOUT;
    q->timer = evtimer_new(cl->base, on_timeout, q);
    q->deliver = event_new(cl->base, -1, 0, on_deliver, q);
    if (!q->timer || !q->deliver) {
        if (q->timer)
            event_free(q->timer);
        if (q->deliver)
            event_free(q->deliver);
        free(q);
        return NULL;
    }
    q->next = cl->queries;
    if (cl->queries)
        cl->queries->prev = q;
    cl->queries = q;

    /* Results known now are still delivered from the loop, never from in here. */
    if (dns_normalize_name(name, q->name, sizeof q->name) < 0) {
        memset(&q->result, 0, sizeof q->result);
        q->result.status = DNS_ERROR;
        q->result.rcode = -1;
        q->result.qtype = type;
        str_copy(q->result.qname, name, sizeof q->result.qname);
        snprintf(q->result.error, sizeof q->result.error, "not a valid domain name");
        q->have_result = true;
        event_active(q->deliver, 0, 0);
        return q;
    }
    if (cache_lookup(cl, q->name, type, &q->result)) {
        q->have_result = true;
        event_active(q->deliver, 0, 0);
        return q;
    }
    if (cl->cfg.nservers == 0) {
        memset(&q->result, 0, sizeof q->result);
        q->result.status = DNS_ERROR;
        q->result.rcode = -1;
        snprintf(q->result.error, sizeof q->result.error, "no DNS servers configured");
        q->have_result = true;
        event_active(q->deliver, 0, 0);
        return q;
    }
    q->starting = true;
    start_try(q);
    q->starting = false;
    return q;
}

void dns_cancel(struct dns_query *q)
{
    if (q)
        query_free(q);
}

struct dns_client *dns_client_new(struct event_base *base, const struct dns_config *cfg)
{
    struct dns_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return NULL;
    cl->base = base;
    cl->cfg = *cfg;
    if (cl->cfg.rounds == 0)
        cl->cfg.rounds = 1;
    if (cl->cfg.timeout_ms == 0)
        cl->cfg.timeout_ms = 3000;
    if (cfg->cache_max) {
        cl->cache.max = cfg->cache_max;
        cl->cache.nbuckets = cfg->cache_max < 64 ? 64 : cfg->cache_max;
        cl->cache.buckets = calloc(cl->cache.nbuckets, sizeof *cl->cache.buckets);
        if (!cl->cache.buckets) {
            free(cl);
            return NULL;
        }
    }
    return cl;
}

void dns_client_free(struct dns_client *cl)
{
    if (!cl)
        return;
    while (cl->queries)
        query_free(cl->queries);
    while (cl->cache.lru_head)
        cache_remove(&cl->cache, cl->cache.lru_head);
    free(cl->cache.buckets);
    free(cl);
}

struct sync_state {
    struct dns_answer *out;
    bool done;
};

static void sync_cb(const struct dns_answer *a, void *arg)
{
    struct sync_state *st = arg;
    st->done = dns_answer_copy(st->out, a) == 0;
}

int dns_lookup_sync(const struct dns_config *cfg, const char *name, uint16_t type, struct dns_answer *out)
{
    struct event_base *base = event_base_new();
    if (!base)
        return -1;
    struct dns_config c = *cfg;
    c.cache_max = 0;
    struct dns_client *cl = dns_client_new(base, &c);
    struct sync_state st = { out, false };
    if (cl && dns_lookup(cl, name, type, sync_cb, &st))
        event_base_dispatch(base);
    dns_client_free(cl);
    event_base_free(base);
    return st.done ? 0 : -1;
}

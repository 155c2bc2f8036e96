/* https_fetch — libcurl multi on libevent; see https_fetch.h. */
#include "lib/https_fetch.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct xfer {
    struct https_fetcher *f;
    CURL *easy;
    struct curl_slist *resolve, *headers;
    https_fetch_cb cb;
    void *arg;
    char *body;
    size_t len, cap, max;
    bool too_large;
    char errbuf[CURL_ERROR_SIZE];
    struct xfer *next;
};

struct https_fetcher {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct xfer *active;
    unsigned n_active;
};

/* The event watching one of curl's sockets, kept as curl's socket pointer. */
struct sock {
    struct event *ev;
};

static void check_done(struct https_fetcher *f);

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct https_fetcher *f = arg;
    int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(f->multi, fd, flags, &running);
    check_done(f);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct https_fetcher *f = arg;
    int running;
    curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(f);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct https_fetcher *f = userp;
    struct sock *k = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            event_free(k->ev);
            free(k);
            curl_multi_assign(f->multi, s, NULL);
        }
        return 0;
    }
    if (!k) {
        k = calloc(1, sizeof *k);
        if (!k)
            return -1;
        curl_multi_assign(f->multi, s, k);
    } else {
        event_free(k->ev);
    }
    short ev = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    k->ev = event_new(f->base, s, ev, on_socket_event, f);
    if (!k->ev || event_add(k->ev, NULL) < 0)
        return -1;
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct https_fetcher *f = userp;
    if (timeout_ms < 0) {
        evtimer_del(f->timer);
        return 0;
    }
    struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
    return evtimer_add(f->timer, &tv);
}

static size_t write_cb(char *p, size_t size, size_t n, void *userp)
{
    struct xfer *x = userp;
    size_t len = size * n;
    if (len > x->max - x->len) {
        x->too_large = true;
        return 0;   /* curl stops with CURLE_WRITE_ERROR */
    }
    if (x->len + len + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + len + 1)
            cap *= 2;
        if (cap > x->max + 1)
            cap = x->max + 1;
        char *b = realloc(x->body, cap);
        if (!b)
            return 0;
        x->body = b;
        x->cap = cap;
    }
    memcpy(x->body + x->len, p, len);
    x->len += len;
    x->body[x->len] = '\0';
    return len;
}

static void xfer_free(struct xfer *x)
{
    curl_multi_remove_handle(x->f->multi, x->easy);
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->resolve);
    curl_slist_free_all(x->headers);
    free(x->body);
    free(x);
}

static void unlink_xfer(struct https_fetcher *f, struct xfer *x)
{
    for (struct xfer **pp = &f->active; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            f->n_active--;
            return;
        }
}

static enum https_status classify(CURLcode rc, const struct xfer *x, long code)
{
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return HTTPS_TOO_LARGE;
    switch (rc) {
    case CURLE_OK:
        break;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTPS_TIMEOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return HTTPS_TLS;
    default:
        return HTTPS_TRANSPORT;
    }
    if (code >= 300 && code < 400)
        return HTTPS_REDIRECT;
    if (code < 200 || code >= 300)
        return HTTPS_HTTP;
    return HTTPS_OK;
}

static void check_done(struct https_fetcher *f)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        struct https_result r;
        memset(&r, 0, sizeof r);
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &r.http_code);
        const char *ct = NULL;
        if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            snprintf(r.content_type, sizeof r.content_type, "%s", ct);
        r.status = classify(rc, x, r.http_code);
        r.body = x->body ? x->body : "";
        r.len = x->len;
        if (r.status == HTTPS_TOO_LARGE)
            snprintf(r.error, sizeof r.error, "response longer than %zu octets", x->max);
        else if (rc != CURLE_OK)
            snprintf(r.error, sizeof r.error, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        else if (r.status != HTTPS_OK)
            snprintf(r.error, sizeof r.error, "HTTP status %ld%s", r.http_code,
                     r.status == HTTPS_REDIRECT ? " (redirects are not followed)" : "");
        unlink_xfer(f, x);
        x->cb(x->arg, &r);
        xfer_free(x);
    }
}

struct https_fetcher *https_fetcher_new(struct event_base *base)
{
    /* curl's global state is process-wide by design; set up once, before any
       handle, and never torn down (the process exits with it). */
    static bool inited;
    if (!inited) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        inited = true;
    }
    struct https_fetcher *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->base = base;
    f->multi = curl_multi_init();
    f->timer = evtimer_new(base, on_timer, f);
    if (!f->multi || !f->timer) {
        https_fetcher_free(f);
        return NULL;
    }
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
    return f;
}

void https_fetcher_free(struct https_fetcher *f)
{
    if (!f)
        return;
    while (f->active) {
        struct xfer *x = f->active;
        f->active = x->next;
        xfer_free(x);
    }
    if (f->multi)
        curl_multi_cleanup(f->multi);
    if (f->timer)
        event_free(f->timer);
    free(f);
}

int https_fetch_start(struct https_fetcher *f, const struct https_request *req, https_fetch_cb cb, void *arg)
{
    if (strncasecmp(req->url, "https://", 8) != 0 || f->n_active >= HTTPS_FETCH_MAX_ACTIVE || req->max_body == 0)
        return -1;
    struct xfer *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->f = f;
    x->cb = cb;
    x->arg = arg;
    x->max = req->max_body;
    x->easy = curl_easy_init();
    if (!x->easy) {
        free(x);
        return -1;
    }
    CURL *e = x->easy;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) != CURLE_OK;
    if (req->ca_file && req->ca_file[0])
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;     /* no proxy from the environment */
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : 60000L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_body) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, x) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "Ferry") != CURLE_OK;
    if (req->resolve) {
        x->resolve = curl_slist_append(NULL, req->resolve);
        bad |= !x->resolve || curl_easy_setopt(e, CURLOPT_RESOLVE, x->resolve) != CURLE_OK;
    }
    if (req->post) {
        char h[160];
        snprintf(h, sizeof h, "Content-Type: %s", req->post_type ? req->post_type : "application/octet-stream");
        x->headers = curl_slist_append(NULL, h);
        bad |= !x->headers || curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->post_len) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->post) != CURLE_OK;
    }
    if (bad || curl_multi_add_handle(f->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        curl_slist_free_all(x->resolve);
        curl_slist_free_all(x->headers);
        free(x);
        return -1;
    }
    x->next = f->active;
    f->active = x;
    f->n_active++;
    return 0;
}

const char *https_status_name(enum https_status s)
{
    static const char *const names[] = { "ok", "http-error", "redirect", "tls", "too-large", "timeout",
                                         "transport" };
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

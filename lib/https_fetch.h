/*
 * https_fetch — HTTPS requests (GET, or POST of a body) with libcurl's multi
 * interface on a libevent loop: the caller's loop never blocks on the network.
 * Used by the queue process for MTA-STS policies (RFC 8461 §3.3) and TLS-RPT
 * https: reports (RFC 8460 §3); nothing here knows about mail.
 *
 * Every request is bounded: https only (curl refuses any other scheme), never a
 * redirect (a 3xx answer is an error of kind HTTPS_REDIRECT, its Location
 * ignored), the server certificate verified against the system CAs or ca_file,
 * the host name checked; at most max_body octets of response (more is
 * HTTPS_TOO_LARGE, stopped while reading, whatever Content-Length said); a total
 * time limit; no cookies, no proxy from the environment, no HTTP caching. At most
 * HTTPS_FETCH_MAX_ACTIVE requests at once (https_fetch_start fails beyond it).
 *
 * The callback runs once per started request, from the loop (never inside
 * https_fetch_start), with the body valid only during the call. Freeing the
 * fetcher cancels what is running without calling back.
 */
#ifndef FERRY_HTTPS_FETCH_H
#define FERRY_HTTPS_FETCH_H

#include <stddef.h>

struct event_base;

#define HTTPS_FETCH_MAX_ACTIVE 64

enum https_status {
    HTTPS_OK,           /* a 2xx answer */
    HTTPS_HTTP,         /* another status (4xx, 5xx, 1xx) */
    HTTPS_REDIRECT,     /* 3xx: refused */
    HTTPS_TLS,          /* certificate not trusted, wrong name, handshake failed */
    HTTPS_TOO_LARGE,
    HTTPS_TIMEOUT,
    HTTPS_TRANSPORT,    /* DNS, connect, reset, anything else */
};

struct https_request {
    const char *url;
    const char *ca_file;        /* NULL: the system store */
    size_t max_body;
    long timeout_ms;
    const void *post;           /* NULL: GET */
    size_t post_len;
    const char *post_type;      /* Content-Type of the POST body */
    const char *resolve;        /* NULL, or curl's "HOST:PORT:ADDR" (tests) */
};

struct https_result {
    enum https_status status;
    long http_code;
    const char *body;           /* NUL-terminated after len */
    size_t len;
    char content_type[128];     /* as sent, or "" */
    char error[256];
};

typedef void (*https_fetch_cb)(void *arg, const struct https_result *r);

struct https_fetcher;

struct https_fetcher *https_fetcher_new(struct event_base *base);
void https_fetcher_free(struct https_fetcher *f);

/* 0 started (cb will run); -1 refused at once (bad URL scheme, too many running,
   out of memory). */
int https_fetch_start(struct https_fetcher *f, const struct https_request *req, https_fetch_cb cb, void *arg);

const char *https_status_name(enum https_status s);

#endif

/*
 * pull_client_int — what pull_client.c (the scheduler: scans, back-off, expiry)
 * and pull_session.c (one pull: connect, EHLO, STARTTLS, GTML, read, store,
 * QUIT) share. Internal to queue/pull_*.c; pull_client.h is the contract.
 */
#ifndef FERRY_QUEUE_PULL_CLIENT_INT_H
#define FERRY_QUEUE_PULL_CLIENT_INT_H

#include "delivery/smtp_reply.h"
#include "lib/buf.h"
#include "lib/db.h"
#include "lib/envelope.h"
#include "lib/ratelimit.h"
#include "pull/classify.h"
#include "pull/msid.h"
#include "pull/notice.h"
#include "queue/disk_child.h"
#include "queue/pull_client.h"

#include <event2/bufferevent.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <time.h>

#define BACKOFF_SLOTS   1000

enum ps_state { PS_CONNECT, PS_GREETING, PS_EHLO, PS_STARTTLS, PS_HANDSHAKE, PS_GTML, PS_BODY, PS_STORE, PS_QUIT };

struct backoff {
    char key[PULL_USER_MAX + NOTICE_ID_LEN + 2];
    time_t next;
    bool plaintext;                 /* the last TLS handshake failed: the next try goes without */
};

struct pull_session;

struct pull_client {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct spool *sp;
    void (*queued)(const char *id, void *arg);
    void *arg;
    struct fdb_env *env;
    struct msid_key key;
    struct notice_store *notices;
    struct pull_lists *lists;
    struct ratelimit *peer_rate;
    SSL_CTX *tls_ctx;               /* STARTTLS on pulls (pull_tls.h); NULL: plaintext only */
    struct event *timer;
    time_t last_scan;               /* nudges within a second of a scan wait for the next second */
    time_t next_scan;               /* when the timer runs the next scan */
    bool closing;                   /* pull_client_free: no more scans */
    time_t last_expiry;
    char cursor[PULL_USER_MAX + NOTICE_ID_LEN + 3];  /* where the next scan reads from */
    size_t cursor_len;                                 /* 0: the start */
    struct disk_child *expiry;      /* the running notice/greylist expiry sweep */
    struct pull_session *active;
    size_t nactive;
    struct backoff backoff[BACKOFF_SLOTS];
};

struct pull_session {
    struct pull_client *pc;
    struct pull_session *next;
    struct pull_notice n;
    struct bufferevent *bev;
    struct event *timer;
    enum ps_state state;
    struct smtp_reply_parser parser;
    struct smtp_reply reply;
    struct buf body;
    bool body_started;
    struct timespec deadline;       /* monotonic: the whole pull must end by then */
    struct envelope env;            /* of the pulled message, from PS_STORE on */
    char hdr[1200];                 /* its Received: field */
    size_t hdr_len;
    struct disk_child *store;       /* PS_STORE: the child writing it to the spool */
    bool peer_gone;                 /* the SMTA hung up during PS_STORE */
    bool plaintext;                 /* no STARTTLS: the previous handshake with this holder failed */
    char tls_trace[120];            /* "TLSv1.3 TLS_AES_256_GCM_SHA384" once TLS is up, else "" */
};

/* The back-off slot of notice n; make: take a free (or the oldest) slot when it
   has none. NULL only when !make and none. */
struct backoff *pull_backoff_slot(struct pull_client *p, const struct pull_notice *n, bool make);
/* The next scan at t at the latest. */
void pull_wake_at(struct pull_client *p, time_t t);
/* Start one pull of n (it joins p->active); failures are logged and backed off. */
void pull_session_start(struct pull_client *p, const struct pull_notice *n);
/* Close and free s (and nudge the scan: its slot is free). */
void pull_session_end(struct pull_session *s);

#endif

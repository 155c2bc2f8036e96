/*
 * smtp_server — the smtp process: listeners, connection limits, group commit.
 *
 * Owns every session. A session that has received a whole message hands its draft
 * to smtp_server_commit; the drafts handed over in the same turn of the event loop
 * form one batch, committed with one directory fsync by the spool flusher's
 * threads while the loop goes on (smtp_commit.c, queue/spool_flusher.h); then
 * each session is told the outcome, and the parent which IDs are now queued.
 */
#ifndef FERRY_SMTP_SERVER_H
#define FERRY_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/local_rcpt.h"
#include "lib/settings.h"
#include "queue/spool.h"

#include <openssl/ssl.h>

struct event_base;
struct ipc_chan;
struct smtp_session;
struct ratelimit;
struct dns_client;
struct dkim_keystore;
struct keyclient;
struct fdb_env;
struct dmarc_agg;
struct userdb;
struct authclient;
struct smtp_gtml_ctx;
struct smtp_pull;
struct spool_flusher;
struct smtp_park;

struct smtp_server {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct spool spool;
    struct ipc_chan *parent;
    struct evconnlistener *listeners[SETTINGS_MAX_LISTEN];
    struct smtp_session *sessions;      /* doubly linked list */
    size_t nsessions;
    struct smtp_session **batch;        /* the forming batch: waiting for the next group commit */
    size_t nbatch, batch_cap;
    struct event *commit_ev;            /* hands the forming batch to the flusher (smtp_commit_run) */
    struct spool_flusher *flusher;      /* batches in flight (smtp_commit.c) */
    struct event *stop_timer;
    struct ratelimit *conn_rate;        /* max_connection_rate per client IP; NULL: off */
    struct dns_client *dns;             /* receive-time checks (DKIM keys, SPF...) */
    struct dkim_keystore *dkim_keys;    /* NULL: no dkim_key_dir, nothing is signed */
    struct keyclient *keyclient;        /* the key process, which signs for dkim_keys */
    SSL_CTX *tls;                       /* NULL: no certificate, no STARTTLS or smtps */
    struct fdb_env *db;                 /* the data_dir environment */
    struct userdb *users;               /* the user directory (no secrets); NULL: unavailable */
    struct authclient *auth;            /* the auth process, which verifies AUTH */
    struct dmarc_agg *dmarc_agg;        /* NULL: DMARC results are not counted for reports */
    struct ratelimit *failure_limiter;  /* DMARC failure reports per destination; NULL: off */
    struct local_maps local_maps;       /* RCPT checks of local recipients (local_recipients = known) */
    struct ratelimit *auth_failures;    /* per client IP, for the AUTH lock-out */
    struct smtp_gtml_ctx *gtml;         /* DMTP GTML service (smtp_gtml.h); NULL: unavailable */
    struct smtp_pull *pull;             /* DMTP receiver-pull stores; NULL: pull_mode = off */
    struct smtp_park *park;             /* idle connections in the holder (smtp_park.h); NULL: off */
    struct event *accept_pause;         /* listeners off for a moment: out of descriptors */
    bool stopping;
};

/* Stop accepting for ACCEPT_PAUSE_MS (out of descriptors: the clients wait in
   the listen backlog). */
void smtp_server_pause_accepting(struct smtp_server *srv);

/* Monotonic seconds, for rate limits (never steps with the wall clock). */
double smtp_server_now(const struct smtp_server *srv);

/* smtp_commit.c. A session whose draft is complete (message and envelope
   written) joins the forming batch; smtp_session_committed tells it the outcome
   later, never before its batch is durable. */
void smtp_server_commit(struct smtp_server *srv, struct smtp_session *s);
int  smtp_commit_init(struct smtp_server *srv);
void smtp_commit_run(int fd, short what, void *arg);    /* commit_ev's callback */
/* The loop has stopped: wait for the batches in flight and answer them; the
   forming batch is dropped (its drafts go with their sessions, unacknowledged). */
void smtp_commit_stop(struct smtp_server *srv);
/* DMTP: notices to pull at once were stored (NOTICE_AUTO) or a user's reply asked
   for one (NOTICE_FETCH_REQUESTED); the queue pulls now. */
void smtp_server_pull_nudge(struct smtp_server *srv);
/* A session ended: unlink and free it. */
void smtp_server_session_gone(struct smtp_server *srv, struct smtp_session *s);

/* Landlock the smtp process to the paths it still opens (smtp_confine.c); 0 also
   when the kernel has no Landlock (logged), -1 when confinement failed. */
int smtp_confine(const struct ferry_config *cfg);

#endif

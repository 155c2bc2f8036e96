/*
 * remote_lines — the queue process's remote deliveries: which message goes out on
 * which connection, and when. The per-destination lines live here; how one
 * session reaches a destination (MX, TLS policy, TLSA, the SMTP client) is
 * delivery/remote_attempt.h's plan, started with one call and answering through
 * one callback per message.
 *
 * The queue hands over jobs (one message's recipients at one destination
 * domain). Per destination, jobs wait in arrival order; a session starts while
 * the destination has fewer than smtp_dest_concurrency sessions and the process
 * fewer than smtp_total_concurrency. A session that finishes a message takes
 * the destination's next waiting job on the same connection (when the plan
 * allows it: remote_attempt_can_take). With smtp_dest_rate, message starts
 * toward one destination are spaced 1/rate seconds apart (a reused connection
 * waits; a new one is not opened early).
 *
 * A destination that cannot be reached at all (the plan says dest_down: routing
 * failed, or every address failed before a transaction began) answers every job
 * waiting for it with the same result: one dead domain costs one attempt, not
 * one per queued message. A message a reused connection dropped before the
 * server took it (smtp_client not_attempted) is put back at the head of the
 * line once.
 *
 * With relayhost set, every destination is reached through that host, and all
 * of them share one line (the concurrency, rate and dead-host rules are the
 * relay's); AUTH and the relay's TLS are the plan's.
 *
 * Ownership: a job belongs to the caller; it must stay valid (with its
 * envelope and msg_fd) until its done callback, which runs exactly once, from
 * the event loop, never inside remote_lines_submit. remote_lines_free drops every
 * job without calling back (process shutdown: the envelopes on disk still say
 * what is left to do).
 */
#ifndef FERRY_REMOTE_LINES_H
#define FERRY_REMOTE_LINES_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/relayhost_creds.h"
#include "delivery/smtp_client.h"
#include "lib/settings.h"
#include "lib/envelope.h"

struct event_base;
struct dns_client;

struct remote_job {
    const struct envelope *env;
    const size_t *rcpts;                  /* indices into env->rcpts */
    size_t nrcpts;                        /* 1..SMTP_CLIENT_MAX_RCPTS */
    int msg_fd;
    char dest[256];                       /* the recipients' domain, lower case */
    /* r->rcpts[i] is for rcpts[i]. */
    void (*done)(struct remote_job *j, const struct smtp_client_result *r, void *arg);
    void *arg;
    /* private */
    struct remote_job *next;
    bool requeued;
};


struct remote_lines;

/* NULL with err: see remote_ctx_new (delivery/remote_attempt.h), which gets
   creds and dmtp. */
struct remote_lines *remote_lines_new(struct event_base *base, const struct ferry_config *cfg, struct dns_client *dns,
                              const struct relayhost_creds *creds, const struct smtp_dmtp_hooks *dmtp, char *err,
                              size_t errsz);
/* 0: taken, answered later; -1: out of memory, not taken (the caller defers). */
int  remote_lines_submit(struct remote_lines *o, struct remote_job *j);
void remote_lines_free(struct remote_lines *o);

#endif

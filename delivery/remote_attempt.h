/*
 * remote_attempt — one remote delivery session, planned and run: the plan that
 * takes a destination domain to an SMTP connection, and the transactions on it.
 * Called by queue/remote_lines.c, which keeps the per-destination lines
 * (concurrency, rate, connection reuse) and decides which message goes next.
 *
 * The plan, one step after the other (remote_attempt.c's enum ra_step):
 *   MX      the destination's MX hosts and addresses (delivery/mx.h), or the
 *           relay host's when relayhost is set;
 *   POLICY  the configured TLS level (delivery/tls_policy.h) for the domain, or
 *           VERIFY for a relay host the table does not name; a REQUIRETLS
 *           message needs a DNSSEC-validated MX (RFC 8689 §4.2.1);
 *   STS     the MTA-STS policy (delivery/mta_sts.h; off with mta_sts = no, never
 *           for a relay host): enforce keeps only the MX hosts it names (none
 *           left: 4.7.5, dest_down) and requires PKIX for the MX name where
 *           DANE does not authenticate; testing only logs; a TLS policy table
 *           entry for the domain overrides it;
 *   TLSA    DANE lookups (delivery/dane.h), one per MX host with validated
 *           addresses, when the level is DANE or the message is REQUIRETLS;
 *           a host whose lookup failed is skipped (RFC 7672 §2.2);
 *   SESSION each target's TLS level and mode, then delivery/smtp_client.h
 *           with the TLS hooks, AUTH for the relay host, source address, DMTP.
 *
 * Completion: done runs once per transaction, from the event loop, never
 * inside remote_attempt_start; r holds a result for every recipient of that
 * transaction (made here, the same for each, when the plan stopped before a
 * session). dest_down says the destination as a whole cannot be reached now
 * (the DNS failed, every address failed before a transaction began at the
 * configured level, or no host's TLSA records could be had): the caller may
 * answer everything else waiting for it with the same status (its first
 * recipient's). A REQUIRETLS message that raised the level never condemns the
 * destination. Inside done, the caller may give the session its next
 * transaction (remote_attempt_next, after remote_attempt_can_take); when done
 * returns without one, the attempt ends and frees itself.
 *
 * Ownership: the envelope, recipient indices and msg_fd of a transaction stay
 * the caller's and must stay valid until its done. remote_ctx holds what every
 * attempt shares (TLS client context, policy table, relay host, source
 * addresses, AUTH credentials, DMTP hooks) and must outlive them.
 */
#ifndef FERRY_REMOTE_ATTEMPT_H
#define FERRY_REMOTE_ATTEMPT_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/delivery.h"
#include "delivery/relayhost_creds.h"
#include "delivery/smtp_client.h"
#include "lib/settings.h"

struct event_base;
struct dns_client;
struct remote_ctx;
struct remote_attempt;

/* NULL with err: a relayhost, source address, TLS policy file or CA file that
   cannot be used. dmtp (may be NULL; kept, not copied): DMTP hold hooks for
   peers that offer MSID, never used through a relay host. */
struct remote_ctx *remote_ctx_new(struct event_base *base, const struct ferry_config *cfg, struct dns_client *dns,
                                  const struct relayhost_creds *creds, const struct smtp_dmtp_hooks *dmtp, char *err,
                                  size_t errsz);
/* After every attempt has been cancelled: also ends the SMTP clients still
   closing after their last transaction. */
void remote_ctx_free(struct remote_ctx *x);

typedef void (*remote_attempt_done)(struct remote_attempt *a, const struct smtp_client_result *r, bool dest_down,
                                    void *arg);

/* Starts the plan toward dest (the recipients' domain; ignored through a relay
   host) for the first transaction t (t->delay_ms unused). NULL with st set
   (4.3.0) when it cannot even start; done is then never called. */
struct remote_attempt *remote_attempt_start(struct remote_ctx *x, const char *dest, const struct smtp_txn_params *t,
                                            remote_attempt_done done, void *arg, struct delivery_status *st);
/* Inside done only: may the session carry env next? It must be open, and a
   REQUIRETLS message rides only a session planned for REQUIRETLS and verified. */
bool remote_attempt_can_take(const struct remote_attempt *a, const struct envelope *env);
/* Inside done only: the next transaction on the same session (done again when
   it is over). 0 ok; -1 (memory, or not allowed): the attempt ends as if it
   had not been called. */
int  remote_attempt_next(struct remote_attempt *a, const struct smtp_txn_params *t);
/* Ends the attempt at once, without calling done. Not from inside done. */
void remote_attempt_cancel(struct remote_attempt *a);

/* A result made without a session: the same status for every recipient (when
   memory is short, for the first only; the caller's line retries the others). */
struct remote_uniform {
    struct smtp_client_result r;
    struct smtp_rcpt_result one;
};
void remote_uniform_init(struct remote_uniform *u, const size_t *rcpts, size_t n, const struct delivery_status *st,
                         const char *remote_host, const char *tls);
void remote_uniform_free(struct remote_uniform *u);

#endif

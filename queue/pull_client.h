/*
 * pull_client — the queue process's DMTP pulls (draft -03 §3.5 "Procedure to
 * retrieve"; RFC-NOTES.md "DMTP"), with pull_mode = on.
 *
 * Every PULL_SCAN_S seconds, and at once after pull_client_nudge (ferryctl pull
 * fetch, through the control socket), it expires notices and greylist triplets
 * and takes the notices in state NOTICE_AUTO or NOTICE_FETCH_REQUESTED
 * (pull/notice.h). For each: connect to the peer IP recorded with the notice at
 * smtp_port (never a loopback, private, link-local or unique-local address unless
 * pull_private_peers = yes), EHLO, "GTML <msid> <receiver>"; a 250 (a 354 or a
 * literal "DATA" line before the body is tolerated) is followed by the message,
 * dot-stuffed, ended by "."; it is read whole (at most message_size_limit),
 * queued for local delivery with a Received: field naming the pull
 * (spool_enqueue: durable), then the notice is dropped and the sender becomes a
 * correspondent of the user (PULL_CORR_PULLED), and only then QUIT is sent (the
 * SMTA counts the pull at our QUIT). A crash after the enqueue and before the
 * drop pulls again (at least once, never lost).
 *
 * Failures (connection, timeout, refusal, a message too big) count an attempt on
 * the notice and are retried with a doubling back-off (1 min to 1 h, kept in
 * memory: a restart retries at once) until the notice expires. Non-blocking:
 * libevent bufferevents; at most PULL_ACTIVE_MAX pulls at once and one per peer,
 * and at most PULL_PEER_RATE pulls per peer and minute; each pull ends by
 * pull_deadline whatever the peer sends. A scan takes at most 2 candidates per
 * user and per peer, oldest first, so none starves the others.
 */
#ifndef FERRY_PULL_CLIENT_H
#define FERRY_PULL_CLIENT_H

#include "lib/settings.h"
#include "queue/spool.h"

struct event_base;
struct pull_client;

#define PULL_SCAN_S       30
#define PULL_ACTIVE_MAX   10
#define PULL_PEER_RATE    30

/* queued: a pulled message was committed to queue/ under id (the queue indexes it). */
struct pull_client *pull_client_new(struct event_base *base, const struct ferry_config *cfg, struct spool *sp,
                                    void (*queued)(const char *id, void *arg), void *arg, char *err,
                                    size_t errlen);
/* Look at the notices now (a fetch was asked for). */
void pull_client_nudge(struct pull_client *p);
/* Ends every pull in progress (their notices stay; the next start retries). */
void pull_client_free(struct pull_client *p);

#endif

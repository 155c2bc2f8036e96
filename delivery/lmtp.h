/*
 * lmtp — a client of RFC 2033 LMTP, for handing local mail to a mail store
 * (Dovecot, Cyrus, another Ferry) over a unix socket or TCP.
 *
 * spec is "unix:/path/to/socket" or "inet:HOST:PORT" (HOST an IP address, or a
 * name the system resolver knows; [IPv6] in brackets). One transaction carries the
 * message to n recipients: LHLO, MAIL, one RCPT each, DATA (CRLF line ends, dot
 * stuffing), then one reply per accepted recipient, in RCPT order (RFC 2033 §4.2).
 * sts[i] receives recipient i's result: 2xx OK, 4xx DEFER, 5xx FAIL, the server's
 * reply kept in the text; a broken connection or a timeout is DEFER 4.4.2 for
 * every recipient still unanswered, a refused connection DEFER 4.4.1.
 *
 * I/O is blocking, each read and write bounded by timeout seconds (SO_RCVTIMEO,
 * SO_SNDTIMEO), so one call lasts at most a few timeouts; the caller (a delivery
 * worker, never the queue process's event loop) accepts that pause, as it does
 * for local disk writes. After a
 * transaction the connection is kept (one per process, for the last spec used)
 * and reused for the next message after RSET, up to LMTP_IDLE seconds idle (the
 * caller's timer calls lmtp_close then; a connection found older is replaced);
 * a kept connection that fails RSET is replaced once. Connecting is bounded by
 * timeout too (SO_SNDTIMEO is set before connect, unix and TCP alike); an inet
 * HOST that is a name waits for the system resolver: use an address.
 */
#ifndef FERRY_LMTP_H
#define FERRY_LMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/delivery.h"
#include "lib/msgfile.h"

#define LMTP_IDLE 5

void lmtp_deliver(const char *spec, const char *lhlo_name, unsigned timeout, const char *sender,
                  const char *const *rcpts, size_t n, const char *prefix, struct msg_src msg,
                  struct delivery_status *sts);

/* Close the kept connection (QUIT), if any. */
void lmtp_close(void);
/* Is a connection kept open? */
bool lmtp_is_open(void);

#endif

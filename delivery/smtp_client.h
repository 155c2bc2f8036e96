/*
 * smtp_client — one outbound SMTP transaction: one message, its recipients for one
 * destination, over libevent bufferevents, never blocking. Called by the queue
 * process once delivery/mx.h has produced the list of addresses to try.
 *
 * The session (RFC 5321 client side):
 *  - Connects to each target in order (connect timeout, optional source address
 *    bound when its family matches the target's) until one greets with 2xx and
 *    accepts EHLO, or HELO after a 5xx to EHLO.
 *  - Checks the message against the peer's extensions before MAIL: a SIZE limit
 *    smaller than the message fails it (5.3.4); an 8-bit body to a peer without
 *    8BITMIME fails (5.6.3: Ferry does not downgrade to 7 bit, see RFC-NOTES.md);
 *    an SMTPUTF8 message to a peer without SMTPUTF8 fails (5.6.7); a REQUIRETLS
 *    message needs verified TLS (5.7.10) and the peer's REQUIRETLS (5.7.30). Such a
 *    mismatch, like any failure before MAIL, moves on to the next target.
 *  - MAIL, RCPTs and DATA in one write when the peer offers PIPELINING, one at a
 *    time otherwise; DSN parameters only to a peer offering DSN.
 *  - The body is read from msg_fd (pread from offset 0, in chunks) and sent
 *    dot-stuffed with CRLF line ends (smtp_cmds.h).
 *  - QUIT, and the completion callback.
 *
 * Results: each recipient gets OK, DEFER or FAIL with a text that starts with an
 * enhanced status code and quotes the server ("5.1.1 host mx.example[192.0.2.1]
 * said: 550 5.1.1 no such user (in reply to RCPT TO)"); the server's reply itself
 * is kept verbatim (flattened to one line) for the DSN's Diagnostic-Code. A RCPT
 * answered 2xx takes the reply to the end of data (or to DATA when that fails).
 * Once MAIL is sent the transaction's outcome is final for this attempt: a lost
 * connection or a timeout defers the recipients still open (4.4.2), and no other
 * target is tried (the peer may have the message already). When every target
 * failed before MAIL, all recipients get the last failure: permanent only when
 * every target's failure was permanent, temporary otherwise.
 *
 * Timeouts are RFC 5321 §4.5.3.2's by default; tests shorten them. The process
 * ignores SIGPIPE (the daemon's processes do), since a peer may close at any time.
 *
 * Ownership: the client copies the parameters it needs except env (and its
 * recipients) and msg_fd, which the caller keeps valid until the callback. The
 * callback runs exactly once, from the event loop, never inside smtp_client_start,
 * unless smtp_client_cancel is called first; the client frees itself after the
 * callback returns, and the result is valid only during the callback.
 */
#ifndef FERRY_SMTP_CLIENT_H
#define FERRY_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "delivery/delivery.h"
#include "delivery/mx.h"
#include "queue/envelope.h"

struct event_base;

/* Recipients per transaction: RFC 5321 §4.5.3.1.8 has servers take at least 100;
   a caller with more starts another transaction for the rest. */
#define SMTP_CLIENT_MAX_RCPTS  1000
#define SMTP_CLIENT_REPLY_MAX  400

/* Milliseconds each. */
struct smtp_timeouts {
    unsigned connect;       /* TCP connect (not in the RFC; 30 s) */
    unsigned greeting;      /* 5 min, §4.5.3.2.1 */
    unsigned helo;          /* EHLO/HELO: 5 min, as for MAIL */
    unsigned mail;          /* 5 min, §4.5.3.2.2 */
    unsigned rcpt;          /* 5 min, §4.5.3.2.3 */
    unsigned data_init;     /* 2 min, §4.5.3.2.4 */
    unsigned data_block;    /* 3 min per send that makes no progress, §4.5.3.2.5 */
    unsigned data_final;    /* 10 min, §4.5.3.2.6 */
    unsigned quit;          /* the reply to QUIT: 1 min */
};

void smtp_timeouts_default(struct smtp_timeouts *t);

struct smtp_client_params {
    const char *helo_name;                 /* our host name for EHLO/HELO */
    const struct sockaddr *source;         /* NULL: the kernel chooses */
    socklen_t source_len;
    struct smtp_timeouts timeouts;
    const struct envelope *env;            /* sender, size, DSN and body flags */
    const size_t *rcpts;                   /* indices into env->rcpts, in order */
    size_t nrcpts;                         /* 1..SMTP_CLIENT_MAX_RCPTS */
    int msg_fd;                            /* the message as spooled (CRLF lines) */
    const struct mx_target *targets;       /* in the order to try */
    size_t ntargets;                       /* 1..MX_MAX_ADDRS */
};

struct smtp_rcpt_result {
    size_t index;                          /* into env->rcpts */
    struct delivery_status st;
    /* The server's reply that decided it, one line ("550 5.1.1 no such user"); ""
       when Ferry decided without one (timeout, capability, connection lost). */
    char reply[SMTP_CLIENT_REPLY_MAX];
    /* Delivered to a peer without DSN while NOTIFY=SUCCESS was asked: Ferry owes
       the sender the "relayed" DSN (RFC 3461 §6.2.1.2). */
    bool dsn_relayed;
};

struct smtp_client_result {
    size_t nrcpts;
    struct smtp_rcpt_result *rcpts;        /* in the order of params.rcpts */
    /* The last server connected to (for the DSN's Remote-MTA), "" when none. */
    char remote_host[DNS_NAME_MAX + 1];
    char remote_ip[64];
    unsigned targets_tried;
};

typedef void (*smtp_client_done)(const struct smtp_client_result *r, void *arg);

struct smtp_client;

/* NULL with errno set: EINVAL for bad parameters, ENOMEM. */
struct smtp_client *smtp_client_start(struct event_base *base, const struct smtp_client_params *p,
                                      smtp_client_done done, void *arg);
/* Ends the session at once (no QUIT), without calling the callback. */
void smtp_client_cancel(struct smtp_client *c);

#endif

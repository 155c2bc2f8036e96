/*
 * dsn — build delivery status notifications (RFC 3464 in an RFC 6522
 * multipart/report; RFC 6533 global forms for internationalised mail). Pure:
 * a report description and the original message in, the complete DSN message
 * (headers and body, CRLF line ends) out.
 *
 * The queue calls it for bounces (Action: failed), delay warnings (delayed) and
 * success notices (delivered, relayed); one DSN covers every recipient of one
 * message that it reports on. The caller decides who receives it (the original
 * sender, with the null reverse-path on the envelope) and whether NOTIFY asked
 * for it; this module only writes it.
 *
 * The three parts: a human-readable text/plain explanation, the machine-readable
 * message/delivery-status (message/global-delivery-status when any address is
 * UTF-8), and the original — its header section only (text/rfc822-headers) for
 * RET=HDRS, for delay and success notices, and when the message is larger than
 * DSN_RETURN_FULL_MAX; otherwise the whole message (message/rfc822, or
 * message/global for SMTPUTF8 mail). *needs_8bit tells the caller the DSN must
 * be sent with BODY=8BITMIME (an 8-bit original was returned whole).
 *
 * Long fields are folded at spaces so no line exceeds 998 octets. Every
 * variable text written into a header (diagnostics from remote servers) has its
 * control characters replaced, so a hostile reply cannot inject header lines.
 */
#ifndef FERRY_DSN_H
#define FERRY_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/buf.h"

#define DSN_RETURN_FULL_MAX (10ULL * 1024 * 1024)

enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };

struct dsn_rcpt {
    const char *final_recipient;    /* the address the attempt was made for */
    const char *orcpt_type;         /* ORCPT address-type ("rfc822", "utf-8") or NULL */
    const char *orcpt;              /* ORCPT address as given (decoded xtext), or NULL */
    enum dsn_action action;
    const char *status;             /* "5.1.1", "4.4.1", "2.0.0" */
    const char *remote_mta;         /* host name of the server that answered, or NULL */
    const char *diagnostic;         /* the server's reply or the local error, verbatim, or NULL */
    bool diagnostic_is_smtp;        /* diagnostic is an SMTP reply ("smtp;") not a local text ("x-ferry;") */
    time_t last_attempt;            /* 0: unknown */
    time_t will_retry_until;        /* delayed only; 0: omit */
};

struct dsn_report {
    const char *reporting_mta;      /* our host name */
    const char *queue_id;           /* the original's queue ID, for people and logs */
    const char *envid;              /* ENVID, or NULL */
    const char *original_sender;    /* the To: of the DSN ("" never: callers do not bounce bounces) */
    const char *received_from_mta;  /* the client that handed us the message, or NULL */
    time_t arrival;
    time_t now;                     /* the DSN's Date: (tests pass a fixed time) */
    bool ret_headers_only;          /* RET=HDRS */
    bool smtputf8;                  /* the original was SMTPUTF8 mail */
    const struct dsn_rcpt *rcpts;
    size_t nrcpts;
};

/*
 * Append the DSN (header section, empty line, body) to out. msg is the original
 * as spooled (CRLF). message_id_seed makes the Message-ID and boundary unique (a
 * new queue ID is a good one). 0 ok; -1 when out's limit is reached or the
 * report is inconsistent (no recipients, mixed actions are allowed), err set.
 */
int dsn_build(const struct dsn_report *r, const char *msg, size_t msglen, const char *message_id_seed,
              struct buf *out, bool *needs_8bit, char *err, size_t errlen);

const char *dsn_action_name(enum dsn_action a);

#endif

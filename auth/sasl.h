/*
 * sasl — server side of the SASL mechanisms SMTP AUTH offers (RFC 4954): PLAIN
 * (RFC 4616), LOGIN (the de-facto mechanism: "Username:"/"Password:"), and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677; no channel binding). Pure state machines:
 * the session feeds each client line, as sent (base64), and gets back what to
 * answer; credentials come from the caller's lookup function, so tests need no
 * database.
 *
 * The RFC 4954 base64 layer is handled here: "*" cancels (SASL_CANCELLED, reply
 * 501 5.0.0), "=" is an empty initial response, bad base64 or an over-long line is
 * SASL_MALFORMED (501 5.5.2); wrong credentials are SASL_FAIL (535 5.7.8) with the
 * same timing for unknown users (their proof is checked against made-up keys).
 * SASL_CONTINUE comes with a challenge for "334 <challenge>" (SCRAM's final
 * server message too: the client then answers with an empty line, RFC 4954 §4).
 * PLAIN's authorization identity must be empty or equal the user.
 */
#ifndef FERRY_SASL_H
#define FERRY_SASL_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/credentials.h"

#define SASL_LINE_MAX 12288         /* RFC 4954 §4 */
#define SASL_USER_MAX 255
#define SASL_CHALLENGE_MAX 1024

enum sasl_status { SASL_CONTINUE, SASL_SUCCESS, SASL_FAIL, SASL_MALFORMED, SASL_CANCELLED };

/* 0 with *out filled when user exists, -1 when not. */
typedef int (*sasl_lookup_fn)(void *arg, const char *user, struct credentials *out);

struct sasl_server;

/* NULL when the mechanism is not one of ours (504 5.5.4). Names are case-insensitive. */
struct sasl_server *sasl_start(const char *mech, sasl_lookup_fn lookup, void *arg);
/* The space-separated list for EHLO: "PLAIN LOGIN SCRAM-SHA-256". */
const char *sasl_mechanisms(void);
/* Feed one line. initial: this is AUTH's initial-response argument (NULL/"" when
   none was given: then the first challenge is asked for). */
enum sasl_status sasl_step(struct sasl_server *s, const char *line, size_t len, char *challenge, size_t chsz);
enum sasl_status sasl_initial(struct sasl_server *s, const char *ir, char *challenge, size_t chsz);
/* After SUCCESS: the authenticated user (lower-case). */
const char *sasl_user(const struct sasl_server *s);
/* After FAIL/MALFORMED: why, for the log (never sent to the client). */
const char *sasl_reason(const struct sasl_server *s);
const char *sasl_mech_name(const struct sasl_server *s);
void sasl_free(struct sasl_server *s);

/* Tests: the server nonce SCRAM will use (printable, no ','). */
void sasl_set_nonce(struct sasl_server *s, const char *nonce);

#endif

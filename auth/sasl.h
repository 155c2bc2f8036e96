/*
 * sasl — server side of the SASL mechanisms SMTP AUTH offers (RFC 4954): PLAIN
 * (RFC 4616), LOGIN (the de-facto mechanism: "Username:"/"Password:"), and
 * SCRAM-SHA-256 (RFC 5802, RFC 7677; no channel binding). Pure state machines:
 * the session feeds each client line, as sent (base64), and gets back what to
 * answer. The state machine never sees a credential: where a secret is needed it
 * stops with SASL_VERIFY and a question (sasl_request: a password to check, the
 * SCRAM salt and iteration count to send, a SCRAM proof to check), which the
 * caller has answered by whoever holds the user database (auth/sasl_verify.h, in
 * the auth process), and hands the verdict back with sasl_answer. So the parsing
 * of what a client sends stays in the unprivileged process, and the keys stay in
 * the one that verifies; the caller may wait for the verdict asynchronously.
 *
 * The RFC 4954 base64 layer is handled here: "*" cancels (SASL_CANCELLED, reply
 * 501 5.0.0), "=" is an empty initial response, bad base64 or an over-long line is
 * SASL_MALFORMED (501 5.5.2); wrong credentials are SASL_FAIL (535 5.7.8) with the
 * same timing for unknown users (their proof is checked against made-up keys).
 * SASL_CONTINUE comes with a challenge for "334 <challenge>" (SCRAM's final
 * server message too: the client then answers with an empty line, RFC 4954 §4).
 * SASL_TEMPFAIL: the verifier could not be asked (454 4.7.0).
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

/* The AuthMessage of SCRAM: client-first-bare, server-first, client-final
   without the proof; bounded by what the client may send in two lines. */
#define SASL_AUTH_MESSAGE_MAX (4 * SASL_LINE_MAX)

enum sasl_status { SASL_CONTINUE, SASL_SUCCESS, SASL_FAIL, SASL_MALFORMED, SASL_CANCELLED, SASL_VERIFY,
                   SASL_TEMPFAIL };

/* The question behind SASL_VERIFY. */
enum sasl_question { SASL_Q_PASSWORD = 1, SASL_Q_SCRAM_PARAMS = 2, SASL_Q_SCRAM_PROOF = 3 };
struct sasl_request {
    enum sasl_question q;
    const char *user;                   /* lower-case, 1..SASL_USER_MAX octets */
    const unsigned char *data;          /* PASSWORD: the password; PROOF: the AuthMessage */
    size_t len;
    unsigned char proof[CRED_KEY_LEN];  /* PROOF: the ClientProof */
};
/* The answer. ok: 1 yes (PASSWORD, PROOF) or the parameters are filled
   (PARAMS); 0 no (reason says why, for the log); -1 the verifier could not be
   asked. PARAMS is answered for unknown users too (made-up, stable parameters),
   so the exchange looks the same until the proof. */
struct sasl_verdict {
    int ok;
    char reason[96];
    unsigned char salt[CRED_SALT_LEN];
    size_t salt_len;
    unsigned iterations;
    unsigned char server_sig[CRED_KEY_LEN];     /* PROOF, when ok */
};

struct sasl_server;

/* NULL when the mechanism is not one of ours (504 5.5.4). Names are case-insensitive. */
struct sasl_server *sasl_start(const char *mech);
/* The space-separated list for EHLO: "PLAIN LOGIN SCRAM-SHA-256". */
const char *sasl_mechanisms(void);
/* Feed one line. initial: this is AUTH's initial-response argument (NULL/"" when
   none was given: then the first challenge is asked for). */
enum sasl_status sasl_step(struct sasl_server *s, const char *line, size_t len, char *challenge, size_t chsz);
enum sasl_status sasl_initial(struct sasl_server *s, const char *ir, char *challenge, size_t chsz);
/* After SASL_VERIFY: the question (its pointers stay valid until sasl_answer). */
void sasl_get_request(const struct sasl_server *s, struct sasl_request *out);
/* The verdict for the pending question; the same outcomes as sasl_step. */
enum sasl_status sasl_answer(struct sasl_server *s, const struct sasl_verdict *v, char *challenge, size_t chsz);
/* After SUCCESS: the authenticated user (lower-case). */
const char *sasl_user(const struct sasl_server *s);
/* After FAIL/MALFORMED: why, for the log (never sent to the client). */
const char *sasl_reason(const struct sasl_server *s);
const char *sasl_mech_name(const struct sasl_server *s);
void sasl_free(struct sasl_server *s);

/* Tests: the server nonce SCRAM will use (printable, no ','). */
void sasl_set_nonce(struct sasl_server *s, const char *nonce);

#endif

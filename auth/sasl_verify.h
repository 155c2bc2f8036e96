/*
 * sasl_verify — the other half of auth/sasl.h: answers the questions the SASL
 * state machine asks (is this the password, what are the SCRAM parameters, is
 * this SCRAM proof right) from the credentials a lookup function returns. Only
 * the process that holds the user database's secrets runs it (the auth process,
 * smtpd/authproc.h); the smtp process never sees a StoredKey or ServerKey.
 *
 * Unknown users are answered as if they existed, with keys derived from nothing
 * and a salt that is stable per name but keyed with a random secret of this
 * verifier: the work done and the parameters sent look the same, so nobody can
 * tell a real user from a made-up one before the proof fails. Pure apart from
 * OpenSSL's RNG (for that secret).
 */
#ifndef FERRY_SASL_VERIFY_H
#define FERRY_SASL_VERIFY_H

#include "auth/credentials.h"
#include "auth/sasl.h"

/* 0 with *out filled when user exists, -1 when not (or it cannot be read). */
typedef int (*sasl_lookup_fn)(void *arg, const char *user, struct credentials *out);

struct sasl_verifier;

/* NULL when out of memory or without random numbers. */
struct sasl_verifier *sasl_verifier_new(sasl_lookup_fn lookup, void *arg);
void sasl_verifier_free(struct sasl_verifier *v);
/* Answer q (never ok = -1: that is for whoever could not ask). */
void sasl_verify(struct sasl_verifier *v, const struct sasl_request *q, struct sasl_verdict *out);

#endif

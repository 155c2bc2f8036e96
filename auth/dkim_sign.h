/*
 * dkim_sign — the DKIM signer (RFC 6376 §5, RFC 8463): rsa-sha256 and ed25519-sha256,
 * one or several keys over the same message (dual signing).
 *
 * Who calls it: the daemon for submitted mail (streaming: header block, body chunks,
 * finish), ferryctl dkim sign (whole message), tests. The caller owns the keys
 * (EVP_PKEY from dkim_privkey_load) and prepends the produced fields to the message.
 * Defaults: relaxed/relaxed, t= now, no x=, no l= (a signer has no reason to leave
 * the body open to appending), the header list of dkim_sign_default_headers with
 * over-signing (every present instance plus one, so no instance can be added).
 * Each DKIM-Signature field is folded at tag boundaries (and inside h= and b=) so no
 * line is longer than 78 columns; lines end in CRLF.
 * Failure modes: a message without exactly one From field (RFC 6376 §5.4 requires
 * From to be signed; two From fields make the author ambiguous), a malformed header
 * block, an OpenSSL failure: -1 with one sentence in err.
 */
#ifndef FERRY_DKIM_SIGN_H
#define FERRY_DKIM_SIGN_H

#include "auth/dkim_canon.h"
#include "auth/dkim_key.h"
#include "lib/buf.h"

#include <stdint.h>

struct dkim_sign_key;
/* Signs the 32-octet SHA-256 digest of the header hash input with k (held
   elsewhere: the daemon's key process). sig/siglen in/out; 0 ok, -1 failed. */
typedef int (*dkim_sign_digest_fn)(void *ctx, const struct dkim_sign_key *k, const unsigned char md[32],
                                   unsigned char *sig, size_t *siglen);

struct dkim_sign_key {
    EVP_PKEY *pkey;            /* the private key, or NULL: sign_digest signs */
    enum dkim_algo algo;       /* rsa-sha256 or ed25519-sha256 */
    const char *domain;        /* d= */
    const char *selector;      /* s= */
    dkim_sign_digest_fn sign_digest;
    void *sign_ctx;
};

struct dkim_sign_opts {
    enum dkim_canon hcanon, bcanon;
    int64_t timestamp;         /* t=; < 0 leaves it out */
    int64_t expire;            /* x= seconds after t=; 0 leaves it out */
    const char *identity;      /* i=, or NULL */
    const char *const *headers;/* NULL: the default list */
};

void dkim_sign_opts_init(struct dkim_sign_opts *o, int64_t now);

/* NULL-terminated: From, To, Cc, Subject, Date, Reply-To, Message-ID, In-Reply-To,
   References, MIME-Version, Content-Type, Content-Transfer-Encoding, List-*. */
extern const char *const dkim_sign_default_headers[];

struct dkim_signer;
struct dkim_signer *dkim_signer_new(const struct dkim_sign_key *keys, size_t nkeys,
                                    const struct dkim_sign_opts *o);
int  dkim_signer_header(struct dkim_signer *s, const char *hdr, size_t len, char *err, size_t errsz);
void dkim_signer_body(struct dkim_signer *s, const char *p, size_t n);
/* Appends one DKIM-Signature field per key (each ending in CRLF) to out. */
int  dkim_signer_finish(struct dkim_signer *s, struct buf *out, char *err, size_t errsz);
void dkim_signer_free(struct dkim_signer *s);

/* Whole message in memory. */
int  dkim_sign_message(const struct dkim_sign_key *keys, size_t nkeys, const struct dkim_sign_opts *o,
                       const char *msg, size_t len, struct buf *out, char *err, size_t errsz);

/* The b= value (base64) for a DKIM-Signature field whose b= is present and empty:
   hashes the fields named in h (bottom-up instance selection) and field itself.
   Exposed so tests can reproduce published signatures byte for byte. */
int  dkim_sign_compute_b(const struct dkim_sign_key *k, enum dkim_canon hcanon, const struct dkim_header *h,
                         const char *const *names, size_t nnames, const char *field, size_t flen,
                         char *b64, size_t b64sz);

#endif

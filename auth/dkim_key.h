/*
 * dkim_key — DKIM keys: private keys from PEM files (OpenSSL 3 EVP), key generation,
 * the public-key TXT record (RFC 6376 §3.6.1, RFC 8463 §4), parsing of a published key
 * record, and the two signature primitives over the header hash input.
 *
 * Called by dkim_sign, dkim_verify and ferryctl. A struct dkim_pubkey and the
 * EVP_PKEY it holds are owned by the caller (dkim_pubkey_free). Failure modes: an
 * unreadable or unsupported PEM file, an RSA key shorter than DKIM_RSA_MIN_BITS
 * (RFC 8301) or longer than DKIM_RSA_MAX_BITS (bounded verification cost), a
 * malformed record: each -1 with one sentence in err.
 */
#ifndef FERRY_DKIM_KEY_H
#define FERRY_DKIM_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

#define DKIM_RSA_MIN_BITS 1024
#define DKIM_RSA_MAX_BITS 8192
#define DKIM_RSA_DEFAULT_BITS 2048

enum dkim_algo { DKIM_ALGO_RSA_SHA256, DKIM_ALGO_ED25519_SHA256, DKIM_ALGO_RSA_SHA1 };

const char *dkim_algo_name(enum dkim_algo a);        /* "rsa-sha256"... */
int dkim_algo_parse(const char *s, enum dkim_algo *out);   /* -1 when unknown */

/* The key-record outcome classes the verifier maps onto results. */
enum dkim_keyerr { DKIM_KEY_OK, DKIM_KEY_SYNTAX, DKIM_KEY_REVOKED, DKIM_KEY_UNUSABLE };

struct dkim_pubkey {
    EVP_PKEY *pkey;
    bool rsa;              /* k=rsa (else ed25519) */
    bool testing;          /* t=y */
    bool strict;           /* t=s: i= domain must equal d= */
    bool sha256_ok;        /* h= absent or lists sha256 */
    bool sha1_listed;
    int bits;
};

/* Parse a TXT key record. DKIM_KEY_OK fills key; otherwise err says why. */
enum dkim_keyerr dkim_pubkey_parse(const char *rec, size_t len, struct dkim_pubkey *key, char *err, size_t errsz);
void dkim_pubkey_free(struct dkim_pubkey *key);

/* Load a PEM private key (PKCS#8 or traditional RSA); sets *algo from its type. */
EVP_PKEY *dkim_privkey_load(const char *path, enum dkim_algo *algo, char *err, size_t errsz);
/* The same from an open descriptor (consumed); path is only for messages. */
EVP_PKEY *dkim_privkey_load_fd(int fd, const char *path, enum dkim_algo *algo, char *err, size_t errsz);
/* Generate a key; bits only for RSA. */
EVP_PKEY *dkim_keygen(enum dkim_algo algo, int bits, char *err, size_t errsz);
/* Write the private key as PKCS#8 PEM, mode 0600 (the file is created or replaced). */
int dkim_privkey_write(EVP_PKEY *k, const char *path, char *err, size_t errsz);
/* The record text "v=DKIM1; k=rsa; p=..." (NUL-terminated) for k's public half. */
int dkim_record_text(EVP_PKEY *k, char *out, size_t outsz);
/* A zone-file line: NAME IN TXT "..." "..." with strings of at most 255 octets. */
int dkim_record_zone_line(const char *selector, const char *domain, const char *text, char *out, size_t outsz);

/* Sign/verify the header hash input (RFC 6376 §3.7) with the algorithm's hash:
   rsa-sha256 = RSASSA-PKCS1-v1_5 over SHA-256; ed25519-sha256 = PureEd25519 over the
   SHA-256 digest of the data (RFC 8463 §3). sig/siglen: in/out. 0 ok, -1 error;
   verify returns 1 valid, 0 invalid, -1 error. */
int dkim_crypto_sign(EVP_PKEY *k, enum dkim_algo a, const void *data, size_t len,
                     unsigned char *sig, size_t *siglen);
/* The signing step alone, over the SHA-256 digest of that input (what the key
   process is asked to do: it never sees the message). */
int dkim_crypto_sign_digest(EVP_PKEY *k, enum dkim_algo a, const unsigned char md[32], unsigned char *sig,
                            size_t *siglen);
int dkim_crypto_verify(EVP_PKEY *k, enum dkim_algo a, const void *data, size_t len,
                       const unsigned char *sig, size_t siglen);

#endif

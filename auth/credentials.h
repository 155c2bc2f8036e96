/*
 * credentials — what Ferry keeps of a password: the SCRAM-SHA-256 keys of
 * RFC 5802 §3 / RFC 7677, never the password itself.
 *
 *   SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations)
 *   StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key"))
 *   ServerKey = HMAC(SaltedPassword, "Server Key")
 *
 * PLAIN and LOGIN are checked by deriving StoredKey from the offered password and
 * comparing in constant time; SCRAM proves knowledge without sending it. Passwords
 * go through a SASLprep subset (RFC 4013): non-ASCII spaces become U+0020; control
 * characters and invalid UTF-8 are refused. Pure apart from OpenSSL's RNG.
 */
#ifndef FERRY_CREDENTIALS_H
#define FERRY_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>

#define CRED_SALT_LEN 16
#define CRED_KEY_LEN 32
#define CRED_DEFAULT_ITERATIONS 4096
#define CRED_PASSWORD_MAX 1024

struct credentials {
    unsigned char salt[CRED_SALT_LEN];
    size_t salt_len;
    unsigned iterations;
    unsigned char stored_key[CRED_KEY_LEN];
    unsigned char server_key[CRED_KEY_LEN];
};

/* SASLprep subset into out (NUL-terminated). -1 with *why for a refused password. */
int cred_prepare_password(const char *pw, size_t len, char *out, size_t outsz, const char **why);
/* New credentials with a random salt. -1 on a refused password (*why) or RNG failure. */
int cred_make(const char *pw, size_t len, unsigned iterations, struct credentials *c, const char **why);
/* Derive from a known salt (SCRAM test vectors, PLAIN checks). */
int cred_derive(const char *pw, size_t len, const unsigned char *salt, size_t salt_len, unsigned iterations,
                struct credentials *c);
/* Does pw match? Constant time in the comparison. */
bool cred_check_password(const struct credentials *c, const char *pw, size_t len);

/* HMAC-SHA-256 and SHA-256, for the SCRAM exchange. */
void cred_hmac(const unsigned char *key, size_t klen, const void *data, size_t dlen, unsigned char out[32]);
void cred_sha256(const void *data, size_t len, unsigned char out[32]);

/* base64 without line breaks; decode refuses anything malformed. -1 on error. */
int cred_b64_encode(const unsigned char *in, size_t len, char *out, size_t outsz);
int cred_b64_decode(const char *in, size_t len, unsigned char *out, size_t outsz, size_t *outlen);

#endif

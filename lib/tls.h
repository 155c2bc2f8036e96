/*
 * tls — OpenSSL server contexts for SMTP: STARTTLS (RFC 3207) and implicit TLS
 * (RFC 8314). No mail policy: a context from a certificate chain and key, with
 * the protocol floor and cipher choice of the configuration.
 *
 * TLS 1.2 is the floor (1.3 when asked); TLS 1.2 ciphers are ECDHE with AEAD by
 * default, TLS 1.3 uses OpenSSL's suites; compression and renegotiation are off.
 * Errors are one sentence naming the file at fault (missing, unreadable, not PEM,
 * key not matching the certificate). The parent builds the context while it is
 * still root (keys are usually root's alone) and the smtp child inherits it.
 */
#ifndef FERRY_TLS_H
#define FERRY_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#define TLS_DEFAULT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1"

enum tls_min { TLS_MIN_1_2, TLS_MIN_1_3 };

SSL_CTX *tls_server_ctx(const char *cert, const char *key, enum tls_min min, const char *ciphers,
                        char *err, size_t errlen);

/* "TLSv1.3", "TLS_AES_256_GCM_SHA384", and the cipher's bits, of an established connection. */
void tls_describe(SSL *ssl, char *version, size_t vlen, char *cipher, size_t clen, int *bits);

#endif

/* tls — see tls.h. */
#include "lib/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* OpenSSL's reason for the last failure, as text. */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    return r ? r : "unknown OpenSSL error";
}

SSL_CTX *tls_server_ctx(const char *cert, const char *key, enum tls_min min, const char *ciphers,
                        char *err, size_t errlen)
{
    ERR_clear_error();
    if (access(cert, R_OK) < 0) {
        snprintf(err, errlen, "tls_cert %s: %s", cert, strerror(errno));
        return NULL;
    }
    if (access(key, R_OK) < 0) {
        snprintf(err, errlen, "tls_key %s: %s", key, strerror(errno));
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context: %s", ssl_reason());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, min == TLS_MIN_1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* No compression (CRIME), no renegotiation (a client-driven CPU cost and old
       attacks), the server's cipher order. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(ctx, ciphers && *ciphers ? ciphers : TLS_DEFAULT_CIPHERS) != 1) {
        snprintf(err, errlen, "tls_ciphers \"%s\": no usable cipher (%s)", ciphers, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "tls_cert %s: not a usable PEM certificate chain (%s)", cert, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
            snprintf(err, errlen, "tls_key %s does not belong to the certificate in %s", key, cert);
        else
            snprintf(err, errlen, "tls_key %s: not a usable PEM private key (%s)", key, ssl_reason());
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "tls_key %s does not belong to the certificate in %s", key, cert);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void tls_describe(SSL *ssl, char *version, size_t vlen, char *cipher, size_t clen, int *bits)
{
    snprintf(version, vlen, "%s", SSL_get_version(ssl));
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    snprintf(cipher, clen, "%s", c ? SSL_CIPHER_get_name(c) : "unknown");
    *bits = c ? SSL_CIPHER_get_bits(c, NULL) : 0;
}

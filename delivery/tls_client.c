/* tls_client — see tls_client.h. */
#include "delivery/tls_client.h"
#include "lib/buf.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

/* err gets msg, plus OpenSSL's last reason when it has one; the queue is cleared. */
static void ssl_error(char *err, size_t errlen, const char *msg)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;
    if (reason)
        snprintf(err, errlen, "%s: %s", msg, reason);
    else
        snprintf(err, errlen, "%s", msg);
    ERR_clear_error();
}

SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        ssl_error(err, errlen, "cannot create the TLS client context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (SSL_CTX_dane_enable(ctx) <= 0) {
        ssl_error(err, errlen, "cannot enable DANE in the TLS client context");
        goto fail;
    }
    if (ca_file && ca_file[0]) {
        if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
            char msg[PATH_MAX + 64];
            snprintf(msg, sizeof msg, "%s: cannot load the CA certificates", ca_file);
            ssl_error(err, errlen, msg);
            goto fail;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ssl_error(err, errlen, "cannot load the system's CA certificates");
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static bool is_ip_literal(const char *h)
{
    unsigned char tmp[sizeof(struct in6_addr)];
    return h[0] == '[' || inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1;
}

/* Reference names for DANE-TA and verify: the MX host name, then the next-hop domain. */
static int add_names(SSL *ssl, const char *mx_host, const char *nexthop, bool first_set, char *err,
                     size_t errlen)
{
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (!first_set && SSL_set1_host(ssl, mx_host) != 1) {
        ssl_error(err, errlen, "cannot set the MX host name as a reference name");
        return -1;
    }
    if (nexthop && nexthop[0] && !str_ieq(nexthop, mx_host) && SSL_add1_host(ssl, nexthop) != 1) {
        ssl_error(err, errlen, "cannot add the next-hop domain as a reference name");
        return -1;
    }
    return 0;
}

SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *mx_host, const char *nexthop, enum tls_level level,
                        const struct dane_result *tlsa, char *err, size_t errlen)
{
    if (level == TLS_LEVEL_NONE) {
        snprintf(err, errlen, "TLS level none asks for no TLS session");
        return NULL;
    }
    if (level == TLS_LEVEL_DANE && !dane_result_usable(tlsa)) {
        snprintf(err, errlen, "TLS level dane for %s needs usable TLSA records", mx_host);
        return NULL;
    }
    SSL *ssl = SSL_new(ctx);
    if (!ssl) {
        ssl_error(err, errlen, "cannot create a TLS session");
        return NULL;
    }
    /* RFC 6066: no IP literals in SNI. */
    if (!is_ip_literal(mx_host) && SSL_set_tlsext_host_name(ssl, mx_host) != 1) {
        ssl_error(err, errlen, "cannot set the server name (SNI)");
        goto fail;
    }
    switch (level) {
    case TLS_LEVEL_MAY:
    case TLS_LEVEL_ENCRYPT:
    case TLS_LEVEL_NONE:
        SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
        break;
    case TLS_LEVEL_DANE: {
        /* The base domain is DANE-TA's first reference name (§3.2.2). */
        if (SSL_dane_enable(ssl, mx_host) <= 0) {
            ssl_error(err, errlen, "cannot enable DANE on the TLS session");
            goto fail;
        }
        SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
        if (add_names(ssl, mx_host, nexthop, true, err, errlen) < 0)
            goto fail;
        size_t added = 0;
        for (size_t i = 0; i < tlsa->set.n; i++) {
            const struct dane_record *r = &tlsa->set.r[i];
            int rc = SSL_dane_tlsa_add(ssl, r->usage, r->selector, r->matching, r->data, r->len);
            if (rc < 0) {
                ssl_error(err, errlen, "cannot add a TLSA record to the TLS session");
                goto fail;
            }
            if (rc > 0)
                added++;
        }
        ERR_clear_error();
        if (added == 0) {
            /* dane.c checks what OpenSSL checks, so this means a digest OpenSSL lacks. */
            snprintf(err, errlen, "none of the %zu usable TLSA records of %s is supported by OpenSSL",
                     tlsa->set.n, mx_host);
            goto fail;
        }
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        break;
    }
    case TLS_LEVEL_VERIFY:
        if (add_names(ssl, mx_host, nexthop, false, err, errlen) < 0)
            goto fail;
        SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
        break;
    }
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}

const char *tls_auth_name(enum tls_auth a)
{
    switch (a) {
    case TLS_AUTH_PKIX: return "pkix";
    case TLS_AUTH_DANE_EE: return "dane-ee";
    case TLS_AUTH_DANE_TA: return "dane-ta";
    default: return "none";
    }
}

/* Printable ASCII only: the CN is the peer's text and goes into log lines. */
static void clean_copy(char *dst, size_t dstsz, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < dstsz; i++)
        dst[i] = (src[i] > ' ' && src[i] < 0x7f) ? src[i] : '?';
    dst[i] = '\0';
}

void tls_client_outcome(SSL *ssl, enum tls_level level, bool dane_active, struct tls_outcome *out)
{
    memset(out, 0, sizeof *out);
    out->established = SSL_is_init_finished(ssl);
    if (out->established) {
        str_copy(out->protocol, SSL_get_version(ssl), sizeof out->protocol);
        const char *c = SSL_get_cipher_name(ssl);
        str_copy(out->cipher, c ? c : "", sizeof out->cipher);
    }
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer) {
        char cn[256] = "";
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn) > 0)
            clean_copy(out->peer_cn, sizeof out->peer_cn, cn);
    }
    bool checked = level == TLS_LEVEL_VERIFY || (level == TLS_LEVEL_DANE && dane_active);
    long vr = SSL_get_verify_result(ssl);
    if (checked) {
        /* A failed handshake keeps no peer certificate, but the verify result stays. */
        if (vr != X509_V_OK) {
            snprintf(out->verify_error, sizeof out->verify_error, "%s", X509_verify_cert_error_string(vr));
        } else if (!peer) {
            snprintf(out->verify_error, sizeof out->verify_error, "%s",
                     out->established ? "no server certificate" : "handshake failed before the certificate");
        } else if (out->established) {
            out->verified = true;
            if (dane_active) {
                uint8_t usage = 255;
                if (SSL_get0_dane_tlsa(ssl, &usage, NULL, NULL, NULL, NULL) < 0)
                    usage = 255;
                out->how = usage == 3 ? TLS_AUTH_DANE_EE : usage == 2 ? TLS_AUTH_DANE_TA : TLS_AUTH_NONE;
                if (out->how == TLS_AUTH_NONE) {
                    /* Cannot happen with only DANE-TA/EE records installed; refuse rather than guess. */
                    out->verified = false;
                    snprintf(out->verify_error, sizeof out->verify_error, "no TLSA record matched");
                }
            } else {
                out->how = TLS_AUTH_PKIX;
            }
        } else {
            snprintf(out->verify_error, sizeof out->verify_error, "handshake failed");
        }
    }
    switch (level) {
    case TLS_LEVEL_MAY:
    case TLS_LEVEL_ENCRYPT:
        out->acceptable = out->established;
        break;
    case TLS_LEVEL_DANE:
        out->acceptable = out->established && dane_active && out->verified &&
                          (out->how == TLS_AUTH_DANE_EE || out->how == TLS_AUTH_DANE_TA);
        break;
    case TLS_LEVEL_VERIFY:
        out->acceptable = out->established && out->verified && out->how == TLS_AUTH_PKIX;
        break;
    default:
        out->acceptable = false;
        break;
    }
}

void tls_outcome_format(const struct tls_outcome *o, char *out, size_t outsz)
{
    int n;
    if (o->established)
        n = snprintf(out, outsz, "TLS=%s cipher=%s peer=%s auth=%s %s", o->protocol, o->cipher,
                     o->peer_cn[0] ? o->peer_cn : "-", tls_auth_name(o->how), o->verified ? "verified" : "unverified");
    else
        n = snprintf(out, outsz, "TLS=failed peer=%s auth=%s unverified", o->peer_cn[0] ? o->peer_cn : "-",
                     tls_auth_name(o->how));
    if (n < 0 || (size_t)n >= outsz)
        return;
    size_t len = (size_t)n;
    if (o->verify_error[0])
        len += (size_t)snprintf(out + len, outsz - len, " (%s)", o->verify_error);
    if (len < outsz && !o->acceptable)
        snprintf(out + len, outsz - len, " unacceptable");
}

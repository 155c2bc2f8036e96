/*
 * tls_client — OpenSSL client side of outbound STARTTLS (RFC 3207) with DANE
 * (RFC 7672, RFC 7671) and PKIX verification. Called by smtp_client: one context
 * per queue process (tls_client_ctx_new), one SSL per connection
 * (tls_client_ssl_new) after the server's 220 to STARTTLS, then, when the
 * handshake has ended (done or failed), tls_client_outcome to learn whether the
 * session may carry the message. No sockets here: the caller attaches the SSL to
 * its connection (bufferevent_openssl or a BIO).
 *
 * Per level (the effective level, tls_policy.h):
 *   may, encrypt  verification runs but its result does not stop the handshake;
 *                 any certificate is acceptable.
 *   dane          the usable TLSA records are installed (SSL_dane_tlsa_add);
 *                 DANE-EE(3) matches the leaf key or certificate with no name
 *                 check and no expiry check (RFC 7672 §3.1.1); DANE-TA(2) needs
 *                 a chain to the matched trust anchor and a name match with the
 *                 MX host name or the next-hop domain (§3.2.2). A failure stops
 *                 the handshake.
 *   verify        PKIX to the system CA store (or the context's CA file), with a
 *                 name match on the MX host name or the next-hop domain. A
 *                 failure stops the handshake.
 * SNI is always the MX host name (§8.1). Name matching follows RFC 6125 through
 * OpenSSL (DNS-IDs when present, else the CN; wildcards only as a whole
 * left-most label).
 *
 * The SSL belongs to the caller (SSL_free). Errors are one sentence in err, with
 * OpenSSL's reason appended where it has one.
 */
#ifndef FERRY_TLS_CLIENT_H
#define FERRY_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "delivery/dane.h"
#include "delivery/tls_policy.h"

enum tls_auth { TLS_AUTH_NONE, TLS_AUTH_PKIX, TLS_AUTH_DANE_EE, TLS_AUTH_DANE_TA };

struct tls_outcome {
    bool established;           /* the handshake completed */
    char protocol[16];          /* "TLSv1.3", "" when not established */
    char cipher[64];
    char peer_cn[128];          /* the leaf's subject CN, "" when none */
    bool verified;              /* authenticated by `how` */
    enum tls_auth how;
    char verify_error[160];     /* why not verified, "" when verified or not checked */
    bool acceptable;            /* the session satisfies the level: send mail over it */
};

/* TLS 1.2 and up, no compression, no renegotiation, DANE enabled, and the trust
   store: ca_file (PEM) when given, else the system's default paths. NULL with err
   set when the CA file cannot be loaded or OpenSSL fails. */
SSL_CTX *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);

/* A client SSL for one connection at an effective level (not none). mx_host:
   the MX host name (SNI, TLSA base domain, first reference name). nexthop: the
   next-hop (recipient) domain, a second reference name; pass it for dane only
   when the MX lookup was DNSSEC-validated (§3.2.2), NULL otherwise; for verify
   pass it, except for a REQUIRETLS message (RFC 8689 §4.2.1 names the MX host
   name alone). tlsa: the
   host's TLSA result; dane needs usable records in it, other levels ignore it.
   NULL with err set. */
SSL *tls_client_ssl_new(SSL_CTX *ctx, const char *mx_host, const char *nexthop, enum tls_level level,
                        const struct dane_result *tlsa, char *err, size_t errlen);

/* After the handshake (completed or failed). dane_active: TLSA records were
   installed on this SSL (level dane). */
void tls_client_outcome(SSL *ssl, enum tls_level level, bool dane_active, struct tls_outcome *out);

const char *tls_auth_name(enum tls_auth a);

/* One line for the delivery log:
   "TLS=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 peer=mx.example.com auth=dane-ee verified"
   "TLS=TLSv1.2 cipher=... peer=... auth=none unverified (self-signed certificate)"
   "TLS=failed auth=dane-ee unverified (...)" — " unacceptable" is appended when
   the outcome does not satisfy the level. */
void tls_outcome_format(const struct tls_outcome *o, char *out, size_t outsz);

#endif

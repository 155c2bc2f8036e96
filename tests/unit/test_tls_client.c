/*
 * test_tls_client.c — delivery/tls_client.h in real TLS handshakes over an
 * in-memory BIO pair, against an OpenSSL server whose certificates the test
 * makes: DANE-EE 3 1 1 (matching, mismatching, and on an expired certificate
 * for another name), DANE-TA 2 0 1 with the right and a wrong host name and the
 * next-hop domain as second reference name, verify with the right CA and the
 * wrong host name, may and encrypt with a self-signed certificate, and the
 * outcome line.
 */
#include "delivery/tls_client.h"
#include "tests/unit/unit.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(k);
    return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for cn (and san, a "DNS:..." list, or NULL), signed by
   issuer/ikey, or self-signed when issuer is NULL. days_from/days_to relative to now. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, bool ca, X509 *issuer, EVP_PKEY *ikey,
                       long days_from, long days_to)
{
    static long serial = 1;
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), days_from * 86400);
    X509_gmtime_adj(X509_getm_notAfter(x), days_to * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509 *iss = issuer ? issuer : x;
    add_ext(x, iss, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (ca)
        add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san)
        add_ext(x, iss, NID_subject_alt_name, san);
    ck_assert_int_gt(X509_sign(x, issuer ? ikey : key, EVP_sha256()), 0);
    return x;
}

/* The test PKI: a CA, a leaf for mx.example.test issued by it, a leaf for the
   domain example.test issued by it, a self-signed leaf. */
static EVP_PKEY *ca_key, *leaf_key, *dom_key, *self_key, *old_key;
static X509 *ca, *leaf, *dom_leaf, *self_cert, *old_cert;
static char ca_path[64];

static void pki_setup(void)
{
    ca_key = new_key();
    leaf_key = new_key();
    dom_key = new_key();
    self_key = new_key();
    old_key = new_key();
    ca = make_cert(ca_key, "Ferry Unit CA", NULL, true, NULL, NULL, -1, 2);
    leaf = make_cert(leaf_key, "mx.example.test", "DNS:mx.example.test", false, ca, ca_key, -1, 2);
    dom_leaf = make_cert(dom_key, "example.test", "DNS:example.test", false, ca, ca_key, -1, 2);
    self_cert = make_cert(self_key, "self.example.test", "DNS:self.example.test", false, NULL, NULL, -1, 2);
    /* expired last week, for another name: DANE-EE ignores both */
    old_cert = make_cert(old_key, "elsewhere.invalid", "DNS:elsewhere.invalid", false, NULL, NULL, -30, -7);
    snprintf(ca_path, sizeof ca_path, "/tmp/ferry-unit-ca-XXXXXX");
    int fd = mkstemp(ca_path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, ca), 1);
    fclose(f);
}

static void pki_teardown(void)
{
    unlink(ca_path);
    X509_free(ca);
    X509_free(leaf);
    X509_free(dom_leaf);
    X509_free(self_cert);
    X509_free(old_cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(dom_key);
    EVP_PKEY_free(self_key);
    EVP_PKEY_free(old_key);
}

static SSL_CTX *server_ctx(X509 *cert, EVP_PKEY *key, X509 *chain)
{
    SSL_CTX *s = SSL_CTX_new(TLS_server_method());
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(SSL_CTX_use_certificate(s, cert), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(s, key), 1);
    if (chain)
        ck_assert_int_eq(SSL_CTX_add1_chain_cert(s, chain), 1);
    return s;
}

/* Run the handshake between the client SSL and a server for cert; the client's
   outcome goes to out. Returns whether the client's handshake succeeded. */
static bool handshake(SSL *c, X509 *cert, EVP_PKEY *key, X509 *chain, enum tls_level level, bool dane,
                      struct tls_outcome *out)
{
    SSL_CTX *sctx = server_ctx(cert, key, chain);
    SSL *s = SSL_new(sctx);
    ck_assert_ptr_nonnull(s);
    BIO *cb = NULL, *sb = NULL;
    ck_assert_int_eq(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    int rc = 0, rs = 0;
    for (int i = 0; i < 50; i++) {
        if (rc != 1) {
            rc = SSL_do_handshake(c);
            if (rc != 1) {
                int e = SSL_get_error(c, rc);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    break;
            }
        }
        if (rs != 1) {
            rs = SSL_do_handshake(s);
            if (rs != 1) {
                int e = SSL_get_error(s, rs);
                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                    break;
            }
        }
        if (rc == 1 && rs == 1)
            break;
    }
    tls_client_outcome(c, level, dane, out);
    ERR_clear_error();
    SSL_free(s);
    SSL_CTX_free(sctx);
    return rc == 1;
}

/* A dane_result holding one record over cert (selector 0) or its key (selector 1). */
static void tlsa_for(struct dane_result *r, uint8_t usage, uint8_t selector, X509 *x, bool corrupt)
{
    memset(r, 0, sizeof *r);
    r->status = DANE_SECURE;
    r->set.n = r->set.total = 1;
    struct dane_record *d = &r->set.r[0];
    d->usage = usage;
    d->selector = selector;
    d->matching = 1;
    unsigned char *der = NULL;
    int len = selector == 0 ? i2d_X509(x, &der) : i2d_PUBKEY(X509_get0_pubkey(x), &der);
    ck_assert_int_gt(len, 0);
    unsigned int mdlen = 0;
    ck_assert_int_eq(EVP_Digest(der, (size_t)len, d->data, &mdlen, EVP_sha256(), NULL), 1);
    OPENSSL_free(der);
    d->len = mdlen;
    if (corrupt)
        d->data[5] ^= 0x01;
}

static SSL_CTX *cctx;

static void setup(void)
{
    pki_setup();
    char err[256] = "";
    cctx = tls_client_ctx_new(ca_path, err, sizeof err);
    ck_assert_msg(cctx != NULL, "%s", err);
}

static void teardown(void)
{
    SSL_CTX_free(cctx);
    pki_teardown();
}

static SSL *client(const char *host, const char *nexthop, enum tls_level level, const struct dane_result *t)
{
    char err[256] = "";
    SSL *c = tls_client_ssl_new(cctx, host, nexthop, level, t, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    return c;
}

START_TEST(dane_ee_matching)
{
    struct dane_result t;
    tlsa_for(&t, 3, 1, leaf, false);
    SSL *c = client("mx.example.test", NULL, TLS_LEVEL_DANE, &t);
    struct tls_outcome o;
    ck_assert(handshake(c, leaf, leaf_key, NULL, TLS_LEVEL_DANE, true, &o));
    ck_assert(o.established);
    ck_assert(o.verified);
    ck_assert_int_eq(o.how, TLS_AUTH_DANE_EE);
    ck_assert(o.acceptable);
    ck_assert_str_eq(o.peer_cn, "mx.example.test");
    ck_assert_str_eq(o.verify_error, "");
    char line[300];
    tls_outcome_format(&o, line, sizeof line);
    char want[300];
    snprintf(want, sizeof want, "TLS=%s cipher=%s peer=mx.example.test auth=dane-ee verified", o.protocol, o.cipher);
    ck_assert_str_eq(line, want);
    ck_assert(strncmp(o.protocol, "TLSv1.", 6) == 0);
    SSL_free(c);
}
END_TEST

START_TEST(dane_ee_ignores_name_and_expiry)
{
    struct dane_result t;
    tlsa_for(&t, 3, 1, old_cert, false);
    SSL *c = client("mx.example.test", NULL, TLS_LEVEL_DANE, &t);
    struct tls_outcome o;
    ck_assert(handshake(c, old_cert, old_key, NULL, TLS_LEVEL_DANE, true, &o));
    ck_assert(o.verified);
    ck_assert_int_eq(o.how, TLS_AUTH_DANE_EE);
    ck_assert(o.acceptable);
    SSL_free(c);
}
END_TEST

START_TEST(dane_ee_mismatch)
{
    struct dane_result t;
    tlsa_for(&t, 3, 1, leaf, true);
    SSL *c = client("mx.example.test", NULL, TLS_LEVEL_DANE, &t);
    struct tls_outcome o;
    ck_assert(!handshake(c, leaf, leaf_key, NULL, TLS_LEVEL_DANE, true, &o));
    ck_assert(!o.established);
    ck_assert(!o.verified);
    ck_assert(!o.acceptable);
    ck_assert_msg(o.verify_error[0] != '\0', "no verify error");
    char line[300];
    tls_outcome_format(&o, line, sizeof line);
    ck_assert_msg(strstr(line, "TLS=failed") && strstr(line, " unacceptable"), "%s", line);
    SSL_free(c);
}
END_TEST

START_TEST(dane_ta_right_and_wrong_name)
{
    struct dane_result t;
    tlsa_for(&t, 2, 0, ca, false);
    struct tls_outcome o;
    SSL *c = client("mx.example.test", NULL, TLS_LEVEL_DANE, &t);
    ck_assert(handshake(c, leaf, leaf_key, ca, TLS_LEVEL_DANE, true, &o));
    ck_assert(o.verified);
    ck_assert_int_eq(o.how, TLS_AUTH_DANE_TA);
    ck_assert(o.acceptable);
    SSL_free(c);

    c = client("other.example.test", NULL, TLS_LEVEL_DANE, &t);
    ck_assert(!handshake(c, leaf, leaf_key, ca, TLS_LEVEL_DANE, true, &o));
    ck_assert(!o.verified);
    ck_assert(!o.acceptable);
    ck_assert_msg(strstr(o.verify_error, "mismatch") || strstr(o.verify_error, "hostname"), "%s", o.verify_error);
    SSL_free(c);

    /* the certificate names the next-hop domain (RFC 7672 §3.2.2's second reference name) */
    c = client("mx.example.test", "example.test", TLS_LEVEL_DANE, &t);
    ck_assert(handshake(c, dom_leaf, dom_key, ca, TLS_LEVEL_DANE, true, &o));
    ck_assert(o.verified);
    ck_assert_int_eq(o.how, TLS_AUTH_DANE_TA);
    SSL_free(c);
    /* ... which is not accepted without the next-hop name */
    c = client("mx.example.test", NULL, TLS_LEVEL_DANE, &t);
    ck_assert(!handshake(c, dom_leaf, dom_key, ca, TLS_LEVEL_DANE, true, &o));
    SSL_free(c);
}
END_TEST

START_TEST(dane_ta_other_ca)
{
    /* A 2 0 1 record for the CA, but the server's chain comes from elsewhere. */
    struct dane_result t;
    tlsa_for(&t, 2, 0, ca, false);
    SSL *c = client("self.example.test", NULL, TLS_LEVEL_DANE, &t);
    struct tls_outcome o;
    ck_assert(!handshake(c, self_cert, self_key, NULL, TLS_LEVEL_DANE, true, &o));
    ck_assert(!o.acceptable);
    SSL_free(c);
}
END_TEST

START_TEST(verify_pkix)
{
    struct tls_outcome o;
    SSL *c = client("mx.example.test", NULL, TLS_LEVEL_VERIFY, NULL);
    ck_assert(handshake(c, leaf, leaf_key, NULL, TLS_LEVEL_VERIFY, false, &o));
    ck_assert(o.verified);
    ck_assert_int_eq(o.how, TLS_AUTH_PKIX);
    ck_assert(o.acceptable);
    SSL_free(c);

    c = client("wrong.example.test", NULL, TLS_LEVEL_VERIFY, NULL);
    ck_assert(!handshake(c, leaf, leaf_key, NULL, TLS_LEVEL_VERIFY, false, &o));
    ck_assert(!o.verified);
    ck_assert(!o.acceptable);
    ck_assert_msg(strstr(o.verify_error, "mismatch"), "%s", o.verify_error);
    SSL_free(c);

    /* the next-hop domain is a reference name for verify too */
    c = client("wrong.example.test", "mx.example.test", TLS_LEVEL_VERIFY, NULL);
    ck_assert(handshake(c, leaf, leaf_key, NULL, TLS_LEVEL_VERIFY, false, &o));
    ck_assert(o.acceptable);
    SSL_free(c);

    c = client("self.example.test", NULL, TLS_LEVEL_VERIFY, NULL);
    ck_assert(!handshake(c, self_cert, self_key, NULL, TLS_LEVEL_VERIFY, false, &o));
    ck_assert(!o.acceptable);
    ck_assert_msg(strstr(o.verify_error, "self-signed") || strstr(o.verify_error, "self signed"), "%s",
                  o.verify_error);
    SSL_free(c);
}
END_TEST

START_TEST(may_and_encrypt_accept_self_signed)
{
    struct tls_outcome o;
    SSL *c = client("mx.example.test", NULL, TLS_LEVEL_MAY, NULL);
    ck_assert(handshake(c, self_cert, self_key, NULL, TLS_LEVEL_MAY, false, &o));
    ck_assert(o.established);
    ck_assert(!o.verified);
    ck_assert_int_eq(o.how, TLS_AUTH_NONE);
    ck_assert(o.acceptable);
    ck_assert_str_eq(o.peer_cn, "self.example.test");
    char line[300];
    tls_outcome_format(&o, line, sizeof line);
    ck_assert_msg(strstr(line, "auth=none unverified") && !strstr(line, "unacceptable"), "%s", line);
    SSL_free(c);

    c = client("mx.example.test", NULL, TLS_LEVEL_ENCRYPT, NULL);
    ck_assert(handshake(c, old_cert, old_key, NULL, TLS_LEVEL_ENCRYPT, false, &o));
    ck_assert(o.acceptable);
    ck_assert(!o.verified);
    SSL_free(c);
}
END_TEST

START_TEST(bad_arguments)
{
    char err[256] = "";
    ck_assert_ptr_null(tls_client_ssl_new(cctx, "mx.example.test", NULL, TLS_LEVEL_DANE, NULL, err, sizeof err));
    ck_assert_msg(strstr(err, "usable TLSA"), "%s", err);
    ck_assert_ptr_null(tls_client_ssl_new(cctx, "mx.example.test", NULL, TLS_LEVEL_NONE, NULL, err, sizeof err));
    ck_assert_ptr_null(tls_client_ctx_new("/nonexistent/ca.pem", err, sizeof err));
    ck_assert_msg(strstr(err, "/nonexistent/ca.pem"), "%s", err);
    SSL_CTX *sys = tls_client_ctx_new(NULL, err, sizeof err);
    ck_assert_msg(sys != NULL, "%s", err);
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(sys), TLS1_2_VERSION);
    ck_assert(SSL_CTX_get_options(sys) & SSL_OP_NO_COMPRESSION);
    SSL_CTX_free(sys);
    /* an IP literal host gets no SNI but still a session */
    SSL *c = tls_client_ssl_new(cctx, "192.0.2.1", NULL, TLS_LEVEL_MAY, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    SSL_free(c);
}
END_TEST

Suite *tls_client_suite(void)
{
    Suite *s = suite_create("tls_client");
    TCase *tc = tcase_create("handshakes");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, dane_ee_matching);
    tcase_add_test(tc, dane_ee_ignores_name_and_expiry);
    tcase_add_test(tc, dane_ee_mismatch);
    tcase_add_test(tc, dane_ta_right_and_wrong_name);
    tcase_add_test(tc, dane_ta_other_ca);
    tcase_add_test(tc, verify_pkix);
    tcase_add_test(tc, may_and_encrypt_accept_self_signed);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(tls_client_suite)

/*
 * dane — the TLSA side of opportunistic DANE for SMTP (RFC 7672): which TLSA
 * records of an MX host are usable, and the asynchronous lookup of
 * _PORT._tcp.HOST through lib/dns.h. Called by smtp_client before it connects to
 * an MX host at level dane (or for a REQUIRETLS message); the result goes to
 * tls_level_effective (tls_policy.h) and to tls_client_ssl_new (tls_client.h).
 *
 * Lookup outcomes (RFC 7672 §2.2):
 *   SECURE    TLSA records in a DNSSEC-validated answer (AD set by the trusted
 *             resolver). set.n counts the usable ones; set.n == 0 with
 *             set.total > 0 means "all unusable": TLS is then mandatory but
 *             unauthenticated.
 *   NONE      a validated NODATA or NXDOMAIN: the host publishes no TLSA.
 *   INSECURE  an answer (records or not) that was not validated: no DANE.
 *   FAILED    SERVFAIL, timeout, or any other error: the TLSA records cannot be
 *             known (a bogus signature is a SERVFAIL from a validating
 *             resolver), and the caller must not deliver to this host now
 *             (§2.2.1: treat like a failed address lookup, defer or next host).
 *
 * Usable records (§3.1, and RFC 7671 for the digests): usage DANE-TA(2) or
 * DANE-EE(3); selector Cert(0) or SPKI(1); matching Full(0), SHA2-256(1) with 32
 * octets or SHA2-512(2) with 64 octets. PKIX-TA(0) and PKIX-EE(1) records are
 * unusable for SMTP, as is anything malformed. At most DANE_MAX_RECORDS usable
 * records are kept (the rest are dropped, counted in `dropped`), and full
 * (matching 0) data of at most DANE_DATA_MAX octets; longer counts as unusable.
 *
 * TLSA base name: the MX host name as the MX record gave it (not expanded through
 * CNAMEs of the host's address records); a CNAME met on the TLSA query itself is
 * followed by lib/dns and covered by the resolver's AD bit. RFC 7672 §2.2.2's use
 * of a CNAME-expanded host name as a further base name is not done (RFC-NOTES.md).
 *
 * The result struct is self-contained (fixed buffers, no pointers): a caller
 * keeps it by copying it.
 */
#ifndef FERRY_DANE_H
#define FERRY_DANE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/dns.h"

#define DANE_MAX_RECORDS  8
#define DANE_DATA_MAX     2048

enum dane_status { DANE_SECURE, DANE_NONE, DANE_INSECURE, DANE_FAILED };

struct dane_record {
    uint8_t usage;      /* 2 DANE-TA or 3 DANE-EE */
    uint8_t selector;   /* 0 full certificate, 1 SubjectPublicKeyInfo */
    uint8_t matching;   /* 0 full, 1 SHA2-256, 2 SHA2-512 */
    size_t len;
    unsigned char data[DANE_DATA_MAX];
};

struct dane_set {
    size_t n;           /* usable records kept */
    size_t total;       /* TLSA records in the answer, usable or not */
    size_t dropped;     /* usable records beyond DANE_MAX_RECORDS */
    struct dane_record r[DANE_MAX_RECORDS];
};

struct dane_result {
    enum dane_status status;
    struct dane_set set;            /* filled when SECURE, empty otherwise */
    char qname[DNS_NAME_MAX + 2];   /* "_25._tcp.mx.example.com" */
    char why[160];                  /* for logs: what was found or what failed */
};

/* DANE_SECURE with usable records: authentication is mandatory. */
bool dane_result_usable(const struct dane_result *r);
/* DANE_SECURE with only unusable records: TLS mandatory, unauthenticated. */
bool dane_result_all_unusable(const struct dane_result *r);

/* Is one record usable for SMTP (§3.1)? */
bool dane_record_usable(uint8_t usage, uint8_t selector, uint8_t matching, size_t len);

/* Pure: classify an answer to a TLSA query and collect its usable records. */
void dane_result_from_answer(const struct dns_answer *a, struct dane_result *out);

/* "_PORT._tcp.HOST" without the final dot. 0 ok, -1 when it does not fit. */
int dane_tlsa_name(const char *host, uint16_t port, char *out, size_t outsz);

const char *dane_status_name(enum dane_status s);

/* The usable records as TLSA presentation lines ("3 1 1 0a1b..."; hex in upper
   case as RFC 8460's example), joined by "\n", for a TLS-RPT policy-string.
   Records that would not fit in outsz are left out, whole. Returns the records
   written (out is "" for none). */
size_t dane_set_text(const struct dane_set *s, char *out, size_t outsz);

/* Asynchronous lookup of HOST's TLSA records for PORT. The callback runs exactly
   once, from the event loop (never inside dane_lookup), unless dane_cancel is
   called first; the result is valid only during the callback and the lookup
   frees itself after it. NULL only when out of memory. */
typedef void (*dane_callback)(const struct dane_result *r, void *arg);
struct dane_lookup;
struct dane_lookup *dane_lookup(struct dns_client *dns, const char *host, uint16_t port, dane_callback cb,
                                void *arg);
void dane_cancel(struct dane_lookup *l);

#endif

/*
 * tls_policy — how much TLS outbound delivery demands of a destination domain.
 * Called by the queue process (load at start and reload) and by smtp_client
 * (lookup per domain, then the effective level per connection attempt).
 *
 * Levels (RFC-NOTES.md, "RFC 7672 / RFC 3207 client side", says why each is so):
 *   none     never STARTTLS.
 *   may      STARTTLS when offered, any certificate; plaintext when STARTTLS is
 *            not offered, refused, or its handshake fails (then one new plaintext
 *            connection to the same address, see tls_level_plaintext_retry).
 *   encrypt  TLS mandatory, the certificate is not checked.
 *   dane     opportunistic DANE (RFC 7672): with usable DNSSEC-validated TLSA
 *            records DANE authentication is mandatory; with TLSA records that are
 *            all unusable, TLS is mandatory but unauthenticated (encrypt); without
 *            secure TLSA records, as may. The default for port 25.
 *   verify   TLS mandatory, PKIX verification of the MX host name (or the
 *            next-hop domain) against the system CA store or a configured CA file.
 *
 * The table is a text file of "DOMAIN LEVEL" lines: "example.com" matches that
 * domain only, ".example.com" any subdomain of it (not example.com itself); the
 * exact entry wins over a subdomain entry, and a longer suffix over a shorter.
 * '#' starts a comment; blank lines are ignored. Domains are compared without
 * case and without a final dot. Errors are "FILE:LINE: message", and a file with
 * any error is refused as a whole (the caller keeps its previous table).
 *
 * The table owns its entries; lookups do not allocate. tls_policy_parse is pure
 * (text in, table or error out) and is what the file loader calls.
 */
#ifndef FERRY_TLS_POLICY_H
#define FERRY_TLS_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/dane.h"

/* In the order of lib/settings.c's smtp_tls_level choices (the config stores the index). */
enum tls_level { TLS_LEVEL_NONE, TLS_LEVEL_MAY, TLS_LEVEL_ENCRYPT, TLS_LEVEL_DANE, TLS_LEVEL_VERIFY };

#define TLS_POLICY_MAX_ENTRIES  100000
#define TLS_POLICY_MAX_LINE     1024
#define TLS_POLICY_MAX_FILE     (16u * 1024 * 1024)

/* "none", "may", "encrypt", "dane", "verify" (case-insensitive). 0 ok, -1 unknown. */
int tls_level_parse(const char *s, enum tls_level *out);
const char *tls_level_name(enum tls_level l);

struct tls_policy;

/* An empty table answering def for every domain. NULL when out of memory. */
struct tls_policy *tls_policy_new(enum tls_level def);
void tls_policy_free(struct tls_policy *p);

/* Replace p's entries with those of text (len bytes); name is the file name used
   in errors. 0 ok; -1 with err set ("NAME:LINE: message") and p unchanged. */
int tls_policy_parse(struct tls_policy *p, const char *name, const char *text, size_t len, char *err,
                     size_t errlen);
/* The same from a file. -1 also when the file cannot be read. */
int tls_policy_load(struct tls_policy *p, const char *path, char *err, size_t errlen);

size_t tls_policy_count(const struct tls_policy *p);
enum tls_level tls_policy_default(const struct tls_policy *p);

/* The configured level for a destination domain (an address literal gets the
   default like any other name). */
enum tls_level tls_policy_lookup(const struct tls_policy *p, const char *domain);

/*
 * The level one connection attempt runs at, from the configured level, whether
 * the message asked for REQUIRETLS (RFC 8689) and the MX host's TLSA lookup
 * (tlsa may be NULL when none was done: the state then counts as no DANE):
 *   dane + SECURE with usable records         → dane
 *   dane + SECURE with only unusable records  → encrypt (RFC 7672 §2.2)
 *   dane + anything else                      → may (FAILED is the caller's to
 *                                               defer before it gets here)
 *   other levels                              → themselves (TLSA is not consulted)
 *   REQUIRETLS: dane when usable TLSA records exist, else verify, whatever the
 *   configured level (RFC 8689 §4.2.1 asks for an authenticated server; a policy
 *   of none or may cannot weaken that).
 */
enum tls_level tls_level_effective(enum tls_level configured, bool requiretls, const struct dane_result *tlsa);

/* Does a failed STARTTLS handshake at this (effective) level allow one new
   connection to the same address without STARTTLS? Only may. */
bool tls_level_plaintext_retry(enum tls_level effective);
/* Must the session stop (and try the next address) when the server does not
   offer STARTTLS or refuses it? Everything but none and may. */
bool tls_level_requires_tls(enum tls_level effective);

#endif

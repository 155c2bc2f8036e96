/*
 * tls_txt — the two DNS TXT records a sending MTA reads about a destination's
 * TLS: MTA-STS's "_mta-sts" (RFC 8461 §3.1: v=STSv1; id=...) and TLS-RPT's
 * "_smtp._tls" (RFC 8460 §3: v=TLSRPTv1; rua=mailto:...,https:...).
 *
 * Pure functions over bytes (a TXT record's character-strings already
 * concatenated, as lib/dns.h gives them); nothing is allocated and the results
 * are self-contained fixed-size structs. Called by the MTA-STS policy cache (id)
 * and the TLS-RPT report run (rua).
 *
 * Both records are "tag=value" lists separated by *WSP ";" *WSP, beginning with
 * the version tag. Unknown tags are ignored (both RFCs say so); of a repeated tag
 * the first counts (RFC 8461 §3.2's rule, applied to both). A record that is not
 * syntactically valid, or lacks its required tag (id, rua), is refused with one
 * sentence in err: the caller then acts as if the domain published nothing.
 *
 * Selection among several TXT records at the name (both RFCs): records not
 * beginning with the version tag are discarded, and unless exactly one is left
 * there is no record.
 *
 * rua: at most TLSRPT_RUA_MAX URIs of at most TLSRPT_URI_MAX octets are kept;
 * URIs of schemes other than mailto: and https: are skipped (counted in
 * `skipped`); a record with no usable URI is refused. A mailto: URI keeps only
 * its address (RFC 6068 hfields are dropped), which must be local@domain.
 */
#ifndef FERRY_TLS_TXT_H
#define FERRY_TLS_TXT_H

#include <stddef.h>

#define STS_ID_MAX      32
#define TLSRPT_RUA_MAX  8
#define TLSRPT_URI_MAX  512
#define TLS_TXT_MAX     4096    /* longer records are refused */

enum tlsrpt_scheme { TLSRPT_MAILTO, TLSRPT_HTTPS };

struct tlsrpt_rua {
    enum tlsrpt_scheme scheme;
    char uri[TLSRPT_URI_MAX];   /* https: the whole URI; mailto: the address only */
};

struct tlsrpt_record {
    unsigned n;
    struct tlsrpt_rua rua[TLSRPT_RUA_MAX];
    unsigned skipped;           /* URIs of other schemes, or beyond TLSRPT_RUA_MAX */
};

/* One "_mta-sts" record. 0 with id (1-32 letters and digits) set; -1 invalid. */
int sts_txt_parse(const char *rec, size_t len, char id[STS_ID_MAX + 1], char *err, size_t errlen);

/* One "_smtp._tls" record. 0 ok; -1 invalid. */
int tlsrpt_txt_parse(const char *rec, size_t len, struct tlsrpt_record *out, char *err, size_t errlen);

/* Of n records (recs[i] of lens[i] octets), the index of the only one beginning
   with the version tag version ("v=STSv1" or "v=TLSRPTv1", then ";" or WSP or
   the end); -1 when none or several do. */
int tls_txt_select(const char *const *recs, const size_t *lens, size_t n, const char *version);

#endif

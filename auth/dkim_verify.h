/*
 * dkim_verify — the DKIM verifier (RFC 6376 §6, RFC 8301, RFC 8463).
 *
 * Who calls it: smtpd after DATA (asynchronously, key records through lib/dns via
 * auth/dkim_dns), ferryctl dkim verify (synchronously), unit tests (key records from
 * a table). The caller hands over the header block once, then the body in chunks of
 * any size, then asks for the results; key lookups start at dkim_verify_finish and
 * the done callback fires exactly once with one result per DKIM-Signature field,
 * top to bottom (or one DKIM_RES_NONE result when there is none). It may fire from
 * inside dkim_verify_finish when the resolver answers synchronously.
 *
 * Owns: a copy of the header block, per-signature body hashes. Failure modes are
 * results, never crashes: malformed signatures or key records → permerror, DNS
 * trouble → temperror, hash mismatches → fail, things our policy refuses (l= when
 * configured so, signatures beyond max_signatures) → policy. rsa-sha1 signatures are
 * permerror without any crypto: RFC 8301 §3.1 forbids considering them valid.
 * Results live until dkim_verify_free; freeing cancels outstanding lookups.
 */
#ifndef FERRY_DKIM_VERIFY_H
#define FERRY_DKIM_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dkim_result {
    DKIM_RES_NONE, DKIM_RES_PASS, DKIM_RES_FAIL, DKIM_RES_NEUTRAL,
    DKIM_RES_POLICY, DKIM_RES_TEMPERROR, DKIM_RES_PERMERROR
};
const char *dkim_result_name(enum dkim_result r);

/* The resolver interface: a TXT lookup that calls done exactly once, now or later,
   unless cancelled first. NOTFOUND = NXDOMAIN or no TXT record. */
enum dkim_dns_status { DKIM_DNS_OK, DKIM_DNS_NOTFOUND, DKIM_DNS_TEMPFAIL };
typedef void (*dkim_txt_done)(void *arg, enum dkim_dns_status st, const char *const *txt,
                              const size_t *lens, size_t n);
struct dkim_resolver {
    /* Returns a handle for cancel (may be NULL when done was already called). */
    void *(*lookup_txt)(void *ctx, const char *name, dkim_txt_done done, void *arg);
    void (*cancel)(void *ctx, void *handle);
    void *ctx;
};

enum dkim_l_policy { DKIM_L_ACCEPT, DKIM_L_REFUSE };

struct dkim_verify_opts {
    size_t max_signatures;        /* evaluated per message; default 8 */
    enum dkim_l_policy l_policy;  /* l= that leaves body octets unsigned: accept (flagged) or policy */
    int64_t now;                  /* the clock for t= and x= (seconds since the epoch) */
    unsigned clock_skew;          /* seconds t= may lie in the future; default 300 */
    size_t max_header;            /* bytes of header block; default 1 MiB */
};
void dkim_verify_opts_init(struct dkim_verify_opts *o, int64_t now);

#define DKIM_REASON_MAX 192

struct dkim_sig_result {
    enum dkim_result result;
    char domain[256];             /* d=, empty when unparsable */
    char selector[64];            /* s= */
    char identity[256];           /* i= */
    char algo[16];                /* a= */
    char b_prefix[9];             /* first 8 characters of b= (RFC 6008) */
    bool body_limited;            /* l= present and shorter than the body */
    uint64_t body_len;            /* canonical body octets */
    bool testing;                 /* key says t=y */
    char reason[DKIM_REASON_MAX];
};

typedef void (*dkim_verify_done)(void *arg, const struct dkim_sig_result *res, size_t n);

struct dkim_verifier;

struct dkim_verifier *dkim_verify_new(const struct dkim_verify_opts *o, const struct dkim_resolver *r);
/* The header block (the empty line may be included). -1 when it is too large or not
   a header block; the verifier then reports permerror for what it found, or none. */
int  dkim_verify_header(struct dkim_verifier *v, const char *hdr, size_t len);
void dkim_verify_body(struct dkim_verifier *v, const char *p, size_t n);
void dkim_verify_finish(struct dkim_verifier *v, dkim_verify_done done, void *arg);
void dkim_verify_free(struct dkim_verifier *v);

/* Whole message in memory, with a resolver that answers synchronously. Fills a
   malloc'd array (free()). 0 ok, -1 when the resolver did not answer in line or on
   allocation failure. */
int  dkim_verify_message(const struct dkim_verify_opts *o, const struct dkim_resolver *r,
                         const char *msg, size_t len, struct dkim_sig_result **res, size_t *n);

/* RFC 8601 method result: "dkim=pass header.d=D header.s=S[ header.b=B] (reason)";
   "dkim=none" alone for DKIM_RES_NONE. 0 ok, -1 when truncated. */
int  dkim_result_format(const struct dkim_sig_result *r, bool with_b, char *out, size_t outsz);

#endif

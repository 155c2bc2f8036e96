/*
 * spf_record — parser of one SPF record (RFC 7208 §4.5, §4.6, §5, §6, §12). Pure.
 *
 * Input is the TXT record's text (character-strings already joined). The parser
 * checks the whole record before anything is evaluated (§4.6: a syntax error
 * anywhere makes the record a permerror), including the macro syntax of every
 * domain-spec and unknown modifier. Domain-specs are kept unexpanded; the
 * evaluator expands them (spf_macro) when it reaches the term.
 *
 * The record owns its strings; free with spf_record_free. Errors: one sentence
 * naming the offending term, in the caller's buffer.
 */
#ifndef FERRY_SPF_RECORD_H
#define FERRY_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Results of check_host() (§2.6). Qualifiers map onto the first four. */
enum spf_result {
    SPF_NONE,
    SPF_NEUTRAL,
    SPF_PASS,
    SPF_FAIL,
    SPF_SOFTFAIL,
    SPF_TEMPERROR,
    SPF_PERMERROR
};

enum spf_mech {
    SPF_M_ALL,
    SPF_M_INCLUDE,
    SPF_M_A,
    SPF_M_MX,
    SPF_M_PTR,
    SPF_M_IP4,
    SPF_M_IP6,
    SPF_M_EXISTS
};

/* A record longer than this is refused as a permerror (a DNS TXT RRset that big
   cannot be a sane policy, and it bounds the work). */
#define SPF_RECORD_MAX   4096
#define SPF_TERMS_MAX    256

struct spf_term {
    enum spf_mech mech;
    enum spf_result qualifier;  /* SPF_PASS, SPF_FAIL, SPF_SOFTFAIL or SPF_NEUTRAL */
    char *text;                 /* the term as written */
    char *domain_spec;          /* NULL when absent (a, mx, ptr then use <domain>) */
    uint8_t addr[16];           /* ip4 (first 4 octets) / ip6 network */
    unsigned cidr4, cidr6;      /* 32 and 128 unless given */
};

struct spf_record {
    struct spf_term *terms;
    size_t nterms;
    char *redirect;             /* domain-spec of redirect=, or NULL */
    char *exp;                  /* domain-spec of exp=, or NULL */
    char *text;                 /* the whole record */
};

/* True when the text is an SPF version 1 record: "v=spf1" alone or followed by
   a space (§4.5), compared without regard to case. */
bool spf_record_is_spf1(const char *txt, size_t len);

/* 0 parsed; -1 syntax error (reason in err, record left empty); -2 out of memory. */
int  spf_record_parse(const char *txt, size_t len, struct spf_record *out, char *err, size_t errsz);
void spf_record_free(struct spf_record *r);

/* "pass", "fail", ... as in §2.6 and RFC 8601. */
const char *spf_result_name(enum spf_result r);
const char *spf_mech_name(enum spf_mech m);

/* Syntax of a domain-spec (§12: macro-string ending in "." toplabel or a macro).
   0 valid, -1 invalid with the reason in err. */
int spf_domain_spec_check(const char *s, size_t len, char *err, size_t errsz);

#endif

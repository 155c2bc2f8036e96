/*
 * dmarc_record — parser of one DMARC Policy Record (RFC 9989 §4.7, §4.8; RFC 7489
 * records keep parsing). Pure: bytes in, a fixed-size struct out, no allocation.
 *
 * Who calls it: dmarc_discover on each TXT string of a _dmarc lookup (character-strings
 * already joined), ferryctl, the report builders (rua/ruf/fo), the fuzzer.
 *
 * What counts as a record: "v" "=" "DMARC1" first (WSP around "=" allowed, DMARC1 case
 * sensitive), followed by ";" or the end. Anything else is DMARC_REC_NOT_DMARC: the
 * whole TXT string is ignored (§4.7 "v"). Past the version nothing is fatal (§4.8:
 * syntax errors fall back to defaults or are ignored): unknown tags and the historic
 * pct/rf/ri (Appendix A.6) are ignored, a malformed tag or value leaves that tag at
 * its default, a repeated tag keeps its first value. Tag names and the keyword values
 * compare without regard to case (ABNF string literals are case-insensitive). Each
 * thing ignored is noted in `notes` so the explanation can say why.
 *
 * The §4.10.1 rule for bad policies is applied here: a p= that is present but not
 * valid, or an sp=/np= that is not valid, makes the record act as "p=none" when rua=
 * holds at least one valid URI (policy_state FORCED_NONE) and otherwise makes the
 * record unusable for DMARC processing (policy_state UNUSABLE). A record without any
 * p= is treated as "p=none" (§4.7 "p").
 *
 * rua=/ruf= are lists of URIs (RFC 3986 "scheme:rest", no unencoded ',' '!' or
 * spaces), each with an optional obsolete "!size[kmgt]" suffix parsed into `limit`
 * (bytes; saturates). A URI that does not parse is dropped alone (noted); at most
 * DMARC_URI_MAX per list are kept, each at most DMARC_URI_LEN octets. fo= is kept only
 * when ruf= is present (§4.7 "fo").
 */
#ifndef FERRY_DMARC_RECORD_H
#define FERRY_DMARC_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DMARC_RECORD_MAX  4096   /* longer TXT strings are not DMARC records we parse */
#define DMARC_URI_MAX     8      /* URIs kept per rua=/ruf= list */
#define DMARC_URI_LEN     320
#define DMARC_NOTES_MAX   512

enum dmarc_policy { DMARC_P_NONE, DMARC_P_QUARANTINE, DMARC_P_REJECT };
enum dmarc_align  { DMARC_ALIGN_RELAXED, DMARC_ALIGN_STRICT };
enum dmarc_psd    { DMARC_PSD_U, DMARC_PSD_Y, DMARC_PSD_N };

enum dmarc_policy_state {
    DMARC_POLICY_OK,          /* p (and sp/np when present) valid, or p absent = none */
    DMARC_POLICY_FORCED_NONE, /* a bad p/sp/np, but a valid rua: act as "p=none" */
    DMARC_POLICY_UNUSABLE     /* a bad p/sp/np and no valid rua: no DMARC processing */
};

/* fo= flags (§4.7); the default is DMARC_FO_0. */
enum { DMARC_FO_0 = 1, DMARC_FO_1 = 2, DMARC_FO_D = 4, DMARC_FO_S = 8 };

struct dmarc_uri {
    char uri[DMARC_URI_LEN + 1];
    uint64_t limit;           /* from "!size", in octets; 0 when none was given */
};

struct dmarc_record {
    enum dmarc_policy_state policy_state;
    enum dmarc_policy p, sp, np;  /* effective: sp defaults to p, np to sp (§4.7) */
    bool has_p, has_sp, has_np;   /* given with a valid value */
    bool testing;                 /* t=y */
    enum dmarc_psd psd;
    enum dmarc_align adkim, aspf;
    struct dmarc_uri rua[DMARC_URI_MAX], ruf[DMARC_URI_MAX];
    size_t nrua, nruf;
    unsigned fo;                  /* DMARC_FO_* bits */
    char notes[DMARC_NOTES_MAX];  /* "; "-separated things ignored, "" when none */
};

enum dmarc_record_status { DMARC_REC_OK = 0, DMARC_REC_NOT_DMARC = -1 };

/* True when the text starts with the version tag (the §4.10 step 2 test). */
bool dmarc_record_is_dmarc(const char *txt, size_t len);

/* DMARC_REC_OK with *out filled, or DMARC_REC_NOT_DMARC (out then holds defaults). */
enum dmarc_record_status dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *out);

const char *dmarc_policy_name(enum dmarc_policy p);
/* "fo=0:d" style text of the flags, into out (at least 8 octets). */
void dmarc_fo_text(unsigned fo, char *out, size_t outsz);

#endif

/*
 * arc — ARC (RFC 8617): the three header fields of an ARC set, the collection of
 * sets from a header block with the structural checks of §5.2 steps 1–3, and the
 * chain validator (steps 4–7, with oldest-pass).
 *
 * Who calls it: smtpd on port-25 mail (streaming, beside the DKIM verifier; the
 * trusted-sealer policy reads arc_aar_pass), ferryctl arc verify, unit tests and
 * fuzzers. Pure: no sockets; key records come through the same struct
 * dkim_resolver the DKIM verifier uses (auth/dkim_dns), and canonicalisation, tag
 * lists, key parsing and the signature primitives are auth/dkim_*'s.
 * Limits an outsider controls: at most ARC_SETS_MAX sets (more is "fail", §5.2 step
 * 1), the header block of DKIM_HDR_FIELDS_MAX fields, 2N key lookups at most, one
 * body hash per distinct AMS body c=/l= (at most N); the body is never kept.
 * Failure modes are results with one sentence of reason, never crashes. The done
 * callback fires exactly once, possibly inside arc_verify_finish/arc_verify_start.
 */
#ifndef FERRY_ARC_H
#define FERRY_ARC_H

#include "auth/dkim_canon.h"
#include "auth/dkim_tags.h"
#include "auth/dkim_verify.h"

#include <stdbool.h>
#include <stddef.h>

#define ARC_SETS_MAX 50
#define ARC_REASON_MAX 192

enum arc_cv { ARC_CV_NONE, ARC_CV_PASS, ARC_CV_FAIL };
const char *arc_cv_name(enum arc_cv cv);

struct arc_set {
    unsigned instance;
    size_t aar, ams, as;              /* field indexes in the header */
    struct dkim_taglist ams_tags, as_tags;   /* point into the header's bytes */
    size_t ams_off, as_off;           /* offset of the tag list within its field */
    enum arc_cv cv;
    char as_domain[256], as_selector[64];
    char ams_domain[256], ams_selector[64];
    const char *aar_value;            /* after "i=N;" */
    size_t aar_len;
};

struct arc_chain {
    struct arc_set sets[ARC_SETS_MAX];  /* sets[k] has instance k + 1 */
    size_t n;
};

/* §5.2 steps 1–3 over a split header. Returns the status so far: ARC_CV_NONE when
   the message has no ARC field, ARC_CV_FAIL with a reason when the structure is
   broken (or the newest seal says cv=fail), ARC_CV_PASS when the chain is worth
   verifying cryptographically. */
enum arc_cv arc_collect(const struct dkim_header *h, struct arc_chain *c, char *why, size_t whysz);

/* The instance of an ARC field's value ("i=N; ..." for AAR, an i= tag otherwise):
   0 when absent or not 1..ARC_SETS_MAX+1 (one more, so "too many" is seen). */
unsigned arc_aar_instance(const char *v, size_t len, size_t *rest);
/* The highest instance any readable ARC field of h names (0 when none): where a
   sealer continues a chain arc_collect found broken (RFC 8617 §5.1 step 3). */
unsigned arc_max_instance(const struct dkim_header *h);

struct arc_set_result {
    unsigned instance;
    enum dkim_result ams, as;         /* NONE when not checked */
    char ams_why[ARC_REASON_MAX], as_why[ARC_REASON_MAX];
};

struct arc_result {
    enum arc_cv status;               /* none, pass or fail */
    unsigned oldest_pass;             /* 0: every AMS verified */
    size_t n;
    struct arc_set_result sets[ARC_SETS_MAX];
    char newest_domain[256];          /* d= of the newest AS, for trusted-sealer policy */
    char newest_aar[1024];            /* the newest AAR's results, for the DMARC override */
    char reason[ARC_REASON_MAX];
};

typedef void (*arc_verify_done)(void *arg, const struct arc_result *r);

struct arc_verifier;
/* Streaming, as dkim_verify: new, the header block once (the empty line may be
   included; it is copied), the body in chunks of any size (hashed as it passes,
   never kept), then finish, whose done callback fires exactly once, possibly
   inside it. new returns NULL on allocation failure; header -1 when called twice
   or out of memory (the result is then "none"). */
struct arc_verifier *arc_verify_new(const struct dkim_resolver *r);
int arc_verify_header(struct arc_verifier *v, const char *hdr, size_t len);
void arc_verify_body(struct arc_verifier *v, const char *p, size_t n);
void arc_verify_finish(struct arc_verifier *v, arc_verify_done done, void *arg);
/* All of the above for a whole message in memory. NULL on allocation failure. */
struct arc_verifier *arc_verify_start(const struct dkim_resolver *r, const char *msg, size_t len,
                                      arc_verify_done done, void *arg);
void arc_verify_free(struct arc_verifier *v);
/* With a resolver that answers in line: 0 ok, -1 when it did not. */
int arc_verify_message(const struct dkim_resolver *r, const char *msg, size_t len, struct arc_result *out);

/* The newest AAR's results (arc_result.newest_aar, the part after "i=N;"): "dmarc"
   when it says dmarc=pass, else "spf" for spf=pass, else "dkim" for dkim=pass, else
   NULL. Comments and quoted strings are skipped; reads at most 4096 octets. */
const char *arc_aar_pass(const char *aar);

/* RFC 8617 §10.1 method result: "arc=pass (why) header.oldest-pass=N smtp.remote-ip=IP";
   ip may be NULL. 0 ok, -1 when truncated. */
int arc_result_format(const struct arc_result *r, const char *ip, char *out, size_t outsz);

#endif

/*
 * dmarc — DMARC evaluation of one message (RFC 9989 §4.4, §4.10, §5.3): given the
 * Author Domain, the SPF result of the MAIL FROM identity and the DKIM results, find
 * the applicable DMARC Policy Record, check Identifier Alignment, and say what the
 * Domain Owner asks for and what Ferry recommends doing.
 *
 * Who calls it: smtpd at end of DATA, with the SPF outcome it got at MAIL FROM and the
 * DKIM results of its verifier (asynchronously, on its auth_resolver); ferryctl dmarc
 * check (dmarc_evaluate_sync); unit tests over a table resolver. Nothing here reads the
 * message: the caller runs dmarc_from_extract on the header section first.
 *
 * Asynchronous: dmarc_evaluate() copies its inputs and returns a handle; the callback
 * gets the outcome exactly once, from a DNS callback, unless dmarc_evaluate_cancel()
 * is called first. It runs inside dmarc_evaluate() (which then returns NULL) only when
 * no DNS is needed (the From: outcome already decides) or memory runs out. The outcome
 * is valid during the callback only. DNS work: one tree walk for the Author Domain
 * (≤ 8 TXT queries), one walk per Authenticated Identifier that relaxed alignment
 * cannot settle by comparing names (SPF, then distinct DKIM d= domains until one
 * aligns, at most DMARC_DKIM_IDS_MAX), and one A query for the Author Domain's
 * existence when np= could change the policy.
 *
 * Results (RFC 9989 §9.2, RFC 8601): none = no applicable record (or no author domain),
 * pass, fail, temperror = a DNS failure left the answer open, permerror = an unusable
 * record (§4.10.1) or a From: that cannot give one author domain (dmarc_from.h).
 * policy = the Domain Owner Assessment Policy that applies (p, sp or np);
 * disposition = what Ferry recommends: the policy on fail, one step lower under t=y,
 * none otherwise, except reject for a From: with several author domains (§11.5).
 * Failure modes are results; nothing here exits or blocks.
 */
#ifndef FERRY_DMARC_H
#define FERRY_DMARC_H

#include "auth/auth_dns.h"
#include "auth/dkim_verify.h"
#include "auth/dmarc_discover.h"
#include "auth/dmarc_from.h"
#include "auth/dmarc_record.h"
#include "auth/spf_record.h"

#define DMARC_DKIM_IDS_MAX 8     /* distinct DKIM d= domains considered */
#define DMARC_STEPS_MAX    40
#define DMARC_STEP_LEN     256

enum dmarc_result { DMARC_RES_NONE, DMARC_RES_PASS, DMARC_RES_FAIL, DMARC_RES_TEMPERROR, DMARC_RES_PERMERROR };

struct dmarc_input {
    const struct dmarc_from *from;          /* from dmarc_from_extract */
    enum spf_result spf;                    /* SPF result of the MAIL FROM identity */
    const char *spf_domain;                 /* its <domain>: the MAIL FROM domain, or the HELO
                                               domain for a null reverse path; may be NULL */
    const struct dkim_sig_result *dkim;     /* the verifier's results, any order */
    size_t ndkim;
};

struct dmarc_outcome {
    enum dmarc_result result;
    char header_from[DMARC_DOMAIN_MAX + 1];  /* the Author Domain ("" when none) */
    bool has_record;                         /* record below is the applicable one */
    struct dmarc_record record;              /* p/sp/np, adkim/aspf, t, rua/ruf/fo */
    char policy_domain[DMARC_DOMAIN_MAX + 1];
    char org_domain[DMARC_DOMAIN_MAX + 1];
    enum dmarc_source source;
    enum dmarc_policy policy;                /* the p, sp or np value that applies */
    const char *policy_tag;                  /* "p", "sp", "np" ("" without a record) */
    enum dmarc_policy disposition;
    bool spf_aligned, dkim_aligned;          /* an aligned pass of that method */
    char dkim_aligned_domain[DMARC_DOMAIN_MAX + 1];
    char reason[200];                        /* one phrase behind the result */
    char steps[DMARC_STEPS_MAX][DMARC_STEP_LEN];
    size_t nsteps;
};

typedef void (*dmarc_done_cb)(const struct dmarc_outcome *o, void *arg);

struct dmarc_eval;

struct dmarc_eval *dmarc_evaluate(const struct auth_resolver *r, const struct dmarc_input *in, dmarc_done_cb cb,
                                  void *arg);
void dmarc_evaluate_cancel(struct dmarc_eval *e);

/* Blocking, for ferryctl. 0 with *out filled; -1 when the event loop could not be set up. */
int dmarc_evaluate_sync(const struct dns_config *cfg, const struct dmarc_input *in, struct dmarc_outcome *out);

const char *dmarc_result_name(enum dmarc_result r);

/* RFC 8601 method result: "dmarc=fail (p=reject sp=reject dis=quarantine)
   header.from=example.com policy.dmarc=quarantine"; the comment and policy.dmarc only
   with a record, header.from only with an author domain.
   Returns the length, or -1 when it did not fit. */
int dmarc_format_auth_results(const struct dmarc_outcome *o, char *out, size_t outsz);

#endif

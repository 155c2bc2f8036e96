/*
 * dmarc_failure — DMARC failure reports (RFC 9991, in the ARF format of RFC 5965
 * as extended for authentication failures by RFC 6591).
 *
 * dmarc_failure_wanted decides from the policy's fo= and the message's outcomes
 * whether a report is due: never for a psd=y record (RFC 9991 section 2); fo=0
 * (the default) when no mechanism gave an aligned pass; fo=1 when any did not;
 * fo=d when a DKIM signature failed verification, aligned or not; fo=s when SPF
 * failed, aligned or not (RFC 9989 4.7). Options combine with ':'.
 *
 * dmarc_failure_build writes one multipart/report; report-type=feedback-report
 * message for one failed message and one destination: a text/plain note, the
 * message/feedback-report part (Feedback-Type: auth-failure, Auth-Failure: dmarc,
 * Identity-Alignment, DKIM-Domain/-Selector for an aligned DKIM failure, ...),
 * and the failed message's header section only, as text/rfc822-headers (never
 * its body). With redact, every address local part in the header copy and in
 * Original-Mail-From is replaced by a tag derived from a per-report random salt
 * (the same local part gets the same tag within one report, as RFC 9991's example
 * suggests, and cannot be read back).
 *
 * The rate limit (RFC 9991 section 2: MUST) is a lib/ratelimit.h table keyed by
 * destination address: at most dmarc_failure_rate reports per hour each.
 * Pure apart from the random salt; no I/O.
 */
#ifndef FERRY_DMARC_FAILURE_H
#define FERRY_DMARC_FAILURE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/ratelimit.h"

struct dmarc_fo {
    bool any_fail;      /* 0 */
    bool one_fail;      /* 1 */
    bool dkim;          /* d */
    bool spf;           /* s */
};

/* fo tag value ("0", "1:d", ...); unknown options are ignored, none known: "0". */
void dmarc_fo_parse(const char *fo, struct dmarc_fo *out);

struct dmarc_failure_outcome {
    bool psd;                   /* the record had psd=y */
    bool spf_aligned_pass;
    bool dkim_aligned_pass;
    bool spf_failed;            /* the SPF result was fail, aligned or not */
    bool dkim_failed;           /* some signature failed verification, aligned or not */
};

bool dmarc_failure_wanted(const struct dmarc_fo *fo, const struct dmarc_failure_outcome *o);

struct dmarc_failure_report {
    const char *reporter;       /* our domain name (From's domain, User-Agent host) */
    const char *from;           /* dmarc_report_email */
    const char *to;             /* the ruf destination address */
    const char *authserv_id;
    const char *policy_domain;  /* Reported-Domain */
    const char *header_from;    /* the RFC5322.From domain */
    const char *source_ip;
    const char *mail_from;      /* envelope sender ("" for <>) */
    const char *dkim_domain;    /* an aligned signature that failed, else NULL */
    const char *dkim_selector;
    const char *delivery;       /* delivered | spam | policy | reject | other, or NULL */
    struct dmarc_failure_outcome outcome;
    time_t arrival, now;
    const char *msg_id_seed;    /* unique text for Message-ID and boundary */
    bool redact;
    const char *salt;           /* NULL: random; tests give one for fixed output */
};

/* The report for the failed message msg[0..len). 0, or -1 (err) when it does not fit. */
int dmarc_failure_build(const struct dmarc_failure_report *r, const char *msg, size_t len, struct buf *out,
                        char *err, size_t errlen);

/* Per-destination hourly limit. */
struct ratelimit *dmarc_failure_limiter(unsigned long long per_hour);
/* Count one report to dest at time now (seconds); false: over the limit, do not send. */
bool dmarc_failure_allow(struct ratelimit *rl, const char *dest, double now);

#endif

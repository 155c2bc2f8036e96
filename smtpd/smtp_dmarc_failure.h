/*
 * smtp_dmarc_failure — DMARC failure reports (RFC 9991) for a message whose
 * authentication failed as the policy's fo= describes (a DMARC fail, or with
 * fo=1/d/s a failed mechanism under an overall pass): off unless dmarc_failure_reports = yes; only when the policy
 * record has ruf= and its fo= asks for this failure; never for a psd=y record;
 * at most dmarc_failure_rate reports per destination per hour (counted here, in
 * the smtp process). Each report is built now, from the header section as it
 * arrived (never the body; local parts redacted with dmarc_failure_redact), and
 * left in <data_dir>/dmarc-failure/ for the queue process's report run, which
 * checks the destination (RFC 9990 section 4 rules) and submits it. At most
 * DMARC_FAILURE_MAX_WAITING reports wait at once, each at most
 * DMARC_FAILURE_MAX_AGE. Nothing here waits for the network or affects the
 * message.
 */
#ifndef FERRY_SMTP_DMARC_FAILURE_H
#define FERRY_SMTP_DMARC_FAILURE_H

#include <stddef.h>

struct smtp_server;
struct smtp_dmarc_seen;

/* delivery: "delivered", "spam" (quarantined) or "reject". */
void smtp_dmarc_failure_report(struct smtp_server *srv, const struct smtp_dmarc_seen *m, const char *hdr,
                               size_t hlen, const char *delivery);

#endif

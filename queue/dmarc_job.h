/*
 * dmarc_job — sends the DMARC aggregate reports that are due (RFC 9990), for the
 * queue process and for `ferryctl dmarc report`.
 *
 * The work is blocking (Berkeley DB transactions, DNS for the destination check,
 * gzip), so the queue process runs it in a child that it forks and reaps without
 * waiting (queue/queue_proc.c); ferryctl runs it in the foreground. Each report
 * goes through the order of auth/dmarc_agg.h (freeze, claim, submit, mark) that
 * sends it at most once per destination, and is submitted through the maildrop
 * (queue/maildrop.h) as the daemon's own user: the pickup then DKIM-signs it for
 * the From: domain like any mail Ferry sends, and commits it to the queue.
 *
 * External destinations (RFC 9990 section 4): a mailto: address whose domain is
 * not in the policy domain's organizational domain gets a report only when
 * <policy-domain>._report._dmarc.<its domain> has a TXT record starting with
 * "v=DMARC1". Verdicts are cached for the run; a DNS failure leaves the
 * destination pending for the next run. Organizational domains come from the
 * RFC 9989 tree walk.
 */
#ifndef FERRY_DMARC_JOB_H
#define FERRY_DMARC_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/settings.h"

/* A run starts no new destination after this long (slow DNS for many external
   destinations): the rest waits for the next run. A run is never killed from
   outside, since a process that dies inside the Berkeley DB environment makes
   the next opener run recovery under everyone else's feet. */
#define DMARC_JOB_SECONDS 600

struct dmarc_job_result {
    unsigned reports, sent, too_big, failed, skipped;
};

/* dry_run: nothing is frozen, claimed or sent; the XML of each due report is
   written to stdout. only_domain: NULL for all. Log lines go to the log. 0 ok;
   -1 with err (the store could not be opened or failed; what was done stays done). */
int dmarc_job_run(const struct ferry_config *cfg, bool dry_run, const char *only_domain,
                  struct dmarc_job_result *res, char *err, size_t errlen);

/* Received reports: every message delivered to dmarc_reports_address (the
   Maildir <mail_dir>/.dmarc-reports/new/, see delivery/local_rcpt.h) is parsed
   and stored (auth/dmarc_rua_store.h), then moved to cur/ flagged seen (":2,S"),
   or, when it holds no usable report, seen and flagged (":2,FS") with the reason
   logged: kept for the administrator, never read twice. Messages quarantined
   into its .Junk folder (a report that failed DMARC) are not read. Returns how
   many messages were read, or -1 with err. */
int dmarc_job_import(const struct ferry_config *cfg, char *err, size_t errlen);

/* Failure reports (RFC 9991) wait in <data_dir>/dmarc-failure/, one file each,
   written by the smtp process (smtpd/smtp_dmarc_failure.h) after its rate
   limit: "FERRY-DMARC-FAILURE 1\npolicy DOMAIN\nto ADDR\n\n" and the report
   message. The report run checks the destination like an aggregate report's,
   submits the authorized ones through the maildrop and removes every file it
   settled; a destination whose check failed for now waits for the next run.
   Returns how many were sent, or -1 with err. */
#define DMARC_FAILURE_DIR "dmarc-failure"
#define DMARC_FAILURE_MAX_WAITING 1000            /* files; more are not written */
#define DMARC_FAILURE_MAX_AGE     (2 * 86400)     /* seconds; older ones are dropped */
#define DMARC_FAILURE_MAGIC "FERRY-DMARC-FAILURE 1\n"
int dmarc_job_failures(const struct ferry_config *cfg, char *err, size_t errlen);

/* One report run at a time (the queue's timer, a restarted queue's, ferryctl):
   an exclusive lock on <data_dir>/dmarc-run.lock, held until the returned
   descriptor is closed. -1 when another run holds it (or it cannot be made). */
int dmarc_job_lock(const struct ferry_config *cfg);

/* Is addr's domain an external destination for policy_domain, and is it
   authorized? 1 yes (or not external), 0 no (why), -1 DNS failed. Exposed for tests. */
int dmarc_job_authorize(const struct dns_config *dns, const char *policy_domain, const char *addr, char *why,
                        size_t whylen);

#endif

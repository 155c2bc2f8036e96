/*
 * tlsrpt_job — the daily TLS-RPT run (RFC 8460 §5): for every policy domain
 * with counts (delivery/tlsrpt_store.h) for a UTC day that has ended and a
 * "_smtp._tls" TXT record with rua, one JSON report, gzip'ed, mailed
 * (application/tlsrpt+gzip in multipart/report, through the maildrop, so the
 * smtp process DKIM-signs it like the DMARC reports) to each mailto: rua and
 * POSTed to each https: rua (lib/https_fetch.h, on a loop of the run's own).
 *
 * Called in the report runner's child (queue/report_runner.c): blocking work
 * (Berkeley DB, DNS, HTTPS) is fine there.
 *
 * At most once per domain-day: before anything is sent, one durable
 * transaction writes the domain-day's "sent" marker and deletes its counters;
 * a crash after it loses that report, never sends it twice (RFC-NOTES.md
 * "TLS-RPT"). A DNS failure on the TXT lookup leaves the counts for the next
 * run; no record (or an invalid one) settles the domain-day without a report.
 * Counts older than TLSRPT_KEEP_DAYS that were never settled are dropped.
 */
#ifndef FERRY_TLSRPT_JOB_H
#define FERRY_TLSRPT_JOB_H

#include <stddef.h>

#include "lib/settings.h"

#define TLSRPT_KEEP_DAYS     7
#define TLSRPT_JOB_MAX_ROWS  100000     /* counters read per run */
#define TLSRPT_HTTPS_TIMEOUT_MS 30000

struct tlsrpt_job_result {
    unsigned reports, mailed, posted, failed, pending;
};

/* now: UTC seconds (the days before now's are reported). 0 ok, -1 with err. */
int tlsrpt_job_run(const struct ferry_config *cfg, long long now, struct tlsrpt_job_result *res, char *err,
                   size_t errlen);

#endif

/*
 * report_runner — the queue process's timer for DMARC aggregate and TLS-RPT reports.
 *
 * Every REPORT_CHECK_SECONDS (the first time REPORT_FIRST_SECONDS after start),
 * when no run is still going, it forks a child that reads the reports received
 * at dmarc_reports_address (dmarc_job_import) and the TLS reports received at
 * tlsrpt_reports_address (tlsrpt_import_run), sends the aggregate reports that
 * are due when dmarc_reporting is on (dmarc_job_run), then the TLS-RPT reports
 * of days that have ended when tlsrpt is on (tlsrpt_job_run), and exits. The blocking work (Berkeley
 * DB, DNS, gzip) is the child's; the queue process's loop only learns, from the
 * end of a pipe, that the child is gone, and reaps it. A child is never killed
 * (a process dying inside the Berkeley DB environment forces recovery on every
 * other user of it): it stops starting new work after DMARC_JOB_SECONDS, and
 * one still going after REPORT_RUN_MAX_SECONDS is only logged.
 */
#ifndef FERRY_REPORT_RUNNER_H
#define FERRY_REPORT_RUNNER_H

#include "lib/settings.h"

#define REPORT_FIRST_SECONDS   5
#define REPORT_CHECK_SECONDS   300
#define REPORT_RUN_MAX_SECONDS 1800

struct event_base;
struct report_runner;

struct report_runner *report_runner_start(struct event_base *base, const struct ferry_config *cfg);
/* Stops the timer; a child still running is left to finish on its own. */
void report_runner_free(struct report_runner *r);

#endif

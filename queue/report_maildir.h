/*
 * report_maildir — the reports others mail to an address Ferry reads itself
 * (dmarc_reports_address, tlsrpt_reports_address) wait in a Maildir under
 * mail_dir (delivery/local_rcpt.h); the report run reads each new message once.
 * Shared by queue/dmarc_job.c and queue/tlsrpt_import.c; runs in the report
 * run's child (blocking file and database work).
 *
 * Each message of <mail_dir>/<box>/new/ (at most REPORT_MAILDIR_BATCH per run,
 * the rest next run) is read whole, at most max octets, and given to fn; then
 * moved to cur/ flagged seen (":2,S") when fn took it, or seen and flagged
 * (":2,FS") with "<label>: NAME refused: WHY" logged when it did not (or could
 * not be read): kept for the administrator, never read twice. Messages
 * quarantined into the box's .Junk folder are not read.
 */
#ifndef FERRY_REPORT_MAILDIR_H
#define FERRY_REPORT_MAILDIR_H

#include <stddef.h>

#include "lib/settings.h"

#define REPORT_MAILDIR_BATCH 1000

struct report_maildir_reader {
    const char *box;            /* LOCAL_REPORTS_MAILDIR, LOCAL_TLSRPT_MAILDIR */
    const char *label;          /* "dmarc reports received" */
    size_t max;                 /* octets of one message */
    /* Once, before the first message (opening a store): 0, or -1 with err. */
    int (*open)(void *arg, char *err, size_t errlen);
    /* One message: 0 taken (fn logs what it did), -1 refused with why. */
    int (*take)(void *arg, const char *name, const char *data, size_t len, char *why, size_t whylen);
    void *arg;
};

/* The number of messages read, or -1 with err (nothing could be read). */
int report_maildir_read(const struct ferry_config *cfg, const struct report_maildir_reader *rd, char *err,
                        size_t errlen);

#endif

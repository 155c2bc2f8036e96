/*
 * tlsrpt_import — the report run's reading of TLS reports others mailed to a
 * tlsrpt_reports_address: each message delivered to <mail_dir>/.tlsrpt-reports
 * (delivery/local_rcpt.h) is parsed and its reports about our domains stored
 * in tlsrpt_received.db (delivery/tlsrpt_received.h), through the Maildir
 * reader that DMARC's reports use too (queue/report_maildir.h): a message read
 * is flagged seen, one that holds no usable report is flagged and its reason
 * logged. A run that read any message then drops the stored reports older
 * than TLSRPT_RX_KEEP_DAYS (the store grows only when reports arrive, so that
 * bounds it). Blocking; runs in the report run's child (queue/report_runner.h).
 */
#ifndef FERRY_TLSRPT_IMPORT_H
#define FERRY_TLSRPT_IMPORT_H

#include <stddef.h>

#include "lib/settings.h"

/* How many messages were read, or -1 with err. */
int tlsrpt_import_run(const struct ferry_config *cfg, char *err, size_t errlen);

#endif

/*
 * smtp_tlsrpt — at the end of DATA (or the last BDAT), a message addressed only
 * to TLS report addresses (tlsrpt_reports_address) must hold a TLS report
 * Ferry can read and keep (delivery/tlsrpt_parse.h, tlsrpt_received.h): one
 * that cannot is refused there and then, so the sender hears why (550 5.6.0
 * naming the fault, 552 5.3.4 for a message over TLSRPT_RX_MSG_MAX). The
 * report is only read here; storing it is the report run's, after delivery to
 * the reports Maildir. A message that also goes to other recipients is taken
 * as usual and a bad report in it is logged by the report run (RFC-NOTES.md).
 *
 * The work is bounded CPU (base64, gunzip to at most TLSRPT_RX_JSON_MAX, JSON)
 * on bytes already on disk or in the session's buffer: the smtp process never
 * waits on anything else for it.
 */
#ifndef FERRY_SMTP_TLSRPT_H
#define FERRY_SMTP_TLSRPT_H

#include <stddef.h>

struct smtp_session;

/* NULL: nothing to refuse (not a report-only message, or a good report).
   Else the reply text, written into buf. */
const char *smtp_tlsrpt_refusal(struct smtp_session *s, char *buf, size_t bufsz);

#endif

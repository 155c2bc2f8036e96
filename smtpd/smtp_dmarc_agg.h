/*
 * smtp_dmarc_agg — after a message from a stranger is committed, its DMARC
 * evaluation is counted for the aggregate report of its policy domain
 * (auth/dmarc_agg.h, RFC 9990): one row per distinct (source IP, disposition,
 * alignment, DKIM and SPF results, header_from, envelope_from, envelope_to) per
 * period; rows that agree are counted, not repeated.
 *
 * Only evaluations that found a record with rua= are kept, and only for the
 * domains dmarc_reporting / dmarc_report_domains allow. Nothing is counted for
 * mail Ferry itself originated (it is never evaluated) nor for a refused message
 * that was never accepted... except a DMARC reject, which the report must show:
 * the caller counts those too. A failure to count is logged and never affects the
 * message.
 */
#ifndef FERRY_SMTP_DMARC_AGG_H
#define FERRY_SMTP_DMARC_AGG_H

#include <stddef.h>

struct smtp_server;
struct dmarc_outcome;
struct policy_dmarc;
struct dkim_sig_result;

struct smtp_dmarc_seen {
    const struct dmarc_outcome *outcome;
    const struct policy_dmarc *verdict;
    const struct dkim_sig_result *dkim;
    size_t ndkim;
    int spf;                    /* enum spf_result of MAIL FROM */
    const char *spf_domain;     /* "" when SPF did not run */
    const char *client_ip;
    const char *envelope_from;  /* the reverse-path ("" for <>) */
    const char *envelope_to;    /* the first recipient */
    const char *log_id;
};

void smtp_dmarc_agg_record(struct smtp_server *srv, const struct smtp_dmarc_seen *m);

#endif

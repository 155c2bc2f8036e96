/*
 * tlsrpt_report — an SMTP TLS report (RFC 8460 §4) as JSON, and the names the
 * RFC gives it: the file name (§5.1) and the Subject (§5.3). Pure: structs in,
 * bytes out (json-c builds the document, so every string is escaped by one
 * well-kept library); called by the daily TLS-RPT run and by unit tests.
 *
 * The caller passes what it counted: per policy (type "sts", "tlsa" or
 * "no-policy-found", the policy's lines or TLSA records, the policy domain, the
 * MX patterns) the successful and failed session counts and the failure details.
 * A result type outside RFC 8460 §4.3's list, a missing required string, or a
 * failure count that does not add up to the policy's total-failure-session-count
 * is refused (-1): a report that contradicts itself is never sent. Optional
 * fields (receiving-mx-helo, failure-reason-code, additional-information) are
 * written only when set; "failure-details" only when there is one (RFC-NOTES.md).
 * Times are UTC seconds, written as RFC 3339 "YYYY-MM-DDTHH:MM:SSZ".
 */
#ifndef FERRY_TLSRPT_REPORT_H
#define FERRY_TLSRPT_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define TLSRPT_JSON_MAX (16u << 20)     /* a report larger than this is refused */

struct tlsrpt_failure {
    const char *result_type;        /* RFC 8460 §4.3, e.g. "certificate-host-mismatch" */
    const char *sending_ip;
    const char *receiving_mx;       /* receiving-mx-hostname */
    const char *receiving_helo;     /* optional */
    const char *receiving_ip;
    unsigned long long count;
    const char *reason_code;        /* optional failure-reason-code */
    const char *info_uri;           /* optional additional-information */
};

struct tlsrpt_policy {
    const char *type;               /* "sts", "tlsa", "no-policy-found" */
    const char *const *strings;     /* policy-string */
    size_t n_strings;
    const char *domain;
    const char *const *mx;          /* mx-host (sts only) */
    size_t n_mx;
    unsigned long long ok, failed;
    const struct tlsrpt_failure *fail;
    size_t n_fail;
};

struct tlsrpt_report {
    const char *organization;
    long long start, end;           /* [start, end) in UTC seconds */
    const char *contact;            /* addr-spec */
    const char *report_id;
    const struct tlsrpt_policy *policies;
    size_t n_policies;
};

/* Whether s is one of RFC 8460 §4.3's result types. */
bool tlsrpt_result_type_ok(const char *s);

/* Append the JSON document to out. 0 ok; -1 refused (err says why) or out of
   memory. */
int tlsrpt_report_json(const struct tlsrpt_report *r, struct buf *out, char *err, size_t errlen);

/* "SENDER!POLICYDOMAIN!BEGIN!END!UNIQUE.json.gz" (§5.1); unique is letters and
   digits, or NULL for none. -1 when it does not fit. */
int tlsrpt_report_filename(const char *sender, const char *policy_domain, long long begin, long long end,
                           const char *unique, char *out, size_t outsz);

/* The Subject value (§5.3): "Report Domain: D Submitter: S Report-ID: <ID>". */
int tlsrpt_report_subject(const char *policy_domain, const char *submitter, const char *msgid_like, char *out,
                          size_t outsz);

#endif

/*
 * tlsrpt_parse — SMTP TLS reports others send us (RFC 8460 §4, §5.3), read from
 * untrusted bytes: the JSON, the JSON gzip'ed, or the report part(s) of a whole
 * received message. Pure: bytes in, a struct or one sentence out. Called by the
 * smtp process at the end of DATA for mail to a TLS report address (to refuse a
 * bad one at once), by the report run that stores what was accepted
 * (tlsrpt_received.h), and by `ferryctl tlsrpt import`.
 *
 * What is checked (§4.4; RFC-NOTES.md "TLS-RPT, receiving"): the document is one
 * JSON object (json-c, strict mode, nesting at most TLSRPT_RX_DEPTH); it has
 * organization-name, date-range (two RFC 3339 date-times, end not before start),
 * contact-info (an addr-spec: local@domain), report-id and a policies array;
 * each policy has a policy object (policy-type tlsa, sts or no-policy-found;
 * policy-domain a domain name; policy-string and mx-host arrays of strings when
 * present) and a summary with both counts as non-negative JSON integers; each
 * failure-details entry has a result-type (a token: later RFCs may add types, so
 * an unknown one is kept, not refused) and a failed-session-count, and its
 * addresses and host name, when present, must be IP addresses and a host name.
 * Members the RFC does not name are ignored. Failure counts need not add up to
 * the summary: §4 says failure types may overlap.
 *
 * Bounds (an outsider controls every byte): TLSRPT_RX_PACKED_MAX octets as
 * sent, TLSRPT_RX_JSON_MAX after gunzip (counted while inflating: a gzip bomb
 * stops there), TLSRPT_RX_POLICIES_MAX policies, TLSRPT_RX_DETAILS_MAX
 * failure-details and TLSRPT_RX_STRINGS_MAX policy strings and MX patterns in
 * one report, TLSRPT_RX_PARTS_MAX reports in one message of at most
 * TLSRPT_RX_MSG_MAX octets. A text field longer than its field is refused,
 * except failure-reason-code, free text kept only for display, which is cut;
 * control characters in free text become spaces. Nothing is half-returned.
 */
#ifndef FERRY_TLSRPT_PARSE_H
#define FERRY_TLSRPT_PARSE_H

#include <stddef.h>

#define TLSRPT_RX_MSG_MAX      (14u << 20)      /* a message: 10 MB of report in base64 */
#define TLSRPT_RX_PACKED_MAX   (10u << 20)      /* RFC 8460 §5.2's "commonly observed" limit */
#define TLSRPT_RX_JSON_MAX     (10u << 20)
#define TLSRPT_RX_POLICIES_MAX 1000
#define TLSRPT_RX_DETAILS_MAX  10000
#define TLSRPT_RX_STRINGS_MAX  10000
#define TLSRPT_RX_STRING_MAX   8192             /* one policy-string (a TLSA record of a whole certificate) */
#define TLSRPT_RX_PARTS_MAX    4
#define TLSRPT_RX_DEPTH        8

struct tlsrpt_rx_failure {
    char result[64];            /* result-type */
    unsigned long long count;   /* failed-session-count */
    char mx[256];               /* receiving-mx-hostname, lower case; "" when absent */
    char receiving_ip[64];      /* "" when absent */
    char sending_ip[64];        /* "" when absent */
    char reason[128];           /* failure-reason-code, cut; "" when absent */
};

struct tlsrpt_rx_policy {
    char type[16];              /* "sts", "tlsa", "no-policy-found" */
    char domain[256];           /* policy-domain, lower case, no trailing dot */
    unsigned long long ok;      /* total-successful-session-count */
    unsigned long long failed;  /* total-failure-session-count */
    struct tlsrpt_rx_failure *fail;
    size_t nfail;
};

struct tlsrpt_rx_report {
    char org[256];              /* organization-name */
    char contact[320];          /* contact-info */
    char report_id[256];
    long long start, end;       /* date-range, UTC seconds */
    struct tlsrpt_rx_policy *policies;
    size_t npolicies;
};

/* The JSON alone. 0 ok, -1 refused (err names what is wrong). */
int  tlsrpt_rx_parse_json(const char *json, size_t len, struct tlsrpt_rx_report *out, char *err, size_t errlen);
/* JSON or gzip'ed JSON, told apart by the gzip magic octets. */
int  tlsrpt_rx_parse_blob(const void *data, size_t len, struct tlsrpt_rx_report *out, char *err, size_t errlen);
void tlsrpt_rx_free(struct tlsrpt_rx_report *r);

/* Every report of a whole message: parts of type application/tlsrpt+gzip or
   application/tlsrpt+json (RFC 8460 §5.3), application/json, application/gzip
   and application/octet-stream named *.json or *.json.gz, in base64, 7bit or
   8bit, in nested multiparts up to 4 deep; or the message's own body when it
   is one of those types, or text/plain starting with "{". 0 with *n >= 1; -1
   when it holds none or one is refused (err). *out malloc'd: free each with
   tlsrpt_rx_free, then free(*out). */
int  tlsrpt_rx_from_message(const char *msg, size_t len, struct tlsrpt_rx_report **out, size_t *n, char *err,
                            size_t errlen);

/* tlsrpt_rx_from_message for a caller that must not spend long (the smtp
   process, at the end of DATA): a report that inflates past json_max (below
   TLSRPT_RX_JSON_MAX) is not built; 1 is returned (nothing to free) and the full
   check is left to a process that may take its time. */
int  tlsrpt_rx_check_message(const char *msg, size_t len, size_t json_max, struct tlsrpt_rx_report **out,
                             size_t *n, char *err, size_t errlen);

/* A message or a bare report file: a message unless it starts (after blanks)
   with "{" or the gzip magic. Same contract as tlsrpt_rx_from_message. */
int  tlsrpt_rx_from_bytes(const char *data, size_t len, struct tlsrpt_rx_report **out, size_t *n, char *err,
                          size_t errlen);

#endif

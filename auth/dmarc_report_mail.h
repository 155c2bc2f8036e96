/*
 * dmarc_report_mail — the aggregate report as an email (RFC 9990 section 3.5.2),
 * and the loop that sends every due report through a caller-supplied submit
 * function (the queue's commit), so this module needs neither sockets nor spool.
 *
 * The XML is gzip-compressed (zlib, a fixed header: identical input gives
 * identical bytes) and attached as application/gzip, base64, named
 * receiver!policy-domain!begin!end!report-id.xml.gz, in a multipart/mixed message
 * with a short text/plain part. Subject: "Report Domain: D Submitter: R
 * Report-ID: <ID>"; Message-ID: <ID@R>, so a re-sent report keeps every
 * identifier. One message per rua destination.
 *
 * The obsolete "!size" suffix of an rua URI (RFC 9989 4.8) is honoured, though
 * RFC 9989 lets reporters ignore it: the whole message as it would be queued
 * (headers, base64 and all) must fit, else that destination is marked too-big
 * and gets nothing (no "report too large" notice). Only mailto: URIs are used.
 */
#ifndef FERRY_DMARC_REPORT_MAIL_H
#define FERRY_DMARC_REPORT_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "auth/dmarc_agg.h"
#include "auth/dmarc_report_xml.h"
#include "lib/buf.h"

#define DMARC_REPORT_MAIL_MAX (64u << 20)    /* largest report message built */

struct dmarc_rua {
    char addr[320];                 /* local@domain */
    unsigned long long max_size;    /* octets; 0: no limit given */
};

/* "mailto:addr[!size[k|m|g|t]]" (scheme case-insensitive, %XX decoded, ?hfields
   ignored). 0 ok, -1 not a usable mailto: URI (*why set). */
int dmarc_rua_parse(const char *uri, struct dmarc_rua *out, const char **why);

/* gzip (RFC 1952) of data into out. 0 or -1. */
int dmarc_report_gzip(const void *data, size_t len, struct buf *out);

struct dmarc_report_sender {
    const char *receiver;           /* our domain name: the Submitter and in the file name */
    const char *from;               /* dmarc_report_email */
    struct dmarc_report_meta meta;  /* org_name, email, generator for the XML */
    time_t now;                     /* the Date: field */
    const char *only_domain;        /* NULL, or send only this policy domain's reports */
    /* May reports about policy_domain go to addr (RFC 9990 section 4, external
       destinations)? 1 yes; 0 no (why says why: the destination is settled as
       failed and gets nothing); -1 not known now (left pending for a later run).
       NULL: every destination is taken as verified. */
    int (*authorize)(void *arg, const char *policy_domain, const char *addr, char *why, size_t whylen);
    void *authorize_arg;
    /* 0, or the wall-clock time after which no further destination is started
       (what is left stays pending for the next run). */
    time_t deadline;
};

/* The attachment's file name (RFC 9990 3.5.2). */
void dmarc_report_filename(const struct dmarc_report_sender *s, const struct dmarc_agg_report *r,
                           char *out, size_t outsz);

/* The whole message to one destination, gz being the compressed XML. */
int dmarc_report_mail(const struct dmarc_report_sender *s, const struct dmarc_agg_report *r, const void *gz,
                      size_t gzlen, const char *to, struct buf *out, char *err, size_t errlen);

/* Commit one message for delivery (the queue): 0 committed, -1 not. */
typedef int (*dmarc_submit_fn)(void *arg, const char *from, const char *to, const char *msg, size_t len);

struct dmarc_send_stats {
    unsigned reports, sent, too_big, failed, skipped;
};

/*
 * Send every report due at s->now: freeze, build, and per destination claim,
 * submit, mark (the order of dmarc_agg.h that makes it at-most-once). submit
 * NULL: dry run, nothing is frozen or claimed; each report's XML is printed to
 * dry_out when given. log (may be NULL) gets one line per destination.
 * 0, or -1 when the store failed (what was done stays done).
 */
int dmarc_report_send_due(struct dmarc_agg *a, const struct dmarc_report_sender *s, dmarc_submit_fn submit,
                          void *arg, void (*log)(void *arg, const char *line), struct buf *dry_out,
                          struct dmarc_send_stats *st);

#endif

/*
 * dmarc_report_xml — the aggregate report document of RFC 9990 section 3.1.1 (and
 * Appendix A's schema, namespace urn:ietf:params:xml:ns:dmarc-2.0) for one policy
 * domain and period, as loaded from the store (auth/dmarc_agg.h).
 *
 * Written as text, not through a DOM: the output is byte-for-byte determined by
 * the input (golden tests), every value goes through one escaping function, and
 * the store already refuses control characters and out-of-schema keywords. Text
 * that is not valid UTF-8 has its non-ASCII octets replaced by '?'.
 * Pure: appends to a struct buf; -1 when it would pass the buffer's limit or the
 * report has no rows (the schema requires at least one record).
 */
#ifndef FERRY_DMARC_REPORT_XML_H
#define FERRY_DMARC_REPORT_XML_H

#include "auth/dmarc_agg.h"
#include "lib/buf.h"

struct dmarc_report_meta {
    const char *org_name;           /* dmarc_report_org_name */
    const char *email;              /* dmarc_report_email */
    const char *extra_contact;      /* optional, NULL to leave out */
    const char *generator;          /* e.g. "Ferry 0.1"; NULL to leave out */
};

int dmarc_report_xml(const struct dmarc_agg_report *r, const struct dmarc_report_meta *m, struct buf *out);

/* Append s with &, <, >, " and ' escaped (also used for the failure report's text). */
int dmarc_xml_escape(struct buf *out, const char *s);

#endif

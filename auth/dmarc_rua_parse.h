/*
 * dmarc_rua_parse — aggregate reports other receivers send us (RFC 9990), from
 * untrusted bytes: the XML, the XML gzip'd, or a zip holding it; and the report
 * attachment(s) of a whole received message.
 *
 * Limits (an outsider controls every byte): at most DMARC_RUA_PACKED_MAX octets
 * compressed, DMARC_RUA_XML_MAX uncompressed (counted while inflating, never
 * trusting a declared size: zip and gzip bombs stop there), DMARC_RUA_RECORDS_MAX
 * records, every text field bounded (longer is an error, not a cut). XML is read by
 * libxml2 with network access off, no entity substitution and no DTD loading; a
 * document with a DOCTYPE at all is refused (a report never needs one, and that
 * closes XXE and entity expansion bombs). Both the 2.0 namespace and RFC 7489's
 * namespace-less 1.0 reports are read. Malformed input is refused with one
 * sentence in err naming what is wrong; nothing is half-returned.
 */
#ifndef FERRY_DMARC_RUA_PARSE_H
#define FERRY_DMARC_RUA_PARSE_H

#include <stddef.h>

#define DMARC_RUA_PACKED_MAX  (10u << 20)
#define DMARC_RUA_XML_MAX     (32u << 20)
#define DMARC_RUA_RECORDS_MAX 100000
#define DMARC_RUA_MAX_PARTS   8         /* reports taken from one message */
#define DMARC_RUA_MSG_MAX     (16u << 20)

struct dmarc_rua_record {
    char source_ip[64];
    unsigned long long count;
    char disposition[16];
    char dkim[8];               /* policy_evaluated: pass | fail */
    char spf[8];
    char header_from[256];
    char envelope_from[256];
    char dkim_domain[256];      /* first signature, passing ones preferred */
    char dkim_result[16];
    char spf_domain[256];
    char spf_result[16];
};

struct dmarc_rua_report {
    char org_name[256];
    char email[320];
    char report_id[256];
    long long begin, end;
    char domain[256];           /* policy_published/domain */
    char p[16];
    struct dmarc_rua_record *records;
    size_t nrecords;
};

/* The XML alone. 0 ok, -1 refused (err). */
int  dmarc_rua_parse_xml(const char *xml, size_t len, struct dmarc_rua_report *out, char *err, size_t errlen);
/* XML, gzip or zip, told apart by their first octets. */
int  dmarc_rua_parse_blob(const void *data, size_t len, struct dmarc_rua_report *out, char *err, size_t errlen);
void dmarc_rua_report_free(struct dmarc_rua_report *r);

/* Every report attached to a whole message (application/gzip, application/zip,
   application/x-gzip, application/x-zip-compressed, text/xml, application/xml,
   or application/octet-stream named *.xml, *.xml.gz, *.zip; base64, 7bit or
   8bit; in nested multiparts up to 4 deep). 0 with *n >= 1; -1 when the message
   holds no report or one of them is refused (err names it). *out malloc'd;
   free each with dmarc_rua_report_free, then free(*out). */
int  dmarc_rua_from_message(const char *msg, size_t len, struct dmarc_rua_report **out, size_t *n, char *err,
                            size_t errlen);

#endif

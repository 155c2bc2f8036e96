/*
 * dmarc_from — the Author Domain of a message (RFC 9989 §5.3.1, §4.4, §11.5). Pure:
 * header bytes in, a struct out; no I/O, no allocation kept.
 *
 * Who calls it: dmarc's callers (smtpd at end of DATA, ferryctl dmarc check), which
 * then hand `domain` to dmarc_evaluate. Input is the header section (the whole message
 * may be given; scanning stops at the empty line) with CRLF line ends, as msg_header
 * reads it. Every From: field is read (RFC 6854 groups and RFC 6532 UTF-8 allowed) with
 * lib/rfc5322_addr, and the domains of all their mailboxes are collected, each put in
 * canonical form by dmarc_domain_canon.
 *
 * Outcomes, each a defined result (RFC-NOTES.md, "DMARC", explains why):
 *   OK            exactly one distinct author domain, however many mailboxes or From:
 *                 fields carry it (5.3.1 counts domains); several fields or mailboxes
 *                 are noted in `reason`.
 *   ABSENT        no From: field at all                                  → dmarc=none
 *   EMPTY         From: fields with no mailbox (an empty group, an empty value)
 *                                                                        → dmarc=none
 *   MULTI_DOMAIN  mailboxes with two or more distinct domains, or more From: fields
 *                 than can be read (MSG_HEADER_KEEP_MAX)     → permerror, disposition reject
 *   SYNTAX        a From: value that does not parse                      → permerror
 *   BAD_NAME      a domain that is not a valid DNS name (LDH labels, 1..63 octets,
 *                 at most 253 in all; a U-label that IDNA2008 refuses)   → permerror
 *   LITERAL       a domain literal ("[192.0.2.1]"): no DNS name to look up → permerror
 *   NOMEM         out of memory                                           → temperror
 * Display names play no part: encoded words (RFC 2047) in them are never decoded, so
 * nothing in a display name can change the author domain.
 */
#ifndef FERRY_DMARC_FROM_H
#define FERRY_DMARC_FROM_H

#include <stdbool.h>
#include <stddef.h>

#define DMARC_DOMAIN_MAX 253

enum dmarc_from_status {
    DMARC_FROM_OK,
    DMARC_FROM_ABSENT,
    DMARC_FROM_EMPTY,
    DMARC_FROM_MULTI_DOMAIN,
    DMARC_FROM_SYNTAX,
    DMARC_FROM_BAD_NAME,
    DMARC_FROM_LITERAL,
    DMARC_FROM_NOMEM
};

struct dmarc_from {
    enum dmarc_from_status status;
    char domain[DMARC_DOMAIN_MAX + 1];   /* OK: lower-case A-label form, no final dot */
    char written[256];                   /* the domain as written (U-labels kept); for
                                            MULTI_DOMAIN the second distinct domain */
    size_t fields;                       /* From: fields seen */
    size_t mailboxes;                    /* mailboxes in them */
    char reason[200];                    /* what was found, one phrase */
};

void dmarc_from_extract(const char *hdr, size_t len, struct dmarc_from *out);

/* A domain name in the form DMARC compares (§5.3.1, RFC 4343): U-labels converted to
   A-labels (IDNA2008 via libidn2), ASCII lower-cased, one final dot dropped, LDH
   labels checked. 0 ok; -1 not a valid name (out then holds ""). */
int dmarc_domain_canon(const char *in, char *out, size_t outsz);

const char *dmarc_from_status_name(enum dmarc_from_status s);

#endif

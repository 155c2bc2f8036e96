/*
 * mime — small pieces for building MIME messages (RFC 2045, RFC 5322), shared by
 * the DSN builder (queue/dsn.c) and the DMARC report builders (auth/dmarc_report_mail.c,
 * auth/dmarc_failure.c). Pure: appends to a struct buf, no I/O, no policy.
 *
 * Every append returns 0, or -1 when the buffer's limit is reached (the buffer is
 * then partly written; callers check once at the end and discard it).
 */
#ifndef FERRY_MIME_H
#define FERRY_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* Copy s with every control character (CR and LF included) made a space, so text
   from elsewhere can never start a header line of its own; "..." marks a cut. */
void mime_sanitize(const char *s, char *out, size_t outsz);

/* "Name: value\r\n", value sanitised and folded at spaces near column 78, never
   past 998 octets on a line. */
int  mime_put_field(struct buf *b, const char *name, const char *value);

/* Does needle occur in hay[0..n)? (for choosing a boundary absent from a part) */
bool mime_contains(const char *hay, size_t n, const char *needle);

/* data as base64 in lines of 76 characters, each ended by CRLF. */
int  mime_put_base64(struct buf *b, const void *data, size_t len);

#endif

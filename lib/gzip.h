/*
 * gzip — RFC 1952 compression of a whole buffer in memory, for the reports Ferry
 * sends (DMARC aggregate, TLS-RPT), and bounded decompression of those it receives. The header carries no time stamp and no name,
 * so the same input always gives the same bytes (a resent report is identical).
 * Appends to out (whose own limit bounds the result); 0 ok, -1 when zlib fails,
 * the input exceeds max_in, or out is full.
 */
#ifndef FERRY_GZIP_H
#define FERRY_GZIP_H

#include <stddef.h>

#include "lib/buf.h"

int gzip_compress(const void *data, size_t len, size_t max_in, struct buf *out);

/* The reverse, for reports others send (untrusted): one gzip member inflated and
   appended to out, whose limit is the bound (counted while inflating, never
   trusting a declared size, so a gzip bomb stops there). */
enum gzip_inflate_result {
    GZIP_OK = 0,
    GZIP_CORRUPT = -1,          /* not gzip, or the data is damaged */
    GZIP_TRUNCATED = -2,        /* the stream ends early */
    GZIP_TOO_BIG = -3,          /* it inflates to more than out may hold */
    GZIP_NOMEM = -4
};
enum gzip_inflate_result gzip_inflate(const void *data, size_t len, struct buf *out);

#endif

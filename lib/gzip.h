/*
 * gzip — RFC 1952 compression of a whole buffer in memory, for the reports Ferry
 * sends (DMARC aggregate, TLS-RPT). The header carries no time stamp and no name,
 * so the same input always gives the same bytes (a resent report is identical).
 * Appends to out (whose own limit bounds the result); 0 ok, -1 when zlib fails,
 * the input exceeds max_in, or out is full.
 */
#ifndef FERRY_GZIP_H
#define FERRY_GZIP_H

#include <stddef.h>

#include "lib/buf.h"

int gzip_compress(const void *data, size_t len, size_t max_in, struct buf *out);

#endif

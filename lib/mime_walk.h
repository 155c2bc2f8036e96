/*
 * mime_walk — reads the MIME structure of a received message (RFC 2045, 2046)
 * far enough to find attachments: each leaf part's Content-Type (type, boundary,
 * name), Content-Disposition's filename and Content-Transfer-Encoding, on CRLF or
 * bare-LF messages. Used by the readers of reports others mail us (DMARC
 * aggregate reports, auth/dmarc_rua_mime.c; TLS reports, delivery/tlsrpt_parse.c).
 * Pure: bytes in, callbacks out; no allocation while walking.
 *
 * Bounds: nesting deeper than the caller's depth_max is not entered; header
 * values longer than MIME_FIELD_MAX are cut (a cut type then matches nothing);
 * every loop ends at the end of the input.
 */
#ifndef FERRY_MIME_WALK_H
#define FERRY_MIME_WALK_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define MIME_FIELD_MAX 2048

struct mime_part {
    char type[128];             /* lower case; "text/plain" when absent */
    char boundary[128];
    char name[256];             /* Content-Disposition filename=, else Content-Type name= */
    char cte[32];               /* lower case; "" when absent */
    int depth;                  /* 0: the message's own body */
};

/* fn sees each leaf part (not multipart/...) with its body, in order; a non-zero
   return stops the walk and is returned. 0 when the walk went to the end. */
typedef int (*mime_leaf_fn)(void *arg, const struct mime_part *p, const char *body, size_t len);
int mime_walk(const char *msg, size_t len, int depth_max, mime_leaf_fn fn, void *arg);

/* The body decoded by its Content-Transfer-Encoding (base64, 7bit, 8bit, binary,
   or none) appended to out, whose limit bounds it. 0 ok; -1 not valid base64 or
   over out's limit; -2 an encoding this reader does not take (quoted-printable). */
int mime_part_decode(const struct mime_part *p, const char *body, size_t len, struct buf *out);

#endif

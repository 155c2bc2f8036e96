/*
 * dkim_canon — RFC 6376 §3.4 canonicalisation ("simple" and "relaxed") of header
 * fields and of the body, and the splitting of a message's header block into raw
 * fields (exact bytes, folding included) that both need.
 *
 * Called by dkim_verify and dkim_sign. Pure: header canonicalisation appends to a
 * bounded struct buf; the body canonicaliser is a streaming state machine fed in
 * chunks of any size (a CRLF may be split between chunks) that hands its output to
 * a sink, honouring an optional l= limit while still counting the whole canonical
 * body. Line ends are CRLF; a bare LF is taken as a line end too, so files with
 * Unix line ends canonicalise as their CRLF form would. Failure modes: a header
 * block with more than DKIM_HDR_FIELDS_MAX fields, or a line that is neither a
 * field nor a continuation, is refused by dkim_split_header; buffers that would pass
 * their limit make dkim_canon_header return -1.
 */
#ifndef FERRY_DKIM_CANON_H
#define FERRY_DKIM_CANON_H

#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DKIM_HDR_FIELDS_MAX 1000

enum dkim_canon { DKIM_CANON_SIMPLE, DKIM_CANON_RELAXED };

/* One header field: the bytes from the name to the end of its last line, without
   that line's CRLF (or LF). */
struct dkim_field {
    const char *start;
    size_t len;
    size_t name_len;   /* bytes before the colon, trailing WSP excluded */
};

struct dkim_header {
    struct dkim_field fields[DKIM_HDR_FIELDS_MAX];
    size_t n;
    size_t body_offset;   /* offset of the body (after the empty line), or the length */
};

/* Split msg into header fields and find the body. 0 ok, -1 with a reason in err.
   A message without an empty line is all header (empty body). */
int dkim_split_header(const char *msg, size_t len, struct dkim_header *out, char *err, size_t errsz);
/* Field's name equals name (case-insensitive). */
bool dkim_field_is(const struct dkim_field *f, const char *name);

/* Append the canonical form of a raw field (as in struct dkim_field), followed by
   CRLF when crlf is true. -1 when out would pass its limit. */
int dkim_canon_header(enum dkim_canon c, const char *field, size_t len, bool crlf, struct buf *out);

/* The signed-fields part of a header hash input (RFC 6376 §5.4.2): for each of the n
   names (names[i], lens[i] octets), the bottom-most field of that name not yet used,
   canonicalised with CRLF; absent names add nothing. used has h->n entries (the
   caller marks fields that may not be taken, e.g. the signature itself). -1 when out
   would pass its limit. */
int dkim_canon_selected(enum dkim_canon c, const struct dkim_header *h, const char *const *names,
                        const size_t *lens, size_t n, bool *used, struct buf *out);
/* Append the canonical form of a signature field f (no CRLF) with the value of its
   b= tag cut out: b_start/b_end are offsets within f (just after "b=", and the end
   of the value). -1 when out would pass its limit. */
int dkim_canon_unsigned(enum dkim_canon c, const struct dkim_field *f, size_t b_start, size_t b_end, struct buf *out);

typedef void (*dkim_sink)(void *arg, const unsigned char *p, size_t n);

struct dkim_body_canon {
    enum dkim_canon canon;
    dkim_sink sink;
    void *sink_arg;
    bool limited;          /* l= given */
    uint64_t limit;
    uint64_t total;        /* canonical body octets produced so far (all, beyond l= too) */
    uint64_t hashed;       /* octets handed to the sink */
    uint64_t empty_lines;  /* line ends not yet produced: empty lines may be trailing */
    bool line_content;     /* current line has produced content */
    bool pending_wsp;      /* relaxed: whitespace seen, not yet produced */
    bool pending_cr;       /* a CR that may start a CRLF */
    bool any_content;
    unsigned char out[1024];
    size_t outlen;
};

/* limit < 0: no l=. */
void dkim_body_init(struct dkim_body_canon *b, enum dkim_canon c, int64_t limit, dkim_sink sink, void *arg);
void dkim_body_feed(struct dkim_body_canon *b, const char *p, size_t n);
/* End of the body: applies the end-of-body rules and flushes. */
void dkim_body_finish(struct dkim_body_canon *b);

#endif

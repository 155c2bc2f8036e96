/*
 * hdr_value — writing and reading the small structured values of trace and
 * result header fields (RFC 8601 Authentication-Results, RFC 7208 Received-SPF):
 * a token, a quoted-string, a pvalue, a comment, and the field-name test with the
 * obsolete white space before ':' (RFC 5322 §4.5.3). Pure; no policy.
 *
 * Why one module: every value Ferry writes into such a field may come from a
 * stranger (a DKIM b= prefix, a MAIL FROM local part, a HELO name). Each writer
 * here emits either the bare form when the grammar allows it or a quoted form
 * with '"' and '\' escaped and control or non-ASCII octets replaced by '?', so
 * no input can end a value, a comment or the field early. Each writer appends
 * its whole value or nothing (-1, the buffer as it was): a value cut at the
 * buffer's limit would leave a quoted-string or comment open. Readers accept what a
 * peer may legally send (CFWS, quoted-strings with quoted-pairs) and are bounded
 * by the lengths they are given.
 */
#ifndef FERRY_HDR_VALUE_H
#define FERRY_HDR_VALUE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

/* RFC 2045 token: 1* of printable ASCII except SP and tspecials. */
bool hdr_is_token(const char *s);
/* Append v as an RFC 2045 value: the token itself, else a quoted-string. */
int  hdr_value_append(struct buf *b, const char *v);
/* Append v as an RFC 8601 pvalue: bare when it is a token, a domain name, or
   dot-atom@domain; else a quoted-string. */
int  hdr_pvalue_append(struct buf *b, const char *v);
/* Append v as an RFC 5322 dot-atom when it is one, else a quoted-string (the
   key=value pairs of Received-SPF, RFC 7208 9.1). */
int  hdr_dot_atom_append(struct buf *b, const char *v);
/* Append v as comment text (no parentheses around): '(', ')' and '\' are
   quoted-pairs, controls and non-ASCII become '?'. */
int  hdr_ctext_append(struct buf *b, const char *v);

/* Skip folding white space and (nested, bounded) comments in s[i..n); returns
   the index of the first octet after them. */
size_t hdr_skip_cfws(const char *s, size_t i, size_t n);
/* Read a token or quoted-string at s[i..n) (no CFWS skipped). The unquoted text
   goes to out (NUL-terminated). Returns the index after the value, or 0 when
   there is none, it is unterminated, or it does not fit in out. */
size_t hdr_value_read(const char *s, size_t i, size_t n, char *out, size_t outsz);

/* Is the header field f[0..flen) named `name` (ASCII case-insensitive, white
   space allowed before the colon)? On true, *value is the offset after ':'. */
bool hdr_field_is(const char *f, size_t flen, const char *name, size_t *value);

#endif

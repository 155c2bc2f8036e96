/*
 * dkim_tags — the tag=value lists of RFC 6376 §3.2 (DKIM-Signature fields and key
 * records), and base64 with folding whitespace (§2.10).
 *
 * Called by dkim_verify (signature fields, key records) and dkim_sign (tests of its
 * own output). Pure functions over bytes: the parsed list points into the caller's
 * input and owns nothing. Failure modes: a syntax error (bad tag name, a character
 * outside VALCHAR, a CRLF not followed by WSP, a duplicate tag, too many tags) makes
 * the whole list invalid, with one sentence in err — RFC 6376 §3.2 makes duplicate
 * tags an error and says a malformed list invalidates the signature or record.
 */
#ifndef FERRY_DKIM_TAGS_H
#define FERRY_DKIM_TAGS_H

#include <stdbool.h>
#include <stddef.h>

#define DKIM_TAGS_MAX     32
#define DKIM_TAG_NAME_MAX 32

struct dkim_tag {
    char name[DKIM_TAG_NAME_MAX];  /* case-sensitive (§3.2) */
    const char *value;              /* value without surrounding FWS; may be empty */
    size_t value_len;
    size_t raw_start;               /* offset just after '=' */
    size_t raw_end;                 /* offset of the ';' ending the tag, or of the end */
};

struct dkim_taglist {
    struct dkim_tag tags[DKIM_TAGS_MAX];
    size_t n;
};

/* Parse s[0..len). 0 ok, -1 invalid (reason in err). A final ';' is allowed. */
int dkim_tags_parse(const char *s, size_t len, struct dkim_taglist *out, char *err, size_t errsz);
/* The tag named name, or NULL. */
const struct dkim_tag *dkim_tags_get(const struct dkim_taglist *l, const char *name);
/* Copy a tag's value into a NUL-terminated string with all FWS removed; -1 when it
   does not fit. */
int dkim_tag_copy(const struct dkim_tag *t, char *dst, size_t dstsz, bool strip_fws);

/* Decode base64 that may contain FWS (SP, HTAB, CR, LF). -1 on a character outside
   the alphabet, bad padding, or when the result does not fit outsz. */
int dkim_base64_decode(const char *s, size_t len, unsigned char *out, size_t outsz, size_t *outlen);
/* Encode to a NUL-terminated string; -1 when it does not fit. */
int dkim_base64_encode(const unsigned char *in, size_t len, char *out, size_t outsz);

#endif

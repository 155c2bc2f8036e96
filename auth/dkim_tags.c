/* dkim_tags — RFC 6376 §3.2 tag lists and base64 with FWS. */
#include "auth/dkim_tags.h"

#include <stdio.h>
#include <string.h>

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
/* VALCHAR = %x21-3A / %x3C-7E */
static bool is_valchar(char c) { return (unsigned char)c >= 0x21 && (unsigned char)c <= 0x7e && c != ';'; }

/* Skip FWS from *i. A CR must be followed by LF and then WSP (a folded line);
   a bare LF is tolerated the same way (messages read from files). -1 on a line
   break that does not continue. */
static int skip_fws(const char *s, size_t len, size_t *i)
{
    while (*i < len) {
        char c = s[*i];
        if (is_wsp(c)) {
            (*i)++;
        } else if (c == '\r' || c == '\n') {
            size_t j = *i + 1;
            if (c == '\r') {
                if (j >= len || s[j] != '\n')
                    return -1;
                j++;
            }
            if (j >= len || !is_wsp(s[j]))
                return -1;
            *i = j;
        } else {
            break;
        }
    }
    return 0;
}

int dkim_tags_parse(const char *s, size_t len, struct dkim_taglist *out, char *err, size_t errsz)
{
    out->n = 0;
    size_t i = 0;
    for (;;) {
        if (skip_fws(s, len, &i) < 0)
            goto bad_fold;
        if (i >= len)
            return 0;   /* empty list, or a trailing ';' */
        if (out->n == DKIM_TAGS_MAX) {
            snprintf(err, errsz, "tag list has more than %d tags", DKIM_TAGS_MAX);
            return -1;
        }
        struct dkim_tag *t = &out->tags[out->n];
        /* tag-name = ALPHA *ALNUMPUNC */
        if (!is_alpha(s[i])) {
            snprintf(err, errsz, "tag list has a tag name starting with '%c' at offset %zu",
                     s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?', i);
            return -1;
        }
        size_t n = 0;
        while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_')) {
            if (n + 1 >= sizeof t->name) {
                snprintf(err, errsz, "tag list has a tag name longer than %d characters", DKIM_TAG_NAME_MAX - 1);
                return -1;
            }
            t->name[n++] = s[i++];
        }
        t->name[n] = '\0';
        if (skip_fws(s, len, &i) < 0)
            goto bad_fold;
        if (i >= len || s[i] != '=') {
            snprintf(err, errsz, "tag \"%s\" has no '='", t->name);
            return -1;
        }
        i++;
        t->raw_start = i;
        if (skip_fws(s, len, &i) < 0)
            goto bad_fold;
        size_t vstart = i, vend = i;
        /* tag-value = [ tval *( 1*(WSP / FWS) tval ) ] */
        while (i < len && s[i] != ';') {
            if (is_valchar(s[i])) {
                i++;
                vend = i;
            } else if (is_wsp(s[i]) || s[i] == '\r' || s[i] == '\n') {
                if (skip_fws(s, len, &i) < 0)
                    goto bad_fold;
            } else {
                snprintf(err, errsz, "tag \"%s\" has an invalid character 0x%02x in its value",
                         t->name, (unsigned char)s[i]);
                return -1;
            }
        }
        t->value = s + vstart;
        t->value_len = vend - vstart;
        t->raw_end = i;
        for (size_t k = 0; k < out->n; k++) {
            if (!strcmp(out->tags[k].name, t->name)) {
                snprintf(err, errsz, "tag \"%s\" appears twice", t->name);
                return -1;
            }
        }
        out->n++;
        if (i >= len)
            return 0;
        i++;   /* ';' */
    }
bad_fold:
    snprintf(err, errsz, "tag list has a line break not followed by whitespace");
    return -1;
}

const struct dkim_tag *dkim_tags_get(const struct dkim_taglist *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->tags[i].name, name))
            return &l->tags[i];
    return NULL;
}

int dkim_tag_copy(const struct dkim_tag *t, char *dst, size_t dstsz, bool strip_fws)
{
    size_t n = 0;
    for (size_t i = 0; i < t->value_len; i++) {
        char c = t->value[i];
        if (strip_fws && (c == ' ' || c == '\t' || c == '\r' || c == '\n'))
            continue;
        if (n + 1 >= dstsz)
            return -1;
        dst[n++] = c;
    }
    if (dstsz == 0)
        return -1;
    dst[n] = '\0';
    return 0;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int dkim_base64_decode(const char *s, size_t len, unsigned char *out, size_t outsz, size_t *outlen)
{
    unsigned acc = 0;
    int bits = 0, pad = 0;
    size_t n = 0, chars = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad)   /* data after padding */
            return -1;
        chars++;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= outsz)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Whole quanta only: 2 or 3 leftover characters need 2 or 1 pad chars. */
    size_t rem = chars % 4;
    if (rem == 1 || (rem == 0 && pad) || (rem == 2 && pad != 2) || (rem == 3 && pad != 1) || pad > 2)
        return -1;
    *outlen = n;
    return 0;
}

int dkim_base64_encode(const unsigned char *in, size_t len, char *out, size_t outsz)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t need = (len + 2) / 3 * 4 + 1;
    if (need > outsz)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < len) v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = alpha[(v >> 18) & 63];
        out[o++] = alpha[(v >> 12) & 63];
        out[o++] = i + 1 < len ? alpha[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? alpha[v & 63] : '=';
    }
    out[o] = '\0';
    return 0;
}

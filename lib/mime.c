/* mime — see mime.h. */
#include "lib/mime.h"

#include <openssl/evp.h>
#include <string.h>

#define FOLD_AT        78      /* RFC 5322 2.1.1: SHOULD */
#define WORD_MAX       900     /* one unbreakable word longer than this is cut (998 MUST) */
#define B64_LINE_IN    57      /* 57 octets -> 76 characters */

void mime_sanitize(const char *s, char *out, size_t outsz)
{
    size_t o = 0;
    for (; s && *s && o + 1 < outsz; s++) {
        unsigned char c = (unsigned char)*s;
        out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    out[o] = '\0';
    if (s && *s && outsz > 4)       /* cut: say so rather than end mid-word silently */
        memcpy(out + outsz - 4, "...", 4);
}

int mime_put_field(struct buf *b, const char *name, const char *value)
{
    char v[4096];
    mime_sanitize(value, v, sizeof v);
    int r = buf_printf(b, "%s:", name);
    size_t col = strlen(name) + 1;
    const char *p = v;
    while (*p == ' ')
        p++;
    while (*p) {
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        size_t wlen = (size_t)(p - w);
        if (wlen > WORD_MAX)
            wlen = WORD_MAX;
        if (col > 1 + strlen(name) && col + 1 + wlen > FOLD_AT) {
            r |= buf_puts(b, "\r\n");
            col = 0;
        }
        r |= buf_append(b, " ", 1);
        r |= buf_append(b, w, wlen);
        col += 1 + wlen;
        while (*p == ' ')
            p++;
    }
    r |= buf_puts(b, "\r\n");
    return r;
}

bool mime_contains(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    if (k == 0 || k > n)
        return false;
    for (size_t i = 0; i + k <= n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, k) == 0)
            return true;
    return false;
}

int mime_put_base64(struct buf *b, const void *data, size_t len)
{
    const unsigned char *p = data;
    unsigned char line[80];
    int r = 0;
    for (size_t off = 0; off < len && r == 0; off += B64_LINE_IN) {
        size_t n = len - off < B64_LINE_IN ? len - off : B64_LINE_IN;
        int k = EVP_EncodeBlock(line, p + off, (int)n);
        r |= buf_append(b, line, (size_t)k);
        r |= buf_puts(b, "\r\n");
    }
    return r;
}

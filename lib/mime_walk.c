/* mime_walk — see mime_walk.h. */
#include "lib/mime_walk.h"

#include <openssl/evp.h>
#include <string.h>

/* Where the header section of s[0..len) ends and the body begins. */
static size_t body_start(const char *s, size_t len, size_t *head_len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\n')
            continue;
        size_t j = i + 1;
        if (j < len && s[j] == '\r')
            j++;
        if (j < len && s[j] == '\n') {
            *head_len = i + 1;
            return j + 1;
        }
        if (i == 0 || (i == 1 && s[0] == '\r')) {      /* empty header section */
            *head_len = 0;
            return i + 1;
        }
    }
    *head_len = len;
    return len;
}

/* The unfolded value of field name in the header h[0..n), into out. */
static bool field(const char *h, size_t n, const char *name, char *out, size_t outsz)
{
    size_t k = strlen(name);
    for (size_t i = 0; i < n;) {
        size_t eol = i;
        while (eol < n && h[eol] != '\n')
            eol++;
        if (eol - i > k && str_nieq(h + i, name, k) && h[i + k] == ':') {
            size_t o = 0;
            size_t p = i + k + 1;
            for (;;) {
                for (; p < eol && o + 1 < outsz; p++)
                    if (h[p] != '\r')
                        out[o++] = h[p] == '\t' ? ' ' : h[p];
                if (eol + 1 < n && (h[eol + 1] == ' ' || h[eol + 1] == '\t')) {  /* folded */
                    p = eol + 1;
                    eol = p;
                    while (eol < n && h[eol] != '\n')
                        eol++;
                    continue;
                }
                break;
            }
            out[o] = '\0';
            str_trim(out);
            return true;
        }
        i = eol + 1;
    }
    return false;
}

/* param="value" or param=value from a structured field value. */
static void param(const char *v, const char *name, char *out, size_t outsz)
{
    size_t k = strlen(name);
    out[0] = '\0';
    for (const char *p = strchr(v, ';'); p; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ')
            q++;
        if (!str_nieq(q, name, k) || (q[k] != '=' && q[k] != ' '))
            continue;
        q += k;
        while (*q == ' ' || *q == '=')
            q++;
        size_t o = 0;
        if (*q == '"') {
            for (q++; *q && *q != '"' && o + 1 < outsz; q++)
                out[o++] = *q == '\\' && q[1] ? *++q : *q;
        } else {
            for (; *q && *q != ';' && *q != ' ' && o + 1 < outsz; q++)
                out[o++] = *q;
        }
        out[o] = '\0';
        return;
    }
}

static void read_head(const char *h, size_t n, struct mime_part *ph)
{
    char v[MIME_FIELD_MAX];
    memset(ph, 0, sizeof *ph);
    str_copy(ph->type, "text/plain", sizeof ph->type);
    if (field(h, n, "Content-Type", v, sizeof v)) {
        str_copyn(ph->type, v, strcspn(v, "; "), sizeof ph->type);
        str_lower(ph->type);
        param(v, "boundary", ph->boundary, sizeof ph->boundary);
        param(v, "name", ph->name, sizeof ph->name);
    }
    if (field(h, n, "Content-Disposition", v, sizeof v)) {
        char fn[256];
        param(v, "filename", fn, sizeof fn);
        if (fn[0])
            str_copy(ph->name, fn, sizeof ph->name);
    }
    if (field(h, n, "Content-Transfer-Encoding", v, sizeof v)) {
        str_copy(ph->cte, v, sizeof ph->cte);
        str_lower(ph->cte);
    }
}

/* Find "--boundary" at a line start in s[from..len); returns its offset or len. */
static size_t next_delim(const char *s, size_t len, size_t from, const char *b, size_t blen)
{
    for (size_t i = from; i + 2 + blen <= len; i++)
        if ((i == 0 || s[i - 1] == '\n') && s[i] == '-' && s[i + 1] == '-' && !memcmp(s + i + 2, b, blen))
            return i;
    return len;
}

static int walk(const char *s, size_t len, int depth, int depth_max, mime_leaf_fn fn, void *arg)
{
    size_t hlen, b = body_start(s, len, &hlen);
    struct mime_part ph;
    read_head(s, hlen, &ph);
    ph.depth = depth;
    if (strncmp(ph.type, "multipart/", 10))
        return fn(arg, &ph, s + b, len - b);
    size_t blen = strlen(ph.boundary);
    if (!blen || depth >= depth_max)
        return 0;
    size_t at = next_delim(s, len, b, ph.boundary, blen);
    while (at < len) {
        size_t start = at + 2 + blen;
        if (start + 1 < len && s[start] == '-' && s[start + 1] == '-')
            break;                      /* closing delimiter */
        while (start < len && s[start] != '\n')
            start++;
        start++;
        if (start > len)
            break;
        size_t end = next_delim(s, len, start, ph.boundary, blen);
        size_t pend = end;              /* the line break before a delimiter belongs to it */
        if (pend > start && s[pend - 1] == '\n')
            pend--;
        if (pend > start && s[pend - 1] == '\r')
            pend--;
        int r = walk(s + start, pend - start, depth + 1, depth_max, fn, arg);
        if (r)
            return r;
        at = end;
    }
    return 0;
}

int mime_walk(const char *msg, size_t len, int depth_max, mime_leaf_fn fn, void *arg)
{
    return walk(msg, len, 0, depth_max, fn, arg);
}

int mime_part_decode(const struct mime_part *p, const char *body, size_t len, struct buf *out)
{
    if (!p->cte[0] || !strcmp(p->cte, "7bit") || !strcmp(p->cte, "8bit") || !strcmp(p->cte, "binary"))
        return buf_append(out, body, len) < 0 ? -1 : 0;
    if (strcmp(p->cte, "base64"))
        return -2;
    /* OpenSSL's decoder skips the line ends and blanks between groups; the
       result is written in pieces so out's own limit is what bounds it. */
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (!ctx)
        return -1;
    EVP_DecodeInit(ctx);
    unsigned char chunk[4096];     /* one call yields at most 3/4 of its input plus a buffered line */
    int rc = 0, n;
    for (size_t off = 0; rc == 0 && off < len; off += 4096) {
        size_t k = len - off < 4096 ? len - off : 4096;
        if (EVP_DecodeUpdate(ctx, chunk, &n, (const unsigned char *)body + off, (int)k) < 0 ||
            buf_append(out, chunk, (size_t)n) < 0)
            rc = -1;
    }
    if (rc == 0 && (EVP_DecodeFinal(ctx, chunk, &n) < 0 || buf_append(out, chunk, (size_t)n) < 0))
        rc = -1;
    EVP_ENCODE_CTX_free(ctx);
    return rc;
}

/* dmarc_rua_mime — dmarc_rua_from_message of dmarc_rua_parse.h: find the report
   attachments of a received message. A small MIME walker of its own: it needs
   only Content-Type (type, boundary, name), Content-Disposition's filename and
   Content-Transfer-Encoding, on CRLF or bare-LF messages. */
#include "auth/dkim_tags.h"
#include "auth/dmarc_rua_parse.h"
#include "lib/buf.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX   4
#define FIELD_MAX   2048

struct part_head {
    char type[128];             /* lower case, "text/plain" when absent */
    char boundary[128];
    char name[256];             /* filename= or name= */
    char cte[32];
};

struct found {
    struct dmarc_rua_report *reports;
    size_t n;
    char *err;
    size_t errlen;
    bool failed;
};

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

static void read_head(const char *h, size_t n, struct part_head *ph)
{
    char v[FIELD_MAX];
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

static bool is_report(const struct part_head *ph)
{
    static const char *const types[] = { "application/gzip", "application/x-gzip", "application/zip",
                                         "application/x-zip-compressed", "application/x-zip", "text/xml",
                                         "application/xml", NULL };
    for (size_t i = 0; types[i]; i++)
        if (!strcmp(ph->type, types[i]))
            return true;
    size_t n = strlen(ph->name);
    return !strcmp(ph->type, "application/octet-stream") &&
           ((n > 4 && str_iendswith(ph->name, ".xml")) || (n > 3 && str_iendswith(ph->name, ".gz")) ||
            (n > 4 && str_iendswith(ph->name, ".zip")));
}

static void take_part(struct found *f, const struct part_head *ph, const char *body, size_t len)
{
    if (f->failed)
        return;
    if (f->n == DMARC_RUA_MAX_PARTS) {
        snprintf(f->err, f->errlen, "the message has more than %d report attachments", DMARC_RUA_MAX_PARTS);
        f->failed = true;
        return;
    }
    const char *data = body;
    size_t dlen = len;
    unsigned char *dec = NULL;
    if (!strcmp(ph->cte, "base64")) {
        size_t cap = len / 4 * 3 + 3;
        if (cap > DMARC_RUA_PACKED_MAX + 3)
            cap = DMARC_RUA_PACKED_MAX + 3;
        dec = malloc(cap);
        /* trailing blank space and line ends are skipped by the decoder */
        if (!dec || dkim_base64_decode(body, len, dec, cap, &dlen) < 0) {
            free(dec);
            snprintf(f->err, f->errlen, "the attachment %s is not valid base64 (or too large)",
                     ph->name[0] ? ph->name : ph->type);
            f->failed = true;
            return;
        }
        data = (const char *)dec;
    } else if (ph->cte[0] && strcmp(ph->cte, "7bit") && strcmp(ph->cte, "8bit") && strcmp(ph->cte, "binary")) {
        snprintf(f->err, f->errlen, "the attachment's transfer encoding %s is not supported", ph->cte);
        f->failed = true;
        return;
    }
    char why[256];
    if (dmarc_rua_parse_blob(data, dlen, &f->reports[f->n], why, sizeof why) < 0) {
        snprintf(f->err, f->errlen, "%s: %s", ph->name[0] ? ph->name : ph->type, why);
        f->failed = true;
    } else {
        f->n++;
    }
    free(dec);
}

/* Find "--boundary" at a line start in s[from..len); returns its offset or len. */
static size_t next_delim(const char *s, size_t len, size_t from, const char *b, size_t blen)
{
    for (size_t i = from; i + 2 + blen <= len; i++)
        if ((i == 0 || s[i - 1] == '\n') && s[i] == '-' && s[i + 1] == '-' && !memcmp(s + i + 2, b, blen))
            return i;
    return len;
}

static void walk(struct found *f, const char *s, size_t len, int depth)
{
    size_t hlen, b = body_start(s, len, &hlen);
    struct part_head ph;
    read_head(s, hlen, &ph);
    if (!strncmp(ph.type, "multipart/", 10)) {
        size_t blen = strlen(ph.boundary);
        if (!blen || depth >= DEPTH_MAX)
            return;
        size_t at = next_delim(s, len, b, ph.boundary, blen);
        while (at < len && !f->failed) {
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
            walk(f, s + start, pend - start, depth + 1);
            at = end;
        }
        return;
    }
    if (is_report(&ph))
        take_part(f, &ph, s + b, len - b);
}

int dmarc_rua_from_message(const char *msg, size_t len, struct dmarc_rua_report **out, size_t *n, char *err,
                           size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (len > DMARC_RUA_MSG_MAX) {
        snprintf(err, errlen, "the message is larger than %u octets", DMARC_RUA_MSG_MAX);
        return -1;
    }
    struct found f = { .err = err, .errlen = errlen };
    f.reports = calloc(DMARC_RUA_MAX_PARTS, sizeof *f.reports);
    if (!f.reports) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    walk(&f, msg, len, 0);
    if (!f.failed && f.n == 0) {
        snprintf(err, errlen, "the message has no DMARC report attachment (gzip, zip or XML)");
        f.failed = true;
    }
    if (f.failed) {
        for (size_t i = 0; i < f.n; i++)
            dmarc_rua_report_free(&f.reports[i]);
        free(f.reports);
        return -1;
    }
    *out = f.reports;
    *n = f.n;
    return 0;
}

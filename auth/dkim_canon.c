/* dkim_canon — RFC 6376 §3.4 canonicalisation and header splitting. */
#include "auth/dkim_canon.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }

/* End of the line starting at i: returns the offset of its CR/LF (or len) and sets
   *next to the start of the following line. */
static size_t line_end(const char *msg, size_t len, size_t i, size_t *next)
{
    const char *nl = memchr(msg + i, '\n', len - i);
    if (!nl) {
        *next = len;
        return len;
    }
    size_t e = (size_t)(nl - msg);
    *next = e + 1;
    if (e > i && msg[e - 1] == '\r')
        e--;
    return e;
}

int dkim_split_header(const char *msg, size_t len, struct dkim_header *out, char *err, size_t errsz)
{
    out->n = 0;
    out->body_offset = len;
    size_t i = 0;
    while (i < len) {
        size_t next, e = line_end(msg, len, i, &next);
        if (e == i) {   /* the empty line */
            out->body_offset = next;
            return 0;
        }
        if (is_wsp(msg[i])) {
            if (out->n == 0) {
                snprintf(err, errsz, "message header starts with a continuation line");
                return -1;
            }
            struct dkim_field *f = &out->fields[out->n - 1];
            f->len = e - (size_t)(f->start - msg);
        } else {
            const char *colon = memchr(msg + i, ':', e - i);
            if (!colon) {
                snprintf(err, errsz, "message header line %zu has no colon", out->n + 1);
                return -1;
            }
            if (out->n == DKIM_HDR_FIELDS_MAX) {
                snprintf(err, errsz, "message header has more than %d fields", DKIM_HDR_FIELDS_MAX);
                return -1;
            }
            struct dkim_field *f = &out->fields[out->n++];
            f->start = msg + i;
            f->len = e - i;
            size_t nl = (size_t)(colon - (msg + i));
            while (nl > 0 && is_wsp(msg[i + nl - 1]))
                nl--;
            f->name_len = nl;
        }
        i = next;
    }
    return 0;
}

bool dkim_field_is(const struct dkim_field *f, const char *name)
{
    size_t n = strlen(name);
    if (n != f->name_len)
        return false;
    for (size_t i = 0; i < n; i++) {
        char a = f->start[i], b = name[i];
        if (a >= 'A' && a <= 'Z') a = (char)(a + 32);
        if (b >= 'A' && b <= 'Z') b = (char)(b + 32);
        if (a != b)
            return false;
    }
    return true;
}

int dkim_canon_header(enum dkim_canon c, const char *field, size_t len, bool crlf, struct buf *out)
{
    size_t before = out->len;
    if (c == DKIM_CANON_SIMPLE) {
        if (buf_append(out, field, len) < 0 || (crlf && buf_append(out, "\r\n", 2) < 0))
            goto full;
        return 0;
    }
    /* relaxed (§3.4.2): lowercase the name, drop WSP around the colon, unfold,
       compress WSP runs to one SP, drop WSP at the end of the value. */
    const char *colon = memchr(field, ':', len);
    size_t nlen = colon ? (size_t)(colon - field) : len;
    size_t ne = nlen;
    while (ne > 0 && (is_wsp(field[ne - 1]) || field[ne - 1] == '\r' || field[ne - 1] == '\n'))
        ne--;
    for (size_t i = 0; i < ne; i++) {
        char ch = field[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch + 32);
        if (buf_append(out, &ch, 1) < 0)
            goto full;
    }
    if (buf_append(out, ":", 1) < 0)
        goto full;
    bool wsp = false, started = false;
    for (size_t i = colon ? nlen + 1 : len; i < len; i++) {
        char ch = field[i];
        if (ch == '\r' || ch == '\n')
            continue;   /* unfold */
        if (is_wsp(ch)) {
            wsp = true;
            continue;
        }
        if (wsp && started && buf_append(out, " ", 1) < 0)
            goto full;
        wsp = false;
        started = true;
        if (buf_append(out, &ch, 1) < 0)
            goto full;
    }
    if (crlf && buf_append(out, "\r\n", 2) < 0)
        goto full;
    return 0;
full:
    out->len = before;
    if (out->data)
        out->data[before] = '\0';
    return -1;
}

void dkim_body_init(struct dkim_body_canon *b, enum dkim_canon c, int64_t limit, dkim_sink sink, void *arg)
{
    memset(b, 0, sizeof *b);
    b->canon = c;
    b->sink = sink;
    b->sink_arg = arg;
    b->limited = limit >= 0;
    b->limit = limit >= 0 ? (uint64_t)limit : 0;
}

static void flush(struct dkim_body_canon *b)
{
    if (b->outlen && b->sink)
        b->sink(b->sink_arg, b->out, b->outlen);
    b->outlen = 0;
}

/* Produce one canonical octet: counted always, handed on within the l= limit. */
static void emit(struct dkim_body_canon *b, unsigned char c)
{
    b->total++;
    if (b->limited && b->hashed >= b->limit)
        return;
    b->hashed++;
    b->out[b->outlen++] = c;
    if (b->outlen == sizeof b->out)
        flush(b);
}

/* A content octet of the current line: first the line ends held back. */
static void content(struct dkim_body_canon *b, unsigned char c)
{
    for (; b->empty_lines > 0; b->empty_lines--) {
        emit(b, '\r');
        emit(b, '\n');
    }
    if (b->pending_wsp) {
        emit(b, ' ');
        b->pending_wsp = false;
    }
    emit(b, c);
    b->line_content = true;
    b->any_content = true;
}

static void end_line(struct dkim_body_canon *b)
{
    /* Trailing WSP of the line is dropped (relaxed); the CRLF is held back in case
       only empty lines follow up to the end of the body. */
    b->pending_wsp = false;
    b->empty_lines++;
    b->line_content = false;
}

static void octet(struct dkim_body_canon *b, unsigned char c)
{
    if (b->canon == DKIM_CANON_RELAXED && (c == ' ' || c == '\t'))
        b->pending_wsp = true;
    else
        content(b, c);
}

void dkim_body_feed(struct dkim_body_canon *b, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (b->pending_cr) {
            b->pending_cr = false;
            if (c == '\n') {
                end_line(b);
                continue;
            }
            octet(b, '\r');   /* a lone CR is line content */
        }
        if (c == '\r')
            b->pending_cr = true;
        else if (c == '\n')
            end_line(b);
        else
            octet(b, c);
    }
}

void dkim_body_finish(struct dkim_body_canon *b)
{
    if (b->pending_cr) {
        b->pending_cr = false;
        octet(b, '\r');
    }
    /* Trailing empty lines vanish; the last content line gets its CRLF (added when
       the body did not end with one). simple: an empty body is one CRLF (§3.4.3);
       relaxed: an empty body stays empty (§3.4.4). */
    if (b->any_content || b->canon == DKIM_CANON_SIMPLE) {
        emit(b, '\r');
        emit(b, '\n');
    }
    b->empty_lines = 0;
    b->pending_wsp = false;
    flush(b);
}

int dkim_canon_selected(enum dkim_canon c, const struct dkim_header *h, const char *const *names,
                        const size_t *lens, size_t n, bool *used, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = h->n; k-- > 0;) {
            const struct dkim_field *f = &h->fields[k];
            if (used[k] || f->name_len != lens[i] || strncasecmp(f->start, names[i], lens[i]))
                continue;
            used[k] = true;
            if (dkim_canon_header(c, f->start, f->len, true, out) < 0)
                return -1;
            break;
        }
    }
    return 0;
}

int dkim_canon_unsigned(enum dkim_canon c, const struct dkim_field *f, size_t b_start, size_t b_end, struct buf *out)
{
    struct buf self;
    buf_init(&self, f->len + 1);
    int rc = buf_append(&self, f->start, b_start) < 0 || buf_append(&self, f->start + b_end, f->len - b_end) < 0 ||
             dkim_canon_header(c, self.data, self.len, false, out) < 0 ? -1 : 0;
    buf_free(&self);
    return rc;
}

/* local_job — see local_job.h. */
#include "delivery/local_job.h"
#include "lib/buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define INDEX_MAX 1000000u

/* A field: [s, s + n) of the input, not NUL-terminated. */
struct field {
    const char *s;
    size_t n;
};

/* The text up to sep (which is skipped), or false when there is none. */
static bool take(const char **p, const char *end, char sep, struct field *f)
{
    const char *q = memchr(*p, sep, (size_t)(end - *p));
    if (!q)
        return false;
    f->s = *p;
    f->n = (size_t)(q - *p);
    *p = q + 1;
    return true;
}

static int copy(char *dst, size_t dstsz, const struct field *f)
{
    if (f->n >= dstsz || memchr(f->s, '\t', f->n))
        return -1;
    memcpy(dst, f->s, f->n);
    dst[f->n] = '\0';
    return 0;
}

static int parse_uint(const struct field *f, unsigned max, unsigned *out)
{
    unsigned long v = 0;
    if (f->n == 0 || f->n > 7 || (f->n > 1 && f->s[0] == '0'))
        return -1;      /* one spelling per number: no leading zeros */
    for (size_t i = 0; i < f->n; i++) {
        if (f->s[i] < '0' || f->s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(f->s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_nonce(const struct field *f, uint64_t *out)
{
    uint64_t v = 0;
    if (f->n != 16)
        return -1;
    for (size_t i = 0; i < 16; i++) {
        char c = f->s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* Nonce and ID, the head of every message. */
static int parse_head(const char **p, const char *end, uint64_t *nonce, char *id, bool last)
{
    struct field f;
    if (!take(p, end, '\t', &f) || parse_nonce(&f, nonce) < 0)
        return -1;
    if (last) {
        f.s = *p;
        f.n = (size_t)(end - *p);
        *p = end;
    } else if (!take(p, end, '\t', &f)) {
        return -1;
    }
    return f.n == 0 || copy(id, LOCAL_JOB_ID_MAX, &f) < 0 ? -1 : 0;
}

static bool field_ok(const char *s, bool tab_ok)
{
    return !strpbrk(s, tab_ok ? "\r\n" : "\t\r\n");
}

int local_job_request_format(const struct local_job_request *r, char *out, size_t outsz)
{
    if (r->n == 0 || r->n > LOCAL_JOB_MAX_RCPTS || !r->id[0] || !field_ok(r->id, false) ||
        !field_ok(r->sender, false))
        return -1;
    int n = snprintf(out, outsz, "%016" PRIx64 "\t%s\t%d\t%s\n", r->nonce, r->id, r->junk ? 1 : 0, r->sender);
    if (n < 0 || (size_t)n >= outsz)
        return -1;
    size_t len = (size_t)n;
    for (size_t i = 0; i < r->n; i++) {
        if (!r->rcpt[i][0] || !field_ok(r->rcpt[i], true) || r->index[i] > INDEX_MAX)
            return -1;
        n = snprintf(out + len, outsz - len, "%u\t%s\n", r->index[i], r->rcpt[i]);
        if (n < 0 || (size_t)n >= outsz - len)
            return -1;
        len += (size_t)n;
    }
    return (int)len;
}

int local_job_request_parse(const char *data, size_t len, struct local_job_request *r)
{
    memset(r, 0, sizeof *r);
    if (len > LOCAL_JOB_REQUEST_MAX || memchr(data, '\0', len) || memchr(data, '\r', len))
        return -1;
    const char *p = data, *end = data + len;
    struct field line, f;
    if (!take(&p, end, '\n', &line))
        return -1;
    const char *lp = line.s, *lend = line.s + line.n;
    unsigned junk;
    if (parse_head(&lp, lend, &r->nonce, r->id, false) < 0 || !take(&lp, lend, '\t', &f) ||
        parse_uint(&f, 1, &junk) < 0)
        return -1;
    r->junk = junk == 1;
    f.s = lp;
    f.n = (size_t)(lend - lp);
    if (copy(r->sender, sizeof r->sender, &f) < 0)
        return -1;
    while (p < end) {
        if (r->n == LOCAL_JOB_MAX_RCPTS || !take(&p, end, '\n', &line))
            return -1;
        lp = line.s;
        lend = line.s + line.n;
        if (!take(&lp, lend, '\t', &f) || parse_uint(&f, INDEX_MAX, &r->index[r->n]) < 0 || lp == lend ||
            (size_t)(lend - lp) > ADDR_PATH_MAX)
            return -1;
        for (size_t k = 0; k < r->n; k++)
            if (r->index[k] == r->index[r->n])
                return -1;      /* one answer per recipient: each index once */
        memcpy(r->rcpt[r->n], lp, (size_t)(lend - lp));
        r->rcpt[r->n][lend - lp] = '\0';
        r->n++;
    }
    return r->n ? 0 : -1;
}

int local_job_reply_format(const struct local_job_reply *r, char *out, size_t outsz)
{
    if (!r->id[0] || !field_ok(r->id, false))
        return -1;
    int n;
    switch (r->type) {
    case LJOB_ADD:
        if (!r->target[0] || !field_ok(r->target, true))
            return -1;
        n = snprintf(out, outsz, "%016" PRIx64 "\t%s\t%u\t%s", r->nonce, r->id, r->index, r->target);
        break;
    case LJOB_RESULT: {
        char text[sizeof r->st.text];
        str_copy(text, r->st.text, sizeof text);
        for (char *t = text; *t; t++)
            if (*t == '\t' || *t == '\r' || *t == '\n')
                *t = ' ';
        if ((unsigned)r->st.result > DELIVERY_FAIL)
            return -1;
        n = snprintf(out, outsz, "%016" PRIx64 "\t%s\t%u\t%d\t%s", r->nonce, r->id, r->index, (int)r->st.result,
                     text);
        break;
    }
    case LJOB_HOME:
        if (!r->user[0] || !r->rcpt[0] || !field_ok(r->user, false) || !field_ok(r->rcpt, true))
            return -1;
        n = snprintf(out, outsz, "%016" PRIx64 "\t%s\t%u\t%s\t%s", r->nonce, r->id, r->index, r->user, r->rcpt);
        break;
    case LJOB_DONE:
        n = snprintf(out, outsz, "%016" PRIx64 "\t%s", r->nonce, r->id);
        break;
    default:
        return -1;
    }
    if (r->type != LJOB_DONE && r->index > INDEX_MAX)
        return -1;
    return n < 0 || (size_t)n >= outsz ? -1 : n;
}

/* The rest of the message as the last field: non-empty unless empty_ok. */
static int rest(const char *p, const char *end, char *dst, size_t dstsz, bool empty_ok)
{
    size_t n = (size_t)(end - p);
    if ((!n && !empty_ok) || n >= dstsz)
        return -1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

int local_job_reply_parse(uint32_t type, const char *data, size_t len, struct local_job_reply *r)
{
    memset(r, 0, sizeof *r);
    if (len > LOCAL_JOB_REPLY_MAX || memchr(data, '\0', len) || memchr(data, '\r', len) || memchr(data, '\n', len))
        return -1;
    const char *p = data, *end = data + len;
    struct field f;
    if (type < LJOB_ADD || type > LJOB_DONE)
        return -1;
    r->type = (enum local_job_msg)type;
    if (parse_head(&p, end, &r->nonce, r->id, r->type == LJOB_DONE) < 0)
        return -1;
    if (r->type == LJOB_DONE)
        return 0;
    if (!take(&p, end, '\t', &f) || parse_uint(&f, INDEX_MAX, &r->index) < 0)
        return -1;
    switch (r->type) {
    case LJOB_ADD:
        return rest(p, end, r->target, sizeof r->target, false);
    case LJOB_RESULT: {
        unsigned res;
        if (!take(&p, end, '\t', &f) || parse_uint(&f, DELIVERY_FAIL, &res) < 0 || memchr(p, '\t', (size_t)(end - p)))
            return -1;
        r->st.result = (enum delivery_result)res;
        return rest(p, end, r->st.text, sizeof r->st.text, true);
    }
    case LJOB_HOME:
        if (!take(&p, end, '\t', &f) || !f.n || copy(r->user, sizeof r->user, &f) < 0)
            return -1;
        return rest(p, end, r->rcpt, sizeof r->rcpt, false);
    default:
        return -1;
    }
}

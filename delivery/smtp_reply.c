/* smtp_reply — see smtp_reply.h. */
#include "delivery/smtp_reply.h"
#include "pull/dmtp_cmd.h"
#include "lib/buf.h"

#include <stdio.h>
#include <string.h>

void smtp_reply_parser_init(struct smtp_reply_parser *p)
{
    memset(p, 0, sizeof *p);
    p->state = SMTP_RP_LINE;
}

bool smtp_reply_pending(const struct smtp_reply_parser *p)
{
    return p->line_len > 0 || p->cur.nlines > 0;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "D.DDD.DDD" at s, followed by a space or the end; 1..3 digits in the last two
   parts (RFC 3463 §2). Returns its length, 0 when there is none. */
static size_t enhanced_len(const char *s, size_t n)
{
    size_t i = 0;
    if (n < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        while (i < n && is_digit(s[i]) && d < 4) {
            i++;
            d++;
        }
        if (d == 0 || d > 3)
            return 0;
        if (part == 0) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < n && s[i] != ' ')
        return 0;
    return i;
}

static enum smtp_feed_result fail(struct smtp_reply_parser *p, char *err, size_t errlen, const char *why)
{
    p->state = SMTP_RP_ERROR;
    snprintf(err, errlen, "%s", why);
    return SMTP_FEED_ERROR;
}

/* One complete line (without its end) into the current reply. 1: the reply is
   complete, 0: more lines follow, -1: error. */
static int take_line(struct smtp_reply_parser *p, const char **why)
{
    const char *l = p->line;
    size_t n = p->line_len;
    struct smtp_reply *r = &p->cur;
    if (n < 3 || !(l[0] >= '2' && l[0] <= '5') || !(l[1] >= '0' && l[1] <= '5') || !is_digit(l[2])) {
        *why = "the server's reply line does not begin with a valid 3-digit code";
        return -1;
    }
    if (n > 3 && l[3] != ' ' && l[3] != '-') {
        *why = "the server's reply code is not followed by a space or a hyphen";
        return -1;
    }
    int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    if (r->nlines > 0 && code != r->code) {
        *why = "the server's multi-line reply changes its code from one line to the next";
        return -1;
    }
    if (r->nlines >= SMTP_REPLY_MAX_LINES) {
        *why = "the server's reply has too many lines";
        return -1;
    }
    size_t need = n + (r->nlines > 0 ? 1 : 0);
    if (r->len + need >= sizeof r->text) {
        *why = "the server's reply is too long";
        return -1;
    }
    if (r->nlines == 0) {
        r->code = code;
        r->enhanced[0] = '\0';
        if (n > 4) {
            size_t e = enhanced_len(l + 4, n - 4);
            if (e > 0 && e < sizeof r->enhanced && l[4] == l[0])
                str_copyn(r->enhanced, l + 4, e, sizeof r->enhanced);
        }
    } else {
        r->text[r->len++] = '\n';
    }
    memcpy(r->text + r->len, l, n);
    r->len += n;
    r->text[r->len] = '\0';
    r->nlines++;
    return n > 3 && l[3] == '-' ? 0 : 1;
}

enum smtp_feed_result smtp_reply_feed(struct smtp_reply_parser *p, const char *data, size_t len,
                                      size_t *used, struct smtp_reply *out, char *err, size_t errlen)
{
    *used = 0;
    if (p->state == SMTP_RP_ERROR)
        return fail(p, err, errlen, "the server's earlier reply could not be read");
    for (size_t i = 0; i < len; i++) {
        char c = data[i];
        if (c != '\n') {
            /* Room for one more octet past the limit only when it is the CR of
               the line's end. */
            if (p->line_len > SMTP_REPLY_LINE_MAX || (p->line_len == SMTP_REPLY_LINE_MAX && c != '\r')) {
                *used = i;
                return fail(p, err, errlen, "the server's reply line is too long");
            }
            p->line[p->line_len++] = c;
            continue;
        }
        if (p->line_len > 0 && p->line[p->line_len - 1] == '\r')
            p->line_len--;
        if (p->line_len > SMTP_REPLY_LINE_MAX) {
            *used = i;
            return fail(p, err, errlen, "the server's reply line is too long");
        }
        for (size_t k = 0; k < p->line_len; k++) {
            if (p->line[k] == '\0' || p->line[k] == '\r') {
                *used = i;
                return fail(p, err, errlen, "the server's reply contains a NUL or a bare CR");
            }
        }
        const char *why = NULL;
        int rc = take_line(p, &why);
        p->line_len = 0;
        if (rc < 0) {
            *used = i + 1;
            return fail(p, err, errlen, why);
        }
        if (rc == 1) {
            *out = p->cur;
            memset(&p->cur, 0, sizeof p->cur);
            *used = i + 1;
            return SMTP_FEED_REPLY;
        }
    }
    *used = len;
    return SMTP_FEED_MORE;
}

void smtp_reply_flatten(const struct smtp_reply *r, char *out, size_t outsz)
{
    if (outsz == 0)
        return;
    size_t o = 0;
    const char *p = r->text;
    const char *end = r->text + r->len;
    bool first = true;
    while (p < end && o + 1 < outsz) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        /* The code is kept from the first line only (its '-' becomes a space);
           the texts of continuation lines follow, one space apart. */
        const char *t = p + (first ? 0 : 4);
        if (!first && t < le && o + 1 < outsz)
            out[o++] = ' ';
        for (const char *q = t; q < le && o + 1 < outsz; q++) {
            char c = *q;
            if (first && q == p + 3)
                c = ' ';
            out[o++] = ((unsigned char)c < 0x20 || c == 0x7f) ? '?' : c;
        }
        first = false;
        p = nl ? nl + 1 : end;
    }
    out[o] = '\0';
}

const char *smtp_reply_status(const struct smtp_reply *r, char *buf, size_t bufsz)
{
    if (r->enhanced[0])
        snprintf(buf, bufsz, "%s", r->enhanced);
    else
        snprintf(buf, bufsz, "%d.0.0", r->code / 100);
    return buf;
}

static unsigned auth_mech(const char *m, size_t n)
{
    static const struct { const char *name; unsigned bit; } mechs[] = {
        {"PLAIN", SMTP_AUTH_PLAIN},           {"LOGIN", SMTP_AUTH_LOGIN},
        {"CRAM-MD5", SMTP_AUTH_CRAM_MD5},     {"SCRAM-SHA-1", SMTP_AUTH_SCRAM_SHA_1},
        {"SCRAM-SHA-256", SMTP_AUTH_SCRAM_SHA_256}, {"XOAUTH2", SMTP_AUTH_XOAUTH2},
    };
    for (size_t i = 0; i < sizeof mechs / sizeof mechs[0]; i++)
        if (strlen(mechs[i].name) == n && str_nieq(m, mechs[i].name, n))
            return mechs[i].bit;
    return SMTP_AUTH_OTHER;
}

/* Mechanisms in s[0..n), separated by spaces. */
static unsigned auth_list(const char *s, size_t n)
{
    unsigned bits = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && s[i] == ' ')
            i++;
        size_t st = i;
        while (i < n && s[i] != ' ')
            i++;
        if (i > st)
            bits |= auth_mech(s + st, i - st);
    }
    return bits;
}

static bool keyword_is(const char *kw, size_t kn, const char *name)
{
    return strlen(name) == kn && str_nieq(kw, name, kn);
}

static void take_keyword(struct smtp_ehlo *e, const char *l, size_t n)
{
    size_t kn = 0;
    while (kn < n && l[kn] != ' ' && l[kn] != '=')
        kn++;
    const char *arg = kn < n ? l + kn + 1 : l + n;
    size_t an = kn < n ? n - kn - 1 : 0;
    if (keyword_is(l, kn, "PIPELINING")) {
        e->pipelining = true;
    } else if (keyword_is(l, kn, "SIZE")) {
        e->size = true;
        char num[24];
        unsigned long long v = 0;
        if (an > 0 && an < sizeof num) {
            str_copyn(num, arg, an, sizeof num);
            if (str_to_u64(str_trim(num), ~0ULL, &v) == 0)
                e->size_limit = v;
        }
    } else if (keyword_is(l, kn, "8BITMIME")) {
        e->eightbitmime = true;
    } else if (keyword_is(l, kn, "SMTPUTF8")) {
        e->smtputf8 = true;
    } else if (keyword_is(l, kn, "CHUNKING")) {
        e->chunking = true;
    } else if (keyword_is(l, kn, "BINARYMIME")) {
        e->binarymime = true;
    } else if (keyword_is(l, kn, "DSN")) {
        e->dsn = true;
    } else if (keyword_is(l, kn, "STARTTLS")) {
        e->starttls = true;
    } else if (keyword_is(l, kn, "ENHANCEDSTATUSCODES")) {
        e->enhancedstatuscodes = true;
    } else if (keyword_is(l, kn, "REQUIRETLS")) {
        e->requiretls = true;
    } else if (keyword_is(l, kn, "AUTH")) {
        /* "AUTH=PLAIN LOGIN" is the pre-standard form some servers still send. */
        e->auth |= auth_list(arg, an);
    }
}

int smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out)
{
    memset(out, 0, sizeof *out);
    if (r->code < 200 || r->code > 299)
        return -1;
    const char *p = r->text;
    const char *end = r->text + r->len;
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (!first && le - p > 4) {
            take_keyword(out, p + 4, (size_t)(le - p - 4));
            if (dmtp_ehlo_line_offers_msid(p + 4, (size_t)(le - p - 4)))
                out->msid = true;
        }
        first = false;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

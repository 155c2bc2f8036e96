/*
 * spf_macro — RFC 7208 §7 macro syntax and expansion.
 */
#include "auth/spf_macro.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define DOMAIN_MAX 253
#define PARTS_MAX  512

static bool is_delim(char c)
{
    return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

static bool letter_ok(char c, enum spf_macro_ctx ctx)
{
    char l = (char)(c | 0x20);
    if (c < 'A' || (c > 'Z' && c < 'a') || c > 'z')
        return false;
    if (strchr("slodipvh", l))
        return true;
    return ctx == SPF_MACRO_EXPLAIN && strchr("crt", l);
}

/* One %-sequence at s[0] == '%'. Sets *used; fills the parsed macro when it is %{...}. */
struct macro {
    char letter;        /* 0 for %% %_ %- */
    char literal[4];    /* replacement for the escapes */
    unsigned digits;    /* 0 = all parts */
    bool reverse;
    char delims[8];     /* NUL-terminated; empty = "." */
};

static int parse_one(const char *s, size_t len, enum spf_macro_ctx ctx, struct macro *m, size_t *used,
                     char *err, size_t errsz)
{
    memset(m, 0, sizeof *m);
    if (len < 2) {
        snprintf(err, errsz, "a '%%' at the end of \"%.*s\" is not a macro", (int)len, s);
        return -1;
    }
    switch (s[1]) {
    case '%': strcpy(m->literal, "%"); *used = 2; return 0;
    case '_': strcpy(m->literal, " "); *used = 2; return 0;
    case '-': strcpy(m->literal, "%20"); *used = 2; return 0;
    case '{': break;
    default:
        snprintf(err, errsz, "\"%%%c\" is not a macro (expected %%{, %%%%, %%_ or %%-)", s[1]);
        return -1;
    }
    size_t i = 2;
    if (i >= len || !letter_ok(s[i], ctx)) {
        if (i < len && letter_ok(s[i], SPF_MACRO_EXPLAIN))
            snprintf(err, errsz, "the macro letter '%c' is allowed only in an explanation", s[i]);
        else
            snprintf(err, errsz, "\"%.*s\" has no valid macro letter", (int)(len < 3 ? len : 3), s);
        return -1;
    }
    m->letter = s[i++];
    bool have_digits = false;
    unsigned n = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (n < 100000)
            n = n * 10 + (unsigned)(s[i] - '0');
        have_digits = true;
        i++;
    }
    if (have_digits && n == 0) {
        snprintf(err, errsz, "a macro's digit transformer must be nonzero in \"%.*s\"", (int)(i + 1 < len ? i + 1 : len), s);
        return -1;
    }
    m->digits = n;
    if (i < len && (s[i] == 'r' || s[i] == 'R')) {
        m->reverse = true;
        i++;
    }
    size_t nd = 0;
    while (i < len && is_delim(s[i])) {
        if (nd < sizeof m->delims - 1 && !strchr(m->delims, s[i]))
            m->delims[nd++] = s[i];
        i++;
    }
    if (i >= len || s[i] != '}') {
        snprintf(err, errsz, "the macro \"%.*s\" is not closed by '}'", (int)(i < len ? i + 1 : len), s);
        return -1;
    }
    *used = i + 1;
    return 0;
}

int spf_macro_check(const char *s, size_t len, enum spf_macro_ctx ctx, char *err, size_t errsz)
{
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            struct macro m;
            size_t used;
            if (parse_one(s + i, len - i, ctx, &m, &used, err, errsz) < 0)
                return -1;
            i += used;
            continue;
        }
        /* macro-literal = %x21-24 / %x26-7E; an explain-string also allows SP */
        if (!((c >= 0x21 && c <= 0x7e) || (c == ' ' && ctx == SPF_MACRO_EXPLAIN))) {
            snprintf(err, errsz, "character 0x%02x is not allowed in \"%.*s\"", c, (int)len, s);
            return -1;
        }
        i++;
    }
    return 0;
}

bool spf_macro_uses_p(const char *s, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++) {
        if (s[i] == '%' && s[i + 1] == '%') {
            i++;
            continue;
        }
        if (s[i] == '%' && s[i + 1] == '{' && (s[i + 2] == 'p' || s[i + 2] == 'P'))
            return true;
    }
    return false;
}

static void ip_dotted(const struct spf_macro_vars *v, char *out, size_t outsz)
{
    if (v->family == AF_INET) {
        snprintf(out, outsz, "%u.%u.%u.%u", v->ip[0], v->ip[1], v->ip[2], v->ip[3]);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    for (int i = 0; i < 16 && k + 4 < outsz; i++) {
        out[k++] = hex[v->ip[i] >> 4];
        out[k++] = '.';
        out[k++] = hex[v->ip[i] & 15];
        out[k++] = i < 15 ? '.' : '\0';
    }
    out[k < outsz ? k : outsz - 1] = '\0';
}

static const char *letter_value(char letter, const struct spf_macro_vars *v, char *buf, size_t bufsz)
{
    switch (letter | 0x20) {
    case 's': snprintf(buf, bufsz, "%s@%s", v->local, v->sender_domain); return buf;
    case 'l': return v->local;
    case 'o': return v->sender_domain;
    case 'd': return v->domain;
    case 'i': ip_dotted(v, buf, bufsz); return buf;
    case 'p': return v->validated ? v->validated : "unknown";
    case 'v': return v->family == AF_INET ? "in-addr" : "ip6";
    case 'h': return v->helo;
    case 'c':
        if (v->family == AF_INET)
            ip_dotted(v, buf, bufsz);
        else if (!inet_ntop(AF_INET6, v->ip, buf, (socklen_t)bufsz))
            buf[0] = '\0';
        return buf;
    case 'r': return v->receiver ? v->receiver : "unknown";
    case 't': snprintf(buf, bufsz, "%lld", (long long)v->now); return buf;
    }
    return "";
}

struct out {
    char *p;
    size_t sz, n;
    bool overflow;
};

static void put(struct out *o, const char *s, size_t len)
{
    if (o->n + len >= o->sz) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->n, s, len);
    o->n += len;
    o->p[o->n] = '\0';
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

/* Split, reverse, keep the rightmost parts, rejoin with '.', escape if upper case. */
static void apply(const struct macro *m, const char *value, struct out *o)
{
    const char *delims = m->delims[0] ? m->delims : ".";
    const char *start[PARTS_MAX];
    size_t plen[PARTS_MAX];
    size_t np = 0;
    const char *p = value;
    for (;;) {
        size_t l = strcspn(p, delims);
        if (np == PARTS_MAX) {
            /* more parts than any domain can have: keep the tail in the last slot */
            plen[np - 1] = strlen(start[np - 1]);
            break;
        }
        start[np] = p;
        plen[np++] = l;
        if (!p[l])
            break;
        p += l + 1;
    }
    if (m->reverse) {
        for (size_t i = 0; i < np / 2; i++) {
            const char *ts = start[i];
            size_t tl = plen[i];
            start[i] = start[np - 1 - i];
            plen[i] = plen[np - 1 - i];
            start[np - 1 - i] = ts;
            plen[np - 1 - i] = tl;
        }
    }
    size_t first = m->digits && m->digits < np ? np - m->digits : 0;
    bool escape = m->letter >= 'A' && m->letter <= 'Z';
    for (size_t i = first; i < np; i++) {
        if (i > first)
            put(o, ".", 1);
        if (!escape) {
            put(o, start[i], plen[i]);
            continue;
        }
        for (size_t k = 0; k < plen[i]; k++) {
            unsigned char c = (unsigned char)start[i][k];
            char enc[4];
            if (unreserved(c)) {
                put(o, (const char *)&c, 1);
            } else {
                snprintf(enc, sizeof enc, "%%%02X", c);
                put(o, enc, 3);
            }
        }
    }
}

int spf_macro_expand(const char *s, size_t len, enum spf_macro_ctx ctx, const struct spf_macro_vars *v,
                     char *out, size_t outsz, char *err, size_t errsz)
{
    if (outsz == 0)
        return -1;
    if (spf_macro_check(s, len, ctx, err, errsz) < 0)
        return -1;
    char tmp[SPF_EXPANSION_MAX * 2];
    struct out o = {tmp, sizeof tmp, 0, false};
    tmp[0] = '\0';
    for (size_t i = 0; i < len;) {
        if (s[i] != '%') {
            /* bounded: s need not be NUL-terminated */
            const char *pct = memchr(s + i, '%', len - i);
            size_t l = pct ? (size_t)(pct - (s + i)) : len - i;
            put(&o, s + i, l);
            i += l;
            continue;
        }
        struct macro m;
        size_t used;
        parse_one(s + i, len - i, ctx, &m, &used, err, errsz);   /* checked above */
        i += used;
        if (!m.letter) {
            put(&o, m.literal, strlen(m.literal));
            continue;
        }
        char buf[600];
        apply(&m, letter_value(m.letter, v, buf, sizeof buf), &o);
    }
    if (o.overflow) {
        snprintf(err, errsz, "the expansion of \"%.*s\" is too long", (int)(len > 80 ? 80 : len), s);
        return ctx == SPF_MACRO_DOMAIN ? -2 : -1;
    }
    const char *res = tmp;
    size_t rl = o.n;
    if (ctx == SPF_MACRO_DOMAIN) {
        if (rl > 0 && res[rl - 1] == '.')
            rl--;
        /* §7.3: drop whole labels from the left until it fits */
        while (rl > DOMAIN_MAX) {
            const char *dot = memchr(res, '.', rl);
            if (!dot) {
                snprintf(err, errsz, "the expansion of \"%.*s\" is a label longer than a domain name",
                         (int)(len > 80 ? 80 : len), s);
                return -2;
            }
            rl -= (size_t)(dot + 1 - res);
            res = dot + 1;
        }
    }
    if (rl >= outsz) {
        snprintf(err, errsz, "the expansion of \"%.*s\" is too long", (int)(len > 80 ? 80 : len), s);
        return -1;
    }
    memmove(out, res, rl);
    out[rl] = '\0';
    return 0;
}

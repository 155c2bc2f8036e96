/*
 * spf_record — RFC 7208 record syntax (§4.5, §4.6, §5, §6, §12 ABNF).
 */
#include "auth/spf_record.h"
#include "auth/spf_macro.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *spf_result_name(enum spf_result r)
{
    switch (r) {
    case SPF_NONE: return "none";
    case SPF_NEUTRAL: return "neutral";
    case SPF_PASS: return "pass";
    case SPF_FAIL: return "fail";
    case SPF_SOFTFAIL: return "softfail";
    case SPF_TEMPERROR: return "temperror";
    case SPF_PERMERROR: return "permerror";
    }
    return "permerror";
}

const char *spf_mech_name(enum spf_mech m)
{
    static const char *names[] = {"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"};
    return (unsigned)m < sizeof names / sizeof names[0] ? names[m] : "?";
}

bool spf_record_is_spf1(const char *txt, size_t len)
{
    return len >= 6 && !strncasecmp(txt, "v=spf1", 6) && (len == 6 || txt[6] == ' ');
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(char c) { return is_alpha(c) || is_digit(c); }

/* toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum ) */
static bool toplabel_ok(const char *s, size_t len)
{
    if (len == 0)
        return false;
    bool alpha = false, hyphen = false;
    for (size_t i = 0; i < len; i++) {
        if (is_alpha(s[i]))
            alpha = true;
        else if (s[i] == '-')
            hyphen = true;
        else if (!is_digit(s[i]))
            return false;
    }
    if (!hyphen)
        return alpha;
    return is_alnum(s[0]) && is_alnum(s[len - 1]);
}

int spf_domain_spec_check(const char *s, size_t len, char *err, size_t errsz)
{
    if (len == 0) {
        snprintf(err, errsz, "empty domain-spec");
        return -1;
    }
    if (spf_macro_check(s, len, SPF_MACRO_DOMAIN, err, errsz) < 0)
        return -1;
    /* domain-end = ( "." toplabel [ "." ] ) / macro-expand: find whether the last
       token is a macro-expand (the syntax is already known to be valid). */
    bool last_macro = false;
    for (size_t i = 0; i < len;) {
        if (s[i] == '%') {
            if (s[i + 1] == '{') {
                const char *close = memchr(s + i, '}', len - i);
                i = (size_t)(close - s) + 1;
            } else {
                i += 2;
            }
            last_macro = true;
        } else {
            i++;
            last_macro = false;
        }
    }
    if (last_macro)
        return 0;
    size_t end = len;
    if (s[end - 1] == '.')
        end--;
    size_t start = end;
    while (start > 0 && s[start - 1] != '.')
        start--;
    if (start == 0 || !toplabel_ok(s + start, end - start)) {
        snprintf(err, errsz, "\"%.*s\" does not end in a valid top-level label", (int)len, s);
        return -1;
    }
    return 0;
}

static char *dupn(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* "/" ( "0" / %x31-39 0*N DIGIT ) with a maximum value. -1 when malformed. */
static int cidr_value(const char *s, size_t len, unsigned max)
{
    if (len == 0 || len > 3 || (len > 1 && s[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v > max ? -1 : (int)v;
}

/* ip4-network = qnum "." qnum "." qnum "." qnum, qnum without leading zeros */
static bool ip4_parse(const char *s, size_t len, uint8_t out[4])
{
    size_t i = 0;
    for (int k = 0; k < 4; k++) {
        size_t st = i;
        unsigned v = 0;
        while (i < len && is_digit(s[i]) && i - st < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == st || v > 255 || (i - st > 1 && s[st] == '0'))
            return false;
        out[k] = (uint8_t)v;
        if (k < 3) {
            if (i >= len || s[i] != '.')
                return false;
            i++;
        }
    }
    return i == len;
}

/* Split a trailing "/n" and/or "//n" off s (a, mx: dual-cidr; ip4/ip6: one). */
static int split_cidr(const char *s, size_t *len, bool dual, bool v6only, unsigned *c4, unsigned *c6)
{
    size_t l = *len;
    for (int pass = 0; pass < 2; pass++) {
        size_t k = l;
        while (k > 0 && is_digit(s[k - 1]))
            k--;
        if (k == l || k == 0 || s[k - 1] != '/')
            break;
        bool six = k >= 2 && s[k - 2] == '/';
        if (six && !dual)
            return -1;
        if (six && pass == 1)
            break;
        int v;
        if (six || v6only) {
            if ((v = cidr_value(s + k, l - k, 128)) < 0)
                return -1;
            *c6 = (unsigned)v;
            l = six ? k - 2 : k - 1;
            if (v6only)
                break;
        } else {
            if ((v = cidr_value(s + k, l - k, 32)) < 0)
                return -1;
            *c4 = (unsigned)v;
            l = k - 1;
            break;
        }
    }
    *len = l;
    return 0;
}

static int parse_directive(const char *t, size_t tl, struct spf_term *term, char *err, size_t errsz)
{
    const char *p = t;
    size_t l = tl;
    term->qualifier = SPF_PASS;
    switch (*p) {
    case '+': term->qualifier = SPF_PASS; p++, l--; break;
    case '-': term->qualifier = SPF_FAIL; p++, l--; break;
    case '~': term->qualifier = SPF_SOFTFAIL; p++, l--; break;
    case '?': term->qualifier = SPF_NEUTRAL; p++, l--; break;
    }
    size_t nl = 0;
    while (nl < l && is_alnum(p[nl]))
        nl++;
    static const struct { const char *name; enum spf_mech m; } mechs[] = {
        {"all", SPF_M_ALL}, {"include", SPF_M_INCLUDE}, {"a", SPF_M_A}, {"mx", SPF_M_MX}, {"ptr", SPF_M_PTR},
        {"ip4", SPF_M_IP4}, {"ip6", SPF_M_IP6}, {"exists", SPF_M_EXISTS},
    };
    size_t k = 0;
    for (; k < sizeof mechs / sizeof mechs[0]; k++)
        if (strlen(mechs[k].name) == nl && !strncasecmp(p, mechs[k].name, nl))
            break;
    if (k == sizeof mechs / sizeof mechs[0] || (nl < l && p[nl] != ':' && p[nl] != '/')) {
        snprintf(err, errsz, "unknown mechanism \"%.*s\"", (int)tl, t);
        return -1;
    }
    term->mech = mechs[k].m;
    term->cidr4 = 32;
    term->cidr6 = 128;
    const char *arg = p + nl;
    size_t al = l - nl;
    bool colon = al > 0 && arg[0] == ':';
    switch (term->mech) {
    case SPF_M_ALL:
        if (al) {
            snprintf(err, errsz, "\"%.*s\": all takes no argument", (int)tl, t);
            return -1;
        }
        return 0;
    case SPF_M_IP4:
    case SPF_M_IP6: {
        if (!colon) {
            snprintf(err, errsz, "\"%.*s\" needs an address", (int)tl, t);
            return -1;
        }
        arg++, al--;
        bool v6 = term->mech == SPF_M_IP6;
        if (split_cidr(arg, &al, false, v6, &term->cidr4, &term->cidr6) < 0) {
            snprintf(err, errsz, "\"%.*s\" has an invalid CIDR length", (int)tl, t);
            return -1;
        }
        char a[64];
        bool ok = al < sizeof a;
        if (ok && !v6)
            ok = ip4_parse(arg, al, term->addr);
        if (ok && v6) {
            memcpy(a, arg, al);
            a[al] = '\0';
            ok = inet_pton(AF_INET6, a, term->addr) == 1;
        }
        if (!ok) {
            snprintf(err, errsz, "\"%.*s\" has an invalid %s address", (int)tl, t, v6 ? "IPv6" : "IPv4");
            return -1;
        }
        return 0;
    }
    case SPF_M_INCLUDE:
    case SPF_M_EXISTS:
        if (!colon) {
            snprintf(err, errsz, "\"%.*s\" needs a domain", (int)tl, t);
            return -1;
        }
        break;
    case SPF_M_A:
    case SPF_M_MX:
        if (split_cidr(arg, &al, true, false, &term->cidr4, &term->cidr6) < 0) {
            snprintf(err, errsz, "\"%.*s\" has an invalid CIDR length", (int)tl, t);
            return -1;
        }
        break;
    case SPF_M_PTR:
        break;
    }
    if (al == 0)
        return 0;
    if (!colon || al == 1) {
        snprintf(err, errsz, "\"%.*s\" is malformed", (int)tl, t);
        return -1;
    }
    char why[160];
    if (spf_domain_spec_check(arg + 1, al - 1, why, sizeof why) < 0) {
        snprintf(err, errsz, "\"%.*s\": %s", (int)tl, t, why);
        return -1;
    }
    if (!(term->domain_spec = dupn(arg + 1, al - 1)))
        return -2;
    return 0;
}

static int parse_modifier(const char *t, size_t tl, size_t nl, struct spf_record *r, char *err, size_t errsz)
{
    const char *val = t + nl + 1;
    size_t vl = tl - nl - 1;
    char why[160];
    char **slot = NULL;
    if (nl == 8 && !strncasecmp(t, "redirect", 8))
        slot = &r->redirect;
    else if (nl == 3 && !strncasecmp(t, "exp", 3))
        slot = &r->exp;
    if (!slot) {
        /* unknown-modifier = name "=" macro-string: ignored, but must be well-formed (§6) */
        if (spf_macro_check(val, vl, SPF_MACRO_DOMAIN, why, sizeof why) < 0) {
            snprintf(err, errsz, "\"%.*s\": %s", (int)tl, t, why);
            return -1;
        }
        return 0;
    }
    if (*slot) {
        snprintf(err, errsz, "\"%.*s\": the %.*s modifier appears more than once", (int)tl, t, (int)nl, t);
        return -1;
    }
    if (spf_domain_spec_check(val, vl, why, sizeof why) < 0) {
        snprintf(err, errsz, "\"%.*s\": %s", (int)tl, t, why);
        return -1;
    }
    return (*slot = dupn(val, vl)) ? 0 : -2;
}

void spf_record_free(struct spf_record *r)
{
    for (size_t i = 0; i < r->nterms; i++) {
        free(r->terms[i].text);
        free(r->terms[i].domain_spec);
    }
    free(r->terms);
    free(r->redirect);
    free(r->exp);
    free(r->text);
    memset(r, 0, sizeof *r);
}

int spf_record_parse(const char *txt, size_t len, struct spf_record *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    if (!spf_record_is_spf1(txt, len)) {
        snprintf(err, errsz, "the record does not start with \"v=spf1\"");
        return -1;
    }
    if (len > SPF_RECORD_MAX) {
        snprintf(err, errsz, "the record is %zu octets long, more than %d", len, SPF_RECORD_MAX);
        return -1;
    }
    if (!(out->text = dupn(txt, len)) || !(out->terms = calloc(SPF_TERMS_MAX, sizeof *out->terms))) {
        spf_record_free(out);
        return -2;
    }
    int rc = 0;
    size_t i = 6;
    while (i < len && rc == 0) {
        if (txt[i] == ' ') {
            i++;
            continue;
        }
        size_t tl = 0;
        while (i + tl < len && txt[i + tl] != ' ')
            tl++;
        const char *t = txt + i;
        i += tl;
        /* name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ) followed by '=' makes a modifier */
        size_t nl = 0;
        if (is_alpha(t[0]))
            while (nl < tl && (is_alnum(t[nl]) || t[nl] == '-' || t[nl] == '_' || t[nl] == '.'))
                nl++;
        if (nl > 0 && nl < tl && t[nl] == '=') {
            rc = parse_modifier(t, tl, nl, out, err, errsz);
            continue;
        }
        if (out->nterms == SPF_TERMS_MAX) {
            snprintf(err, errsz, "the record has more than %d terms", SPF_TERMS_MAX);
            rc = -1;
            break;
        }
        struct spf_term *term = &out->terms[out->nterms];
        if (!(term->text = dupn(t, tl))) {
            rc = -2;
            break;
        }
        out->nterms++;
        rc = parse_directive(t, tl, term, err, errsz);
    }
    if (rc != 0) {
        spf_record_free(out);
        return rc;
    }
    return 0;
}

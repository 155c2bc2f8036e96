/* mta_sts_policy — the MTA-STS policy file and MX matching; see mta_sts_policy.h. */
#include "delivery/mta_sts_policy.h"
#include "lib/buf.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }

const char *sts_mode_name(enum sts_mode m)
{
    switch (m) {
    case STS_MODE_ENFORCE: return "enforce";
    case STS_MODE_TESTING: return "testing";
    case STS_MODE_NONE: break;
    }
    return "none";
}

/* An LDH name of A-labels: labels of 1-63 letters, digits and hyphens, not
   starting or ending with a hyphen, at least two labels, at most 253 octets. */
static bool ldh_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0, labels = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            labels++;
        } else if (isalnum(c) || c == '-') {
            if (c == '-' && label == 0)
                return false;
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[n - 1] != '-' && labels >= 2;
}

static bool key_ok(const char *k, size_t n)
{
    if (n == 0 || n > 32 || !isalnum((unsigned char)k[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)k[i]) && k[i] != '_' && k[i] != '-' && k[i] != '.')
            return false;
    return true;
}

/* sts-policy-ext-value: no CTLs, no leading space (trailing WSP is already cut). */
static bool value_ok(const char *v, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static bool value_is(const char *v, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(v, want, n) == 0;
}

static int one_field(struct sts_policy *p, unsigned *seen, const char *k, size_t kl, const char *v, size_t vl,
                     unsigned line, char *err, size_t errlen)
{
    enum { SEEN_VERSION = 1, SEEN_MODE = 2, SEEN_MAX_AGE = 4 };
    if (value_is(k, kl, "version")) {
        if (*seen & SEEN_VERSION)
            return 0;
        if (!value_is(v, vl, "STSv1")) {
            snprintf(err, errlen, "line %u: version is not STSv1", line);
            return -1;
        }
        *seen |= SEEN_VERSION;
    } else if (value_is(k, kl, "mode")) {
        if (*seen & SEEN_MODE)
            return 0;
        if (value_is(v, vl, "enforce"))
            p->mode = STS_MODE_ENFORCE;
        else if (value_is(v, vl, "testing"))
            p->mode = STS_MODE_TESTING;
        else if (value_is(v, vl, "none"))
            p->mode = STS_MODE_NONE;
        else {
            snprintf(err, errlen, "line %u: mode is not enforce, testing or none", line);
            return -1;
        }
        *seen |= SEEN_MODE;
    } else if (value_is(k, kl, "max_age")) {
        if (*seen & SEEN_MAX_AGE)
            return 0;
        unsigned long long a = 0;
        for (size_t i = 0; i < vl; i++) {
            if (vl > 10 || !isdigit((unsigned char)v[i])) {
                snprintf(err, errlen, "line %u: max_age is not 1 to 10 digits", line);
                return -1;
            }
            a = a * 10 + (unsigned)(v[i] - '0');
        }
        p->max_age = a > STS_MAX_AGE_MAX ? STS_MAX_AGE_MAX : (unsigned long)a;
        *seen |= SEEN_MAX_AGE;
    } else if (value_is(k, kl, "mx")) {
        size_t off = (vl > 2 && v[0] == '*' && v[1] == '.') ? 2 : 0;
        if (!ldh_name_ok(v + off, vl - off)) {
            snprintf(err, errlen, "line %u: mx is not a host name or *.domain pattern", line);
            return -1;
        }
        if (p->n_mx == STS_MX_MAX) {
            snprintf(err, errlen, "more than %d mx patterns", STS_MX_MAX);
            return -1;
        }
        char *d = p->mx[p->n_mx++];
        for (size_t i = 0; i < vl; i++)
            d[i] = (char)tolower((unsigned char)v[i]);
        d[vl] = '\0';
    }
    return 0;
}

int sts_policy_parse(const char *text, size_t len, struct sts_policy *out, char *err, size_t errlen)
{
    if (len > STS_POLICY_MAX) {
        snprintf(err, errlen, "policy longer than %u octets", STS_POLICY_MAX);
        return -1;
    }
    memset(out, 0, sizeof *out);
    unsigned seen = 0, line = 0;
    size_t pos = 0;
    while (pos < len) {
        line++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - s) : len - pos;
        pos += ll + (nl ? 1 : 0);
        if (ll > 0 && s[ll - 1] == '\r')
            ll--;
        while (ll > 0 && is_wsp(s[ll - 1]))
            ll--;
        if (ll == 0)
            continue;
        const char *colon = memchr(s, ':', ll);
        if (!colon || !key_ok(s, (size_t)(colon - s))) {
            snprintf(err, errlen, "line %u is not \"key: value\"", line);
            return -1;
        }
        const char *v = colon + 1, *e = s + ll;
        while (v < e && is_wsp(*v))
            v++;
        if (!value_ok(v, (size_t)(e - v))) {
            snprintf(err, errlen, "line %u has an empty or malformed value", line);
            return -1;
        }
        if (one_field(out, &seen, s, (size_t)(colon - s), v, (size_t)(e - v), line, err, errlen) < 0)
            return -1;
    }
    if (!(seen & 1) || !(seen & 2) || !(seen & 4)) {
        snprintf(err, errlen, "policy lacks %s", !(seen & 1) ? "version" : !(seen & 2) ? "mode" : "max_age");
        return -1;
    }
    if (out->n_mx == 0 && out->mode != STS_MODE_NONE) {
        snprintf(err, errlen, "policy has no mx pattern");
        return -1;
    }
    return 0;
}

bool sts_mx_pattern_match(const char *pattern, const char *host)
{
    size_t hl = strlen(host);
    if (hl > 0 && host[hl - 1] == '.')
        hl--;
    if (hl == 0)
        return false;
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = memchr(host, '.', hl);
        if (!dot || dot == host)
            return false;
        size_t rest = hl - (size_t)(dot + 1 - host);
        return rest == strlen(pattern + 2) && strncasecmp(dot + 1, pattern + 2, rest) == 0;
    }
    return hl == strlen(pattern) && strncasecmp(host, pattern, hl) == 0;
}

bool sts_policy_mx_ok(const struct sts_policy *p, const char *host)
{
    for (unsigned i = 0; i < p->n_mx; i++)
        if (sts_mx_pattern_match(p->mx[i], host))
            return true;
    return false;
}

int sts_policy_format(enum sts_mode mode, unsigned long max_age, const char *const *mx, size_t n, struct buf *out)
{
    if (max_age > STS_MAX_AGE_MAX || (n == 0 && mode != STS_MODE_NONE) || n > STS_MX_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t off = (mx[i][0] == '*' && mx[i][1] == '.') ? 2 : 0;
        if (!ldh_name_ok(mx[i] + off, strlen(mx[i] + off)))
            return -1;
    }
    if (buf_printf(out, "version: STSv1\r\nmode: %s\r\n", sts_mode_name(mode)) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (buf_printf(out, "mx: %s\r\n", mx[i]) < 0)
            return -1;
    return buf_printf(out, "max_age: %lu\r\n", max_age) < 0 ? -1 : 0;
}

/* addr — see addr.h. A hand-written recursive-descent parser over the RFC 5321
   grammar; every function takes (s, len) and never reads past len. */
#include "lib/addr.h"
#include "lib/buf.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (2-4), or 0 (RFC 3629 §4). */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    unsigned cp;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

bool addr_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq(p + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* atext of RFC 5322 §3.2.3 */
static bool is_atext(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/*
 * Scan one "unit" of 8-bit text at s[i]: a single octet >= 0x80 starts a UTF-8
 * sequence, which must be well-formed and allowed. Returns the octets used, or 0
 * with *err set.
 */
static size_t utf8_unit(const char *s, size_t len, size_t i, bool allow_utf8, const char **err)
{
    if (!allow_utf8) {
        *err = "8-bit address without SMTPUTF8";
        return 0;
    }
    size_t n = utf8_seq((const unsigned char *)s + i, len - i);
    if (!n)
        *err = "malformed UTF-8 in address";
    return n;
}

/* Dot-string = Atom *("." Atom) */
static int parse_dot_string(const char *s, size_t len, bool allow_utf8, const char **err)
{
    if (len == 0) {
        *err = "empty local part";
        return -1;
    }
    bool atom_start = true;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (atom_start) {
                *err = i == 0 ? "local part starts with a dot" : "two dots in a row in local part";
                return -1;
            }
            atom_start = true;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_unit(s, len, i, allow_utf8, err);
            if (!n)
                return -1;
            i += n;
        } else if (is_atext(c)) {
            i++;
        } else {
            *err = c < 0x20 || c == 0x7f ? "control character in local part" : "invalid character in local part";
            return -1;
        }
        atom_start = false;
    }
    if (atom_start) {
        *err = "local part ends with a dot";
        return -1;
    }
    return 0;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE; s includes both quotes. */
static int parse_quoted_string(const char *s, size_t len, bool allow_utf8, const char **err)
{
    if (len < 2 || s[0] != '"' || s[len - 1] != '"') {
        *err = "unbalanced quotes in local part";
        return -1;
    }
    for (size_t i = 1; i < len - 1;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            if (i + 1 >= len - 1) {
                *err = "backslash at the end of a quoted local part";
                return -1;
            }
            unsigned char q = (unsigned char)s[i + 1];
            if (q < 32 || q > 126) {
                *err = "invalid quoted-pair in local part";
                return -1;
            }
            i += 2;
        } else if (c == '"') {
            *err = "unbalanced quotes in local part";
            return -1;
        } else if (c >= 0x80) {
            size_t n = utf8_unit(s, len - 1, i, allow_utf8, err);
            if (!n)
                return -1;
            i += n;
        } else if (c >= 32 && c <= 126) {
            i++;
        } else {
            *err = "control character in quoted local part";
            return -1;
        }
    }
    return 0;
}

/* Domain = sub-domain *("." sub-domain); Let-dig [Ldh-str]; U-labels with utf8. */
static int check_domain(const char *s, size_t len, bool allow_utf8, const char **err)
{
    if (len == 0) {
        *err = "empty domain";
        return -1;
    }
    if (len > ADDR_DOMAIN_MAX) {
        *err = "domain longer than 255 octets";
        return -1;
    }
    size_t label = 0;
    for (size_t i = 0; i <= len;) {
        if (i == len || s[i] == '.') {
            if (label == 0) {
                *err = i == len ? "domain ends with a dot" : "empty label in domain";
                return -1;
            }
            if (s[i - 1] == '-') {
                *err = "domain label ends with a hyphen";
                return -1;
            }
            label = 0;
            i++;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        size_t n = 1;
        if (c >= 0x80) {
            n = utf8_unit(s, len, i, allow_utf8, err);
            if (!n)
                return -1;
        } else if (c == '-') {
            if (label == 0) {
                *err = "domain label starts with a hyphen";
                return -1;
            }
        } else if (!is_alpha(c) && !is_digit(c)) {
            *err = c < 0x20 || c == 0x7f ? "control character in domain" : "invalid character in domain";
            return -1;
        }
        label += n;
        if (label > 63) {
            *err = "domain label longer than 63 octets";
            return -1;
        }
        i += n;
    }
    return 0;
}

bool addr_is_domain(const char *s, size_t len, bool allow_utf8)
{
    const char *err;
    return check_domain(s, len, allow_utf8, &err) == 0;
}

/* IPv4-address-literal = Snum 3("." Snum); leading zeros refused (octal ambiguity). */
static bool is_ipv4_text(const char *s, size_t n)
{
    char text[16];
    unsigned char buf[4];
    if (n == 0 || n >= sizeof text)
        return false;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.')
            dots++;
        else if (!is_digit((unsigned char)s[i]))
            return false;
    }
    memcpy(text, s, n);
    text[n] = '\0';
    return dots == 3 && inet_pton(AF_INET, text, buf) == 1;
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/*
 * Count the IPv6-hex groups of s[0..n) ("1:2:3", possibly empty), the last element
 * possibly an IPv4 address when v4_ok. -1 when malformed.
 */
static int ipv6_groups(const char *s, size_t n, bool v4_ok, bool *v4)
{
    int groups = 0;
    *v4 = false;
    if (n == 0)
        return 0;
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < n && s[j] != ':')
            j++;
        if (j == n && v4_ok && memchr(s + i, '.', j - i)) {
            if (!is_ipv4_text(s + i, j - i))
                return -1;
            *v4 = true;
            return groups;
        }
        if (j == i || j - i > 4)
            return -1;
        for (size_t k = i; k < j; k++)
            if (!is_hex((unsigned char)s[k]))
                return -1;
        groups++;
        if (j == n)
            return groups;
        i = j + 1;
        if (i == n)
            return -1;      /* trailing single colon */
    }
}

/*
 * IPv6-addr of RFC 5321 §4.1.3: full (8 groups), compressed ("::" standing for at
 * least two groups, so at most 6 others), and both with a trailing IPv4 address
 * (6 groups, or at most 4 others with "::"). inet_pton is laxer ("::" for a single
 * group), so the grammar is checked here.
 */
static bool is_ipv6_text(const char *s, size_t n)
{
    const char *dc = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == ':' && s[i + 1] == ':') {
            dc = s + i;
            break;
        }
    bool v4;
    if (!dc) {
        int g = ipv6_groups(s, n, true, &v4);
        return v4 ? g == 6 : g == 8;
    }
    size_t left = (size_t)(dc - s);
    bool v4_left;
    int gl = ipv6_groups(s, left, false, &v4_left);
    int gr = ipv6_groups(dc + 2, n - left - 2, true, &v4);
    if (gl < 0 || gr < 0)
        return false;
    return gl + gr <= (v4 ? 4 : 6);
}

/* address-literal = "[" ( IPv4 / IPv6 / General ) "]"; s includes the brackets. */
static int check_literal(const char *s, size_t len, enum addr_domain_kind *kind, const char **err)
{
    char text[ADDR_DOMAIN_MAX + 1];
    if (len < 3 || s[0] != '[' || s[len - 1] != ']' || len - 2 >= sizeof text) {
        *err = "malformed address literal";
        return -1;
    }
    const char *in = s + 1;
    size_t n = len - 2;
    memcpy(text, in, n);
    text[n] = '\0';
    if (memchr(in, '\0', n)) {
        *err = "NUL in address literal";
        return -1;
    }
    if (is_digit((unsigned char)text[0])) {
        if (!is_ipv4_text(text, n)) {
            *err = "malformed IPv4 address literal";
            return -1;
        }
        *kind = ADDR_DOMAIN_IPV4;
        return 0;
    }
    if (n > 5 && str_nieq(text, "IPv6:", 5)) {
        if (!is_ipv6_text(text + 5, n - 5)) {
            *err = "malformed IPv6 address literal";
            return -1;
        }
        *kind = ADDR_DOMAIN_IPV6;
        return 0;
    }
    /* General-address-literal = Standardized-tag ":" 1*dcontent */
    const char *colon = memchr(text, ':', n);
    if (!colon || colon == text || (size_t)(colon - text) == n - 1) {
        *err = "malformed address literal";
        return -1;
    }
    if (check_domain(text, (size_t)(colon - text), false, err) < 0 || memchr(text, '.', (size_t)(colon - text))) {
        *err = "malformed address literal tag";
        return -1;
    }
    for (const char *p = colon + 1; p < text + n; p++) {
        unsigned char c = (unsigned char)*p;
        if (!((c >= 33 && c <= 90) || (c >= 94 && c <= 126))) {
            *err = "invalid character in address literal";
            return -1;
        }
    }
    *kind = ADDR_DOMAIN_GENERAL;
    return 0;
}

bool addr_is_address_literal(const char *s, size_t len)
{
    enum addr_domain_kind kind;
    const char *err;
    return check_literal(s, len, &kind, &err) == 0;
}

int addr_parse_mailbox(const char *s, size_t len, bool allow_utf8, struct mailbox *out, const char **err)
{
    memset(out, 0, sizeof *out);
    /* The local part ends at the last '@' outside quotes: find it by scanning. */
    size_t at = len;
    if (len && s[0] == '"') {
        size_t i = 1;
        while (i < len && s[i] != '"') {
            if (s[i] == '\\')
                i++;
            i++;
        }
        if (i >= len) {
            *err = "unbalanced quotes in local part";
            return -1;
        }
        at = i + 1;
        if (at >= len || s[at] != '@') {
            *err = at >= len ? "missing @ and domain" : "text after the quoted local part";
            return -1;
        }
        out->quoted = true;
    } else {
        const char *p = memchr(s, '@', len);
        if (!p) {
            *err = "missing @ and domain";
            return -1;
        }
        at = (size_t)(p - s);
    }
    if (at > ADDR_LOCAL_MAX) {
        *err = "local part longer than 64 octets";
        return -1;
    }
    int r = out->quoted ? parse_quoted_string(s, at, allow_utf8, err) : parse_dot_string(s, at, allow_utf8, err);
    if (r < 0)
        return -1;
    const char *d = s + at + 1;
    size_t dlen = len - at - 1;
    if (dlen > 0 && d[0] == '[') {
        if (check_literal(d, dlen, &out->domain_kind, err) < 0)
            return -1;
    } else {
        if (check_domain(d, dlen, allow_utf8, err) < 0)
            return -1;
        out->domain_kind = ADDR_DOMAIN_NAME;
    }
    if (dlen > ADDR_DOMAIN_MAX) {
        *err = "domain longer than 255 octets";
        return -1;
    }
    memcpy(out->local, s, at);
    out->local[at] = '\0';
    memcpy(out->domain, d, dlen);
    out->domain[dlen] = '\0';
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            out->utf8 = true;
    return 0;
}

/* A-d-l = At-domain *( "," At-domain ), At-domain = "@" Domain */
static int check_adl(const char *s, size_t len, const char **err)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] != '@') {
            *err = "malformed source route";
            return -1;
        }
        size_t j = i + 1;
        while (j < len && s[j] != ',')
            j++;
        if (check_domain(s + i + 1, j - i - 1, false, err) < 0) {
            *err = "malformed source route";
            return -1;
        }
        i = j < len ? j + 1 : j;
        if (j < len && i == len) {
            *err = "malformed source route";
            return -1;
        }
    }
    return 0;
}

int addr_parse_path(const char *s, size_t len, bool allow_utf8, bool allow_null, bool allow_postmaster,
                    size_t *consumed, bool *is_null, struct mailbox *out, const char **err)
{
    *is_null = false;
    memset(out, 0, sizeof *out);
    if (len == 0 || s[0] != '<') {
        *err = "address must be enclosed in <>";
        return -1;
    }
    /* Find the closing '>' outside a quoted local part. */
    size_t end = 1;
    bool quoted = false;
    for (; end < len; end++) {
        char c = s[end];
        if (quoted && c == '\\' && end + 1 < len) {
            end++;
            continue;
        }
        if (c == '"')
            quoted = !quoted;
        else if (c == '>' && !quoted)
            break;
    }
    if (end >= len) {
        *err = "missing closing >";
        return -1;
    }
    if (end + 1 > ADDR_PATH_MAX) {
        *err = "address longer than 256 octets";
        return -1;
    }
    *consumed = end + 1;
    const char *in = s + 1;
    size_t n = end - 1;
    if (n == 0) {
        if (!allow_null) {
            *err = "empty address not allowed here";
            return -1;
        }
        *is_null = true;
        return 0;
    }
    if (allow_postmaster && n == 10 && str_nieq(in, "postmaster", 10)) {
        memcpy(out->local, in, 10);
        out->local[10] = '\0';
        out->domain_kind = ADDR_DOMAIN_NONE;
        return 0;
    }
    if (in[0] == '@') {
        const char *colon = memchr(in, ':', n);
        if (!colon) {
            *err = "malformed source route";
            return -1;
        }
        if (check_adl(in, (size_t)(colon - in), err) < 0)
            return -1;
        n -= (size_t)(colon - in) + 1;
        in = colon + 1;
    }
    return addr_parse_mailbox(in, n, allow_utf8, out, err);
}

int addr_local_unquoted(const struct mailbox *m, char *out, size_t outsz)
{
    const char *s = m->local;
    size_t len = strlen(s), o = 0;
    if (!m->quoted)
        return str_copy(out, s, outsz) < outsz ? 0 : -1;
    for (size_t i = 1; i + 1 < len; i++) {
        if (s[i] == '\\' && i + 2 < len)
            i++;
        if (o + 1 >= outsz)
            return -1;
        out[o++] = s[i];
    }
    out[o] = '\0';
    return 0;
}

int addr_format(const struct mailbox *m, char *out, size_t outsz)
{
    int n = m->domain_kind == ADDR_DOMAIN_NONE ? snprintf(out, outsz, "%s", m->local)
                                               : snprintf(out, outsz, "%s@%s", m->local, m->domain);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

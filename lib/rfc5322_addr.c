/* rfc5322_addr — see rfc5322_addr.h. A tokenizer that skips CFWS, and a
   recursive-descent parser (two levels at most: list, group) over its tokens.
   A phrase is read once to find what follows it; when it turns out to be a local
   part it is read again from its start to build the local-part strings. */
#include "lib/rfc5322_addr.h"
#include "lib/addr.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum tok_kind { TOK_END, TOK_ATOM, TOK_QSTRING, TOK_DLITERAL, TOK_SPECIAL };

struct tok {
    enum tok_kind kind;
    size_t start, end;     /* s[start..end) is the token as written */
    char ch;               /* for TOK_SPECIAL */
};

struct parser {
    const unsigned char *s;
    size_t len, pos;
    unsigned flags;
    struct rfc5322_mailbox *out;
    size_t cap;
    struct rfc5322_list *list;
    struct rfc5322_error *err;
};

static int fail(struct parser *p, size_t pos, const char *reason)
{
    p->err->pos = pos;
    p->err->reason = reason;
    return -1;
}

static bool is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* obs-NO-WS-CTL (§4.1): control characters other than NUL, CR, LF, HTAB. */
static bool is_obs_ctl(unsigned char c)
{
    return (c >= 1 && c <= 8) || c == 11 || c == 12 || (c >= 14 && c <= 31) || c == 127;
}

/* Octets of the well-formed UTF-8 sequence at p->s[i] when UTF-8 is allowed, else 0. */
static size_t utf8_at(const struct parser *p, size_t i)
{
    unsigned char c = p->s[i];
    size_t n;
    if (!(p->flags & RFC5322_UTF8) || c < 0xc2)
        return 0;
    n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
    if (n == 0 || p->len - i < n || !addr_utf8_valid((const char *)p->s + i, n))
        return 0;
    return n;
}

/* FWS at p->pos: WSP, or a CRLF followed by WSP. Returns true if one was skipped. */
static bool skip_fws(struct parser *p)
{
    bool any = false;
    for (;;) {
        if (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')) {
            p->pos++;
            any = true;
        } else if (p->len - p->pos >= 3 && p->s[p->pos] == '\r' && p->s[p->pos + 1] == '\n' &&
                   (p->s[p->pos + 2] == ' ' || p->s[p->pos + 2] == '\t')) {
            p->pos += 3;
            any = true;
        } else {
            return any;
        }
    }
}

/* A quoted-pair at p->pos ('\\' then one octet, or a UTF-8 sequence). */
static int quoted_pair(struct parser *p)
{
    size_t at = p->pos;
    if (p->pos + 1 >= p->len)
        return fail(p, at, "a backslash ends the value");
    /* obs-qp allows a quoted NUL; refused, as the results are C strings */
    if (p->s[p->pos + 1] == '\0')
        return fail(p, at + 1, "a NUL octet is not allowed, even quoted");
    size_t n = p->s[p->pos + 1] >= 0x80 ? utf8_at(p, p->pos + 1) : 1;
    if (n == 0)
        return fail(p, at + 1, "an 8-bit octet is not allowed here (not well-formed UTF-8, "
                               "or UTF-8 not allowed)");
    p->pos += 1 + n;
    return 0;
}

/* One text octet (or UTF-8 sequence) of a comment, quoted string or literal. */
static int text_octet(struct parser *p, bool (*allowed)(unsigned char))
{
    unsigned char c = p->s[p->pos];
    if (c >= 0x80) {
        size_t n = utf8_at(p, p->pos);
        if (n == 0)
            return fail(p, p->pos, "an 8-bit octet is not allowed here (not well-formed "
                                   "UTF-8, or UTF-8 not allowed)");
        p->pos += n;
        return 0;
    }
    if (!allowed(c) && !is_obs_ctl(c))
        return fail(p, p->pos, c == '\r' || c == '\n' ? "a CR or LF that is not folding"
                                                      : "a character not allowed here");
    p->pos++;
    return 0;
}

static bool is_ctext(unsigned char c)
{
    return (c >= 33 && c <= 39) || (c >= 42 && c <= 91) || (c >= 93 && c <= 126);
}

static bool is_qtext(unsigned char c)
{
    return c == 33 || (c >= 35 && c <= 91) || (c >= 93 && c <= 126);
}

static bool is_dtext(unsigned char c)
{
    return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

/* A comment at p->pos ('('), nested comments included. */
static int comment(struct parser *p)
{
    size_t open_at[RFC5322_COMMENT_DEPTH_MAX];
    size_t depth = 0;
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c == '(') {
            if (depth == RFC5322_COMMENT_DEPTH_MAX)
                return fail(p, p->pos, "comments are nested too deeply");
            open_at[depth++] = p->pos++;
        } else if (c == ')') {
            p->pos++;
            if (--depth == 0)
                return 0;
        } else if (c == '\\') {
            if (quoted_pair(p) < 0)
                return -1;
        } else if (!skip_fws(p)) {
            if (text_octet(p, is_ctext) < 0)
                return -1;
        }
    }
    return fail(p, open_at[0], "a comment is not closed with ')'");
}

static int skip_cfws(struct parser *p)
{
    for (;;) {
        skip_fws(p);
        if (p->pos < p->len && p->s[p->pos] == '(') {
            if (comment(p) < 0)
                return -1;
        } else {
            return 0;
        }
    }
}

/* The next token after CFWS; p->pos moves past it. */
static int next(struct parser *p, struct tok *t)
{
    if (skip_cfws(p) < 0)
        return -1;
    t->start = p->pos;
    t->ch = 0;
    if (p->pos >= p->len) {
        t->kind = TOK_END;
        t->end = p->pos;
        return 0;
    }
    unsigned char c = p->s[p->pos];
    if (c == '"' || c == '[') {
        unsigned char close = c == '"' ? '"' : ']';
        bool (*allowed)(unsigned char) = c == '"' ? is_qtext : is_dtext;
        t->kind = c == '"' ? TOK_QSTRING : TOK_DLITERAL;
        p->pos++;
        for (;;) {
            if (p->pos >= p->len)
                return fail(p, t->start, c == '"' ? "a quoted string is not closed"
                                                  : "a domain literal is not closed with ']'");
            unsigned char d = p->s[p->pos];
            if (d == close) {
                p->pos++;
                break;
            }
            if (d == '\\') {
                if (quoted_pair(p) < 0)
                    return -1;
            } else if (!skip_fws(p) && text_octet(p, allowed) < 0) {
                return -1;
            }
        }
    } else if (is_atext(c) || c >= 0x80) {
        t->kind = TOK_ATOM;
        while (p->pos < p->len) {
            unsigned char d = p->s[p->pos];
            if (is_atext(d)) {
                p->pos++;
            } else if (d >= 0x80) {
                size_t n = utf8_at(p, p->pos);
                if (n == 0)
                    return fail(p, p->pos, "an 8-bit octet is not allowed here (not "
                                           "well-formed UTF-8, or UTF-8 not allowed)");
                p->pos += n;
            } else {
                break;
            }
        }
    } else if (c && strchr("<>:;@,.", c)) {
        t->kind = TOK_SPECIAL;
        t->ch = (char)c;
        p->pos++;
    } else {
        return fail(p, p->pos, c == ')' ? "a ')' without its '('"
                               : c == ']' ? "a ']' without its '['"
                               : c == '\\' ? "a backslash outside quotes or comments"
                                           : "a character not allowed in an address");
    }
    t->end = p->pos;
    return 0;
}

static int peek(struct parser *p, struct tok *t)
{
    size_t save = p->pos;
    int r = next(p, t);
    p->pos = save;
    return r;
}

static bool is_special(const struct tok *t, char c)
{
    return t->kind == TOK_SPECIAL && t->ch == c;
}

static bool is_word(const struct tok *t)
{
    return t->kind == TOK_ATOM || t->kind == TOK_QSTRING;
}

/* Append s[a..b) to dst (size max+1) at *n; false when it does not fit. */
static bool put(char *dst, size_t *n, size_t max, const unsigned char *src, size_t len)
{
    if (len > max - *n)
        return false;
    memcpy(dst + *n, src, len);
    *n += len;
    dst[*n] = '\0';
    return true;
}

/* The content of a quoted string token, quoted-pairs resolved, folding CRLFs dropped. */
static bool put_unquoted(char *dst, size_t *n, size_t max, const unsigned char *s,
                         const struct tok *t)
{
    for (size_t i = t->start + 1; i + 1 < t->end; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '\r' || s[i] == '\n')
            continue;
        if (!put(dst, n, max, s + i, 1))
            return false;
    }
    return true;
}

/*
 * Read the local part starting at p->pos, up to (not including) the '@':
 * word *("." word) with CFWS allowed around the dots (obs-local-part).
 */
static int local_part(struct parser *p, struct rfc5322_mailbox *m)
{
    size_t nraw = 0, nun = 0;
    bool want_word = true;
    struct tok t;
    m->local[0] = m->local_raw[0] = '\0';
    for (;;) {
        if (peek(p, &t) < 0)
            return -1;
        if (is_special(&t, '@')) {
            if (want_word)
                return fail(p, t.start, nraw ? "a local part ends with '.'"
                                             : "an address has an empty local part");
            return 0;
        }
        if (want_word ? !is_word(&t) : !is_special(&t, '.')) {
            if (is_word(&t))
                return fail(p, t.start, "words of a local part must be separated by '.'");
            if (t.kind == TOK_END)
                return fail(p, t.start, "an address ends before its '@' and domain");
            if (is_special(&t, '.'))
                return fail(p, t.start, "a local part has an empty word ('..' or a leading '.')");
            if (want_word && nraw)
                return fail(p, t.start, "a local part ends with '.'");
            if (nraw == 0)
                return fail(p, t.start, "an address has an empty local part");
            return fail(p, t.start, "a local part must be followed by '@' and a domain");
        }
        next(p, &t);
        if (!put(m->local_raw, &nraw, RFC5322_LOCAL_MAX, p->s + t.start, t.end - t.start))
            return fail(p, t.start, "a local part is longer than 256 octets");
        bool ok = t.kind == TOK_QSTRING
                      ? put_unquoted(m->local, &nun, RFC5322_LOCAL_MAX, p->s, &t)
                      : put(m->local, &nun, RFC5322_LOCAL_MAX, p->s + t.start, t.end - t.start);
        if (!ok)
            return fail(p, t.start, "a local part is longer than 256 octets");
        want_word = !want_word;
    }
}

/* A domain: dot-atom / obs-domain (CFWS around dots) / domain-literal. m may be NULL. */
static int domain(struct parser *p, struct rfc5322_mailbox *m)
{
    char scratch[RFC5322_DOMAIN_MAX + 1];
    char *dst = m ? m->domain : scratch;
    size_t n = 0;
    struct tok t;
    if (next(p, &t) < 0)
        return -1;
    if (t.kind == TOK_DLITERAL) {
        if (!put(dst, &n, RFC5322_DOMAIN_MAX, p->s + t.start, t.end - t.start))
            return fail(p, t.start, "a domain is longer than 255 octets");
        if (m)
            m->domain_literal = true;
    } else {
        for (;;) {
            if (t.kind != TOK_ATOM)
                return fail(p, t.start, n ? "a domain ends with '.' or has an empty label"
                                          : "a domain is missing after '@'");
            if (!put(dst, &n, RFC5322_DOMAIN_MAX, p->s + t.start, t.end - t.start))
                return fail(p, t.start, "a domain is longer than 255 octets");
            if (peek(p, &t) < 0)
                return -1;
            if (!is_special(&t, '.'))
                break;
            next(p, &t);
            if (!put(dst, &n, RFC5322_DOMAIN_MAX, (const unsigned char *)".", 1))
                return fail(p, t.start, "a domain is longer than 255 octets");
            if (next(p, &t) < 0)
                return -1;
        }
    }
    if (m) {
        for (size_t i = 0; i <= n; i++) {
            char c = dst[i];
            m->domain_lower[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
    }
    return 0;
}

/* addr-spec from p->pos: local-part "@" domain. */
static int addr_spec(struct parser *p, struct rfc5322_mailbox *m)
{
    struct tok t;
    if (local_part(p, m) < 0)
        return -1;
    next(p, &t);    /* the '@' local_part stopped at */
    return domain(p, m);
}

/* After '<': [obs-route] addr-spec ">" */
static int angle_addr(struct parser *p, struct rfc5322_mailbox *m, size_t open_at)
{
    struct tok t;
    if (peek(p, &t) < 0)
        return -1;
    if (is_special(&t, '>'))
        return fail(p, t.start, "an angle address is empty ('<>')");
    if (is_special(&t, '@') || is_special(&t, ',')) {
        bool hops = false;
        for (;;) {
            if (next(p, &t) < 0)
                return -1;
            if (is_special(&t, ',')) {
                continue;
            } else if (is_special(&t, '@')) {
                if (domain(p, NULL) < 0)
                    return -1;
                hops = true;
            } else if (is_special(&t, ':') && hops) {
                break;
            } else {
                return fail(p, t.start, "a source route is not of the form "
                                        "'@domain,@domain:'");
            }
        }
    }
    if (addr_spec(p, m) < 0)
        return -1;
    if (next(p, &t) < 0)
        return -1;
    if (!is_special(&t, '>'))
        return fail(p, t.kind == TOK_END ? open_at : t.start,
                    "an angle address is not closed with '>'");
    return 0;
}

/* Where the next mailbox goes: out[count] while there is room, else a scratch one. */
static struct rfc5322_mailbox *slot(struct parser *p, struct rfc5322_mailbox *scratch)
{
    struct rfc5322_mailbox *m = p->list->count < p->cap ? &p->out[p->list->count] : scratch;
    memset(m, 0, sizeof *m);
    return m;
}

static void stored(struct parser *p, struct rfc5322_mailbox *m, size_t at, bool member)
{
    m->pos = at;
    m->is_group_member = member;
    m->group = member ? p->list->groups - 1 : 0;
    if (p->list->count < SIZE_MAX)
        p->list->count++;
}

static int group_list(struct parser *p, size_t group_at);

/* One address (mailbox, or group when !in_group); stops before the ',' that follows. */
static int address(struct parser *p, bool in_group)
{
    struct rfc5322_mailbox scratch;
    struct tok t, first;
    size_t words = 0, phrase_end = 0;
    if (peek(p, &first) < 0)
        return -1;
    size_t at = first.start, phrase_pos = p->pos;
    /* the phrase (display name, group name or local part): words and dots */
    for (;;) {
        if (peek(p, &t) < 0)
            return -1;
        if (!is_word(&t) && !is_special(&t, '.'))
            break;
        next(p, &t);
        words++;
        phrase_end = t.end;
    }
    if (is_special(&t, '@')) {
        struct rfc5322_mailbox *m = slot(p, &scratch);
        p->pos = phrase_pos;
        if (addr_spec(p, m) < 0)
            return -1;
        stored(p, m, at, in_group);
        return 0;
    }
    if (words > 0 && !is_word(&first))
        return fail(p, first.start, "a display name starts with '.'");
    if (is_special(&t, '<')) {
        struct rfc5322_mailbox *m = slot(p, &scratch);
        next(p, &t);
        if (words > 0) {
            size_t n = phrase_end - at;
            if (n > RFC5322_DISPLAY_MAX) {
                n = RFC5322_DISPLAY_MAX;
                m->display_truncated = true;
            }
            memcpy(m->display, p->s + at, n);
            m->display[n] = '\0';
        }
        if (angle_addr(p, m, t.start) < 0)
            return -1;
        stored(p, m, at, in_group);
        return 0;
    }
    if (is_special(&t, ':') && words > 0) {
        if (in_group)
            return fail(p, t.start, "a group is inside another group");
        if (p->flags & RFC5322_NO_GROUPS)
            return fail(p, t.start, "a group is not allowed in this field");
        next(p, &t);
        if (p->list->groups < SIZE_MAX)
            p->list->groups++;
        return group_list(p, at);
    }
    if (words > 0)
        return fail(p, at, "an address has no '@' and domain");
    return fail(p, t.start, t.kind == TOK_END ? "an address is missing" : "an address is expected");
}

/* After "name:": [mailbox-list / CFWS / obs-group-list] ";" */
static int group_list(struct parser *p, size_t group_at)
{
    struct tok t;
    for (;;) {
        if (peek(p, &t) < 0)
            return -1;
        if (is_special(&t, ';')) {
            next(p, &t);
            return 0;
        }
        if (t.kind == TOK_END)
            return fail(p, group_at, "a group is not closed with ';'");
        if (is_special(&t, ',')) {
            next(p, &t);
            continue;
        }
        if (address(p, true) < 0)
            return -1;
        if (peek(p, &t) < 0)
            return -1;
        if (!is_special(&t, ',') && !is_special(&t, ';'))
            return fail(p, t.kind == TOK_END ? group_at : t.start,
                        t.kind == TOK_END ? "a group is not closed with ';'"
                                                      : "addresses in a group must be "
                                                        "separated by ','");
    }
}

int rfc5322_parse_address_list(const char *s, size_t len, unsigned flags,
                               struct rfc5322_mailbox *out, size_t cap,
                               struct rfc5322_list *list, struct rfc5322_error *err)
{
    struct parser p = {
        .s = (const unsigned char *)s, .len = len, .flags = flags,
        .out = out, .cap = out ? cap : 0, .list = list, .err = err,
    };
    struct tok t;
    size_t addresses = 0;
    list->count = list->groups = 0;
    err->pos = 0;
    err->reason = NULL;
    for (;;) {
        if (next(&p, &t) < 0)
            return -1;
        if (t.kind == TOK_END)
            break;
        if (is_special(&t, ','))
            continue;    /* an empty list element (obs-addr-list) */
        p.pos = t.start;
        if (address(&p, false) < 0)
            return -1;
        addresses++;
        if (peek(&p, &t) < 0)
            return -1;
        if (t.kind != TOK_END && !is_special(&t, ','))
            return fail(&p, t.start, "addresses must be separated by ','");
    }
    if (addresses == 0)
        return fail(&p, len, "the address list is empty");
    return 0;
}

enum rfc5322_from_result rfc5322_from_domain(const char *value, size_t len, unsigned flags,
                                             char *out, size_t outsz,
                                             struct rfc5322_error *err)
{
    struct rfc5322_mailbox boxes[2];
    struct rfc5322_list list;
    if (outsz)
        out[0] = '\0';
    if (rfc5322_parse_address_list(value, len, flags & ~(unsigned)RFC5322_NO_GROUPS, boxes, 2,
                                   &list, err) < 0)
        return RFC5322_FROM_SYNTAX;
    if (list.count == 0) {
        err->pos = 0;
        err->reason = "the From: value holds no mailbox (only an empty group)";
        return RFC5322_FROM_NONE;
    }
    if (list.count > 1) {
        err->pos = boxes[1].pos;
        err->reason = "the From: value holds more than one mailbox";
        return RFC5322_FROM_SEVERAL;
    }
    if (boxes[0].domain_literal) {
        err->pos = boxes[0].pos;
        err->reason = "the From: mailbox has a domain literal, not a domain name";
        return RFC5322_FROM_LITERAL;
    }
    if (strlen(boxes[0].domain_lower) >= outsz) {
        err->pos = boxes[0].pos;
        err->reason = "the From: domain does not fit the caller's buffer";
        return RFC5322_FROM_SYNTAX;
    }
    memcpy(out, boxes[0].domain_lower, strlen(boxes[0].domain_lower) + 1);
    return RFC5322_FROM_OK;
}

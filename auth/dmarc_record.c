/*
 * dmarc_record — RFC 9989 §4.7/§4.8 record syntax. The record is split at ';'
 * (dmarc-value cannot hold one), each tag checked by a table row; the §4.10.1
 * fallback for bad policies is decided once every tag has been read, because it
 * depends on whether rua= held a usable URI.
 */
#include "auth/dmarc_record.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *dmarc_policy_name(enum dmarc_policy p)
{
    switch (p) {
    case DMARC_P_NONE: return "none";
    case DMARC_P_QUARANTINE: return "quarantine";
    case DMARC_P_REJECT: return "reject";
    }
    return "none";
}

void dmarc_fo_text(unsigned fo, char *out, size_t outsz)
{
    static const struct { unsigned bit; const char *name; } names[] = {
        {DMARC_FO_0, "0"}, {DMARC_FO_1, "1"}, {DMARC_FO_D, "d"}, {DMARC_FO_S, "s"}};
    size_t n = 0;
    if (outsz == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(fo & names[i].bit))
            continue;
        int w = snprintf(out + n, outsz - n, "%s%s", n ? ":" : "", names[i].name);
        if (w < 0 || (size_t)w >= outsz - n)
            return;
        n += (size_t)w;
    }
}

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

struct span { const char *s; size_t n; };

static struct span trim(const char *s, size_t n)
{
    while (n && is_wsp(*s))
        s++, n--;
    while (n && is_wsp(s[n - 1]))
        n--;
    return (struct span){s, n};
}

static bool span_is(struct span v, const char *word)
{
    return v.n == strlen(word) && !strncasecmp(v.s, word, v.n);
}

static void note(struct dmarc_record *r, const char *fmt, struct span a)
{
    size_t used = strlen(r->notes);
    if (used + 4 >= sizeof r->notes)
        return;
    char one[160];
    snprintf(one, sizeof one, fmt, (int)(a.n > 60 ? 60 : a.n), a.s);
    snprintf(r->notes + used, sizeof r->notes - used, "%s%s", used ? "; " : "", one);
}

/* "v" equals "DMARC1" at the start; returns the octets it covers, 0 when absent. */
static size_t version_len(const char *t, size_t len)
{
    size_t i = 0;
    while (i < len && is_wsp(t[i]))
        i++;
    if (i >= len || t[i] != 'v')
        return 0;
    i++;
    while (i < len && is_wsp(t[i]))
        i++;
    if (i >= len || t[i] != '=')
        return 0;
    i++;
    while (i < len && is_wsp(t[i]))
        i++;
    if (len - i < 6 || memcmp(t + i, "DMARC1", 6))
        return 0;
    i += 6;
    size_t j = i;
    while (j < len && is_wsp(t[j]))
        j++;
    return j == len || t[j] == ';' ? i : 0;
}

bool dmarc_record_is_dmarc(const char *txt, size_t len)
{
    return len <= DMARC_RECORD_MAX && version_len(txt, len) > 0;
}

static int parse_request(struct span v, enum dmarc_policy *p)
{
    if (span_is(v, "none"))
        *p = DMARC_P_NONE;
    else if (span_is(v, "quarantine"))
        *p = DMARC_P_QUARANTINE;
    else if (span_is(v, "reject"))
        *p = DMARC_P_REJECT;
    else
        return -1;
    return 0;
}

/* URI = scheme ":" hier-part...: the octets RFC 3986 allows, with ',' and '!' excluded
   (§4.8: they must be percent-encoded). */
static bool uri_ok(const char *s, size_t n)
{
    if (n == 0 || !is_alpha(s[0]))
        return false;
    size_t i = 1;
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'))
        i++;
    if (i >= n || s[i] != ':' || i + 1 >= n)
        return false;
    for (i++; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
        } else if (!(is_alpha(c) || is_digit(c) || strchr("-._~$&'()*+;=:@/?#[]", c))) {
            return false;
        }
    }
    return true;
}

/* One list element: URI ["!" 1*DIGIT [k/m/g/t]]. */
static int parse_uri(struct span e, struct dmarc_uri *u)
{
    const char *bang = memchr(e.s, '!', e.n);
    size_t ulen = bang ? (size_t)(bang - e.s) : e.n;
    if (!uri_ok(e.s, ulen) || ulen > DMARC_URI_LEN)
        return -1;
    uint64_t limit = 0;
    if (bang) {
        size_t i = ulen + 1;
        if (i >= e.n || !is_digit(e.s[i]))
            return -1;
        for (; i < e.n && is_digit(e.s[i]); i++) {
            unsigned d = (unsigned)(e.s[i] - '0');
            limit = limit > (UINT64_MAX - d) / 10 ? UINT64_MAX : limit * 10 + d;
        }
        if (i < e.n) {
            const char *units = "kmgt";
            const char *k = strchr(units, e.s[i] | 0x20);
            if (!k || !*k || i + 1 != e.n)
                return -1;
            for (long m = k - units + 1; m > 0; m--)
                limit = limit > UINT64_MAX / 1024 ? UINT64_MAX : limit * 1024;
        }
    }
    memcpy(u->uri, e.s, ulen);
    u->uri[ulen] = '\0';
    u->limit = limit;
    return 0;
}

static void parse_urilist(struct dmarc_record *r, struct span v, struct dmarc_uri *list, size_t *n,
                          const char *tag)
{
    const char *p = v.s, *end = v.s + v.n;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        struct span e = trim(p, (size_t)(stop - p));
        struct dmarc_uri u;
        if (parse_uri(e, &u) < 0) {
            char what[64];
            snprintf(what, sizeof what, "%s= URI \"%%.*s\" is not valid, ignored", tag);
            note(r, what, e);
        } else if (*n >= DMARC_URI_MAX) {
            char what[64];
            snprintf(what, sizeof what, "%s= URI \"%%.*s\" beyond the first %d, ignored", tag, DMARC_URI_MAX);
            note(r, what, e);
        } else {
            list[(*n)++] = u;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
}

/* fo = ("0"/"1") *(":" afrf) / ...: colon-separated 0, 1, d, s; 0 and 1 exclusive,
   each at most once, at least one of 0/1 or an afrf. */
static int parse_fo(struct span v, unsigned *fo)
{
    unsigned bits = 0;
    const char *p = v.s, *end = v.s + v.n;
    for (;;) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        struct span t = trim(p, (size_t)((colon ? colon : end) - p));
        unsigned b;
        if (span_is(t, "0")) b = DMARC_FO_0;
        else if (span_is(t, "1")) b = DMARC_FO_1;
        else if (span_is(t, "d")) b = DMARC_FO_D;
        else if (span_is(t, "s")) b = DMARC_FO_S;
        else return -1;
        if (bits & b)
            return -1;
        bits |= b;
        if (!colon)
            break;
        p = colon + 1;
    }
    if ((bits & DMARC_FO_0) && (bits & DMARC_FO_1))
        return -1;
    *fo = bits;
    return 0;
}

enum tag_id { T_P, T_SP, T_NP, T_T, T_PSD, T_ADKIM, T_ASPF, T_RUA, T_RUF, T_FO, T_OLD, T_COUNT };

static const struct { const char *name; enum tag_id id; } tags[] = {
    {"p", T_P}, {"sp", T_SP}, {"np", T_NP}, {"t", T_T}, {"psd", T_PSD}, {"adkim", T_ADKIM},
    {"aspf", T_ASPF}, {"rua", T_RUA}, {"ruf", T_RUF}, {"fo", T_FO},
    {"pct", T_OLD}, {"rf", T_OLD}, {"ri", T_OLD}};

/* Applies one tag's value; -1 when the value does not match its rule. */
static int apply(struct dmarc_record *r, enum tag_id id, struct span v, bool *bad_policy, unsigned *fo)
{
    enum dmarc_policy pol;
    switch (id) {
    case T_P:
    case T_SP:
    case T_NP:
        if (parse_request(v, &pol) < 0) {
            *bad_policy = true;
            return -1;
        }
        if (id == T_P) r->p = pol, r->has_p = true;
        if (id == T_SP) r->sp = pol, r->has_sp = true;
        if (id == T_NP) r->np = pol, r->has_np = true;
        return 0;
    case T_T:
        if (!span_is(v, "y") && !span_is(v, "n"))
            return -1;
        r->testing = span_is(v, "y");
        return 0;
    case T_PSD:
        if (span_is(v, "y")) r->psd = DMARC_PSD_Y;
        else if (span_is(v, "n")) r->psd = DMARC_PSD_N;
        else if (span_is(v, "u")) r->psd = DMARC_PSD_U;
        else return -1;
        return 0;
    case T_ADKIM:
    case T_ASPF: {
        enum dmarc_align a;
        if (span_is(v, "r")) a = DMARC_ALIGN_RELAXED;
        else if (span_is(v, "s")) a = DMARC_ALIGN_STRICT;
        else return -1;
        *(id == T_ADKIM ? &r->adkim : &r->aspf) = a;
        return 0;
    }
    case T_RUA:
        parse_urilist(r, v, r->rua, &r->nrua, "rua");
        return 0;
    case T_RUF:
        parse_urilist(r, v, r->ruf, &r->nruf, "ruf");
        return 0;
    case T_FO:
        return parse_fo(v, fo);
    case T_OLD:
    case T_COUNT:
        return 0;
    }
    return 0;
}

static void set_defaults(struct dmarc_record *r)
{
    memset(r, 0, sizeof *r);
    r->policy_state = DMARC_POLICY_OK;
    r->p = r->sp = r->np = DMARC_P_NONE;
    r->psd = DMARC_PSD_U;
    r->adkim = r->aspf = DMARC_ALIGN_RELAXED;
    r->fo = DMARC_FO_0;
}

/* 1*ALPHA equals 1*dmarc-value, already cut at ';' and trimmed. */
static void parse_tag(struct dmarc_record *r, struct span t, bool seen[T_COUNT], bool *bad_policy,
                      unsigned *fo, bool *has_fo)
{
    size_t i = 0;
    while (i < t.n && is_alpha(t.s[i]))
        i++;
    struct span name = {t.s, i};
    while (i < t.n && is_wsp(t.s[i]))
        i++;
    if (name.n == 0 || i >= t.n || t.s[i] != '=') {
        note(r, "\"%.*s\" is not a tag=value pair, ignored", t);
        return;
    }
    struct span v = trim(t.s + i + 1, t.n - i - 1);
    bool printable = v.n > 0;
    for (size_t k = 0; k < v.n; k++)
        printable = printable && (unsigned char)v.s[k] >= 0x20 && (unsigned char)v.s[k] <= 0x7e;
    for (size_t k = 0; k < sizeof tags / sizeof tags[0]; k++) {
        if (!span_is(name, tags[k].name))
            continue;
        enum tag_id id = tags[k].id;
        if (id == T_OLD) {
            note(r, "%.*s= is historic (RFC 9989 A.6), ignored", name);
            return;
        }
        if (seen[id]) {
            note(r, "%.*s= repeated, the first one is used", name);
            return;
        }
        seen[id] = true;
        if (!printable || apply(r, id, v, bad_policy, fo) < 0) {
            if (id == T_P || id == T_SP || id == T_NP)
                *bad_policy = true;
            note(r, "\"%.*s\" has an invalid value", t);
        } else if (id == T_FO) {
            *has_fo = true;
        }
        return;
    }
    note(r, "unknown tag %.*s= ignored", name);
}

enum dmarc_record_status dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *r)
{
    set_defaults(r);
    size_t vlen = len <= DMARC_RECORD_MAX ? version_len(txt, len) : 0;
    if (!vlen)
        return DMARC_REC_NOT_DMARC;
    bool seen[T_COUNT] = {false};
    bool bad_policy = false, has_fo = false;
    unsigned fo = DMARC_FO_0;
    const char *p = txt + vlen, *end = txt + len;
    while (p < end) {
        if (*p == ';' || is_wsp(*p)) {
            p++;
            continue;
        }
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        parse_tag(r, trim(p, (size_t)(stop - p)), seen, &bad_policy, &fo, &has_fo);
        p = stop;
    }
    /* §4.7: sp defaults to p, np to sp (or p). */
    if (!r->has_sp)
        r->sp = r->p;
    if (!r->has_np)
        r->np = r->sp;
    if (has_fo) {
        if (r->nruf)
            r->fo = fo;
        else
            note(r, "fo= without ruf=, ignored%.*s", (struct span){"", 0});
    }
    if (bad_policy) {
        r->policy_state = r->nrua ? DMARC_POLICY_FORCED_NONE : DMARC_POLICY_UNUSABLE;
        r->p = r->sp = r->np = DMARC_P_NONE;
        r->has_p = r->has_sp = r->has_np = false;
    }
    return DMARC_REC_OK;
}

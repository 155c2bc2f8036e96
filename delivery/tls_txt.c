/* tls_txt — the _mta-sts and _smtp._tls TXT records; see tls_txt.h. */
#include "delivery/tls_txt.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define TAG_NAME_MAX 32

struct tag {
    char name[TAG_NAME_MAX + 1];
    const char *value;
    size_t value_len;
};

static bool is_wsp(char c) { return c == ' ' || c == '\t'; }
static bool is_alnum(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* The next tag of s[*pos..len), the fields being separated by *WSP ";" *WSP.
   1 a tag, 0 the end, -1 a syntax error (err set). Name: (ALPHA / DIGIT)
   *31(ALPHA / DIGIT / "_" / "-" / "."), directly followed by "=". The value runs to
   the next ";" less trailing WSP and is checked by the caller. */
static int next_tag(const char *s, size_t len, size_t *pos, struct tag *t, char *err, size_t errlen)
{
    size_t i = *pos;
    while (i < len && is_wsp(s[i]))
        i++;
    if (i == len)
        return 0;
    size_t n = 0;
    while (i < len && (is_alnum((unsigned char)s[i]) || (n > 0 && (s[i] == '_' || s[i] == '-' || s[i] == '.')))) {
        if (n == TAG_NAME_MAX) {
            snprintf(err, errlen, "tag name longer than %d characters", TAG_NAME_MAX);
            return -1;
        }
        t->name[n++] = s[i++];
    }
    t->name[n] = '\0';
    if (n == 0 || i == len || s[i] != '=') {
        snprintf(err, errlen, "malformed tag at offset %zu", *pos);
        return -1;
    }
    i++;
    size_t v = i;
    while (i < len && s[i] != ';')
        i++;
    size_t e = i;
    while (e > v && is_wsp(s[e - 1]))
        e--;
    if (e == v) {
        snprintf(err, errlen, "tag %s has an empty value", t->name);
        return -1;
    }
    t->value = s + v;
    t->value_len = e - v;
    if (i < len) {
        i++;    /* the ';'; only WSP may follow it at the end */
        size_t k = i;
        while (k < len && is_wsp(s[k]))
            k++;
        if (k < len && s[k] == ';') {
            snprintf(err, errlen, "empty field at offset %zu", k);
            return -1;
        }
    }
    *pos = i;
    return 1;
}

/* ext-value: 1*(%x21-3A / %x3C / %x3E-7E), i.e. visible ASCII but "=" and ";". */
static bool ext_value_ok(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x21 || c > 0x7e || c == '=' || c == ';')
            return false;
    }
    return n > 0;
}

static bool tag_is(const struct tag *t, const char *name, const char *value)
{
    return strcmp(t->name, name) == 0 && t->value_len == strlen(value) && memcmp(t->value, value, t->value_len) == 0;
}

/* The version tag first, then at least one more field. The tags after it go to
   each_tag; rc as next_tag's error. */
typedef int (*tag_fn)(const struct tag *t, void *ctx, char *err, size_t errlen);

static int walk(const char *rec, size_t len, const char *version, tag_fn each_tag, void *ctx, char *err,
                size_t errlen)
{
    if (len > TLS_TXT_MAX) {
        snprintf(err, errlen, "record longer than %d octets", TLS_TXT_MAX);
        return -1;
    }
    if (memchr(rec, '\0', len)) {
        snprintf(err, errlen, "record contains a NUL octet");
        return -1;
    }
    size_t pos = 0;
    struct tag t;
    const char *eq = strchr(version, '=');
    char vname[8];
    snprintf(vname, sizeof vname, "%.*s", (int)(eq - version), version);
    /* the record must begin with the version tag: no leading WSP */
    if (len == 0 || is_wsp(rec[0]) || next_tag(rec, len, &pos, &t, err, errlen) != 1 || !tag_is(&t, vname, eq + 1)) {
        snprintf(err, errlen, "record does not begin with %s", version);
        return -1;
    }
    unsigned fields = 0;
    int r;
    while ((r = next_tag(rec, len, &pos, &t, err, errlen)) == 1) {
        fields++;
        if (each_tag(&t, ctx, err, errlen) < 0)
            return -1;
    }
    if (r < 0)
        return -1;
    if (fields == 0) {
        snprintf(err, errlen, "record has no field after %s", version);
        return -1;
    }
    return 0;
}

struct sts_ctx {
    char *id;
    bool have_id;
};

static int sts_tag(const struct tag *t, void *vctx, char *err, size_t errlen)
{
    struct sts_ctx *c = vctx;
    if (strcmp(t->name, "id") == 0) {
        if (t->value_len > STS_ID_MAX) {
            snprintf(err, errlen, "id longer than %d characters", STS_ID_MAX);
            return -1;
        }
        for (size_t i = 0; i < t->value_len; i++)
            if (!is_alnum((unsigned char)t->value[i])) {
                snprintf(err, errlen, "id has a character other than a letter or digit");
                return -1;
            }
        if (!c->have_id) {
            memcpy(c->id, t->value, t->value_len);
            c->id[t->value_len] = '\0';
            c->have_id = true;
        }
        return 0;
    }
    if (!ext_value_ok(t->value, t->value_len)) {
        snprintf(err, errlen, "tag %s has a malformed value", t->name);
        return -1;
    }
    return 0;
}

int sts_txt_parse(const char *rec, size_t len, char id[STS_ID_MAX + 1], char *err, size_t errlen)
{
    char got[STS_ID_MAX + 1];
    struct sts_ctx c = { got, false };
    if (walk(rec, len, "v=STSv1", sts_tag, &c, err, errlen) < 0)
        return -1;
    if (!c.have_id) {
        snprintf(err, errlen, "record has no id");
        return -1;
    }
    memcpy(id, got, sizeof got);
    return 0;
}

/* A mailto: address (RFC 6068 to-part, one address, %-escapes left as they are:
   a report address needs none), hfields after "?" dropped. */
static int mailto_addr(const char *u, size_t n, char *out, size_t outsz)
{
    const char *q = memchr(u, '?', n);
    if (q)
        n = (size_t)(q - u);
    const char *at = memchr(u, '@', n);
    if (!at || at == u || at == u + n - 1 || memchr(at + 1, '@', n - (size_t)(at + 1 - u)) || n >= outsz)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (u[i] == '%' || u[i] == '<' || u[i] == '>' || u[i] == '"' || u[i] == '\\')
            return -1;
    memcpy(out, u, n);
    out[n] = '\0';
    return 0;
}

struct rpt_ctx {
    struct tlsrpt_record *r;
    bool have_rua;
};

static int rua_uri(struct tlsrpt_record *r, const char *u, size_t n, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c > 0x7e || c == '!') {
            snprintf(err, errlen, "rua has a character not allowed in a URI");
            return -1;
        }
    }
    if (r->n == TLSRPT_RUA_MAX) {
        r->skipped++;
        return 0;
    }
    struct tlsrpt_rua *d = &r->rua[r->n];
    if (n > 7 && strncasecmp(u, "mailto:", 7) == 0) {
        if (mailto_addr(u + 7, n - 7, d->uri, sizeof d->uri) < 0) {
            snprintf(err, errlen, "rua has a malformed mailto: URI");
            return -1;
        }
        d->scheme = TLSRPT_MAILTO;
    } else if (n > 8 && strncasecmp(u, "https://", 8) == 0) {
        if (n >= sizeof d->uri) {
            r->skipped++;
            return 0;
        }
        memcpy(d->uri, u, n);
        d->uri[n] = '\0';
        d->scheme = TLSRPT_HTTPS;
    } else {
        r->skipped++;
        return 0;
    }
    r->n++;
    return 0;
}

static int rpt_tag(const struct tag *t, void *vctx, char *err, size_t errlen)
{
    struct rpt_ctx *c = vctx;
    if (strcmp(t->name, "rua") != 0) {
        if (!ext_value_ok(t->value, t->value_len)) {
            snprintf(err, errlen, "tag %s has a malformed value", t->name);
            return -1;
        }
        return 0;
    }
    if (c->have_rua)
        return 0;
    c->have_rua = true;
    /* tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri) */
    const char *v = t->value, *end = t->value + t->value_len;
    while (v < end) {
        const char *comma = memchr(v, ',', (size_t)(end - v));
        const char *e = comma ? comma : end;
        const char *ue = e;
        while (ue > v && is_wsp(ue[-1]))
            ue--;
        if (ue == v) {
            snprintf(err, errlen, "rua has an empty URI");
            return -1;
        }
        if (rua_uri(c->r, v, (size_t)(ue - v), err, errlen) < 0)
            return -1;
        if (!comma)
            break;
        v = comma + 1;
        while (v < end && is_wsp(*v))
            v++;
        if (v == end) {
            snprintf(err, errlen, "rua ends with a comma");
            return -1;
        }
    }
    return 0;
}

int tlsrpt_txt_parse(const char *rec, size_t len, struct tlsrpt_record *out, char *err, size_t errlen)
{
    struct tlsrpt_record r;
    memset(&r, 0, sizeof r);
    struct rpt_ctx c = { &r, false };
    if (walk(rec, len, "v=TLSRPTv1", rpt_tag, &c, err, errlen) < 0)
        return -1;
    if (!c.have_rua) {
        snprintf(err, errlen, "record has no rua");
        return -1;
    }
    if (r.n == 0) {
        snprintf(err, errlen, "rua has no mailto: or https: URI");
        return -1;
    }
    *out = r;
    return 0;
}

int tls_txt_select(const char *const *recs, const size_t *lens, size_t n, const char *version)
{
    size_t vl = strlen(version);
    int found = -1;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] < vl || memcmp(recs[i], version, vl) != 0)
            continue;
        if (lens[i] > vl && recs[i][vl] != ';' && !is_wsp(recs[i][vl]))
            continue;   /* "v=STSv10" is another version */
        if (found >= 0)
            return -1;
        found = (int)i;
    }
    return found;
}

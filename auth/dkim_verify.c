/* dkim_verify — RFC 6376 §6 verification, one state per DKIM-Signature field. */
#include "auth/dkim_verify.h"
#include "auth/dkim_canon.h"
#include "auth/dkim_key.h"
#include "auth/dkim_tags.h"
#include "lib/buf.h"
#include "lib/hdr_value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#define HNAMES_MAX   128           /* names in one h= */
#define SIG_B_MAX    (DKIM_RSA_MAX_BITS / 8)
#define HASH_IN_MAX  (2u << 20)    /* header hash input */

enum sig_state { SIG_PENDING, SIG_LOOKUP, SIG_DONE };

struct sig {
    struct dkim_verifier *v;
    struct dkim_sig_result r;
    enum sig_state state;
    size_t field;                  /* index in v->hdr */
    struct dkim_taglist tags;      /* points into v->copy */
    size_t value_off;              /* offset of the tag list within the field */
    enum dkim_algo algo;
    enum dkim_canon hcanon, bcanon;
    int64_t l;                     /* -1: no l= */
    unsigned char bh[32];
    unsigned char b[SIG_B_MAX];
    size_t blen;
    const char *hnames[HNAMES_MAX];
    size_t hlens[HNAMES_MAX];
    size_t nh;
    char qname[260];
    EVP_MD_CTX *md;
    struct dkim_body_canon body;
    void *dns;                     /* outstanding lookup */
};

struct dkim_verifier {
    struct dkim_verify_opts o;
    struct dkim_resolver res;
    char *copy;                    /* the header block */
    size_t copy_len;
    struct dkim_header *hdr;
    struct sig *sigs;
    size_t nsigs;
    struct dkim_sig_result *results;
    size_t pending;                /* lookups outstanding */
    bool finishing;
    dkim_verify_done done;
    void *done_arg;
    bool reported;
};

const char *dkim_result_name(enum dkim_result r)
{
    static const char *names[] = { "none", "pass", "fail", "neutral", "policy", "temperror", "permerror" };
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "neutral";
}

void dkim_verify_opts_init(struct dkim_verify_opts *o, int64_t now)
{
    memset(o, 0, sizeof *o);
    o->max_signatures = 8;
    o->l_policy = DKIM_L_ACCEPT;
    o->now = now;
    o->clock_skew = 300;
    o->max_header = 1u << 20;
}

static void verdict(struct sig *s, enum dkim_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void verdict(struct sig *s, enum dkim_result r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->r.reason, sizeof s->r.reason, fmt, ap);
    va_end(ap);
    s->r.result = r;
    s->state = SIG_DONE;
}

static void body_sink(void *arg, const unsigned char *p, size_t n)
{
    struct sig *s = arg;
    if (s->md)
        EVP_DigestUpdate(s->md, p, n);
}

struct dkim_verifier *dkim_verify_new(const struct dkim_verify_opts *o, const struct dkim_resolver *r)
{
    struct dkim_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->o = *o;
    if (v->o.max_signatures == 0)
        v->o.max_signatures = 1;
    if (v->o.max_header == 0)
        v->o.max_header = 1u << 20;
    v->res = *r;
    return v;
}

static bool is_digits(const char *p, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9')
            return false;
    return true;
}

static uint64_t to_u64(const char *p, size_t n)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (x > (UINT64_MAX - 9) / 10)
            return UINT64_MAX;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
    return x;
}

/* RFC 6376 §3.5 sub-domain syntax, loosely: letters, digits, '-', '_' and dots. */
static bool domainish(const char *s)
{
    if (!*s || *s == '.')
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || (c == '.' && p[1] != '.');
        if (!ok)
            return false;
    }
    return true;
}

/* Is sub equal to dom or a subdomain of it? */
static bool within(const char *sub, const char *dom, bool exact)
{
    size_t a = strlen(sub), b = strlen(dom);
    if (a == b)
        return !strcasecmp(sub, dom);
    if (exact || a < b + 1)
        return false;
    return sub[a - b - 1] == '.' && !strcasecmp(sub + a - b, dom);
}

static int split_h(struct sig *s, const struct dkim_tag *t)
{
    size_t i = 0, n = t->value_len;
    const char *p = t->value;
    s->nh = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && p[j] != ':')
            j++;
        size_t a = i, e = j;
        while (a < e && strchr(" \t\r\n", p[a])) a++;
        while (e > a && strchr(" \t\r\n", p[e - 1])) e--;
        if (a == e || s->nh == HNAMES_MAX)
            return -1;
        for (size_t k = a; k < e; k++)
            if ((unsigned char)p[k] <= 0x20 || (unsigned char)p[k] >= 0x7f)
                return -1;
        s->hnames[s->nh] = p + a;
        s->hlens[s->nh++] = e - a;
        i = j + 1;
    }
    return 0;
}

/* Parse and check one DKIM-Signature field (§6.1.1); leaves SIG_PENDING when it is
   worth a key lookup, SIG_DONE with a verdict otherwise. */
static void sig_parse(struct dkim_verifier *v, struct sig *s)
{
    const struct dkim_field *f = &v->hdr->fields[s->field];
    const char *colon = memchr(f->start, ':', f->len);
    s->value_off = (size_t)(colon - f->start) + 1;
    s->l = -1;
    char why[128], buf[256];
    if (dkim_tags_parse(f->start + s->value_off, f->len - s->value_off, &s->tags, why, sizeof why) < 0)
        return verdict(s, DKIM_RES_PERMERROR, "signature is malformed: %s", why);
    const struct dkim_taglist *tl = &s->tags;
    const struct dkim_tag *d = dkim_tags_get(tl, "d"), *sel = dkim_tags_get(tl, "s");
    const struct dkim_tag *b = dkim_tags_get(tl, "b");
    if (d && dkim_tag_copy(d, s->r.domain, sizeof s->r.domain, true) < 0)
        s->r.domain[0] = '\0';
    if (sel && dkim_tag_copy(sel, s->r.selector, sizeof s->r.selector, true) < 0)
        s->r.selector[0] = '\0';
    if (b) {
        size_t k = 0;
        for (size_t i = 0; i < b->value_len && k < 8; i++)
            if (!strchr(" \t\r\n", b->value[i]))
                s->r.b_prefix[k++] = b->value[i];
        s->r.b_prefix[k] = '\0';
    }
    static const char *required[] = { "v", "a", "b", "bh", "d", "h", "s" };
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!dkim_tags_get(tl, required[i]))
            return verdict(s, DKIM_RES_PERMERROR, "signature has no %s= tag", required[i]);
    const struct dkim_tag *t = dkim_tags_get(tl, "v");
    if (t->value_len != 1 || t->value[0] != '1')
        return verdict(s, DKIM_RES_PERMERROR, "signature version v=%.*s is not 1", (int)(t->value_len > 8 ? 8 : t->value_len), t->value);
    if (!domainish(s->r.domain))
        return verdict(s, DKIM_RES_PERMERROR, "signature's d= is not a domain name");
    if (!domainish(s->r.selector))
        return verdict(s, DKIM_RES_PERMERROR, "signature's s= is not a valid selector");
    if (snprintf(s->qname, sizeof s->qname, "%s._domainkey.%s", s->r.selector, s->r.domain) >= 254)
        return verdict(s, DKIM_RES_PERMERROR, "selector and domain make a name longer than 253 octets");
    t = dkim_tags_get(tl, "a");
    if (dkim_tag_copy(t, s->r.algo, sizeof s->r.algo, true) < 0 || dkim_algo_parse(s->r.algo, &s->algo) < 0)
        return verdict(s, DKIM_RES_PERMERROR, "signature algorithm a=%.*s is unknown", (int)(t->value_len > 20 ? 20 : t->value_len), t->value);
    if (s->algo == DKIM_ALGO_RSA_SHA1)
        return verdict(s, DKIM_RES_PERMERROR, "rsa-sha1 signatures are not accepted (RFC 8301)");
    s->hcanon = s->bcanon = DKIM_CANON_SIMPLE;
    if ((t = dkim_tags_get(tl, "c"))) {
        if (dkim_tag_copy(t, buf, sizeof buf, true) < 0)
            return verdict(s, DKIM_RES_PERMERROR, "signature's c= is too long");
        char *slash = strchr(buf, '/');
        if (slash)
            *slash++ = '\0';
        const char *parts[2] = { buf, slash };
        enum dkim_canon *dst[2] = { &s->hcanon, &s->bcanon };
        for (int i = 0; i < 2; i++) {
            if (!parts[i])
                continue;
            if (!strcmp(parts[i], "simple")) *dst[i] = DKIM_CANON_SIMPLE;
            else if (!strcmp(parts[i], "relaxed")) *dst[i] = DKIM_CANON_RELAXED;
            else return verdict(s, DKIM_RES_PERMERROR, "signature's canonicalisation c=%s is unknown", parts[i]);
        }
    }
    if ((t = dkim_tags_get(tl, "q"))) {
        if (dkim_tag_copy(t, buf, sizeof buf, true) < 0)
            return verdict(s, DKIM_RES_PERMERROR, "signature's q= is too long");
        bool dns = false;
        for (char *save = NULL, *w = strtok_r(buf, ":", &save); w; w = strtok_r(NULL, ":", &save))
            dns |= !strcmp(w, "dns/txt");
        if (!dns)
            return verdict(s, DKIM_RES_PERMERROR, "signature's q= does not offer dns/txt");
    }
    if (split_h(s, dkim_tags_get(tl, "h")) < 0)
        return verdict(s, DKIM_RES_PERMERROR, "signature's h= list is malformed");
    bool from = false;
    for (size_t i = 0; i < s->nh; i++)
        from |= s->hlens[i] == 4 && !strncasecmp(s->hnames[i], "from", 4);
    if (!from)
        return verdict(s, DKIM_RES_PERMERROR, "signature does not cover the From field");
    if ((t = dkim_tags_get(tl, "i"))) {
        if (dkim_tag_copy(t, s->r.identity, sizeof s->r.identity, true) < 0)
            return verdict(s, DKIM_RES_PERMERROR, "signature's i= is too long");
        const char *at = strrchr(s->r.identity, '@');
        if (!at || !within(at + 1, s->r.domain, false))
            return verdict(s, DKIM_RES_PERMERROR, "identity i=%s is not within d=%s", s->r.identity, s->r.domain);
    } else {
        snprintf(s->r.identity, sizeof s->r.identity, "@%s", s->r.domain);
    }
    if ((t = dkim_tags_get(tl, "l"))) {
        if (!is_digits(t->value, t->value_len, 76))
            return verdict(s, DKIM_RES_PERMERROR, "signature's l= is not a number");
        uint64_t l = to_u64(t->value, t->value_len);
        s->l = l > INT64_MAX ? INT64_MAX : (int64_t)l;
    }
    int64_t ts = -1, tx = -1;
    if ((t = dkim_tags_get(tl, "t"))) {
        if (!is_digits(t->value, t->value_len, 12))
            return verdict(s, DKIM_RES_PERMERROR, "signature's t= is not a timestamp");
        ts = (int64_t)to_u64(t->value, t->value_len);
    }
    if ((t = dkim_tags_get(tl, "x"))) {
        if (!is_digits(t->value, t->value_len, 12))
            return verdict(s, DKIM_RES_PERMERROR, "signature's x= is not a timestamp");
        tx = (int64_t)to_u64(t->value, t->value_len);
    }
    if (ts >= 0 && tx >= 0 && tx <= ts)
        return verdict(s, DKIM_RES_PERMERROR, "signature expires (x=) before it was made (t=)");
    if (tx >= 0 && v->o.now > tx)
        return verdict(s, DKIM_RES_PERMERROR, "signature expired at %lld", (long long)tx);
    if (ts >= 0 && ts > v->o.now + (int64_t)v->o.clock_skew)
        return verdict(s, DKIM_RES_PERMERROR, "signature timestamp t= lies in the future");
    size_t n;
    t = dkim_tags_get(tl, "bh");
    if (dkim_base64_decode(t->value, t->value_len, s->bh, sizeof s->bh, &n) < 0 || n != 32)
        return verdict(s, DKIM_RES_PERMERROR, "signature's bh= is not a base64 SHA-256 digest");
    if (dkim_base64_decode(b->value, b->value_len, s->b, sizeof s->b, &s->blen) < 0 || s->blen == 0)
        return verdict(s, DKIM_RES_PERMERROR, "signature's b= is not valid base64");
    s->md = EVP_MD_CTX_new();
    if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1)
        return verdict(s, DKIM_RES_TEMPERROR, "out of memory hashing the body");
    dkim_body_init(&s->body, s->bcanon, s->l, body_sink, s);
}

int dkim_verify_header(struct dkim_verifier *v, const char *hdr, size_t len)
{
    if (v->copy || len > v->o.max_header)
        return -1;
    v->copy = malloc(len + 1);
    v->hdr = malloc(sizeof *v->hdr);
    if (!v->copy || !v->hdr)
        return -1;
    memcpy(v->copy, hdr, len);
    v->copy[len] = '\0';
    v->copy_len = len;
    char err[128];
    if (dkim_split_header(v->copy, len, v->hdr, err, sizeof err) < 0) {
        v->hdr->n = 0;
        return -1;
    }
    size_t count = 0;
    for (size_t i = 0; i < v->hdr->n; i++)
        count += dkim_field_is(&v->hdr->fields[i], "DKIM-Signature");
    if (count == 0)
        return 0;
    v->sigs = calloc(count, sizeof *v->sigs);
    if (!v->sigs)
        return -1;
    for (size_t i = 0; i < v->hdr->n; i++) {
        if (!dkim_field_is(&v->hdr->fields[i], "DKIM-Signature"))
            continue;
        struct sig *s = &v->sigs[v->nsigs++];
        s->v = v;
        s->field = i;
        if (v->nsigs > v->o.max_signatures)
            verdict(s, DKIM_RES_POLICY, "not evaluated: more than %zu signatures", v->o.max_signatures);
        else
            sig_parse(v, s);
    }
    return 0;
}

void dkim_verify_body(struct dkim_verifier *v, const char *p, size_t n)
{
    for (size_t i = 0; i < v->nsigs; i++)
        if (v->sigs[i].state == SIG_PENDING && v->sigs[i].md)
            dkim_body_feed(&v->sigs[i].body, p, n);
}

/* The header hash input (§3.7): the h= fields, each the bottom-most instance not yet
   used (absent ones contribute nothing), then this signature with b= emptied. */
static int header_input(struct dkim_verifier *v, struct sig *s, struct buf *out)
{
    bool used[DKIM_HDR_FIELDS_MAX] = { false };
    used[s->field] = true;
    const struct dkim_tag *b = dkim_tags_get(&s->tags, "b");
    if (dkim_canon_selected(s->hcanon, v->hdr, s->hnames, s->hlens, s->nh, used, out) < 0)
        return -1;
    return dkim_canon_unsigned(s->hcanon, &v->hdr->fields[s->field], s->value_off + b->raw_start,
                               s->value_off + b->raw_end, out);
}

static void sig_check(struct sig *s, const struct dkim_pubkey *key)
{
    struct dkim_verifier *v = s->v;
    if (key->rsa != (s->algo == DKIM_ALGO_RSA_SHA256))
        return verdict(s, DKIM_RES_PERMERROR, "key type does not match a=%s", s->r.algo);
    if (!key->sha256_ok)
        return verdict(s, DKIM_RES_PERMERROR, "key record's h= does not allow sha256");
    if (key->strict) {
        const char *at = strrchr(s->r.identity, '@');
        if (!at || !within(at + 1, s->r.domain, true))
            return verdict(s, DKIM_RES_PERMERROR, "key requires i= domain to equal d= (t=s)");
    }
    s->r.testing = key->testing;
    const char *test = key->testing ? "; key in testing mode (t=y)" : "";
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_DigestFinal_ex(s->md, md, &mdlen) != 1)
        return verdict(s, DKIM_RES_TEMPERROR, "body hash could not be computed");
    s->r.body_len = s->body.total;
    if (s->l >= 0 && (uint64_t)s->l > s->body.total)
        return verdict(s, DKIM_RES_FAIL, "l=%lld is longer than the body (%llu octets)%s",
                       (long long)s->l, (unsigned long long)s->body.total, test);
    if (memcmp(md, s->bh, 32) != 0)
        return verdict(s, DKIM_RES_FAIL, "body hash did not verify%s", test);
    struct buf in;
    buf_init(&in, HASH_IN_MAX);
    if (header_input(v, s, &in) < 0) {
        buf_free(&in);
        return verdict(s, DKIM_RES_PERMERROR, "signed header fields exceed %u octets", HASH_IN_MAX);
    }
    int ok = dkim_crypto_verify(key->pkey, s->algo, in.data, in.len, s->b, s->blen);
    buf_free(&in);
    if (ok < 0)
        return verdict(s, DKIM_RES_TEMPERROR, "signature check failed inside OpenSSL");
    if (ok == 0)
        return verdict(s, DKIM_RES_FAIL, "signature did not verify%s", test);
    if (s->l >= 0 && (uint64_t)s->l < s->body.total) {
        s->r.body_limited = true;
        if (v->o.l_policy == DKIM_L_REFUSE)
            return verdict(s, DKIM_RES_POLICY, "l= covers only %lld of %llu body octets%s",
                           (long long)s->l, (unsigned long long)s->body.total, test);
        return verdict(s, DKIM_RES_PASS, "%s %d-bit key; l= covers only %lld of %llu body octets%s",
                       s->r.algo, key->bits, (long long)s->l, (unsigned long long)s->body.total, test);
    }
    verdict(s, DKIM_RES_PASS, "%s %d-bit key%s", s->r.algo, key->bits, test);
}

static void report(struct dkim_verifier *v)
{
    if (v->reported || v->pending || v->finishing)
        return;
    v->reported = true;
    size_t n = v->nsigs ? v->nsigs : 1;
    v->results = calloc(n, sizeof *v->results);
    if (!v->results) {
        v->done(v->done_arg, NULL, 0);
        return;
    }
    if (!v->nsigs) {
        v->results[0].result = DKIM_RES_NONE;
        snprintf(v->results[0].reason, sizeof v->results[0].reason, "message not signed");
    }
    for (size_t i = 0; i < v->nsigs; i++)
        v->results[i] = v->sigs[i].r;
    v->done(v->done_arg, v->results, n);
}

static void key_answer(void *arg, enum dkim_dns_status st, const char *const *txt, const size_t *lens, size_t n)
{
    struct sig *s = arg;
    struct dkim_verifier *v = s->v;
    s->dns = NULL;
    if (s->state != SIG_LOOKUP)
        return;
    if (st == DKIM_DNS_TEMPFAIL) {
        verdict(s, DKIM_RES_TEMPERROR, "key lookup of %s failed temporarily", s->qname);
    } else if (st == DKIM_DNS_NOTFOUND || n == 0) {
        verdict(s, DKIM_RES_PERMERROR, "no key record at %s", s->qname);
    } else {
        /* Several TXT records: the first usable one wins; else the first's error. */
        char err[DKIM_REASON_MAX] = "", why[DKIM_REASON_MAX];
        enum dkim_keyerr first = DKIM_KEY_OK;
        struct dkim_pubkey key;
        size_t i;
        for (i = 0; i < n && i < 8; i++) {
            enum dkim_keyerr ke = dkim_pubkey_parse(txt[i], lens[i], &key, why, sizeof why);
            if (ke == DKIM_KEY_OK)
                break;
            if (i == 0) {
                first = ke;
                memcpy(err, why, sizeof err);
            }
        }
        if (i < n && i < 8) {
            sig_check(s, &key);
            dkim_pubkey_free(&key);
        } else {
            (void)first;
            verdict(s, DKIM_RES_PERMERROR, "%s", err);
        }
    }
    if (v->pending > 0)
        v->pending--;
    report(v);
}

void dkim_verify_finish(struct dkim_verifier *v, dkim_verify_done done, void *arg)
{
    v->done = done;
    v->done_arg = arg;
    v->finishing = true;
    for (size_t i = 0; i < v->nsigs; i++) {
        struct sig *s = &v->sigs[i];
        if (s->state != SIG_PENDING)
            continue;
        dkim_body_finish(&s->body);
        s->state = SIG_LOOKUP;
        v->pending++;
        s->dns = v->res.lookup_txt(v->res.ctx, s->qname, key_answer, s);
    }
    v->finishing = false;
    report(v);
}

void dkim_verify_free(struct dkim_verifier *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->nsigs; i++) {
        struct sig *s = &v->sigs[i];
        if (s->dns && v->res.cancel)
            v->res.cancel(v->res.ctx, s->dns);
        EVP_MD_CTX_free(s->md);
    }
    free(v->sigs);
    free(v->results);
    free(v->hdr);
    free(v->copy);
    free(v);
}

struct sync_out {
    bool done;
    struct dkim_sig_result *res;
    size_t n;
};

static void sync_done(void *arg, const struct dkim_sig_result *res, size_t n)
{
    struct sync_out *o = arg;
    o->done = true;
    o->res = res && n ? malloc(n * sizeof *res) : NULL;
    if (o->res) {
        memcpy(o->res, res, n * sizeof *res);
        o->n = n;
    }
}

int dkim_verify_message(const struct dkim_verify_opts *o, const struct dkim_resolver *r,
                        const char *msg, size_t len, struct dkim_sig_result **res, size_t *n)
{
    *res = NULL;
    *n = 0;
    struct dkim_verifier *v = dkim_verify_new(o, r);
    if (!v)
        return -1;
    struct dkim_header *h = malloc(sizeof *h);
    char err[128];
    size_t body = len;
    if (h && dkim_split_header(msg, len, h, err, sizeof err) == 0)
        body = h->body_offset;
    free(h);
    dkim_verify_header(v, msg, body);
    dkim_verify_body(v, msg + body, len - body);
    struct sync_out out = { false, NULL, 0 };
    dkim_verify_finish(v, sync_done, &out);
    dkim_verify_free(v);
    if (!out.done || !out.res)
        return -1;
    *res = out.res;
    *n = out.n;
    return 0;
}

int dkim_result_format(const struct dkim_sig_result *r, bool with_b, char *out, size_t outsz)
{
    if (r->result == DKIM_RES_NONE)
        return snprintf(out, outsz, "dkim=none") < (int)outsz ? 0 : -1;
    struct buf b;
    buf_init(&b, outsz > 0 ? outsz - 1 : 0);
    buf_printf(&b, "dkim=%s", dkim_result_name(r->result));
    if (r->domain[0] && domainish(r->domain))
        buf_printf(&b, " header.d=%s", r->domain);
    if (r->selector[0] && domainish(r->selector))
        buf_printf(&b, " header.s=%s", r->selector);
    /* The b= prefix is the signer's text, not ours: written as an RFC 8601 value,
       quoted and escaped unless it is a bare token (base64's '/', '+' and '='
       are tspecials, so nearly always quoted). */
    if (with_b && r->b_prefix[0]) {
        size_t before = b.len;
        if (buf_puts(&b, " header.b=") < 0 || hdr_value_append(&b, r->b_prefix) < 0) {
            b.len = before;         /* the whole property or none of it */
            if (b.data)
                b.data[before] = '\0';
        }
    }
    /* The reason comment is cut to what fits, never its closing parenthesis: an
       open comment would swallow every result written after it in the field. */
    struct buf why;
    buf_init(&why, 4 * DKIM_REASON_MAX);
    hdr_ctext_append(&why, r->reason);
    size_t room = b.max > b.len + 3 ? b.max - b.len - 3 : 0, cut = why.len < room ? why.len : room;
    size_t backslashes = 0;
    for (size_t i = cut; i > 0 && why.data[i - 1] == '\\'; i--)
        backslashes++;
    if (backslashes % 2)
        cut--;                  /* never leave a quoted-pair half written */
    int rc = 0;
    if (b.len + 3 <= b.max) {
        buf_puts(&b, " (");
        buf_append(&b, why.data ? why.data : "", cut);
        buf_puts(&b, ")");
        rc = cut == why.len ? 0 : -1;
    } else {
        rc = -1;
    }
    buf_free(&why);
    str_copy(out, b.data ? b.data : "", outsz);
    buf_free(&b);
    return rc;
}

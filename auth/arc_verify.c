/* arc_verify — RFC 8617 §5.2 steps 4–7 over a collected chain. */
#include "auth/arc.h"
#include "auth/dkim_key.h"
#include "lib/buf.h"
#include "lib/hdr_value.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HASH_IN_MAX (2u << 20)
#define SIG_MAX     (DKIM_RSA_MAX_BITS / 8)
#define NAMES_MAX   128
#define REC_MAX     4096

struct lookup {
    struct arc_verifier *v;
    void *handle;
    bool answered;
    enum dkim_dns_status st;
    char rec[REC_MAX];      /* the first TXT record that parses as a key, or the first */
    size_t len;
    bool have;
};

/* One AMS's body hash, computed while the body streams past. Sets with the same
   body c= and l= share one (the usual chain costs one or two passes over the body,
   a hostile one at most ARC_SETS_MAX). */
struct body_hash {
    struct dkim_body_canon canon;
    EVP_MD_CTX *ctx;
    enum dkim_canon bc;
    int64_t l;
    size_t same_as;          /* index of the set whose hash this is; itself when own */
    unsigned char md[32];
    bool ready;              /* md holds the digest */
};

struct arc_verifier {
    struct dkim_resolver res;
    char *msg;               /* the header block (the body is never kept) */
    size_t len;
    struct body_hash *bh;    /* one per set, NULL until the header is in */
    bool header_seen;
    struct dkim_header *h;
    struct arc_chain *c;
    struct arc_result r;
    struct lookup *lk;       /* 2 per set: [2k] AMS, [2k+1] AS */
    size_t nlk, pending;
    bool starting, reported;
    arc_verify_done done;
    void *arg;
};

static void say(char *dst, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, ARC_REASON_MAX, fmt, ap);
    va_end(ap);
}

/* The key for one lookup, or a result other than PASS with a reason. */
static enum dkim_result get_key(const struct lookup *l, const char *sel, const char *dom,
                                struct dkim_pubkey *key, char *why)
{
    char err[ARC_REASON_MAX];
    if (l->st == DKIM_DNS_TEMPFAIL) {
        say(why, "key lookup of %s._domainkey.%s failed temporarily", sel, dom);
        return DKIM_RES_TEMPERROR;
    }
    if (l->st == DKIM_DNS_NOTFOUND || !l->have) {
        say(why, "no key record at %s._domainkey.%s", sel, dom);
        return DKIM_RES_PERMERROR;
    }
    if (dkim_pubkey_parse(l->rec, l->len, key, err, sizeof err) != DKIM_KEY_OK) {
        say(why, "%s", err);
        return DKIM_RES_PERMERROR;
    }
    return DKIM_RES_PASS;
}

/* The signature itself: a= and b= of a tag list, checked with key over in. */
static enum dkim_result check_sig(const struct dkim_taglist *tl, const struct dkim_pubkey *key,
                                  const struct buf *in, const char *what, char *why)
{
    const struct dkim_tag *ta = dkim_tags_get(tl, "a"), *tb = dkim_tags_get(tl, "b");
    char a[32];
    enum dkim_algo algo;
    unsigned char sig[SIG_MAX];
    size_t siglen;
    if (!ta || !tb || dkim_tag_copy(ta, a, sizeof a, true) < 0 || dkim_algo_parse(a, &algo) < 0 ||
        algo == DKIM_ALGO_RSA_SHA1) {
        say(why, "%s has no usable a= (rsa-sha256 or ed25519-sha256)", what);
        return DKIM_RES_PERMERROR;
    }
    if (key->rsa != (algo == DKIM_ALGO_RSA_SHA256) || !key->sha256_ok) {
        say(why, "%s: key does not fit a=%s", what, a);
        return DKIM_RES_PERMERROR;
    }
    if (dkim_base64_decode(tb->value, tb->value_len, sig, sizeof sig, &siglen) < 0 || siglen == 0) {
        say(why, "%s: b= is not valid base64", what);
        return DKIM_RES_PERMERROR;
    }
    int ok = dkim_crypto_verify(key->pkey, algo, in->data, in->len, sig, siglen);
    if (ok != 1) {
        say(why, "%s: signature did not verify", what);
        return DKIM_RES_FAIL;
    }
    say(why, "%s: %s %d-bit key", what, a, key->bits);
    return DKIM_RES_PASS;
}

/* Append field f canonicalised, with its b= value (tag b of tl, at off) cut out. */
static int append_unsigned(const struct dkim_field *f, const struct dkim_taglist *tl, size_t off,
                           enum dkim_canon c, struct buf *in)
{
    const struct dkim_tag *b = dkim_tags_get(tl, "b");
    return dkim_canon_unsigned(c, f, off + b->raw_start, off + b->raw_end, in);
}

static void body_sink(void *arg, const unsigned char *p, size_t n) { EVP_DigestUpdate(arg, p, n); }

static bool parse_canon(const struct dkim_tag *t, enum dkim_canon *hc, enum dkim_canon *bc)
{
    char v[32];
    *hc = *bc = DKIM_CANON_SIMPLE;
    if (!t)
        return true;
    if (dkim_tag_copy(t, v, sizeof v, true) < 0)
        return false;
    char *slash = strchr(v, '/');
    if (slash)
        *slash++ = '\0';
    const char *parts[2] = { v, slash };
    enum dkim_canon *dst[2] = { hc, bc };
    for (int i = 0; i < 2; i++) {
        if (!parts[i])
            continue;
        if (!strcmp(parts[i], "relaxed")) *dst[i] = DKIM_CANON_RELAXED;
        else if (strcmp(parts[i], "simple")) return false;
    }
    return true;
}

/* The AMS l= (-1 when absent); false when it is not a number. */
static bool ams_body_length(const struct dkim_taglist *tl, int64_t *l)
{
    const struct dkim_tag *t = dkim_tags_get(tl, "l");
    char lv[24];
    char *end;
    *l = -1;
    if (!t)
        return true;
    return dkim_tag_copy(t, lv, sizeof lv, true) >= 0 && lv[0] && (*l = strtoll(lv, &end, 10)) >= 0 && !*end;
}

/* One AMS: body hash, then the h= fields bottom-up and the AMS without b=. */
static enum dkim_result verify_ams(struct arc_verifier *v, const struct arc_set *s, char *why)
{
    const struct dkim_taglist *tl = &s->ams_tags;
    struct dkim_pubkey key;
    enum dkim_result r = get_key(&v->lk[2 * (s->instance - 1)], s->ams_selector, s->ams_domain, &key, why);
    if (r != DKIM_RES_PASS)
        return r;
    enum dkim_canon hc, bc;
    const struct dkim_tag *th = dkim_tags_get(tl, "h"), *tbh = dkim_tags_get(tl, "bh");
    unsigned char bh[32], md[32];
    size_t bhlen;
    int64_t l = -1;
    r = DKIM_RES_PERMERROR;
    if (!th || !tbh || !dkim_tags_get(tl, "b") || !parse_canon(dkim_tags_get(tl, "c"), &hc, &bc)) {
        say(why, "AMS lacks h=, bh= or b=, or has an unknown c=");
        goto out;
    }
    if (dkim_base64_decode(tbh->value, tbh->value_len, bh, sizeof bh, &bhlen) < 0 || bhlen != 32) {
        say(why, "AMS bh= is not a SHA-256 digest");
        goto out;
    }
    if (!ams_body_length(tl, &l)) {
        say(why, "AMS l= is not a number");
        goto out;
    }
    (void)l;                 /* c= and l= were applied as the body streamed past */
    if (!v->bh || !v->bh[s->instance - 1].ready) {
        r = DKIM_RES_TEMPERROR;
        say(why, "out of memory");
        goto out;
    }
    memcpy(md, v->bh[s->instance - 1].md, 32);
    if (memcmp(md, bh, 32)) {
        r = DKIM_RES_FAIL;
        say(why, "AMS i=%u: body hash did not verify", s->instance);
        goto out;
    }
    /* h= names; ARC-Seal may not be signed by an AMS (§4.1.2). */
    const char *names[NAMES_MAX];
    size_t lens[NAMES_MAX], nn = 0, i = 0;
    while (i <= th->value_len) {
        size_t j = i;
        while (j < th->value_len && th->value[j] != ':')
            j++;
        size_t a = i, e = j;
        while (a < e && strchr(" \t\r\n", th->value[a])) a++;
        while (e > a && strchr(" \t\r\n", th->value[e - 1])) e--;
        if (a == e || nn == NAMES_MAX) {
            say(why, "AMS i=%u: h= is malformed", s->instance);
            goto out;
        }
        if (e - a == 8 && !strncasecmp(th->value + a, "arc-seal", 8)) {
            say(why, "AMS i=%u signs ARC-Seal, which RFC 8617 forbids", s->instance);
            goto out;
        }
        names[nn] = th->value + a;
        lens[nn++] = e - a;
        i = j + 1;
    }
    bool *used = calloc(v->h->n + 1, sizeof *used);
    struct buf in;
    buf_init(&in, HASH_IN_MAX);
    int bad = !used;
    if (used)
        used[s->ams] = true;
    bad = bad || dkim_canon_selected(hc, v->h, names, lens, nn, used, &in) < 0;
    bad = bad || append_unsigned(&v->h->fields[s->ams], tl, s->ams_off, hc, &in) < 0;
    free(used);
    char what[32];
    snprintf(what, sizeof what, "AMS i=%u", s->instance);
    if (bad)
        say(why, "%s: signed fields too large", what);
    else
        r = check_sig(tl, &key, &in, what, why);
    buf_free(&in);
out:
    dkim_pubkey_free(&key);
    return r;
}

/* One AS (§5.1.1): every AAR, AMS, AS of instances 1..k in that order, relaxed,
   the AS of instance k last with b= empty. */
static enum dkim_result verify_as(struct arc_verifier *v, const struct arc_set *s, char *why)
{
    struct dkim_pubkey key;
    enum dkim_result r = get_key(&v->lk[2 * (s->instance - 1) + 1], s->as_selector, s->as_domain, &key, why);
    if (r != DKIM_RES_PASS)
        return r;
    struct buf in;
    buf_init(&in, HASH_IN_MAX);
    int bad = !dkim_tags_get(&s->as_tags, "b");
    for (unsigned k = 0; !bad && k < s->instance; k++) {
        const struct arc_set *t = &v->c->sets[k];
        const struct dkim_field *a = &v->h->fields[t->aar], *m = &v->h->fields[t->ams], *z = &v->h->fields[t->as];
        bad |= dkim_canon_header(DKIM_CANON_RELAXED, a->start, a->len, true, &in) < 0;
        bad |= dkim_canon_header(DKIM_CANON_RELAXED, m->start, m->len, true, &in) < 0;
        if (k + 1 < s->instance)
            bad |= dkim_canon_header(DKIM_CANON_RELAXED, z->start, z->len, true, &in) < 0;
        else
            bad |= append_unsigned(z, &t->as_tags, t->as_off, DKIM_CANON_RELAXED, &in) < 0;
    }
    char what[32];
    snprintf(what, sizeof what, "AS i=%u", s->instance);
    if (bad) {
        r = DKIM_RES_PERMERROR;
        say(why, "%s: no b= or sealed fields too large", what);
    } else {
        r = check_sig(&s->as_tags, &key, &in, what, why);
    }
    buf_free(&in);
    dkim_pubkey_free(&key);
    return r;
}

static void finish(struct arc_verifier *v)
{
    struct arc_result *r = &v->r;
    struct arc_chain *c = v->c;
    size_t n = c->n;
    for (size_t k = 0; k < n; k++)
        r->sets[k].instance = (unsigned)k + 1;
    struct arc_set_result *newest = &r->sets[n - 1];
    newest->ams = verify_ams(v, &c->sets[n - 1], newest->ams_why);
    if (newest->ams != DKIM_RES_PASS) {
        r->status = ARC_CV_FAIL;
        say(r->reason, "newest %s", newest->ams_why);
        return;
    }
    r->oldest_pass = 0;
    for (size_t k = n - 1; k-- > 0;) {
        r->sets[k].ams = verify_ams(v, &c->sets[k], r->sets[k].ams_why);
        if (r->sets[k].ams != DKIM_RES_PASS) {
            r->oldest_pass = (unsigned)k + 2;
            break;
        }
    }
    for (size_t k = n; k-- > 0;) {
        r->sets[k].as = verify_as(v, &c->sets[k], r->sets[k].as_why);
        if (r->sets[k].as != DKIM_RES_PASS) {
            r->status = ARC_CV_FAIL;
            say(r->reason, "%s", r->sets[k].as_why);
            return;
        }
    }
    r->status = ARC_CV_PASS;
    say(r->reason, "%zu set%s, sealed last by %s", n, n == 1 ? "" : "s", c->sets[n - 1].as_domain);
}

static void report(struct arc_verifier *v)
{
    if (v->reported || v->pending || v->starting)
        return;
    v->reported = true;
    if (v->r.status == ARC_CV_PASS)
        finish(v);
    v->done(v->arg, &v->r);
}

static void answer(void *arg, enum dkim_dns_status st, const char *const *txt, const size_t *lens, size_t n)
{
    struct lookup *l = arg;
    l->handle = NULL;
    if (l->answered)
        return;
    l->answered = true;
    l->st = st;
    /* The first record that parses as a key wins, as in dkim_verify. */
    for (size_t i = 0; st == DKIM_DNS_OK && i < n && i < 8; i++) {
        struct dkim_pubkey k;
        char err[128];
        bool ok = dkim_pubkey_parse(txt[i], lens[i], &k, err, sizeof err) == DKIM_KEY_OK;
        if (ok)
            dkim_pubkey_free(&k);
        if ((ok || !l->have) && lens[i] < REC_MAX) {
            memcpy(l->rec, txt[i], lens[i]);
            l->len = lens[i];
            l->have = true;
        }
        if (ok)
            break;
    }
    if (l->v->pending > 0)
        l->v->pending--;
    report(l->v);
}

struct arc_verifier *arc_verify_new(const struct dkim_resolver *res)
{
    struct arc_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->res = *res;
    v->h = malloc(sizeof *v->h);
    v->c = malloc(sizeof *v->c);
    if (!v->h || !v->c) {
        arc_verify_free(v);
        return NULL;
    }
    v->r.status = ARC_CV_NONE;
    say(v->r.reason, "no ARC sets");
    return v;
}

/* A body hasher per set, with that set's AMS c= and l=. A set whose tags are
   unusable gets none; verify_ams then says why (it checks the same tags). */
static void start_body_hashes(struct arc_verifier *v)
{
    v->bh = calloc(v->c->n, sizeof *v->bh);
    for (size_t k = 0; v->bh && k < v->c->n; k++) {
        v->bh[k].same_as = k;
        const struct dkim_taglist *tl = &v->c->sets[k].ams_tags;
        enum dkim_canon hc, bc;
        int64_t l;
        if (!parse_canon(dkim_tags_get(tl, "c"), &hc, &bc) || !ams_body_length(tl, &l))
            continue;
        struct body_hash *b = &v->bh[k];
        b->bc = bc;
        b->l = l;
        for (size_t j = 0; j < k && b->same_as == k; j++)
            if (v->bh[j].ctx && v->bh[j].same_as == j && v->bh[j].bc == bc && v->bh[j].l == l)
                b->same_as = j;
        if (b->same_as != k)
            continue;
        b->ctx = EVP_MD_CTX_new();
        if (!b->ctx || EVP_DigestInit_ex(b->ctx, EVP_sha256(), NULL) != 1) {
            EVP_MD_CTX_free(b->ctx);
            b->ctx = NULL;
            continue;
        }
        dkim_body_init(&b->canon, bc, l, body_sink, b->ctx);
    }
}

int arc_verify_header(struct arc_verifier *v, const char *hdr, size_t len)
{
    if (v->header_seen)
        return -1;
    v->header_seen = true;
    v->msg = malloc(len + 1);
    if (!v->msg) {
        v->r.status = ARC_CV_NONE;
        say(v->r.reason, "out of memory");
        return -1;
    }
    memcpy(v->msg, hdr, len);
    v->msg[len] = '\0';
    v->len = len;
    char err[128];
    v->r.reason[0] = '\0';
    if (dkim_split_header(v->msg, len, v->h, err, sizeof err) < 0) {
        v->r.status = ARC_CV_NONE;
        say(v->r.reason, "header block unreadable: %s", err);
    } else {
        v->r.status = arc_collect(v->h, v->c, v->r.reason, sizeof v->r.reason);
    }
    if (v->r.status == ARC_CV_NONE && !v->r.reason[0])
        say(v->r.reason, "no ARC sets");
    if (v->r.status != ARC_CV_NONE)
        v->r.n = v->c->n;
    /* Only a complete structure has a newest set whose fields all exist. */
    if (v->r.status == ARC_CV_PASS) {
        struct arc_set *top = &v->c->sets[v->c->n - 1];
        snprintf(v->r.newest_domain, sizeof v->r.newest_domain, "%s", top->as_domain);
        if (top->aar_len < sizeof v->r.newest_aar) {
            memcpy(v->r.newest_aar, top->aar_value, top->aar_len);
            v->r.newest_aar[top->aar_len] = '\0';
        }
        start_body_hashes(v);
    }
    return 0;
}

void arc_verify_body(struct arc_verifier *v, const char *p, size_t n)
{
    for (size_t k = 0; v->bh && k < v->c->n; k++)
        if (v->bh[k].ctx)
            dkim_body_feed(&v->bh[k].canon, p, n);
}

void arc_verify_finish(struct arc_verifier *v, arc_verify_done done, void *arg)
{
    v->done = done;
    v->arg = arg;
    v->starting = true;
    for (size_t k = 0; v->bh && k < v->c->n; k++) {
        struct body_hash *b = &v->bh[k];
        unsigned mdlen = 0;
        if (!b->ctx)
            continue;
        dkim_body_finish(&b->canon);
        b->ready = EVP_DigestFinal_ex(b->ctx, b->md, &mdlen) == 1 && mdlen == 32;
        EVP_MD_CTX_free(b->ctx);
        b->ctx = NULL;
    }
    for (size_t k = 0; v->bh && k < v->c->n; k++) {    /* shared hashes: earlier sets are done */
        struct body_hash *b = &v->bh[k];
        if (b->same_as != k && v->bh[b->same_as].ready) {
            memcpy(b->md, v->bh[b->same_as].md, sizeof b->md);
            b->ready = true;
        }
    }
    if (v->r.status == ARC_CV_PASS) {
        v->nlk = 2 * v->c->n;
        v->lk = calloc(v->nlk, sizeof *v->lk);
        if (!v->lk) {
            v->r.status = ARC_CV_FAIL;
            say(v->r.reason, "out of memory");
            v->nlk = 0;
        }
        for (size_t i = 0; i < v->nlk; i++) {
            const struct arc_set *s = &v->c->sets[i / 2];
            char q[330];
            const char *sel = i % 2 ? s->as_selector : s->ams_selector, *dom = i % 2 ? s->as_domain : s->ams_domain;
            v->lk[i].v = v;
            v->pending++;
            if (snprintf(q, sizeof q, "%s._domainkey.%s", sel, dom) >= 254) {
                answer(&v->lk[i], DKIM_DNS_NOTFOUND, NULL, NULL, 0);
                continue;
            }
            v->lk[i].handle = v->res.lookup_txt(v->res.ctx, q, answer, &v->lk[i]);
        }
    }
    v->starting = false;
    report(v);
}

struct arc_verifier *arc_verify_start(const struct dkim_resolver *res, const char *msg, size_t len,
                                      arc_verify_done done, void *arg)
{
    struct arc_verifier *v = arc_verify_new(res);
    if (!v)
        return NULL;
    struct dkim_header *h = malloc(sizeof *h);
    char err[128];
    /* The header block ends where the body starts; without one it is all header. */
    size_t hlen = !h || dkim_split_header(msg, len, h, err, sizeof err) < 0 ? len : h->body_offset;
    free(h);
    arc_verify_header(v, msg, hlen);
    arc_verify_body(v, msg + hlen, len - hlen);
    arc_verify_finish(v, done, arg);
    return v;
}

void arc_verify_free(struct arc_verifier *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->nlk; i++)
        if (v->lk[i].handle && !v->lk[i].answered && v->res.cancel)
            v->res.cancel(v->res.ctx, v->lk[i].handle);
    for (size_t k = 0; v->bh && k < v->c->n; k++)
        EVP_MD_CTX_free(v->bh[k].ctx);
    free(v->bh);
    free(v->lk);
    free(v->c);
    free(v->h);
    free(v->msg);
    free(v);
}

struct sync_out { bool done; struct arc_result *r; };
static void sync_done(void *arg, const struct arc_result *r)
{
    struct sync_out *o = arg;
    o->done = true;
    *o->r = *r;
}

int arc_verify_message(const struct dkim_resolver *res, const char *msg, size_t len, struct arc_result *out)
{
    struct sync_out o = { false, out };
    struct arc_verifier *v = arc_verify_start(res, msg, len, sync_done, &o);
    arc_verify_free(v);
    return v && o.done ? 0 : -1;
}

int arc_result_format(const struct arc_result *r, const char *ip, char *out, size_t outsz)
{
    struct buf b, why;
    buf_init(&b, outsz > 0 ? outsz - 1 : 0);
    buf_init(&why, 4 * ARC_REASON_MAX);
    int rc = buf_printf(&b, "arc=%s", arc_cv_name(r->status));
    hdr_ctext_append(&why, r->reason);
    rc |= buf_printf(&b, " (%s)", why.data ? why.data : "");
    buf_free(&why);
    if (r->status == ARC_CV_PASS)
        rc |= buf_printf(&b, " header.oldest-pass=%u", r->oldest_pass);
    if (ip && *ip)
        rc |= buf_printf(&b, " smtp.remote-ip=%s", ip);
    str_copy(out, b.data ? b.data : "", outsz);
    buf_free(&b);
    return rc < 0 ? -1 : 0;
}

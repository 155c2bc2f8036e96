/* dkim_sign — DKIM-Signature fields for one message and one or more keys. */
#include "auth/dkim_sign.h"
#include "auth/dkim_tags.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FOLD_COLS   78
#define NAMES_MAX   128
#define SIG_MAX     (DKIM_RSA_MAX_BITS / 8)

const char *const dkim_sign_default_headers[] = {
    "from", "to", "cc", "subject", "date", "reply-to", "message-id", "in-reply-to", "references",
    "mime-version", "content-type", "content-transfer-encoding",
    "list-id", "list-unsubscribe", "list-unsubscribe-post", "list-post", "list-help",
    "list-subscribe", "list-owner", "list-archive", NULL
};

/* Fields signed once even when absent, so a later hop cannot add one unnoticed.
   In-Reply-To, References and List-* are left open when absent: lists and replies
   legitimately add them. */
static bool sign_when_absent(const char *name)
{
    return strncasecmp(name, "list-", 5) && strcasecmp(name, "in-reply-to") && strcasecmp(name, "references");
}

struct dkim_signer {
    struct dkim_sign_opts o;
    const struct dkim_sign_key *keys;
    size_t nkeys;
    char *copy;
    struct dkim_header *h;
    EVP_MD_CTX *md;
    struct dkim_body_canon body;
    const char *names[NAMES_MAX];
    size_t nnames;
};

void dkim_sign_opts_init(struct dkim_sign_opts *o, int64_t now)
{
    memset(o, 0, sizeof *o);
    o->hcanon = o->bcanon = DKIM_CANON_RELAXED;
    o->timestamp = now;
}

static void body_sink(void *arg, const unsigned char *p, size_t n)
{
    EVP_DigestUpdate(arg, p, n);
}

struct dkim_signer *dkim_signer_new(const struct dkim_sign_key *keys, size_t nkeys,
                                    const struct dkim_sign_opts *o)
{
    struct dkim_signer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->o = *o;
    s->keys = keys;
    s->nkeys = nkeys;
    s->md = EVP_MD_CTX_new();
    if (!s->md || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
        dkim_signer_free(s);
        return NULL;
    }
    dkim_body_init(&s->body, o->bcanon, -1, body_sink, s->md);
    return s;
}

void dkim_signer_free(struct dkim_signer *s)
{
    if (!s)
        return;
    EVP_MD_CTX_free(s->md);
    free(s->h);
    free(s->copy);
    free(s);
}

int dkim_signer_header(struct dkim_signer *s, const char *hdr, size_t len, char *err, size_t errsz)
{
    s->copy = malloc(len + 1);
    s->h = malloc(sizeof *s->h);
    if (!s->copy || !s->h) {
        snprintf(err, errsz, "out of memory reading the message header");
        return -1;
    }
    memcpy(s->copy, hdr, len);
    s->copy[len] = '\0';
    if (dkim_split_header(s->copy, len, s->h, err, errsz) < 0)
        return -1;
    const char *const *list = s->o.headers ? s->o.headers : dkim_sign_default_headers;
    size_t from = 0;
    for (size_t i = 0; i < s->h->n; i++)
        from += dkim_field_is(&s->h->fields[i], "from");
    if (from != 1) {
        snprintf(err, errsz, "message has %zu From fields; DKIM signing needs exactly one", from);
        return -1;
    }
    s->nnames = 0;
    for (size_t k = 0; list[k]; k++) {
        size_t present = 0;
        for (size_t i = 0; i < s->h->n; i++)
            present += dkim_field_is(&s->h->fields[i], list[k]);
        size_t times = present ? present + 1 : sign_when_absent(list[k]) ? 1 : 0;
        for (size_t t = 0; t < times; t++) {
            if (s->nnames == NAMES_MAX) {
                snprintf(err, errsz, "message has too many signable fields (more than %d)", NAMES_MAX);
                return -1;
            }
            s->names[s->nnames++] = list[k];
        }
    }
    return 0;
}

void dkim_signer_body(struct dkim_signer *s, const char *p, size_t n)
{
    dkim_body_feed(&s->body, p, n);
}

int dkim_sign_compute_b(const struct dkim_sign_key *k, enum dkim_canon hcanon, const struct dkim_header *h,
                        const char *const *names, size_t nnames, const char *field, size_t flen,
                        char *b64, size_t b64sz)
{
    bool used[DKIM_HDR_FIELDS_MAX] = { false };
    struct buf in;
    buf_init(&in, 2u << 20);
    int rc = -1;
    for (size_t i = 0; i < nnames; i++) {
        for (size_t j = h->n; j-- > 0;) {
            if (used[j] || !dkim_field_is(&h->fields[j], names[i]))
                continue;
            used[j] = true;
            if (dkim_canon_header(hcanon, h->fields[j].start, h->fields[j].len, true, &in) < 0)
                goto out;
            break;
        }
    }
    if (dkim_canon_header(hcanon, field, flen, false, &in) < 0)
        goto out;
    unsigned char sig[SIG_MAX];
    size_t siglen = sizeof sig;
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(in.data, in.len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof md)
        goto out;
    if (k->pkey ? dkim_crypto_sign_digest(k->pkey, k->algo, md, sig, &siglen) < 0
                : !k->sign_digest || k->sign_digest(k->sign_ctx, k, md, sig, &siglen) < 0)
        goto out;
    rc = dkim_base64_encode(sig, siglen, b64, b64sz);
out:
    buf_free(&in);
    return rc;
}

/* Line folding: words separated by a space, or glued to the previous one; a line
   break (CRLF SP) goes wherever the next word would pass FOLD_COLS. */
struct folder {
    struct buf *b;
    size_t col;
};

static void fold_word(struct folder *f, const char *w, size_t len, bool glued)
{
    size_t need = len + (glued ? 0 : 1);
    if (f->col + need > FOLD_COLS && f->col > 1) {
        buf_append(f->b, "\r\n ", 3);
        f->col = 1;
    } else if (!glued) {
        buf_append(f->b, " ", 1);
        f->col++;
    }
    buf_append(f->b, w, len);
    f->col += len;
}

static void fold_tag(struct folder *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fold_tag(struct folder *f, const char *fmt, ...)
{
    char w[300];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w, sizeof w, fmt, ap);
    va_end(ap);
    if (n > 0)
        fold_word(f, w, (size_t)n < sizeof w ? (size_t)n : sizeof w - 1, false);
}

static int sign_one(struct dkim_signer *s, const struct dkim_sign_key *k, const char *bh,
                    struct buf *out, char *err, size_t errsz)
{
    struct buf field;
    buf_init(&field, 64 * 1024);
    struct folder f = { &field, 0 };
    buf_puts(&field, "DKIM-Signature:");
    f.col = field.len;
    fold_tag(&f, "v=1;");
    fold_tag(&f, "a=%s;", dkim_algo_name(k->algo));
    fold_tag(&f, "c=%s/%s;", s->o.hcanon == DKIM_CANON_RELAXED ? "relaxed" : "simple",
             s->o.bcanon == DKIM_CANON_RELAXED ? "relaxed" : "simple");
    fold_tag(&f, "d=%s;", k->domain);
    fold_tag(&f, "s=%s;", k->selector);
    if (s->o.identity)
        fold_tag(&f, "i=%s;", s->o.identity);
    if (s->o.timestamp >= 0)
        fold_tag(&f, "t=%lld;", (long long)s->o.timestamp);
    if (s->o.timestamp >= 0 && s->o.expire > 0)
        fold_tag(&f, "x=%lld;", (long long)(s->o.timestamp + s->o.expire));
    for (size_t i = 0; i < s->nnames; i++) {
        char w[64];
        int n = snprintf(w, sizeof w, "%s%s%s", i ? "" : "h=", s->names[i], i + 1 < s->nnames ? ":" : ";");
        fold_word(&f, w, (size_t)n, i > 0);
    }
    fold_tag(&f, "bh=%s;", bh);
    fold_tag(&f, "b=");
    char b64[SIG_MAX * 4 / 3 + 8];
    if (field.len + 1 >= field.max ||
        dkim_sign_compute_b(k, s->o.hcanon, s->h, s->names, s->nnames, field.data, field.len, b64, sizeof b64) < 0) {
        buf_free(&field);
        snprintf(err, errsz, "signing with selector %s of %s failed", k->selector, k->domain);
        return -1;
    }
    /* b= fills each line to the margin; FWS inside base64 is allowed (§3.5). */
    for (size_t i = 0, len = strlen(b64); i < len;) {
        size_t room = f.col < FOLD_COLS ? FOLD_COLS - f.col : 0;
        if (room == 0) {
            buf_append(&field, "\r\n ", 3);
            f.col = 1;
            continue;
        }
        size_t chunk = len - i < room ? len - i : room;
        fold_word(&f, b64 + i, chunk, true);
        i += chunk;
    }
    int rc = buf_append(out, field.data, field.len) < 0 || buf_append(out, "\r\n", 2) < 0 ? -1 : 0;
    if (rc < 0)
        snprintf(err, errsz, "signature fields do not fit the output buffer");
    buf_free(&field);
    return rc;
}

int dkim_signer_finish(struct dkim_signer *s, struct buf *out, char *err, size_t errsz)
{
    if (!s->h) {
        snprintf(err, errsz, "signer got no message header");
        return -1;
    }
    dkim_body_finish(&s->body);
    unsigned char md[32];
    unsigned int mdlen = 0;
    char bh[48];
    if (EVP_DigestFinal_ex(s->md, md, &mdlen) != 1 || dkim_base64_encode(md, mdlen, bh, sizeof bh) < 0) {
        snprintf(err, errsz, "body hash failed inside OpenSSL");
        return -1;
    }
    for (size_t i = 0; i < s->nkeys; i++)
        if (sign_one(s, &s->keys[i], bh, out, err, errsz) < 0)
            return -1;
    return 0;
}

int dkim_sign_message(const struct dkim_sign_key *keys, size_t nkeys, const struct dkim_sign_opts *o,
                      const char *msg, size_t len, struct buf *out, char *err, size_t errsz)
{
    struct dkim_signer *s = dkim_signer_new(keys, nkeys, o);
    struct dkim_header *h = malloc(sizeof *h);
    int rc = -1;
    if (!s || !h) {
        snprintf(err, errsz, "out of memory signing the message");
        goto out;
    }
    if (dkim_split_header(msg, len, h, err, errsz) < 0)
        goto out;
    if (dkim_signer_header(s, msg, h->body_offset, err, errsz) < 0)
        goto out;
    dkim_signer_body(s, msg + h->body_offset, len - h->body_offset);
    rc = dkim_signer_finish(s, out, err, errsz);
out:
    free(h);
    dkim_signer_free(s);
    return rc;
}

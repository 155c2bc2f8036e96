/* arc_seal — the next ARC set, signed through dkim_sign_compute_b. */
#include "auth/arc_seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NAMES_MAX 128
#define B64_MAX   1500

static void sha_sink(void *arg, const unsigned char *p, size_t n) { EVP_DigestUpdate(arg, p, n); }

/* Append value folded at 72 columns, each continuation starting with a tab. */
static int append_folded(struct buf *b, const char *v)
{
    size_t n = strlen(v);
    for (size_t i = 0; i < n; i += 72) {
        if (i && buf_puts(b, "\r\n\t") < 0)
            return -1;
        if (buf_append(b, v + i, n - i < 72 ? n - i : 72) < 0)
            return -1;
    }
    return 0;
}

/* A field made of fixed text (b= last and empty), its signature computed over the
   fields of h named in names, then appended folded; the whole field goes to out. */
static int signed_field(const struct dkim_sign_key *k, const struct dkim_header *h, const char *const *names,
                        size_t nnames, const struct buf *unsigned_field, struct buf *out)
{
    char b64[B64_MAX];
    if (dkim_sign_compute_b(k, DKIM_CANON_RELAXED, h, names, nnames, unsigned_field->data, unsigned_field->len,
                            b64, sizeof b64) < 0)
        return -1;
    if (buf_append(out, unsigned_field->data, unsigned_field->len) < 0 || append_folded(out, b64) < 0 ||
        buf_puts(out, "\r\n") < 0)
        return -1;
    return 0;
}

struct arc_sealer {
    EVP_MD_CTX *md;
    struct dkim_body_canon bc;
    bool used;                  /* finish was called */
};

struct arc_sealer *arc_sealer_new(void)
{
    struct arc_sealer *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (!(s->md = EVP_MD_CTX_new()) || EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
        arc_sealer_free(s);
        return NULL;
    }
    dkim_body_init(&s->bc, DKIM_CANON_RELAXED, -1, sha_sink, s->md);
    return s;
}

void arc_sealer_free(struct arc_sealer *s)
{
    if (!s)
        return;
    EVP_MD_CTX_free(s->md);
    free(s);
}

void arc_sealer_body(struct arc_sealer *s, const char *p, size_t n)
{
    dkim_body_feed(&s->bc, p, n);
}

int arc_seal_message(const struct dkim_sign_key *k, const char *ar, enum arc_cv cv, int64_t now,
                     const char *msg, size_t len, struct buf *out, char *err, size_t errsz)
{
    struct dkim_header *h = malloc(sizeof *h);
    struct arc_sealer *s = arc_sealer_new();
    int rc = -1;
    if (!h || !s)
        snprintf(err, errsz, "out of memory");
    else if (dkim_split_header(msg, len, h, err, errsz) == 0) {
        arc_sealer_body(s, msg + h->body_offset, len - h->body_offset);
        rc = arc_sealer_finish(s, k, ar, cv, now, msg, h->body_offset, out, err, errsz);
    }
    arc_sealer_free(s);
    free(h);
    return rc;
}

/* The newest ARC-Seal (highest i=) says cv=fail: §5.1 step 2, nothing to add. */
static bool newest_says_fail(const struct dkim_header *h)
{
    unsigned best = 0;
    bool fail = false;
    for (size_t i = 0; i < h->n; i++) {
        const struct dkim_field *f = &h->fields[i];
        if (!dkim_field_is(f, "ARC-Seal"))
            continue;
        const char *colon = memchr(f->start, ':', f->len);
        struct dkim_taglist tl;
        char e[64], v[8];
        if (!colon || dkim_tags_parse(colon + 1, f->len - (size_t)(colon + 1 - f->start), &tl, e, sizeof e) < 0)
            continue;
        const struct dkim_tag *ti = dkim_tags_get(&tl, "i"), *tc = dkim_tags_get(&tl, "cv");
        if (!ti || !tc || dkim_tag_copy(ti, v, sizeof v, true) < 0)
            continue;
        unsigned n = (unsigned)strtoul(v, NULL, 10);
        if (n < best || dkim_tag_copy(tc, v, sizeof v, true) < 0)
            continue;
        best = n;
        fail = !strcasecmp(v, "fail");
    }
    return fail;
}

int arc_sealer_finish(struct arc_sealer *sl, const struct dkim_sign_key *k, const char *ar, enum arc_cv cv,
                      int64_t now, const char *hdr, size_t hlen, struct buf *out, char *err, size_t errsz)
{
    struct dkim_header *h = malloc(sizeof *h), *seal = malloc(sizeof *seal);
    struct arc_chain *c = malloc(sizeof *c);
    struct buf aar, ams, as, tmp;
    buf_init(&aar, 8192);
    buf_init(&ams, 16384);
    buf_init(&as, 8192);
    buf_init(&tmp, 65536);
    int rc = -1;
    if (!h || !seal || !c) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    if (sl->used) {
        snprintf(err, errsz, "the sealer was already used");
        goto out;
    }
    sl->used = true;
    if (dkim_split_header(hdr, hlen, h, err, errsz) < 0)
        goto out;
    if (newest_says_fail(h)) {
        snprintf(err, errsz, "the newest ARC-Seal says cv=fail; RFC 8617 5.1 step 2: not sealed");
        rc = 1;
        goto out;
    }
    char why[ARC_REASON_MAX];
    enum arc_cv found = arc_collect(h, c, why, sizeof why);
    /* A broken chain is sealed as fail at the next free instance, or not at all. */
    size_t n = found == ARC_CV_NONE ? 0 : c->n;
    if (found == ARC_CV_FAIL) {
        cv = ARC_CV_FAIL;
        if (n == 0)     /* arc_collect stopped early: the highest i= it could read */
            n = arc_max_instance(h);
    }
    if (n >= ARC_SETS_MAX) {
        snprintf(err, errsz, "message already carries %d ARC sets", ARC_SETS_MAX);
        goto out;
    }
    unsigned inst = (unsigned)n + 1;
    size_t from = 0;
    const char *names[NAMES_MAX];
    size_t nnames = 0;
    for (size_t i = 0; i < h->n; i++)
        from += dkim_field_is(&h->fields[i], "from");
    if (from != 1) {
        snprintf(err, errsz, "message has %zu From fields; ARC sealing needs exactly one", from);
        goto out;
    }
    for (size_t j = 0; dkim_sign_default_headers[j]; j++)
        for (size_t i = 0; i < h->n && nnames < NAMES_MAX; i++)
            if (dkim_field_is(&h->fields[i], dkim_sign_default_headers[j]))
                names[nnames++] = dkim_sign_default_headers[j];

    /* body hash, relaxed, of what arc_sealer_body saw */
    unsigned char md[32];
    unsigned mdlen = 0;
    dkim_body_finish(&sl->bc);
    if (EVP_DigestFinal_ex(sl->md, md, &mdlen) != 1 || mdlen != 32) {
        snprintf(err, errsz, "cannot hash the body");
        goto out;
    }
    char bh[64];
    dkim_base64_encode(md, 32, bh, sizeof bh);

    const char *algo = dkim_algo_name(k->algo);
    if (buf_printf(&aar, "ARC-Authentication-Results: i=%u; %s\r\n", inst, ar) < 0) {
        snprintf(err, errsz, "Authentication-Results too long for the ARC set");
        goto out;
    }
    buf_printf(&tmp, "ARC-Message-Signature: i=%u; a=%s; c=relaxed/relaxed; d=%s;\r\n\ts=%s; t=%lld;\r\n\th=",
               inst, algo, k->domain, k->selector, (long long)now);
    for (size_t i = 0; i < nnames; i++)
        buf_printf(&tmp, "%s%s", i ? ":" : "", names[i]);
    if (buf_printf(&tmp, ";\r\n\tbh=%s;\r\n\tb=", bh) < 0 ||
        signed_field(k, h, names, nnames, &tmp, &ams) < 0) {
        snprintf(err, errsz, "AMS could not be signed");
        rc = ARC_SEAL_SIGN_FAILED;
        goto out;
    }

    /* The AS covers every set, oldest first: a header of just the ARC fields, newest
       on top, so the bottom-up selection of dkim_sign_compute_b takes them in order.
       When the chain failed, only the new set is sealed (§5.1.1: nothing older can
       be vouched for). */
    const char *as_names[3 * ARC_SETS_MAX + 2];
    size_t nas = 0;
    seal->n = 0;
    struct dkim_header ams_h;
    ams_h.n = 0;
    if (dkim_split_header(ams.data, ams.len, &ams_h, err, errsz) < 0 ||
        dkim_split_header(aar.data, aar.len, seal, err, errsz) < 0)   /* seal: AAR(new) */
        goto out;
    seal->fields[seal->n++] = ams_h.fields[0];
    size_t oldest = cv == ARC_CV_FAIL ? n : 0;
    for (size_t s = n; s-- > oldest;) {
        seal->fields[seal->n++] = h->fields[c->sets[s].as];
        seal->fields[seal->n++] = h->fields[c->sets[s].aar];
        seal->fields[seal->n++] = h->fields[c->sets[s].ams];
    }
    for (size_t s = oldest; s < n; s++) {
        as_names[nas++] = "arc-authentication-results";
        as_names[nas++] = "arc-message-signature";
        as_names[nas++] = "arc-seal";
    }
    as_names[nas++] = "arc-authentication-results";
    as_names[nas++] = "arc-message-signature";
    buf_reset(&tmp);
    if (buf_printf(&tmp, "ARC-Seal: i=%u; a=%s; cv=%s; d=%s; s=%s;\r\n\tt=%lld; b=", inst, algo,
                   arc_cv_name(cv), k->domain, k->selector, (long long)now) < 0 ||
        signed_field(k, seal, as_names, nas, &tmp, &as) < 0) {
        snprintf(err, errsz, "AS could not be signed");
        rc = ARC_SEAL_SIGN_FAILED;
        goto out;
    }
    if (buf_append(out, as.data, as.len) < 0 || buf_append(out, ams.data, ams.len) < 0 ||
        buf_append(out, aar.data, aar.len) < 0) {
        snprintf(err, errsz, "ARC set too long");
        goto out;
    }
    rc = 0;
out:
    buf_free(&aar);
    buf_free(&ams);
    buf_free(&as);
    buf_free(&tmp);
    free(c);
    free(seal);
    free(h);
    return rc;
}

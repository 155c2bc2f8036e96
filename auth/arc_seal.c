/* arc_seal — the next ARC set, signed through dkim_sign_compute_b. */
#include "auth/arc_seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int arc_seal_message(const struct dkim_sign_key *k, const char *ar, enum arc_cv cv, int64_t now,
                     const char *msg, size_t len, struct buf *out, char *err, size_t errsz)
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
    if (dkim_split_header(msg, len, h, err, errsz) < 0)
        goto out;
    char why[ARC_REASON_MAX];
    enum arc_cv found = arc_collect(h, c, why, sizeof why);
    /* A broken chain is sealed as fail at the next free instance, or not at all. */
    size_t n = found == ARC_CV_NONE ? 0 : c->n;
    if (found == ARC_CV_FAIL)
        cv = ARC_CV_FAIL;
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

    /* body hash, relaxed */
    unsigned char md[32];
    unsigned mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    struct dkim_body_canon *bc = malloc(sizeof *bc);
    if (!ctx || !bc || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        free(bc);
        snprintf(err, errsz, "out of memory hashing the body");
        goto out;
    }
    dkim_body_init(bc, DKIM_CANON_RELAXED, -1, sha_sink, ctx);
    dkim_body_feed(bc, msg + h->body_offset, len - h->body_offset);
    dkim_body_finish(bc);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    EVP_MD_CTX_free(ctx);
    free(bc);
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

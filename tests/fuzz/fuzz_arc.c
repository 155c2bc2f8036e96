/* libFuzzer target: the ARC header parser (set collection, AAR instance prefix), the
   AAR method-result reader (arc_aar_pass), the whole chain verifier, with a resolver
   that answers every lookup with the same (fuzzed) key record, the streaming entry
   fed the body in 7-octet chunks (it must agree with the whole-message call), and
   the sealer over the same message (an ed25519 key made once), and the instance a
   sealer continues at (arc_max_instance). Input: first line
   the key record, the rest a message. */
#include "auth/arc.h"
#include "auth/arc_seal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *fuzz_record;
static size_t fuzz_record_len;

static void *lookup(void *ctx, const char *name, dkim_txt_done done, void *arg)
{
    const char *t[1] = { fuzz_record };
    size_t l[1] = { fuzz_record_len };
    done(arg, DKIM_DNS_OK, t, l, 1);
    return NULL;
}

static void stream_done(void *arg, const struct arc_result *r) { *(struct arc_result *)arg = *r; }

static EVP_PKEY *seal_key;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[128];
    seal_key = dkim_keygen(DKIM_ALGO_ED25519_SHA256, 0, err, sizeof err);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t rlen = nl ? (size_t)(nl - s) : size;
    const char *msg = nl ? nl + 1 : s + size;
    size_t mlen = size - (size_t)(msg - s);

    size_t rest = 0;
    unsigned i = arc_aar_instance(s, size, &rest);
    if (i && (i > ARC_SETS_MAX + 1 || rest > size))
        __builtin_trap();

    char *z = malloc(mlen + 1);
    if (z) {
        memcpy(z, msg, mlen);
        z[mlen] = '\0';
        const char *m = arc_aar_pass(z);
        if (m && strcmp(m, "dmarc") && strcmp(m, "spf") && strcmp(m, "dkim"))
            __builtin_trap();
        free(z);
    }

    struct dkim_header *h = malloc(sizeof *h);
    struct arc_chain *c = malloc(sizeof *c);
    char why[ARC_REASON_MAX];
    size_t hlen = mlen;
    if (h && c && dkim_split_header(msg, mlen, h, why, sizeof why) == 0) {
        hlen = h->body_offset;
        enum arc_cv cv = arc_collect(h, c, why, sizeof why);
        if (cv == ARC_CV_PASS && (c->n == 0 || c->n > ARC_SETS_MAX))
            __builtin_trap();
        /* where a sealer continues: within 0..51, and the chain's own top when whole */
        unsigned top = arc_max_instance(h);
        if (top > ARC_SETS_MAX + 1 || (cv == ARC_CV_PASS && top != c->n))
            __builtin_trap();
    }
    free(c);
    free(h);

    fuzz_record = s;
    fuzz_record_len = rlen;
    struct dkim_resolver r = { lookup, NULL, NULL };
    struct arc_result res;
    if (arc_verify_message(&r, msg, mlen, &res) == 0) {
        char line[1024];
        arc_result_format(&res, "192.0.2.1", line, sizeof line);
        if (res.status == ARC_CV_PASS && (res.n == 0 || res.oldest_pass > res.n))
            __builtin_trap();
        struct arc_verifier *v = arc_verify_new(&r);
        if (v && arc_verify_header(v, msg, hlen) == 0) {
            for (size_t off = hlen; off < mlen; off += 7)
                arc_verify_body(v, msg + off, mlen - off < 7 ? mlen - off : 7);
            struct arc_result *sr = calloc(1, sizeof *sr);
            if (sr) {
                arc_verify_finish(v, stream_done, sr);
                if (sr->n != res.n || sr->status != res.status || sr->oldest_pass != res.oldest_pass)
                    __builtin_trap();
            }
            free(sr);
        }
        arc_verify_free(v);
    }
    if (seal_key) {
        struct dkim_sign_key k = { .pkey = seal_key, .algo = DKIM_ALGO_ED25519_SHA256, .domain = "x.test", .selector = "s" };
        struct buf out;
        char err[256];
        buf_init(&out, 1 << 20);
        arc_seal_message(&k, "mx.x.test; spf=pass", ARC_CV_PASS, 1700000000, msg, mlen, &out, err, sizeof err);
        buf_free(&out);
    }
    return 0;
}

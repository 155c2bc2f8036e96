/* libFuzzer target: the DKIM parsers on untrusted bytes — tag lists, key records,
   header splitting, header and body canonicalisation, and the whole verifier with
   a resolver that answers every lookup with the same (fuzzed) key record. */
#include "auth/dkim_canon.h"
#include "auth/dkim_key.h"
#include "auth/dkim_tags.h"
#include "auth/dkim_verify.h"

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

static void sink(void *arg, const unsigned char *p, size_t n) { *(size_t *)arg += n; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    /* first line: a key record; the rest: a message */
    const char *nl = memchr(s, '\n', size);
    size_t rlen = nl ? (size_t)(nl - s) : size;
    const char *msg = nl ? nl + 1 : s + size;
    size_t mlen = size - (size_t)(msg - s);

    struct dkim_taglist tl;
    char err[256];
    dkim_tags_parse(s, size, &tl, err, sizeof err);
    struct dkim_pubkey key;
    if (dkim_pubkey_parse(s, rlen, &key, err, sizeof err) == DKIM_KEY_OK)
        dkim_pubkey_free(&key);

    struct dkim_header *h = malloc(sizeof *h);
    if (h && dkim_split_header(msg, mlen, h, err, sizeof err) == 0) {
        struct buf out;
        buf_init(&out, 1 << 20);
        for (size_t i = 0; i < h->n; i++) {
            dkim_canon_header(DKIM_CANON_RELAXED, h->fields[i].start, h->fields[i].len, true, &out);
            dkim_canon_header(DKIM_CANON_SIMPLE, h->fields[i].start, h->fields[i].len, true, &out);
        }
        buf_free(&out);
    }
    free(h);
    for (int c = 0; c < 2; c++) {
        size_t n = 0;
        struct dkim_body_canon b;
        dkim_body_init(&b, c ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE, c ? 7 : -1, sink, &n);
        dkim_body_feed(&b, msg, mlen / 2);
        dkim_body_feed(&b, msg + mlen / 2, mlen - mlen / 2);
        dkim_body_finish(&b);
        if (n != b.hashed || (!c && n != b.total))
            __builtin_trap();
    }

    fuzz_record = s;
    fuzz_record_len = rlen;
    struct dkim_resolver r = { lookup, NULL, NULL };
    struct dkim_verify_opts o;
    dkim_verify_opts_init(&o, 1600000000);
    struct dkim_sig_result *res;
    size_t n;
    if (dkim_verify_message(&o, &r, msg, mlen, &res, &n) == 0) {
        char line[512];
        for (size_t i = 0; i < n; i++)
            dkim_result_format(&res[i], true, line, sizeof line);
        free(res);
    }
    return 0;
}

/* libFuzzer target: lib/msg_header.c. The first octet seeds a random chunking of the
   rest; the chunked scan must give exactly the one-shot result, the end reported while
   streaming must match end_offset, and the holdback must stay bounded. Small kept
   values (value_max 64) exercise truncation. */
#include "lib/msg_header.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"From", "Sender", "To", "Subject", "X", "Received"};

static void setup(struct msg_header *s)
{
    struct msg_header_opts o = {.value_max = 64};
    msg_header_init(s, &o);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (msg_header_watch(s, names[i], i % 3) != 0)
            abort();
}

static void scan(struct msg_header *s, const uint8_t *in, size_t n, unsigned seed)
{
    size_t at = 0;
    int ended = 0;
    setup(s);
    while (at < n) {
        size_t k = seed ? 1 + (seed >> 16) % 17 : n - at;
        seed = seed * 1103515245u + 12345u;
        if (seed == 0)
            seed = 1;
        if (k > n - at)
            k = n - at;
        size_t held = msg_header_holdback(s);
        ptrdiff_t rel = 0;
        enum msg_header_result r = msg_header_feed(s, in + at, k, &rel);
        if (r == MSG_HEADER_ERROR)
            abort();
        if (r == MSG_HEADER_ENDED) {
            ended++;
            if ((int64_t)at + rel != (int64_t)s->end_offset || rel > (ptrdiff_t)k ||
                rel < -(ptrdiff_t)held)
                abort();
        }
        if (msg_header_holdback(s) > MSG_HEADER_LINE_MAX + 1)
            abort();
        at += k;
    }
    if (msg_header_finish(s) == MSG_HEADER_ENDED)
        ended++;
    if (ended != 1 || s->end == MSG_HEADER_END_NONE || s->end_offset > s->body_offset ||
        s->body_offset > n)
        abort();
    if (s->end == MSG_HEADER_END_EMPTY_LINE &&
        (s->body_offset != s->end_offset + 2 || memcmp(in + s->end_offset, "\r\n", 2) != 0))
        abort();
    if (s->end_offset > 0 && s->end != MSG_HEADER_END_EOF &&
        (s->end_offset < 2 || memcmp(in + s->end_offset - 2, "\r\n", 2) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned seed = data[0] | 1u;
    struct msg_header a, b;
    scan(&a, data + 1, size - 1, 0);
    scan(&b, data + 1, size - 1, seed);
    if (a.end != b.end || a.end_offset != b.end_offset || a.body_offset != b.body_offset ||
        a.fields != b.fields || a.received != b.received || a.long_line != b.long_line ||
        a.unterminated != b.unterminated || a.malformed_reason != b.malformed_reason)
        abort();
    for (size_t w = 0; w < a.nwatch; w++) {
        if (a.watch[w].count != b.watch[w].count)
            abort();
        for (size_t i = 0; i < a.watch[w].keep && i < a.watch[w].count; i++) {
            const struct msg_header_value *x = &a.watch[w].values[i], *y = &b.watch[w].values[i];
            if (x->len != y->len || x->truncated != y->truncated || x->len > 64 ||
                (x->len && memcmp(x->data, y->data, x->len) != 0))
                abort();
        }
    }
    msg_header_free(&a);
    msg_header_free(&b);
    return 0;
}

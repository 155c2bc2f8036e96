/* libFuzzer target: delivery/smtp_reply.c and the body encoder of smtp_cmds.c.
   The input is fed to the reply parser whole and again in pieces cut at the
   positions the first octet chooses; both must give the same replies. Every reply
   must keep its bounds and parse as EHLO without harm. The input is also run
   through the DATA encoder, whose output must never hold a bare CR or LF nor a
   line ".\r\n" before the terminator. */
#include "delivery/smtp_cmds.h"
#include "delivery/smtp_reply.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct seen {
    int n;
    int code[64];
    size_t len[64];
    int error;
};

static void run(const uint8_t *d, size_t n, size_t step, struct seen *s)
{
    static struct smtp_reply_parser p;
    static struct smtp_reply r;
    smtp_reply_parser_init(&p);
    memset(s, 0, sizeof *s);
    size_t off = 0;
    while (off < n && !s->error) {
        size_t piece = step && step < n - off ? step : n - off;
        size_t pos = 0;
        while (pos < piece) {
            size_t used;
            char err[160];
            enum smtp_feed_result fr = smtp_reply_feed(&p, (const char *)d + off + pos, piece - pos, &used, &r, err,
                                                       sizeof err);
            if (used > piece - pos)
                abort();
            pos += used;
            if (fr == SMTP_FEED_ERROR) {
                s->error = 1;
                break;
            }
            if (fr == SMTP_FEED_MORE)
                break;
            if (r.code < 200 || r.code > 599 || r.len >= sizeof r.text || strlen(r.text) != r.len ||
                r.nlines == 0 || r.nlines > SMTP_REPLY_MAX_LINES)
                abort();
            struct smtp_ehlo e;
            smtp_ehlo_parse(&r, &e);
            char flat[300];
            smtp_reply_flatten(&r, flat, sizeof flat);
            if (s->n < 64) {
                s->code[s->n] = r.code;
                s->len[s->n] = r.len;
            }
            s->n++;
        }
        off += piece;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] % 17 + 1;
    data++, size--;
    struct seen a, b;
    run(data, size, 0, &a);
    run(data, size, step, &b);
    /* Replies before an error are the same whichever way the input was cut. */
    if (!a.error && !b.error && a.n != b.n)
        abort();
    int m = a.n < b.n ? a.n : b.n;
    for (int i = 0; i < m && i < 64; i++)
        if (a.code[i] != b.code[i] || a.len[i] != b.len[i])
            abort();

    char *enc = malloc(2 * size + 8);
    if (!enc)
        return 0;
    struct smtp_body body;
    smtp_body_init(&body);
    size_t o = 0;
    for (size_t off = 0; off < size; off += step) {
        size_t k = size - off < step ? size - off : step;
        o += smtp_body_encode(&body, (const char *)data + off, k, enc + o);
    }
    char *tail = malloc(o + 8);
    if (!tail) {
        free(enc);
        return 0;
    }
    memcpy(tail, enc, o);
    size_t t = o + smtp_body_finish(&body, tail + o);
    for (size_t i = 0; i < t; i++) {
        if (tail[i] == '\r' && (i + 1 >= t || tail[i + 1] != '\n'))
            abort();
        if (tail[i] == '\n' && (i == 0 || tail[i - 1] != '\r'))
            abort();
        bool line_start = i == 0 || tail[i - 1] == '\n';
        if (line_start && i + 3 <= t - 3 && !memcmp(tail + i, ".\r\n", 3))
            abort();
    }
    if (t < 3 || memcmp(tail + t - 3, ".\r\n", 3))
        abort();
    free(tail);
    free(enc);
    return 0;
}

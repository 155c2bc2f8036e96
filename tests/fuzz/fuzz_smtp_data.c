/* libFuzzer target: smtpd/smtp_data.c. Feeding the input whole or split at an
   arbitrary point must give the same bytes, flags and end. */
#include "smtpd/smtp_data.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t run(const uint8_t *in, size_t n, size_t split, char *out, struct smtp_data *d)
{
    size_t total = 0, olen, used;
    smtp_data_init(d);
    used = smtp_data_feed(d, (const char *)in, split, out, &olen);
    total += olen;
    if (used == split && !d->done) {
        used += smtp_data_feed(d, (const char *)in + split, n - split, out + total, &olen);
        total += olen;
    }
    if (olen > n + 2)
        abort();
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] % size;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    if (split > n)
        split = n;
    char *a = malloc(n + 4), *b = malloc(n + 4);
    struct smtp_data da, db;
    size_t la = run(in, n, n, a, &da);
    size_t lb = run(in, n, split, b, &db);
    if (la != lb || memcmp(a, b, la) != 0 || da.done != db.done || da.bare_lf != db.bare_lf ||
        da.bare_cr != db.bare_cr || da.long_line != db.long_line)
        abort();
    if (la > n)
        abort();
    free(a);
    free(b);
    return 0;
}

/* libFuzzer target: smtpd/smtp_data.c. Feeding the input whole or split at an
   arbitrary point must give the same bytes, flags and end. */
#include "smtpd/smtp_data.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t run(const uint8_t *in, size_t n, size_t split, char *out, struct smtp_data *d, bool normalize)
{
    size_t total = 0, olen, used;
    smtp_data_init(d);
    smtp_data_set_normalize(d, normalize);
    used = smtp_data_feed(d, (const char *)in, split, out, &olen);
    total += olen;
    if (used == split && !d->done) {
        used += smtp_data_feed(d, (const char *)in + split, n - split, out + total, &olen);
        total += olen;
    }
    if (total > SMTP_DATA_OUT_MAX(n))
        abort();
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] % size;
    bool normalize = data[0] & 0x80;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    if (split > n)
        split = n;
    char *a = malloc(SMTP_DATA_OUT_MAX(n) + 4), *b = malloc(SMTP_DATA_OUT_MAX(n) + 4);
    struct smtp_data da, db;
    size_t la = run(in, n, n, a, &da, normalize);
    size_t lb = run(in, n, split, b, &db, normalize);
    if (la != lb || memcmp(a, b, la) != 0 || da.done != db.done || da.bare_lf != db.bare_lf ||
        da.bare_cr != db.bare_cr || da.long_line != db.long_line || da.nul != db.nul)
        abort();
    if (!normalize && la > n)
        abort();
    /* Normalized output has no bare CR or LF at all. */
    for (size_t i = 0; normalize && i < la; i++)
        if ((a[i] == '\n' && (i == 0 || a[i - 1] != '\r')) || (a[i] == '\r' && (i + 1 >= la || a[i + 1] != '\n')))
            abort();
    free(a);
    free(b);
    return 0;
}

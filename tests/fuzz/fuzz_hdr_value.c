/* libFuzzer target: lib/hdr_value.c. Whatever the input, a value written with
   hdr_value_append reads back (hdr_value_read) as exactly one value covering all
   of what was written, and equal to the input where the input is printable ASCII;
   comment text never holds an unescaped parenthesis. */
#include "lib/hdr_value.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *v = malloc(size + 1);
    memcpy(v, data, size);
    v[size] = '\0';
    bool printable = true;
    for (size_t i = 0; i < strlen(v); i++)
        printable &= v[i] >= 0x20 && v[i] < 0x7f;
    struct buf b;
    buf_init(&b, 4 * size + 16);
    if (hdr_value_append(&b, v) == 0 && b.len > 0) {
        char *back = malloc(b.len + 1);
        size_t end = hdr_value_read(b.data, 0, b.len, back, b.len + 1);
        if (end != b.len)
            abort();
        if (printable && strcmp(back, v) != 0)
            abort();
        free(back);
    }
    buf_reset(&b);
    if (hdr_ctext_append(&b, v) == 0)
        for (size_t i = 0; i < b.len; i++) {
            if (b.data[i] == '\\')
                i++;
            else if (b.data[i] == '(' || b.data[i] == ')')
                abort();
        }
    size_t skip = hdr_skip_cfws(v, 0, strlen(v));
    if (skip > strlen(v))
        abort();
    buf_free(&b);
    free(v);
    return 0;
}

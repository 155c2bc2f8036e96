/* libFuzzer target: queue/maildrop.c's drop-file parser and wire conversion
   (the files come from any local user). */
#include "queue/maildrop.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope e;
    size_t body;
    char err[256];
    env_init(&e);
    if (maildrop_parse((const char *)data, size, &e, &body, err, sizeof err) == 0) {
        if (body > size || e.nrcpts == 0 || e.nrcpts > MAILDROP_MAX_RCPTS)
            abort();
        struct buf b;
        bool eight;
        buf_init(&b, 4 * size + 16);
        /* The shared check and the conversion agree: the check passes (with no
           size limit to speak of) exactly when the conversion does, and then the
           check's wire size is the converted size. */
        int checked = maildrop_check_message((const char *)data + body, size - body, ~0ULL, err, sizeof err);
        int converted = maildrop_to_wire((const char *)data + body, size - body, &b, &eight, err, sizeof err);
        if (checked != converted)
            abort();
        if (converted == 0 && maildrop_check_message((const char *)data + body, size - body,
                                                     (unsigned long long)b.len + MAILDROP_TRACE_MAX, err,
                                                     sizeof err) != 0)
            abort();
        if (converted == 0) {
            for (size_t i = 0; i < b.len; i++)      /* every line ends in CRLF, no bare CR or LF */
                if ((b.data[i] == '\n' && (i == 0 || b.data[i - 1] != '\r')) ||
                    (b.data[i] == '\r' && (i + 1 >= b.len || b.data[i + 1] != '\n')))
                    abort();
        }
        buf_free(&b);
    }
    env_free(&e);
    return 0;
}

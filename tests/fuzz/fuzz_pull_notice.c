/* libFuzzer target: pull/notice.c's record parser. Any record it accepts
   serialises back to exactly the same bytes (records are canonical), and every
   text field is one line. The checksum is appended to inputs without an end line so the fuzzer reaches the
   field parser. */
#include "pull/notice.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4000)
        return 0;
    char *rec = malloc(size + 16);
    memcpy(rec, data, size);
    size_t len = size;
    if (size < 13 || memcmp(rec + size - 13, "end ", 4) != 0) {     /* give it a valid end line */
        len += (size_t)snprintf(rec + size, 16, "end %08lx\n", (unsigned long)crc32(0, data, (uInt)size));
    }
    struct pull_notice n;
    char err[128];
    if (notice_parse(rec, len, &n, err, sizeof err) == 0) {
        char out[4096];
        int m = notice_serialize(&n, out, sizeof out);
        if (m < 0 || (size_t)m != len || memcmp(out, rec, len) != 0)
            abort();
        if (strchr(n.subject, '\n') || strchr(n.sender, '\n') || strchr(n.peer_name, '\r'))
            abort();
    }
    free(rec);
    return 0;
}

/* libFuzzer target: delivery/tls_txt.c's _mta-sts record parser on any bytes. An
   accepted record begins with v=STSv1 and yields an id of 1-32 letters and
   digits that occurs in the record; a refused one leaves id untouched. */
#include "delivery/tls_txt.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char id[STS_ID_MAX + 1] = "untouched", err[128];
    const char *rec = (const char *)data;
    if (sts_txt_parse(rec, size, id, err, sizeof err) == 0) {
        size_t n = strlen(id);
        if (n == 0 || n > STS_ID_MAX || size < 7 || memcmp(rec, "v=STSv1", 7) != 0 || !memmem(rec, size, id, n))
            abort();
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)id[i]))
                abort();
    } else if (strcmp(id, "untouched") != 0) {
        abort();
    }
    const char *recs[2] = { rec, rec };
    size_t lens[2] = { size, size };
    if (tls_txt_select(recs, lens, 2, "v=STSv1") != -1)   /* two alike are never one */
        abort();
    return 0;
}

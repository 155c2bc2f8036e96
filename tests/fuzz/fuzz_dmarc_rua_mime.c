/* libFuzzer target: auth/dmarc_rua_mime.c, the report attachments of a whole
   message. Never a crash or leak; success means at least one report, and a
   refusal always says why. */
#include "auth/dmarc_rua_parse.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmarc_rua_report *r;
    size_t n;
    char err[256];
    err[0] = '\0';
    if (dmarc_rua_from_message((const char *)data, size, &r, &n, err, sizeof err) == 0) {
        if (n == 0 || n > DMARC_RUA_MAX_PARTS)
            abort();
        for (size_t i = 0; i < n; i++)
            dmarc_rua_report_free(&r[i]);
        free(r);
    } else if (!err[0]) {
        abort();
    }
    return 0;
}

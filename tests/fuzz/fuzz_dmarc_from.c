/* libFuzzer target: auth/dmarc_from.c on header sections from the network. An OK
   result has a canonical domain that canonicalises to itself; any other result has
   no domain. */
#include "auth/dmarc_from.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmarc_from f;
    dmarc_from_extract((const char *)data, size, &f);
    if (f.status == DMARC_FROM_OK) {
        char again[DMARC_DOMAIN_MAX + 1];
        if (dmarc_domain_canon(f.domain, again, sizeof again) < 0 || strcmp(again, f.domain))
            abort();
    } else if (f.domain[0]) {
        abort();
    }
    if (strlen(f.reason) >= sizeof f.reason || strlen(f.written) >= sizeof f.written)
        abort();
    return 0;
}

/* libFuzzer target: delivery/tls_txt.c's _smtp._tls record parser on any bytes.
   An accepted record has 1 to TLSRPT_RUA_MAX URIs, each a mailto: address
   (local@domain, no space or control) or an https:// URI. */
#include "delivery/tls_txt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tlsrpt_record r;
    char err[128];
    if (tlsrpt_txt_parse((const char *)data, size, &r, err, sizeof err) != 0)
        return 0;
    if (r.n == 0 || r.n > TLSRPT_RUA_MAX)
        abort();
    for (unsigned i = 0; i < r.n; i++) {
        const char *u = r.rua[i].uri;
        size_t n = strnlen(u, TLSRPT_URI_MAX);
        if (n == 0 || n == TLSRPT_URI_MAX)
            abort();
        for (size_t k = 0; k < n; k++)
            if ((unsigned char)u[k] <= 0x20 || (unsigned char)u[k] > 0x7e)
                abort();
        if (r.rua[i].scheme == TLSRPT_HTTPS ? strncasecmp(u, "https://", 8) != 0 : strchr(u, '@') == NULL)
            abort();
    }
    return 0;
}

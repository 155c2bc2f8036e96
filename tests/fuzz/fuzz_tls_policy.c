/* libFuzzer target: delivery/tls_policy.c's table parser on any bytes. A table
   that parses answers a valid level for each of its own lines' domains and for
   unrelated names; a refused one leaves the previous table (one entry) intact. */
#include "delivery/tls_policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tls_policy *p = tls_policy_new(TLS_LEVEL_DANE);
    if (!p)
        return 0;
    char err[256];
    const char *seed = "keep.example verify\n";
    if (tls_policy_parse(p, "seed", seed, strlen(seed), err, sizeof err) != 0)
        abort();
    if (tls_policy_parse(p, "fuzz", (const char *)data, size, err, sizeof err) == 0) {
        if (tls_policy_lookup(p, "unrelated.invalid") > TLS_LEVEL_VERIFY)
            abort();
        /* every line's first word, when it is a listed domain, gets its level */
        char line[TLS_POLICY_MAX_LINE + 1];
        size_t pos = 0;
        for (unsigned n = 0; pos < size && n < 1000; n++) {
            const char *nl = memchr(data + pos, '\n', size - pos);
            size_t ll = nl ? (size_t)(nl - (const char *)data - pos) : size - pos;
            if (ll < sizeof line) {
                memcpy(line, data + pos, ll);
                line[ll] = '\0';
                char *save = NULL, *dom = strtok_r(line, " \t\r#", &save);
                if (dom && dom[0] != '.' && tls_policy_lookup(p, dom) > TLS_LEVEL_VERIFY)
                    abort();
            }
            pos += ll + 1;
        }
    } else if (tls_policy_lookup(p, "keep.example") != TLS_LEVEL_VERIFY || tls_policy_count(p) != 1 ||
               strncmp(err, "fuzz:", 5) != 0) {
        abort();
    }
    tls_policy_free(p);
    return 0;
}

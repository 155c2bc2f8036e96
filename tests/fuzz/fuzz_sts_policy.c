/* libFuzzer target: delivery/mta_sts_policy.c's policy file parser on any bytes.
   An accepted policy has a known mode, max_age within the RFC's bound, mx
   patterns unless mode none, and each pattern matches a host built from it. */
#include "delivery/mta_sts_policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sts_policy p;
    char err[128];
    if (sts_policy_parse((const char *)data, size, &p, err, sizeof err) != 0)
        return 0;
    if (p.mode > STS_MODE_ENFORCE || p.max_age > STS_MAX_AGE_MAX || p.n_mx > STS_MX_MAX ||
        (p.n_mx == 0 && p.mode != STS_MODE_NONE))
        abort();
    for (unsigned i = 0; i < p.n_mx; i++) {
        const char *m = p.mx[i];
        char host[STS_MX_LEN + 8];
        if (m[0] == '*')
            snprintf(host, sizeof host, "x%s", m + 1);
        else
            snprintf(host, sizeof host, "%s.", m);
        if (!sts_mx_pattern_match(m, host) || !sts_policy_mx_ok(&p, host))
            abort();
        if (m[0] == '*' && sts_mx_pattern_match(m, m + 2))   /* never the bare parent */
            abort();
    }
    return 0;
}

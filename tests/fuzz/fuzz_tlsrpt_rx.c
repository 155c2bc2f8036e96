/* libFuzzer target: delivery/tlsrpt_parse.c, received TLS reports: the bytes as
   a bare report (JSON or gzip) and as a whole message. Never a crash or leak;
   what is accepted keeps its bounds (policies, failure details, text fields
   NUL-terminated), and a refusal always says why. */
#include "delivery/tlsrpt_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(const struct tlsrpt_rx_report *r)
{
    size_t details = 0;
    if (r->npolicies > TLSRPT_RX_POLICIES_MAX || !memchr(r->org, 0, sizeof r->org) ||
        !memchr(r->report_id, 0, sizeof r->report_id) || !r->org[0] || r->end < r->start)
        abort();
    for (size_t i = 0; i < r->npolicies; i++) {
        details += r->policies[i].nfail;
        if (!r->policies[i].domain[0])
            abort();
        for (size_t k = 0; k < r->policies[i].nfail; k++)
            if (!memchr(r->policies[i].fail[k].reason, 0, sizeof r->policies[i].fail[k].reason) ||
                strpbrk(r->policies[i].fail[k].reason, "\t\r\n"))
                abort();
    }
    if (details > TLSRPT_RX_DETAILS_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tlsrpt_rx_report *r;
    size_t n;
    char err[256];
    for (int as_message = 0; as_message < 2; as_message++) {
        err[0] = '\0';
        int rc = as_message ? tlsrpt_rx_from_message((const char *)data, size, &r, &n, err, sizeof err)
                            : tlsrpt_rx_from_bytes((const char *)data, size, &r, &n, err, sizeof err);
        if (rc == 0) {
            if (n == 0 || n > TLSRPT_RX_PARTS_MAX)
                abort();
            for (size_t i = 0; i < n; i++) {
                check(&r[i]);
                tlsrpt_rx_free(&r[i]);
            }
            free(r);
        } else if (!err[0]) {
            abort();
        }
    }
    return 0;
}

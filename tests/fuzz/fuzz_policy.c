/* libFuzzer target: smtpd/smtp_dkim_dmarc.c's header-section helpers (the From:
   domain, the removal of forged Authentication-Results), on any header bytes.
   Stripping never adds bytes, and stripping twice changes nothing more. */
#include "smtpd/smtp_dkim_dmarc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char dom[256];
    if (policy_from_domain(s, size, dom, sizeof dom) == 0 && (strlen(dom) == 0 || strlen(dom) >= sizeof dom))
        abort();
    struct buf a, b;
    buf_init(&a, size + 1);
    buf_init(&b, size + 1);
    int n = policy_strip_forged_ar(s, size, "mx.example.test", &a);
    if (n < 0 || a.len > size)
        abort();
    if (policy_strip_forged_ar(a.data ? a.data : "", a.len, "mx.example.test", &b) != 0 || b.len != a.len)
        abort();
    buf_free(&a);
    buf_free(&b);
    return 0;
}

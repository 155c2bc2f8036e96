/* libFuzzer target: auth/spf_record.c and auth/spf_macro.c, on bytes from DNS.
   A record that parses must have parsed whole; a macro string that passes the
   syntax check must expand (or fail only for length), never crash. */
#include "auth/spf_macro.h"
#include "auth/spf_record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct spf_record r;
    char err[256];
    if (spf_record_parse(s, size, &r, err, sizeof err) == 0)
        spf_record_free(&r);
    struct spf_macro_vars v = {
        .local = "strong-bad", .sender_domain = "email.example.com", .domain = "email.example.com",
        .family = AF_INET, .ip = { 192, 0, 2, 3 }, .helo = "mx.example.org", .validated = "unknown",
        .receiver = "mx.example.net", .now = 1795392000,
    };
    char out[SPF_EXPANSION_MAX + 1];
    for (int ctx = SPF_MACRO_DOMAIN; ctx <= SPF_MACRO_EXPLAIN; ctx++) {
        bool ok = spf_macro_check(s, size, ctx, err, sizeof err) == 0;
        int e = spf_macro_expand(s, size, ctx, &v, out, sizeof out, err, sizeof err);
        if (e == 0 && strlen(out) >= sizeof out)
            abort();
        if (e == 0 && !ok)
            abort();        /* expansion must not accept what the syntax check refuses */
        /* "no such name" (-2) is only for a well-formed domain-spec */
        if (e == -2 && (ctx != SPF_MACRO_DOMAIN || !ok))
            abort();
        if (e < -2 || e > 0)
            abort();
    }
    return 0;
}

/* arc_aar — what the newest ARC-Authentication-Results says passed, for the
   trusted-sealer override of DMARC (RFC 8617 §7.2.1). */
#include "auth/arc.h"
#include "lib/buf.h"
#include "lib/hdr_value.h"

#include <string.h>
#include <strings.h>

/* The index after the next ';' outside comments and quoted strings, or n. */
static size_t after_semicolon(const char *s, size_t i, size_t n)
{
    while (i < n) {
        if (s[i] == '(') {
            size_t j = hdr_skip_cfws(s, i, n);
            i = j > i ? j : i + 1;
        } else if (s[i] == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\' && i + 1 < n)
                    i++;
            i++;
        } else if (s[i++] == ';') {
            return i;
        }
    }
    return n;
}

static size_t token_end(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == '-' || s[i] == '_' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
                     ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z')))
        i++;
    return i;
}

static bool token_is(const char *s, size_t a, size_t e, const char *name)
{
    return e - a == strlen(name) && !strncasecmp(s + a, name, e - a);
}

const char *arc_aar_pass(const char *aar)
{
    static const char *const methods[] = { "dmarc", "spf", "dkim" };
    bool passed[3] = { false, false, false };
    size_t n = strnlen(aar, 4096);
    /* The first item is the authserv-id; each later one a method result. */
    for (size_t i = after_semicolon(aar, 0, n); i < n; i = after_semicolon(aar, i, n)) {
        size_t a = hdr_skip_cfws(aar, i, n), e = token_end(aar, a, n);
        size_t k = e;
        if (k < n && aar[k] == '/')             /* method version (RFC 8601 2.2) */
            k = token_end(aar, k + 1, n);
        k = hdr_skip_cfws(aar, k, n);
        if (k >= n || aar[k] != '=')
            continue;
        size_t ra = hdr_skip_cfws(aar, k + 1, n), re = token_end(aar, ra, n);
        if (!token_is(aar, ra, re, "pass"))
            continue;
        for (size_t m = 0; m < 3; m++)
            passed[m] |= token_is(aar, a, e, methods[m]);
    }
    for (size_t m = 0; m < 3; m++)
        if (passed[m])
            return methods[m];
    return NULL;
}

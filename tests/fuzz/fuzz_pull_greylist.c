/* libFuzzer target: pull/greylist.c's record parser and triplet keys. A parsed
   record formats back to the same text; a key is bounded, one line, and has
   exactly two spaces; a decision over a parsed record never moves time backwards. */
#include "pull/greylist.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct greylist_record r, next;
    if (greylist_parse((const char *)data, size, &r) == 0) {
        char out[80];
        int n = greylist_format(&r, out, sizeof out);
        if (n < 0 || (size_t)n != size || memcmp(out, data, size))
            abort();
        struct greylist_params p = { 300, 86400, 36 * 86400 };
        const char *why;
        greylist_decide(&p, &r, r.last + 1, &next, &why);
        if (next.last < r.last && next.first < r.first)
            abort();
    }
    char in[600];
    size_t n = size < sizeof in - 1 ? size : sizeof in - 1;
    memcpy(in, data, n);
    in[n] = '\0';
    char *rcpt = strchr(in, '|');
    if (rcpt)
        *rcpt++ = '\0';
    struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
    memcpy(a.sin6_addr.s6_addr, data, size < 16 ? size : 16);
    char key[GREYLIST_KEY_MAX];
    int k = greylist_key((struct sockaddr *)&a, in, rcpt ? rcpt : "r@x", key, sizeof key);
    if (k >= 0) {
        if ((size_t)k >= sizeof key || strchr(key, '\n') || strchr(key, '\r'))
            abort();
        int spaces = 0;
        for (char *p = key; *p; p++)
            spaces += *p == ' ';
        if (spaces != 2)
            abort();
    }
    return 0;
}

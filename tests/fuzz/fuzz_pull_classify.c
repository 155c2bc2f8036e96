/* libFuzzer target: pull/classify.c's parsers of list entries (peer, sender
   pattern, user name). A parsed peer's canonical text parses back to itself; a
   pattern comes out lower-case and parses again; the decisions never crash on
   what the parsers accept. */
#include "pull/classify.h"

#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[512];
    size_t n = size < sizeof in - 1 ? size : sizeof in - 1;
    memcpy(in, data, n);
    in[n] = '\0';
    const char *why;
    struct pull_peer_entry e, again;
    if (pull_peer_parse(in, &e, &why) == 0) {
        if (pull_peer_parse(e.text, &again, &why) < 0 || strcmp(again.text, e.text))
            abort();
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000201) };
        struct pull_peer_facts f = { .ip = (struct sockaddr *)&a, .fcrdns = in, .verified_domain = in,
                                     .allow_verified_domain = true };
        struct pull_verdict v;
        pull_classify_peer(&e, 1, &f, &v);
        if (strlen(v.reason) >= sizeof v.reason)
            abort();
    }
    char p[ADDR_PATH_MAX + 1], p2[ADDR_PATH_MAX + 1];
    if (pull_pattern_parse(in, p, sizeof p, &why) == 0) {
        for (char *c = p; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                abort();
        if (pull_pattern_parse(p, p2, sizeof p2, &why) < 0 || strcmp(p, p2))
            abort();
        struct pull_user_entry ue = { .deny = size & 1 };
        memcpy(ue.pattern, p, sizeof ue.pattern);
        struct pull_verdict v;
        pull_classify_sender(&ue, 1, in, true, &v);
    }
    char u[PULL_USER_MAX + 1];
    if (pull_user_name(in, u, sizeof u, &why) == 0 && (strchr(u, '/') || strchr(u, ' ')))
        abort();
    return 0;
}

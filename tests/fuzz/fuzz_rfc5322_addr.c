/* libFuzzer target: lib/rfc5322_addr.c. The first octet picks the flags. Checks:
   errors point inside the input; every stored mailbox has a local part (possibly an
   empty quoted string) and a domain; "local_raw@domain" parses back to the same
   mailbox; rfc5322_from_domain agrees with the list parser. */
#include "lib/rfc5322_addr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CAP 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0] & (RFC5322_UTF8 | RFC5322_NO_GROUPS);
    const char *v = (const char *)data + 1;
    size_t n = size - 1;
    static struct rfc5322_mailbox box[CAP], again;
    struct rfc5322_list list, list2;
    struct rfc5322_error err;
    int r = rfc5322_parse_address_list(v, n, flags, box, CAP, &list, &err);
    if (r < 0) {
        if (err.pos > n || !err.reason)
            abort();
    } else {
        for (size_t i = 0; i < list.count && i < CAP; i++) {
            struct rfc5322_mailbox *m = &box[i];
            size_t lr = strlen(m->local_raw), ld = strlen(m->domain);
            if (lr == 0 || ld == 0 || ld != strlen(m->domain_lower) || m->pos >= n ||
                (m->is_group_member && m->group >= list.groups))
                abort();
            char text[RFC5322_LOCAL_MAX + RFC5322_DOMAIN_MAX + 2];
            memcpy(text, m->local_raw, lr);
            text[lr] = '@';
            memcpy(text + lr + 1, m->domain, ld);
            if (rfc5322_parse_address_list(text, lr + 1 + ld, flags, &again, 1, &list2, &err) <
                    0 ||
                list2.count != 1 || strcmp(again.local, m->local) != 0 ||
                strcmp(again.local_raw, m->local_raw) != 0 ||
                strcmp(again.domain, m->domain) != 0)
                abort();
        }
    }
    char dom[RFC5322_DOMAIN_MAX + 1];
    enum rfc5322_from_result f = rfc5322_from_domain(v, n, flags, dom, sizeof dom, &err);
    if ((flags & RFC5322_NO_GROUPS) == 0) {
        if ((r < 0) != (f == RFC5322_FROM_SYNTAX))
            abort();
        if (r == 0 && list.count == 1 && !box[0].domain_literal &&
            (f != RFC5322_FROM_OK || strcmp(dom, box[0].domain_lower) != 0))
            abort();
    }
    return 0;
}

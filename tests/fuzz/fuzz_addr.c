/* libFuzzer target: lib/addr.c. The first octet chooses the flags (UTF-8, <>,
   <Postmaster>); the rest is parsed as a Path and as a Mailbox. Anything accepted
   must format with addr_format and parse again to the same mailbox. */
#include "lib/addr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void same(const struct mailbox *a, const struct mailbox *b)
{
    if (strcmp(a->local, b->local) || strcmp(a->domain, b->domain) || a->domain_kind != b->domain_kind ||
        a->quoted != b->quoted || a->utf8 != b->utf8)
        abort();
}

static void check(const struct mailbox *m, bool utf8)
{
    char text[ADDR_PATH_MAX + 8], unq[ADDR_LOCAL_MAX + 1];
    struct mailbox again;
    const char *err = NULL;
    if (strlen(m->local) > ADDR_LOCAL_MAX || strlen(m->domain) > ADDR_DOMAIN_MAX)
        abort();
    if (m->utf8 && !utf8)
        abort();
    if (addr_local_unquoted(m, unq, sizeof unq) < 0)
        abort();
    if (addr_format(m, text + 1, sizeof text - 2) < 0)
        abort();
    if (m->domain_kind == ADDR_DOMAIN_NONE) {
        size_t n = strlen(text + 1), used;
        bool is_null;
        text[0] = '<';
        text[n + 1] = '>';
        if (addr_parse_path(text, n + 2, utf8, false, true, &used, &is_null, &again, &err) < 0 || used != n + 2)
            abort();
    } else if (addr_parse_mailbox(text + 1, strlen(text + 1), utf8, &again, &err) < 0) {
        abort();
    }
    same(m, &again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool utf8 = data[0] & 1, allow_null = data[0] & 2, allow_pm = data[0] & 4;
    const char *s = (const char *)data + 1;
    size_t len = size - 1;
    struct mailbox m;
    const char *err = NULL;
    size_t used = 0;
    bool is_null = false;
    if (addr_parse_path(s, len, utf8, allow_null, allow_pm, &used, &is_null, &m, &err) == 0) {
        if (used < 2 || used > len || used > ADDR_PATH_MAX || s[0] != '<' || s[used - 1] != '>')
            abort();
        if (is_null) {
            if (!allow_null || used != 2)
                abort();
        } else {
            if (m.domain_kind == ADDR_DOMAIN_NONE && !allow_pm)
                abort();
            check(&m, utf8);
        }
    } else if (!err || !*err) {
        abort();
    }
    err = NULL;
    if (addr_parse_mailbox(s, len, utf8, &m, &err) == 0) {
        if (m.domain_kind == ADDR_DOMAIN_NONE || len > ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX)
            abort();
        check(&m, utf8);
    } else if (!err || !*err) {
        abort();
    }
    (void)addr_is_domain(s, len, utf8);
    (void)addr_is_address_literal(s, len);
    (void)addr_utf8_valid(s, len);
    return 0;
}

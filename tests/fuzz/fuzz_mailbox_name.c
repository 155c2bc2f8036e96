/* libFuzzer target: delivery.c's mailbox-name rule (security review #6). The
   input is judged as a raw name and, when it parses as an address, as the local
   part the RCPT check sees. Whatever passes must be one safe file name that is
   never a lock or control file's: no "/" or control octet, no leading dot, no
   trailing dot or space, no ".lock" suffix in any case. */
#include "delivery/delivery.h"
#include "lib/buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void safe(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > ADDR_LOCAL_MAX || name[0] == '.' || name[n - 1] == '.' || name[n - 1] == ' ')
        abort();
    if (n >= 5 && str_nieq(name + n - 5, ".lock", 5))
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || name[i] == '/')
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    char raw[1025];
    memcpy(raw, data, size);
    raw[size] = '\0';
    const char *why = NULL;
    enum mailbox_name_verdict v = mailbox_name_check(raw, &why);
    if (v == MAILBOX_NAME_OK)
        safe(raw);
    else if (!why || !*why)
        abort();

    struct mailbox m;
    if (addr_parse_mailbox(raw, size, true, &m, &why) < 0)
        return 0;
    char name[ADDR_LOCAL_MAX + 1];
    const char *delims[] = { "", "+", "+-" };
    for (int i = 0; i < 3; i++) {
        why = NULL;
        if (local_mailbox_name(&m, delims[i], name, sizeof name, &why) != MAILBOX_NAME_OK) {
            if (!why || !*why)
                abort();
            continue;
        }
        safe(name);
        size_t k = *delims[i] ? strcspn(name, delims[i]) : 0;
        if (k > 0 && name[k]) {
            name[k] = '\0';
            safe(name);
        }
    }
    return 0;
}

/* libFuzzer target: lib/netaddr's next-hop parser and delivery/relayhost_creds's
   file parser on any bytes. Whatever parses must come back bounded and sane. */
#include "delivery/relayhost_creds.h"
#include "lib/netaddr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[512];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    char host[256];
    uint16_t port = 0;
    bool lit;
    if (netaddr_parse_nexthop(text, 25, host, sizeof host, &port, &lit) == 0) {
        if (port == 0 || !host[0] || strlen(host) >= sizeof host || strchr(host, ']') || strchr(host, ' '))
            abort();
    }
    struct relayhost_creds c;
    const char *why;
    if (relayhost_creds_parse((const char *)data, size, &c, &why) == 0) {
        if (!c.set || !c.user[0] || !c.pass[0] || strchr(c.user, ' ') || strchr(c.user, '\n') ||
            strchr(c.pass, '\n'))
            abort();
    }
    return 0;
}

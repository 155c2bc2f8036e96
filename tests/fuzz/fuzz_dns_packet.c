/* libFuzzer target: lib/dns_packet.c's response parser on arbitrary bytes, for a
   fixed question (example.com, ID 0x1234) of each type Ferry asks. A success must
   be self-consistent, copyable, and freeable; a copy must equal the original. */
#include "lib/dns.h"
#include "lib/dns_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const uint16_t types[] = { DNS_T_A, DNS_T_AAAA, DNS_T_MX, DNS_T_TXT, DNS_T_PTR, DNS_T_TLSA };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        struct dns_answer a, copy;
        uint32_t ttl = 12345;
        bool tc;
        if (dns_parse_packet(data, size, "example.com", types[t], 0x1234, &a, &ttl, &tc) < 0) {
            if (a.count || a.records)
                abort();
            continue;
        }
        if ((a.status == DNS_OK) != (a.count > 0) || (a.count && !a.records) || a.rcode < 0 || a.rcode > 15)
            abort();
        if (a.status != DNS_OK && a.status != DNS_NODATA && a.status != DNS_NXDOMAIN && ttl != 0)
            abort();
        for (size_t i = 0; i < a.count; i++) {
            const struct dns_record *r = &a.records[i];
            if (r->type != types[t] || r->ttl < ttl || (r->ttl & 0x80000000u))
                abort();
            if ((r->type == DNS_T_TXT || r->type == DNS_T_TLSA) && (!r->data || r->data[r->len] != 0))
                abort();
            if (r->type == DNS_T_MX && strlen(r->u.mx.exchange) > DNS_NAME_MAX)
                abort();
        }
        if (dns_answer_copy(&copy, &a) == 0) {
            if (copy.count != a.count || copy.status != a.status || strcmp(copy.qname, a.qname))
                abort();
            for (size_t i = 0; i < a.count; i++) {
                if (copy.records[i].len != a.records[i].len ||
                    (a.records[i].data && memcmp(copy.records[i].data, a.records[i].data, a.records[i].len + 1)))
                    abort();
            }
            dns_answer_free(&copy);
        }
        dns_answer_free(&a);
        if (a.count || a.records)
            abort();
    }
    return 0;
}

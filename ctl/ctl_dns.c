/*
 * ctl_dns — `ferryctl dns TYPE NAME`: one lookup through Ferry's own resolver,
 * so an operator sees exactly what the daemon would see (status, AD bit, TTLs).
 */
#include "ctl/ctl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

int ctl_dns(const struct dns_config *dns, int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ferryctl dns A|AAAA|MX|TXT|PTR|TLSA NAME\n");
        return 2;
    }
    uint16_t type = dns_type_parse(argv[0]);
    if (!type) {
        fprintf(stderr, "ferryctl: unknown record type \"%s\"\n", argv[0]);
        return 2;
    }
    struct dns_answer a;
    if (dns_lookup_sync(dns, argv[1], type, &a) < 0) {
        fprintf(stderr, "ferryctl: lookup of %s failed\n", argv[1]);
        return 1;
    }
    printf("status=%s ad=%d count=%zu%s%s\n", dns_status_name(a.status), a.authenticated ? 1 : 0, a.count,
           a.status != DNS_OK && a.error[0] ? " reason=" : "", a.status != DNS_OK ? a.error : "");
    for (size_t i = 0; i < a.count; i++) {
        const struct dns_record *r = &a.records[i];
        char text[INET6_ADDRSTRLEN];
        switch (r->type) {
        case DNS_T_A:
            printf("%u A %s\n", r->ttl, inet_ntop(AF_INET, &r->u.a, text, sizeof text));
            break;
        case DNS_T_AAAA:
            printf("%u AAAA %s\n", r->ttl, inet_ntop(AF_INET6, &r->u.aaaa, text, sizeof text));
            break;
        case DNS_T_MX:
            printf("%u MX %u %s\n", r->ttl, r->u.mx.preference, r->u.mx.exchange);
            break;
        case DNS_T_PTR:
            printf("%u PTR %s\n", r->ttl, r->u.ptr);
            break;
        case DNS_T_TXT:
            printf("%u TXT \"", r->ttl);
            for (size_t k = 0; k < r->len; k++) {
                unsigned char c = r->data[k];
                if (c == '"' || c == '\\')
                    printf("\\%c", c);
                else if (c < 0x20 || c >= 0x7f)
                    printf("\\%03u", c);
                else
                    putchar(c);
            }
            printf("\"\n");
            break;
        case DNS_T_TLSA:
            printf("%u TLSA %u %u %u ", r->ttl, r->u.tlsa.usage, r->u.tlsa.selector, r->u.tlsa.matching);
            for (size_t k = 0; k < r->len; k++)
                printf("%02x", r->data[k]);
            printf("\n");
            break;
        default:
            printf("%u TYPE%u\n", r->ttl, r->type);
        }
    }
    int rc = a.status == DNS_OK || a.status == DNS_NXDOMAIN || a.status == DNS_NODATA ? 0 : 1;
    dns_answer_free(&a);
    return rc;
}

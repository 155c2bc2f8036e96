/* spf_names — see spf_names.h. */
#include "auth/spf_names.h"
#include "lib/buf.h"

#include <string.h>

/* How many labels d has if it can be a DNS query at all (labels of 1..63 octets, 253
   in all, no control octets), else 0. Any other octet ('%', a space, '\\') is a label
   octet the query carries as it is (§4.8: the expansion is not escaped further). */
size_t spf_query_labels(const char *d)
{
    size_t len = strlen(d), labels = 0, run_len = 0;
    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = (unsigned char)d[i];
        if (i == len || ch == '.') {
            if (run_len == 0 || run_len > 63)
                return 0;
            labels++;
            run_len = 0;
        } else if (ch < 0x20 || ch == 0x7f) {
            return 0;
        } else {
            run_len++;
        }
    }
    return labels;
}

bool spf_cidr_match(const uint8_t *net, const uint8_t *ip, unsigned bits)
{
    size_t full = bits / 8;
    if (memcmp(net, ip, full))
        return false;
    unsigned rest = bits % 8;
    if (!rest)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net[full] & mask) == (ip[full] & mask);
}

size_t spf_count_type(const struct dns_answer *a, uint16_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < a->count; i++)
        n += a->records[i].type == type;
    return n;
}

/* Lower-case ASCII and drop one trailing dot, in place. */
void spf_name_lower(char *s)
{
    size_t n = strlen(s);
    if (n && s[n - 1] == '.')
        s[n - 1] = '\0';
    str_lower(s);
}

bool spf_answer_void(const struct dns_answer *a)
{
    return a->status == DNS_NXDOMAIN || a->status == DNS_NODATA || (a->status == DNS_OK && spf_count_type(a, a->qtype) == 0);
}

bool spf_name_under(const char *name, const char *domain)
{
    size_t nl = strlen(name), dl = strlen(domain);
    return nl > dl && name[nl - dl - 1] == '.' && str_iendswith(name, domain);
}

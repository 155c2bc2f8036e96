/* netaddr — see netaddr.h. */
#include "lib/netaddr.h"
#include "lib/buf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <strings.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int parse_port(const char *s, uint16_t *port)
{
    unsigned long long v;
    if (str_to_u64(s, 65535, &v) < 0 || v == 0)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static int fill(const char *host, uint16_t port, struct sockaddr_storage *sa, socklen_t *salen)
{
    memset(sa, 0, sizeof *sa);
    struct sockaddr_in *s4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        *salen = sizeof *s4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        *salen = sizeof *s6;
        return 0;
    }
    return -1;
}

int netaddr_parse_hostport(const char *s, uint16_t default_port,
                           struct sockaddr_storage *sa, socklen_t *salen)
{
    char host[64];
    uint16_t port = default_port;
    size_t n = strlen(s);
    if (n == 0 || n >= 80)
        return -1;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || (size_t)(end - s - 1) >= sizeof host)
            return -1;
        str_copyn(host, s + 1, (size_t)(end - s - 1), sizeof host);
        if (end[1] == ':') {
            if (parse_port(end + 2, &port) < 0)
                return -1;
        } else if (end[1] != '\0') {
            return -1;
        }
        if (!strchr(host, ':'))     /* brackets are for IPv6 only */
            return -1;
    } else {
        const char *colon = strchr(s, ':');
        if (colon && strchr(colon + 1, ':')) {   /* bare IPv6, no port */
            if (str_copy(host, s, sizeof host) >= sizeof host)
                return -1;
        } else if (colon) {
            if ((size_t)(colon - s) >= sizeof host || parse_port(colon + 1, &port) < 0)
                return -1;
            str_copyn(host, s, (size_t)(colon - s), sizeof host);
        } else if (str_copy(host, s, sizeof host) >= sizeof host) {
            return -1;
        }
    }
    if (port == 0)
        return -1;
    return fill(host, port, sa, salen);
}

int netaddr_parse_cidr(const char *s, struct cidr *out)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof host)
        return -1;
    str_copyn(host, s, hl, sizeof host);
    memset(out, 0, sizeof *out);
    unsigned maxp;
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = AF_INET;
        maxp = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = AF_INET6;
        maxp = 128;
    } else {
        return -1;
    }
    out->prefix = maxp;
    if (slash) {
        unsigned long long p;
        if (str_to_u64(slash + 1, maxp, &p) < 0)
            return -1;
        out->prefix = (unsigned)p;
    }
    return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

bool netaddr_cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        return c->family == AF_INET && prefix_equal(c->addr, (const uint8_t *)&s4->sin_addr, c->prefix);
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (c->family == AF_INET6)
            return prefix_equal(c->addr, a, c->prefix);
        return memcmp(a, mapped, 12) == 0 && prefix_equal(c->addr, a + 12, c->prefix);
    }
    return false;
}

void netaddr_ntop(const struct sockaddr *sa, char *out, size_t outsz)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (sa->sa_family == AF_INET) {
        if (!inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outsz))
            str_copy(out, "?", outsz);
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        const char *r = memcmp(a, mapped, 12) == 0 ? inet_ntop(AF_INET, a + 12, out, (socklen_t)outsz)
                                                   : inet_ntop(AF_INET6, a, out, (socklen_t)outsz);
        if (!r)
            str_copy(out, "?", outsz);
    } else {
        str_copy(out, "local", outsz);
    }
}

int netaddr_reverse_labels(int family, const uint8_t *ip, char *out, size_t outsz)
{
    int n;
    if (family == AF_INET) {
        n = snprintf(out, outsz, "%u.%u.%u.%u.in-addr", ip[3], ip[2], ip[1], ip[0]);
        return n < 0 || (size_t)n >= outsz ? -1 : n;
    }
    static const char hex[] = "0123456789abcdef";
    if (outsz < 16 * 4 + sizeof "ip6")
        return -1;
    size_t k = 0;
    for (int i = 15; i >= 0; i--) {
        out[k++] = hex[ip[i] & 15];
        out[k++] = '.';
        out[k++] = hex[ip[i] >> 4];
        out[k++] = '.';
    }
    memcpy(out + k, "ip6", sizeof "ip6");
    return (int)(k + sizeof "ip6" - 1);
}

int netaddr_reverse_name(int family, const uint8_t *ip, char *out, size_t outsz)
{
    int n = netaddr_reverse_labels(family, ip, out, outsz);
    if (n < 0 || (size_t)n + sizeof ".arpa" > outsz)
        return -1;
    memcpy(out + n, ".arpa", sizeof ".arpa");
    return n + (int)sizeof ".arpa" - 1;
}

int netaddr_text_bytes(const char *text, int *family, uint8_t ip[16])
{
    memset(ip, 0, 16);
    if (inet_pton(AF_INET, text, ip) == 1) {
        *family = AF_INET;
        return 0;
    }
    uint8_t a6[16];
    if (inet_pton(AF_INET6, text, a6) != 1)
        return -1;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(a6, mapped, 12)) {
        *family = AF_INET;
        memcpy(ip, a6 + 12, 4);
    } else {
        *family = AF_INET6;
        memcpy(ip, a6, 16);
    }
    return 0;
}

int netaddr_bytes(const struct sockaddr *sa, int *family, uint8_t ip[16])
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    if (sa->sa_family == AF_INET) {
        *family = AF_INET;
        memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family != AF_INET6)
        return -1;
    const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (memcmp(a, mapped, 12) == 0) {
        *family = AF_INET;
        memcpy(ip, a + 12, 4);
    } else {
        *family = AF_INET6;
        memcpy(ip, a, 16);
    }
    return 0;
}

uint16_t netaddr_port(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    return 0;
}

int netaddr_parse_nexthop(const char *s, uint16_t default_port, char *host, size_t hostsz, uint16_t *port,
                          bool *literal)
{
    const char *rest;
    size_t n = strlen(s);
    if (n == 0 || n > 300 || hostsz == 0)
        return -1;
    *port = default_port;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end == s + 1)
            return -1;
        const char *h = s + 1;
        if (!strncasecmp(h, "IPv6:", 5))
            h += 5;
        if ((size_t)(end - h) >= hostsz || end == h)
            return -1;
        str_copyn(host, h, (size_t)(end - h), hostsz);
        *literal = true;
        rest = end + 1;
    } else {
        const char *colon = strchr(s, ':');
        size_t hl = colon ? (size_t)(colon - s) : n;
        if (hl == 0 || hl >= hostsz || (colon && strchr(colon + 1, ':')))
            return -1;      /* a bare IPv6 address needs brackets here */
        str_copyn(host, s, hl, hostsz);
        *literal = false;
        rest = s + hl;
    }
    if (*rest == ':') {
        if (parse_port(rest + 1, port) < 0)
            return -1;
    } else if (*rest != '\0') {
        return -1;
    }
    for (const char *p = host; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!(isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':'))
            return -1;
    }
    str_lower(host);
    return *port ? 0 : -1;
}

int netaddr_route_source(const struct sockaddr *dst, socklen_t dstlen, char *out, size_t outsz)
{
    int fd = socket(dst->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int rc = -1;
    out[0] = '\0';
    if (fd >= 0 && connect(fd, dst, dstlen) == 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
        netaddr_ntop((const struct sockaddr *)&ss, out, outsz);
        rc = out[0] ? 0 : -1;
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

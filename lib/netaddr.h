/*
 * netaddr — IP addresses, "host:port" specs and CIDR blocks, parsed from text. Pure.
 *
 * Accepted address:port forms: "192.0.2.1:25", "[2001:db8::1]:25", and, when a
 * default port is given, "192.0.2.1", "2001:db8::1" and "[2001:db8::1]".
 * CIDR: "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128).
 * An IPv4-mapped IPv6 peer (::ffff:192.0.2.1) matches IPv4 blocks.
 */
#ifndef FERRY_NETADDR_H
#define FERRY_NETADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
    int family;           /* AF_INET or AF_INET6 */
    uint8_t addr[16];     /* network order; 4 bytes used for IPv4 */
    unsigned prefix;
};

/* default_port 0: a port is required. 0 ok, -1 bad syntax. */
int  netaddr_parse_hostport(const char *s, uint16_t default_port,
                            struct sockaddr_storage *sa, socklen_t *salen);
int  netaddr_parse_cidr(const char *s, struct cidr *out);
bool netaddr_cidr_match(const struct cidr *c, const struct sockaddr *sa);
/* "192.0.2.1" or "2001:db8::1" (mapped IPv4 shown as IPv4); port omitted. */
void netaddr_ntop(const struct sockaddr *sa, char *out, size_t outsz);
uint16_t netaddr_port(const struct sockaddr *sa);
/* The local address the routing table would use to reach dst, as text: an
   unconnected UDP socket's connect() only consults the table (nothing is sent,
   nothing waits). 0 ok, -1 when there is no route. */
int  netaddr_route_source(const struct sockaddr *dst, socklen_t dstlen, char *out, size_t outsz);
/* The reverse-lookup name of an address (family AF_INET: ip[0..4), AF_INET6:
   ip[0..16)): "4.3.2.1.in-addr.arpa" or the 32 nibbles then "ip6.arpa", no final
   dot. Length, or -1 when outsz is too small (74 octets always suffice). */
int  netaddr_reverse_name(int family, const uint8_t *ip, char *out, size_t outsz);
/* The same without ".arpa" ("4.3.2.1.in-addr", "...ip6"): the form DMP's
   address names and SPF's macros build on. */
int  netaddr_reverse_labels(int family, const uint8_t *ip, char *out, size_t outsz);
/* The address of sa as family + bytes (an IPv4-mapped IPv6 address becomes IPv4).
   0 ok, -1 not an IP address. */
int  netaddr_bytes(const struct sockaddr *sa, int *family, uint8_t ip[16]);
/* The same from text: "192.0.2.1" / "2001:db8::1" into family + bytes (an
   IPv4-mapped IPv6 address becomes AF_INET; ip zeroed first). 0 / -1. */
int  netaddr_text_bytes(const char *text, int *family, uint8_t ip[16]);

/* A next hop as mail administrators write it: "host", "host:port", "[host]",
   "[host]:port", "[192.0.2.1]:587", "[IPv6:2001:db8::1]:25". Brackets mean
   "this host itself, no MX lookup" (*literal). host gets the name or address
   without brackets (and without an "IPv6:" tag), lower-cased; port the port or
   default_port. 0 ok, -1 bad syntax. */
int  netaddr_parse_nexthop(const char *s, uint16_t default_port, char *host, size_t hostsz, uint16_t *port,
                           bool *literal);

#endif

/*
 * dns — asynchronous stub resolver for the daemon, and a blocking wrapper for tools.
 *
 * Packets are built and parsed with ldns and sent over libevent: UDP first (EDNS0,
 * 1232-octet payload, DO bit so a validating resolver reports AD), TCP when the
 * answer is truncated. Each query is tried on every configured server in turn, each
 * try bounded by the timeout, for the configured number of rounds. Answers are
 * checked against the question (ID, name, type, class, source address) before use.
 *
 * The cache keeps positive answers for their smallest TTL and negative ones
 * (NXDOMAIN, NODATA) for the SOA minimum per RFC 2308 §5, both capped by
 * dns_config.max_ttl; SERVFAIL and timeouts are not cached. Its size is bounded.
 *
 * The callback is called exactly once per dns_lookup (never from inside
 * dns_lookup itself), unless the query is cancelled first. The answer it gets is
 * valid only during the callback.
 */
#ifndef FERRY_DNS_H
#define FERRY_DNS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct event_base;

#define DNS_NAME_MAX       255
#define DNS_MAX_SERVERS    8

/* RR types Ferry asks for. */
#define DNS_T_A      1
#define DNS_T_MX     15
#define DNS_T_TXT    16
#define DNS_T_PTR    12
#define DNS_T_AAAA   28
#define DNS_T_TLSA   52

enum dns_status {
    DNS_OK,          /* at least one record of the asked type */
    DNS_NXDOMAIN,    /* the name does not exist */
    DNS_NODATA,      /* the name exists, no record of that type */
    DNS_SERVFAIL,    /* server failure (temporary) */
    DNS_TIMEOUT,     /* no usable answer from any server in time (temporary) */
    DNS_ERROR        /* refused, malformed answer, bad name... (details in error) */
};

struct dns_record {
    uint16_t type;
    uint32_t ttl;
    union {
        struct in_addr a;
        struct in6_addr aaaa;
        struct { uint16_t preference; char exchange[DNS_NAME_MAX + 1]; } mx;
        char ptr[DNS_NAME_MAX + 1];
        struct { uint8_t usage, selector, matching; } tlsa;
    } u;
    /* TXT: the record's character-strings concatenated (RFC 7208 §3.3), NUL-terminated
       for convenience (may contain NULs itself: use len). TLSA: association data. */
    unsigned char *data;
    size_t len;
};

struct dns_answer {
    enum dns_status status;
    int rcode;                  /* DNS RCODE, or -1 when none was received */
    bool authenticated;         /* AD bit set by the (trusted) resolver */
    bool from_cache;
    char qname[DNS_NAME_MAX + 2];
    uint16_t qtype;
    size_t count;
    struct dns_record *records;
    char error[128];            /* human reason for a non-OK status */
};

struct dns_config {
    struct sockaddr_storage servers[DNS_MAX_SERVERS];
    socklen_t server_len[DNS_MAX_SERVERS];
    size_t nservers;
    unsigned timeout_ms;        /* per try; default 3000 */
    unsigned rounds;            /* passes over the server list; default 2 */
    size_t cache_max;           /* entries; 0 disables the cache; default 10000 */
    uint32_t max_ttl;           /* cap on cached TTLs, seconds; default 86400 */
};

typedef void (*dns_callback)(const struct dns_answer *answer, void *arg);

struct dns_client;
struct dns_query;

/* Defaults, no servers. */
void dns_config_init(struct dns_config *cfg);
/* Add "IP", "IP:PORT", "[IPv6]:PORT" or bare IPv6. 0 ok, -1 bad syntax/too many. */
int  dns_config_add_server(struct dns_config *cfg, const char *spec);
/* Add the nameserver lines of a resolv.conf file (default /etc/resolv.conf when NULL).
   Falls back to 127.0.0.1 when the file names none. 0 ok, -1 unreadable. */
int  dns_config_from_resolv_conf(struct dns_config *cfg, const char *path);

struct dns_client *dns_client_new(struct event_base *base, const struct dns_config *cfg);
void dns_client_free(struct dns_client *c);   /* cancels outstanding queries silently */

/* name: a domain name with or without the final dot. NULL only on allocation failure;
   a bad name still gets a callback with DNS_ERROR. */
struct dns_query *dns_lookup(struct dns_client *c, const char *name, uint16_t type,
                             dns_callback cb, void *arg);
void dns_cancel(struct dns_query *q);

/* Pure packet functions (unit-tested on raw bytes). */
/* Build a query packet; returns the wire length or -1. */
int  dns_build_query(const char *name, uint16_t type, uint16_t id, bool dnssec_ok,
                     uint8_t *out, size_t outsz);
/* Parse a response for (qname, qtype) into out (records allocated; free with
   dns_answer_free). Follows CNAME chains inside the answer section. Sets *min_ttl
   to the TTL to cache for (RFC 2308 for negative answers). 0 when the packet is a
   well-formed response to that question (whatever its rcode), -1 otherwise. */
int  dns_parse_response(const uint8_t *pkt, size_t len, const char *qname, uint16_t qtype,
                        uint16_t id, struct dns_answer *out, uint32_t *min_ttl);
void dns_answer_free(struct dns_answer *a);
int  dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src);

const char *dns_status_name(enum dns_status s);
/* "A", "MX", ... ; type_parse returns 0 when unknown */
const char *dns_type_name(uint16_t type);
uint16_t    dns_type_parse(const char *s);

/* Blocking lookup for command-line tools: runs a private event loop. 0 when an
   answer (of any status) was produced; free with dns_answer_free. */
int  dns_lookup_sync(const struct dns_config *cfg, const char *name, uint16_t type,
                     struct dns_answer *out);

#endif

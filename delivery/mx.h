/*
 * mx — where to deliver mail for a domain: the ordered list of (host, address)
 * the SMTP client tries, found over lib/dns.h without blocking.
 *
 * Rules (RFC 5321 §5.1, RFC 7505):
 *  - MX records in preference order, equal preferences in random order (spreading
 *    load as the domain intends); at most MX_MAX_HOSTS hosts.
 *  - No MX record (NODATA): the domain itself is the one host ("implicit MX").
 *  - A null MX (an MX whose exchange is ".") means the domain accepts no mail:
 *    when it is the only MX, permanent failure 5.1.10; mixed with real MX records
 *    it is ignored.
 *  - MX lookup NXDOMAIN: permanent 5.1.2. SERVFAIL, timeout or a broken answer:
 *    temporary 4.4.3.
 *  - When `self` (our own host name) is among the hosts, it and every host of the
 *    same or a worse preference are dropped (we must never relay to ourselves or
 *    to a backup behind us); when nothing is left, permanent 5.4.6 (a loop).
 *  - Each host's A and AAAA records, ordered by the family preference: `ipv4` or
 *    `ipv6` puts that family first; `any` alternates families starting with a
 *    random one. An address already listed (two MX names, one IP) is not repeated.
 *    At most MX_MAX_ADDRS addresses in all, filled host by host in order.
 *  - No address at all: temporary 4.4.3 when some lookup failed temporarily,
 *    otherwise permanent 5.1.2 (implicit MX) or 5.4.4 (MX hosts without address).
 *  - An address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]") is used directly.
 *
 * The pure steps (mx_hosts_from_answer, mx_route_build, mx_route_literal) are
 * unit-tested with answers built by hand; mx_resolve drives them with a
 * dns_client. The route's status text starts with the enhanced code, like every
 * delivery_status.
 */
#ifndef FERRY_MX_H
#define FERRY_MX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "delivery/delivery.h"
#include "lib/dns.h"

#define MX_MAX_HOSTS  10
#define MX_MAX_ADDRS  20

enum mx_family { MX_FAMILY_ANY, MX_FAMILY_IPV4, MX_FAMILY_IPV6 };

struct mx_config {
    enum mx_family family;
    uint16_t port;                /* 25 in production; tests use others */
    const char *self;             /* our host name, or NULL */
    bool no_mx;                   /* the domain is a host: its addresses, no MX query */
};

struct mx_host {
    char name[DNS_NAME_MAX + 1];
    uint16_t preference;
};

struct mx_hosts {
    size_t n;
    struct mx_host h[MX_MAX_HOSTS];
    bool implicit;                /* the domain itself, for lack of MX records */
    bool secure;                  /* the MX answer was DNSSEC-validated (AD) */
};

struct mx_target {
    char host[DNS_NAME_MAX + 1];  /* the MX host name (or the literal) */
    struct sockaddr_storage sa;
    socklen_t salen;
    /* The MX answer and this address's answer were both DNSSEC-validated: the
       host name may serve as the TLSA base name (RFC 7672 §2.2). */
    bool dnssec;
};

struct mx_route {
    struct delivery_status st;    /* OK with ntargets > 0, else DEFER or FAIL */
    bool implicit;
    bool mx_secure;               /* the MX answer (or the no-MX host) was DNSSEC-validated */
    size_t ntargets;
    struct mx_target targets[MX_MAX_ADDRS];
};

/* A source of random numbers (uniform 32 bits); NULL means arc4random. */
typedef uint32_t (*mx_rng)(void *arg);

/* "any", "ipv4", "ipv6". 0 ok, -1 unknown. */
int  mx_family_parse(const char *s, enum mx_family *out);
const char *mx_family_name(enum mx_family f);

/* Step 1, from the answer to the domain's MX query. 0: hosts filled (maybe
   implicit); -1: no delivery possible now, st says why (DEFER or FAIL). */
int  mx_hosts_from_answer(const char *domain, const struct dns_answer *mx, const char *self, mx_rng rng,
                          void *rng_arg, struct mx_hosts *hosts, struct delivery_status *st);

/* Step 2, from each host's A and AAAA answers (a[i], aaaa[i] for hosts->h[i];
   NULL when not asked). Fills route completely, status included. */
void mx_route_build(const char *domain, const struct mx_hosts *hosts, const struct dns_answer *const *a,
                    const struct dns_answer *const *aaaa, const struct mx_config *cfg, mx_rng rng,
                    void *rng_arg, struct mx_route *route);

/* An address literal domain: 1 with route filled (OK, or FAIL 5.1.2 for a bad
   literal); 0 when domain is not a literal. */
int  mx_route_literal(const char *domain, uint16_t port, struct mx_route *route);

/* Asynchronous routing. The callback runs exactly once, from the event loop
   (never inside mx_resolve), unless mx_cancel is called first; the route is
   valid only during the callback, and the lookup frees itself after it. NULL
   only when out of memory. */
typedef void (*mx_callback)(const struct mx_route *route, void *arg);
struct mx_lookup;
struct mx_lookup *mx_resolve(struct event_base *base, struct dns_client *dns, const char *domain,
                             const struct mx_config *cfg, mx_callback cb, void *arg);
void mx_cancel(struct mx_lookup *l);

#endif

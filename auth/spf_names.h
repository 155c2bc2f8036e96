/*
 * spf_names — the small pure pieces check_host() (auth/spf.c) applies to DNS
 * names and answers: whether a name can be queried, case folding, the
 * "equal or below" test of ptr and %{p}, CIDR matching, and what makes an answer
 * void (RFC 7208 §4.6.4). No state, no I/O.
 */
#ifndef FERRY_AUTH_SPF_NAMES_H
#define FERRY_AUTH_SPF_NAMES_H

#include "auth/auth_dns.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Labels in d if it can be a DNS query (1..63-octet labels, 253 octets in all, no
   control octets), else 0. */
size_t spf_query_labels(const char *d);
/* The first bits of net and ip (network order, 4 or 16 octets) agree. */
bool spf_cidr_match(const uint8_t *net, const uint8_t *ip, unsigned bits);
size_t spf_count_type(const struct dns_answer *a, uint16_t type);
void spf_name_lower(char *s);
/* name is a proper subdomain of domain (ASCII case-insensitive). */
bool spf_name_under(const char *name, const char *domain);
/* NXDOMAIN, NODATA, or an answer without a record of the asked type. */
bool spf_answer_void(const struct dns_answer *a);

#endif

/*
 * dns_internal — what dns_packet.c offers the transport (dns_client.c) beyond the
 * public contract in dns.h. Not for use outside lib/dns_*.c and their tests.
 */
#ifndef FERRY_DNS_INTERNAL_H
#define FERRY_DNS_INTERNAL_H

#include "lib/dns.h"

#define DNS_EDNS_PAYLOAD 1232   /* RFC 9715 / DNS flag day 2020: no IP fragmentation */

/* Check a textual name (<= 253 octets, labels 1..63, no blanks or '\\') and write it
   with exactly one final dot. 0 ok, -1 bad. */
int dns_normalize_name(const char *name, char *out, size_t outsz);

/* dns_parse_response, also telling whether the TC bit was set. */
int dns_parse_packet(const uint8_t *pkt, size_t len, const char *qname, uint16_t qtype, uint16_t id,
                     struct dns_answer *out, uint32_t *min_ttl, bool *truncated);

#endif

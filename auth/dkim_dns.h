/*
 * dkim_dns — the verifier's resolver interface (struct dkim_resolver) over lib/dns:
 * asynchronous over a dns_client for the daemon, blocking over dns_lookup_sync for
 * ferryctl. Key records are TXT lookups of SELECTOR._domainkey.DOMAIN.
 *
 * Status mapping (RFC 6376 §6.1.2): NXDOMAIN and NODATA → NOTFOUND (permerror "no
 * key"); SERVFAIL, timeouts and any other failure → TEMPFAIL (temperror), since the
 * key might be there on a later try. The async adapter allocates one small record per
 * lookup, freed when its answer arrives or it is cancelled.
 */
#ifndef FERRY_DKIM_DNS_H
#define FERRY_DKIM_DNS_H

#include "auth/dkim_verify.h"
#include "lib/dns.h"

/* The client must outlive every verifier using the resolver. */
void dkim_resolver_async(struct dkim_resolver *r, struct dns_client *c);
/* Blocking; cfg must outlive the resolver. */
void dkim_resolver_sync(struct dkim_resolver *r, const struct dns_config *cfg);

#endif

/*
 * auth_dns — the DNS seam of the sender-authentication checks (SPF, DMP).
 *
 * The evaluators ask for records through struct auth_resolver, a pair of function
 * pointers with lib/dns.h semantics: lookup() starts a query and the callback runs
 * exactly once, later, never inside lookup() itself, unless cancel() is called
 * first. The daemon wires it to its dns_client (auth_resolver_dns); unit tests
 * serve answers from a table; command-line tools use auth_sync, which owns a
 * private event loop and client like dns_lookup_sync.
 */
#ifndef FERRY_AUTH_DNS_H
#define FERRY_AUTH_DNS_H

#include "lib/dns.h"

#include <stdbool.h>

struct auth_resolver {
    void *ctx;
    /* NULL only when the query could not be started (out of memory). */
    void *(*lookup)(void *ctx, const char *name, uint16_t type, dns_callback cb, void *arg);
    void (*cancel)(void *ctx, void *query);
};

/* Lookups through a dns_client (the daemon's, on its event loop). */
void auth_resolver_dns(struct auth_resolver *r, struct dns_client *client);

/* A private event loop for blocking callers. */
struct auth_sync {
    struct event_base *base;
    struct dns_client *client;
    struct auth_resolver resolver;
};

/* 0 ok, -1 out of memory. */
int  auth_sync_open(struct auth_sync *s, const struct dns_config *cfg);
/* Runs the loop until *done becomes true (or nothing is left to wait for). */
void auth_sync_run(struct auth_sync *s, const bool *done);
void auth_sync_close(struct auth_sync *s);

/* True for an "ok/nxdomain/nodata" status; false for the temporary kinds. */
bool auth_dns_definite(enum dns_status s);

#endif

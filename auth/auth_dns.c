/*
 * auth_dns — resolver adapters for the SPF and DMP evaluators.
 */
#include "auth/auth_dns.h"

#include <event2/event.h>
#include <string.h>

static void *client_lookup(void *ctx, const char *name, uint16_t type, dns_callback cb, void *arg)
{
    return dns_lookup(ctx, name, type, cb, arg);
}

static void client_cancel(void *ctx, void *query)
{
    (void)ctx;
    dns_cancel(query);
}

void auth_resolver_dns(struct auth_resolver *r, struct dns_client *client)
{
    r->ctx = client;
    r->lookup = client_lookup;
    r->cancel = client_cancel;
}

int auth_sync_open(struct auth_sync *s, const struct dns_config *cfg)
{
    memset(s, 0, sizeof *s);
    if (!(s->base = event_base_new()))
        return -1;
    if (!(s->client = dns_client_new(s->base, cfg))) {
        event_base_free(s->base);
        s->base = NULL;
        return -1;
    }
    auth_resolver_dns(&s->resolver, s->client);
    return 0;
}

void auth_sync_run(struct auth_sync *s, const bool *done)
{
    while (!*done) {
        if (event_base_loop(s->base, EVLOOP_ONCE) != 0)
            break;
    }
}

void auth_sync_close(struct auth_sync *s)
{
    if (s->client)
        dns_client_free(s->client);
    if (s->base)
        event_base_free(s->base);
    memset(s, 0, sizeof *s);
}

bool auth_dns_definite(enum dns_status s)
{
    return s == DNS_OK || s == DNS_NXDOMAIN || s == DNS_NODATA;
}

/* dkim_dns — struct dkim_resolver over lib/dns. */
#include "auth/dkim_dns.h"

#include <stdlib.h>

#define TXT_MAX 16   /* records per name looked at */

static void deliver(const struct dns_answer *a, dkim_txt_done done, void *arg)
{
    const char *txt[TXT_MAX];
    size_t lens[TXT_MAX], n = 0;
    if (a->status == DNS_NXDOMAIN || a->status == DNS_NODATA) {
        done(arg, DKIM_DNS_NOTFOUND, NULL, NULL, 0);
        return;
    }
    if (a->status != DNS_OK) {
        done(arg, DKIM_DNS_TEMPFAIL, NULL, NULL, 0);
        return;
    }
    for (size_t i = 0; i < a->count && n < TXT_MAX; i++) {
        if (a->records[i].type != DNS_T_TXT)
            continue;
        txt[n] = (const char *)a->records[i].data;
        lens[n++] = a->records[i].len;
    }
    done(arg, n ? DKIM_DNS_OK : DKIM_DNS_NOTFOUND, txt, lens, n);
}

struct pending {
    dkim_txt_done done;
    void *arg;
    struct dns_query *q;
};

static void async_answer(const struct dns_answer *a, void *arg)
{
    struct pending *p = arg;
    dkim_txt_done done = p->done;
    void *darg = p->arg;
    free(p);
    deliver(a, done, darg);
}

static void *async_lookup(void *ctx, const char *name, dkim_txt_done done, void *arg)
{
    struct pending *p = malloc(sizeof *p);
    if (p) {
        p->done = done;
        p->arg = arg;
        p->q = dns_lookup(ctx, name, DNS_T_TXT, async_answer, p);
        if (p->q)
            return p;
        free(p);
    }
    done(arg, DKIM_DNS_TEMPFAIL, NULL, NULL, 0);
    return NULL;
}

static void async_cancel(void *ctx, void *handle)
{
    struct pending *p = handle;
    dns_cancel(p->q);
    free(p);
}

void dkim_resolver_async(struct dkim_resolver *r, struct dns_client *c)
{
    r->lookup_txt = async_lookup;
    r->cancel = async_cancel;
    r->ctx = c;
}

static void *sync_lookup(void *ctx, const char *name, dkim_txt_done done, void *arg)
{
    struct dns_answer a;
    if (dns_lookup_sync(ctx, name, DNS_T_TXT, &a) < 0) {
        done(arg, DKIM_DNS_TEMPFAIL, NULL, NULL, 0);
        return NULL;
    }
    deliver(&a, done, arg);
    dns_answer_free(&a);
    return NULL;
}

void dkim_resolver_sync(struct dkim_resolver *r, const struct dns_config *cfg)
{
    r->lookup_txt = sync_lookup;
    r->cancel = NULL;
    r->ctx = (void *)cfg;
}

/*
 * fake_dns — an auth_resolver serving answers from a table, for unit tests of the
 * SPF and DMP evaluators without sockets. Answers are queued and delivered by
 * fake_dns_run(), never inside lookup(), as lib/dns.h promises.
 *
 * Table rows: {name, type, status, "rec|rec|..."}; A/AAAA as text, MX as
 * "PREF NAME", TXT and PTR as text. A name/type not in the table is NXDOMAIN; a
 * name the real client refuses (dns_normalize_name) is DNS_ERROR and counted.
 */
#ifndef FERRY_FAKE_DNS_H
#define FERRY_FAKE_DNS_H

#include "auth/auth_dns.h"
#include "lib/dns_internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct fake_row {
    const char *name;
    uint16_t type;
    enum dns_status status;
    const char *data;
};

struct fake_query {
    char name[DNS_NAME_MAX + 1];
    uint16_t type;
    dns_callback cb;
    void *arg;
    int cancelled;
};

struct fake_dns {
    const struct fake_row *rows;
    struct fake_query q[64];
    size_t head, tail;
    unsigned queries;
    unsigned bad_names;     /* lookups of names the real client refuses */
};

static void *fake_lookup(void *ctx, const char *name, uint16_t type, dns_callback cb, void *arg)
{
    struct fake_dns *f = ctx;
    if (f->tail - f->head >= 64)
        return NULL;
    struct fake_query *q = &f->q[f->tail++ % 64];
    memset(q, 0, sizeof *q);
    snprintf(q->name, sizeof q->name, "%s", name);
    q->type = type;
    q->cb = cb;
    q->arg = arg;
    f->queries++;
    return q;
}

static void fake_cancel(void *ctx, void *query)
{
    (void)ctx;
    ((struct fake_query *)query)->cancelled = 1;
}

static void fake_answer(struct fake_dns *f, const struct fake_query *q, struct dns_answer *a)
{
    memset(a, 0, sizeof *a);
    snprintf(a->qname, sizeof a->qname, "%s", q->name);
    a->qtype = q->type;
    /* as lib/dns_client.c: a name that cannot be a query is an error, never sent */
    char fq[DNS_NAME_MAX + 2];
    if (dns_normalize_name(q->name, fq, sizeof fq) < 0) {
        a->status = DNS_ERROR;
        f->bad_names++;
        return;
    }
    a->status = DNS_NXDOMAIN;
    for (const struct fake_row *r = f->rows; r && r->name; r++) {
        if (strcasecmp(r->name, q->name))
            continue;
        if (a->status == DNS_NXDOMAIN)
            a->status = DNS_NODATA;
        if (r->type != q->type)
            continue;
        a->status = r->status;
        if (r->status != DNS_OK)
            return;
        static struct dns_record recs[32];
        static char texts[32][512];
        size_t n = 0;
        const char *p = r->data;
        while (p && n < 32) {
            size_t l = strcspn(p, "|");
            struct dns_record *d = &recs[n];
            memset(d, 0, sizeof *d);
            d->type = q->type;
            snprintf(texts[n], sizeof texts[n], "%.*s", (int)l, p);
            if (q->type == DNS_T_A)
                inet_pton(AF_INET, texts[n], &d->u.a);
            else if (q->type == DNS_T_AAAA)
                inet_pton(AF_INET6, texts[n], &d->u.aaaa);
            else if (q->type == DNS_T_MX)
                sscanf(texts[n], "%hu %255s", &d->u.mx.preference, d->u.mx.exchange);
            else if (q->type == DNS_T_PTR)
                snprintf(d->u.ptr, sizeof d->u.ptr, "%s", texts[n]);
            else {
                d->data = (unsigned char *)texts[n];
                d->len = strlen(texts[n]);
            }
            n++;
            p = p[l] ? p + l + 1 : NULL;
        }
        a->records = recs;
        a->count = n;
        return;
    }
}

/* Deliver queued answers until none is left. */
static void fake_dns_run(struct fake_dns *f)
{
    while (f->head < f->tail) {
        struct fake_query q = f->q[f->head++ % 64];
        if (q.cancelled)
            continue;
        struct dns_answer a;
        fake_answer(f, &q, &a);
        q.cb(&a, q.arg);
    }
}

static void fake_dns_resolver(struct fake_dns *f, const struct fake_row *rows, struct auth_resolver *r)
{
    memset(f, 0, sizeof *f);
    f->rows = rows;
    r->ctx = f;
    r->lookup = fake_lookup;
    r->cancel = fake_cancel;
}

#endif

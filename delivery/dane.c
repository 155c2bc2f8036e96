/* dane — see dane.h. */
#include "delivery/dane.h"
#include "lib/buf.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *dane_status_name(enum dane_status s)
{
    switch (s) {
    case DANE_SECURE: return "secure";
    case DANE_NONE: return "none";
    case DANE_INSECURE: return "insecure";
    default: return "failed";
    }
}

bool dane_record_usable(uint8_t usage, uint8_t selector, uint8_t matching, size_t len)
{
    if (usage != 2 && usage != 3)
        return false;           /* PKIX-TA/PKIX-EE: no trusted CA set to anchor them in SMTP */
    if (selector > 1)
        return false;
    switch (matching) {
    case 0: return len > 0 && len <= DANE_DATA_MAX;  /* the DER is checked in full_data_parses */
    case 1: return len == 32;
    case 2: return len == 64;
    default: return false;
    }
}

/* Full (matching 0) data must be the DER of what the selector names, or OpenSSL
   would refuse the record later: refusing it here makes it count as unusable. */
static bool full_data_parses(uint8_t selector, const unsigned char *data, size_t len)
{
    const unsigned char *p = data;
    if (selector == 0) {
        X509 *x = d2i_X509(NULL, &p, (long)len);
        bool ok = x && p == data + len;
        X509_free(x);
        ERR_clear_error();
        return ok;
    }
    EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);
    bool ok = k && p == data + len;
    EVP_PKEY_free(k);
    ERR_clear_error();          /* a failed parse leaves reasons that are not the caller's */
    return ok;
}

bool dane_result_usable(const struct dane_result *r)
{
    return r && r->status == DANE_SECURE && r->set.n > 0;
}

bool dane_result_all_unusable(const struct dane_result *r)
{
    return r && r->status == DANE_SECURE && r->set.n == 0;
}

int dane_tlsa_name(const char *host, uint16_t port, char *out, size_t outsz)
{
    size_t hl = strlen(host);
    if (hl && host[hl - 1] == '.')
        hl--;
    if (hl == 0)
        return -1;
    int n = snprintf(out, outsz, "_%u._tcp.%.*s", port, (int)hl, host);
    if (n < 0 || (size_t)n >= outsz || n > DNS_NAME_MAX - 1)
        return -1;
    return 0;
}

void dane_result_from_answer(const struct dns_answer *a, struct dane_result *out)
{
    memset(&out->set, 0, sizeof out->set);
    str_copy(out->qname, a->qname, sizeof out->qname);
    switch (a->status) {
    case DNS_OK:
        break;
    case DNS_NXDOMAIN:
    case DNS_NODATA:
        out->status = a->authenticated ? DANE_NONE : DANE_INSECURE;
        snprintf(out->why, sizeof out->why, "%s: %s TLSA records (%s)", a->qname,
                 a->authenticated ? "no" : "no validated", dns_status_name(a->status));
        return;
    default:
        out->status = DANE_FAILED;
        snprintf(out->why, sizeof out->why, "%s: TLSA lookup failed: %s", a->qname,
                 a->error[0] ? a->error : dns_status_name(a->status));
        return;
    }
    if (!a->authenticated) {
        out->status = DANE_INSECURE;
        snprintf(out->why, sizeof out->why, "%s: %zu TLSA records, not DNSSEC-validated", a->qname, a->count);
        return;
    }
    out->status = DANE_SECURE;
    struct dane_set *s = &out->set;
    for (size_t i = 0; i < a->count; i++) {
        const struct dns_record *rr = &a->records[i];
        if (rr->type != DNS_T_TLSA)
            continue;
        s->total++;
        if (!rr->data || !dane_record_usable(rr->u.tlsa.usage, rr->u.tlsa.selector, rr->u.tlsa.matching, rr->len))
            continue;
        if (rr->u.tlsa.matching == 0 && !full_data_parses(rr->u.tlsa.selector, rr->data, rr->len))
            continue;
        if (s->n == DANE_MAX_RECORDS) {
            s->dropped++;
            continue;
        }
        struct dane_record *d = &s->r[s->n++];
        d->usage = rr->u.tlsa.usage;
        d->selector = rr->u.tlsa.selector;
        d->matching = rr->u.tlsa.matching;
        d->len = rr->len;
        memcpy(d->data, rr->data, rr->len);
    }
    if (s->total == 0) {
        /* An OK answer without a TLSA record cannot come from lib/dns; be safe. */
        out->status = DANE_NONE;
        snprintf(out->why, sizeof out->why, "%s: no TLSA records", a->qname);
    } else if (s->n == 0) {
        snprintf(out->why, sizeof out->why, "%s: %zu TLSA records, all unusable", a->qname, s->total);
    } else {
        snprintf(out->why, sizeof out->why, "%s: %zu TLSA records, %zu usable", a->qname, s->total,
                 s->n + s->dropped);
    }
}

struct dane_lookup {
    dane_callback cb;
    void *arg;
    struct dns_query *q;
    struct dane_result res;
};

static void on_tlsa(const struct dns_answer *a, void *arg)
{
    struct dane_lookup *l = arg;
    char qname[sizeof l->res.qname];
    str_copy(qname, l->res.qname, sizeof qname);
    dane_result_from_answer(a, &l->res);
    str_copy(l->res.qname, qname, sizeof l->res.qname);   /* ours, even when the query never left */
    l->cb(&l->res, l->arg);
    free(l);
}

struct dane_lookup *dane_lookup(struct dns_client *dns, const char *host, uint16_t port, dane_callback cb,
                                void *arg)
{
    struct dane_lookup *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->cb = cb;
    l->arg = arg;
    /* A name too long for DNS still goes to dns_lookup, which answers DNS_ERROR
       from the event loop: the callback contract stays the same. */
    char name[DNS_NAME_MAX + 40];
    if (dane_tlsa_name(host, port, name, sizeof name) < 0) {
        str_copy(name, "..", sizeof name);          /* empty labels: never a valid name */
        snprintf(l->res.qname, sizeof l->res.qname, "_%u._tcp.%.200s", port, host);
    } else {
        str_copy(l->res.qname, name, sizeof l->res.qname);
    }
    l->q = dns_lookup(dns, name, DNS_T_TLSA, on_tlsa, l);
    if (!l->q) {
        free(l);
        return NULL;
    }
    return l;
}

void dane_cancel(struct dane_lookup *l)
{
    if (!l)
        return;
    dns_cancel(l->q);
    free(l);
}

size_t dane_set_text(const struct dane_set *s, char *out, size_t outsz)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0, n = 0;
    if (outsz == 0)
        return 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n; i++) {
        const struct dane_record *r = &s->r[i];
        char head[16];
        int hl = snprintf(head, sizeof head, "%s%u %u %u ", o ? "\n" : "", r->usage, r->selector, r->matching);
        size_t need = (size_t)hl + 2 * r->len;
        if (hl < 0 || o + need + 1 > outsz)
            continue;       /* too long for what is left: the next (a hash, say) may fit */
        memcpy(out + o, head, (size_t)hl);
        o += (size_t)hl;
        for (size_t k = 0; k < r->len; k++) {
            out[o++] = hex[r->data[k] >> 4];
            out[o++] = hex[r->data[k] & 15];
        }
        out[o] = '\0';
        n++;
    }
    return n;
}

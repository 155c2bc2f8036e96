/* mx — see mx.h. */
#include "delivery/mx.h"
#include "lib/buf.h"
#include "lib/netaddr.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mx_family_parse(const char *s, enum mx_family *out)
{
    if (str_ieq(s, "any"))
        *out = MX_FAMILY_ANY;
    else if (str_ieq(s, "ipv4"))
        *out = MX_FAMILY_IPV4;
    else if (str_ieq(s, "ipv6"))
        *out = MX_FAMILY_IPV6;
    else
        return -1;
    return 0;
}

const char *mx_family_name(enum mx_family f)
{
    switch (f) {
    case MX_FAMILY_IPV4: return "ipv4";
    case MX_FAMILY_IPV6: return "ipv6";
    default: return "any";
    }
}

static uint32_t rand32(mx_rng rng, void *arg)
{
    return rng ? rng(arg) : arc4random();
}

/* Uniform in [0, n); the tiny modulo bias of 32 bits over n <= 10 is harmless. */
static size_t rand_below(mx_rng rng, void *arg, size_t n)
{
    return n ? (size_t)(rand32(rng, arg) % (uint32_t)n) : 0;
}

static bool is_null_mx(const char *exchange)
{
    return exchange[0] == '\0' || strcmp(exchange, ".") == 0;
}

static bool temporary(enum dns_status s)
{
    return s == DNS_SERVFAIL || s == DNS_TIMEOUT || s == DNS_ERROR;
}

/* Records of the MX answer worth trying, sorted by preference (insertion sort: at
   most a few dozen records after the bound below). */
#define MX_MAX_CANDIDATES 64

int mx_hosts_from_answer(const char *domain, const struct dns_answer *mx, const char *self, mx_rng rng,
                         void *rng_arg, struct mx_hosts *hosts, struct delivery_status *st)
{
    memset(hosts, 0, sizeof *hosts);
    hosts->secure = mx->authenticated;
    switch (mx->status) {
    case DNS_OK:
        break;
    case DNS_NODATA:
        hosts->implicit = true;
        hosts->n = 1;
        str_copy(hosts->h[0].name, domain, sizeof hosts->h[0].name);
        return 0;
    case DNS_NXDOMAIN:
        delivery_set(st, DELIVERY_FAIL, "5.1.2 the domain %s does not exist (DNS NXDOMAIN)", domain);
        return -1;
    default:
        delivery_set(st, DELIVERY_DEFER, "4.4.3 cannot look up the MX records of %s: %s", domain,
                     mx->error[0] ? mx->error : dns_status_name(mx->status));
        return -1;
    }

    struct mx_host cand[MX_MAX_CANDIDATES];
    size_t nc = 0, nmx = 0, nnull = 0;
    for (size_t i = 0; i < mx->count && nc < MX_MAX_CANDIDATES; i++) {
        const struct dns_record *r = &mx->records[i];
        if (r->type != DNS_T_MX)
            continue;
        nmx++;
        if (is_null_mx(r->u.mx.exchange)) {
            nnull++;
            continue;
        }
        bool dup = false;
        for (size_t k = 0; k < nc && !dup; k++)
            dup = str_ieq(cand[k].name, r->u.mx.exchange);
        if (dup)
            continue;
        struct mx_host h;
        str_copy(h.name, r->u.mx.exchange, sizeof h.name);
        h.preference = r->u.mx.preference;
        size_t at = nc++;
        while (at > 0 && cand[at - 1].preference > h.preference) {
            cand[at] = cand[at - 1];
            at--;
        }
        cand[at] = h;
    }
    if (nmx > 0 && nnull == nmx) {
        delivery_set(st, DELIVERY_FAIL, "5.1.10 the domain %s accepts no mail (null MX, RFC 7505)", domain);
        return -1;
    }
    if (nc == 0) {
        /* OK without a usable MX record (none of the asked type): treat as NODATA. */
        hosts->implicit = true;
        hosts->n = 1;
        str_copy(hosts->h[0].name, domain, sizeof hosts->h[0].name);
        return 0;
    }

    /* Random order inside each run of equal preference (Fisher-Yates per run). */
    for (size_t s = 0; s < nc;) {
        size_t e = s + 1;
        while (e < nc && cand[e].preference == cand[s].preference)
            e++;
        for (size_t i = e - 1; i > s; i--) {
            size_t j = s + rand_below(rng, rng_arg, i - s + 1);
            struct mx_host t = cand[i];
            cand[i] = cand[j];
            cand[j] = t;
        }
        s = e;
    }

    /* RFC 5321 §5.1: when we are one of the MX hosts, only better ones are used. */
    if (self && *self) {
        for (size_t i = 0; i < nc; i++) {
            if (!str_ieq(cand[i].name, self))
                continue;
            uint16_t mine = cand[i].preference;
            size_t keep = 0;
            while (keep < nc && cand[keep].preference < mine)
                keep++;
            nc = keep;
            break;
        }
        if (nc == 0) {
            delivery_set(st, DELIVERY_FAIL, "5.4.6 mail for %s loops back to myself (%s is its best MX)", domain,
                         self);
            return -1;
        }
    }

    hosts->n = nc < MX_MAX_HOSTS ? nc : MX_MAX_HOSTS;
    memcpy(hosts->h, cand, hosts->n * sizeof cand[0]);
    return 0;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr, &((const struct sockaddr_in6 *)b)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
}

/* Appends one address unless the route is full or already has it. */
static void add_target(struct mx_route *route, const char *host, const struct dns_record *r, uint16_t port,
                       bool dnssec)
{
    if (route->ntargets >= MX_MAX_ADDRS)
        return;
    struct mx_target t;
    memset(&t, 0, sizeof t);
    str_copy(t.host, host, sizeof t.host);
    t.dnssec = dnssec;
    if (r->type == DNS_T_A) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&t.sa;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        s4->sin_addr = r->u.a;
        t.salen = sizeof *s4;
    } else if (r->type == DNS_T_AAAA) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t.sa;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        s6->sin6_addr = r->u.aaaa;
        t.salen = sizeof *s6;
    } else {
        return;
    }
    for (size_t i = 0; i < route->ntargets; i++)
        if (same_addr(&route->targets[i].sa, &t.sa))
            return;
    route->targets[route->ntargets++] = t;
}

static size_t count_ok(const struct dns_answer *a)
{
    return a && a->status == DNS_OK ? a->count : 0;
}

void mx_route_build(const char *domain, const struct mx_hosts *hosts, const struct dns_answer *const *a,
                    const struct dns_answer *const *aaaa, const struct mx_config *cfg, mx_rng rng,
                    void *rng_arg, struct mx_route *route)
{
    memset(route, 0, sizeof *route);
    route->implicit = hosts->implicit;
    route->mx_secure = hosts->secure;
    bool temp = false;
    const char *temp_why = NULL;
    for (size_t i = 0; i < hosts->n; i++) {
        const struct dns_answer *v4 = a ? a[i] : NULL;
        const struct dns_answer *v6 = aaaa ? aaaa[i] : NULL;
        if (v4 && temporary(v4->status)) {
            temp = true;
            temp_why = v4->error[0] ? v4->error : dns_status_name(v4->status);
        }
        if (v6 && temporary(v6->status)) {
            temp = true;
            temp_why = v6->error[0] ? v6->error : dns_status_name(v6->status);
        }
        /* first: the family tried first for this host */
        bool v6_first = cfg->family == MX_FAMILY_IPV6 ||
                        (cfg->family == MX_FAMILY_ANY && rand_below(rng, rng_arg, 2) == 1);
        const struct dns_answer *first = v6_first ? v6 : v4, *second = v6_first ? v4 : v6;
        size_t n1 = count_ok(first), n2 = count_ok(second);
        bool sec1 = hosts->secure && first && first->authenticated;
        bool sec2 = hosts->secure && second && second->authenticated;
        if (cfg->family == MX_FAMILY_ANY) {
            for (size_t k = 0; k < n1 || k < n2; k++) {
                if (k < n1)
                    add_target(route, hosts->h[i].name, &first->records[k], cfg->port, sec1);
                if (k < n2)
                    add_target(route, hosts->h[i].name, &second->records[k], cfg->port, sec2);
            }
        } else {
            for (size_t k = 0; k < n1; k++)
                add_target(route, hosts->h[i].name, &first->records[k], cfg->port, sec1);
            for (size_t k = 0; k < n2; k++)
                add_target(route, hosts->h[i].name, &second->records[k], cfg->port, sec2);
        }
    }
    if (route->ntargets > 0)
        delivery_set(&route->st, DELIVERY_OK, "2.0.0 %zu address%s for %s", route->ntargets,
                     route->ntargets == 1 ? "" : "es", domain);
    else if (temp)
        delivery_set(&route->st, DELIVERY_DEFER, "4.4.3 cannot look up the addresses of the mail servers of %s: %s",
                     domain, temp_why);
    else if (hosts->implicit)
        delivery_set(&route->st, DELIVERY_FAIL, "5.1.2 the domain %s has no MX record and no address", domain);
    else
        delivery_set(&route->st, DELIVERY_FAIL, "5.4.4 no mail server of %s has an address", domain);
}

int mx_route_literal(const char *domain, uint16_t port, struct mx_route *route)
{
    size_t n = strlen(domain);
    if (n == 0 || domain[0] != '[')
        return 0;
    memset(route, 0, sizeof *route);
    char inner[64];
    struct mx_target *t = &route->targets[0];
    str_copy(t->host, domain, sizeof t->host);
    bool ok = false;
    if (n >= 3 && domain[n - 1] == ']' && n - 2 < sizeof inner) {
        str_copyn(inner, domain + 1, n - 2, sizeof inner);
        const char *ip = inner;
        bool v6 = str_nieq(inner, "IPv6:", 5);
        if (v6)
            ip += 5;
        if (v6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->sa;
            if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(port);
                t->salen = sizeof *s6;
                ok = true;
            }
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&t->sa;
            if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
                s4->sin_family = AF_INET;
                s4->sin_port = htons(port);
                t->salen = sizeof *s4;
                ok = true;
            }
        }
    }
    if (!ok) {
        delivery_set(&route->st, DELIVERY_FAIL, "5.1.2 the address literal %s is not a valid IP address", domain);
        return 1;
    }
    route->ntargets = 1;
    delivery_set(&route->st, DELIVERY_OK, "2.0.0 address literal %s", domain);
    return 1;
}

/* ---- asynchronous driver ---- */

struct mx_lookup;

/* The callback argument of an address query: which host and family it answers
   (a table inside the lookup, so no allocation per query). */
struct addr_slot {
    struct mx_lookup *l;
    size_t host;
    int fam;                             /* 0: A, 1: AAAA */
};

struct mx_lookup {
    struct event_base *base;
    struct dns_client *dns;
    struct mx_config cfg;
    char self[DNS_NAME_MAX + 1];
    char domain[DNS_NAME_MAX + 1];
    mx_callback cb;
    void *arg;
    struct event *later;                 /* answers decided without DNS */
    struct dns_query *mxq;
    struct mx_hosts hosts;
    struct dns_query *q[MX_MAX_HOSTS][2];
    struct addr_slot slot[MX_MAX_HOSTS][2];
    struct dns_answer ans[MX_MAX_HOSTS][2];
    bool have[MX_MAX_HOSTS][2];
    size_t outstanding;
    struct mx_route route;
};

static void lookup_free(struct mx_lookup *l)
{
    if (l->later)
        event_free(l->later);
    if (l->mxq)
        dns_cancel(l->mxq);
    for (size_t i = 0; i < MX_MAX_HOSTS; i++)
        for (int k = 0; k < 2; k++) {
            if (l->q[i][k])
                dns_cancel(l->q[i][k]);
            if (l->have[i][k])
                dns_answer_free(&l->ans[i][k]);
        }
    free(l);
}

static void finish(struct mx_lookup *l)
{
    l->cb(&l->route, l->arg);
    lookup_free(l);
}

static void start_addrs(struct mx_lookup *l);

static void on_later(evutil_socket_t fd, short what, void *arg)
{
    struct mx_lookup *l = arg;
    if (l->cfg.no_mx && l->route.st.text[0] == '\0') {
        /* A host, not a mail domain: its own addresses, as if it had no MX. A
           host has nothing to validate, so DANE may use its name when its
           addresses are secure. */
        l->hosts.n = 1;
        l->hosts.implicit = true;
        l->hosts.secure = true;
        str_copy(l->hosts.h[0].name, l->domain, sizeof l->hosts.h[0].name);
        start_addrs(l);
        return;
    }
    finish(l);
}

static void build_and_finish(struct mx_lookup *l)
{
    const struct dns_answer *a[MX_MAX_HOSTS], *aaaa[MX_MAX_HOSTS];
    for (size_t i = 0; i < l->hosts.n; i++) {
        a[i] = l->have[i][0] ? &l->ans[i][0] : NULL;
        aaaa[i] = l->have[i][1] ? &l->ans[i][1] : NULL;
    }
    mx_route_build(l->domain, &l->hosts, a, aaaa, &l->cfg, NULL, NULL, &l->route);
    finish(l);
}

/* Out of memory is a temporary failure of that one lookup. */
static void set_error(struct mx_lookup *l, size_t host, int fam, const char *why)
{
    char text[sizeof l->ans[0][0].error];
    snprintf(text, sizeof text, "%s for %s", why, l->hosts.h[host].name);
    struct dns_answer *t = &l->ans[host][fam];
    memset(t, 0, sizeof *t);
    t->status = DNS_ERROR;
    str_copy(t->error, text, sizeof t->error);
    l->have[host][fam] = true;
}

static void on_addr(const struct dns_answer *answer, void *arg)
{
    struct addr_slot *s = arg;
    struct mx_lookup *l = s->l;
    l->q[s->host][s->fam] = NULL;
    if (dns_answer_copy(&l->ans[s->host][s->fam], answer) == 0)
        l->have[s->host][s->fam] = true;
    else
        set_error(l, s->host, s->fam, "out of memory keeping the answer");
    if (--l->outstanding == 0)
        build_and_finish(l);
}


static void on_mx(const struct dns_answer *answer, void *arg)
{
    struct mx_lookup *l = arg;
    l->mxq = NULL;
    if (mx_hosts_from_answer(l->domain, answer, l->self[0] ? l->self : NULL, NULL, NULL, &l->hosts,
                             &l->route.st) < 0) {
        finish(l);
        return;
    }
    start_addrs(l);
}

static void start_addrs(struct mx_lookup *l)
{
    /* Counted from 1 while the queries start, so nothing can finish the lookup
       half-way through this loop. */
    l->outstanding = 1;
    static const uint16_t types[2] = {DNS_T_A, DNS_T_AAAA};
    for (size_t i = 0; i < l->hosts.n; i++) {
        for (int k = 0; k < 2; k++) {
            l->slot[i][k] = (struct addr_slot){l, i, k};
            l->q[i][k] = dns_lookup(l->dns, l->hosts.h[i].name, types[k], on_addr, &l->slot[i][k]);
            if (l->q[i][k])
                l->outstanding++;
            else
                set_error(l, i, k, "out of memory starting a query");
        }
    }
    if (--l->outstanding == 0)
        build_and_finish(l);
}

struct mx_lookup *mx_resolve(struct event_base *base, struct dns_client *dns, const char *domain,
                             const struct mx_config *cfg, mx_callback cb, void *arg)
{
    struct mx_lookup *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base = base;
    l->dns = dns;
    l->cfg = *cfg;
    if (cfg->self)
        str_copy(l->self, cfg->self, sizeof l->self);
    l->cfg.self = NULL;
    l->cb = cb;
    l->arg = arg;
    size_t n = str_copy(l->domain, domain, sizeof l->domain);
    bool decided = false;
    if (n >= sizeof l->domain) {
        delivery_set(&l->route.st, DELIVERY_FAIL, "5.1.2 the domain name %.64s... is too long", domain);
        decided = true;
    } else if (mx_route_literal(domain, cfg->port, &l->route)) {
        decided = true;
    }
    if (decided || cfg->no_mx) {
        /* The callback must not run inside mx_resolve: a zero timer defers it
           (and starts a no-MX host's address lookups). */
        l->later = evtimer_new(base, on_later, l);
        struct timeval now = {0, 0};
        if (!l->later || evtimer_add(l->later, &now) < 0) {
            lookup_free(l);
            return NULL;
        }
        return l;
    }
    l->mxq = dns_lookup(dns, domain, DNS_T_MX, on_mx, l);
    if (!l->mxq) {
        lookup_free(l);
        return NULL;
    }
    return l;
}

void mx_cancel(struct mx_lookup *l)
{
    if (l)
        lookup_free(l);
}

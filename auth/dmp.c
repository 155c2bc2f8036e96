/*
 * dmp — the draft-fecyk-dmp-02 §5.1 flowchart as a state machine.
 */
#include "auth/dmp.h"
#include "lib/netaddr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

enum dmp_step { S_DOMAIN_ADDR, S_DOMAIN_PART, S_HELO_ADDR, S_HELO_PART, S_DONE };

struct dmp_check {
    struct auth_resolver res;
    dmp_done_cb cb;
    void *arg;
    struct dmp_query q;
    enum dmp_step step;
    unsigned tries, attempt;
    void *pending;
    bool null_sender;
    char domain[256], helo[256], qname[DNS_NAME_MAX + 1];
    struct dmp_outcome out;
};

const char *dmp_result_name(enum dmp_result r)
{
    switch (r) {
    case DMP_PASS: return "pass";
    case DMP_NONE: return "none";
    case DMP_DENY: return "deny";
    case DMP_TEMPERROR: return "temperror";
    }
    return "temperror";
}

/* RFC 1464 "attribute=value": the attribute compared without case and surrounding
   blanks; the value trimmed and lower-cased. Returns false when it is not dmp=. */
static bool dmp_value(const struct dns_record *r, char *val, size_t valsz)
{
    if (r->type != DNS_T_TXT || !r->data)
        return false;
    const char *s = (const char *)r->data;
    size_t len = r->len;
    const char *eq = memchr(s, '=', len);
    if (!eq)
        return false;
    size_t a = 0, ae = (size_t)(eq - s);
    while (a < ae && s[a] == ' ')
        a++;
    while (ae > a && s[ae - 1] == ' ')
        ae--;
    if (ae - a != 3 || strncasecmp(s + a, "dmp", 3))
        return false;
    size_t v = (size_t)(eq - s) + 1, ve = len;
    while (v < ve && s[v] == ' ')
        v++;
    while (ve > v && s[ve - 1] == ' ')
        ve--;
    if (ve - v >= valsz) {
        snprintf(val, valsz, "?");     /* too long to be any keyword */
        return true;
    }
    for (size_t i = 0; i < ve - v; i++)
        val[i] = (char)tolower((unsigned char)s[v + i]);
    val[ve - v] = '\0';
    return true;
}

enum dmp_txt dmp_classify_address(const struct dns_answer *a)
{
    bool allow = false, deny = false;
    for (size_t i = 0; a->status == DNS_OK && i < a->count; i++) {
        char v[16];
        if (!dmp_value(&a->records[i], v, sizeof v))
            continue;
        allow |= !strcmp(v, "allow");
        deny |= !strcmp(v, "deny");
    }
    if (allow && deny)      /* conflicting records are "invalid DMP" (§5) */
        return DMP_TXT_INVALID;
    return allow ? DMP_TXT_ALLOW : deny ? DMP_TXT_DENY : DMP_TXT_INVALID;
}

bool dmp_is_participant(const struct dns_answer *a)
{
    for (size_t i = 0; a->status == DNS_OK && i < a->count; i++) {
        char v[16];
        if (dmp_value(&a->records[i], v, sizeof v) && v[0] == '\0')
            return true;
    }
    return false;
}

int dmp_address_name(const char *domain, int family, const uint8_t ip[16], char *out, size_t outsz)
{
    char rev[80];
    if (netaddr_reverse_labels(family, ip, rev, sizeof rev) < 0)
        return -1;
    size_t dl = strlen(domain);
    if (dl && domain[dl - 1] == '.')
        dl--;
    int n = snprintf(out, outsz, "%s._smtp-client.%.*s", rev, (int)dl, domain);
    return n < 0 || (size_t)n >= outsz || n > 253 ? -1 : 0;
}

int dmp_record_text(const char *domain, const char *ip, char *out, size_t outsz)
{
    int family;
    uint8_t a[16];
    char name[DNS_NAME_MAX + 1];
    if (netaddr_text_bytes(ip, &family, a) < 0 || dmp_address_name(domain, family, a, name, sizeof name) < 0)
        return -1;
    int n = snprintf(out, outsz, "%s. IN TXT \"dmp=allow\"", name);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* A usable FQDN: 1..63-octet labels, two or more, at most 253 octets. */
static bool fqdn_ok(const char *d)
{
    size_t len = strlen(d), lab = 0, labels = 0;
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || d[i] == '.') {
            if (lab == 0 || lab > 63)
                return false;
            labels++;
            lab = 0;
        } else if (isalnum((unsigned char)d[i]) || d[i] == '-' || d[i] == '_') {
            lab++;
        } else {
            return false;
        }
    }
    return labels >= 2;
}

static void trail(struct dmp_check *c, const char *name, const char *what)
{
    size_t n = strlen(c->out.trail);
    snprintf(c->out.trail + n, sizeof c->out.trail - n, "%s%s: %s", n ? "; " : "", name, what);
}

static void finish(struct dmp_check *c, enum dmp_result r, enum dmp_tier tier, const char *name)
{
    c->step = S_DONE;
    c->out.result = r;
    c->out.tier = tier;
    c->out.smtp_code = r == DMP_DENY ? 550 : r == DMP_TEMPERROR ? 451 : 250;
    snprintf(c->out.name, sizeof c->out.name, "%s", name);
    const char *ip = c->out.client_ip;
    switch (r) {
    case DMP_PASS:
        snprintf(c->out.reason, sizeof c->out.reason, "client at %s verified as %s%s", ip,
                 tier == DMP_TIER_DOMAIN ? "authorized sender for " : "", name);
        break;
    case DMP_NONE:
        snprintf(c->out.reason, sizeof c->out.reason, tier == DMP_TIER_LOCAL ? "no DMP lookup for %s (%s)"
                 : "client at %s not verified as authorized sender for %s", ip, name[0] ? name : "local sender");
        break;
    case DMP_DENY:
        snprintf(c->out.reason, sizeof c->out.reason, "client at %s %s %s", ip,
                 c->null_sender ? "not permitted to send for" : "may not send for", name);
        break;
    case DMP_TEMPERROR:
        snprintf(c->out.reason, sizeof c->out.reason, "cannot verify %s as sender for %s at this time", ip, name);
        break;
    }
}

static void complete(struct dmp_check *c)
{
    c->cb(&c->out, c->arg);
    free(c);
}

static void on_answer(const struct dns_answer *a, void *arg);

static void ask(struct dmp_check *c, enum dmp_step step)
{
    const char *name = step <= S_DOMAIN_PART ? c->domain : c->helo;
    c->step = step;
    if (step == S_DOMAIN_ADDR || step == S_HELO_ADDR) {
        if (dmp_address_name(name, c->q.family, c->q.ip, c->qname, sizeof c->qname) < 0) {
            /* cannot be asked: nothing is published there */
            trail(c, name, "name too long, treated as NXDOMAIN");
            ask(c, step + 1);
            return;
        }
    } else {
        snprintf(c->qname, sizeof c->qname, "_smtp-client.%s", name);
    }
    c->attempt = 1;
    c->pending = c->res.lookup(c->res.ctx, c->qname, DNS_T_TXT, on_answer, c);
    if (!c->pending)
        finish(c, DMP_TEMPERROR, step <= S_DOMAIN_PART ? DMP_TIER_DOMAIN : DMP_TIER_HELO, name);
}

/* TRY_HELO: the domain tier did not allow. */
static void try_helo(struct dmp_check *c)
{
    if (!c->q.allow_helo) {
        finish(c, DMP_DENY, DMP_TIER_DOMAIN, c->domain);
        return;
    }
    if (!fqdn_ok(c->helo)) {
        trail(c, c->helo[0] ? c->helo : "(no HELO)", "not a FQDN, no lookup");
        finish(c, DMP_DENY, DMP_TIER_DOMAIN, c->domain);
        return;
    }
    ask(c, S_HELO_ADDR);
}

static void step_answer(struct dmp_check *c, const struct dns_answer *a)
{
    bool domain_tier = c->step <= S_DOMAIN_PART;
    const char *name = domain_tier ? c->domain : c->helo;
    enum dmp_tier tier = domain_tier ? DMP_TIER_DOMAIN : DMP_TIER_HELO;
    if (!auth_dns_definite(a->status)) {
        if (c->attempt < c->tries) {
            c->attempt++;
            c->pending = c->res.lookup(c->res.ctx, c->qname, DNS_T_TXT, on_answer, c);
            if (c->pending)
                return;
        }
        char what[64];
        snprintf(what, sizeof what, "%s after %u tries", dns_status_name(a->status), c->attempt);
        trail(c, c->qname, what);
        finish(c, DMP_TEMPERROR, tier, name);
        return;
    }
    if (c->step == S_DOMAIN_ADDR || c->step == S_HELO_ADDR) {
        enum dmp_txt t = dmp_classify_address(a);
        trail(c, c->qname, t == DMP_TXT_ALLOW ? "allow" : t == DMP_TXT_DENY ? "deny"
                           : a->status == DNS_NXDOMAIN ? "NXDOMAIN" : "no valid DMP record");
        if (t == DMP_TXT_ALLOW)
            finish(c, DMP_PASS, tier, name);
        else if (t == DMP_TXT_DENY && domain_tier)
            try_helo(c);
        else if (t == DMP_TXT_DENY)
            finish(c, DMP_DENY, c->null_sender ? DMP_TIER_HELO : DMP_TIER_DOMAIN,
                   c->null_sender ? c->helo : c->domain);
        else
            ask(c, c->step + 1);
        return;
    }
    bool part = dmp_is_participant(a);
    trail(c, c->qname, part ? "participant" : a->status == DNS_NXDOMAIN ? "NXDOMAIN" : "not a participant");
    if (domain_tier) {
        if (!part && c->q.accept_nonparticipant)
            finish(c, DMP_NONE, DMP_TIER_DOMAIN, c->domain);
        else
            try_helo(c);
        return;
    }
    if (!part && c->q.accept_nonparticipant && c->null_sender)
        finish(c, DMP_NONE, DMP_TIER_HELO, c->helo);
    else
        finish(c, DMP_DENY, c->null_sender ? DMP_TIER_HELO : DMP_TIER_DOMAIN, c->null_sender ? c->helo : c->domain);
}

static void on_answer(const struct dns_answer *a, void *arg)
{
    struct dmp_check *c = arg;
    c->pending = NULL;
    step_answer(c, a);
    if (c->step == S_DONE)
        complete(c);
}

static void lower_copy(char *dst, size_t dsz, const char *src)
{
    snprintf(dst, dsz, "%s", src ? src : "");
    size_t n = strlen(dst);
    if (n && dst[n - 1] == '.')
        dst[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)tolower((unsigned char)dst[i]);
}

struct dmp_check *dmp_check_start(const struct auth_resolver *r, const struct dmp_query *q, dmp_done_cb cb, void *arg)
{
    struct dmp_check *c = calloc(1, sizeof *c);
    if (!c) {
        struct dmp_outcome o;
        memset(&o, 0, sizeof o);
        o.result = DMP_TEMPERROR;
        o.smtp_code = 451;
        snprintf(o.reason, sizeof o.reason, "out of memory starting a DMP check");
        cb(&o, arg);
        return NULL;
    }
    c->res = *r;
    c->cb = cb;
    c->arg = arg;
    c->q = *q;
    c->tries = q->tries ? q->tries : 2;
    if (q->family == AF_INET6) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, q->ip, text, sizeof text);
        netaddr_text_bytes(text, &c->q.family, c->q.ip);
    }
    inet_ntop(c->q.family, c->q.ip, c->out.client_ip, sizeof c->out.client_ip);
    lower_copy(c->helo, sizeof c->helo, q->helo);
    const char *s = q->sender ? q->sender : "";
    c->null_sender = !s[0];
    if (s[0] == '@' && strchr(s, ':'))      /* source route: the last domain (§7) */
        s = strrchr(s, ':') + 1;
    const char *at = strrchr(s, '@');
    lower_copy(c->domain, sizeof c->domain, at ? at + 1 : "");

    c->q.sender = c->q.helo = NULL;         /* not kept */
    if (c->null_sender) {
        if (!fqdn_ok(c->helo)) {
            trail(c, c->helo[0] ? c->helo : "(no HELO)", "not a FQDN, no lookup");
            if (c->q.accept_nonparticipant)
                finish(c, DMP_NONE, DMP_TIER_HELO, c->helo);
            else
                finish(c, DMP_DENY, DMP_TIER_HELO, c->helo);
        } else {
            ask(c, S_HELO_ADDR);
        }
    } else if (!c->domain[0] || !strcmp(c->domain, "localhost")) {
        finish(c, DMP_NONE, DMP_TIER_LOCAL, c->domain);    /* local mail [DSP04 §5] */
    } else if (!fqdn_ok(c->domain)) {
        trail(c, c->domain, "not a domain name, no lookup");
        if (c->q.accept_nonparticipant)
            finish(c, DMP_NONE, DMP_TIER_DOMAIN, c->domain);
        else
            try_helo(c);
    } else {
        ask(c, S_DOMAIN_ADDR);
    }
    if (c->step == S_DONE) {
        complete(c);
        return NULL;
    }
    return c;
}

void dmp_check_cancel(struct dmp_check *c)
{
    if (!c)
        return;
    if (c->pending)
        c->res.cancel(c->res.ctx, c->pending);
    free(c);
}

struct sync_wait {
    struct dmp_outcome *out;
    bool done;
};

static void sync_done(const struct dmp_outcome *o, void *arg)
{
    struct sync_wait *w = arg;
    *w->out = *o;
    w->done = true;
}

int dmp_check_sync(const struct dns_config *cfg, const struct dmp_query *q, struct dmp_outcome *out)
{
    struct auth_sync s;
    if (auth_sync_open(&s, cfg) < 0)
        return -1;
    struct sync_wait w = {out, false};
    struct dmp_check *c = dmp_check_start(&s.resolver, q, sync_done, &w);
    auth_sync_run(&s, &w.done);
    if (!w.done)
        dmp_check_cancel(c);
    auth_sync_close(&s);
    return w.done ? 0 : -1;
}

/*
 * dmarc_discover — see dmarc_discover.h. The target names are computed up front
 * (dmarc_walk_targets); each TXT answer fills one level and starts the next query,
 * until a psd= record, a DNS failure or the last name ends the walk.
 */
#include "auth/dmarc_discover.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dmarc_discover {
    struct auth_resolver res;
    dmarc_walk_cb cb;
    void *arg;
    void *pending;
    char targets[DMARC_WALK_MAX][DMARC_DOMAIN_MAX + 1];
    size_t ntargets, next;
    struct dmarc_walk walk;
};

const char *dmarc_source_name(enum dmarc_source s)
{
    switch (s) {
    case DMARC_SRC_NONE: return "none";
    case DMARC_SRC_DOMAIN: return "author domain";
    case DMARC_SRC_ORG: return "organizational domain";
    case DMARC_SRC_PSD: return "public suffix domain";
    }
    return "?";
}

static size_t count_labels(const char *d)
{
    size_t n = *d ? 1 : 0;
    for (; *d; d++)
        n += *d == '.';
    return n;
}

/* The suffix of d with `keep` labels. */
static const char *suffix_labels(const char *d, size_t keep)
{
    size_t n = count_labels(d);
    while (n > keep) {
        const char *dot = strchr(d, '.');
        if (!dot)
            break;
        d = dot + 1;
        n--;
    }
    return d;
}

static void copy_name(char *dst, const char *src)
{
    size_t n = strnlen(src, DMARC_DOMAIN_MAX);
    memmove(dst, src, n);
    dst[n] = '\0';
}

size_t dmarc_walk_targets(const char *domain, char out[][DMARC_DOMAIN_MAX + 1], size_t max)
{
    size_t n = 0, x = count_labels(domain);
    if (x == 0 || max == 0)
        return 0;
    copy_name(out[n++], domain);
    /* §4.10 step 4: fewer than 8 labels, drop one; otherwise keep 7. */
    size_t labels = x < 8 ? x - 1 : 7;
    for (; labels >= 1 && n < max && n < DMARC_WALK_MAX; labels--)
        copy_name(out[n++], suffix_labels(domain, labels));
    return n;
}

bool dmarc_domain_is_within(const char *b, const char *a)
{
    size_t lb = strlen(b), la = strlen(a);
    if (la == 0 || lb < la || strcmp(b + lb - la, a))
        return false;
    return lb == la || b[lb - la - 1] == '.';
}

void dmarc_walk_decide(struct dmarc_walk *w)
{
    w->policy_level = -1;
    w->source = DMARC_SRC_NONE;
    int org_level = -1, psd_level = -1, shortest = -1;
    snprintf(w->org_domain, sizeof w->org_domain, "%s", w->start);
    /* §4.10.2: longest to shortest; psd=n is the org, psd=y (not at the start) puts the
       org one label below it, else the record with the fewest labels. */
    for (size_t i = 0; i < w->nlevels; i++) {
        const struct dmarc_level *l = &w->levels[i];
        if (l->kind != DMARC_LVL_ONE)
            continue;
        shortest = (int)i;
        if (l->rec.psd == DMARC_PSD_N) {
            org_level = (int)i;
            snprintf(w->org_domain, sizeof w->org_domain, "%s", l->domain);
            break;
        }
        if (l->rec.psd == DMARC_PSD_Y && strcmp(l->domain, w->start)) {
            psd_level = (int)i;
            snprintf(w->org_domain, sizeof w->org_domain, "%s",
                     suffix_labels(w->start, count_labels(l->domain) + 1));
            break;
        }
    }
    if (org_level < 0 && psd_level < 0 && shortest >= 0) {
        org_level = shortest;
        snprintf(w->org_domain, sizeof w->org_domain, "%s", w->levels[shortest].domain);
    }
    if (psd_level >= 0) {   /* the org may still have been queried on the way up */
        for (size_t i = 0; i < w->nlevels; i++)
            if (w->levels[i].kind == DMARC_LVL_ONE && !strcmp(w->levels[i].domain, w->org_domain))
                org_level = (int)i;
    }
    /* §4.10.1: the start domain's own record, else the org's, else the PSD's. */
    if (w->nlevels && w->levels[0].kind == DMARC_LVL_ONE && !strcmp(w->levels[0].domain, w->start)) {
        w->policy_level = 0;
        w->source = DMARC_SRC_DOMAIN;
    } else if (org_level >= 0) {
        w->policy_level = org_level;
        w->source = DMARC_SRC_ORG;
    } else if (psd_level >= 0) {
        w->policy_level = psd_level;
        w->source = DMARC_SRC_PSD;
    }
}

static void complete(struct dmarc_discover *d)
{
    if (d->walk.status == DMARC_WALK_OK)
        dmarc_walk_decide(&d->walk);
    else
        d->walk.policy_level = -1;
    d->cb(&d->walk, d->arg);
    free(d);
}

void dmarc_discover_cancel(struct dmarc_discover *d)
{
    if (!d)
        return;
    if (d->pending)
        d->res.cancel(d->res.ctx, d->pending);
    free(d);
}

static void answer(const struct dns_answer *a, void *arg);

/* Starts the next query; false when the walk is over (or could not go on). */
static bool next_query(struct dmarc_discover *d)
{
    while (d->next < d->ntargets) {
        struct dmarc_level *l = &d->walk.levels[d->walk.nlevels];
        memset(l, 0, sizeof *l);
        copy_name(l->domain, d->targets[d->next++]);
        char name[DNS_NAME_MAX + 8];
        if (strlen(l->domain) + 7 > DNS_NAME_MAX - 2) {
            l->kind = DMARC_LVL_SKIPPED;
            d->walk.nlevels++;
            continue;
        }
        snprintf(name, sizeof name, "_dmarc.%s", l->domain);
        d->pending = d->res.lookup(d->res.ctx, name, DNS_T_TXT, answer, d);
        if (!d->pending) {
            d->walk.status = DMARC_WALK_TEMPERROR;
            snprintf(d->walk.reason, sizeof d->walk.reason, "out of memory starting a DNS query");
            return false;
        }
        return true;
    }
    return false;
}

static void answer(const struct dns_answer *a, void *arg)
{
    struct dmarc_discover *d = arg;
    d->pending = NULL;
    struct dmarc_level *l = &d->walk.levels[d->walk.nlevels++];
    l->dns = a->status;
    if (!auth_dns_definite(a->status)) {
        l->kind = DMARC_LVL_TEMPFAIL;
        d->walk.status = DMARC_WALK_TEMPERROR;
        snprintf(d->walk.reason, sizeof d->walk.reason, "the TXT lookup of _dmarc.%s failed (%s)", l->domain,
                 dns_status_name(a->status));
        complete(d);
        return;
    }
    size_t found = 0, which = 0;
    for (size_t i = 0; a->status == DNS_OK && i < a->count; i++) {
        const struct dns_record *r = &a->records[i];
        if (r->type == DNS_T_TXT && r->data && dmarc_record_is_dmarc((const char *)r->data, r->len)) {
            found++;
            which = i;
        }
    }
    if (found == 1) {
        const struct dns_record *r = &a->records[which];
        l->kind = DMARC_LVL_ONE;
        dmarc_record_parse((const char *)r->data, r->len, &l->rec);
        size_t n = r->len < sizeof l->text - 1 ? r->len : sizeof l->text - 1;
        for (size_t k = 0; k < n; k++) {
            unsigned char c = r->data[k];
            l->text[k] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        l->text[n] = '\0';
        if (l->rec.psd != DMARC_PSD_U) {   /* §4.10 steps 2 and 6: stop */
            complete(d);
            return;
        }
    } else {
        l->kind = found ? DMARC_LVL_SEVERAL : DMARC_LVL_NONE;
    }
    if (!next_query(d))
        complete(d);
}

struct dmarc_discover *dmarc_discover_start(const struct auth_resolver *r, const char *domain, dmarc_walk_cb cb,
                                            void *arg)
{
    struct dmarc_discover *d = calloc(1, sizeof *d);
    if (!d) {
        struct dmarc_walk oom;
        memset(&oom, 0, sizeof oom);
        oom.status = DMARC_WALK_TEMPERROR;
        oom.policy_level = -1;
        snprintf(oom.reason, sizeof oom.reason, "out of memory");
        cb(&oom, arg);
        return NULL;
    }
    d->res = *r;
    d->cb = cb;
    d->arg = arg;
    d->walk.policy_level = -1;
    snprintf(d->walk.start, sizeof d->walk.start, "%s", domain);
    if (dmarc_domain_canon(domain, d->walk.start, sizeof d->walk.start) < 0) {
        d->walk.status = DMARC_WALK_BAD_NAME;
        snprintf(d->walk.reason, sizeof d->walk.reason, "\"%.100s\" is not a valid domain name", domain);
        complete(d);
        return NULL;
    }
    d->ntargets = dmarc_walk_targets(d->walk.start, d->targets, DMARC_WALK_MAX);
    if (!next_query(d)) {
        complete(d);
        return NULL;
    }
    return d;
}

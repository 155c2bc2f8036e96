/*
 * dmarc_discover — the DNS Tree Walk of RFC 9989 §4.10: DMARC Policy Records at a
 * domain and its parents, the Organizational Domain (§4.10.2) and the record that
 * applies to mail from the domain (§4.10.1). No Public Suffix List.
 *
 * Who calls it: dmarc (once for the Author Domain, once per Authenticated Identifier
 * that relaxed alignment needs), unit tests over a table resolver.
 *
 * The walk: TXT at _dmarc.<domain>; then, if the domain has fewer than 8 labels, its
 * parent, else the 7-label suffix (the labels in between are skipped); then one label
 * less each time, to the top-level domain: at most DMARC_WALK_MAX queries. At each name
 * the TXT strings that start with "v=DMARC1" are counted: none means no record there,
 * one is parsed, several are all discarded (§4.10 step 2, as if none). A single record
 * with psd=y or psd=n ends the walk. NXDOMAIN and NODATA mean no record; any other DNS
 * failure ends the walk with status TEMPERROR (what was found so far is kept, the
 * caller decides what it still knows). A name too long to prefix with "_dmarc." is
 * not queried (it cannot have a record).
 *
 * Asynchronous on struct auth_resolver, at most one query outstanding: the callback
 * runs exactly once, from a DNS callback, unless dmarc_discover_cancel() is called
 * first; only when the domain is not a usable name (walk status BAD_NAME) or memory
 * runs out (TEMPERROR) does it run inside dmarc_discover_start(), which then returns
 * NULL. The walk passed to the callback lives until the callback returns; the
 * discovery frees itself afterwards.
 */
#ifndef FERRY_DMARC_DISCOVER_H
#define FERRY_DMARC_DISCOVER_H

#include "auth/auth_dns.h"
#include "auth/dmarc_from.h"
#include "auth/dmarc_record.h"

#define DMARC_WALK_MAX 8    /* DNS queries per walk (§4.10) */

enum dmarc_walk_status { DMARC_WALK_OK, DMARC_WALK_TEMPERROR, DMARC_WALK_BAD_NAME };

/* What one query found. */
enum dmarc_level_kind { DMARC_LVL_NONE, DMARC_LVL_ONE, DMARC_LVL_SEVERAL, DMARC_LVL_TEMPFAIL, DMARC_LVL_SKIPPED };

struct dmarc_level {
    char domain[DMARC_DOMAIN_MAX + 1];   /* the name under _dmarc. */
    enum dmarc_level_kind kind;
    enum dns_status dns;                 /* the DNS status of the TXT query */
    struct dmarc_record rec;             /* kind ONE */
    char text[DMARC_URI_LEN];            /* kind ONE: the record text, cut at this size */
};

/* Where the applicable record sits relative to the start domain (§4.10.1). */
enum dmarc_source { DMARC_SRC_NONE, DMARC_SRC_DOMAIN, DMARC_SRC_ORG, DMARC_SRC_PSD };

struct dmarc_walk {
    enum dmarc_walk_status status;
    char start[DMARC_DOMAIN_MAX + 1];
    struct dmarc_level levels[DMARC_WALK_MAX];   /* in query order (longest first) */
    size_t nlevels;
    char org_domain[DMARC_DOMAIN_MAX + 1];       /* §4.10.2 (valid when status OK) */
    enum dmarc_source source;                    /* §4.10.1 */
    int policy_level;                            /* index into levels, -1 when none */
    char reason[160];                            /* TEMPERROR/BAD_NAME: why */
};

typedef void (*dmarc_walk_cb)(const struct dmarc_walk *w, void *arg);

struct dmarc_discover;

/* domain: canonical (dmarc_domain_canon) or it is checked and canonicalised here. */
struct dmarc_discover *dmarc_discover_start(const struct auth_resolver *r, const char *domain, dmarc_walk_cb cb,
                                            void *arg);
void dmarc_discover_cancel(struct dmarc_discover *d);

/* Pure parts, for tests and for callers that know the answers. */
/* The names the walk queries for a domain, in order; returns how many (≤ DMARC_WALK_MAX). */
size_t dmarc_walk_targets(const char *domain, char out[][DMARC_DOMAIN_MAX + 1], size_t max);
/* Fills org_domain, source and policy_level from levels (status OK walks). */
void dmarc_walk_decide(struct dmarc_walk *w);
/* True when a and b are the same name, or b is a subdomain of a ("label-wise"). */
bool dmarc_domain_is_within(const char *b, const char *a);

const char *dmarc_source_name(enum dmarc_source s);

#endif

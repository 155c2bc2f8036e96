/* tls_policy — see tls_policy.h. */
#include "delivery/tls_policy.h"
#include "lib/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tls_entry {
    char *name;               /* lower case, no final dot; ".example.com" for subdomains */
    enum tls_level level;
};

struct tls_policy {
    enum tls_level def;
    size_t n;
    struct tls_entry *e;      /* sorted by name (strcmp) */
};

static const char *const level_names[] = { "none", "may", "encrypt", "dane", "verify" };

int tls_level_parse(const char *s, enum tls_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (str_ieq(s, level_names[i])) {
            *out = (enum tls_level)i;
            return 0;
        }
    return -1;
}

const char *tls_level_name(enum tls_level l)
{
    return (unsigned)l < sizeof level_names / sizeof level_names[0] ? level_names[l] : "?";
}

struct tls_policy *tls_policy_new(enum tls_level def)
{
    struct tls_policy *p = calloc(1, sizeof *p);
    if (p)
        p->def = def;
    return p;
}

static void free_entries(struct tls_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].name);
    free(e);
}

void tls_policy_free(struct tls_policy *p)
{
    if (!p)
        return;
    free_entries(p->e, p->n);
    free(p);
}

size_t tls_policy_count(const struct tls_policy *p)
{
    return p->n;
}

enum tls_level tls_policy_default(const struct tls_policy *p)
{
    return p->def;
}

/* A host-name-like domain: LDH labels (underscore allowed, as in real zones),
   1..63 octets each, 253 in all. NULL when fine, else why. */
static const char *check_domain(const char *d)
{
    size_t len = strlen(d);
    if (len == 0)
        return "empty domain";
    if (len > 253)
        return "domain longer than 253 characters";
    size_t label = 0;
    for (const char *c = d; *c; c++) {
        if (*c == '.') {
            if (label == 0)
                return "empty label in domain";
            label = 0;
            continue;
        }
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
            return "invalid character in domain";
        if (++label > 63)
            return "domain label longer than 63 characters";
    }
    return label == 0 ? "empty label in domain" : NULL;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct tls_entry *)a)->name, ((const struct tls_entry *)b)->name);
}

int tls_policy_parse(struct tls_policy *p, const char *name, const char *text, size_t len, char *err,
                     size_t errlen)
{
    struct tls_entry *e = NULL;
    size_t n = 0, cap = 0;
    unsigned lineno = 0;
    size_t pos = 0;
    char line[TLS_POLICY_MAX_LINE + 1];
    while (pos < len) {
        lineno++;
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - start) : len - pos;
        pos += ll + (nl ? 1 : 0);
        if (ll > TLS_POLICY_MAX_LINE) {
            snprintf(err, errlen, "%s:%u: line longer than %u characters", name, lineno, TLS_POLICY_MAX_LINE);
            goto fail;
        }
        if (memchr(start, '\0', ll)) {
            snprintf(err, errlen, "%s:%u: NUL character in line", name, lineno);
            goto fail;
        }
        memcpy(line, start, ll);
        line[ll] = '\0';
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *save = NULL;
        char *dom = strtok_r(line, " \t\r", &save);
        if (!dom)
            continue;
        char *lev = strtok_r(NULL, " \t\r", &save);
        char *extra = strtok_r(NULL, " \t\r", &save);
        if (!lev) {
            snprintf(err, errlen, "%s:%u: expected \"DOMAIN LEVEL\", found only \"%.100s\"", name, lineno, dom);
            goto fail;
        }
        if (extra) {
            snprintf(err, errlen, "%s:%u: unexpected \"%.100s\" after the level", name, lineno, extra);
            goto fail;
        }
        enum tls_level level;
        if (tls_level_parse(lev, &level) < 0) {
            snprintf(err, errlen, "%s:%u: unknown level \"%.40s\" (none, may, encrypt, dane, verify)", name,
                     lineno, lev);
            goto fail;
        }
        str_lower(dom);
        size_t dl = strlen(dom);
        if (dl > 1 && dom[dl - 1] == '.')
            dom[--dl] = '\0';
        const char *why = check_domain(dom[0] == '.' ? dom + 1 : dom);
        if (why) {
            snprintf(err, errlen, "%s:%u: %s: \"%.100s\"", name, lineno, why, dom);
            goto fail;
        }
        if (n == TLS_POLICY_MAX_ENTRIES) {
            snprintf(err, errlen, "%s:%u: more than %u entries", name, lineno, TLS_POLICY_MAX_ENTRIES);
            goto fail;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            struct tls_entry *ne = realloc(e, ncap * sizeof *ne);
            if (!ne) {
                snprintf(err, errlen, "%s:%u: out of memory", name, lineno);
                goto fail;
            }
            e = ne;
            cap = ncap;
        }
        e[n].name = strdup(dom);
        if (!e[n].name) {
            snprintf(err, errlen, "%s:%u: out of memory", name, lineno);
            goto fail;
        }
        e[n].level = level;
        n++;
        /* Duplicates are found after sorting, where the line is no longer known;
           a linear check here would be quadratic for big tables. */
    }
    if (n)
        qsort(e, n, sizeof *e, cmp_entry);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(e[i - 1].name, e[i].name)) {
            snprintf(err, errlen, "%s: \"%.100s\" is listed twice", name, e[i].name);
            goto fail;
        }
    free_entries(p->e, p->n);
    p->e = e;
    p->n = n;
    return 0;
fail:
    free_entries(e, n);
    return -1;
}

int tls_policy_load(struct tls_policy *p, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open the TLS policy table: %s", path, strerror(errno));
        return -1;
    }
    struct buf b;
    buf_init(&b, TLS_POLICY_MAX_FILE);
    char chunk[8192];
    size_t got;
    int rc = 0;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (buf_append(&b, chunk, got) < 0) {
            snprintf(err, errlen, "%s: the TLS policy table is larger than %u octets (or out of memory)", path,
                     TLS_POLICY_MAX_FILE);
            rc = -1;
            break;
        }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "%s: cannot read the TLS policy table: %s", path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    if (rc == 0)
        rc = tls_policy_parse(p, path, b.data ? b.data : "", b.len, err, errlen);
    buf_free(&b);
    return rc;
}

static const struct tls_entry *find(const struct tls_policy *p, const char *key)
{
    struct tls_entry k = { (char *)key, TLS_LEVEL_NONE };
    return p->n ? bsearch(&k, p->e, p->n, sizeof *p->e, cmp_entry) : NULL;
}

enum tls_level tls_policy_lookup(const struct tls_policy *p, const char *domain)
{
    char d[DNS_NAME_MAX + 2];
    size_t dl = strlen(domain);
    if (p->n == 0 || dl == 0 || dl >= sizeof d)
        return p->def;
    memcpy(d, domain, dl + 1);
    str_lower(d);
    if (d[dl - 1] == '.')
        d[--dl] = '\0';
    const struct tls_entry *hit = find(p, d);
    if (hit)
        return hit->level;
    /* ".a.b.c" entries, most specific suffix first. */
    for (const char *dot = strchr(d + 1, '.'); dot; dot = strchr(dot + 1, '.')) {
        hit = find(p, dot);
        if (hit)
            return hit->level;
    }
    return p->def;
}

enum tls_level tls_level_effective(enum tls_level configured, bool requiretls, const struct dane_result *tlsa)
{
    if (requiretls)
        return dane_result_usable(tlsa) ? TLS_LEVEL_DANE : TLS_LEVEL_VERIFY;
    if (configured != TLS_LEVEL_DANE)
        return configured;
    if (dane_result_usable(tlsa))
        return TLS_LEVEL_DANE;
    if (dane_result_all_unusable(tlsa))
        return TLS_LEVEL_ENCRYPT;
    return TLS_LEVEL_MAY;
}

bool tls_level_plaintext_retry(enum tls_level effective)
{
    return effective == TLS_LEVEL_MAY;
}

bool tls_level_requires_tls(enum tls_level effective)
{
    return effective != TLS_LEVEL_NONE && effective != TLS_LEVEL_MAY;
}

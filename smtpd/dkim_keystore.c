/* dkim_keystore — see dkim_keystore.h. */
#include "smtpd/dkim_keystore.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KEYSTORE_MAX_DOMAINS 256

struct ks_domain {
    char name[256];
    struct timespec active_mtime;
    bool have_mtime;
    size_t nkeys;
    struct dkim_sign_key keys[DKIM_KEYSTORE_MAX_KEYS];
    char selectors[DKIM_KEYSTORE_MAX_KEYS][64];
};

struct dkim_keystore {
    char dir[PATH_MAX];
    struct ks_domain *domains;
    size_t ndomains;
};

struct dkim_keystore *dkim_keystore_new(const char *dir)
{
    struct dkim_keystore *ks = calloc(1, sizeof *ks);
    if (!ks)
        return NULL;
    str_copy(ks->dir, dir, sizeof ks->dir);
    ks->domains = calloc(KEYSTORE_MAX_DOMAINS, sizeof *ks->domains);
    if (!ks->domains) {
        free(ks);
        return NULL;
    }
    return ks;
}

static void drop_keys(struct ks_domain *d)
{
    for (size_t i = 0; i < d->nkeys; i++)
        EVP_PKEY_free(d->keys[i].pkey);
    d->nkeys = 0;
}

void dkim_keystore_free(struct dkim_keystore *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->ndomains; i++)
        drop_keys(&ks->domains[i]);
    free(ks->domains);
    free(ks);
}

/* A domain name usable as a directory name: no slash, no leading dot. */
static bool safe_name(const char *s)
{
    if (!*s || *s == '.' || strlen(s) > 253)
        return false;
    for (; *s; s++)
        if (*s == '/' || (unsigned char)*s <= ' ')
            return false;
    return true;
}

static void load_domain(struct dkim_keystore *ks, struct ks_domain *d)
{
    drop_keys(d);
    char path[PATH_MAX + 600];
    snprintf(path, sizeof path, "%s/%s/active", ks->dir, d->name);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno != ENOENT && errno != ENOTDIR)
            log_warn("dkim: cannot read %s: %s; %s is not signed", path, strerror(errno), d->name);
        return;
    }
    char line[128];
    while (fgets(line, sizeof line, f) && d->nkeys < DKIM_KEYSTORE_MAX_KEYS) {
        char *sel = str_trim(line);
        if (!*sel || *sel == '#')
            continue;
        if (!safe_name(sel) || strlen(sel) >= sizeof d->selectors[0]) {
            log_warn("dkim: %s: \"%s\" is not a selector", path, sel);
            continue;
        }
        char keyfile[PATH_MAX + 700], err[256];
        snprintf(keyfile, sizeof keyfile, "%s/%s/%s.key", ks->dir, d->name, sel);
        enum dkim_algo algo;
        EVP_PKEY *k = dkim_privkey_load(keyfile, &algo, err, sizeof err);
        if (!k) {
            log_warn("dkim: %s; selector %s of %s does not sign", err, sel, d->name);
            continue;
        }
        str_copy(d->selectors[d->nkeys], sel, sizeof d->selectors[0]);
        d->keys[d->nkeys] = (struct dkim_sign_key){ .pkey = k, .algo = algo, .domain = d->name,
                                                    .selector = d->selectors[d->nkeys] };
        d->nkeys++;
    }
    fclose(f);
    log_info("dkim: %s signs with %zu key%s", d->name, d->nkeys, d->nkeys == 1 ? "" : "s");
}

size_t dkim_keystore_get(struct dkim_keystore *ks, const char *domain_in, const struct dkim_sign_key **keys)
{
    *keys = NULL;
    char domain[256];
    str_copy(domain, domain_in, sizeof domain);
    str_lower(domain);
    size_t n = strlen(domain);
    if (n && domain[n - 1] == '.')
        domain[n - 1] = '\0';
    if (!ks || !safe_name(domain))
        return 0;
    struct ks_domain *d = NULL;
    for (size_t i = 0; i < ks->ndomains && !d; i++)
        if (strcmp(ks->domains[i].name, domain) == 0)
            d = &ks->domains[i];
    /* The active file's mtime decides whether to read the domain again. */
    char path[PATH_MAX + 600];
    snprintf(path, sizeof path, "%s/%s/active", ks->dir, domain);
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (!d) {
        if (!exists)
            return 0;       /* remember nothing for unsigned domains: the table stays small */
        if (ks->ndomains == KEYSTORE_MAX_DOMAINS) {
            log_warn("dkim: more than %d signing domains; %s is not signed", KEYSTORE_MAX_DOMAINS, domain);
            return 0;
        }
        d = &ks->domains[ks->ndomains++];
        str_copy(d->name, domain, sizeof d->name);
    }
    if (!exists) {
        drop_keys(d);
        d->have_mtime = false;
        return 0;
    }
    if (!d->have_mtime || st.st_mtim.tv_sec != d->active_mtime.tv_sec ||
        st.st_mtim.tv_nsec != d->active_mtime.tv_nsec) {
        d->active_mtime = st.st_mtim;
        d->have_mtime = true;
        load_domain(ks, d);
    }
    *keys = d->keys;
    return d->nkeys;
}

/* dkim_keystore — see dkim_keystore.h. */
#include "smtpd/dkim_keystore.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "auth/dkim_dns.h"
#include "smtpd/keyproc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEYSTORE_MAX_DOMAINS 256
#define NEXT_CHECK_INTERVAL 60      /* seconds between lookups of a next selector */

struct ks_domain {
    char name[256];
    struct timespec active_mtime;
    bool have_mtime;
    size_t nkeys;
    bool unavailable;               /* the key process could not be asked: try again */
    struct dkim_sign_key keys[DKIM_KEYSTORE_MAX_KEYS];
    char selectors[DKIM_KEYSTORE_MAX_KEYS][64];
    /* rotation */
    time_t next_checked;
    void *next_lookup;              /* outstanding TXT lookup, or NULL */
    struct dkim_keystore *ks;
};

struct dkim_keystore {
    char dir[PATH_MAX];
    struct keyclient *kc;           /* the key process: the store holds no private key */
    struct dkim_resolver resolver;
    bool have_resolver;
    struct ks_domain *domains;
    size_t ndomains;
};

struct dkim_keystore *dkim_keystore_new(const char *dir, struct keyclient *kc)
{
    struct dkim_keystore *ks = calloc(1, sizeof *ks);
    if (!ks)
        return NULL;
    ks->kc = kc;
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
    d->nkeys = 0;
}

void dkim_keystore_set_dns(struct dkim_keystore *ks, struct dns_client *dns)
{
    if (!ks || !dns)
        return;
    dkim_resolver_async(&ks->resolver, dns);
    ks->have_resolver = true;
}

void dkim_keystore_free(struct dkim_keystore *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->ndomains; i++) {
        if (ks->domains[i].next_lookup)
            ks->resolver.cancel(ks->resolver.ctx, ks->domains[i].next_lookup);
        drop_keys(&ks->domains[i]);
    }
    free(ks->domains);
    free(ks);
}

/* A domain name usable as a directory name: no slash, no leading dot. */
bool dkim_keystore_name_ok(const char *s)
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
    d->unavailable = false;
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
        if (!dkim_keystore_name_ok(sel) || strlen(sel) >= sizeof d->selectors[0]) {
            log_warn("dkim: %s: \"%s\" is not a selector", path, sel);
            continue;
        }
        char err[400], rec[KEYPROC_REC_MAX];
        enum dkim_algo algo;
        int r = keyclient_info(ks->kc, d->name, sel, &algo, rec, sizeof rec, err, sizeof err);
        if (r == -2) {
            log_warn("dkim: %s; %s is not signed for now", err, d->name);
            d->unavailable = true;
            break;
        }
        if (r < 0) {
            log_warn("dkim: %s; selector %s of %s does not sign", err, sel, d->name);
            continue;
        }
        str_copy(d->selectors[d->nkeys], sel, sizeof d->selectors[0]);
        d->keys[d->nkeys] = (struct dkim_sign_key){ .pkey = NULL, .algo = algo, .domain = d->name,
                                                    .selector = d->selectors[d->nkeys],
                                                    .sign_digest = keyclient_sign, .sign_ctx = ks->kc };
        d->nkeys++;
    }
    fclose(f);
    if (d->unavailable) {
        drop_keys(d);
        return;
    }
    log_info("dkim: %s signs with %zu key%s", d->name, d->nkeys, d->nkeys == 1 ? "" : "s");
}

/* The p= value of a key record, without white space. */
static void record_p(const char *rec, size_t len, char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i + 1 < len; i++) {
        bool start = i == 0 || rec[i - 1] == ';' || rec[i - 1] == ' ' || rec[i - 1] == '\t';
        if (start && rec[i] == 'p' && rec[i + 1] == '=') {
            for (i += 2; i < len && rec[i] != ';' && o + 1 < outsz; i++)
                if (rec[i] != ' ' && rec[i] != '\t' && rec[i] != '\r' && rec[i] != '\n')
                    out[o++] = rec[i];
            out[o] = '\0';
            return;
        }
    }
}

static int read_line_file(const char *path, char *out, size_t outsz)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *r = fgets(out, (int)outsz, f);
    fclose(f);
    if (!r)
        return -1;
    str_trim(out);
    return out[0] ? 0 : -1;
}

/* The next selector's record is published: the key process, which alone writes
   the key directory, makes it active (keyproc.h, KEYPROC_PROMOTE). */
static void promote(struct dkim_keystore *ks, struct ks_domain *d, const char *next)
{
    char err[400];
    if (keyclient_promote(ks->kc, d->name, next, err, sizeof err) < 0) {
        log_error("dkim: %s._domainkey.%s is published, but the switch failed: %s", next, d->name, err);
        return;
    }
    log_info("dkim: %s now signs with selector %s (its record is visible in DNS)", d->name, next);
    d->have_mtime = false;      /* reload at the next use */
}

static void on_next_record(void *arg, enum dkim_dns_status st, const char *const *txt, const size_t *lens,
                           size_t n)
{
    struct ks_domain *d = arg;
    struct dkim_keystore *ks = d->ks;
    d->next_lookup = NULL;
    char path[PATH_MAX + 600], next[64];
    snprintf(path, sizeof path, "%s/%s/next", ks->dir, d->name);
    if (read_line_file(path, next, sizeof next) < 0)
        return;
    if (st != DKIM_DNS_OK || n == 0) {
        log_info("dkim: waiting for %s._domainkey.%s to appear in DNS", next, d->name);
        return;
    }
    char err[400], want_rec[KEYPROC_REC_MAX], want_p[4096], got_p[4096];
    enum dkim_algo algo;
    if (keyclient_info(ks->kc, d->name, next, &algo, want_rec, sizeof want_rec, err, sizeof err) < 0) {
        log_warn("dkim: next selector %s of %s: %s", next, d->name, err);
        return;
    }
    record_p(want_rec, strlen(want_rec), want_p, sizeof want_p);
    /* A TXT RRset of one record; its strings are already joined by the resolver. */
    record_p(txt[0], lens[0], got_p, sizeof got_p);
    if (!want_p[0] || strcmp(want_p, got_p) != 0) {
        log_warn("dkim: %s._domainkey.%s is published but does not hold the new key; not switching", next,
                 d->name);
        return;
    }
    (void)algo;
    promote(ks, d, next);
}

static void maybe_check_next(struct dkim_keystore *ks, struct ks_domain *d)
{
    if (!ks->have_resolver || d->next_lookup)
        return;
    time_t now = time(NULL);
    if (d->next_checked && now - d->next_checked < NEXT_CHECK_INTERVAL && now >= d->next_checked)
        return;
    char path[PATH_MAX + 600], next[64], name[400];
    snprintf(path, sizeof path, "%s/%s/next", ks->dir, d->name);
    if (read_line_file(path, next, sizeof next) < 0 || !dkim_keystore_name_ok(next))
        return;
    d->next_checked = now;
    d->ks = ks;
    snprintf(name, sizeof name, "%s._domainkey.%s", next, d->name);
    d->next_lookup = ks->resolver.lookup_txt(ks->resolver.ctx, name, on_next_record, d);
}

ssize_t dkim_keystore_get(struct dkim_keystore *ks, const char *domain_in, const struct dkim_sign_key **keys)
{
    *keys = NULL;
    char domain[256];
    str_copy(domain, domain_in, sizeof domain);
    str_lower(domain);
    size_t n = strlen(domain);
    if (n && domain[n - 1] == '.')
        domain[n - 1] = '\0';
    if (!ks || !dkim_keystore_name_ok(domain))
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
    if (!d->have_mtime || d->unavailable || st.st_mtim.tv_sec != d->active_mtime.tv_sec ||
        st.st_mtim.tv_nsec != d->active_mtime.tv_nsec) {
        d->active_mtime = st.st_mtim;
        d->have_mtime = true;
        load_domain(ks, d);
    }
    if (d->unavailable)
        return -1;
    maybe_check_next(ks, d);
    *keys = d->keys;
    return (ssize_t)d->nkeys;
}

/* classify — see classify.h. */
#include "pull/classify.h"
#include "lib/buf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LIST_PEERS, LIST_USERS, LIST_CORR, LIST_COUNT };

static const char *const list_files[LIST_COUNT] = { "pull_peers.db", "pull_users.db", "pull_correspondents.db" };

/* A lazy store retries a database it could not open at most this often (s). */
#define REOPEN_INTERVAL 5

struct pull_lists {
    struct fdb_env *env;
    struct fdb *db[LIST_COUNT];
    bool lazy;
    time_t tried[LIST_COUNT];       /* lazy: the last failed open */
};

const char *pull_class_name(enum pull_class c)
{
    return c == PULL_ALLOWED ? "allowed" : c == PULL_DENIED ? "denied" : "unclassified";
}

static void cidr_text(const struct cidr *c, char *out, size_t outsz)
{
    char a[INET6_ADDRSTRLEN];
    inet_ntop(c->family, c->addr, a, sizeof a);
    snprintf(out, outsz, "%s/%u", a, c->prefix);
}

int pull_peer_parse(const char *text, struct pull_peer_entry *e, const char **why)
{
    memset(e, 0, sizeof e[0]);
    size_t n = strlen(text);
    if (n == 0 || n > ADDR_DOMAIN_MAX) {
        *why = "a peer is an IP address, a CIDR block or a domain name";
        return -1;
    }
    if (strchr(text, ':') || strspn(text, "0123456789./") == n) {
        if (netaddr_parse_cidr(text, &e->net) < 0) {
            *why = "not an IP address or CIDR block";
            return -1;
        }
        /* clear the host bits, so "192.0.2.9/24" and "192.0.2.0/24" are one entry */
        unsigned bytes = e->net.family == AF_INET ? 4 : 16;
        for (unsigned i = 0; i < bytes; i++) {
            unsigned keep = e->net.prefix > i * 8 ? e->net.prefix - i * 8 : 0;
            if (keep < 8)
                e->net.addr[i] &= (uint8_t)(0xff << (8 - keep));
        }
        e->is_net = true;
        cidr_text(&e->net, e->text, sizeof e->text);
        return 0;
    }
    str_copy(e->domain, text, sizeof e->domain);
    if (n > 1 && e->domain[n - 1] == '.')
        e->domain[--n] = '\0';
    if (n > 253 || !addr_is_domain(e->domain, n, false) || !strchr(e->domain, '.')) {
        *why = "not a domain name (a fully qualified ASCII name is expected)";
        return -1;
    }
    str_lower(e->domain);
    str_copy(e->text, e->domain, sizeof e->text);
    return 0;
}

int pull_pattern_parse(const char *text, char *out, size_t outsz, const char **why)
{
    struct mailbox m;
    size_t n = strlen(text);
    *why = "a sender pattern is user@domain or @domain";
    if (n == 0 || n > ADDR_PATH_MAX || n >= outsz)
        return -1;
    if (text[0] == '@') {
        if (!addr_is_domain(text + 1, n - 1, true))
            return -1;
    } else if (addr_parse_mailbox(text, n, true, &m, why) < 0 || m.domain_kind != ADDR_DOMAIN_NAME) {
        *why = "a sender pattern is user@domain or @domain";
        return -1;
    }
    memcpy(out, text, n + 1);
    str_lower(out);
    return 0;
}

int pull_user_name(const char *text, char *out, size_t outsz, const char **why)
{
    size_t n = strlen(text);
    if (n == 0 || n > PULL_USER_MAX || n >= outsz) {
        *why = "a user name has 1 to 64 characters";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= ' ' || c >= 0x7f || c == '/') {
            *why = "a user name is printable ASCII without blanks or '/'";
            return -1;
        }
    }
    memcpy(out, text, n + 1);
    str_lower(out);
    return 0;
}

/* name is domain or below it (both lower-case, no trailing dot) */
static bool domain_within(const char *name, const char *domain)
{
    size_t nl = strlen(name), dl = strlen(domain);
    if (nl == dl)
        return str_ieq(name, domain);
    return nl > dl && name[nl - dl - 1] == '.' && str_ieq(name + nl - dl, domain);
}

/* The most specific entry matching ip or name (either may be absent); NULL if none.
   Specificity: an IP entry beats any domain entry; then prefix or name length. */
static const struct pull_peer_entry *best_peer(const struct pull_peer_entry *e, size_t n, const struct sockaddr *ip,
                                               const char *name)
{
    const struct pull_peer_entry *best = NULL;
    size_t best_score = 0;
    for (size_t i = 0; i < n; i++) {
        size_t score;
        if (e[i].is_net) {
            if (!ip || !netaddr_cidr_match(&e[i].net, ip))
                continue;
            score = 1000 + e[i].net.prefix;
        } else {
            if (!name || !*name || !domain_within(name, e[i].domain))
                continue;
            score = 1 + strlen(e[i].domain);
        }
        if (!best || score > best_score || (score == best_score && e[i].deny && !best->deny)) {
            best = &e[i];
            best_score = score;
        }
    }
    return best;
}

void pull_classify_peer(const struct pull_peer_entry *e, size_t n, const struct pull_peer_facts *f,
                        struct pull_verdict *out)
{
    char name[ADDR_DOMAIN_MAX + 1] = "";
    if (f->fcrdns) {
        str_copy(name, f->fcrdns, sizeof name);
        size_t l = strlen(name);
        if (l > 1 && name[l - 1] == '.')
            name[l - 1] = '\0';
    }
    out->cls = PULL_ALLOWED;
    if (f->authenticated) {
        snprintf(out->reason, sizeof out->reason, "authenticated client");
        return;
    }
    if (f->relay_client) {
        snprintf(out->reason, sizeof out->reason, "client in relay_networks");
        return;
    }
    const struct pull_peer_entry *b = best_peer(e, n, f->ip, name);
    if (b) {
        out->cls = b->deny ? PULL_DENIED : PULL_ALLOWED;
        if (b->is_net)
            snprintf(out->reason, sizeof out->reason, "peer address in %s list entry %s", b->deny ? "deny" : "allow",
                     b->text);
        else
            snprintf(out->reason, sizeof out->reason, "peer name %s in %s list entry %s", name,
                     b->deny ? "deny" : "allow", b->text);
        return;
    }
    if (f->allow_verified_domain && f->verified_domain && *f->verified_domain) {
        b = best_peer(e, n, NULL, f->verified_domain);
        if (b && !b->deny) {
            snprintf(out->reason, sizeof out->reason, "authenticated domain %.255s in allow list entry %s",
                     f->verified_domain, b->text);
            return;
        }
    }
    out->cls = PULL_UNCLASSIFIED;
    snprintf(out->reason, sizeof out->reason, "no list names the peer%s%s", name[0] ? " or " : "", name);
}

void pull_classify_sender(const struct pull_user_entry *e, size_t n, const char *sender, bool correspondent,
                          struct pull_verdict *out)
{
    const char *at = sender ? strrchr(sender, '@') : NULL;
    const struct pull_user_entry *best = NULL;
    int best_score = 0;
    for (size_t i = 0; at && i < n; i++) {
        int score = e[i].pattern[0] == '@' ? (str_ieq(e[i].pattern + 1, at + 1) ? 1 : 0)
                                           : (str_ieq(e[i].pattern, sender) ? 2 : 0);
        if (score && (!best || score > best_score || (score == best_score && e[i].deny && !best->deny))) {
            best = &e[i];
            best_score = score;
        }
    }
    if (best) {
        out->cls = best->deny ? PULL_DENIED : PULL_ALLOWED;
        snprintf(out->reason, sizeof out->reason, "user %s list entry %s", best->deny ? "deny" : "allow",
                 best->pattern);
    } else if (at && correspondent) {
        out->cls = PULL_ALLOWED;
        snprintf(out->reason, sizeof out->reason, "regular correspondent");
    } else {
        out->cls = PULL_UNCLASSIFIED;
        snprintf(out->reason, sizeof out->reason, "sender on no list of the user");
    }
}

bool pull_addr_is_private(const struct sockaddr *sa)
{
    static const char *const nets[] = {
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
        "224.0.0.0/3", "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32", "64:ff9b::/96",
    };
    if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return true;
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
        struct cidr c;
        if (netaddr_parse_cidr(nets[i], &c) == 0 && netaddr_cidr_match(&c, sa))
            return true;
    }
    return false;
}

/* ---- the store ---- */

/* The database, opened now if a lazy store could not open it before; NULL when it
   still cannot be (every caller then reports a database error). */
static struct fdb *list_db(struct pull_lists *l, int which)
{
    if (l->db[which] || !l->lazy)
        return l->db[which];
    time_t now = time(NULL);
    if (l->tried[which] && now - l->tried[which] < REOPEN_INTERVAL && now >= l->tried[which])
        return NULL;
    char err[256];
    if (fdb_open(l->env, list_files[which], &l->db[which], err, sizeof err) < 0)
        l->tried[which] = now;
    return l->db[which];
}

struct pull_lists *pull_lists_open(struct fdb_env *env, bool lazy, char *err, size_t errlen)
{
    struct pull_lists *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->env = env;
    l->lazy = lazy;
    err[0] = '\0';
    for (int i = 0; i < LIST_COUNT; i++) {
        char e[256];
        if (fdb_open(env, list_files[i], &l->db[i], e, sizeof e) == 0)
            continue;
        if (!lazy) {
            snprintf(err, errlen, "%s", e);
            pull_lists_close(l);
            return NULL;
        }
        l->tried[i] = time(NULL);
        if (!err[0])
            snprintf(err, errlen, "%s", e);
    }
    return l;
}

void pull_lists_close(struct pull_lists *l)
{
    if (!l)
        return;
    for (int i = 0; i < LIST_COUNT; i++)
        fdb_close(l->db[i]);
    free(l);
}

static int set_entry(struct fdb *db, const char *key, enum pull_class cls, const char *what, char *err,
                     size_t errlen)
{
    int r;
    if (!db) {
        snprintf(err, errlen, "the list's database cannot be opened");
        return -1;
    }
    if (cls == PULL_UNCLASSIFIED) {
        r = fdb_del(db, NULL, key, strlen(key));
        if (r == 1)
            snprintf(err, errlen, "%s is on no list", what);
    } else {
        char v[64];
        int n = snprintf(v, sizeof v, "%s %lld", cls == PULL_DENIED ? "deny" : "allow", (long long)time(NULL));
        r = fdb_put(db, NULL, key, strlen(key), v, (size_t)n);
    }
    if (r < 0)
        snprintf(err, errlen, "cannot update the pull lists for %s", what);
    return r;
}

int pull_peer_set(struct pull_lists *l, const char *peer, enum pull_class cls, char *err, size_t errlen)
{
    struct pull_peer_entry e;
    const char *why;
    if (pull_peer_parse(peer, &e, &why) < 0) {
        snprintf(err, errlen, "peer \"%s\": %s", peer, why);
        return -1;
    }
    return set_entry(list_db(l, LIST_PEERS), e.text, cls, e.text, err, errlen);
}

static int user_key(const char *user, const char *rest, char *out, size_t outsz, const char **why)
{
    char u[PULL_USER_MAX + 1];
    if (pull_user_name(user, u, sizeof u, why) < 0)
        return -1;
    if ((size_t)snprintf(out, outsz, "%s %s", u, rest) >= outsz) {
        *why = "too long";
        return -1;
    }
    return 0;
}

int pull_user_set(struct pull_lists *l, const char *user, const char *pattern, enum pull_class cls, char *err,
                  size_t errlen)
{
    char p[ADDR_PATH_MAX + 1], key[PULL_USER_MAX + ADDR_PATH_MAX + 2];
    const char *why;
    if (pull_pattern_parse(pattern, p, sizeof p, &why) < 0 || user_key(user, p, key, sizeof key, &why) < 0) {
        snprintf(err, errlen, "\"%s\" for user \"%s\": %s", pattern, user, why);
        return -1;
    }
    return set_entry(list_db(l, LIST_USERS), key, cls, key, err, errlen);
}

struct load_ctx {
    void *items;
    size_t n, cap, size, skip;
    bool peers;
};

static int load_one(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct load_ctx *c = arg;
    char key[PULL_USER_MAX + ADDR_PATH_MAX + 2];
    if (kl <= c->skip || kl >= sizeof key || vl < 4)
        return 0;       /* not a record of ours: ignored */
    if (c->n == PULL_MAX_ENTRIES)
        return -1;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        void *p = realloc(c->items, cap * c->size);
        if (!p)
            return -1;
        c->items = p;
        c->cap = cap;
    }
    memcpy(key, (const char *)k + c->skip, kl - c->skip);
    key[kl - c->skip] = '\0';
    bool deny = memcmp(v, "deny", 4) == 0;
    const char *why;
    if (c->peers) {
        struct pull_peer_entry *e = (struct pull_peer_entry *)c->items + c->n;
        if (pull_peer_parse(key, e, &why) < 0)
            return 0;
        e->deny = deny;
    } else {
        struct pull_user_entry *e = (struct pull_user_entry *)c->items + c->n;
        if (pull_pattern_parse(key, e->pattern, sizeof e->pattern, &why) < 0)
            return 0;
        e->deny = deny;
    }
    c->n++;
    return 0;
}

static int load(struct fdb *db, const char *prefix, struct load_ctx *c, void **out, size_t *n)
{
    int r = db ? fdb_foreach_prefix(db, NULL, prefix, strlen(prefix), load_one, c) : -1;
    if (r != 0) {
        free(c->items);
        *out = NULL;
        *n = 0;
        return -1;
    }
    *out = c->items;
    *n = c->n;
    return 0;
}

int pull_peer_load(struct pull_lists *l, struct pull_peer_entry **out, size_t *n)
{
    struct load_ctx c = { .size = sizeof **out, .peers = true };
    return load(list_db(l, LIST_PEERS), "", &c, (void **)out, n);
}

int pull_user_load(struct pull_lists *l, const char *user, struct pull_user_entry **out, size_t *n)
{
    char prefix[PULL_USER_MAX + 2];
    const char *why;
    *out = NULL;
    *n = 0;
    if (user_key(user, "", prefix, sizeof prefix, &why) < 0)
        return -1;
    struct load_ctx c = { .size = sizeof **out, .skip = strlen(prefix) };
    return load(list_db(l, LIST_USERS), prefix, &c, (void **)out, n);
}

static int corr_key(const char *user, const char *address, char *key, size_t keysz)
{
    char a[ADDR_PATH_MAX + 1];
    const char *why;
    struct mailbox m;
    if (!address || addr_parse_mailbox(address, strlen(address), true, &m, &why) < 0)
        return -1;
    str_copy(a, address, sizeof a);
    str_lower(a);
    return user_key(user, a, key, keysz, &why);
}

int pull_correspondent_note(struct pull_lists *l, const char *user, const char *address, enum pull_corr_kind kind,
                            time_t now)
{
    char key[PULL_USER_MAX + ADDR_PATH_MAX + 2], v[64];
    if (corr_key(user, address, key, sizeof key) < 0)
        return -1;
    int n = snprintf(v, sizeof v, "%lld %s", (long long)now, kind == PULL_CORR_SENT ? "sent" : "pulled");
    struct fdb *db = list_db(l, LIST_CORR);
    return db ? fdb_put(db, NULL, key, strlen(key), v, (size_t)n) : -1;
}

int pull_correspondent_is(struct pull_lists *l, const char *user, const char *address)
{
    char key[PULL_USER_MAX + ADDR_PATH_MAX + 2];
    if (corr_key(user, address, key, sizeof key) < 0)
        return 0;
    void *v;
    size_t n;
    struct fdb *db = list_db(l, LIST_CORR);
    int r = db ? fdb_get(db, NULL, key, strlen(key), &v, &n) : -1;
    if (r == 0)
        free(v);
    return r == 0 ? 1 : r == 1 ? 0 : -1;
}

/* ---- keyed lookups ---- */

#define DB_MATCH_MAX (129 + 2 * 128)    /* every prefix of an IPv6 address, every parent of two names */

struct matches {
    struct pull_peer_entry *e;
    size_t n;
};

/* Look key up; a record found is parsed into the next entry. 0 (found or not), -1 db error. */
static int lookup_peer(struct pull_lists *l, const char *key, struct matches *m)
{
    void *v;
    size_t vl;
    struct fdb *db = list_db(l, LIST_PEERS);
    int r = db ? fdb_get(db, NULL, key, strlen(key), &v, &vl) : -1;
    if (r != 0)
        return r < 0 ? -1 : 0;
    const char *why;
    if (m->n < DB_MATCH_MAX && vl >= 4 && pull_peer_parse(key, &m->e[m->n], &why) == 0) {
        m->e[m->n].deny = memcmp(v, "deny", 4) == 0;
        m->n++;
    }
    free(v);
    return 0;
}

static int lookup_nets(struct pull_lists *l, const struct sockaddr *ip, struct matches *m)
{
    int family;
    uint8_t a[16];
    if (!ip || netaddr_bytes(ip, &family, a) < 0)
        return 0;
    unsigned bits = family == AF_INET ? 32 : 128;
    for (int p = (int)bits; p >= 0; p--) {
        struct cidr c = { .family = family, .prefix = (unsigned)p };
        memcpy(c.addr, a, bits / 8);
        for (unsigned i = 0; i < bits / 8; i++) {
            unsigned keep = (unsigned)p > i * 8 ? (unsigned)p - i * 8 : 0;
            if (keep < 8)
                c.addr[i] &= (uint8_t)(0xff << (8 - keep));
        }
        char key[INET6_ADDRSTRLEN + 8];
        cidr_text(&c, key, sizeof key);
        if (lookup_peer(l, key, m) < 0)
            return -1;
    }
    return 0;
}

/* name and each parent that still has a dot (entries are fully qualified). */
static int lookup_names(struct pull_lists *l, const char *name, struct matches *m)
{
    char n[ADDR_DOMAIN_MAX + 1];
    if (!name || !*name)
        return 0;
    str_copy(n, name, sizeof n);
    size_t len = strlen(n);
    if (len > 1 && n[len - 1] == '.')
        n[len - 1] = '\0';
    str_lower(n);
    for (const char *p = n; p && strchr(p, '.'); p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL)
        if (lookup_peer(l, p, m) < 0)
            return -1;
    return 0;
}

int pull_classify_peer_db(struct pull_lists *l, const struct pull_peer_facts *f, struct pull_verdict *out)
{
    struct matches m = { calloc(DB_MATCH_MAX, sizeof *m.e), 0 };
    int r = -1;
    if (m.e && lookup_nets(l, f->ip, &m) == 0 && lookup_names(l, f->fcrdns, &m) == 0 &&
        (!f->allow_verified_domain || lookup_names(l, f->verified_domain, &m) == 0))
        r = 0;
    if (r == 0) {
        pull_classify_peer(m.e, m.n, f, out);
    } else {
        out->cls = PULL_UNCLASSIFIED;
        snprintf(out->reason, sizeof out->reason, "the peer lists cannot be read");
    }
    free(m.e);
    return r;
}

int pull_classify_sender_db(struct pull_lists *l, const char *user, const char *sender, bool correspondent,
                            struct pull_verdict *out)
{
    struct pull_user_entry e[2];
    size_t n = 0;
    const char *at = sender ? strrchr(sender, '@') : NULL;
    for (int i = 0; at && i < 2; i++) {
        char key[PULL_USER_MAX + ADDR_PATH_MAX + 2], pat[ADDR_PATH_MAX + 1];
        const char *why;
        if (pull_pattern_parse(i == 0 ? sender : at, pat, sizeof pat, &why) < 0 ||
            user_key(user, pat, key, sizeof key, &why) < 0)
            continue;
        void *v;
        size_t vl;
        struct fdb *db = list_db(l, LIST_USERS);
        int r = db ? fdb_get(db, NULL, key, strlen(key), &v, &vl) : -1;
        if (r < 0) {
            out->cls = PULL_UNCLASSIFIED;
            snprintf(out->reason, sizeof out->reason, "the sender lists cannot be read");
            return -1;
        }
        if (r == 0) {
            e[n].deny = vl >= 4 && memcmp(v, "deny", 4) == 0;
            str_copy(e[n].pattern, pat, sizeof e[n].pattern);
            n++;
            free(v);
        }
    }
    pull_classify_sender(e, n, sender, correspondent, out);
    return 0;
}

/* local_resolve — see local_resolve.h. */
#include "delivery/local_resolve.h"
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    const struct local_resolver *r;
    struct local_targets *out;
    struct delivery_status *st;
    char stack[LOCAL_RESOLVE_DEPTH + 1][ADDR_PATH_MAX + 16];
    int depth;
};

static int expand_list(struct ctx *c, const char *list, const char *rcpt, const char *domain);

void local_targets_free(struct local_targets *t)
{
    free(t->v);
    memset(t, 0, sizeof *t);
}

/* A mailbox name must be one safe directory or file name, and never a lock or
   control file's (delivery.h: mailbox_name_check). */
static bool valid_name(const char *s)
{
    const char *why;
    return mailbox_name_check(s, &why) == MAILBOX_NAME_OK;
}

static int push(struct ctx *c, const char *key)
{
    for (int i = 0; i < c->depth; i++)
        if (!strcmp(c->stack[i], key)) {
            delivery_set(c->st, DELIVERY_FAIL, "5.4.6 alias loop: %s expands to itself", key);
            return -1;
        }
    if (c->depth >= LOCAL_RESOLVE_DEPTH) {
        delivery_set(c->st, DELIVERY_FAIL, "5.4.6 alias chain deeper than %d levels at %s",
                     LOCAL_RESOLVE_DEPTH, key);
        return -1;
    }
    str_copy(c->stack[c->depth++], key, sizeof c->stack[0]);
    return 0;
}

static int add(struct ctx *c, enum local_target_kind kind, const char *arg, const char *rcpt,
               const char *domain)
{
    if (c->out->n >= LOCAL_RESOLVE_MAX_TARGETS) {
        delivery_set(c->st, DELIVERY_FAIL, "5.3.4 %s expands to more than %d deliveries",
                     c->stack[0], LOCAL_RESOLVE_MAX_TARGETS);
        return -1;
    }
    if (c->out->n == c->out->cap) {
        size_t cap = c->out->cap ? c->out->cap * 2 : 8;
        struct local_target *v = realloc(c->out->v, cap * sizeof *v);
        if (!v) {
            delivery_set(c->st, DELIVERY_DEFER, "4.3.0 out of memory expanding %s", c->stack[0]);
            return -1;
        }
        c->out->v = v;
        c->out->cap = cap;
    }
    struct local_target *t = &c->out->v[c->out->n++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    str_copy(t->arg, arg, sizeof t->arg);
    str_copy(t->rcpt, rcpt, sizeof t->rcpt);
    str_copy(t->domain, domain, sizeof t->domain);
    return 0;
}

/* The part of local before the first delimiter, or "" when there is none
   (or it would leave nothing). */
static void base_of(const struct local_resolver *r, const char *local, char *base, size_t basesz)
{
    base[0] = '\0';
    if (!r->delimiters || !*r->delimiters)
        return;
    size_t k = strcspn(local, r->delimiters);
    if (k == 0 || local[k] == '\0')
        return;
    str_copyn(base, local, k, basesz);
}

static int lookup(struct ctx *c, const struct local_map *m, const char *key, char *val, size_t valsz)
{
    int k = local_map_lookup(m, key, val, valsz);
    if (k < 0)
        delivery_set(c->st, DELIVERY_DEFER, "4.3.5 the map entry for %s is too long", key);
    return k;
}

/* local@domain in a local domain that is not virtual. */
static int resolve_local(struct ctx *c, const char *local, const char *domain, const char *display)
{
    char rcpt[ADDR_PATH_MAX + 1], base[ADDR_LOCAL_MAX + 1];
    static char val[LOCAL_MAP_VALUE_MAX];
    if (display)
        str_copy(rcpt, display, sizeof rcpt);
    else
        snprintf(rcpt, sizeof rcpt, "%s@%s", local, domain);
    base_of(c->r, local, base, sizeof base);
    const char *names[2] = { local, base };
    for (int i = 0; i < 2; i++) {
        if (!*names[i])
            continue;
        int k = lookup(c, c->r->aliases, names[i], val, sizeof val);
        if (k < 0)
            return -1;
        if (k == 0) {
            char *copy = strdup(val);
            if (!copy) {
                delivery_set(c->st, DELIVERY_DEFER, "4.3.0 out of memory expanding %s", rcpt);
                return -1;
            }
            int e = expand_list(c, copy, rcpt, domain);
            free(copy);
            return e;
        }
    }
    const char *name = *base ? base : local, *why;
    enum mailbox_name_verdict v = mailbox_name_check(name, &why);
    if (v != MAILBOX_NAME_OK) {
        /* Also what mail queued before the RCPT check refused such names meets. */
        delivery_set(c->st, DELIVERY_FAIL, "%s <%s>: %s", v == MAILBOX_NAME_RESERVED ? "5.1.1" : "5.1.3", rcpt,
                     why);
        return -1;
    }
    if (c->r->user_exists(c->r->arg, name))
        return add(c, LT_MAILBOX, name, rcpt, domain);
    delivery_set(c->st, DELIVERY_FAIL, "5.1.1 <%s>: no such user here", rcpt);
    return -1;
}

/* A virtual domain: only the map decides (user+tag@dom, user@dom, @dom). */
static int resolve_virtual(struct ctx *c, const char *local, const char *domain, const char *display)
{
    char rcpt[ADDR_PATH_MAX + 1], base[ADDR_LOCAL_MAX + 1], key[ADDR_PATH_MAX + 2];
    static char val[LOCAL_MAP_VALUE_MAX];
    if (display)
        str_copy(rcpt, display, sizeof rcpt);
    else
        snprintf(rcpt, sizeof rcpt, "%s@%s", local, domain);
    base_of(c->r, local, base, sizeof base);
    const char *locals[3] = { local, base, "" };
    for (int i = 0; i < 3; i++) {
        if (i == 1 && !*base)
            continue;
        snprintf(key, sizeof key, "%s@%s", locals[i], domain);
        int k = lookup(c, c->r->virtual, key, val, sizeof val);
        if (k < 0)
            return -1;
        if (k == 0) {
            char *copy = strdup(val);
            if (!copy) {
                delivery_set(c->st, DELIVERY_DEFER, "4.3.0 out of memory expanding %s", rcpt);
                return -1;
            }
            int e = expand_list(c, copy, rcpt, domain);
            free(copy);
            return e;
        }
    }
    delivery_set(c->st, DELIVERY_FAIL, "5.1.1 <%s>: no such user here", rcpt);
    return -1;
}

static bool is_virtual_domain(struct ctx *c, const char *domain)
{
    char val[8];
    return local_map_lookup(c->r->virtual, domain, val, sizeof val) == 0;
}

static int resolve_addr(struct ctx *c, const char *addr)
{
    struct mailbox m;
    const char *why;
    if (addr_parse_mailbox(addr, strlen(addr), true, &m, &why) < 0) {
        delivery_set(c->st, DELIVERY_FAIL, "5.1.3 bad address %.300s: %s", addr, why);
        return -1;
    }
    if (m.domain_kind != ADDR_DOMAIN_NAME || !c->r->is_local_domain(c->r->arg, m.domain))
        return add(c, LT_REMOTE, addr, addr, m.domain);
    char local[ADDR_LOCAL_MAX + 1], key[ADDR_PATH_MAX + 1];
    if (addr_local_unquoted(&m, local, sizeof local) < 0) {
        delivery_set(c->st, DELIVERY_FAIL, "5.1.3 local part too long in %.300s", addr);
        return -1;
    }
    str_lower(local);
    str_lower(m.domain);
    size_t dl = strlen(m.domain);
    if (dl && m.domain[dl - 1] == '.')
        m.domain[dl - 1] = '\0';
    snprintf(key, sizeof key, "%s@%s", local, m.domain);
    if (push(c, key) < 0)
        return -1;
    /* The address as the sender wrote it names the top-level delivery. */
    const char *display = c->depth == 1 ? addr : NULL;
    int e = is_virtual_domain(c, m.domain) ? resolve_virtual(c, local, m.domain, display)
                                           : resolve_local(c, local, m.domain, display);
    c->depth--;
    return e;
}

static int include_file(struct ctx *c, const char *path, const char *rcpt, const char *domain)
{
    char key[ADDR_PATH_MAX + 16];
    if (path[0] != '/') {
        delivery_set(c->st, DELIVERY_DEFER, "4.3.5 include file %.300s is not an absolute path", path);
        return -1;
    }
    if (c->r->check_only) {
        c->out->unread_include = true;
        return add(c, LT_MBOX, path, rcpt, domain);
    }
    snprintf(key, sizeof key, ":include:%s", path);
    if (push(c, key) < 0)
        return -1;
    const char *why = "cannot be read";
    char *text = c->r->read_include(c->r->arg, path, &why);
    if (!text) {
        delivery_set(c->st, DELIVERY_DEFER, "4.3.5 include file %.300s: %s", path, why);
        c->depth--;
        return -1;
    }
    /* One list per line, comment lines dropped. */
    int e = 0;
    for (char *line = text, *next; line && e == 0; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *t = str_trim(line);
        if (*t && *t != '#')
            e = expand_list(c, t, rcpt, domain);
    }
    free(text);
    c->depth--;
    return e;
}

static bool valid_lmtp(const char *spec)
{
    if (!strncmp(spec, "unix:/", 6))
        return spec[6] != '\0';
    if (!strncmp(spec, "inet:", 5))
        return strrchr(spec + 5, ':') != NULL;
    return false;
}

static int expand_one(struct ctx *c, char *t, const char *rcpt, const char *domain)
{
    if (t[0] == '|') {
        char *cmd = str_trim(t + 1);
        if (!*cmd) {
            delivery_set(c->st, DELIVERY_DEFER, "4.3.5 empty pipe command for %s", rcpt);
            return -1;
        }
        return add(c, LT_PIPE, cmd, rcpt, domain);
    }
    if (!strncmp(t, ":include:", 9))
        return include_file(c, str_trim(t + 9), rcpt, domain);
    if (t[0] == '/') {
        if (strstr(t, "/../") || (strlen(t) >= 3 && !strcmp(t + strlen(t) - 3, "/..")))
        {
            delivery_set(c->st, DELIVERY_DEFER, "4.3.5 mailbox path %.300s has a \"..\" component", t);
            return -1;
        }
        return add(c, t[strlen(t) - 1] == '/' ? LT_MAILDIR : LT_MBOX, t, rcpt, domain);
    }
    if (!strncmp(t, "lmtp:", 5)) {
        if (!valid_lmtp(t + 5)) {
            delivery_set(c->st, DELIVERY_DEFER,
                         "4.3.5 %.300s: expected lmtp:unix:/path or lmtp:inet:host:port", t);
            return -1;
        }
        return add(c, LT_LMTP, t + 5, rcpt, domain);
    }
    if (t[0] == '\\') {
        str_lower(t + 1);
        if (!valid_name(t + 1)) {
            delivery_set(c->st, DELIVERY_DEFER, "4.3.5 %.100s cannot be a mailbox name", t);
            return -1;
        }
        char r2[ADDR_PATH_MAX + 1];
        snprintf(r2, sizeof r2, "%s@%s", t + 1, domain);
        return add(c, LT_MAILBOX, t + 1, r2, domain);
    }
    if (strchr(t, '@'))
        return resolve_addr(c, t);
    str_lower(t);
    char key[ADDR_PATH_MAX + 1];
    if (strlen(t) > ADDR_LOCAL_MAX) {
        delivery_set(c->st, DELIVERY_DEFER, "4.3.5 alias target %.100s is too long", t);
        return -1;
    }
    snprintf(key, sizeof key, "%s@%s", t, domain);
    if (push(c, key) < 0)
        return -1;
    int e = resolve_local(c, t, domain, NULL);
    c->depth--;
    return e;
}

static int expand_list(struct ctx *c, const char *list, const char *rcpt, const char *domain)
{
    const char *p = list, *why;
    char t[LOCAL_TARGET_MAX];
    int k;
    while ((k = local_target_next(&p, t, sizeof t, &why)) == 1)
        if (expand_one(c, t, rcpt, domain) < 0)
            return -1;
    if (k < 0) {
        delivery_set(c->st, DELIVERY_DEFER, "4.3.5 bad target list for %s: %s", rcpt, why);
        return -1;
    }
    return 0;
}

int local_resolve(const struct local_resolver *r, const char *addr, struct local_targets *out,
                  struct delivery_status *st)
{
    struct ctx *c = calloc(1, sizeof *c);
    if (!c) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 out of memory");
        return -1;
    }
    c->r = r;
    c->out = out;
    c->st = st;
    int e;
    const char *box = r->report_maildir ? r->report_maildir(r->arg, addr) : NULL;
    if (box)
        e = add(c, LT_MAILDIR, box, addr, "");
    else
        e = resolve_addr(c, addr);
    if (e == 0 && out->n == 0) {
        delivery_set(st, DELIVERY_FAIL, "5.1.1 <%s>: expands to no recipient", addr);
        e = -1;
    }
    free(c);
    return e;
}

static const char *const kind_names[] = { "mailbox", "maildir", "mbox", "pipe", "lmtp", "remote" };

int local_target_encode(const struct local_target *t, char *out, size_t outsz)
{
    int n;
    if (t->kind == LT_REMOTE)
        n = snprintf(out, outsz, "%s", t->arg);
    else
        n = snprintf(out, outsz, "::%s %s\t%s", kind_names[t->kind], t->rcpt, t->arg);
    return n < 0 || (size_t)n >= outsz || (size_t)n > ADDR_PATH_MAX ? -1 : 0;
}

bool local_target_is_encoded(const char *addr)
{
    return addr[0] == ':' && addr[1] == ':';
}

int local_target_decode(const char *addr, struct local_target *t)
{
    memset(t, 0, sizeof *t);
    if (!local_target_is_encoded(addr))
        return -1;
    const char *sp = strchr(addr, ' '), *tab = strchr(addr, '\t');
    if (!sp || !tab || tab < sp || !tab[1])
        return -1;
    size_t kl = (size_t)(sp - (addr + 2));
    int kind = -1;
    for (int i = 0; i < LT_REMOTE; i++)
        if (strlen(kind_names[i]) == kl && !strncmp(addr + 2, kind_names[i], kl))
            kind = i;
    if (kind < 0 || (size_t)(tab - sp - 1) > ADDR_PATH_MAX)
        return -1;
    t->kind = (enum local_target_kind)kind;
    str_copyn(t->rcpt, sp + 1, (size_t)(tab - sp - 1), sizeof t->rcpt);
    str_copy(t->arg, tab + 1, sizeof t->arg);
    const char *at = strrchr(t->rcpt, '@');
    str_copy(t->domain, at ? at + 1 : "", sizeof t->domain);
    if (t->kind == LT_MAILBOX && !valid_name(t->arg))
        return -1;
    if ((t->kind == LT_MAILDIR || t->kind == LT_MBOX) && t->arg[0] != '/')
        return -1;
    if (t->kind == LT_LMTP && !valid_lmtp(t->arg))
        return -1;
    return 0;
}

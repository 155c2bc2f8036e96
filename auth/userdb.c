/* userdb — see userdb.h. */
#include "auth/userdb.h"
#include "lib/buf.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define RECORD_MAX (8192 + USERDB_MAX_ADDRS * (USERDB_ADDR_MAX + 8))

struct userdb {
    struct fdb *db;
    bool secrets;               /* users.db (with credentials), else the directory */
};

static struct userdb *open_db(struct fdb_env *env, const char *file, bool secrets, char *err, size_t errlen)
{
    struct userdb *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (fdb_open(env, file, &u->db, err, errlen) < 0) {
        free(u);
        return NULL;
    }
    u->secrets = secrets;
    return u;
}

struct userdb *userdb_open(struct fdb_env *env, char *err, size_t errlen)
{
    return open_db(env, USERDB_DIRECTORY_FILE, false, err, errlen);
}

struct userdb *userdb_open_secrets(struct fdb_env *env, char *err, size_t errlen)
{
    return open_db(env, USERDB_SECRETS_FILE, true, err, errlen);
}

void userdb_close(struct userdb *u)
{
    if (!u)
        return;
    fdb_close(u->db);
    free(u);
}

int userdb_name(const char *name, char *out, size_t outsz, const char **why)
{
    size_t n = strlen(name);
    if (n == 0 || n > USERDB_NAME_MAX || n >= outsz) {
        *why = "a user name has 1 to 64 characters";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._@+-", c))) {
            *why = "a user name may hold only letters, digits and . _ @ + -";
            return -1;
        }
    }
    memcpy(out, name, n + 1);
    str_lower(out);
    return 0;
}

static int serialize(const struct user_record *r, bool with_cred, char *out, size_t outsz)
{
    char salt[64], stored[64], server[64];
    cred_b64_encode(r->cred.salt, r->cred.salt_len, salt, sizeof salt);
    cred_b64_encode(r->cred.stored_key, CRED_KEY_LEN, stored, sizeof stored);
    cred_b64_encode(r->cred.server_key, CRED_KEY_LEN, server, sizeof server);
    struct buf b;
    buf_init(&b, outsz - 20);
    int rc = with_cred ? buf_printf(&b, "FERRY-USER 1\nname %s\niterations %u\nsalt %s\nstored %s\nserver %s\n",
                                    r->name, r->cred.iterations, salt, stored, server)
                       : buf_printf(&b, "FERRY-USER 1\nname %s\n", r->name);
    rc |= buf_printf(&b, "created %lld\n", (long long)r->created);
    for (size_t i = 0; i < r->naddrs; i++)
        rc |= buf_printf(&b, "addr %s\n", r->addrs[i]);
    if (rc < 0) {
        buf_free(&b);
        return -1;
    }
    int n = snprintf(out, outsz, "%send %08lx\n", b.data, (unsigned long)crc32(0, (const Bytef *)b.data, (uInt)b.len));
    buf_free(&b);
    OPENSSL_cleanse(stored, sizeof stored);
    OPENSSL_cleanse(server, sizeof server);
    return n < 0 || (size_t)n >= outsz ? -1 : n;
}

int userdb_serialize(const struct user_record *r, char *out, size_t outsz)
{
    return serialize(r, true, out, outsz);
}

static int key_b64(const char *v, unsigned char *out, size_t want, size_t *got)
{
    size_t n;
    unsigned char tmp[64];
    if (cred_b64_decode(v, strlen(v), tmp, sizeof tmp, &n) < 0 || (want && n != want) || n > want + 32)
        return -1;
    memcpy(out, tmp, n);
    *got = n;
    return 0;
}

/* need_cred: a users.db record; else a directory record, which has no
   credentials (and must not: one that did would be a copy of a secret). */
static int parse(const char *data, size_t len, bool need_cred, struct user_record *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    const char *endrec;
    /* the last line is "end XXXXXXXX\n" and covers everything before it */
    if (len < 13 || data[len - 1] != '\n' || memcmp(data + len - 13, "end ", 4) != 0) {
        snprintf(err, errlen, "user record without its end line");
        return -1;
    }
    endrec = data + len - 13;
    unsigned long want = strtoul(endrec + 4, NULL, 16);
    if (crc32(0, (const Bytef *)data, (uInt)(endrec - data)) != want) {
        snprintf(err, errlen, "user record fails its checksum");
        return -1;
    }
    char line[USERDB_ADDR_MAX + 64];
    const char *p = data;
    bool magic = false;
    unsigned have = 0;
    while (p < endrec) {
        const char *nl = memchr(p, '\n', (size_t)(endrec - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(endrec - p);
        if (n >= sizeof line) {
            snprintf(err, errlen, "user record line too long");
            return -1;
        }
        memcpy(line, p, n);
        line[n] = '\0';
        p += n + 1;
        char *v = strchr(line, ' ');
        if (!v) {
            snprintf(err, errlen, "user record line without a value");
            return -1;
        }
        *v++ = '\0';
        size_t got;
        if (!magic) {
            if (strcmp(line, "FERRY-USER") || strcmp(v, "1")) {
                snprintf(err, errlen, "not a version 1 user record");
                return -1;
            }
            magic = true;
        } else if (!strcmp(line, "name")) {
            str_copy(r->name, v, sizeof r->name);
            have |= 1;
        } else if (!strcmp(line, "iterations")) {
            r->cred.iterations = (unsigned)strtoul(v, NULL, 10);
            have |= 2;
        } else if (!strcmp(line, "salt") && key_b64(v, r->cred.salt, 0, &got) == 0 && got <= CRED_SALT_LEN) {
            r->cred.salt_len = got;
            have |= 4;
        } else if (!strcmp(line, "stored") && key_b64(v, r->cred.stored_key, CRED_KEY_LEN, &got) == 0) {
            have |= 8;
        } else if (!strcmp(line, "server") && key_b64(v, r->cred.server_key, CRED_KEY_LEN, &got) == 0) {
            have |= 16;
        } else if (!strcmp(line, "created")) {
            r->created = (time_t)strtoll(v, NULL, 10);
        } else if (!strcmp(line, "addr") && r->naddrs < USERDB_MAX_ADDRS) {
            str_copy(r->addrs[r->naddrs++], v, USERDB_ADDR_MAX + 1);
        } else {
            snprintf(err, errlen, "user record has a bad \"%s\" line", line);
            return -1;
        }
    }
    if (need_cred ? have != 31 || r->cred.iterations == 0 : have != 1) {
        snprintf(err, errlen, need_cred ? "user record is missing fields" : "directory record with credentials");
        return -1;
    }
    return 0;
}

int userdb_parse(const char *data, size_t len, struct user_record *r, char *err, size_t errlen)
{
    return parse(data, len, true, r, err, errlen);
}

static int put(struct userdb *u, const struct user_record *r, char *err, size_t errlen)
{
    char *rec = malloc(RECORD_MAX);
    int n = rec ? serialize(r, u->secrets, rec, RECORD_MAX) : -1;
    int rc = n < 0 ? -1 : fdb_put(u->db, NULL, r->name, strlen(r->name), rec, (size_t)n);
    free(rec);
    if (rc < 0)
        snprintf(err, errlen, "cannot store user %s", r->name);
    return rc;
}

int userdb_get(struct userdb *u, const char *name_in, struct user_record *out, char *err, size_t errlen)
{
    char name[USERDB_NAME_MAX + 1];
    const char *why;
    if (userdb_name(name_in, name, sizeof name, &why) < 0)
        return 1;
    void *v;
    size_t n;
    int r = fdb_get(u->db, NULL, name, strlen(name), &v, &n);
    if (r != 0) {
        if (r < 0)
            snprintf(err, errlen, "cannot read the user database");
        return r;
    }
    r = parse(v, n, u->secrets, out, err, errlen);
    OPENSSL_cleanse(v, n);
    free(v);
    return r;
}

int userdb_add(struct userdb *u, const char *name_in, const char *password, char *err, size_t errlen)
{
    struct user_record *r = calloc(1, sizeof *r);
    const char *why;
    int rc = -1;
    if (!r)
        return -1;
    if (userdb_name(name_in, r->name, sizeof r->name, &why) < 0) {
        snprintf(err, errlen, "user name \"%s\": %s", name_in, why);
        goto out;
    }
    struct user_record *old = malloc(sizeof *old);
    int g = old ? userdb_get(u, r->name, old, err, errlen) : -1;
    free(old);
    if (g == 0) {
        snprintf(err, errlen, "user %s already exists", r->name);
        rc = 1;
        goto out;
    }
    if (cred_make(password, strlen(password), CRED_DEFAULT_ITERATIONS, &r->cred, &why) < 0) {
        snprintf(err, errlen, "password refused: %s", why);
        goto out;
    }
    r->created = time(NULL);
    rc = put(u, r, err, errlen);
out:
    free(r);
    return rc;
}

int userdb_passwd(struct userdb *u, const char *name, const char *password, char *err, size_t errlen)
{
    struct user_record *r = malloc(sizeof *r);
    const char *why;
    if (!r)
        return -1;
    int rc = userdb_get(u, name, r, err, errlen);
    if (rc == 1)
        snprintf(err, errlen, "no user %s", name);
    if (rc != 0)
        goto out;
    if (cred_make(password, strlen(password), CRED_DEFAULT_ITERATIONS, &r->cred, &why) < 0) {
        snprintf(err, errlen, "password refused: %s", why);
        rc = -1;
        goto out;
    }
    rc = put(u, r, err, errlen);
out:
    free(r);
    return rc;
}

int userdb_del(struct userdb *u, const char *name_in, char *err, size_t errlen)
{
    char name[USERDB_NAME_MAX + 1];
    const char *why;
    if (userdb_name(name_in, name, sizeof name, &why) < 0) {
        snprintf(err, errlen, "no user %s", name_in);
        return 1;
    }
    int r = fdb_del(u->db, NULL, name, strlen(name));
    if (r == 1)
        snprintf(err, errlen, "no user %s", name);
    else if (r < 0)
        snprintf(err, errlen, "cannot delete user %s", name);
    return r;
}

int userdb_addr(struct userdb *u, const char *name, const char *addr, bool add, char *err, size_t errlen)
{
    size_t alen = strlen(addr);
    const char *at = strrchr(addr, '@');
    if (!at || at[1] == '\0' || alen > USERDB_ADDR_MAX || strchr(addr, ' ')) {
        snprintf(err, errlen, "\"%s\" is neither user@domain nor @domain", addr);
        return -1;
    }
    struct user_record *r = malloc(sizeof *r);
    if (!r)
        return -1;
    int rc = userdb_get(u, name, r, err, errlen);
    if (rc == 1)
        snprintf(err, errlen, "no user %s", name);
    if (rc != 0)
        goto out;
    size_t found = r->naddrs;
    for (size_t i = 0; i < r->naddrs; i++)
        if (str_ieq(r->addrs[i], addr))
            found = i;
    if (add && found == r->naddrs) {
        if (r->naddrs == USERDB_MAX_ADDRS) {
            snprintf(err, errlen, "user %s has the most addresses allowed (%d)", r->name, USERDB_MAX_ADDRS);
            rc = -1;
            goto out;
        }
        str_copy(r->addrs[r->naddrs], addr, USERDB_ADDR_MAX + 1);
        str_lower(r->addrs[r->naddrs++]);
    } else if (!add) {
        if (found == r->naddrs) {
            snprintf(err, errlen, "user %s does not have %s", r->name, addr);
            rc = 1;
            goto out;
        }
        memmove(r->addrs[found], r->addrs[found + 1], (r->naddrs - found - 1) * sizeof r->addrs[0]);
        r->naddrs--;
    }
    rc = put(u, r, err, errlen);
out:
    free(r);
    return rc;
}

int userdb_import(struct userdb *u, const struct user_record *r, char *err, size_t errlen)
{
    struct user_record *old = malloc(sizeof *old);
    if (!old)
        return -1;
    int g = userdb_get(u, r->name, old, err, errlen);
    OPENSSL_cleanse(old, sizeof *old);
    free(old);
    if (g <= 0)
        return g == 0 ? 1 : -1;
    return put(u, r, err, errlen) < 0 ? -1 : 0;
}

int userdb_publish(struct userdb *dir, const struct user_record *r, char *err, size_t errlen)
{
    return put(dir, r, err, errlen);
}

int userdb_unpublish(struct userdb *dir, const char *name, char *err, size_t errlen)
{
    int r = userdb_del(dir, name, err, errlen);
    return r == 1 ? 0 : r;
}

struct list_ctx {
    int (*fn)(const struct user_record *, void *);
    bool secrets;
    void *arg;
    struct user_record r;
};

static int visit(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct list_ctx *c = arg;
    char err[128];
    if (parse(v, vl, c->secrets, &c->r, err, sizeof err) < 0) {
        memset(&c->r, 0, sizeof c->r);
        snprintf(c->r.name, sizeof c->r.name, "%.*s", (int)(kl < USERDB_NAME_MAX ? kl : USERDB_NAME_MAX),
                 (const char *)k);
    }
    return c->fn(&c->r, c->arg);
}

int userdb_list(struct userdb *u, int (*fn)(const struct user_record *r, void *arg), void *arg)
{
    struct list_ctx *c = malloc(sizeof *c);
    if (!c)
        return -1;
    c->fn = fn;
    c->arg = arg;
    c->secrets = u->secrets;
    int r = fdb_foreach(u->db, visit, c);
    free(c);
    return r;
}

bool userdb_owns(const struct user_record *r, const char *address, const char *const *local_domains, size_t nlocal)
{
    const char *at = strrchr(address, '@');
    if (!at)
        return false;
    size_t llen = (size_t)(at - address);
    for (size_t i = 0; i < r->naddrs; i++) {
        const char *a = r->addrs[i];
        if (a[0] == '@' ? str_ieq(a + 1, at + 1) : str_ieq(a, address))
            return true;
    }
    /* By default: NAME@ every local domain (a name with an "@" owns that address). */
    if (strchr(r->name, '@'))
        return str_ieq(r->name, address);
    if (llen != strlen(r->name) || !str_nieq(address, r->name, llen))
        return false;
    for (size_t i = 0; i < nlocal; i++)
        if (str_ieq(local_domains[i], at + 1))
            return true;
    return false;
}

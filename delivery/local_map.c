/* local_map — see local_map.h. */
#include "delivery/local_map.h"
#include "lib/fdio.h"
#include "lib/buf.h"

#include <db.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAP_FILE_MAX (64 * 1024 * 1024)

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct local_map_entry *)a)->key, ((const struct local_map_entry *)b)->key);
}

static int text_lookup(const struct local_map *m, const char *key, char *out, size_t outsz)
{
    struct local_map_entry k = { .key = (char *)key };
    const struct local_map_entry *e = m->n ? bsearch(&k, m->entries, m->n, sizeof k, cmp_entry) : NULL;
    if (!e)
        return 1;
    if (strlen(e->value) >= outsz)
        return -1;
    strcpy(out, e->value);
    return 0;
}

static void text_free(struct local_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->entries[i].key);
        free(m->entries[i].value);
    }
    free(m->entries);
    m->entries = NULL;
    m->n = 0;
}

static const struct local_map_ops text_ops = { text_lookup, text_free };

struct builder {
    struct local_map *m;
    size_t cap;
};

static int add_entry(struct builder *b, const char *key, const char *value)
{
    if (b->m->n >= LOCAL_MAP_MAX_ENTRIES)
        return -1;
    if (b->m->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        struct local_map_entry *v = realloc(b->m->entries, cap * sizeof *v);
        if (!v)
            return -1;
        b->m->entries = v;
        b->cap = cap;
    }
    char *k = strdup(key), *val = strdup(value);
    if (!k || !val) {
        free(k);
        free(val);
        return -1;
    }
    b->m->entries[b->m->n++] = (struct local_map_entry){ k, val };
    return 0;
}

/* Split one logical entry (continuations joined) into key and value. */
static const char *split_entry(char *line, enum local_map_syntax syn, char **key, char **value)
{
    char *p = line;
    if (syn == LOCAL_MAP_ALIASES) {
        char *k = p;
        if (*p == '"') {
            char *w = ++p;
            k = w;
            for (; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                *w++ = *p;
            }
            if (*p != '"')
                return "unclosed quote in the alias name";
            *w = '\0';
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p != ':')
                return "expected \":\" after the alias name";
        } else {
            p = strchr(p, ':');
            if (!p)
                return "expected \"name: target, ...\"";
            *p = '\0';
            str_trim(k);
        }
        *p++ = '\0';
        *key = k;
    } else {
        *key = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (*p)
            *p++ = '\0';
    }
    *value = str_trim(p);
    if (!**key)
        return "empty key";
    if (!**value)
        return "no target";
    for (const char *c = *key; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return "control character in the key";
    str_lower(*key);
    if (syn == LOCAL_MAP_VIRTUAL) {
        const char *at = strrchr(*key, '@');
        if (!at || !at[1])
            return "key must be user@domain or @domain";
    }
    return NULL;
}

/* Record each virtual address's domain as a key of its own (empty value). */
static int add_domain_markers(struct builder *b)
{
    size_t n = b->m->n;
    for (size_t i = 0; i < n; i++) {
        const char *dom = strrchr(b->m->entries[i].key, '@') + 1;
        bool seen = false;
        for (size_t j = n; j < b->m->n && !seen; j++)
            seen = strcmp(b->m->entries[j].key, dom) == 0;
        if (!seen && add_entry(b, dom, "") < 0)
            return -1;
    }
    return 0;
}

static const char *finish_entry(struct builder *b, struct buf *ent, enum local_map_syntax syn)
{
    if (!ent->len)
        return NULL;
    char *key, *value;
    const char *why = split_entry(ent->data, syn, &key, &value);
    if (why)
        return why;
    if (add_entry(b, key, value) < 0)
        return "too many entries, or out of memory";
    buf_reset(ent);
    return NULL;
}

int local_map_parse(const char *data, size_t len, enum local_map_syntax syn, struct local_map *out,
                    char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->ops = &text_ops;
    struct builder b = { out, 0 };
    struct buf ent;
    buf_init(&ent, LOCAL_MAP_VALUE_MAX);
    int lineno = 0, ent_line = 0;
    const char *why = NULL;
    size_t pos = 0;
    while (pos < len && !why) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        const char *line = data + pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n && line[n - 1] == '\r')
            n--;
        if (memchr(line, '\0', n)) {
            why = "NUL octet";
            ent_line = lineno;
            break;
        }
        size_t i = 0;
        while (i < n && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == n || line[i] == '#')
            continue;
        if (i > 0) {        /* continuation of the entry above */
            if (!ent.len) {
                why = "continuation line without an entry above it";
                ent_line = lineno;
                break;
            }
            if (buf_append(&ent, " ", 1) < 0 || buf_append(&ent, line + i, n - i) < 0) {
                why = "entry too long";
                ent_line = lineno;
            }
            continue;
        }
        why = finish_entry(&b, &ent, syn);
        if (why)
            break;
        ent_line = lineno;
        if (buf_append(&ent, line, n) < 0)
            why = "entry too long";
    }
    if (!why)
        why = finish_entry(&b, &ent, syn);
    buf_free(&ent);
    if (!why && out->n) {       /* qsort of an empty (NULL) table is undefined */
        qsort(out->entries, out->n, sizeof *out->entries, cmp_entry);
        for (size_t i = 1; i < out->n && !why; i++)
            if (!strcmp(out->entries[i].key, out->entries[i - 1].key)) {
                snprintf(err, errlen, "key \"%.100s\" is given twice", out->entries[i].key);
                local_map_free(out);
                return -1;
            }
        if (syn == LOCAL_MAP_VIRTUAL && add_domain_markers(&b) < 0)
            why = "out of memory";
        else if (out->n)
            qsort(out->entries, out->n, sizeof *out->entries, cmp_entry);
    }
    if (why) {
        snprintf(err, errlen, "%d: %s", ent_line, why);
        local_map_free(out);
        return -1;
    }
    return 0;
}

int local_map_load_file(const char *path, enum local_map_syntax syn, struct local_map *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->ops = &text_ops;
    char *data;
    size_t got;
    if (fd_read_file(AT_FDCWD, path, MAP_FILE_MAX, &data, &got) < 0) {
        snprintf(err, errlen, "%s: %s", path, errno == EFBIG ? "too large" : strerror(errno));
        return -1;
    }
    char why[256];
    int r = local_map_parse(data, got, syn, out, why, sizeof why);
    free(data);
    if (r < 0)
        snprintf(err, errlen, "%s:%s", path, why);
    return r;
}

int local_map_lookup(const struct local_map *m, const char *key, char *out, size_t outsz)
{
    if (!m || !m->ops)
        return 1;
    return m->ops->lookup(m, key, out, outsz);
}

void local_map_free(struct local_map *m)
{
    if (m && m->ops)
        m->ops->free(m);
}

int local_target_next(const char **pp, char *out, size_t outsz, const char **why)
{
    const char *p = *pp;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) {
            *pp = p;
            return 0;
        }
        size_t o = 0;
        if (*p == '"') {
            p++;
            for (; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                if (o + 1 >= outsz) {
                    *why = "target too long";
                    return -1;
                }
                out[o++] = *p;
            }
            if (*p != '"') {
                *why = "unclosed quote in a target";
                return -1;
            }
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p && *p != ',') {
                *why = "text after a quoted target";
                return -1;
            }
        } else {
            const char *s = p;
            while (*p && *p != ',')
                p++;
            const char *e = p;
            while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if ((size_t)(e - s) + 1 > outsz) {
                *why = "target too long";
                return -1;
            }
            o = (size_t)(e - s);
            memcpy(out, s, o);
        }
        out[o] = '\0';
        *pp = p;
        if (o)
            return 1;
    }
}

/* ---- Berkeley DB backend ---- */

static const char *const syntax_names[] = { "aliases", "virtual" };

static int db_lookup(const struct local_map *m, const char *key, char *out, size_t outsz)
{
    DB *db = m->db;
    DBT k = { .data = (void *)key, .size = (u_int32_t)strlen(key) };
    DBT v = { .data = out, .ulen = (u_int32_t)(outsz ? outsz - 1 : 0), .flags = DB_DBT_USERMEM };
    int r = db->get(db, NULL, &k, &v, 0);
    if (r == DB_NOTFOUND)
        return 1;
    if (r != 0)
        return -1;      /* DB_BUFFER_SMALL included: the value does not fit */
    out[v.size] = '\0';
    return memchr(out, '\0', v.size) ? -1 : 0;
}

static void db_free(struct local_map *m)
{
    DB *db = m->db;
    if (db)
        db->close(db, 0);
    m->db = NULL;
    m->n = 0;
}

static const struct local_map_ops db_ops = { db_lookup, db_free };

int local_map_detect(const char *data, size_t len, enum local_map_syntax *syn)
{
    size_t pos = 0;
    while (pos < len) {
        const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + 1;
        if (n == 0 || line[0] == '#' || line[0] == ' ' || line[0] == '\t' || line[0] == '\r')
            continue;
        size_t word = 0;
        while (word < n && line[word] != ' ' && line[word] != '\t' && line[word] != ':')
            word++;
        if (word < n && line[word] == ':' && line[0] != '@') {
            *syn = LOCAL_MAP_ALIASES;
            return 0;
        }
        if (line[0] == '"') {
            *syn = LOCAL_MAP_ALIASES;
            return 0;
        }
        if (memchr(line, '@', word)) {
            *syn = LOCAL_MAP_VIRTUAL;
            return 0;
        }
        return -1;
    }
    return -1;
}

static int db_put_str(DB *db, const char *key, const char *val)
{
    DBT k = { .data = (void *)key, .size = (u_int32_t)strlen(key) };
    DBT v = { .data = (void *)val, .size = (u_int32_t)strlen(val) };
    return db->put(db, NULL, &k, &v, 0);
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int local_map_build(const char *path, enum local_map_syntax syn, size_t *nentries, char *err, size_t errlen)
{
    *nentries = 0;
    struct local_map m;
    if (local_map_load_file(path, syn, &m, err, errlen) < 0)
        return -1;
    char dbpath[PATH_MAX], tmp[PATH_MAX];
    if ((size_t)snprintf(dbpath, sizeof dbpath, "%s.db", path) >= sizeof dbpath ||
        (size_t)snprintf(tmp, sizeof tmp, "%s.db.tmp", path) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        local_map_free(&m);
        return -1;
    }
    unlink(tmp);
    DB *db = NULL;
    int r = db_create(&db, NULL, 0);
    if (r == 0)
        r = db->open(db, NULL, tmp, NULL, DB_HASH, DB_CREATE | DB_EXCL, 0644);
    for (size_t i = 0; r == 0 && i < m.n; i++)
        r = db_put_str(db, m.entries[i].key, m.entries[i].value);
    if (r == 0)
        r = db_put_str(db, LOCAL_MAP_SYNTAX_KEY, syntax_names[syn]);
    char count[32];
    snprintf(count, sizeof count, "%zu", m.n);
    if (r == 0)
        r = db_put_str(db, LOCAL_MAP_COUNT_KEY, count);
    int cr = db ? db->close(db, 0) : 0;
    if (r == 0)
        r = cr;
    if (r != 0) {
        snprintf(err, errlen, "%s: cannot write: %s", tmp, db_strerror(r));
        unlink(tmp);
        local_map_free(&m);
        return -1;
    }
    /* Durable before it becomes visible, and the rename itself durable. */
    char dir[PATH_MAX];
    str_copy(dir, dbpath, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    if (fsync_path(tmp, O_RDONLY) < 0 || rename(tmp, dbpath) < 0 ||
        fsync_path(slash ? dir : ".", O_RDONLY | O_DIRECTORY) < 0) {
        snprintf(err, errlen, "%s: cannot install: %s", dbpath, strerror(errno));
        unlink(tmp);
        local_map_free(&m);
        return -1;
    }
    *nentries = m.n;
    local_map_free(&m);
    return 0;
}

static int db_open(const char *dbpath, enum local_map_syntax syn, struct local_map *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    DB *db = NULL;
    int r = db_create(&db, NULL, 0);
    if (r == 0)
        r = db->open(db, NULL, dbpath, NULL, DB_HASH, DB_RDONLY, 0);
    if (r != 0) {
        snprintf(err, errlen, "%s: cannot open: %s", dbpath, db_strerror(r));
        if (db)
            db->close(db, 0);
        return -1;
    }
    out->ops = &db_ops;
    out->db = db;
    char kind[16];
    if (db_lookup(out, LOCAL_MAP_SYNTAX_KEY, kind, sizeof kind) != 0 || strcmp(kind, syntax_names[syn])) {
        snprintf(err, errlen, "%s: not a compiled %s map (rebuild it with ferryctl map build)", dbpath,
                 syntax_names[syn]);
        db_free(out);
        return -1;
    }
    char count[32];
    if (db_lookup(out, LOCAL_MAP_COUNT_KEY, count, sizeof count) == 0)
        out->n = (size_t)strtoull(count, NULL, 10);
    return 0;
}

int local_map_open(const char *path, enum local_map_syntax syn, struct local_map *out, bool *from_db,
                   bool *stale, char *err, size_t errlen)
{
    char dbpath[PATH_MAX];
    *from_db = *stale = false;
    if ((size_t)snprintf(dbpath, sizeof dbpath, "%s.db", path) >= sizeof dbpath) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    struct stat dsb, tsb;
    if (stat(dbpath, &dsb) < 0)
        return local_map_load_file(path, syn, out, err, errlen);
    *from_db = true;
    if (stat(path, &tsb) == 0 && (tsb.st_mtim.tv_sec > dsb.st_mtim.tv_sec ||
        (tsb.st_mtim.tv_sec == dsb.st_mtim.tv_sec && tsb.st_mtim.tv_nsec > dsb.st_mtim.tv_nsec)))
        *stale = true;
    return db_open(dbpath, syn, out, err, errlen);
}

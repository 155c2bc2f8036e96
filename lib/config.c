/* config — see config.h. */
#include "lib/config.h"
#include "lib/buf.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIELD(dst, s) ((void *)((char *)(dst) + (s)->offset))

static void set_err(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set_err(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
{
    int off = line > 0 ? snprintf(err, errlen, "%s:%d: ", file, line)
                       : snprintf(err, errlen, "%s: ", file);
    if (off < 0 || (size_t)off >= errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + off, errlen - (size_t)off, fmt, ap);
    va_end(ap);
}

void conf_list_free(struct conf_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

int conf_list_add(struct conf_list *l, const char *item)
{
    char **p = realloc(l->items, (l->n + 1) * sizeof *p);
    if (!p)
        return -1;
    l->items = p;
    if (!(l->items[l->n] = strdup(item)))
        return -1;
    l->n++;
    return 0;
}

/* Number with a one-letter unit suffix; units[] maps letters to multipliers. */
static int parse_scaled(const char *s, const char *letters, const unsigned long long *mult,
                        unsigned long long *out)
{
    char num[32];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof num)
        return -1;
    memcpy(num, s, n + 1);
    unsigned long long m = 1;
    const char *u = strchr(letters, num[n - 1]);
    if (u && num[n - 1] != '\0') {
        m = mult[u - letters];
        num[--n] = '\0';
    }
    unsigned long long v;
    if (str_to_u64(num, ULLONG_MAX, &v) < 0 || (m && v > ULLONG_MAX / m))
        return -1;
    *out = v * m;
    return 0;
}

int conf_parse_size(const char *s, unsigned long long *out)
{
    static const unsigned long long mult[] = { 1024ULL, 1024ULL, 1048576ULL, 1073741824ULL };
    return parse_scaled(s, "kKMG", mult, out);
}

int conf_parse_duration(const char *s, unsigned long long *out)
{
    static const unsigned long long mult[] = { 1, 60, 3600, 86400, 604800 };
    return parse_scaled(s, "smhdw", mult, out);
}

int conf_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (str_ieq(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (str_ieq(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int make_absolute(const char *v, char *out, size_t outsz)
{
    if (v[0] == '/' || v[0] == '\0')
        return str_copy(out, v, outsz) < outsz ? 0 : -1;
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    const char *rel = v;
    while (rel[0] == '.' && rel[1] == '/')
        rel += 2;
    int n = snprintf(out, outsz, "%s/%s", cwd, rel);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* Parse one value (or list item) into its field. Returns NULL or the reason. */
static const char *apply_value(const struct conf_setting *s, char *value, void *dst)
{
    static char reason[160];
    unsigned long long v;
    if (s->check && s->type != CONF_LIST && *value) {   /* "" means "the default" */
        const char *why = s->check(value);
        if (why)
            return why;
    }
    switch (s->type) {
    case CONF_STRING:
        if (str_copy(FIELD(dst, s), value, s->size) >= s->size)
            return "value too long";
        return NULL;
    case CONF_PATH:
        return make_absolute(value, FIELD(dst, s), s->size) < 0 ? "path too long" : NULL;
    case CONF_UINT:
    case CONF_SIZE:
    case CONF_DURATION: {
        int r = s->type == CONF_UINT ? str_to_u64(value, ULLONG_MAX, &v)
              : s->type == CONF_SIZE ? conf_parse_size(value, &v)
                                     : conf_parse_duration(value, &v);
        if (r < 0)
            return s->type == CONF_UINT ? "not a number"
                 : s->type == CONF_SIZE ? "not a size (a number, optionally with k, M or G)"
                                        : "not a duration (a number, optionally with s, m, h, d or w)";
        if (v < s->min || (s->max && v > s->max)) {
            snprintf(reason, sizeof reason, "out of range (%llu to %llu)", s->min, s->max);
            return reason;
        }
        *(unsigned long long *)FIELD(dst, s) = v;
        return NULL;
    }
    case CONF_BOOL:
        return conf_parse_bool(value, FIELD(dst, s)) < 0 ? "expected yes or no" : NULL;
    case CONF_ENUM:
        for (int i = 0; s->choices[i]; i++) {
            if (str_ieq(value, s->choices[i])) {
                *(int *)FIELD(dst, s) = i;
                return NULL;
            }
        }
        {
            struct buf b;
            buf_init(&b, sizeof reason);
            buf_puts(&b, "expected one of");
            for (int i = 0; s->choices[i]; i++)
                buf_printf(&b, "%s %s", i ? "," : "", s->choices[i]);
            str_copy(reason, b.data ? b.data : "bad value", sizeof reason);
            buf_free(&b);
        }
        return reason;
    case CONF_LIST:
        return NULL;
    }
    return "bad setting type";
}

/* A list value: split on commas when allowed, check and append each item. */
static const char *apply_list(const struct conf_setting *s, char *value, void *dst)
{
    struct conf_list *l = FIELD(dst, s);
    char *save = NULL;
    char *item = s->comma_split ? strtok_r(value, ",", &save) : value;
    int count = 0;
    for (; item; item = s->comma_split ? strtok_r(NULL, ",", &save) : NULL) {
        str_trim(item);
        if (!*item)
            continue;
        if (s->check) {
            const char *why = s->check(item);
            if (why)
                return why;
        }
        if (l->n >= 1000)
            return "too many items";
        if (conf_list_add(l, item) < 0)
            return "out of memory";
        count++;
    }
    return count ? NULL : "empty value";
}

int conf_defaults(const struct conf_setting *schema, size_t n, void *dst, char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const struct conf_setting *s = &schema[i];
        char value[CONF_LINE_MAX];
        str_copy(value, s->def ? s->def : "", sizeof value);
        if (s->type == CONF_LIST) {
            struct conf_list *l = FIELD(dst, s);
            l->items = NULL;
            l->n = 0;
            if (!*value)
                continue;
            const char *why = apply_list(s, value, dst);
            if (why) {
                set_err(err, errlen, "built-in default", 0, "%s: %s", s->key, why);
                return -1;
            }
            continue;
        }
        if (!*value && (s->type == CONF_STRING || s->type == CONF_PATH)) {
            ((char *)FIELD(dst, s))[0] = '\0';
            continue;
        }
        const char *why = apply_value(s, value, dst);
        if (why) {
            set_err(err, errlen, "built-in default", 0, "%s: %s", s->key, why);
            return -1;
        }
    }
    return 0;
}

static const struct conf_setting *find_setting(const struct conf_setting *schema, size_t n,
                                               const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(schema[i].key, key) == 0)
            return &schema[i];
    return NULL;
}

int conf_load(const char *path, const struct conf_setting *schema, size_t n, void *dst,
              char *err, size_t errlen)
{
    if (conf_defaults(schema, n, dst, err, errlen) < 0)
        return -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, errlen, path, 0, "cannot open: %s", strerror(errno));
        return -1;
    }
    /* Our own stdio buffer, wiped after: the file's text must not linger in freed
       memory that every child inherits (each keeps only its part: lib/privsep.h). */
    static char iobuf[8192];
    setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
    bool *seen = calloc(n, sizeof *seen);
    if (!seen) {
        fclose(f);
        explicit_bzero(iobuf, sizeof iobuf);
        set_err(err, errlen, path, 0, "out of memory");
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int lineno = 0, rc = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        lineno++;
        size_t len = (size_t)got;
        if (len > CONF_LINE_MAX + 1 || (len == CONF_LINE_MAX + 1 && line[len - 1] != '\n')) {
            set_err(err, errlen, path, lineno, "line longer than %d octets", CONF_LINE_MAX);
            rc = -1;
            break;
        }
        if (lineno > CONF_FILE_MAX) {
            set_err(err, errlen, path, lineno, "more than %d lines", CONF_FILE_MAX);
            rc = -1;
            break;
        }
        if (memchr(line, '\0', len) != NULL) {
            set_err(err, errlen, path, lineno, "NUL character in line");
            rc = -1;
            break;
        }
        str_trim(line);
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char *eq = strchr(line, '=');
        if (!eq) {
            set_err(err, errlen, path, lineno, "expected \"key = value\"");
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = str_trim(line);
        char *value = str_trim(eq + 1);
        const struct conf_setting *s = find_setting(schema, n, key);
        if (!s) {
            set_err(err, errlen, path, lineno, "unknown setting \"%s\"", key);
            rc = -1;
            break;
        }
        size_t idx = (size_t)(s - schema);
        if (s->type == CONF_LIST) {
            if (!seen[idx])     /* the file's values replace the default list */
                conf_list_free(FIELD(dst, s));
        } else if (seen[idx]) {
            set_err(err, errlen, path, lineno, "%s given twice (it takes one value)", key);
            rc = -1;
            break;
        }
        seen[idx] = true;
        if (!*value && s->type != CONF_STRING && s->type != CONF_PATH) {
            set_err(err, errlen, path, lineno, "%s: empty value", key);
            rc = -1;
            break;
        }
        const char *why = s->type == CONF_LIST ? apply_list(s, value, dst)
                                               : apply_value(s, value, dst);
        if (why) {
            set_err(err, errlen, path, lineno, "%s: \"%s\": %s", key, value, why);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        set_err(err, errlen, path, 0, "read error: %s", strerror(errno));
        rc = -1;
    }
    free(seen);
    if (line)
        explicit_bzero(line, cap);
    free(line);
    fclose(f);
    explicit_bzero(iobuf, sizeof iobuf);
    if (rc < 0)
        conf_release(schema, n, dst);
    return rc;
}

void conf_release(const struct conf_setting *schema, size_t n, void *dst)
{
    for (size_t i = 0; i < n; i++)
        if (schema[i].type == CONF_LIST)
            conf_list_free(FIELD(dst, &schema[i]));
}

void conf_print(FILE *out, const struct conf_setting *schema, size_t n, const void *src)
{
    for (size_t i = 0; i < n; i++) {
        const struct conf_setting *s = &schema[i];
        const void *p = (const char *)src + s->offset;
        switch (s->type) {
        case CONF_STRING:
        case CONF_PATH:
            fprintf(out, "%s = %s\n", s->key, (const char *)p);
            break;
        case CONF_UINT:
        case CONF_SIZE:
            fprintf(out, "%s = %llu\n", s->key, *(const unsigned long long *)p);
            break;
        case CONF_DURATION:
            fprintf(out, "%s = %llus\n", s->key, *(const unsigned long long *)p);
            break;
        case CONF_BOOL:
            fprintf(out, "%s = %s\n", s->key, *(const bool *)p ? "yes" : "no");
            break;
        case CONF_ENUM:
            fprintf(out, "%s = %s\n", s->key, s->choices[*(const int *)p]);
            break;
        case CONF_LIST: {
            const struct conf_list *l = p;
            if (l->n == 0)
                fprintf(out, "# %s: (none)\n", s->key);
            for (size_t k = 0; k < l->n; k++)
                fprintf(out, "%s = %s\n", s->key, l->items[k]);
            break;
        }
        }
    }
}

/*
 * config — the `key = value` file format, and typed settings read through a schema.
 *
 * Syntax: one setting per line, `key = value`; blank lines and lines whose first
 * non-blank character is `#` are ignored; whitespace around key and value is
 * dropped; a key given several times builds a list where the schema allows it
 * (a value may also list items separated by commas), otherwise it is an error.
 * Lines are limited to CONF_LINE_MAX octets and files to CONF_FILE_MAX lines.
 *
 * A schema is a table of struct conf_setting: key, type, where in the caller's
 * struct the parsed value goes, its default (as text, parsed the same way as the
 * file), and bounds. conf_load fills the struct with every default, then applies
 * the file; the first error is returned as "FILE:LINE: message". conf_print writes
 * the effective settings back in file syntax (ferryd -n).
 *
 * This module knows nothing of mail; the Ferry schema lives in settings.c.
 */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONF_LINE_MAX  4096
#define CONF_FILE_MAX  10000
#define CONF_ERR_MAX   512

enum conf_type {
    CONF_STRING,     /* char[size] */
    CONF_PATH,       /* char[size]; made absolute against the working directory */
    CONF_UINT,       /* unsigned long long, within [min, max] */
    CONF_SIZE,       /* unsigned long long bytes; suffix k, M, G (powers of 1024) */
    CONF_DURATION,   /* unsigned long long seconds; suffix s, m, h, d, w */
    CONF_BOOL,       /* bool: yes/no, true/false, on/off, 1/0 */
    CONF_ENUM,       /* int: index into choices */
    CONF_LIST        /* struct conf_list of items, each checked by the setting's check */
};

/* A list of strings (repeated keys and comma-separated items). */
struct conf_list {
    char **items;
    size_t n;
};

/* Validates (and may rewrite in place, up to CONF_LINE_MAX) one value or list item.
   Returns NULL when fine, else a reason ("not an IP address"). */
typedef const char *(*conf_check_fn)(char *value);

struct conf_setting {
    const char *key;
    enum conf_type type;
    size_t offset;                  /* offsetof(your struct, field) */
    size_t size;                    /* CONF_STRING/CONF_PATH: buffer size */
    const char *def;                /* default, as it would be written in the file */
    unsigned long long min, max;    /* CONF_UINT/SIZE/DURATION bounds (max 0: none) */
    const char *const *choices;     /* CONF_ENUM: NULL-terminated */
    conf_check_fn check;            /* optional extra validation */
    bool comma_split;               /* CONF_LIST: also split values on commas */
};

/* Fill *dst from defaults, then from path. 0 ok, -1 with err = "FILE:LINE: message". */
int  conf_load(const char *path, const struct conf_setting *schema, size_t n, void *dst,
               char *err, size_t errlen);
/* Fill only the defaults (for programs that run without a file). */
int  conf_defaults(const struct conf_setting *schema, size_t n, void *dst, char *err, size_t errlen);
void conf_release(const struct conf_setting *schema, size_t n, void *dst);
void conf_print(FILE *out, const struct conf_setting *schema, size_t n, const void *src);

void conf_list_free(struct conf_list *l);
int  conf_list_add(struct conf_list *l, const char *item);

/* Value parsers, exposed for unit tests and for other modules' own syntax. */
int  conf_parse_size(const char *s, unsigned long long *out);
int  conf_parse_duration(const char *s, unsigned long long *out);
int  conf_parse_bool(const char *s, bool *out);

#endif

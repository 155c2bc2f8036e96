/*
 * local_map — the lookup tables of local delivery: aliases and virtual domains.
 *
 * A map answers "what does this key expand to?" with the raw target list (a
 * comma-separated string; see local_target_next). Two backends behind one ops
 * table: text (the whole file parsed into memory by the pure parsers below) and
 * Berkeley DB (a hash file PATH.db compiled from the text by local_map_build,
 * i.e. `ferryctl map build PATH`). local_map_open prefers PATH.db when it exists
 * (and reports through *stale when the text is newer), else parses PATH.
 *
 * A compiled map holds exactly the entries the parser produces (virtual domain
 * markers included) plus LOCAL_MAP_SYNTAX_KEY naming its syntax (and the
 * entry count under LOCAL_MAP_COUNT_KEY), so a
 * compiled virtual map is never read as aliases. Building writes PATH.db.tmp,
 * fsyncs it and renames it over PATH.db: readers see the old or the new map,
 * never half of one.
 *
 * Aliases (alias_file, /etc/aliases syntax):
 *   name: target, target        name is a local part, optionally "quoted"; folded to lower case
 *     target                    a line starting with blank space continues the entry
 *   # comment                   whole-line comments; blank lines are ignored
 * Virtual (virtual_map):
 *   user@virt.domain target, target
 *   @virt.domain target         the domain's catch-all
 * Every domain named in the virtual map is a virtual domain: its addresses are
 * only what the map lists (the parser records the domain itself as a key with an
 * empty value so lookups can tell).
 *
 * Limits: a logical entry at most LOCAL_MAP_VALUE_MAX octets, at most
 * LOCAL_MAP_MAX_ENTRIES entries; a key given twice is an error. Errors read
 * "LINE: message" (the caller adds the file name).
 */
#ifndef FERRY_LOCAL_MAP_H
#define FERRY_LOCAL_MAP_H

#include <stdbool.h>
#include <stddef.h>

#define LOCAL_MAP_VALUE_MAX   8192
#define LOCAL_MAP_MAX_ENTRIES 200000
#define LOCAL_TARGET_MAX      1024

enum local_map_syntax { LOCAL_MAP_ALIASES, LOCAL_MAP_VIRTUAL };

struct local_map_entry {
    char *key;
    char *value;
};

struct local_map;
struct local_map_ops {
    /* 0 found (value copied into out), 1 not found, -1 error (value too long...). */
    int  (*lookup)(const struct local_map *m, const char *key, char *out, size_t outsz);
    void (*free)(struct local_map *m);
};

struct local_map {
    const struct local_map_ops *ops;
    struct local_map_entry *entries;   /* text backend: sorted by key */
    size_t n;                          /* entries (both backends) */
    void *db;                          /* Berkeley DB backend: its DB handle */
};

/* '#' starts a comment line, so no text entry can have this key. */
#define LOCAL_MAP_SYNTAX_KEY "#syntax"
#define LOCAL_MAP_COUNT_KEY  "#entries"      /* for the log */


/* Parse data[0..len) (pure). On success *out owns a sorted table. */
int  local_map_parse(const char *data, size_t len, enum local_map_syntax syn, struct local_map *out,
                     char *err, size_t errlen);
/* Read and parse a file. -1 with "PATH:LINE: message" or "PATH: strerror". */
int  local_map_load_file(const char *path, enum local_map_syntax syn, struct local_map *out,
                         char *err, size_t errlen);
/* The syntax a text map is written in, from its first entry line: "name: ..."
   is aliases, "addr@dom target" or "@dom target" virtual. -1 when it has no
   entry or neither shape fits. */
int  local_map_detect(const char *data, size_t len, enum local_map_syntax *syn);
/* Compile path into path.db (see above). *nentries: entries written. */
int  local_map_build(const char *path, enum local_map_syntax syn, size_t *nentries, char *err,
                     size_t errlen);
/* path.db when it exists (*from_db true; *stale true when path is newer than it),
   else the text file. */
int  local_map_open(const char *path, enum local_map_syntax syn, struct local_map *out, bool *from_db,
                    bool *stale, char *err, size_t errlen);
int  local_map_lookup(const struct local_map *m, const char *key, char *out, size_t outsz);
void local_map_free(struct local_map *m);

/*
 * The next target of a target list at *p: commas separate, blank space around a
 * target is dropped, a target may be "quoted" (to hold commas or spaces, e.g. a
 * pipe command; backslash escapes the next character inside quotes).
 * 1: a target in out, *p advanced; 0: no more; -1: *why set (too long, unclosed quote).
 */
int  local_target_next(const char **p, char *out, size_t outsz, const char **why);

#endif

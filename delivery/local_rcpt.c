/* local_rcpt — see local_rcpt.h. */
#include "delivery/local_rcpt.h"
#include "lib/fdio.h"
#include "auth/userdb.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOCAL_INCLUDE_MAX (1024 * 1024)

static void map_file_free(struct local_map_file *f)
{
    if (f->loaded)
        local_map_free(&f->map);
    memset(f, 0, sizeof *f);
}

void local_maps_close(struct local_maps *maps)
{
    map_file_free(&maps->aliases);
    map_file_free(&maps->virtual);
    if (maps->users_owned) {
        userdb_close(maps->users);
        fdb_env_close(maps->users_env);
        maps->users = NULL;
        maps->users_env = NULL;
        maps->users_owned = false;
    }
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* (Re)open path when it, or its .db, is new or changed since the last time. */
static void refresh(struct local_map_file *f, const char *path, enum local_map_syntax syn)
{
    if (!*path)
        return;
    char dbpath[PATH_MAX + 4];
    snprintf(dbpath, sizeof dbpath, "%s.db", path);
    struct stat sb;
    bool have_db = stat(dbpath, &sb) == 0;
    if (!have_db && stat(path, &sb) < 0) {
        map_file_free(f);
        snprintf(f->error, sizeof f->error, "%s: %s", path, strerror(errno));
        return;
    }
    if (f->loaded && f->from_db == have_db && same_file(&sb, &f->sb))
        return;
    map_file_free(f);
    char err[512];
    bool from_db, stale;
    if (local_map_open(path, syn, &f->map, &from_db, &stale, err, sizeof err) < 0) {
        str_copy(f->error, err, sizeof f->error);
        log_error("local recipients are deferred: %s", err);
        return;
    }
    f->loaded = true;
    f->from_db = from_db;
    f->sb = sb;
    if (stale)
        log_warn("%s is older than %s: run \"ferryctl map build %s\"", dbpath, path, path);
    log_info("loaded %s (%zu entries)", from_db ? dbpath : path, f->map.n);
}

int local_maps_refresh(const struct ferry_config *cfg, struct local_maps *maps, const char **why)
{
    refresh(&maps->aliases, cfg->alias_file, LOCAL_MAP_ALIASES);
    refresh(&maps->virtual, cfg->virtual_map, LOCAL_MAP_VIRTUAL);
    const struct local_map_file *bad = maps->aliases.error[0] ? &maps->aliases
                                     : maps->virtual.error[0] ? &maps->virtual : NULL;
    if (bad) {
        *why = bad->error;
        return -1;
    }
    return 0;
}

static bool users_db_lookup(struct userdb *u, const char *name)
{
    struct user_record *r = malloc(sizeof *r);
    char err[256], lname[USERDB_NAME_MAX + 1];
    const char *why;
    bool found = r && userdb_name(name, lname, sizeof lname, &why) == 0 && userdb_get(u, lname, r, err, sizeof err) == 0;
    free(r);
    return found;
}

static bool users_db_has(const struct ferry_config *cfg, struct local_maps *maps, const char *name)
{
    if (maps->users_transient && !maps->users) {
        char err[256];
        struct fdb_env *env;
        if (fdb_env_open(cfg->data_dir, &env, err, sizeof err) < 0) {
            log_warn("users.db is not consulted for local recipients: %s", err);
            return false;
        }
        struct userdb *u = userdb_open(env, err, sizeof err);
        bool found = u && users_db_lookup(u, name);
        if (u)
            userdb_close(u);
        fdb_env_close(env);
        return found;
    }
    if (!maps->users && !maps->users_tried) {
        maps->users_tried = true;
        char err[256];
        if (fdb_env_open(cfg->data_dir, &maps->users_env, err, sizeof err) == 0) {
            maps->users = userdb_open(maps->users_env, err, sizeof err);
            if (maps->users)
                maps->users_owned = true;
            else {
                fdb_env_close(maps->users_env);
                maps->users_env = NULL;
            }
        }
        if (!maps->users)
            log_warn("users.db is not consulted for local recipients: %s", err);
    }
    if (!maps->users)
        return false;
    return users_db_lookup(maps->users, name);
}

bool local_user_exists(const struct ferry_config *cfg, struct local_maps *maps, const char *name)
{
    if (cfg->local_recipients == RCPT_ANY || !strcmp(name, "postmaster") || getpwnam(name))
        return true;
    char path[PATH_MAX + 300];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", cfg->mail_dir, name);
    if (lstat(path, &sb) == 0)
        return true;
    if (cfg->mbox_dir[0]) {
        snprintf(path, sizeof path, "%s/%s", cfg->mbox_dir, name);
        if (lstat(path, &sb) == 0)
            return true;
    }
    return users_db_has(cfg, maps, name);
}

static bool cb_is_local_domain(void *arg, const char *domain)
{
    const struct local_rcpt_arg *a = arg;
    return settings_is_local_domain(a->cfg, domain);
}

static bool cb_user_exists(void *arg, const char *name)
{
    struct local_rcpt_arg *a = arg;
    return local_user_exists(a->cfg, a->maps, name);
}

static char *cb_read_include(void *arg, const char *path, const char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        *why = strerror(errno);
        return NULL;
    }
    char *text = malloc(LOCAL_INCLUDE_MAX + 1);
    size_t got = text ? fd_read_upto(fd, text, LOCAL_INCLUDE_MAX) : 0;
    close(fd);
    if (!text) {
        *why = "out of memory";
        return NULL;
    }
    if (memchr(text, '\0', got)) {
        free(text);
        *why = "contains a NUL octet";
        return NULL;
    }
    text[got] = '\0';
    return text;
}

static const char *cb_report_maildir(void *arg, const char *addr)
{
    struct local_rcpt_arg *ra = arg;
    if (ra->reports_maildir[0] && str_ieq(addr, ra->cfg->dmarc_reports_address))
        return ra->reports_maildir;
    if (ra->tlsrpt_maildir[0] && settings_is_tlsrpt_address(ra->cfg, addr))
        return ra->tlsrpt_maildir;
    return NULL;
}

void local_resolver_init(struct local_resolver *r, struct local_rcpt_arg *ra, const struct ferry_config *cfg,
                         struct local_maps *maps)
{
    ra->cfg = cfg;
    ra->maps = maps;
    *r = (struct local_resolver){
        .aliases = maps->aliases.loaded ? &maps->aliases.map : NULL,
        .virtual = maps->virtual.loaded ? &maps->virtual.map : NULL,
        .delimiters = cfg->recipient_delimiter,
        .is_local_domain = cb_is_local_domain,
        .user_exists = cb_user_exists,
        .read_include = cb_read_include,
        .report_maildir = cb_report_maildir,
        .arg = ra,
    };
    ra->reports_maildir[0] = ra->tlsrpt_maildir[0] = '\0';
    if (cfg->dmarc_reports_address[0] &&
        (size_t)snprintf(ra->reports_maildir, sizeof ra->reports_maildir, "%s/%s/", cfg->mail_dir,
                         LOCAL_REPORTS_MAILDIR) >= sizeof ra->reports_maildir)
        ra->reports_maildir[0] = '\0';
    if ((size_t)snprintf(ra->tlsrpt_maildir, sizeof ra->tlsrpt_maildir, "%s/%s/", cfg->mail_dir,
                         LOCAL_TLSRPT_MAILDIR) >= sizeof ra->tlsrpt_maildir)
        ra->tlsrpt_maildir[0] = '\0';
}

enum local_rcpt_verdict local_rcpt_check(const struct ferry_config *cfg, struct local_maps *maps,
                                         const char *addr, char *why, size_t whysz)
{
    return local_rcpt_route(cfg, maps, addr, why, whysz, NULL);
}

enum local_rcpt_verdict local_rcpt_route(const struct ferry_config *cfg, struct local_maps *maps,
                                         const char *addr, char *why, size_t whysz, bool *forwards)
{
    if (forwards)
        *forwards = false;
    const char *bad;
    if (local_maps_refresh(cfg, maps, &bad) < 0) {
        snprintf(why, whysz, "cannot read the map %s", bad);
        return LOCAL_RCPT_TEMPFAIL;
    }
    struct local_rcpt_arg ra;
    struct local_resolver r;
    local_resolver_init(&r, &ra, cfg, maps);
    r.check_only = true;
    struct local_targets ts = { 0 };
    struct delivery_status st;
    int e = local_resolve(&r, addr, &ts, &st);
    for (size_t i = 0; forwards && e == 0 && i < ts.n; i++)
        *forwards |= ts.v[i].kind == LT_REMOTE;
    if (forwards && ts.unread_include)
        *forwards = true;       /* an include file may list remote addresses */
    local_targets_free(&ts);
    if (e == 0)
        return LOCAL_RCPT_OK;
    /* A permanent verdict (no such user, an alias loop) is the sender's to hear
       now; a temporary one (a broken map entry) is ours to fix. */
    str_copy(why, st.text, whysz);
    return st.result == DELIVERY_FAIL ? LOCAL_RCPT_UNKNOWN : LOCAL_RCPT_TEMPFAIL;
}

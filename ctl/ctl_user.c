/*
 * ctl_user — `ferryctl user add NAME | del NAME | passwd NAME | list` and
 * `ferryctl user addr NAME add|del ADDRESS` | sync: the SMTP AUTH users
 * (auth/userdb.h). Passwords are read from standard input (the first line, without
 * its newline) and never stored, only their SCRAM keys.
 *
 * Each change is made in users.db in auth_dir first, as root (it is root's, 0700:
 * the smtp process must not read it), then the user's public half is copied into
 * the directory in data_dir, as the daemon's user (ctl_open_env). `sync` rebuilds
 * the whole directory from users.db, after importing the users an older Ferry kept
 * in DATA_DIR/users.db (read by a child as the daemon's user, never by root). Works whether the daemon runs or not.
 */
#include "auth/userdb.h"
#include "ctl/ctl.h"
#include "lib/buf.h"
#include "lib/privsep.h"

#include "lib/ipc.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: ferryctl user add NAME | del NAME | passwd NAME | list | sync | addr NAME add|del ADDRESS\n"
                    "       (add and passwd read the password from standard input)\n");
    return 2;
}

static int read_password(char *out, size_t outsz)
{
    if (!fgets(out, (int)outsz, stdin)) {
        fprintf(stderr, "ferryctl: no password on standard input\n");
        return -1;
    }
    out[strcspn(out, "\r\n")] = '\0';
    if (!out[0]) {
        fprintf(stderr, "ferryctl: the password is empty\n");
        return -1;
    }
    return 0;
}

static int print_user(const struct user_record *r, void *arg)
{
    printf("%s", r->name);
    for (size_t i = 0; i < r->naddrs; i++)
        printf("%s%s", i ? "," : " ", r->addrs[i]);
    printf("\n");
    return 0;
}

/* users.db, in auth_dir: made root's (0700) when we are root. umask 077: no one
   else may read what goes in there. */
static int open_secrets(const struct ferry_config *cfg, struct fdb_env **env, struct userdb **u)
{
    char err[512], buf[PATH_MAX];
    *u = NULL;
    umask(077);
    if (privsep_prepare_auth_dir(cfg, err, sizeof err) < 0 ||
        fdb_env_open(privsep_auth_dir(cfg, buf, sizeof buf), env, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return -1;
    }
    if (!(*u = userdb_open_secrets(*env, err, sizeof err))) {
        fprintf(stderr, "ferryctl: %s\n", err);
        fdb_env_close(*env);
        return -1;
    }
    return 0;
}

/* The names users.db holds, for `sync`. */
struct names {
    char (*v)[USERDB_NAME_MAX + 1];
    size_t n, cap;
};

static int collect(const struct user_record *r, void *arg)
{
    struct names *ns = arg;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 64;
        void *v = realloc(ns->v, cap * sizeof ns->v[0]);
        if (!v)
            return -1;
        ns->v = v;
        ns->cap = cap;
    }
    str_copy(ns->v[ns->n++], r->name, sizeof ns->v[0]);
    return 0;
}

static bool listed(const struct names *ns, const char *name)
{
    for (size_t i = 0; i < ns->n; i++)
        if (!strcmp(ns->v[i], name))
            return true;
    return false;
}

/* users.db's names, and the directory entries it no longer has. */
struct sync_names {
    struct names have, stale;
};

static int stale_entry(const struct user_record *r, void *arg)
{
    struct sync_names *ns = arg;
    return listed(&ns->have, r->name) ? 0 : collect(r, &ns->stale);
}

/* After a change in users.db (as root), bring the directory in data_dir (as the
   daemon's user) up to date: each of names gets users.db's public half, or
   leaves the directory when users.db no longer has it. */
static int publish(const struct ferry_config *cfg, struct userdb *secrets, struct fdb_env *senv,
                   const struct names *names)
{
    char err[512] = "see above";
    int rc = 0;
    size_t n = names->n;
    struct user_record *recs = calloc(n ? n : 1, sizeof *recs);
    int *found = calloc(n ? n : 1, sizeof *found);
    if (!recs || !found) {
        fprintf(stderr, "ferryctl: out of memory\n");
        free(recs);
        free(found);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        found[i] = userdb_get(secrets, names->v[i], &recs[i], err, sizeof err);
        if (found[i] < 0)
            rc = -1;
        OPENSSL_cleanse(&recs[i].cred, sizeof recs[i].cred);
    }
    userdb_close(secrets);
    fdb_env_close(senv);
    struct fdb_env *env;
    struct userdb *dir = NULL;
    if (rc < 0 || ctl_open_env(cfg, &env) < 0)
        rc = -1;
    else if (!(dir = userdb_open(env, err, sizeof err)))
        fdb_env_close(env);
    for (size_t i = 0; dir && i < n; i++) {
        int r = found[i] == 0 ? userdb_publish(dir, &recs[i], err, sizeof err)
                              : userdb_unpublish(dir, names->v[i], err, sizeof err);
        if (r < 0)
            rc = -1;
    }
    if (dir) {
        userdb_close(dir);
        fdb_env_close(env);
    } else {
        rc = -1;
    }
    if (rc < 0)
        fprintf(stderr, "ferryctl: users.db is changed, but the directory in %s is not (%s): "
                        "run \"ferryctl user sync\"\n", cfg->data_dir, err);
    free(recs);
    free(found);
    return rc;
}

/* In a child, as the daemon's user: each record of the users.db an older Ferry
   kept in data_dir, sent whole (they are its secrets: only to our parent). */
static int send_record(const struct user_record *r, void *arg)
{
    char *rec = malloc(16384 + USERDB_MAX_ADDRS * (USERDB_ADDR_MAX + 8));
    int n = rec ? userdb_serialize(r, rec, 16384 + USERDB_MAX_ADDRS * (USERDB_ADDR_MAX + 8)) : -1;
    int rc = n < 0 ? 0 : ipc_send_blocking(*(int *)arg, 1, rec, (size_t)n);
    if (rec)
        OPENSSL_cleanse(rec, (size_t)(n > 0 ? n : 0));
    free(rec);
    return rc < 0 ? -1 : 0;
}

static void old_users_child(const struct ferry_config *cfg, int fd)
{
    char path[PATH_MAX + 16], err[512];
    snprintf(path, sizeof path, "%s/" USERDB_SECRETS_FILE, cfg->data_dir);
    struct stat st;
    struct fdb_env *env;
    struct userdb *old;
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
        _exit(0);               /* nothing to import (and nothing to create) */
    if (ctl_become_daemon_user(cfg) < 0 || fdb_env_open(cfg->data_dir, &env, err, sizeof err) < 0 ||
        !(old = userdb_open_secrets(env, err, sizeof err)))
        _exit(1);
    int rc = userdb_list(old, send_record, &fd);
    userdb_close(old);
    fdb_env_close(env);
    _exit(rc < 0 ? 1 : 0);
}

/* Users an older Ferry kept in DATA_DIR/users.db (where the smtp process could
   read their keys) go into users.db in auth_dir, unless a user of the same name is
   there already. The old file is left for the operator to delete. */
static int import_old_users(const struct ferry_config *cfg, struct userdb *secrets)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        old_users_child(cfg, sv[1]);
    }
    close(sv[1]);
    int imported = 0, rc = 0;
    uint32_t type;
    void *data;
    size_t len;
    struct user_record *r = malloc(sizeof *r);
    char err[512];
    while (pid > 0 && r && ipc_recv_blocking(sv[0], &type, &data, &len) == 0) {
        if (userdb_parse(data, len, r, err, sizeof err) == 0) {
            int i = userdb_import(secrets, r, err, sizeof err);
            if (i < 0)
                rc = -1;
            imported += i == 0;
        }
        OPENSSL_cleanse(data, len);
        free(data);
    }
    if (r) {
        OPENSSL_cleanse(r, sizeof *r);
        free(r);
    }
    close(sv[0]);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        rc = -1;
    if (imported)
        printf("%d users imported from %s/" USERDB_SECRETS_FILE " (delete that file now)\n", imported,
               cfg->data_dir);
    if (rc < 0)
        fprintf(stderr, "ferryctl: cannot import the users of %s/" USERDB_SECRETS_FILE "\n", cfg->data_dir);
    return rc;
}

/* `sync`: the directory made anew from users.db (after importing an older
   Ferry's users from data_dir). */
static int sync_all(const struct ferry_config *cfg, struct userdb *secrets, struct fdb_env *senv)
{
    struct sync_names ns = { { 0 }, { 0 } };
    char err[512];
    if (import_old_users(cfg, secrets) < 0) {
        userdb_close(secrets);
        fdb_env_close(senv);
        return -1;
    }
    if (userdb_list(secrets, collect, &ns.have) < 0) {
        fprintf(stderr, "ferryctl: cannot read the user database\n");
        userdb_close(secrets);
        fdb_env_close(senv);
        free(ns.have.v);
        return -1;
    }
    /* Read the directory's names as root would be wrong (it is the daemon's), so
       the stale ones are found after publishing, as that user. */
    int rc = publish(cfg, secrets, senv, &ns.have);
    struct fdb_env *env;
    struct userdb *dir = NULL;
    if (rc == 0 && fdb_env_open(cfg->data_dir, &env, err, sizeof err) == 0) {
        if ((dir = userdb_open(env, err, sizeof err)) && userdb_list(dir, stale_entry, &ns) == 0)
            for (size_t i = 0; i < ns.stale.n; i++)
                if (userdb_unpublish(dir, ns.stale.v[i], err, sizeof err) < 0)
                    rc = -1;
        userdb_close(dir);
        fdb_env_close(env);
    }
    if (rc == 0)
        printf("%zu users in the directory\n", ns.have.n);
    free(ns.have.v);
    free(ns.stale.v);
    return rc;
}

int ctl_user(const struct ferry_config *cfg, int argc, char **argv)
{
    if (argc < 1)
        return usage();
    const char *verb = argv[0];
    bool needs_name = strcmp(verb, "list") != 0 && strcmp(verb, "sync") != 0;
    if ((needs_name && argc < 2) || (!strcmp(verb, "addr") && argc != 4) || (strcmp(verb, "addr") && argc > 2))
        return usage();
    if (strcmp(verb, "add") && strcmp(verb, "del") && strcmp(verb, "passwd") && strcmp(verb, "list") &&
        strcmp(verb, "addr") && strcmp(verb, "sync"))
        return usage();
    if (!strcmp(verb, "addr") && strcmp(argv[2], "add") && strcmp(argv[2], "del"))
        return usage();
    char err[512], pw[CRED_PASSWORD_MAX + 2];
    struct fdb_env *env;
    struct userdb *u;
    if (open_secrets(cfg, &env, &u) < 0)
        return 1;
    if (!strcmp(verb, "sync"))
        return sync_all(cfg, u, env) < 0 ? 1 : 0;
    int r = 0;
    if (!strcmp(verb, "list")) {
        r = userdb_list(u, print_user, NULL) < 0 ? -1 : 0;
        snprintf(err, sizeof err, "cannot read the user database");
    } else if (!strcmp(verb, "add") || !strcmp(verb, "passwd")) {
        if (read_password(pw, sizeof pw) < 0) {
            r = -2;
        } else {
            r = !strcmp(verb, "add") ? userdb_add(u, argv[1], pw, err, sizeof err)
                                     : userdb_passwd(u, argv[1], pw, err, sizeof err);
        }
        OPENSSL_cleanse(pw, sizeof pw);
    } else if (!strcmp(verb, "del")) {
        r = userdb_del(u, argv[1], err, sizeof err);
    } else {
        r = userdb_addr(u, argv[1], argv[3], !strcmp(argv[2], "add"), err, sizeof err);
    }
    if (r != 0 && r != -2)
        fprintf(stderr, "ferryctl: %s\n", err);
    if (r != 0 || !strcmp(verb, "list")) {
        userdb_close(u);
        fdb_env_close(env);
        return r == 0 ? 0 : 1;
    }
    /* users.db changed: its public half goes to the directory (a new password
       changes nothing there, but costs nothing either). */
    struct names one = { 0 };
    const char *why;
    char name[USERDB_NAME_MAX + 1];
    if (userdb_name(argv[1], name, sizeof name, &why) < 0 || collect(&(struct user_record){ 0 }, &one) < 0) {
        userdb_close(u);
        fdb_env_close(env);
        free(one.v);
        return 1;
    }
    str_copy(one.v[0], name, sizeof one.v[0]);
    int rc = publish(cfg, u, env, &one) < 0 ? 1 : 0;
    free(one.v);
    return rc;
}

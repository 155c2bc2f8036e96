/*
 * ctl_user — `ferryctl user add NAME | del NAME | passwd NAME | list` and
 * `ferryctl user addr NAME add|del ADDRESS`: the SMTP AUTH users in the data_dir
 * Berkeley DB environment (auth/userdb.h). Passwords are read from standard input
 * (the first line, without its newline) and never stored, only their SCRAM keys.
 * Run as root, it becomes the daemon's user first, so the database files stay the
 * daemon's; it works whether the daemon runs or not.
 */
#include "auth/userdb.h"
#include "ctl/ctl.h"
#include "lib/buf.h"
#include "lib/safe_dir.h"
#include "smtpd/proc.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int usage(void)
{
    fprintf(stderr, "usage: ferryctl user add NAME | del NAME | passwd NAME | list | addr NAME add|del ADDRESS\n"
                    "       (add and passwd read the password from standard input)\n");
    return 2;
}

int ctl_become_daemon_user(const struct ferry_config *cfg)
{
    if (geteuid() != 0)
        return 0;
    uid_t uid;
    gid_t gid;
    char err[256];
    if (proc_lookup_user(cfg->user, &uid, &gid, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return -1;
    }
    /* As ferryd does it (lib/safe_dir.h): never through a link the daemon's user
       could have put in place of data_dir. */
    struct safe_owner o = { true, uid, gid };
    int fd = safe_dir_prepare(cfg->data_dir, 0700 | SAFE_DIR_KEEP_MODE, &o, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return -1;
    }
    close(fd);
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
        fprintf(stderr, "ferryctl: cannot become %s: %s\n", cfg->user, strerror(errno));
        return -1;
    }
    return 0;
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

int ctl_user(const struct ferry_config *cfg, int argc, char **argv)
{
    if (argc < 1)
        return usage();
    const char *verb = argv[0];
    bool needs_name = strcmp(verb, "list") != 0;
    if ((needs_name && argc < 2) || (!strcmp(verb, "addr") && argc != 4) || (strcmp(verb, "addr") && argc > 2))
        return usage();
    if (strcmp(verb, "add") && strcmp(verb, "del") && strcmp(verb, "passwd") && strcmp(verb, "list") &&
        strcmp(verb, "addr"))
        return usage();
    if (ctl_become_daemon_user(cfg) < 0)
        return 1;
    char err[512], pw[CRED_PASSWORD_MAX + 2];
    struct fdb_env *env;
    if (fdb_env_open(cfg->data_dir, &env, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }
    struct userdb *u = userdb_open(env, err, sizeof err);
    int rc = 1;
    if (!u) {
        fprintf(stderr, "ferryctl: %s\n", err);
        goto out;
    }
    int r = 0;
    if (!strcmp(verb, "list")) {
        r = userdb_list(u, print_user, NULL) < 0 ? -1 : 0;
        snprintf(err, sizeof err, "cannot read the user database");
    } else if (!strcmp(verb, "add") || !strcmp(verb, "passwd")) {
        if (read_password(pw, sizeof pw) < 0)
            goto out;
        r = !strcmp(verb, "add") ? userdb_add(u, argv[1], pw, err, sizeof err)
                                 : userdb_passwd(u, argv[1], pw, err, sizeof err);
        memset(pw, 0, sizeof pw);
    } else if (!strcmp(verb, "del")) {
        r = userdb_del(u, argv[1], err, sizeof err);
    } else {
        if (strcmp(argv[2], "add") && strcmp(argv[2], "del")) {
            rc = usage();
            goto out;
        }
        r = userdb_addr(u, argv[1], argv[3], !strcmp(argv[2], "add"), err, sizeof err);
    }
    if (r != 0)
        fprintf(stderr, "ferryctl: %s\n", err);
    rc = r == 0 ? 0 : 1;
out:
    userdb_close(u);
    fdb_env_close(env);
    return rc;
}

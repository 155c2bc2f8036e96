/*
 * ctl_user — `ferryctl user add NAME | del NAME | passwd NAME | list` and
 * `ferryctl user addr NAME add|del ADDRESS`: the SMTP AUTH users in the data_dir
 * Berkeley DB environment (auth/userdb.h). Passwords are read from standard input
 * (the first line, without its newline) and never stored, only their SCRAM keys.
 * The environment is opened with ctl_open_env (as the daemon's user when run as
 * root); it works whether the daemon runs or not.
 */
#include "auth/userdb.h"
#include "ctl/ctl.h"
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: ferryctl user add NAME | del NAME | passwd NAME | list | addr NAME add|del ADDRESS\n"
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
    char err[512], pw[CRED_PASSWORD_MAX + 2];
    struct fdb_env *env;
    if (ctl_open_env(cfg, &env) < 0)
        return 1;
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

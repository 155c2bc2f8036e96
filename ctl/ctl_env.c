/*
 * ctl_env — opening the data_dir Berkeley DB environment from ferryctl. Run as
 * root, ferryctl becomes the daemon's user first, so the database files stay the
 * daemon's; the environment is safe to open while the daemon runs (lib/db.h).
 */
#include "ctl/ctl.h"
#include "lib/db.h"
#include "lib/safe_dir.h"
#include "smtpd/smtp_proc.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/privsep.h"

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
    mode_t shared = privsep_dir_group_bits(cfg);
    int fd = safe_dir_prepare(cfg->data_dir, shared ? 0700 | shared : 0700 | SAFE_DIR_KEEP_MODE, &o, err, sizeof err);
    if (fd < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return -1;
    }
    close(fd);
    umask(privsep_umask(cfg));      /* files the queue user must also read stay its group's */
    if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
        fprintf(stderr, "ferryctl: cannot become %s: %s\n", cfg->user, strerror(errno));
        return -1;
    }
    return 0;
}

int ctl_open_env(const struct ferry_config *cfg, struct fdb_env **env)
{
    char err[512];
    if (ctl_become_daemon_user(cfg) < 0)
        return -1;
    if (fdb_env_open(cfg->data_dir, env, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return -1;
    }
    return 0;
}

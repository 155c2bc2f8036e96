/* privsep — see privsep.h. */
#include "lib/privsep.h"
#include "lib/safe_dir.h"

#include <pwd.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

const char *privsep_auth_dir(const struct ferry_config *cfg, char *buf, size_t bufsz)
{
    if (cfg->auth_dir[0])
        return cfg->auth_dir;
    snprintf(buf, bufsz, "%s-auth", cfg->data_dir);
    return buf;
}

const char *privsep_queue_user(const struct ferry_config *cfg)
{
    if (cfg->queue_user[0])
        return cfg->queue_user;
    return getpwnam(PRIVSEP_DEFAULT_QUEUE_USER) ? PRIVSEP_DEFAULT_QUEUE_USER : cfg->user;
}

bool privsep_split(const struct ferry_config *cfg)
{
    const char *q = privsep_queue_user(cfg);
    if (!strcmp(q, cfg->user))
        return false;
    struct passwd *pw = getpwnam(q);
    if (!pw)
        return false;
    uid_t quid = pw->pw_uid;
    pw = getpwnam(cfg->user);
    return pw && pw->pw_uid != quid;
}

mode_t privsep_umask(const struct ferry_config *cfg)
{
    return privsep_split(cfg) ? 007 : 077;
}

mode_t privsep_dir_group_bits(const struct ferry_config *cfg)
{
    return privsep_split(cfg) ? 02070 : 0;
}

const char *privsep_queue_data_dir(const struct ferry_config *cfg, char *buf, size_t bufsz)
{
    if (cfg->queue_data_dir[0])
        return cfg->queue_data_dir;
    snprintf(buf, bufsz, "%s-queue", cfg->data_dir);
    return buf;
}

static int owner_of(const char *user, struct safe_owner *o, char *err, size_t errlen)
{
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        snprintf(err, errlen, "no user %s", user);
        return -1;
    }
    o->uid = pw->pw_uid;
    o->gid = pw->pw_gid;
    return 0;
}

/* dir, 0700, for leaf_user (NULL: root), on a path walked as the smtp user
   would see it: nothing it could change is followed. */
static int prepare_private(const struct ferry_config *cfg, const char *dir, const char *leaf_user, char *err,
                           size_t errlen)
{
    bool root = geteuid() == 0;
    struct safe_owner walk = { root, 0, 0 }, leaf = { root, 0, 0 };
    if (root && (owner_of(cfg->user, &walk, err, errlen) < 0 ||
                 (leaf_user && owner_of(leaf_user, &leaf, err, errlen) < 0)))
        return -1;
    int fd = safe_dir_prepare_for(dir, 0700, &walk, &leaf, err, errlen);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

int privsep_prepare_auth_dir(const struct ferry_config *cfg, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    return prepare_private(cfg, privsep_auth_dir(cfg, buf, sizeof buf), NULL, err, errlen);
}

int privsep_prepare_queue_data_dir(const struct ferry_config *cfg, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    return prepare_private(cfg, privsep_queue_data_dir(cfg, buf, sizeof buf), privsep_queue_user(cfg), err, errlen);
}

static void wipe(char *field, size_t size)
{
    memset(field, 0, size);
}
#define WIPE(f) wipe(cfg->f, sizeof cfg->f)

void privsep_trim_config(struct ferry_config *cfg, enum privsep_role role)
{
    switch (role) {
    case PRIVSEP_SMTP:
        WIPE(tls_key);
        WIPE(tls_cert);
        WIPE(relayhost);
        WIPE(relayhost_auth_file);
        WIPE(smtp_tls_policy);
        WIPE(smtp_tls_ca_file);
        WIPE(auth_dir);
        WIPE(queue_data_dir);
        WIPE(mailbox_transport);
        return;
    case PRIVSEP_QUEUE:
        WIPE(tls_key);
        WIPE(tls_cert);
        WIPE(relayhost_auth_file);
        WIPE(auth_dir);
        WIPE(dkim_key_dir);
        return;
    case PRIVSEP_KEYS:
    case PRIVSEP_AUTH:
        settings_free(cfg);
        memset(cfg, 0, sizeof *cfg);
        return;
    }
}

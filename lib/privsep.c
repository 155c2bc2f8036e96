/* privsep — see privsep.h. */
#include "lib/privsep.h"

#include <pwd.h>
#include <string.h>

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

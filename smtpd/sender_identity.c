/* sender_identity — see sender_identity.h. */
#include "smtpd/sender_identity.h"
#include "lib/privsep.h"
#include "auth/userdb.h"
#include "lib/buf.h"
#include "lib/settings.h"
#include "smtpd/smtp_server.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool sender_identity_owns(struct smtp_server *srv, const char *user, bool system_account, const char *address)
{
    const struct ferry_config *cfg = srv->cfg;
    struct user_record *r = calloc(1, sizeof *r);
    if (!r)
        return false;           /* out of memory: nobody is proven to own anything */
    char err[256];
    bool have = srv->users && userdb_get(srv->users, user, r, err, sizeof err) == 0;
    if (!have && system_account) {
        /* A login without a user record: NAME@ each local domain only. */
        memset(r, 0, sizeof *r);
        str_copy(r->name, user, sizeof r->name);
        have = strlen(user) < sizeof r->name;
    }
    bool ok = have && userdb_owns(r, address, (const char *const *)cfg->local_domains.items, cfg->local_domains.n);
    if (!ok && have && system_account) {
        /* ferry-sendmail's own default sender, NAME@hostname, is the account's too. */
        const char *host[1] = { cfg->hostname };
        ok = userdb_owns(r, address, host, 1);
    }
    free(r);
    return ok;
}

bool sender_identity_trusted(const struct ferry_config *cfg, uid_t uid, const char *name)
{
    if (uid == 0 || uid == getuid())
        return true;            /* root, and the user the smtp process runs as */
    if (name && !strcmp(name, privsep_queue_user(cfg)))
        return true;            /* the queue process: DMARC reports, pull replies */
    for (size_t i = 0; name && i < cfg->trusted_users.n; i++)
        if (strcmp(cfg->trusted_users.items[i], name) == 0)
            return true;
    return false;
}

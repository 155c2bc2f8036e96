/* relay_access — see relay_access.h. */
#include "smtpd/relay_access.h"
#include "lib/buf.h"

#include <string.h>

/* Routing characters in the local part: the percent hack, bang paths, and an
   "@" that can only be there inside quotes. */
static bool local_part_routes(const struct mailbox *m)
{
    char local[ADDR_LOCAL_MAX + 1];
    if (addr_local_unquoted(m, local, sizeof local) < 0)
        return true;
    return strpbrk(local, "%!@") != NULL;
}

enum relay_decision relay_decide(const struct ferry_config *cfg, const struct mailbox *rcpt,
                                 const struct relay_client *client, const char **reason)
{
    bool ours = false;
    enum relay_decision d = RELAY_OUTBOUND;
    if (rcpt->domain_kind == ADDR_DOMAIN_NAME) {
        if (settings_is_local_domain(cfg, rcpt->domain)) {
            ours = true;
            d = RELAY_LOCAL;
        } else if (settings_is_relay_domain(cfg, rcpt->domain)) {
            ours = true;
            d = RELAY_INBOUND;
        }
    } else if (rcpt->domain_kind == ADDR_DOMAIN_NONE) {
        *reason = "Recipient address needs a domain";
        return RELAY_DENY;
    }
    if (ours) {
        if (local_part_routes(rcpt)) {
            *reason = "Source routing in the local part (%, ! or a quoted @) is not supported";
            return RELAY_DENY;
        }
        return d;
    }
    if (client->authenticated || client->trusted_network)
        return RELAY_OUTBOUND;
    *reason = "Relay access denied";
    return RELAY_DENY;
}

/*
 * relay_access — who may send mail to which recipient through this server (RFC 5321
 * §3.6.2, RFC 2505 on open relays). Pure: a parsed recipient and facts about the
 * client in, a decision and its reason out.
 *
 *   local domain            → LOCAL (delivered here), from anyone
 *   relay_domains           → INBOUND_RELAY (accepted for a domain we serve as a
 *                             backup MX, passed on), from anyone
 *   any other domain        → OUTBOUND_RELAY only for authenticated clients and
 *                             clients in relay_networks, else DENY
 *   address literal         → like another domain (never local), so
 *                             RCPT TO:<user@[our-ip]> cannot be used to relay
 *
 * For local and relay domains the local part must not carry routing of its own:
 * "%", "!" and (inside quotes) "@" make a recipient DENY with a reason, so the
 * old percent hack, UUCP bang paths and quoted "user@elsewhere"@local can never
 * turn Ferry into a relay. Source routes were already dropped by the address
 * parser (RFC 5321 §4.1.1.3: the final Mailbox decides).
 */
#ifndef FERRY_RELAY_H
#define FERRY_RELAY_H

#include <stdbool.h>

#include "lib/addr.h"
#include "lib/settings.h"

enum relay_decision { RELAY_LOCAL, RELAY_INBOUND, RELAY_OUTBOUND, RELAY_DENY };

struct relay_client {
    bool authenticated;       /* SMTP AUTH succeeded */
    bool trusted_network;     /* the client address is in relay_networks */
};

/* *reason is set for RELAY_DENY (a sentence for the reply and the log). */
enum relay_decision relay_decide(const struct ferry_config *cfg, const struct mailbox *rcpt,
                                 const struct relay_client *client, const char **reason);

#endif

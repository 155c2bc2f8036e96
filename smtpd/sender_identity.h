/*
 * sender_identity — who may speak for which address, on every way mail comes in
 * (SECURITY.md, "Sender identity").
 *
 * An authenticated SMTP user, on any listener, owns the addresses and domains
 * given with `ferryctl user addr` and NAME@ each local domain; a user that is not
 * in the user database owns nothing. A local account submitting through
 * ferry-sendmail owns the same set when it has a user record, and NAME@ each
 * local domain when it has none; either way also NAME@hostname, the sender
 * ferry-sendmail gives it by default. Root, the daemon's own user and the accounts in
 * `trusted_users` are trusted: they may set any sender (as sendmail's and Exim's
 * trusted users may), and their mail is signed like a relay client's.
 * Callers: the smtp session (MAIL FROM, From:) and the maildrop pickup.
 */
#ifndef FERRY_SENDER_IDENTITY_H
#define FERRY_SENDER_IDENTITY_H

#include <stdbool.h>
#include <sys/types.h>

struct smtp_server;
struct ferry_config;

/* May user send as address? system_account: a local login (no user record
   needed for NAME@ local domains); otherwise a SASL user, who must have a record. */
bool sender_identity_owns(struct smtp_server *srv, const char *user, bool system_account, const char *address);

/* Is the local account uid (named name) trusted to set any sender? */
bool sender_identity_trusted(const struct ferry_config *cfg, uid_t uid, const char *name);

#endif

/*
 * local_rcpt — the lookup state of local delivery, shared by the smtp process
 * (RCPT TO checks) and the queue process (delivery): the alias and virtual maps,
 * re-opened when their files change, and the question "is this a user here?".
 * No sockets, no writes.
 *
 * Maps: alias_file and virtual_map, each read from FILE.db when `ferryctl map
 * build FILE` made one (a .db older than FILE is still used, with a warning in
 * the log, as the admin may not have rebuilt it yet), else from the text FILE.
 * A map that cannot be read makes every lookup a temporary failure (4.3.5): a
 * broken alias file must not turn mail away for good, nor deliver past it.
 *
 * A user exists (local_recipients = known) when it is postmaster, a system
 * account, an SMTP AUTH user in users.db, or already has a mailbox (Maildir
 * directory under mail_dir, or mbox file). local_recipients = any makes every
 * name a user.
 */
#ifndef FERRY_LOCAL_RCPT_H
#define FERRY_LOCAL_RCPT_H

#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "delivery/local_map.h"
#include "delivery/local_resolve.h"
#include "lib/settings.h"

struct userdb;
struct fdb_env;

struct local_map_file {
    struct local_map map;
    bool loaded;
    bool from_db;
    struct stat sb;              /* of the file read (FILE or FILE.db) when loaded */
    char error[512];             /* "" when the file was read */
};

/* Zero-initialise; free with local_maps_free. */
struct local_maps {
    struct local_map_file aliases, virtual;
    struct userdb *users;        /* may be set by the owner (borrowed), else opened on demand */
    struct fdb_env *users_env;   /* ours when we opened users.db */
    bool users_owned, users_tried;
    /* Open users.db for each lookup and close it right after (delivery workers):
       a process that may be killed must not be inside the Berkeley DB
       environment while it waits on a slow delivery, or the next opener runs
       recovery under every other user of it (lib/db.h). */
    bool users_transient;
};

/* Re-open the maps whose files changed. 0 ok; -1 with *why naming the broken map. */
int  local_maps_refresh(const struct ferry_config *cfg, struct local_maps *maps, const char **why);
void local_maps_close(struct local_maps *maps);

/* Fill r for cfg and maps; arg storage is *ra (keep it alive as long as r). */
/* Where mail to dmarc_reports_address and to tlsrpt_reports_address is kept
   until the report runner reads it: names no user can have (a leading dot),
   under mail_dir. */
#define LOCAL_REPORTS_MAILDIR ".dmarc-reports"
#define LOCAL_TLSRPT_MAILDIR  ".tlsrpt-reports"
struct local_rcpt_arg {
    const struct ferry_config *cfg;
    struct local_maps *maps;
    char reports_maildir[PATH_MAX + 32];
    char tlsrpt_maildir[PATH_MAX + 32];
};
void local_resolver_init(struct local_resolver *r, struct local_rcpt_arg *ra, const struct ferry_config *cfg,
                         struct local_maps *maps);

/* Does the user "name" exist (see above)? */
bool local_user_exists(const struct ferry_config *cfg, struct local_maps *maps, const char *name);

enum local_rcpt_verdict { LOCAL_RCPT_OK, LOCAL_RCPT_UNKNOWN, LOCAL_RCPT_TEMPFAIL };
/* May the smtp process accept addr (a local domain's address) at RCPT? The
   aliases, virtual map, sub-addressing and catch-alls are followed as delivery
   would, without reading include files. UNKNOWN: a permanent refusal (5.1.1 no
   such user, 5.4.6 a loop...); TEMPFAIL: try later. why: "X.Y.Z text" when not OK. */
enum local_rcpt_verdict local_rcpt_check(const struct ferry_config *cfg, struct local_maps *maps,
                                         const char *addr, char *why, size_t whysz);
/* The same, and *forwards: does the expansion reach a remote address (or an
   include file, whose contents the check does not read)? For ARC sealing at
   intake (smtpd/smtp_arc_seal.h). */
enum local_rcpt_verdict local_rcpt_route(const struct ferry_config *cfg, struct local_maps *maps,
                                         const char *addr, char *why, size_t whysz, bool *forwards);

#endif

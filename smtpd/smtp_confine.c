/* smtp_confine — see smtp_server.h (smtp_confine). */
#include "smtpd/smtp_server.h"
#include "lib/buf.h"
#include "lib/landlock.h"
#include "lib/log.h"

#include <libgen.h>
#include <limits.h>
#include <string.h>

/* What the smtp process still opens once it runs: the spool (sessions, the
   maildrop, GTML), data_dir (Berkeley DB, dmtp.key, failure-report drops), trace
   directories; read-only the key directory's `active`/`next` (the key process
   rewrites `active` on rotation, keyproc.h); and
   read-only the system files a lookup needs (NSS for getpwnam, time zones,
   resolv.conf, the OpenSSL configuration) and the alias and virtual maps. Its
   private keys, the relay credentials, mail_dir and everyone's home directories are
   not among them. lstat() is not an open: RCPT may still see that a mailbox exists. */
int smtp_confine(const struct ferry_config *cfg)
{
    enum { MAXP = SETTINGS_MAX_LISTEN + 24 };
    struct landlock_path p[MAXP];
    size_t n = 0;
    char maps[2][PATH_MAX];
    p[n++] = (struct landlock_path){ cfg->spool_dir, true };
    p[n++] = (struct landlock_path){ cfg->data_dir, true };
    p[n++] = (struct landlock_path){ cfg->dkim_key_dir, false };
    p[n++] = (struct landlock_path){ "/dev/null", true };
    for (size_t i = 0; i < cfg->nlisteners && n < MAXP - 16; i++)
        p[n++] = (struct landlock_path){ cfg->listeners[i].trace_dir, true };
    static const char *const system_ro[] = { "/etc", "/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin",
                                             "/proc", "/dev/urandom", "/dev/random" };
    for (size_t i = 0; i < sizeof system_ro / sizeof system_ro[0]; i++)
        p[n++] = (struct landlock_path){ system_ro[i], false };
    const char *files[2] = { cfg->alias_file, cfg->virtual_map };
    for (int i = 0; i < 2; i++) {
        if (!files[i][0])
            continue;
        str_copy(maps[i], files[i], sizeof maps[i]);        /* dirname may write */
        p[n++] = (struct landlock_path){ dirname(maps[i]), false };   /* the map and its .db */
    }
    char err[300];
    int r = landlock_confine(p, n, err, sizeof err);
    if (r < 0) {
        log_error("cannot confine the smtp process: %s", err);
        return -1;
    }
    if (r == 0)         /* fail open, but loudly: SECURITY.md says what is lost */
        log_warn("SECURITY: the smtp process runs WITHOUT Landlock confinement (%s); only file modes and "
                 "users keep it from files beyond the spool and data_dir (see SECURITY.md)", err);
    else
        log_info("smtp process confined with Landlock to the spool, data_dir, the key directory and "
                 "system files");
    return 0;
}

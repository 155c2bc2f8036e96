/*
 * caps — a process that keeps root's uid but none of root's powers.
 *
 * The key and auth processes stay uid 0 so that they can read files only root
 * may read (DKIM keys, users.db: root's, mode 0600, where owner permission is
 * enough) but need nothing else root can do. caps_drop_all, called once they have
 * chrooted, empties the bounding set and the effective, permitted and inheritable
 * sets, locks the securebits so that uid 0 can never regain a capability (not on
 * exec, not by setuid), and sets no_new_privs. From then on the process can
 * still open its own files, but not read another user's, not override a file
 * mode, not chroot, kill, trace, bind low ports or change its uid.
 *
 * Not root (ferryd started by an ordinary user): it holds no capability, so only
 * no_new_privs is set. -1 with err when the kernel refuses a step.
 */
#ifndef FERRY_CAPS_H
#define FERRY_CAPS_H

#include <stdbool.h>
#include <stddef.h>

int caps_drop_all(char *err, size_t errlen);
/* Does this process hold any effective capability? (for tests and the log) */
bool caps_any_effective(void);

#endif

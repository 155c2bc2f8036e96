/*
 * safe_dir — directories that a privileged process prepares for an unprivileged
 * one, without ever following a path the unprivileged user can change.
 *
 * ferryd (as root) makes spool_dir, data_dir, mail_dir and the spool's
 * subdirectories and gives them to the daemon's user, which from then on owns
 * their contents: it can replace any entry in them by a symbolic link. So:
 *
 *  - A path is walked one component at a time (openat with O_NOFOLLOW). A symbolic
 *    link is followed (its target walked the same way, at most SAFE_DIR_MAX_LINKS)
 *    only when it lies in a directory the daemon's user cannot change; an ancestor
 *    directory the daemon's user could change is refused outright.
 *  - The directory itself (safe_dir_make) is opened O_NOFOLLOW|O_DIRECTORY relative
 *    to its parent's descriptor; a link, a non-directory, or an owner other than
 *    the daemon's user (or root, where the parent is root's own) is refused with an
 *    error naming the path — never "fixed". Only then are owner and mode set, on
 *    the descriptor (fchown, fchmod).
 *
 * With o->privileged false (ferryd not started as root) there is nothing to
 * protect: links are followed and nothing is chowned. Errors: -1 with err set.
 */
#ifndef FERRY_SAFE_DIR_H
#define FERRY_SAFE_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SAFE_DIR_MAX_LINKS 8
/* Or'ed into a mode: set it on a directory made now, leave an existing one's. */
#define SAFE_DIR_KEEP_MODE 010000

struct safe_owner {
    bool privileged;        /* root acting for an unprivileged user: check and chown */
    uid_t uid;              /* the unprivileged user */
    gid_t gid;
};

/* Open directory path for reading (O_DIRECTORY), walking it as above; missing
   components are created (0755) when create is set. Returns the descriptor. */
int safe_dir_walk(const char *path, bool create, const struct safe_owner *o, char *err, size_t errlen);

/* Make or open parentfd/name as the unprivileged user's directory with mode;
   shown is the path used in messages. Returns the descriptor (O_DIRECTORY). */
int safe_dir_make(int parentfd, const char *name, const char *shown, mode_t mode, const struct safe_owner *o,
                  char *err, size_t errlen);

/* Both: walk path's parent (creating it), make path itself. Returns the descriptor. */
int safe_dir_prepare(const char *path, mode_t mode, const struct safe_owner *o, char *err, size_t errlen);
/* The same, but the directory itself goes to leaf_owner (root's own auth_dir, say,
   under a path walked as o would be). */
int safe_dir_prepare_for(const char *path, mode_t mode, const struct safe_owner *o, const struct safe_owner *leaf_owner,
                         char *err, size_t errlen);

#endif

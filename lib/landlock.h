/*
 * landlock — confine a process's file system access with Linux Landlock.
 *
 * The caller lists the paths it will still need, each read-only or read-write
 * (beneath a directory, or one file); after landlock_confine every open, create,
 * rename or removal elsewhere fails with EACCES, whatever the file modes say. The
 * rules are inherited by children and can never be lifted. Paths that do not
 * exist are skipped. Needs no_new_privs (or CAP_SYS_ADMIN).
 *
 * Returns 1 confined, 0 the kernel has no Landlock (err says so: not an error),
 * -1 with err on failure.
 */
#ifndef FERRY_LANDLOCK_H
#define FERRY_LANDLOCK_H

#include <stdbool.h>
#include <stddef.h>

struct landlock_path {
    const char *path;
    bool write;             /* read-write, else read (and execute) only */
};

int landlock_confine(const struct landlock_path *paths, size_t n, char *err, size_t errlen);

#endif

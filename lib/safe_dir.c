/* safe_dir — see safe_dir.h. */
#include "lib/safe_dir.h"
#include "lib/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Could the unprivileged user replace entry (NULL: a name not there yet) in dir?
   Its own directory, or one it may write to — unless the directory is sticky and
   the entry is not the user's. (Supplementary groups are not looked at: the
   daemon's user is expected to have its own group.) */
static bool changeable(const struct stat *dir, const struct stat *entry, const struct safe_owner *o)
{
    if (dir->st_uid == o->uid)
        return true;
    bool writable = (dir->st_mode & S_IWOTH) || ((dir->st_mode & S_IWGRP) && dir->st_gid == o->gid);
    if (!writable)
        return false;
    if (dir->st_mode & S_ISVTX)
        return !entry || entry->st_uid == o->uid;
    return true;
}

static int walk(int start, const char *path, bool create, const struct safe_owner *o, int depth,
                const char *shown, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    if (str_copy(buf, path, sizeof buf) >= sizeof buf) {
        snprintf(err, errlen, "%s: path too long", shown);
        return -1;
    }
    int cur = buf[0] == '/' ? open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                            : openat(start, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cur < 0) {
        snprintf(err, errlen, "%s: cannot open its first directory: %s", shown, strerror(errno));
        return -1;
    }
    char *save = NULL;
    for (char *comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        if (!strcmp(comp, "."))
            continue;
        struct stat dst, est;
        int nfd;
        if (fstat(cur, &dst) < 0)
            goto sys_fail;
        if (strcmp(comp, "..") != 0 && fstatat(cur, comp, &est, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno != ENOENT || !create)
                goto sys_fail;
            if (o->privileged && changeable(&dst, NULL, o))
                goto refuse;
            if ((mkdirat(cur, comp, 0755) < 0 && errno != EEXIST) || fstatat(cur, comp, &est, AT_SYMLINK_NOFOLLOW) < 0)
                goto sys_fail;
        }
        if (!strcmp(comp, "..")) {
            nfd = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else if (o->privileged && changeable(&dst, &est, o)) {
            goto refuse;
        } else if (S_ISLNK(est.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = depth < SAFE_DIR_MAX_LINKS ? readlinkat(cur, comp, target, sizeof target - 1) : -1;
            if (n < 0) {
                snprintf(err, errlen, "%s: cannot follow the link \"%s\": %s", shown, comp,
                         depth < SAFE_DIR_MAX_LINKS ? strerror(errno) : "too many links");
                close(cur);
                return -1;
            }
            target[n] = '\0';
            nfd = walk(cur, target, false, o, depth + 1, shown, err, errlen);
            if (nfd < 0) {
                close(cur);
                return -1;
            }
        } else {
            nfd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (nfd < 0)
            goto sys_fail;
        close(cur);
        cur = nfd;
        continue;
    refuse:
        snprintf(err, errlen, "%s: the directory holding \"%s\" may be changed by uid %ld (the daemon's user); "
                 "refusing to use a path through it", shown, comp, (long)o->uid);
        close(cur);
        return -1;
    sys_fail:
        snprintf(err, errlen, "%s: cannot open \"%s\": %s", shown, comp, strerror(errno));
        close(cur);
        return -1;
    }
    return cur;
}

int safe_dir_walk(const char *path, bool create, const struct safe_owner *o, char *err, size_t errlen)
{
    return walk(AT_FDCWD, path, create, o, 0, path, err, errlen);
}

int safe_dir_make(int parentfd, const char *name, const char *shown, mode_t mode, const struct safe_owner *o,
                  char *err, size_t errlen)
{
    struct stat pst, st;
    bool created = mkdirat(parentfd, name, 0700) == 0;
    if (!created && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", shown, strerror(errno));
        return -1;
    }
    int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (o->privileged ? O_NOFOLLOW : 0));
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
            snprintf(err, errlen, "%s is a symbolic link or not a directory: refusing to use it "
                     "(make it a directory of its own)", shown);
        else
            snprintf(err, errlen, "cannot open %s: %s", shown, strerror(errno));
        return -1;
    }
    if (fstat(parentfd, &pst) < 0 || fstat(fd, &st) < 0) {
        snprintf(err, errlen, "cannot inspect %s: %s", shown, strerror(errno));
        close(fd);
        return -1;
    }
    if (o->privileged) {
        /* Root's own directory in root's own parent was the administrator's doing
           and may be handed over; anything else must already be the user's. */
        bool ours = st.st_uid == o->uid || (st.st_uid == 0 && (created || !changeable(&pst, &st, o)));
        if (!ours) {
            snprintf(err, errlen, "%s is owned by uid %ld, not by the daemon's user (uid %ld): refusing to take it "
                     "over", shown, (long)st.st_uid, (long)o->uid);
            close(fd);
            return -1;
        }
        if ((st.st_uid != o->uid || st.st_gid != o->gid) && fchown(fd, o->uid, o->gid) < 0) {
            snprintf(err, errlen, "cannot give %s to uid %ld: %s", shown, (long)o->uid, strerror(errno));
            close(fd);
            return -1;
        }
    }
    bool set_mode = !(mode & SAFE_DIR_KEEP_MODE) || created;
    mode &= 07777;
    if (set_mode && (st.st_mode & 07777) != mode && fchmod(fd, mode) < 0) {
        snprintf(err, errlen, "cannot set the mode of %s: %s", shown, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int safe_dir_prepare(const char *path, mode_t mode, const struct safe_owner *o, char *err, size_t errlen)
{
    return safe_dir_prepare_for(path, mode, o, o, err, errlen);
}

int safe_dir_prepare_for(const char *path, mode_t mode, const struct safe_owner *o, const struct safe_owner *leaf_owner,
                         char *err, size_t errlen)
{
    char parent[PATH_MAX];
    size_t len = str_copy(parent, path, sizeof parent);
    if (len >= sizeof parent) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    while (len > 1 && parent[len - 1] == '/')
        parent[--len] = '\0';
    char *slash = strrchr(parent, '/');
    const char *leaf = slash ? slash + 1 : parent;
    if (!*leaf || !strcmp(leaf, ".") || !strcmp(leaf, "..")) {
        snprintf(err, errlen, "%s: name a directory by its own name, not \".\" or \"..\"", path);
        return -1;
    }
    char name[NAME_MAX + 1];
    if (str_copy(name, leaf, sizeof name) >= sizeof name) {
        snprintf(err, errlen, "%s: name too long", path);
        return -1;
    }
    if (!slash)
        str_copy(parent, ".", sizeof parent);
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    int pfd = safe_dir_walk(parent, true, o, err, errlen);
    if (pfd < 0)
        return -1;
    int fd = safe_dir_make(pfd, name, path, mode, leaf_owner, err, errlen);
    close(pfd);
    return fd;
}

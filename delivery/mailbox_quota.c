/* mailbox_quota — see mailbox_quota.h. */
#include "delivery/mailbox_quota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#define LOCAL_USAGE_MAX_FILES 1000000

static int add_usage(const char *dir, unsigned long long *bytes, size_t *files)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    int dfd = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d)) && *files < LOCAL_USAGE_MAX_FILES) {
        if (de->d_name[0] == '.')
            continue;
        struct stat sb;
        if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode)) {
            *bytes += (unsigned long long)sb.st_size;
            (*files)++;
        }
    }
    closedir(d);
    return 0;
}

int mailbox_usage(const char *path, bool maildir, unsigned long long *bytes)
{
    *bytes = 0;
    if (!maildir) {
        struct stat sb;
        if (lstat(path, &sb) < 0)
            return errno == ENOENT ? 0 : -1;
        *bytes = (unsigned long long)sb.st_size;
        return 0;
    }
    char sub[PATH_MAX + 8];
    size_t files = 0;
    const char *subs[] = { "new", "cur" };
    for (int i = 0; i < 2; i++) {
        snprintf(sub, sizeof sub, "%s/%s", path, subs[i]);
        if (add_usage(sub, bytes, &files) < 0)
            return -1;
    }
    return 0;
}

bool mailbox_quota_exceeded(unsigned long long usage, unsigned long long size, unsigned long long quota,
                            const char *mailbox, struct delivery_status *st)
{
    if (quota == 0 || usage + size <= quota)
        return false;
    delivery_set(st, DELIVERY_FAIL, "5.2.2 mailbox full: %s holds %llu octets, the quota is %llu and the "
                 "message has %llu", mailbox, usage, quota, size);
    return true;
}

/* landlock — see landlock.h. */
#include "lib/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Rights newer than the installed header may know (their values are ABI). */
#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif

/* The file-system rights each Landlock ABI version knows (kernel documentation). */
static uint64_t handled_rights(long abi)
{
    uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;     /* ABI 1: EXECUTE .. MAKE_SYM */
    if (abi >= 2)
        r |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        r |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return r;
}

/* No EXECUTE anywhere: the confined process runs no program (execve), and a file
   it could write must never become one it can run. Shared libraries it maps are
   opened for reading, which EXECUTE does not govern. */
#define READ_RIGHTS (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
/* Writable paths get everything but EXECUTE and the special files the process
   never makes: devices, FIFOs and symbolic links (a link it planted could point
   a later reader anywhere). */
#define NOT_ON_WRITABLE (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_BLOCK | \
                         LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SYM)
/* The rights that make sense on a file (the rest are about directory entries). */
#define FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
                     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

int landlock_confine(const struct landlock_path *paths, size_t n, char *err, size_t errlen)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 1) {
        snprintf(err, errlen, "Landlock is not available in this kernel (%s)", strerror(errno));
        return 0;
    }
    uint64_t all = handled_rights(abi);
    struct landlock_ruleset_attr attr = { .handled_access_fs = all };
    int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
    if (rs < 0) {
        snprintf(err, errlen, "cannot create a Landlock ruleset: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!paths[i].path || !paths[i].path[0])
            continue;
        int fd = open(paths[i].path, O_PATH | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            if (fd >= 0)
                close(fd);
            continue;               /* not there: nothing to allow */
        }
        uint64_t want = paths[i].write ? all & ~(uint64_t)NOT_ON_WRITABLE : READ_RIGHTS;
        if (!S_ISDIR(st.st_mode))
            want &= FILE_RIGHTS;
        struct landlock_path_beneath_attr pb = { .allowed_access = want & all, .parent_fd = fd };
        int r = (int)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
        close(fd);
        if (r < 0) {
            snprintf(err, errlen, "cannot allow %s in the Landlock ruleset: %s", paths[i].path, strerror(errno));
            close(rs);
            return -1;
        }
    }
    int r = (int)syscall(SYS_landlock_restrict_self, rs, 0);
    int e = errno;
    close(rs);
    if (r < 0) {
        snprintf(err, errlen, "cannot enter the Landlock domain: %s", strerror(e));
        return -1;
    }
    return 1;
}

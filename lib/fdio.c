/* fdio — see fdio.h. */
#include "lib/fdio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int out_all(int fd, const char *p, size_t n, bool sock)
{
    while (n) {
        ssize_t w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int fd_write_all(int fd, const void *p, size_t n)
{
    return out_all(fd, p, n, false);
}

int fd_send_all(int fd, const void *p, size_t n)
{
    return out_all(fd, p, n, true);
}

int fd_read_all(int fd, void *p, size_t n)
{
    char *s = p;
    while (n) {
        ssize_t r = read(fd, s, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        s += r;
        n -= (size_t)r;
    }
    return 0;
}

size_t fd_read_upto(int fd, void *p, size_t n)
{
    char *s = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, s + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

int fd_read_file(int dirfd, const char *name, size_t max, char **data, size_t *len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size > max) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    char *p = malloc((size_t)st.st_size + 1);
    size_t got = p ? fd_read_upto(fd, p, (size_t)st.st_size) : 0;
    close(fd);
    if (!p)
        return -1;
    p[got] = '\0';
    *data = p;
    *len = got;
    return 0;
}

DIR *fd_dir_listing(int dirfd)
{
    int fd = dup(dirfd);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (!d) {
        int saved = errno;
        close(fd);
        errno = saved;
        return NULL;
    }
    rewinddir(d);
    return d;
}

int fd_dir_unlink_all(int dirfd)
{
    DIR *d = fd_dir_listing(dirfd);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && unlinkat(dirfd, de->d_name, 0) == 0)
            n++;
    closedir(d);
    return n;
}

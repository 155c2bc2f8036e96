/* report_maildir — see report_maildir.h. */
#include "queue/report_maildir.h"
#include "lib/buf.h"
#include "lib/fdio.h"
#include "lib/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One message of new/: hand it over, then move it to cur/. */
static void read_one(const struct report_maildir_reader *rd, int newfd, int curfd, const char *name)
{
    char *data = NULL;
    size_t len = 0;
    char why[400] = "";
    int rc = -1;
    /* Opened once, and read from that descriptor: no link followed, never a FIFO
       (O_NONBLOCK, then a regular file required), whatever is put in new/. */
    int fd = openat(newfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        snprintf(why, sizeof why, "cannot open it: %s", strerror(errno));
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > rd->max) {
        snprintf(why, sizeof why, "not a regular file, or over %zu octets", rd->max);
    } else if (!(data = malloc((size_t)st.st_size + 1))) {
        snprintf(why, sizeof why, "out of memory");
    } else {
        len = fd_read_upto(fd, data, (size_t)st.st_size);
        data[len] = '\0';
        rc = rd->take(rd->arg, name, data, len, why, sizeof why);
    }
    if (fd >= 0)
        close(fd);
    free(data);
    if (rc != 0)
        log_warn("%s: %s refused: %s", rd->label, name, why);
    /* Maildir info ":2,S" (seen), with F (flagged) for what could not be read. */
    char to[NAME_MAX + 8];
    const char *colon = strchr(name, ':');
    snprintf(to, sizeof to, "%.*s:2,%s", colon ? (int)(colon - name) : (int)strlen(name), name,
             rc == 0 ? "S" : "FS");
    if (renameat(newfd, name, curfd, to) < 0)
        log_warn("%s: cannot move %s to cur/: %s", rd->label, name, strerror(errno));
}

int report_maildir_read(const struct ferry_config *cfg, const struct report_maildir_reader *rd, char *err,
                        size_t errlen)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s/new", cfg->mail_dir, rd->box);
    int newfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (newfd < 0)
        return 0;               /* nothing has arrived yet */
    snprintf(path, sizeof path, "%s/%s/cur", cfg->mail_dir, rd->box);
    int curfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = curfd >= 0 ? fdopendir(dup(newfd)) : NULL;
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        if (curfd >= 0)
            close(curfd);
        close(newfd);
        return -1;
    }
    /* Names first: the loop moves entries out of the directory it reads. */
    char (*names)[NAME_MAX + 1] = malloc(REPORT_MAILDIR_BATCH * sizeof *names);
    size_t n = 0;
    struct dirent *de;
    while (names && n < REPORT_MAILDIR_BATCH && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            str_copy(names[n++], de->d_name, sizeof names[0]);
    closedir(d);
    int rc = n && rd->open ? rd->open(rd->arg, err, errlen) : 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        read_one(rd, newfd, curfd, names[i]);
    free(names);
    close(curfd);
    close(newfd);
    return rc < 0 ? -1 : (int)n;
}

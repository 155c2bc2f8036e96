/* maildir — see maildir.h. */
#include "delivery/maildir.h"
#include "lib/buf.h"
#include "lib/crlf.h"
#include "lib/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static int ensure_dir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/* Copy the message with LF line ends (lib/crlf.h). */
static int copy_lf(struct msg_src in, int out)
{
    char obuf[65536 + 1];
    struct crlf_reader rd = CRLF_READER(in.size);
    ssize_t n;
    while ((n = crlf_read(in.fd, &rd, obuf, sizeof obuf)) > 0)
        if (fd_write_all(out, obuf, (size_t)n) < 0)
            return -1;
    return n < 0 ? -1 : 0;
}

/* box/, box/tmp, box/new and box/cur. */
static int ensure_maildir(const char *box, struct delivery_status *st)
{
    char sub[PATH_MAX + 8];
    const char *subs[] = { "", "/tmp", "/new", "/cur" };
    for (int i = 0; i < 4; i++) {
        snprintf(sub, sizeof sub, "%s%s", box, subs[i]);
        if (ensure_dir(sub) < 0) {
            int e = errno;
            delivery_set(st, errno_is_temporary(e) || e == EACCES ? DELIVERY_DEFER : DELIVERY_FAIL,
                         "%s cannot create mailbox directory %s: %s",
                         errno_is_temporary(e) || e == EACCES ? "4.3.0" : "5.3.5", sub, strerror(e));
            return -1;
        }
    }
    return 0;
}

void maildir_deliver(const char *root, const char *name, const char *folder, const char *prefix, struct msg_src msg,
                     struct delivery_status *st, char *delivered, size_t delivered_sz)
{
    static unsigned long counter;
    char box[PATH_MAX], sub[PATH_MAX + 8], tmp[PATH_MAX + 720], final[PATH_MAX + 720];
    if (snprintf(box, sizeof box, "%s/%s", root, name) >= (int)sizeof box) {
        delivery_set(st, DELIVERY_FAIL, "5.3.5 mailbox path too long");
        return;
    }
    if (ensure_maildir(box, st) < 0)
        return;
    if (folder) {
        size_t bl = strlen(box);
        if (snprintf(box + bl, sizeof box - bl, "/%s", folder) >= (int)(sizeof box - bl)) {
            delivery_set(st, DELIVERY_FAIL, "5.3.5 mailbox path too long");
            return;
        }
        if (ensure_maildir(box, st) < 0)
            return;
        /* Maildir++: the marker that tells readers this is a folder, not a mailbox. */
        char marker[PATH_MAX + 16];
        snprintf(marker, sizeof marker, "%s/maildirfolder", box);
        int mfd = open(marker, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (mfd >= 0)
            close(mfd);
    }

    char host[128];
    if (gethostname(host, sizeof host) < 0)
        str_copy(host, "localhost", sizeof host);
    host[sizeof host - 1] = '\0';
    /* '/' and ':' have meanings in Maildir names; encode them as the spec says. */
    char safe_host[512];
    size_t k = 0;
    for (const char *p = host; *p && k + 5 < sizeof safe_host; p++) {
        if (*p == '/')
            k += (size_t)snprintf(safe_host + k, sizeof safe_host - k, "\\057");
        else if (*p == ':')
            k += (size_t)snprintf(safe_host + k, sizeof safe_host - k, "\\072");
        else
            safe_host[k++] = *p;
    }
    safe_host[k] = '\0';

    struct timeval tv;
    gettimeofday(&tv, NULL);
    char base[700];
    snprintf(base, sizeof base, "%lld.M%06ldP%ldQ%lu.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
             (long)getpid(), ++counter, safe_host);
    snprintf(tmp, sizeof tmp, "%s/tmp/%s", box, base);
    snprintf(final, sizeof final, "%s/new/%s", box, base);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        delivery_set(st, DELIVERY_DEFER, "4.3.0 cannot create %s: %s", tmp, strerror(e));
        return;
    }
    int failed = fd_write_all(fd, prefix, strlen(prefix)) < 0 || copy_lf(msg, fd) < 0 || fsync(fd) < 0;
    int e = errno;
    if (close(fd) < 0 && !failed) {
        failed = 1;
        e = errno;
    }
    if (!failed && rename(tmp, final) < 0) {
        failed = 1;
        e = errno;
    }
    if (failed) {
        unlink(tmp);
        const char *code = e == ENOSPC ? "4.3.1" : e == EDQUOT ? "4.2.2" : "4.3.0";
        delivery_set(st, DELIVERY_DEFER, "%s cannot write %s: %s", code, tmp, strerror(e));
        return;
    }
    /* The rename is only durable once new/ itself is on disk. */
    snprintf(sub, sizeof sub, "%s/new", box);
    int dfd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        e = errno;
        if (dfd >= 0)
            close(dfd);
        delivery_set(st, DELIVERY_DEFER, "4.3.0 cannot sync %s: %s", sub, strerror(e));
        return;
    }
    close(dfd);
    if (delivered)
        str_copy(delivered, final, delivered_sz);
    delivery_set(st, DELIVERY_OK, "2.0.0 delivered to maildir %s", box);
}

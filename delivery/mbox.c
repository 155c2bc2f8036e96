/* mbox — see mbox.h. */
#include "delivery/mbox.h"
#include "lib/crlf.h"
#include "lib/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void mbox_from_line(const char *sender, time_t when, char *out, size_t outsz)
{
    struct tm tm;
    char date[32];
    gmtime_r(&when, &tm);
    strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
    /* A space would end the sender field for every mbox reader. */
    char who[ADDR_PATH_MAX + 1];
    str_copy(who, sender && *sender ? sender : "MAILER-DAEMON", sizeof who);
    for (char *p = who; *p; p++)
        if (*p == ' ' || *p == '\t')
            *p = '_';
    snprintf(out, outsz, "From %s %s\n", who, date);
}

/* The output side: a buffer, and the mboxrd quoting state of the current line. */
struct mbox_out {
    int fd;
    char buf[65536];
    size_t len;
    bool bol;            /* at the beginning of a line */
    unsigned long gts;   /* ">" seen at the start of this line, still undecided */
    size_t matched;      /* octets of "From " matched after them */
    char last;           /* the last octet written, to end the message with LF */
    bool any;
};

static int out_flush(struct mbox_out *o)
{
    size_t off = 0;
    while (off < o->len) {
        ssize_t w = write(o->fd, o->buf + off, o->len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)w;
    }
    o->len = 0;
    return 0;
}

static int out_raw(struct mbox_out *o, char c)
{
    if (o->len == sizeof o->buf && out_flush(o) < 0)
        return -1;
    o->buf[o->len++] = c;
    o->last = c;
    o->any = true;
    return 0;
}

/* Emit the held-back line start: the ">"s and the part of "From " seen. */
static int out_release(struct mbox_out *o, bool quote)
{
    if (quote && out_raw(o, '>') < 0)
        return -1;
    for (unsigned long i = 0; i < o->gts; i++)
        if (out_raw(o, '>') < 0)
            return -1;
    for (size_t i = 0; i < o->matched; i++)
        if (out_raw(o, "From "[i]) < 0)
            return -1;
    o->gts = 0;
    o->matched = 0;
    o->bol = false;
    return 0;
}

/* One octet of LF-convention message text, quoted per mboxrd. The start of a line
   is held back only while it can still become ">*From ". */
static int out_text(struct mbox_out *o, char c)
{
    if (o->bol) {
        if (o->matched == 0 && c == '>') {
            o->gts++;
            return 0;
        }
        if (c == "From "[o->matched]) {
            if (++o->matched == 5)
                return out_release(o, true);
            return 0;
        }
        if (out_release(o, false) < 0)
            return -1;
    }
    if (out_raw(o, c) < 0)
        return -1;
    if (c == '\n')
        o->bol = true;
    return 0;
}

int mbox_write(int fd, const char *from_line, const char *prefix, struct msg_src msg)
{
    static struct mbox_out o;   /* 64 KiB: not on the stack; one delivery at a time */
    memset(&o, 0, sizeof o);
    o.fd = fd;
    for (const char *p = from_line; *p; p++)
        if (out_raw(&o, *p) < 0)
            return -1;
    o.bol = true;
    for (const char *p = prefix; *p; p++)
        if (out_text(&o, *p) < 0)
            return -1;
    static char in[65536 + 1];   /* likewise */
    struct crlf_reader rd = CRLF_READER(msg.size);
    ssize_t n;
    while ((n = crlf_read(msg.fd, &rd, in, sizeof in)) > 0)
        for (ssize_t i = 0; i < n; i++)
            if (out_text(&o, in[i]) < 0)
                return -1;
    if (n < 0)
        return -1;
    if (o.bol && out_release(&o, false) < 0)
        return -1;
    if (o.last != '\n' && out_raw(&o, '\n') < 0)
        return -1;
    if (out_raw(&o, '\n') < 0)
        return -1;
    return out_flush(&o);
}

/* The dotlock: 0 held, -1 with errno (EWOULDBLOCK after wait seconds; 0: one
   try). A stale lock is removed once, and that does not count as a try. */
static int dotlock_take(const char *lock, unsigned wait)
{
    bool removed_stale = false;
    for (unsigned tries = 0;;) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd >= 0) {
            char pid[32];
            int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (write(fd, pid, (size_t)n) < 0) {
                /* the lock holds by existing; its content is a courtesy */
            }
            close(fd);
            return 0;
        }
        if (errno != EEXIST)
            return -1;
        struct stat sb;
        if (!removed_stale && lstat(lock, &sb) == 0 && time(NULL) - sb.st_mtime > MBOX_STALE_LOCK) {
            unlink(lock);
            removed_stale = true;
            continue;
        }
        if (tries++ >= wait * 4)
            break;
        struct timespec ts = { 0, 250 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    errno = EWOULDBLOCK;
    return -1;
}

static int fcntl_lock(int fd, unsigned wait)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    for (unsigned tries = 0;; tries++) {
        if (fcntl(fd, F_SETLK, &fl) == 0)
            return 0;
        if (errno != EACCES && errno != EAGAIN && errno != EINTR)
            return -1;
        if (tries >= wait * 4)
            break;
        struct timespec ts = { 0, 250 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    errno = EWOULDBLOCK;
    return -1;
}

void mbox_deliver(const char *path, const char *sender, const char *prefix, struct msg_src msg,
                  unsigned lock_wait, struct delivery_status *st)
{
    char lock[PATH_MAX + 8];
    if (snprintf(lock, sizeof lock, "%s.lock", path) >= (int)sizeof lock) {
        delivery_set(st, DELIVERY_FAIL, "5.3.5 mbox path too long: %.200s", path);
        return;
    }
    if (dotlock_take(lock, lock_wait) < 0) {
        if (errno == EWOULDBLOCK)
            delivery_set(st, DELIVERY_DEFER, "4.2.0 mailbox %s is locked (%s exists)", path, lock);
        else
            delivery_set_errno(st, errno, "cannot create the lock file %s", lock);
        return;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        delivery_set_errno(st, errno, "cannot open mbox %s", path);
        unlink(lock);
        return;
    }
    struct stat sb;
    if (fcntl_lock(fd, lock_wait) < 0) {
        if (errno == EWOULDBLOCK)
            delivery_set(st, DELIVERY_DEFER, "4.2.0 mailbox %s is locked by another process", path);
        else
            delivery_set_errno(st, errno, "cannot lock mbox %s", path);
        goto out;
    }
    if (fstat(fd, &sb) < 0) {
        delivery_set_errno(st, errno, "cannot stat mbox %s", path);
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        delivery_set(st, DELIVERY_FAIL, "5.3.5 mbox %s is not a regular file", path);
        goto out;
    }
    char from[ADDR_PATH_MAX + 64];
    mbox_from_line(sender, time(NULL), from, sizeof from);
    if (mbox_write(fd, from, prefix, msg) < 0 || fsync(fd) < 0) {
        int e = errno;
        /* Put the file back as it was: a reader must never see half a message,
           and the retry appends the whole message again. */
        if (ftruncate(fd, sb.st_size) < 0 || fsync(fd) < 0)
            delivery_set(st, DELIVERY_DEFER, "4.3.0 cannot write mbox %s (%s) nor restore its size (%s)",
                         path, strerror(e), strerror(errno));
        else
            delivery_set_errno(st, e, "cannot write mbox %s", path);
        goto out;
    }
    delivery_set(st, DELIVERY_OK, "2.0.0 delivered to mbox %s", path);
out:
    close(fd);      /* releases the fcntl lock */
    unlink(lock);
}

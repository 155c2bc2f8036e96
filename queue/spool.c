/* spool — see spool.h. The ordering of fsync, rename and reply is the whole point
   of this file; each step says why it is where it is. */
#include "queue/spool.h"
#include "queue/spool_spare.h"
#include "lib/fdio.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/msgfile.h"
#include "lib/safe_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int path_in(const struct spool *sp, char *out, size_t outsz, const char *sub,
                   const char *id, const char *ext)
{
    int n = snprintf(out, outsz, "%s/%s/%s%s", sp->dir, sub, id, ext);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int spool_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

int spool_prepare(const char *dir, bool do_chown, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    return spool_prepare_mode(dir, do_chown, uid, gid, 0, err, errlen);
}

int spool_prepare_mode(const char *dir, bool do_chown, uid_t uid, gid_t gid, mode_t group_bits, char *err,
                       size_t errlen)
{
    /* Every step through lib/safe_dir: the spool and everything in it belong to
       the daemon's user, who could have put a link where a directory should be;
       root refuses such a thing instead of following it (SECURITY.md). */
    struct safe_owner o = { do_chown, uid, gid };
    /* Others may pass through the spool (0711) only to reach maildrop/, where
       anyone may create a file but not list or touch others' (1733, sticky). */
    int sfd = safe_dir_prepare(dir, 0711 | group_bits, &o, err, errlen);
    if (sfd < 0)
        return -1;
    static const struct { const char *name; mode_t mode; } subs[] = {
        { "incoming", 0700 }, { "queue", 0700 }, { "held", 0700 }, { "corrupt", 0700 }, { "maildrop", 01733 },
        { "spare", 0700 },
    };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char shown[PATH_MAX + 32];
        snprintf(shown, sizeof shown, "%s/%s", dir, subs[i].name);
        mode_t mode = subs[i].mode == 0700 ? subs[i].mode | group_bits : subs[i].mode;
        int fd = safe_dir_make(sfd, subs[i].name, shown, mode, &o, err, errlen);
        if (fd < 0) {
            close(sfd);
            return -1;
        }
        close(fd);
    }
    close(sfd);
    return 0;
}

int spool_open(struct spool *sp, const char *dir, char *err, size_t errlen)
{
    if (str_copy(sp->dir, dir, sizeof sp->dir) >= sizeof sp->dir) {
        snprintf(err, errlen, "spool path too long");
        return -1;
    }
    sp->spare = NULL;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/queue", dir);
    sp->queue_dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->queue_dirfd < 0) {
        snprintf(err, errlen, "cannot open spool %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void spool_close(struct spool *sp)
{
    if (sp->queue_dirfd >= 0)
        close(sp->queue_dirfd);
    sp->queue_dirfd = -1;
    spare_taker_free(sp->spare);
    sp->spare = NULL;
}

void spool_take_spares(struct spool *sp)
{
    if (!sp->spare)
        sp->spare = spare_taker_new(sp->dir);
}

int spool_clean_incoming(const struct spool *sp)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/incoming", sp->dir);
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    int n = fd_dir_unlink_all(dfd);
    close(dfd);
    return n;
}

int spool_draft_new(struct spool *sp, struct spool_draft *d)
{
    char path[PATH_MAX + 64];
    d->has_env = false;
    for (int tries = 0; tries < 100; tries++) {
        qid_new(d->id);
        if (path_in(sp, path, sizeof path, "incoming", d->id, ".msg") < 0)
            return -1;
        /* A delivered message's emptied file first: no inode to create (issue 16). */
        if (sp->spare && (d->msg_fd = spare_take(sp->spare, d->id)) >= 0)
            return 0;
        d->msg_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
        if (d->msg_fd >= 0)
            return 0;
        if (errno != EEXIST)
            return -1;
    }
    errno = EEXIST;
    return -1;
}

int spool_draft_put_env(struct spool *sp, struct spool_draft *d, const struct envelope *e)
{
    /* Format 2 (lib/msgfile.h): the envelope and its trailer go behind the
       message in the same file, one inode and one fsync per message instead of
       two (issue 16: every inode created costs ext4 a scan of the recently
       freed ones). The message must be exactly e->size octets by now: anything
       written after this (a prepend) would move the envelope from where the
       trailer says it is. */
    struct stat st;
    if (fstat(d->msg_fd, &st) < 0)
        return -1;
    if ((unsigned long long)st.st_size != e->size || strcmp(e->id, d->id) != 0) {
        errno = EINVAL;
        return -1;
    }
    struct buf b;
    buf_init(&b, ENV_MAX_SIZE + MSGFILE_TRAILER_LEN + 1);
    char trailer[MSGFILE_TRAILER_LEN + 1];
    if (env_serialize(e, &b) < 0 || msgfile_trailer_format(trailer, sizeof trailer, d->id, e->size, b.len) < 0 ||
        buf_append(&b, trailer, MSGFILE_TRAILER_LEN) < 0) {
        buf_free(&b);
        errno = EFBIG;
        return -1;
    }
    int r = lseek(d->msg_fd, (off_t)e->size, SEEK_SET) < 0 ? -1 : fd_write_all(d->msg_fd, b.data, b.len);
    int saved = errno;
    buf_free(&b);
    if (r == 0)
        d->has_env = true;
    errno = saved;
    return r;
}

void spool_draft_abort(struct spool *sp, struct spool_draft *d)
{
    char path[PATH_MAX + 64];
    if (d->msg_fd >= 0)
        close(d->msg_fd);
    d->msg_fd = -1;
    d->has_env = false;
    if (!d->id[0])
        return;
    path_in(sp, path, sizeof path, "incoming", d->id, ".msg");
    unlink(path);
    d->id[0] = '\0';
}

int spool_draft_prepend(struct spool *sp, struct spool_draft *d, const char *hdr, size_t len)
{
    if (d->has_env) {       /* the trailer would point into the moved message */
        errno = EINVAL;
        return -1;
    }
    char tmp[PATH_MAX + 64], final[PATH_MAX + 64];
    path_in(sp, tmp, sizeof tmp, "incoming", d->id, ".pre");
    path_in(sp, final, sizeof final, "incoming", d->id, ".msg");
    /* The draft's descriptor is write-only: read the message through its name. */
    int src = open(final, O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0660);
    if (fd < 0) {
        int saved = errno;
        close(src);
        errno = saved;
        return -1;
    }
    off_t in_off = 0;
    if (fd_write_all(fd, hdr, len) < 0)
        goto fail;
    /* The copy stays in the kernel (copy_file_range), and the old file is unlinked
       before it was ever fsync'd, so most of it never reaches the disk twice. */
    for (;;) {
        ssize_t n = copy_file_range(src, &in_off, fd, NULL, 1 << 20, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        if (n == 0)
            break;
    }
    if (rename(tmp, final) < 0)
        goto fail;
    close(src);
    close(d->msg_fd);
    d->msg_fd = fd;
    return 0;
fail:;
    int saved = errno;
    close(src);
    close(fd);
    unlink(tmp);
    errno = saved;
    return -1;
}

int spool_enqueue(struct spool *sp, struct envelope *e, const char *msg, size_t len)
{
    struct spool_draft d, *dp = &d;
    if (spool_draft_new(sp, &d) < 0)
        return -1;
    str_copy(e->id, d.id, sizeof e->id);
    e->size = len;
    if (fd_write_all(d.msg_fd, msg, len) < 0 || spool_draft_put_env(sp, &d, e) < 0) {
        int saved = errno;
        spool_draft_abort(sp, &d);
        errno = saved;
        return -1;
    }
    return spool_commit(sp, &dp, 1);    /* aborts the draft itself on failure */
}

static int move_into_queue(struct spool *sp, const char *id, const char *ext)
{
    char from[PATH_MAX + 64], to[PATH_MAX + 64];
    path_in(sp, from, sizeof from, "incoming", id, ext);
    path_in(sp, to, sizeof to, "queue", id, ext);
    return rename(from, to);
}

void spool_commit_begin(struct spool_draft **drafts, size_t n)
{
    /* Start the writeback of every file of the batch before waiting for any
       (issue 16). fsync on each file in turn otherwise writes one file, commits
       the journal, then finds the next file's blocks freshly allocated and
       commits again; with all of them under way first, block allocation for the
       whole batch lands in one journal commit and the fsyncs mostly wait for I/O
       already in flight. An optimisation only: every file is still fsync'd
       before it is named in queue/, so the promise does not depend on it (errors
       are ignored here and reported by fsync). */
    for (size_t i = 0; i < n; i++)
        sync_file_range(drafts[i]->msg_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

int spool_draft_sync_file(const struct spool_draft *d, unsigned which)
{
    if (which >= SPOOL_DRAFT_FILES || d->msg_fd < 0 || !d->has_env) {
        errno = EINVAL;     /* no envelope was written: nothing to commit */
        return -1;
    }
    return fsync(d->msg_fd);
}

void spool_commit_abort(struct spool *sp, struct spool_draft **drafts, size_t n)
{
    for (size_t k = 0; k < n; k++)
        spool_draft_abort(sp, drafts[k]);
}

int spool_commit_publish(struct spool *sp, struct spool_draft **drafts, size_t n)
{
    int saved = 0;
    size_t i;
    /* One rename per draft: the file holds message, envelope and trailer, and
       its name in queue/ is the commit mark. The caller has fsync'd every
       draft's file: the bytes are on disk before any name in queue/ points at
       them. */
    for (i = 0; i < n; i++) {
        if (!drafts[i]->has_env) {
            saved = EINVAL;
            goto fail_renamed;
        }
        if (move_into_queue(sp, drafts[i]->id, ".msg") < 0) {
            saved = errno;
            goto fail_renamed;
        }
    }
    /* One directory fsync makes every rename of the batch durable; only now may
       the callers say 250. */
    if (fsync(sp->queue_dirfd) < 0) {
        saved = errno;
        i = n;
        goto fail_renamed;
    }
    for (i = 0; i < n; i++) {
        close(drafts[i]->msg_fd);
        drafts[i]->msg_fd = -1;
        drafts[i]->has_env = false;
    }
    return 0;

fail_renamed:
    /* Not acknowledged: take back what was renamed. */
    for (size_t k = 0; k < i && k < n; k++) {
        char path[PATH_MAX + 64];
        path_in(sp, path, sizeof path, "queue", drafts[k]->id, ".msg");
        unlink(path);
    }
    spool_commit_abort(sp, drafts, n);
    errno = saved;
    return -1;
}

int spool_commit(struct spool *sp, struct spool_draft **drafts, size_t n)
{
    spool_commit_begin(drafts, n);
    /* Data first, one file after another in this thread (the smtp process's
       sessions use smtpd/smtp_commit.c, which runs these fsyncs in parallel). */
    for (size_t i = 0; i < n; i++) {
        for (unsigned f = 0; f < SPOOL_DRAFT_FILES; f++) {
            if (spool_draft_sync_file(drafts[i], f) < 0) {
                int saved = errno;
                spool_commit_abort(sp, drafts, n);
                errno = saved;
                return -1;
            }
        }
    }
    return spool_commit_publish(sp, drafts, n);
}

/* The envelope inside dirfd/ID.msg (format 2, lib/msgfile.h). -1 with errno
   ENOENT and *corrupt false when the file is missing or has no trailer (a
   format-1 message whose ID.env is gone: never acknowledged, or delivered). */
static int read_embedded(int dirfd, const char *id, struct envelope *e, bool *corrupt, char *err, size_t errlen)
{
    char name[QID_LEN + 8];
    snprintf(name, sizeof name, "%s.msg", id);
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read %s.env: %s", id, strerror(errno));
        return -1;
    }
    unsigned long long fsize, off;
    unsigned long len;
    int t = msgfile_trailer_read(fd, id, &fsize, &off, &len);
    if (t != 1) {
        int saved = t < 0 ? errno : ENOENT;
        close(fd);
        if (t == 2) {
            snprintf(err, errlen, "%s ends in a damaged envelope trailer", name);
            *corrupt = true;
        } else {
            snprintf(err, errlen, "cannot read %s.env: %s", id,
                     t < 0 ? strerror(saved) : "no such file, and no envelope inside the message file");
        }
        errno = saved;
        return -1;
    }
    /* len <= ENV_MAX_SIZE: msgfile_trailer_parse checked it. */
    char *data = malloc((size_t)len + 1);
    ssize_t got = data ? pread(fd, data, len, (off_t)off) : -1;
    int saved = errno;
    close(fd);
    if (got != (ssize_t)len) {
        free(data);
        snprintf(err, errlen, "cannot read the envelope inside %s: %s", name,
                 got < 0 ? strerror(saved) : "short read");
        errno = got < 0 ? saved : EIO;
        return -1;
    }
    data[len] = '\0';
    char why[200];
    int r = env_parse(data, len, e, why, sizeof why);
    free(data);
    if (r < 0) {
        snprintf(err, errlen, "envelope inside %s: %s", name, why);
        *corrupt = true;
        return -1;
    }
    if (strcmp(e->id, id) != 0 || e->size != off) {
        snprintf(err, errlen, "envelope inside %s names queue ID %s and %llu octets, its trailer %llu", name,
                 e->id, e->size, off);
        env_free(e);
        *corrupt = true;
        return -1;
    }
    e->spool_embedded = true;
    return 0;
}

int spool_env_read_at(int dirfd, const char *id, struct envelope *e, bool *corrupt, char *err, size_t errlen)
{
    char name[QID_LEN + 8];
    char *data;
    size_t len;
    *corrupt = false;
    snprintf(name, sizeof name, "%s.env", id);
    if (fd_read_file(dirfd, name, ENV_MAX_SIZE, &data, &len) < 0) {
        if (errno == ENOENT)        /* format 2: the envelope is inside ID.msg */
            return read_embedded(dirfd, id, e, corrupt, err, errlen);
        *corrupt = errno == EFBIG;
        snprintf(err, errlen, "cannot read %s: %s", name, strerror(errno));
        return -1;
    }
    int r = env_parse(data, len, e, err, errlen);
    free(data);
    if (r < 0) {
        *corrupt = true;
        return -1;
    }
    if (strcmp(e->id, id) != 0) {
        snprintf(err, errlen, "envelope names queue ID %s, file is %s", e->id, id);
        env_free(e);
        *corrupt = true;
        return -1;
    }
    /* ID.env supersedes an envelope inside ID.msg, which spool_env_write cuts
       off once ID.env is durable; a crash in between leaves ID.msg longer, with
       a trailer that must then name exactly the message's end. */
    struct stat st;
    snprintf(name, sizeof name, "%s.msg", id);
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int missing = fd < 0 || fstat(fd, &st) < 0;     /* errno is stale when it succeeds */
    bool ok = !missing && (unsigned long long)st.st_size == e->size;
    if (!missing && !ok && (unsigned long long)st.st_size > e->size) {
        unsigned long long fsize, off;
        unsigned long tlen;
        ok = msgfile_trailer_read(fd, id, &fsize, &off, &tlen) == 1 && off == e->size;
    }
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (!ok) {
        snprintf(err, errlen, "message file %s %s", name,
                 missing ? (saved == ENOENT ? "is missing" : strerror(saved)) : "has the wrong size (torn)");
        env_free(e);
        *corrupt = true;
        return -1;
    }
    return 0;
}

int spool_env_read_listed(const struct spool *sp, const char *id, unsigned files, struct envelope *e,
                          bool *corrupt, char *err, size_t errlen)
{
    *corrupt = false;
    if (!(files & SPOOL_HAS_ENV)) {
        /* No ID.env was listed: skip the lookup of a name that is not there,
           which on a 100 000-entry directory is a hashed search of its blocks
           (no cached negative entry) and was a sixth of a start's time. Only
           the queue process writes ID.env (or ferryctl, while holding
           queue.lock, which the queue process holds for its life), so none can
           have appeared between the listing and this read. */
        if (read_embedded(sp->queue_dirfd, id, e, corrupt, err, errlen) == 0)
            return 0;
        if (*corrupt || errno != ENOENT)
            return -1;
        /* No trailer: a stray, or format 1 after all; the full read says which. */
    }
    return spool_env_read_at(sp->queue_dirfd, id, e, corrupt, err, errlen);
}

int spool_env_read(const struct spool *sp, const char *id, struct envelope *e,
                   bool *corrupt, char *err, size_t errlen)
{
    return spool_env_read_at(sp->queue_dirfd, id, e, corrupt, err, errlen);
}

/* Once ID.env is durable, cut ID.msg back to the message alone (format 1), so
   the envelope inside it can never come back: a lone ID.msg is then a stray
   again, as after any removal. The file is the smtp process's (group-writable
   under privilege separation: spool_prepare_mode). */
static int cut_embedded(int dirfd, const struct envelope *e)
{
    char name[QID_LEN + 8];
    snprintf(name, sizeof name, "%s.msg", e->id);
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -1;       /* the size check at load speaks for a missing one */
    if ((unsigned long long)st.st_size <= e->size)
        return 0;
    int fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = ftruncate(fd, (off_t)e->size) < 0 || fsync(fd) < 0 ? -1 : 0;
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

int spool_env_write_at(int dirfd, const struct envelope *e)
{
    char tmp[QID_LEN + 16], final[QID_LEN + 8];
    snprintf(tmp, sizeof tmp, "%s.env.tmp", e->id);
    snprintf(final, sizeof final, "%s.env", e->id);
    struct buf b;
    buf_init(&b, ENV_MAX_SIZE);
    if (env_serialize(e, &b) < 0) {
        buf_free(&b);
        errno = EFBIG;
        return -1;
    }
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0660);
    int r = -1, saved;
    if (fd >= 0) {
        /* Temp file, fsync, rename, directory fsync: a crash leaves the old or the
           new envelope, never a mix. */
        r = fd_write_all(fd, b.data, b.len) < 0 || fsync(fd) < 0 ? -1 : 0;
        saved = errno;
        close(fd);
        if (r == 0 && renameat(dirfd, tmp, dirfd, final) < 0)
            r = -1, saved = errno;
        if (r == 0 && fsync(dirfd) < 0)
            r = -1, saved = errno;
        if (r < 0)
            unlinkat(dirfd, tmp, 0);
        if (r == 0 && cut_embedded(dirfd, e) < 0)
            r = -1, saved = errno;
    } else {
        saved = errno;
    }
    buf_free(&b);
    errno = saved;
    return r;
}

int spool_env_write(struct spool *sp, const struct envelope *e)
{
    return spool_env_write_at(sp->queue_dirfd, e);
}

int spool_msg_open(const struct spool *sp, const char *id)
{
    char name[QID_LEN + 8];
    snprintf(name, sizeof name, "%s.msg", id);
    return openat(sp->queue_dirfd, name, O_RDONLY | O_CLOEXEC);
}

/* The unlinks of spool_remove_at, without the directory fsync. */
static int unlink_pair(int dirfd, const char *id)
{
    char name[QID_LEN + 8];
    /* Envelope first: once it is gone the message is no longer queued; a leftover
       .msg is removed by the queue process's next start (its first scan). */
    snprintf(name, sizeof name, "%s.env", id);
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
        return -1;
    snprintf(name, sizeof name, "%s.msg", id);
    unlinkat(dirfd, name, 0);
    return 0;
}

int spool_remove_at(int dirfd, const char *id)
{
    return unlink_pair(dirfd, id) < 0 ? -1 : fsync(dirfd);
}

int spool_remove_unsynced(struct spool *sp, const char *id, bool env_inside)
{
    if (!env_inside)
        return unlink_pair(sp->queue_dirfd, id);
    /* No ID.env to take first: one unlink removes the message whole. */
    char name[QID_LEN + 8];
    snprintf(name, sizeof name, "%s.msg", id);
    return unlinkat(sp->queue_dirfd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
}

int spool_remove(struct spool *sp, const char *id)
{
    return spool_remove_at(sp->queue_dirfd, id);
}

int spool_create_new(int dirfd, const char *name, bool replace)
{
    if (replace && unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
        return -1;
    return openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
}

int spool_write_reason(int dirfd, const char *name, const char *text, bool replace)
{
    int fd = spool_create_new(dirfd, name, replace);
    if (fd < 0)
        return -1;
    int r = fd_write_all(fd, text, strlen(text)) < 0 || fd_write_all(fd, "\n", 1) < 0 ? -1 : 0;
    int saved = errno;
    if (close(fd) < 0 && r == 0)
        r = -1, saved = errno;
    errno = saved;
    return r;
}

int spool_quarantine(struct spool *sp, const char *id, const char *reason)
{
    char from[PATH_MAX + 64], to[PATH_MAX + 64];
    int moved = 0;
    static const char *const exts[] = { ".env", ".msg" };
    for (int i = 0; i < 2; i++) {
        path_in(sp, from, sizeof from, "queue", id, exts[i]);
        path_in(sp, to, sizeof to, "corrupt", id, exts[i]);
        if (rename(from, to) == 0)
            moved++;
    }
    char dir[PATH_MAX + 16], name[QID_LEN + 16];
    snprintf(dir, sizeof dir, "%s/corrupt", sp->dir);
    snprintf(name, sizeof name, "%s.reason", id);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd >= 0) {
        spool_write_reason(dfd, name, reason, true);
        fsync(dfd);
        close(dfd);
    }
    fsync(sp->queue_dirfd);
    return moved ? 0 : -1;
}

/* Does dirfd/name end in a trailer (format 2)? 1 yes, 2 a damaged one (for the
   loader to quarantine), 0 no, -1 cannot tell. */
static int has_trailer(int dirfd, const char *name, const char *id)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    unsigned long long fsize, off;
    unsigned long len;
    int t = msgfile_trailer_read(fd, id, &fsize, &off, &len);
    close(fd);
    return t;
}

bool spool_queued(const struct spool *sp, const char *id)
{
    char name[QID_LEN + 8];
    snprintf(name, sizeof name, "%s.env", id);
    if (faccessat(sp->queue_dirfd, name, F_OK, 0) == 0)
        return true;
    snprintf(name, sizeof name, "%s.msg", id);
    return has_trailer(sp->queue_dirfd, name, id) > 0;
}

/* What scan does with an ID.msg that has no ID.env. */
enum scan_look {
    SCAN_LOOK,          /* open it: visited only when it ends in a trailer (format 2) */
    SCAN_LOOK_CLEAN,    /* the same, and one without a trailer is unlinked, as are *.tmp */
    SCAN_NO_LOOK,       /* visit it unopened: the caller's envelope read decides */
};

struct scan_entry {
    char id[QID_LEN + 1];
    /* SPOOL_HAS_ENV | SPOOL_HAS_MSG, as listed; complete only for
       SCAN_NO_LOOK (the looking scans do not need it). */
    unsigned char files;
};

static int cmp_entry(const void *a, const void *b)
{
    return memcmp(((const struct scan_entry *)a)->id, ((const struct scan_entry *)b)->id, QID_LEN);
}

static int scan(int dirfd, enum scan_look look, spool_files_fn fn, void *arg)
{
    DIR *d = fd_dir_listing(dirfd);
    if (!d)
        return -1;
    struct scan_entry *ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        if (name[0] == '.')
            continue;
        char id[QID_LEN + 1];
        bool visit = false;
        unsigned char files = SPOOL_HAS_MSG;
        if (len == QID_LEN + 4 && !strcmp(name + QID_LEN, ".env")) {
            str_copyn(id, name, QID_LEN, sizeof id);
            visit = qid_valid(id);
            files = SPOOL_HAS_ENV;
        } else if (len == QID_LEN + 4 && !strcmp(name + QID_LEN, ".msg")) {
            char env[QID_LEN + 8];
            str_copyn(id, name, QID_LEN, sizeof id);
            snprintf(env, sizeof env, "%s.env", id);
            if (!qid_valid(id)) {
                continue;
            } else if (look == SCAN_NO_LOOK) {
                /* Issue 16: opening 100 000 messages here and again in the
                   envelope read cost start-up 0.5 s. An ID with both files is
                   listed twice and visited once (below). */
                visit = true;
            } else if (faccessat(dirfd, env, F_OK, 0) == 0 || errno != ENOENT) {
                continue;       /* visited by its ID.env */
            } else {
                int t = has_trailer(dirfd, name, id);
                if (t == 0 && look == SCAN_LOOK_CLEAN) {
                    log_msg(LOG_LVL_INFO, id, "removing message file without envelope "
                            "(never acknowledged, or already delivered)");
                    unlinkat(dirfd, name, 0);
                }
                visit = t > 0;  /* format 2: the envelope is inside (or a damaged trailer says it was) */
            }
        } else if (look == SCAN_LOOK_CLEAN && len > 4 && !strcmp(name + len - 4, ".tmp")) {
            unlinkat(dirfd, name, 0);
        }
        if (!visit)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            struct scan_entry *p = realloc(ids, cap * sizeof *p);
            if (!p)
                break;
            ids = p;
        }
        memcpy(ids[n].id, id, sizeof id);
        ids[n].files = files;
        n++;
    }
    closedir(d);
    if (n > 1)      /* qsort(NULL, 0, ...) is undefined, and an empty queue has ids == NULL */
        qsort(ids, n, sizeof *ids, cmp_entry);
    /* An ID listed twice (its ID.env and ID.msg; or its ID.env written while the
       directory was read) is visited once, with both files noted. */
    size_t visited = 0;
    for (size_t i = 0; i < n; ) {
        size_t j = i + 1;
        unsigned files = ids[i].files;
        for (; j < n && !cmp_entry(&ids[i], &ids[j]); j++)
            files |= ids[j].files;
        if (fn)
            fn(ids[i].id, files, arg);
        visited++;
        i = j;
    }
    free(ids);
    return (int)visited;
}

struct plain_visit {
    spool_visit_fn fn;
    void *arg;
};

static void visit_plain(const char *id, unsigned files, void *arg)
{
    const struct plain_visit *pv = arg;
    if (pv->fn)
        pv->fn(id, pv->arg);
}

int spool_scan_at(int dirfd, bool clean_strays, spool_visit_fn fn, void *arg)
{
    struct plain_visit pv = { fn, arg };
    return scan(dirfd, clean_strays ? SCAN_LOOK_CLEAN : SCAN_LOOK, visit_plain, &pv);
}

int spool_scan(struct spool *sp, bool clean_strays, spool_visit_fn fn, void *arg)
{
    return spool_scan_at(sp->queue_dirfd, clean_strays, fn, arg);
}

int spool_scan_unopened(struct spool *sp, spool_files_fn fn, void *arg)
{
    return scan(sp->queue_dirfd, SCAN_NO_LOOK, fn, arg);
}

int spool_remove_stray(struct spool *sp, const char *id)
{
    char name[QID_LEN + 8];
    snprintf(name, sizeof name, "%s.env", id);
    if (faccessat(sp->queue_dirfd, name, F_OK, 0) == 0 || errno != ENOENT)
        return 0;
    snprintf(name, sizeof name, "%s.msg", id);
    if (has_trailer(sp->queue_dirfd, name, id) != 0)
        return 0;       /* an envelope inside after all, a damaged one (the loader's), or gone */
    if (unlinkat(sp->queue_dirfd, name, 0) < 0)
        return errno == ENOENT ? 0 : -1;
    log_msg(LOG_LVL_INFO, id, "removing message file without envelope (never acknowledged, or already delivered)");
    return 1;
}

int spool_remove_temps(const struct spool *sp)
{
    DIR *d = fd_dir_listing(sp->queue_dirfd);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] != '.' && len > 4 && !strcmp(de->d_name + len - 4, ".tmp") &&
            unlinkat(sp->queue_dirfd, de->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* spool_spare — see spool_spare.h. Every step that could hand one message's file
   to another's reader is guarded by the lease; every failure falls back to the
   unlink or the create Ferry always did. */
#include "queue/spool_spare.h"
#include "lib/fdio.h"
#include "lib/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int open_sub(const char *spool_dir, const char *sub)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", spool_dir, sub) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* A spare/ name: a queue ID, hidden (".ID") while it waits for publish. */
static bool spare_name(const char *name, bool *hidden)
{
    *hidden = name[0] == '.';
    return qid_valid(name + *hidden);
}

/* Visit spare/'s files: count them, and unlink the hidden ones when asked. */
static long list_spare(int dirfd, bool drop_hidden)
{
    DIR *d = fd_dir_listing(dirfd);
    if (!d)
        return -1;
    long n = 0;
    struct dirent *de;
    bool hidden;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (spare_name(de->d_name, &hidden) && hidden && drop_hidden && unlinkat(dirfd, de->d_name, 0) == 0)
            continue;
        n++;
    }
    closedir(d);
    return n;
}

int spare_pool_open(struct spare_pool *p, const char *spool_dir, int queue_dirfd)
{
    memset(p, 0, sizeof *p);
    p->queue_dirfd = queue_dirfd;
    p->dirfd = open_sub(spool_dir, "spare");
    if (p->dirfd < 0) {
        log_warn("delivered messages' files are unlinked, not reused: cannot open %s/spare: %s", spool_dir,
                 strerror(errno));
        return -1;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    long n = list_spare(p->dirfd, true);
    p->count = n < 0 ? SPARE_MAX : (size_t)n;
    return 0;
}

/* Empty a retired file; false: it is not one to reuse (unlink it). */
static bool empty_file(int dirfd, const char *hidden)
{
    int fd = openat(dirfd, hidden, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 && ftruncate(fd, 0) == 0;
    close(fd);
    return ok;
}

/* One batch: fsync queue/ first (the renames out of it are done, and the
   removals must be durable before any file is offered again; done first, they
   are not held back behind the truncations), then empty (or unlink) each file
   and publish the emptied ones. */
static void dispose(struct spare_pool *p, char (*ids)[QID_LEN + 1], size_t n)
{
    char hidden[QID_LEN + 2];
    bool synced = fsync(p->queue_dirfd) == 0;
    if (!synced) {
        pthread_mutex_lock(&p->mu);
        p->sync_errno = errno;
        pthread_mutex_unlock(&p->mu);
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(hidden, sizeof hidden, ".%s", ids[i]);
        if (++p->since_count >= SPARE_MAX / 4) {
            long c = list_spare(p->dirfd, false);
            p->count = c < 0 ? SPARE_MAX : (size_t)c;
            p->since_count = 0;
        }
        /* Should the fsync have failed, reuse nothing. */
        if (synced && p->count < SPARE_MAX && empty_file(p->dirfd, hidden) &&
            renameat(p->dirfd, hidden, p->dirfd, ids[i]) == 0)
            p->count++;
        else
            unlinkat(p->dirfd, hidden, 0);
    }
}

static void *disposer(void *arg)
{
    struct spare_pool *p = arg;
    char batch[256][QID_LEN + 1];
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->len && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (!p->len)
            break;
        size_t n = 0;
        while (p->len && n < sizeof batch / sizeof batch[0]) {
            memcpy(batch[n++], p->ring[p->head], QID_LEN + 1);
            p->head = (p->head + 1) % SPARE_RING;
            p->len--;
        }
        pthread_mutex_unlock(&p->mu);
        dispose(p, batch, n);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

void spare_pool_close(struct spare_pool *p)
{
    if (p->dirfd < 0)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        p->started = false;
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    close(p->dirfd);
    p->dirfd = -1;
}

static bool start_thread(struct spare_pool *p)
{
    /* Started lazily and with every signal blocked, as the smtp process's
       flusher threads are: signals stay the loop's. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&p->thread, NULL, disposer, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        log_warn("delivered messages' files are unlinked, not reused: cannot start a thread: %s", strerror(r));
        pthread_mutex_destroy(&p->mu);      /* spare_pool_close skips a pool without dirfd */
        pthread_cond_destroy(&p->cv);
        close(p->dirfd);
        p->dirfd = -1;
        return false;
    }
    p->started = true;
    return true;
}

int spare_retire(struct spare_pool *p, const char *id)
{
    if (p->dirfd < 0 || (!p->started && !start_thread(p)))
        return 0;
    pthread_mutex_lock(&p->mu);
    size_t len = p->len;
    int sync_errno = p->sync_errno;
    p->sync_errno = 0;
    pthread_mutex_unlock(&p->mu);
    if (sync_errno)
        log_error("cannot fsync the queue directory after removals: %s", strerror(sync_errno));
    if (len >= SPARE_RING)
        return 0;
    char name[QID_LEN + 8], hidden[QID_LEN + 2];
    snprintf(name, sizeof name, "%s.msg", id);
    snprintf(hidden, sizeof hidden, ".%s", id);
    if (renameat(p->queue_dirfd, name, p->dirfd, hidden) < 0)
        return 0;
    /* Only this thread adds, so the place seen above is still free. */
    pthread_mutex_lock(&p->mu);
    memcpy(p->ring[(p->head + p->len) % SPARE_RING], id, QID_LEN + 1);
    p->len++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 1;
}

struct spare_taker *spare_taker_new(const char *spool_dir)
{
    struct spare_taker *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->umask = umask(0);
    umask(t->umask);
    t->dirfd = open_sub(spool_dir, "spare");
    t->incoming_dirfd = open_sub(spool_dir, "incoming");
    if (t->dirfd < 0 || t->incoming_dirfd < 0) {
        spare_taker_free(t);
        return NULL;
    }
    return t;
}

void spare_taker_free(struct spare_taker *t)
{
    if (!t)
        return;
    if (t->dirfd >= 0)
        close(t->dirfd);
    if (t->incoming_dirfd >= 0)
        close(t->incoming_dirfd);
    free(t);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read up to SPARE_TAKE_BATCH published names. When there were none, drafts
   create their files without looking for the next 20 ms: intake with nothing
   delivered yet would otherwise list an empty directory per message, and a
   quiet server still finds the files its last deliveries left. */
static void refill(struct spare_taker *t)
{
    t->n = t->next = 0;
    if (t->idle_until && now_ms() < t->idle_until)
        return;
    t->idle_until = 0;
    DIR *d = fd_dir_listing(t->dirfd);
    if (!d)
        return;
    struct dirent *de;
    bool hidden;
    while (t->n < SPARE_TAKE_BATCH && (de = readdir(d)) != NULL)
        if (spare_name(de->d_name, &hidden) && !hidden)
            memcpy(t->names[t->n++], de->d_name, QID_LEN + 1);
    closedir(d);
    if (t->n == 0)
        t->idle_until = now_ms() + 20;
}

/* Stop taking for ms: after a failure that may pass (a rename refused for a
   reason other than the ID being taken, a lease refused for want of memory), so
   that every draft does not pay for it, and a lasting one costs a try a second. */
static void pause_taking(struct spare_taker *t, const char *what, int err)
{
    long long now = now_ms();
    if (now >= t->warned_until) {
        log_warn("new messages' files are created, not reused, for a while: %s: %s", what, strerror(err));
        t->warned_until = now + 60 * 1000;
    }
    t->n = t->next = 0;
    t->idle_until = now + SPARE_PAUSE_MS;
}

/* Whether fd is the only open file of its inode: the kernel grants a write lease
   only then, and an open made while the lease is held breaks it (F_GETLEASE
   then says so), so a reader of the delivered message that still holds it, or
   that looked its old name up and opens only now, is seen. The lease is held
   for these few calls; a breaker waits until it is released. 1 yes, 0 no, -1
   leases refused here (not the owner, a filesystem without them). */
static int sole_opener(int fd)
{
    if (fcntl(fd, F_SETLEASE, F_WRLCK) < 0)
        return errno == EAGAIN || errno == EBUSY ? 0 : -1;
    int held = fcntl(fd, F_GETLEASE);
    fcntl(fd, F_SETLEASE, F_UNLCK);
    return held == F_WRLCK;
}

int spare_take(struct spare_taker *t, const char *id)
{
    if (t->dirfd < 0)
        return -1;
    char name[QID_LEN + 8];
    snprintf(name, sizeof name, "%s.msg", id);
    /* Bounded: a refused spare is unlinked, but a listing is not re-read more
       than twice for one draft whatever the directory holds. */
    for (int refills = 0;;) {
        if (t->next >= t->n) {
            if (refills++ == 2)
                return -1;
            refill(t);
            if (t->n == 0)
                return -1;
        }
        const char *spare = t->names[t->next++];
        if (renameat2(t->dirfd, spare, t->incoming_dirfd, name, RENAME_NOREPLACE) < 0) {
            if (errno == ENOENT)
                continue;       /* gone since the listing */
            if (errno == EINVAL) {      /* no RENAME_NOREPLACE on this filesystem */
                log_warn("new messages' files are created, not reused: the spool's filesystem refuses "
                         "RENAME_NOREPLACE");
                close(t->dirfd);
                t->dirfd = -1;
            } else if (errno != EEXIST) {
                pause_taking(t, "cannot rename a file out of spare/", errno);
            }
            return -1;          /* EEXIST: the ID is taken; the create's O_EXCL will say so */
        }
        /* Read-write as a created draft is (spool.h). O_NONBLOCK only for the
           open (a lease would make it wait); I/O on a regular file ignores it. */
        int fd = openat(t->incoming_dirfd, name, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_size == 0 &&
            st.st_uid == geteuid()) {
            int r = sole_opener(fd);
            /* The mode a created file would get now: a reload may have changed
               the umask (one user to two) since this file was created. */
            if (r == 1 && fchmod(fd, 0660 & ~t->umask) == 0)
                return fd;
            if (r < 0) {
                int e = errno;
                close(fd);
                unlinkat(t->incoming_dirfd, name, 0);
                if (e == EINVAL || e == EACCES || e == EPERM) {
                    /* leases off (fs.leases-enable) or not for this filesystem or user: for good */
                    log_warn("new messages' files are created, not reused: no write lease on a spool file: %s",
                             strerror(e));
                    close(t->dirfd);
                    t->dirfd = -1;
                } else {
                    pause_taking(t, "no write lease on a spool file", e);
                }
                return -1;
            }
        }
        if (fd >= 0)
            close(fd);
        unlinkat(t->incoming_dirfd, name, 0);
    }
}

int spare_clean(const char *spool_dir)
{
    int dfd = open_sub(spool_dir, "spare");
    if (dfd < 0)
        return errno == ENOENT ? 0 : -1;
    int n = fd_dir_unlink_all(dfd);
    close(dfd);
    return n;
}

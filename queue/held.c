/* held — see held.h. */
#include "queue/held.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/qid.h"
#include "queue/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_CHUNK 65536

int held_open(struct held_store *h, const char *spool_dir, char *err, size_t errlen)
{
    char path[PATH_MAX];
    h->lockfd = -1;
    snprintf(path, sizeof path, "%s/held", spool_dir);
    h->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (h->dirfd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    h->lockfd = openat(h->dirfd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
    if (h->lockfd < 0) {
        snprintf(err, errlen, "cannot open %s/.lock: %s", path, strerror(errno));
        close(h->dirfd);
        h->dirfd = -1;
        return -1;
    }
    return 0;
}

void held_close(struct held_store *h)
{
    if (!h)
        return;
    if (h->lockfd >= 0)
        close(h->lockfd);
    if (h->dirfd >= 0)
        close(h->dirfd);
    h->lockfd = h->dirfd = -1;
}

static void lock(struct held_store *h)
{
    while (flock(h->lockfd, LOCK_EX) < 0 && errno == EINTR)
        ;
}

static void unlock(struct held_store *h)
{
    flock(h->lockfd, LOCK_UN);
}

/* msg_fd[0..size) into held/name, fsync'd. */
static int copy_message(struct held_store *h, const char *name, int msg_fd, unsigned long long size)
{
    int fd = spool_create_new(h->dirfd, name, true);
    if (fd < 0)
        return -1;
    char *buf = malloc(COPY_CHUNK);
    int r = buf ? 0 : -1;
    unsigned long long off = 0;
    while (r == 0 && off < size) {
        size_t want = size - off < COPY_CHUNK ? (size_t)(size - off) : COPY_CHUNK;
        ssize_t n = pread(msg_fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;     /* the queued message is shorter than its envelope says */
            r = -1;
            break;
        }
        r = fd_write_all(fd, buf, (size_t)n);
        off += (unsigned long long)n;
    }
    if (r == 0)
        r = fsync(fd);
    int saved = errno;
    free(buf);
    close(fd);
    if (r < 0)
        unlinkat(h->dirfd, name, 0);
    errno = saved;
    return r;
}

int held_create(struct held_store *h, struct envelope *e, int msg_fd)
{
    if (!qid_valid(e->id))
        qid_new(e->id);
    char name[QID_LEN + 8];
    snprintf(name, sizeof name, "%s.msg", e->id);
    /* Under the lock: an expiry sweep's stray cleanup (held_expire) would take an
       ID.msg whose .env is not written yet for a leftover and remove it, leaving
       an envelope, and soon an msid, without a message. */
    lock(h);
    int r = copy_message(h, name, msg_fd, e->size);
    /* The envelope is the commit mark: written (and held/ fsync'd) last. */
    if (r == 0 && spool_env_write_at(h->dirfd, e) < 0) {
        int saved = errno;
        unlinkat(h->dirfd, name, 0);
        errno = saved;
        r = -1;
    }
    int saved = errno;
    unlock(h);
    errno = saved;
    return r;
}

int held_read(struct held_store *h, const char *id, struct envelope *e, bool *corrupt, char *err, size_t errlen)
{
    if (!qid_valid(id)) {
        *corrupt = false;
        snprintf(err, errlen, "not a queue ID");
        errno = ENOENT;
        return -1;
    }
    if (spool_env_read_at(h->dirfd, id, e, corrupt, err, errlen) < 0)
        return -1;
    if (!e->pull_msid[0]) {
        snprintf(err, errlen, "held envelope %s has no pull record", id);
        env_free(e);
        *corrupt = true;
        return -1;
    }
    return 0;
}

int held_msg_open(struct held_store *h, const char *id)
{
    char name[QID_LEN + 8];
    if (!qid_valid(id)) {
        errno = ENOENT;
        return -1;
    }
    snprintf(name, sizeof name, "%s.msg", id);
    return openat(h->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
}

int held_remove(struct held_store *h, const char *id)
{
    return spool_remove_at(h->dirfd, id);
}

int held_discard(struct held_store *h, const char *id)
{
    char name[QID_LEN + 8];
    if (!qid_valid(id)) {
        errno = ENOENT;
        return -1;
    }
    snprintf(name, sizeof name, "%s.env", id);      /* the commit mark first, as held_remove */
    if (unlinkat(h->dirfd, name, 0) < 0 && errno != ENOENT)
        return -1;
    snprintf(name, sizeof name, "%s.msg", id);
    unlinkat(h->dirfd, name, 0);
    return 0;
}

long held_rcpt_index(const struct envelope *e, const char *rcpt)
{
    const char *at = strrchr(rcpt, '@');
    size_t local = at ? (size_t)(at - rcpt) : strlen(rcpt);
    for (size_t i = 0; i < e->nrcpts; i++) {
        const char *a = e->rcpts[i].addr;
        const char *aat = strrchr(a, '@');
        size_t alocal = aat ? (size_t)(aat - a) : strlen(a);
        if (alocal == local && !memcmp(a, rcpt, local) && !!at == !!aat && (!at || !strcasecmp(at, aat)))
            return (long)i;
    }
    return -1;
}

int held_mark_pulled(struct held_store *h, const char *id, const char *rcpt, const char *by, time_t now)
{
    struct envelope e;
    bool corrupt;
    char err[256];
    lock(h);
    if (held_read(h, id, &e, &corrupt, err, sizeof err) < 0) {
        unlock(h);
        errno = ENOENT;
        return -1;
    }
    long i = held_rcpt_index(&e, rcpt);
    if (i < 0) {
        env_free(&e);
        unlock(h);
        errno = ENOENT;
        return -1;
    }
    struct env_rcpt *r = &e.rcpts[i];
    r->state = RCPT_DELIVERED;
    r->attempts++;
    r->last_attempt = now;
    snprintf(r->result, sizeof r->result, "2.0.0 pulled by %s", by);
    int rc = env_pending(&e) == 0 ? held_remove(h, id) : spool_env_write_at(h->dirfd, &e);
    int gone = env_pending(&e) == 0;
    env_free(&e);
    unlock(h);
    return rc < 0 ? -1 : gone;
}

int held_scan(struct held_store *h, bool clean_strays, void (*fn)(const char *id, void *arg), void *arg)
{
    return spool_scan_at(h->dirfd, clean_strays, fn, arg);
}

struct expire_ctx {
    struct held_store *h;
    time_t now;
    size_t max, removed;
    int (*fn)(struct envelope *e, int msg_fd, void *arg);
    void *arg;
};

static void expire_one(const char *id, void *arg)
{
    struct expire_ctx *x = arg;
    if (x->removed >= x->max)
        return;
    struct envelope e;
    bool corrupt;
    char err[256];
    if (held_read(x->h, id, &e, &corrupt, err, sizeof err) < 0) {
        if (corrupt)
            log_msg(LOG_LVL_WARN, id, "held message cannot be read: %s (left in held/ for the administrator)", err);
        return;
    }
    if (e.pull_expires <= x->now) {
        size_t never = env_pending(&e);
        /* fn first, while the message is still there: a crash before the removal
           tells again rather than never. */
        if (x->fn) {
            int fd = held_msg_open(x->h, id);
            if (fd < 0 || x->fn(&e, fd, x->arg) < 0)
                log_msg(LOG_LVL_WARN, id, "expired held message: the sender could not be told%s%s",
                        fd < 0 ? ": " : "", fd < 0 ? strerror(errno) : "");
            if (fd >= 0)
                close(fd);
        }
        if (held_remove(x->h, id) == 0) {
            x->removed++;
            log_msg(LOG_LVL_INFO, id, "held message expired: msid=%s rmta=%s not pulled by %zu of %zu recipients",
                    e.pull_msid, e.pull_rmta, never, e.nrcpts);
            env_free(&e);
            return;
        }
        log_msg(LOG_LVL_WARN, id, "cannot remove the expired held message: %s", strerror(errno));
    }
    env_free(&e);
}

int held_expire(struct held_store *h, time_t now, size_t max, int (*fn)(struct envelope *e, int msg_fd, void *arg),
                void *arg)
{
    struct expire_ctx x = { h, now, max, 0, fn, arg };
    /* The whole sweep under the lock: its stray cleanup must not remove the
       .env.tmp of a mark being written by the smtp process. */
    lock(h);
    int r = held_scan(h, true, expire_one, &x);
    unlock(h);
    return r < 0 ? -1 : (int)x.removed;
}

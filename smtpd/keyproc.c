/* keyproc — the key process's side; see keyproc.h. */
#include "smtpd/keyproc.h"
#include "smtpd/dkim_keystore.h"
#include "lib/buf.h"
#include "lib/caps.h"
#include "lib/log.h"
#include "lib/svc_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYPROC_CACHE 32

struct cached_key {
    char domain[256], selector[64];
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    off_t size;
    EVP_PKEY *pkey;
    enum dkim_algo algo;
    unsigned long used;         /* use counter value at the last hit: LRU eviction */
};

static unsigned long use_clock;

static struct cached_key cache[KEYPROC_CACHE];

static void cache_drop(struct cached_key *c)
{
    EVP_PKEY_free(c->pkey);
    memset(c, 0, sizeof *c);
}

/* The key for (domain, selector), read again when its file changed. The file is
   opened without following a link (the domain directory may be writable by the
   smtp user, for rotation) and must be a regular file with one link, owned by
   this process's user (root) and writable by no one else: the smtp user can
   create files in that directory, and a key it planted would have root parse
   attacker-chosen PEM and sign with a key of the attacker's choosing. */
static struct cached_key *load_key(const char *domain, const char *selector, char *err, size_t errsz)
{
    char name[80];
    snprintf(name, sizeof name, "%s.key", selector);
    int dfd = open(domain, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd = dfd < 0 ? -1 : openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (dfd >= 0)
        close(dfd);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        snprintf(err, errsz, "%s/%s: %s", domain, name, fd < 0 ? strerror(errno) : "not a regular file of one link");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        snprintf(err, errsz, "%s/%s: refused: owned by uid %ld (not %ld) or writable by group or others", domain,
                 name, (long)st.st_uid, (long)geteuid());
        close(fd);
        return NULL;
    }
    struct cached_key *free_slot = NULL;
    for (size_t i = 0; i < KEYPROC_CACHE; i++) {
        struct cached_key *c = &cache[i];
        if (!c->pkey) {
            free_slot = free_slot ? free_slot : c;
            continue;
        }
        if (strcmp(c->domain, domain) || strcmp(c->selector, selector))
            continue;
        if (c->dev == st.st_dev && c->ino == st.st_ino && c->size == st.st_size &&
            c->mtime.tv_sec == st.st_mtim.tv_sec && c->mtime.tv_nsec == st.st_mtim.tv_nsec) {
            close(fd);
            c->used = ++use_clock;
            return c;
        }
        cache_drop(c);
        free_slot = c;
        break;
    }
    if (!free_slot) {                   /* full: the least recently used key goes */
        free_slot = &cache[0];
        for (size_t i = 1; i < KEYPROC_CACHE; i++)
            if (cache[i].used < free_slot->used)
                free_slot = &cache[i];
        cache_drop(free_slot);
    }
    char shown[400];
    snprintf(shown, sizeof shown, "%s/%s", domain, name);
    enum dkim_algo algo;
    EVP_PKEY *k = dkim_privkey_load_fd(fd, shown, &algo, err, errsz);
    if (!k)
        return NULL;
    str_copy(free_slot->domain, domain, sizeof free_slot->domain);
    str_copy(free_slot->selector, selector, sizeof free_slot->selector);
    free_slot->dev = st.st_dev;
    free_slot->ino = st.st_ino;
    free_slot->size = st.st_size;
    free_slot->mtime = st.st_mtim;
    free_slot->pkey = k;
    free_slot->algo = algo;
    free_slot->used = ++use_clock;
    return free_slot;
}

/* A one-line file of root's in the domain directory dfd ("next", "active"): no
   link followed, a regular file of one link owned by us. Lines joined by '\n'. */
static int read_small(int dfd, const char *name, char *out, size_t outsz)
{
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != geteuid()) {
        if (fd >= 0) {
            close(fd);
            errno = EPERM;      /* there, but not a file of ours we may trust */
        }
        return -1;
    }
    ssize_t n = read(fd, out, outsz - 1);
    close(fd);
    if (n < 0 || (size_t)n == outsz - 1) {      /* an error, or perhaps cut: never half a list */
        errno = n < 0 ? errno : EFBIG;
        return -1;
    }
    out[n] = '\0';
    return 0;
}

/* Rotation (dkim_keystore.h): the smtp process has seen the TXT record of the
   selector that DIR/<domain>/next names, and asks for the switch. Only the
   selector root's `next` names can be promoted, and only to replace the active
   selector of its own algorithm; `active` is rewritten here (a new file, renamed
   into place) and `next` removed, so the domain directory needs no writer but
   root. The smtp process can at most make that switch early. */
static int promote(const char *domain, const char *selector, char *err, size_t errsz)
{
    char next[128], active[1024], out[1200];
    struct cached_key *k = load_key(domain, selector, err, errsz);
    if (!k)
        return -1;
    enum dkim_algo algo = k->algo;
    int dfd = open(domain, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || read_small(dfd, "next", next, sizeof next) < 0 || strcmp(str_trim(next), selector) != 0) {
        snprintf(err, errsz, "%s/next does not name %s", domain, selector);
        if (dfd >= 0)
            close(dfd);
        return -1;
    }
    /* Only a missing `active` means "none yet". One that is there but cannot be
       trusted (an upgrade left it owned by the smtp user, say) is not taken for
       empty: rewriting it would drop the other algorithm's selector. */
    if (read_small(dfd, "active", active, sizeof active) < 0) {
        if (errno != ENOENT) {
            snprintf(err, errsz, "%s/active cannot be used (%s): make it root's, mode 0644, one link", domain,
                     strerror(errno));
            close(dfd);
            return -1;
        }
        active[0] = '\0';
    }
    size_t o = 0;
    bool replaced = false;
    for (char *save = NULL, *line = strtok_r(active, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *sel = str_trim(line);
        if (!*sel || !strcmp(sel, selector))
            continue;
        struct cached_key *c = dkim_keystore_name_ok(sel) ? load_key(domain, sel, err, errsz) : NULL;
        bool same = c && c->algo == algo && !replaced;
        int n = snprintf(out + o, sizeof out - o, "%s\n", same ? selector : sel);
        replaced |= same;
        if (n < 0 || (size_t)n >= sizeof out - o)
            break;
        o += (size_t)n;
    }
    if (!replaced && o + strlen(selector) + 2 < sizeof out)
        o += (size_t)snprintf(out + o, sizeof out - o, "%s\n", selector);
    unlinkat(dfd, "active.tmp", 0);
    int fd = openat(dfd, "active.tmp", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    bool ok = fd >= 0 && write(fd, out, o) == (ssize_t)o && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok || renameat(dfd, "active.tmp", dfd, "active") < 0) {
        snprintf(err, errsz, "cannot rewrite %s/active: %s", domain, strerror(errno));
        unlinkat(dfd, "active.tmp", 0);
        close(dfd);
        return -1;
    }
    unlinkat(dfd, "next", 0);
    fsync(dfd);
    close(dfd);
    log_info("dkim: %s now signs with selector %s", domain, selector);
    return 0;
}

static void answer(const struct keyproc_req *q, struct keyproc_rep *r)
{
    memset(r, 0, sizeof *r);
    r->id = q->id;
    r->status = -1;
    char err[300];
    if (!memchr(q->domain, '\0', sizeof q->domain) || !memchr(q->selector, '\0', sizeof q->selector) ||
        !dkim_keystore_name_ok(q->domain) || !dkim_keystore_name_ok(q->selector)) {
        snprintf((char *)r->data, sizeof r->data, "malformed request");
        r->len = (uint32_t)strlen((char *)r->data);
        return;
    }
    if (q->op == KEYPROC_PROMOTE) {
        if (promote(q->domain, q->selector, err, sizeof err) == 0)
            r->status = 0;
        else
            snprintf((char *)r->data, sizeof r->data, "%s", err);
        r->len = (uint32_t)strnlen((char *)r->data, sizeof r->data);
        return;
    }
    struct cached_key *c = load_key(q->domain, q->selector, err, sizeof err);
    if (!c) {
        snprintf((char *)r->data, sizeof r->data, "%s", err);
    } else if (q->op == KEYPROC_INFO) {
        r->algo = c->algo;
        if (dkim_record_text(c->pkey, (char *)r->data, sizeof r->data) >= 0)
            r->status = 0;
    } else if (q->op == KEYPROC_SIGN && q->algo == (uint32_t)c->algo) {
        size_t siglen = KEYPROC_SIG_MAX;
        if (dkim_crypto_sign_digest(c->pkey, c->algo, q->digest, r->data, &siglen) == 0) {
            r->status = 0;
            r->algo = c->algo;
            r->len = (uint32_t)siglen;
            return;
        }
        snprintf((char *)r->data, sizeof r->data, "signing failed inside OpenSSL");
    } else {
        snprintf((char *)r->data, sizeof r->data, "the key is not of the algorithm asked for");
    }
    if (r->status == 0 || r->data[0])
        r->len = (uint32_t)strnlen((char *)r->data, sizeof r->data);
    if (r->status < 0)
        log_warn("dkim key %s/%s: %s", q->domain, q->selector, (char *)r->data);
}

/* Confine: only the key directory is visible from here on (when root). */
static int confine(const char *key_dir)
{
    if (chdir(key_dir) < 0) {
        log_error("cannot enter the DKIM key directory %s: %s", key_dir, strerror(errno));
        return -1;
    }
    if (geteuid() == 0 && chroot(".") < 0) {
        log_error("cannot chroot into %s: %s", key_dir, strerror(errno));
        return -1;
    }
    /* Root's uid stays (the keys are root's 0600 files: owner permission is
       enough); every capability goes, for good. */
    char err[256];
    if (caps_drop_all(err, sizeof err) < 0) {
        log_error("%s", err);
        return -1;
    }
    return 0;
}

/* One request in, one answer out; anything that is not a request gets none (the
   client times out). */
static void serve(int fd, void *arg)
{
    struct keyproc_req q;
    struct keyproc_rep r;
    ssize_t n = recv(fd, &q, sizeof q, MSG_DONTWAIT);
    if (n != (ssize_t)sizeof q)
        return;
    answer(&q, &r);
    if (send(fd, &r, sizeof r, MSG_NOSIGNAL | MSG_DONTWAIT) != (ssize_t)sizeof r)
        log_warn("cannot answer the smtp process: %s", strerror(errno));
}

int keyproc_main(const char *key_dir, int parent_fd, int fd)
{
    if (confine(key_dir) < 0)
        return 1;
    log_info("key process ready (keys in %s)", key_dir);
    int rc = svc_loop(parent_fd, fd, serve, NULL);
    for (size_t i = 0; i < KEYPROC_CACHE; i++)
        cache_drop(&cache[i]);
    log_info("key process stopped");
    return rc;
}

/* local — see local.h. */
#include "delivery/local.h"
#include "delivery/lmtp.h"
#include "delivery/local_resolve.h"
#include "delivery/maildir.h"
#include "delivery/mbox.h"
#include "delivery/pipe.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOCAL_INCLUDE_MAX (1024 * 1024)
#define LOCAL_USAGE_MAX_FILES 1000000

bool local_is_target(const char *rcpt_addr)
{
    return local_target_is_encoded(rcpt_addr);
}

void local_new_rcpts_free(struct local_new_rcpts *add)
{
    free(add->v);
    add->v = NULL;
    add->n = 0;
}

static void map_file_free(struct local_map_file *f)
{
    if (f->loaded)
        local_map_free(&f->map);
    memset(f, 0, sizeof *f);
}

void local_maps_free(struct local_maps *maps)
{
    map_file_free(&maps->aliases);
    map_file_free(&maps->virtual);
    lmtp_close();
}

/* Load path when it is new or changed since the last load. */
static void refresh(struct local_map_file *f, const char *path, enum local_map_syntax syn)
{
    if (!*path)
        return;
    struct stat sb;
    if (stat(path, &sb) < 0) {
        map_file_free(f);
        snprintf(f->error, sizeof f->error, "%s: %s", path, strerror(errno));
        return;
    }
    if (f->loaded && sb.st_ino == f->sb.st_ino && sb.st_dev == f->sb.st_dev && sb.st_size == f->sb.st_size &&
        sb.st_mtim.tv_sec == f->sb.st_mtim.tv_sec && sb.st_mtim.tv_nsec == f->sb.st_mtim.tv_nsec)
        return;
    map_file_free(f);
    char err[512];
    if (local_map_load_file(path, syn, &f->map, err, sizeof err) < 0) {
        str_copy(f->error, err, sizeof f->error);
        log_error("local delivery is deferred: %s", err);
        return;
    }
    f->loaded = true;
    f->sb = sb;
    log_info("loaded %s (%zu entries)", path, f->map.n);
}

struct resolver_arg {
    const struct ferry_config *cfg;
};

static bool is_local_domain(void *arg, const char *domain)
{
    const struct resolver_arg *a = arg;
    return settings_is_local_domain(a->cfg, domain);
}

/* The foundation's rule: local_recipients = any, postmaster, or a system account. */
static bool user_exists(void *arg, const char *name)
{
    const struct resolver_arg *a = arg;
    return a->cfg->local_recipients == RCPT_ANY || !strcmp(name, "postmaster") || getpwnam(name) != NULL;
}

static char *read_include(void *arg, const char *path, const char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = strerror(errno);
        return NULL;
    }
    char *text = malloc(LOCAL_INCLUDE_MAX + 1);
    size_t got = 0;
    while (text && got < LOCAL_INCLUDE_MAX) {
        ssize_t r = read(fd, text + got, LOCAL_INCLUDE_MAX - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!text) {
        *why = "out of memory";
        return NULL;
    }
    if (memchr(text, '\0', got)) {
        free(text);
        *why = "contains a NUL octet";
        return NULL;
    }
    text[got] = '\0';
    return text;
}

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

int local_mailbox_usage(const char *path, bool maildir, unsigned long long *bytes)
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

bool local_quota_exceeded(unsigned long long usage, unsigned long long size, unsigned long long quota,
                          const char *mailbox, struct delivery_status *st)
{
    if (quota == 0 || usage + size <= quota)
        return false;
    delivery_set(st, DELIVERY_FAIL, "5.2.2 mailbox full: %s holds %llu octets, the quota is %llu and the "
                 "message has %llu", mailbox, usage, quota, size);
    return true;
}

/* Quota first, then the write. path is the Maildir directory or the mbox file. */
static void to_mailbox(const struct ferry_config *cfg, const char *path, bool maildir, const char *sender,
                       const char *prefix, int msg_fd, struct delivery_status *st)
{
    if (cfg->mailbox_quota) {
        unsigned long long usage;
        struct stat sb;
        if (local_mailbox_usage(path, maildir, &usage) < 0) {
            delivery_set_errno(st, errno, "cannot measure mailbox %s", path);
            return;
        }
        unsigned long long size = fstat(msg_fd, &sb) == 0 ? (unsigned long long)sb.st_size : 0;
        if (local_quota_exceeded(usage, size + strlen(prefix), cfg->mailbox_quota, path, st))
            return;
    }
    if (!maildir) {
        mbox_deliver(path, sender, prefix, msg_fd, MBOX_LOCK_WAIT, st);
        return;
    }
    char root[PATH_MAX], name[PATH_MAX];
    str_copy(root, path, sizeof root);
    char *slash = strrchr(root, '/');
    if (!slash || !slash[1]) {
        delivery_set(st, DELIVERY_FAIL, "5.3.5 %s cannot be a Maildir", path);
        return;
    }
    str_copy(name, slash + 1, sizeof name);
    *slash = '\0';
    maildir_deliver(root[0] ? root : "/", name, prefix, msg_fd, st, NULL, 0);
}

static void deliver_target(const struct ferry_config *cfg, const struct local_target *t, const char *sender,
                           int msg_fd, struct delivery_status *st)
{
    if (lseek(msg_fd, 0, SEEK_SET) < 0) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 cannot rewind the queued message: %s", strerror(errno));
        return;
    }
    /* Return-Path records the envelope sender (RFC 5321 §4.4); Delivered-To lets
       a mailbox owner see which address brought the message, and stops loops. */
    char prefix[2 * ADDR_PATH_MAX + 64];
    snprintf(prefix, sizeof prefix, "Return-Path: <%s>\nDelivered-To: %s\n", sender, t->rcpt);
    char path[PATH_MAX + 2];
    switch (t->kind) {
    case LT_MAILBOX:
        if (cfg->mailbox_transport[0]) {
            const char *rcpt = t->rcpt;
            lmtp_deliver(cfg->mailbox_transport + 5, cfg->hostname, (unsigned)cfg->lmtp_timeout, sender,
                         &rcpt, 1, prefix, msg_fd, st);
            return;
        }
        if (settings_mailbox_format(cfg, t->domain) == MAILBOX_MBOX) {
            snprintf(path, sizeof path, "%s/%s", cfg->mbox_dir[0] ? cfg->mbox_dir : cfg->mail_dir, t->arg);
            to_mailbox(cfg, path, false, sender, prefix, msg_fd, st);
        } else {
            snprintf(path, sizeof path, "%s/%s", cfg->mail_dir, t->arg);
            to_mailbox(cfg, path, true, sender, prefix, msg_fd, st);
        }
        return;
    case LT_MAILDIR:
        str_copy(path, t->arg, sizeof path);
        while (strlen(path) > 1 && path[strlen(path) - 1] == '/')
            path[strlen(path) - 1] = '\0';
        to_mailbox(cfg, path, true, sender, prefix, msg_fd, st);
        return;
    case LT_MBOX:
        to_mailbox(cfg, t->arg, false, sender, prefix, msg_fd, st);
        return;
    case LT_PIPE:
        pipe_deliver(t->arg, cfg->pipe_user, (unsigned)cfg->pipe_timeout, sender, t->rcpt, prefix, msg_fd, st);
        return;
    case LT_LMTP: {
        const char *rcpt = t->rcpt;
        lmtp_deliver(t->arg, cfg->hostname, (unsigned)cfg->lmtp_timeout, sender, &rcpt, 1, prefix, msg_fd, st);
        return;
    }
    case LT_REMOTE:
        break;
    }
    delivery_set(st, DELIVERY_FAIL, "5.4.4 %s is not a local recipient", t->rcpt);
}

void local_deliver(const struct ferry_config *cfg, struct local_maps *maps, const char *sender,
                   const char *rcpt_addr, int msg_fd, struct delivery_status *st,
                   struct local_new_rcpts *add)
{
    add->v = NULL;
    add->n = 0;
    struct local_target one;
    if (local_is_target(rcpt_addr)) {
        if (local_target_decode(rcpt_addr, &one) < 0) {
            delivery_set(st, DELIVERY_FAIL, "5.3.5 malformed queued delivery target %.200s", rcpt_addr);
            return;
        }
        deliver_target(cfg, &one, sender, msg_fd, st);
        return;
    }
    refresh(&maps->aliases, cfg->alias_file, LOCAL_MAP_ALIASES);
    refresh(&maps->virtual, cfg->virtual_map, LOCAL_MAP_VIRTUAL);
    const struct local_map_file *bad = maps->aliases.error[0] ? &maps->aliases
                                     : maps->virtual.error[0] ? &maps->virtual : NULL;
    if (bad) {
        delivery_set(st, DELIVERY_DEFER, "4.3.5 cannot use the map %s", bad->error);
        return;
    }
    struct resolver_arg ra = { cfg };
    struct local_resolver r = {
        .aliases = maps->aliases.loaded ? &maps->aliases.map : NULL,
        .virtual = maps->virtual.loaded ? &maps->virtual.map : NULL,
        .delimiters = cfg->recipient_delimiter,
        .is_local_domain = is_local_domain,
        .user_exists = user_exists,
        .read_include = read_include,
        .arg = &ra,
    };
    struct local_targets ts = { 0 };
    if (local_resolve(&r, rcpt_addr, &ts, st) < 0) {
        local_targets_free(&ts);
        return;
    }
    if (ts.n == 1 && ts.v[0].kind != LT_REMOTE) {
        deliver_target(cfg, &ts.v[0], sender, msg_fd, st);
        local_targets_free(&ts);
        return;
    }
    add->v = calloc(ts.n, sizeof *add->v);
    if (!add->v) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 out of memory expanding %s", rcpt_addr);
        local_targets_free(&ts);
        return;
    }
    for (size_t i = 0; i < ts.n; i++) {
        if (local_target_encode(&ts.v[i], add->v[add->n], sizeof add->v[0]) < 0) {
            delivery_set(st, DELIVERY_DEFER, "4.3.5 the delivery target %.200s of %s is too long to queue",
                         ts.v[i].arg, rcpt_addr);
            local_new_rcpts_free(add);
            local_targets_free(&ts);
            return;
        }
        /* The same delivery reached twice (two aliases to one user) is done once. */
        bool dup = false;
        for (size_t k = 0; k < add->n && !dup; k++)
            dup = !strcmp(add->v[k], add->v[add->n]);
        if (!dup)
            add->n++;
    }
    delivery_set(st, DELIVERY_OK, "2.1.5 expanded to %zu recipients", add->n);
    local_targets_free(&ts);
}

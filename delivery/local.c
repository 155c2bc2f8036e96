/* local — see local.h. */
#include "delivery/local.h"
#include "delivery/home_delivery.h"
#include "delivery/lmtp.h"
#include "delivery/mailbox_quota.h"
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

bool local_is_target(const char *rcpt_addr)
{
    return local_target_is_encoded(rcpt_addr);
}

static void new_rcpts_free(struct local_new_rcpts *add)
{
    free(add->v);
    add->v = NULL;
    add->n = 0;
}

/* Quota first, then the write. path is the Maildir directory or the mbox file. */
static void to_mailbox(const struct ferry_config *cfg, const char *path, bool maildir, const char *sender,
                       bool junk, const char *prefix, struct msg_src msg, struct delivery_status *st)
{
    if (cfg->mailbox_quota) {
        unsigned long long usage;
        if (mailbox_usage(path, maildir, &usage) < 0) {
            delivery_set_errno(st, errno, "cannot measure mailbox %s", path);
            return;
        }
        if (mailbox_quota_exceeded(usage, msg.size + strlen(prefix), cfg->mailbox_quota, path, st))
            return;
    }
    if (!maildir) {
        mbox_deliver(path, sender, prefix, msg, MBOX_LOCK_WAIT, st);
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
    /* Quarantined mail goes to the mailbox's Junk folder; an mbox has no folders,
       and there the X-Ferry-Quarantine field is what a reader's filter sees. */
    maildir_deliver(root[0] ? root : "/", name, junk ? MAILDIR_JUNK_FOLDER : NULL, prefix, msg, st, NULL, 0);
}

static void deliver_target(const struct ferry_config *cfg, const struct local_target *t, const char *sender,
                           bool junk, struct msg_src msg, struct delivery_status *st)
{
    if (lseek(msg.fd, 0, SEEK_SET) < 0) {
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
        if (settings_mailbox_format(cfg, t->domain) == MAILBOX_MBOX) {
            snprintf(path, sizeof path, "%s/%s", cfg->mbox_dir[0] ? cfg->mbox_dir : cfg->mail_dir, t->arg);
            to_mailbox(cfg, path, false, sender, junk, prefix, msg, st);
        } else {
            snprintf(path, sizeof path, "%s/%s", cfg->mail_dir, t->arg);
            to_mailbox(cfg, path, true, sender, junk, prefix, msg, st);
        }
        return;
    case LT_MAILDIR:
        str_copy(path, t->arg, sizeof path);
        while (strlen(path) > 1 && path[strlen(path) - 1] == '/')
            path[strlen(path) - 1] = '\0';
        to_mailbox(cfg, path, true, sender, junk, prefix, msg, st);
        return;
    case LT_MBOX:
        to_mailbox(cfg, t->arg, false, sender, junk, prefix, msg, st);
        return;
    case LT_PIPE:
        pipe_deliver(t->arg, cfg->pipe_user, (unsigned)cfg->pipe_timeout, sender, t->rcpt, prefix, msg, st);
        return;
    case LT_LMTP:       /* local_deliver_batch groups these by server */
    case LT_REMOTE:
        break;
    }
    delivery_set(st, DELIVERY_FAIL, "5.4.4 %s is not a local recipient", t->rcpt);
}


/* The LMTP server a single target goes to, or NULL when it is written here. */
static const char *lmtp_spec_of(const struct ferry_config *cfg, const struct local_target *t)
{
    if (t->kind == LT_LMTP)
        return t->arg;
    if (t->kind == LT_MAILBOX && cfg->mailbox_transport[0])
        return cfg->mailbox_transport + 5;      /* past "lmtp:" */
    return NULL;
}

/* An expansion into add: deduplicated encoded targets. */
static void expand(const char *rcpt_addr, const struct local_targets *ts, struct delivery_status *st,
                   struct local_new_rcpts *add)
{
    add->v = calloc(ts->n, sizeof *add->v);
    if (!add->v) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 out of memory expanding %s", rcpt_addr);
        return;
    }
    for (size_t i = 0; i < ts->n; i++) {
        if (local_target_encode(&ts->v[i], add->v[add->n], sizeof add->v[0]) < 0) {
            delivery_set(st, DELIVERY_DEFER, "4.3.5 the delivery target %.200s of %s is too long to queue",
                         ts->v[i].arg, rcpt_addr);
            new_rcpts_free(add);
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
}

/* One LMTP transaction per server for the recipients pending[] that go there. */
static void deliver_lmtp_groups(const struct ferry_config *cfg, const struct local_target *tv, const size_t *pending,
                                size_t np, const char *sender, struct msg_src msg, struct local_batch *b)
{
    const char **rcpts = calloc(np ? np : 1, sizeof *rcpts);
    size_t *idx = calloc(np ? np : 1, sizeof *idx);
    struct delivery_status *sts = calloc(np ? np : 1, sizeof *sts);
    bool *sent = calloc(np ? np : 1, sizeof *sent);
    for (size_t g = 0; g < np; g++) {
        size_t i = pending[g];
        if (!rcpts || !idx || !sts || !sent) {
            delivery_set(&b->st[i], DELIVERY_DEFER, "4.3.0 out of memory");
            continue;
        }
        if (sent[g])
            continue;
        const char *spec = lmtp_spec_of(cfg, &tv[i]);
        size_t k = 0;
        for (size_t h = g; h < np; h++)
            if (!sent[h] && !strcmp(lmtp_spec_of(cfg, &tv[pending[h]]), spec)) {
                sent[h] = true;
                idx[k] = pending[h];
                rcpts[k++] = tv[pending[h]].rcpt;
            }
        /* The LMTP server is the final delivery agent: it adds Return-Path and
           Delivered-To itself, so the message goes as queued. */
        if (lseek(msg.fd, 0, SEEK_SET) < 0) {
            struct delivery_status st;
            delivery_set(&st, DELIVERY_DEFER, "4.3.0 cannot rewind the queued message: %s", strerror(errno));
            for (size_t j = 0; j < k; j++)
                b->st[idx[j]] = st;
            continue;
        }
        lmtp_deliver(spec, cfg->hostname, (unsigned)cfg->lmtp_timeout, sender, rcpts, k, "", msg, sts);
        for (size_t j = 0; j < k; j++)
            b->st[idx[j]] = sts[j];
    }
    free(rcpts);
    free(idx);
    free(sts);
    free(sent);
}

int local_batch_alloc(struct local_batch *b, size_t n)
{
    memset(b, 0, sizeof *b);
    size_t alloc = n ? n : 1;
    b->done = calloc(alloc, sizeof *b->done);
    b->st = calloc(alloc, sizeof *b->st);
    b->add = calloc(alloc, sizeof *b->add);
    b->home = calloc(alloc, sizeof *b->home);
    b->home_user = calloc(alloc, sizeof *b->home_user);
    b->home_rcpt = calloc(alloc, sizeof *b->home_rcpt);
    if (!b->done || !b->st || !b->add || !b->home || !b->home_user || !b->home_rcpt) {
        local_batch_free(b);
        return -1;
    }
    b->n = n;
    return 0;
}

void local_txn_key(const struct ferry_config *cfg, const char *rcpt_addr, char *key, size_t keysz)
{
    struct local_target t;
    key[0] = '\0';
    if (!local_is_target(rcpt_addr)) {
        /* Resolved in the worker: any of them may turn out to go to one LMTP
           server (mailbox_transport, or an lmtp: alias or virtual entry). */
        str_copy(key, "resolve", keysz);
        return;
    }
    const char *spec = local_target_decode(rcpt_addr, &t) == 0 ? lmtp_spec_of(cfg, &t) : NULL;
    if (spec)
        snprintf(key, keysz, "lmtp %s", spec);
}

void local_batch_free(struct local_batch *b)
{
    for (size_t i = 0; b->add && i < b->n; i++)
        new_rcpts_free(&b->add[i]);
    free(b->add);
    free(b->st);
    free(b->done);
    free(b->home);
    free(b->home_user);
    free(b->home_rcpt);
    memset(b, 0, sizeof *b);
}

void local_maps_free(struct local_maps *maps)
{
    lmtp_close();
    local_maps_close(maps);
}

int local_deliver_batch(const struct ferry_config *cfg, struct local_maps *maps, const char *sender,
                        bool junk, const char *const *addrs, const bool *want, size_t n, struct msg_src msg,
                        struct local_batch *b)
{
    size_t alloc = n ? n : 1;
    struct local_target *tv = calloc(alloc, sizeof *tv);      /* the LMTP ones */
    size_t *pending = calloc(alloc, sizeof *pending);
    if (local_batch_alloc(b, n) < 0 || !tv || !pending) {
        local_batch_free(b);
        free(tv);
        free(pending);
        return -1;
    }
    const char *bad = NULL;
    bool maps_ok = local_maps_refresh(cfg, maps, &bad) == 0;
    struct local_rcpt_arg ra;
    struct local_resolver r;
    local_resolver_init(&r, &ra, cfg, maps);
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        if (!want[i])
            continue;
        b->done[i] = true;
        struct delivery_status *st = &b->st[i];
        struct local_target one;
        if (local_is_target(addrs[i])) {
            if (local_target_decode(addrs[i], &one) < 0) {
                delivery_set(st, DELIVERY_FAIL, "5.3.5 malformed queued delivery target %.200s", addrs[i]);
                continue;
            }
        } else if (!maps_ok) {
            delivery_set(st, DELIVERY_DEFER, "4.3.5 cannot use the map %s", bad);
            continue;
        } else {
            struct local_targets ts = { 0 };
            if (local_resolve(&r, addrs[i], &ts, st) < 0) {
                local_targets_free(&ts);
                continue;
            }
            if (ts.n != 1 || ts.v[0].kind == LT_REMOTE) {
                expand(addrs[i], &ts, st, &b->add[i]);
                local_targets_free(&ts);
                continue;
            }
            one = ts.v[0];
            local_targets_free(&ts);
        }
        if (lmtp_spec_of(cfg, &one)) {
            tv[i] = one;
            pending[np++] = i;
            continue;
        }
        if (cfg->mailbox_owner == MAILBOX_OWNER_SYSTEM && one.kind == LT_MAILBOX && home_user_ok(one.arg)) {
            /* Written by the user itself, through the parent (home_delivery.h). */
            b->done[i] = false;
            b->home[i] = true;
            str_copy(b->home_user[i], one.arg, sizeof b->home_user[i]);
            str_copy(b->home_rcpt[i], one.rcpt, sizeof b->home_rcpt[i]);
            continue;
        }
        deliver_target(cfg, &one, sender, junk, msg, st);
    }
    deliver_lmtp_groups(cfg, tv, pending, np, sender, msg, b);
    free(tv);
    free(pending);
    return 0;
}

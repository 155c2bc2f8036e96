/* smtp_pickup — see smtp_pickup.h. */
#include "smtpd/smtp_pickup.h"
#include "lib/buf.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/mail_date.h"
#include "queue/maildrop.h"
#include "queue/spool.h"
#include "smtpd/pickup_policy.h"
#include "smtpd/smtp_proc.h"
#include "smtpd/smtp_dmtp.h"
#include "smtpd/smtp_server.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Room for the envelope lines on top of the message itself. */
#define DROP_ENVELOPE_MAX (MAILDROP_MAX_RCPTS * (ADDR_PATH_MAX + 8) + 1024)
/* Names collected per look at maildrop/. */
#define PICKUP_PER_PASS 100

/* The pickup shares the smtp process's event loop with every session, and a drop
   may be as large as message_size_limit: it takes one file per turn of the loop
   (the next one through a zero timeout, so sessions waiting to be served go
   first), never a whole directory at once. */
struct smtp_pickup {
    struct smtp_server *srv;
    struct event *timer;
    char dir[PATH_MAX];
    char (*names)[NAME_MAX + 1];    /* this pass's d.* names, PICKUP_PER_PASS of them */
    size_t nnames, next;
};

static void schedule(struct smtp_pickup *pk)
{
    struct timeval tv = { 0, PICKUP_INTERVAL_MS * 1000 };
    evtimer_add(pk->timer, &tv);
}

/* Copy at most max octets of fd (from its start) to out and make them durable. */
static int copy_bounded(int fd, int out, size_t max)
{
    char chunk[65536];
    off_t off = 0;
    while ((size_t)off < max) {
        size_t want = max - (size_t)off < sizeof chunk ? max - (size_t)off : sizeof chunk;
        ssize_t n = pread(fd, chunk, want, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        for (ssize_t w = 0; w < n; ) {
            ssize_t k = write(out, chunk + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return -1;
            w += k;
        }
        off += n;
    }
    return fsync(out);
}

/* Set a bad drop aside: its bytes, read through fd (the regular file already
   checked; -1 when it was none: a link, a FIFO...), go into a new file of our own,
   corrupt/drop.NAME, with corrupt/drop.NAME.reason beside it; then the name is
   removed from maildrop/. Nothing is renamed out of maildrop/ and nothing there is
   opened by name a second time: a local user owns what is in it and can swap a
   name for a link at any moment, so only the descriptor we checked is trusted.
   Both new files are created exclusively (O_EXCL|O_NOFOLLOW) in corrupt/, which
   only the daemon's user may write; an earlier quarantine of the same name gets
   a numbered neighbour instead of being replaced. */
static void quarantine(struct smtp_pickup *pk, int dfd, const char *name, int fd, size_t max, const char *why)
{
    char dir[PATH_MAX + 16], base[128], reason[160];
    snprintf(dir, sizeof dir, "%s/corrupt", pk->srv->spool.dir);
    int cfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    bool kept = false;
    for (int k = 1; cfd >= 0 && k <= 100 && !kept; k++) {
        if (k == 1)
            snprintf(base, sizeof base, "drop.%.64s", name);
        else
            snprintf(base, sizeof base, "drop.%.64s-%d", name, k);
        snprintf(reason, sizeof reason, "%s.reason", base);
        int out = fd >= 0 ? spool_create_new(cfd, base, false) : -1;
        if (fd >= 0 && out < 0) {
            if (errno == EEXIST)
                continue;
            break;
        }
        if (spool_write_reason(cfd, reason, why, false) < 0) {
            int saved = errno;
            if (out >= 0) {
                close(out);
                unlinkat(cfd, base, 0);
            }
            if (saved == EEXIST)
                continue;
            break;
        }
        kept = out < 0 || copy_bounded(fd, out, max) == 0;
        if (out >= 0)
            close(out);
        if (!kept)
            unlinkat(cfd, reason, 0), unlinkat(cfd, base, 0);
        else
            fsync(cfd);
    }
    if (cfd >= 0)
        close(cfd);
    if (kept)
        log_error("maildrop/%s: moved to corrupt/%s: %s", name, fd >= 0 ? base : reason, why);
    else
        log_error("maildrop/%s: %s; cannot keep it in %s (%s), removing it", name, why, dir, strerror(errno));
    unlinkat(dfd, name, 0);          /* else it would be retried and refused forever */
}

static int read_drop(int fd, size_t max, struct buf *b)
{
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (b->len + (size_t)n > max || buf_append(b, chunk, (size_t)n) < 0) {
            errno = EFBIG;
            return -1;
        }
    }
}

/* 1: queued; 0: left for later (temporary trouble); -1: quarantined. */
static int pick_one(struct smtp_pickup *pk, int dfd, const char *name)
{
    const struct ferry_config *cfg = pk->srv->cfg;
    char why[512];
    size_t max = cfg->message_size_limit + DROP_ENVELOPE_MAX;
    /* Never through a link, never blocking on a FIFO; what it is, is decided on
       the descriptor. */
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(why, sizeof why, errno == ELOOP ? "a symbolic link, not a drop file" : "cannot open: %s",
                 strerror(errno));
        quarantine(pk, dfd, name, -1, 0, why);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        close(fd);
        quarantine(pk, dfd, name, -1, 0, "not a regular file with a single link");
        return -1;
    }
    if ((unsigned long long)st.st_size > max) {
        snprintf(why, sizeof why, "%lld octets: larger than message_size_limit (the first %zu kept)",
                 (long long)st.st_size, max);
        quarantine(pk, dfd, name, fd, max, why);
        close(fd);
        return -1;
    }
    struct buf raw, wire;
    buf_init(&raw, max);
    buf_init(&wire, cfg->message_size_limit + 4096);
    struct envelope e;
    env_init(&e);
    int result = -1;
    if (read_drop(fd, max, &raw) < 0) {
        snprintf(why, sizeof why, "cannot read: %s", strerror(errno));
        goto bad;
    }
    size_t body;
    if (maildrop_parse(raw.data ? raw.data : "", raw.len, &e, &body, why, sizeof why) < 0 ||
        maildrop_check_message(raw.data + body, raw.len - body, cfg->message_size_limit, why, sizeof why) < 0)
        goto bad;

    struct passwd *pw = getpwuid(st.st_uid);
    char user[64], date[64];
    snprintf(user, sizeof user, "%s", pw ? pw->pw_name : "unknown");
    /* The ID is not known before the draft exists, so the trace header names the
       user and time; the queue ID is in every log line. */
    mail_date(time(NULL), date, sizeof date);
    bool eight_bit;
    if (buf_printf(&wire, "Received: by %s (Ferry, from userid %ld %s);\r\n\t%s\r\n", cfg->hostname,
                   (long)st.st_uid, user, date) < 0)
        goto bad;
    size_t own_len = wire.len;
    if (maildrop_to_wire(raw.data + body, raw.len - body, &wire, &eight_bit, why, sizeof why) < 0)
        goto bad;
    if (wire.len > cfg->message_size_limit) {
        snprintf(why, sizeof why, "message of %zu octets is over message_size_limit", wire.len);
        goto bad;
    }
    /* Local users are held to the same sender and header rules as SMTP clients. */
    struct pickup_submitter who = { st.st_uid, user, e.sender, name };
    if (pickup_policy_apply(pk->srv, &who, &wire, own_len, cfg->message_size_limit + 64 * 1024) < 0) {
        log_warn("maildrop/%s: out of memory, or it cannot be signed now; will try again", name);
        result = 0;
        goto out;
    }
    /* Replies to DMTP intent messages are taken here and never queued. */
    smtp_pull_pickup_replies(pk->srv, user, &e, wire.data, wire.len);
    if (e.nrcpts == 0) {
        log_info("maildrop/%s: a reply to DMTP pull notices from user %s, consumed (not delivered)", name, user);
        if (unlinkat(dfd, name, 0) < 0)
            log_error("cannot remove maildrop/%s: %s", name, strerror(errno));
        result = 1;
        goto out;
    }
    e.arrival = time(NULL);
    e.body_8bit = eight_bit;
    snprintf(e.client_addr, sizeof e.client_addr, "uid %ld", (long)st.st_uid);
    str_copy(e.client_helo, user, sizeof e.client_helo);
    str_copy(e.protocol, "local", sizeof e.protocol);
    if (spool_enqueue(&pk->srv->spool, &e, wire.data, wire.len) < 0) {
        log_warn("maildrop/%s: cannot queue it now (%s); will try again", name, strerror(errno));
        result = 0;
        goto out;
    }
    ipc_chan_send(pk->srv->parent, PROC_QUEUE_NEW, e.id, QID_LEN);
    log_msg(LOG_LVL_INFO, e.id, "from=<%s> size=%llu nrcpt=%zu uid=%ld user=%s proto=local", e.sender, e.size,
            e.nrcpts, (long)st.st_uid, user);
    smtp_pull_note_sent(pk->srv, user, &e);
    if (unlinkat(dfd, name, 0) < 0)
        log_msg(LOG_LVL_ERROR, e.id, "queued, but cannot remove maildrop/%s: %s (it will be queued again)", name,
                strerror(errno));
    result = 1;
    goto out;
bad:
    quarantine(pk, dfd, name, fd, max, why);
out:
    close(fd);
    env_free(&e);
    buf_free(&raw);
    buf_free(&wire);
    return result;
}

/* Fill pk->names with the d.* names in maildrop/ now. */
static void collect(struct smtp_pickup *pk)
{
    pk->nnames = pk->next = 0;
    int dfd = open(pk->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        log_warn("cannot open %s: %s", pk->dir, strerror(errno));
        return;
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *de;
    while (pk->nnames < PICKUP_PER_PASS && (de = readdir(d)) != NULL)
        if (de->d_name[0] == 'd' && de->d_name[1] == '.')
            str_copy(pk->names[pk->nnames++], de->d_name, sizeof pk->names[0]);
    closedir(d);
}

/* Take the next collected file; 1 when it was queued. */
static int pick_next(struct smtp_pickup *pk)
{
    if (pk->next >= pk->nnames)
        return 0;
    int dfd = open(pk->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        log_warn("cannot open %s: %s", pk->dir, strerror(errno));
        pk->next = pk->nnames;
        return 0;
    }
    int r = pick_one(pk, dfd, pk->names[pk->next++]);
    close(dfd);
    return r == 1;
}

int smtp_pickup_run(struct smtp_pickup *pk)
{
    int queued = 0;
    collect(pk);
    while (pk->next < pk->nnames)
        queued += pick_next(pk);
    return queued;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_pickup *pk = arg;
    if (pk->srv->stopping)
        return;
    if (pk->next >= pk->nnames)
        collect(pk);
    pick_next(pk);
    if (pk->next < pk->nnames) {
        struct timeval now = { 0, 0 };
        evtimer_add(pk->timer, &now);
    } else {
        schedule(pk);
    }
}

struct smtp_pickup *smtp_pickup_start(struct smtp_server *srv)
{
    struct smtp_pickup *pk = calloc(1, sizeof *pk);
    if (!pk)
        return NULL;
    pk->srv = srv;
    pk->names = malloc(PICKUP_PER_PASS * sizeof *pk->names);
    snprintf(pk->dir, sizeof pk->dir, "%s/%s", srv->spool.dir, MAILDROP_DIR);
    pk->timer = evtimer_new(srv->base, on_timer, pk);
    if (!pk->timer || !pk->names) {
        if (pk->timer)
            event_free(pk->timer);
        free(pk->names);
        free(pk);
        return NULL;
    }
    struct timeval now = { 0, 0 };
    evtimer_add(pk->timer, &now);
    return pk;
}

void smtp_pickup_stop(struct smtp_pickup *pk)
{
    if (!pk)
        return;
    event_free(pk->timer);
    free(pk->names);
    free(pk);
}

/*
 * ctl_queue — `ferryctl queue ...`.
 *
 * list and show read the envelopes in queue/ directly (each envelope is replaced
 * atomically, so a reader sees an old or a new one), daemon running or not.
 * flush, hold, release, delete and bounce change the queue: they ask the running
 * queue process through <spool_dir>/control.sock; when nobody answers there they
 * take the queue lock and change the spool themselves (queue/control.h explains
 * why the two can never act at once). Run as root, every subcommand first becomes
 * the owner of the spool, so the files written stay readable by the daemon and
 * root never follows a link that user put in the spool.
 */
#include "ctl/ctl.h"
#include "lib/buf.h"
#include "lib/msgfile.h"
#include "queue/control.h"
#include "queue/held.h"
#include "queue/queue_admin.h"
#include "queue/spool.h"
#include "lib/privsep.h"
#include "lib/safe_dir.h"
#include "smtpd/smtp_proc.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct list_state {
    int dirfd;                  /* queue/ or held/ */
    bool json;
    size_t count;
    unsigned long long bytes;
    size_t bad;
};

static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void show_age(time_t secs, char *out, size_t sz)
{
    if (secs < 0)
        secs = 0;
    if (secs < 3600)
        snprintf(out, sz, "%lldm%02llds", (long long)secs / 60, (long long)secs % 60);
    else if (secs < 86400)
        snprintf(out, sz, "%lldh%02lldm", (long long)secs / 3600, (long long)secs % 3600 / 60);
    else
        snprintf(out, sz, "%lldd%02lldh", (long long)secs / 86400, (long long)secs % 86400 / 3600);
}

static void next_text(bool hold, time_t next, time_t now, char *out, size_t sz)
{
    if (hold) {
        str_copy(out, "held", sz);
    } else if (next > now) {
        char t[32];
        show_age(next - now, t, sizeof t);
        snprintf(out, sz, "in %s", t);
    } else {
        str_copy(out, "now", sz);
    }
}

static void list_one(const char *id, void *arg)
{
    struct list_state *st = arg;
    struct envelope e;
    bool corrupt;
    char err[256];
    if (spool_env_read_at(st->dirfd, id, &e, &corrupt, err, sizeof err) < 0) {
        if (errno == ENOENT && !corrupt)
            return;     /* delivered while we looked */
        st->bad++;
        if (st->json) {
            printf("%s{\"id\":\"%s\",\"error\":", st->count + st->bad > 1 ? "," : "", id);
            json_string(err);
            printf("}\n");
        } else {
            printf("%-16s (unreadable: %s)\n", id, err);
        }
        return;
    }
    time_t now = time(NULL);
    st->bytes += e.size;
    if (st->json) {
        printf("%s{\"id\":\"%s\",\"arrival\":%lld,\"size\":%llu,\"sender\":", st->count + st->bad ? "," : "",
               e.id, (long long)e.arrival, e.size);
        json_string(e.sender);
        printf(",\"attempts\":%u,\"next_attempt\":%lld,\"hold\":%s,\"kind\":\"%s\",\"recipients\":[",
               e.attempts, (long long)e.next_attempt, e.hold ? "true" : "false", env_kind_name(e.kind));
        for (size_t i = 0; i < e.nrcpts; i++) {
            printf("%s{\"address\":", i ? "," : "");
            json_string(e.rcpts[i].addr);
            printf(",\"status\":\"%s\",\"attempts\":%u,\"next_attempt\":%lld,\"last_attempt\":%lld,\"result\":",
                   rcpt_state_name(e.rcpts[i].state), e.rcpts[i].attempts, (long long)e.rcpts[i].next_attempt,
                   (long long)e.rcpts[i].last_attempt);
            json_string(e.rcpts[i].result);
            printf("}");
        }
        printf("]");
        if (e.pull_msid[0]) {
            printf(",\"pull\":{\"msid\":");
            json_string(e.pull_msid);
            printf(",\"rmta\":");
            json_string(e.pull_rmta);
            printf(",\"expires\":%lld}", (long long)e.pull_expires);
        }
        printf("}\n");
    } else if (e.pull_msid[0]) {
        /* DMTP: held for pulls (spool/held/) */
        char age[32], left[32];
        show_age(now - e.arrival, age, sizeof age);
        show_age(e.pull_expires - now, left, sizeof left);
        printf("%-16s %8s %9llu  <%s>  held for pull by %s, expires in %s\n", e.id, age, e.size, e.sender,
               e.pull_rmta, left);
        for (size_t i = 0; i < e.nrcpts; i++) {
            const struct env_rcpt *r = &e.rcpts[i];
            printf("%28s <%s> %s (%s)\n", "", r->addr, rcpt_todo(r) ? "waiting for pull" : "pulled", r->result);
        }
    } else {
        char age[32], next[40];
        show_age(now - e.arrival, age, sizeof age);
        next_text(e.hold, e.next_attempt, now, next, sizeof next);
        printf("%-16s %8s %9llu  <%s>  next: %s\n", e.id, age, e.size, e.sender, next);
        for (size_t i = 0; i < e.nrcpts; i++) {
            const struct env_rcpt *r = &e.rcpts[i];
            char rnext[48] = "";
            if (rcpt_todo(r)) {
                char t[40];
                next_text(e.hold, r->next_attempt, now, t, sizeof t);
                snprintf(rnext, sizeof rnext, ", next %s", t);
            }
            char att[32] = "";
            if (r->attempts)
                snprintf(att, sizeof att, ", %u attempt%s", r->attempts, r->attempts == 1 ? "" : "s");
            printf("%28s <%s> %s%s%s%s%s%s\n", "", r->addr, rcpt_state_name(r->state), att, rnext,
                   r->result[0] ? " (" : "", r->result, r->result[0] ? ")" : "");
        }
    }
    st->count++;
    env_free(&e);
}

static int queue_list(const struct ferry_config *cfg, bool json)
{
    struct spool sp;
    char err[256];
    if (spool_open(&sp, cfg->spool_dir, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }
    struct list_state st = { .dirfd = sp.queue_dirfd, .json = json };
    if (json)
        printf("[\n");
    else
        printf("%-16s %8s %9s  %s\n", "Queue ID", "Age", "Size", "Sender / Recipients");
    int r = spool_scan(&sp, false, list_one, &st);
    /* Then the messages held for DMTP pulls: not queued, but still ours. */
    struct held_store held;
    if (r >= 0 && held_open(&held, cfg->spool_dir, err, sizeof err) == 0) {
        st.dirfd = held.dirfd;
        if (held_scan(&held, false, list_one, &st) < 0)
            r = -1;
        held_close(&held);
    }
    if (json)
        printf("]\n");
    else if (st.count == 0 && st.bad == 0)
        printf("Mail queue is empty\n");
    else
        printf("-- %llu KiB in %zu request%s.%s\n", (st.bytes + 1023) / 1024, st.count,
               st.count == 1 ? "" : "s", st.bad ? " Some envelopes could not be read." : "");
    spool_close(&sp);
    if (r < 0) {
        fprintf(stderr, "ferryctl: cannot read %s/queue: %s\n", cfg->spool_dir, strerror(errno));
        return 1;
    }
    return 0;
}

static int queue_show(const struct ferry_config *cfg, const char *id)
{
    struct spool sp;
    char err[256];
    if (!qid_valid(id)) {
        fprintf(stderr, "ferryctl: \"%s\" is not a queue ID\n", id);
        return 2;
    }
    if (spool_open(&sp, cfg->spool_dir, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }
    struct envelope e;
    bool corrupt;
    struct held_store held = { -1, -1 };
    /* The message file is opened before its envelope is read by name, and read
       through this one descriptor: if the envelope is still there once the file
       is open, the open finished while the file was queued, so the smtp process
       cannot reuse it for another message while it is shown (a reuse needs the
       only open file: queue/spool_spare.h). */
    int qfd = spool_msg_open(&sp, id);
    int found = spool_env_read(&sp, id, &e, &corrupt, err, sizeof err);
    if (found < 0 && !corrupt && errno == ENOENT && held_open(&held, cfg->spool_dir, err, sizeof err) == 0)
        found = held_read(&held, id, &e, &corrupt, err, sizeof err);     /* DMTP: held for pulls? */
    if (found < 0) {
        if (!corrupt && errno == ENOENT)
            fprintf(stderr, "ferryctl: %s is not in the queue\n", id);
        else
            fprintf(stderr, "ferryctl: %s\n", err);
        if (qfd >= 0)
            close(qfd);
        held_close(&held);
        spool_close(&sp);
        return 1;
    }
    char date[64];
    struct tm tm;
    localtime_r(&e.arrival, &tm);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", &tm);
    printf("id: %s\narrival: %s\nsize: %llu\nsender: <%s>\nclient: %s (%s)\nprotocol: %s\nbody: %s%s\n"
           "kind: %s\nhold: %s\ndelay warning sent: %s\nattempts: %u\n",
           e.id, date, e.size, e.sender, e.client_addr, e.client_helo, e.protocol,
           e.body_8bit ? "8BITMIME" : "7BIT", e.smtputf8 ? " SMTPUTF8" : "", env_kind_name(e.kind),
           e.hold ? "yes" : "no", e.delay_warned ? "yes" : "no", e.attempts);
    if (e.pull_msid[0]) {
        localtime_r(&e.pull_expires, &tm);
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %z", &tm);
        printf("held for pull (DMTP): msid %s\nhanded to: %s\nexpires: %s\n", e.pull_msid, e.pull_rmta, date);
    }
    for (size_t i = 0; i < e.nrcpts; i++) {
        const struct env_rcpt *r = &e.rcpts[i];
        printf("recipient: <%s> %s, %u attempt%s", r->addr,
               e.pull_msid[0] ? (rcpt_todo(r) ? "waiting for pull" : "pulled") : rcpt_state_name(r->state),
               r->attempts, r->attempts == 1 ? "" : "s");
        if (r->last_attempt) {
            localtime_r(&r->last_attempt, &tm);
            strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
            printf(", last %s", date);
        }
        if (rcpt_todo(r) && r->next_attempt) {
            localtime_r(&r->next_attempt, &tm);
            strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
            printf(", next %s", date);
        }
        printf("%s%s%s\n", r->result[0] ? "\n    result: " : "", r->result, "");
    }
    printf("\n");
    /* The header section, as spooled, with CRLF shown as LF. */
    int fd = qfd;
    if (e.pull_msid[0]) {
        if (qfd >= 0)
            close(qfd);
        fd = held_msg_open(&held, id);
    }
    if (fd >= 0) {
        char buf[8192];
        size_t off = 0;
        bool at_bol = true, done = false;
        ssize_t n;
        struct msg_src msg = { fd, e.size };   /* never the envelope behind it (lib/msgfile.h) */
        while (!done && off < 1024 * 1024 && (n = msg_pread(msg, buf, sizeof buf, off)) > 0) {
            for (ssize_t i = 0; i < n && !done; i++) {
                char c = buf[i];
                if (c == '\r')
                    continue;
                if (c == '\n' && at_bol)
                    done = true;
                else
                    putchar(c);
                at_bol = c == '\n';
            }
            off += (size_t)n;
        }
        close(fd);
    }
    env_free(&e);
    held_close(&held);
    spool_close(&sp);
    return 0;
}

/* Become the spool's owner when run as root (see the top of this file), before
   any file in it is read or written: the daemon's user owns everything in the
   spool and could have put links there for root to follow. The spool directory
   itself is found without following anything that user could change
   (lib/safe_dir.h); a spool still root's own keeps root. */
static int become_spool_owner(const struct ferry_config *cfg)
{
    if (geteuid() != 0)
        return 0;
    char err[CONF_ERR_MAX];
    struct safe_owner o = { true, 0, 0 };
    if (proc_lookup_user(cfg->user, &o.uid, &o.gid, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return -1;
    }
    int fd = safe_dir_walk(cfg->spool_dir, false, &o, err, sizeof err);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0)
            snprintf(err, sizeof err, "cannot read %s: %s", cfg->spool_dir, strerror(errno));
        fprintf(stderr, "ferryctl: %s\n", err);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    if (st.st_uid == 0)
        return 0;
    umask(privsep_umask(cfg));
    if (setgroups(0, NULL) < 0 || setgid(st.st_gid) < 0 || setuid(st.st_uid) < 0) {
        fprintf(stderr, "ferryctl: cannot become uid %ld, the owner of %s: %s\n", (long)st.st_uid, cfg->spool_dir,
                strerror(errno));
        return -1;
    }
    return 0;
}

struct flush_all {
    struct spool *sp;
    const struct ferry_config *cfg;
    size_t n, failed;
};

static void flush_one(const char *id, void *arg)
{
    struct flush_all *fa = arg;
    char bid[QID_LEN + 1], msg[512];
    if (qadmin_apply(fa->sp, fa->cfg, QADMIN_FLUSH, id, bid, msg, sizeof msg) == 0)
        fa->n++;
    else if (!strstr(msg, "on hold"))
        fa->failed++, fprintf(stderr, "ferryctl: %s\n", msg);
}

/* The daemon is not running: apply op to the spool under the queue lock. */
static int queue_change_offline(const struct ferry_config *cfg, enum qadmin_op op, const char *id)
{
    int lock = control_lock(cfg->spool_dir, false);
    if (lock < 0) {
        if (errno == EWOULDBLOCK)
            fprintf(stderr, "ferryctl: the queue process holds %s/queue.lock but does not answer on "
                            "control.sock; try again\n", cfg->spool_dir);
        else
            fprintf(stderr, "ferryctl: cannot lock %s/queue.lock: %s\n", cfg->spool_dir, strerror(errno));
        return 1;
    }
    struct spool sp;
    char err[256];
    if (spool_open(&sp, cfg->spool_dir, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        close(lock);
        return 1;
    }
    int rc = 0;
    if (op == QADMIN_FLUSH && !id) {
        struct flush_all fa = { .sp = &sp, .cfg = cfg };
        spool_scan(&sp, false, flush_one, &fa);
        printf("%zu message%s due at the next start of ferryd (not running)\n", fa.n, fa.n == 1 ? "" : "s");
        rc = fa.failed ? 1 : 0;
    } else {
        char bid[QID_LEN + 1], msg[512];
        if (qadmin_apply(&sp, cfg, op, id, bid, msg, sizeof msg) < 0) {
            fprintf(stderr, "ferryctl: %s\n", msg);
            rc = 1;
        } else {
            printf("%s (ferryd not running: changed in the spool)\n", msg);
        }
    }
    spool_close(&sp);
    close(lock);
    return rc;
}

static int queue_change(const struct ferry_config *cfg, enum qadmin_op op, const char *id)
{
    char req[CONTROL_LINE_MAX], reply[CONTROL_LINE_MAX + 16];
    snprintf(req, sizeof req, "%s%s%s", qadmin_op_name(op), id ? " " : "", id ? id : "");
    /* A message out on an attempt is changed once the attempt ends. */
    int rc;
    for (int waited = 0; (rc = control_request(cfg->spool_dir, req, reply, sizeof reply)) == 0 &&
                         !strncmp(reply, "busy ", 5) && waited < CONTROL_BUSY_WAIT_SECONDS * 5; waited++) {
        if (waited == 10)
            fprintf(stderr, "ferryctl: %s: waiting for the delivery attempt to end\n", id ? id : "queue");
        usleep(200 * 1000);
    }
    if (rc == 0) {
        if (!strncmp(reply, "busy ", 5)) {
            fprintf(stderr, "ferryctl: %s\n", reply + 5);
            return 1;
        }
        if (!strncmp(reply, "ok ", 3)) {
            printf("%s\n", reply + 3);
            return 0;
        }
        fprintf(stderr, "ferryctl: %s\n", !strncmp(reply, "error ", 6) ? reply + 6 : reply);
        return 1;
    }
    if (errno != ENOENT && errno != ECONNREFUSED) {
        fprintf(stderr, "ferryctl: cannot talk to the queue process on %s/control.sock: %s\n", cfg->spool_dir,
                strerror(errno));
        return 1;
    }
    return queue_change_offline(cfg, op, id);
}

static const char usage_text[] =
    "usage: ferryctl queue list [--json]\n"
    "       ferryctl queue show ID\n"
    "       ferryctl queue flush [ID]\n"
    "       ferryctl queue delete|hold|release|bounce ID\n";

int ctl_queue(const struct ferry_config *cfg, int argc, char **argv)
{
    if (become_spool_owner(cfg) < 0)
        return 1;
    if (argc >= 1 && !strcmp(argv[0], "list")) {
        bool json = argc == 2 && !strcmp(argv[1], "--json");
        if (argc > 2 || (argc == 2 && !json)) {
            fputs(usage_text, stderr);
            return 2;
        }
        return queue_list(cfg, json);
    }
    if (argc == 2 && !strcmp(argv[0], "show"))
        return queue_show(cfg, argv[1]);
    enum qadmin_op op;
    if (argc >= 1 && qadmin_op_parse(argv[0], &op) == 0) {
        if (op == QADMIN_FLUSH && argc == 1)
            return queue_change(cfg, op, NULL);
        if (argc != 2) {
            fputs(usage_text, stderr);
            return 2;
        }
        if (!qid_valid(argv[1])) {
            fprintf(stderr, "ferryctl: \"%s\" is not a queue ID\n", argv[1]);
            return 2;
        }
        return queue_change(cfg, op, argv[1]);
    }
    fputs(usage_text, stderr);
    return 2;
}

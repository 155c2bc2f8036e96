/*
 * queue_proc — the queue process: loads what is committed, delivers, retries.
 *
 * Work arrives two ways: PROC_QUEUE_NEW from the parent (a message the smtp
 * process has just committed) and a periodic scan of queue/ (queue_scan_interval),
 * which also picks up whatever was queued before a restart. Each message is
 * delivered recipient by recipient; the envelope is rewritten atomically after
 * each attempt, so a crash re-delivers at most the recipients of that one attempt
 * (RFC 5321 §6.1: at least once, never lost).
 *
 * This is the foundation's scheduler: exponential back-off between retry_min and
 * retry_max, expiry after queue_lifetime. Remote delivery, bounces and DSNs come
 * with their own modules.
 */
#include "delivery/delivery.h"
#include "delivery/maildir.h"
#include "lib/buf.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "queue/spool.h"
#include "smtpd/proc.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct queue_proc {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct spool spool;
    struct ipc_chan *parent;
    struct event *scan_timer;
    bool stopping;
};

static time_t backoff(const struct ferry_config *cfg, unsigned attempts)
{
    unsigned long long d = cfg->retry_min;
    for (unsigned i = 1; i < attempts && d < cfg->retry_max; i++)
        d *= 2;
    if (d > cfg->retry_max)
        d = cfg->retry_max;
    return (time_t)d;
}

static void deliver_local(struct queue_proc *q, const struct envelope *e, struct env_rcpt *r,
                          const struct mailbox *m, int msg_fd, struct delivery_status *st)
{
    char name[ADDR_LOCAL_MAX + 1];
    const char *why;
    if (local_mailbox_name(m, name, sizeof name, &why) < 0) {
        delivery_set(st, DELIVERY_FAIL, "5.1.3 %s", why);
        return;
    }
    if (lseek(msg_fd, 0, SEEK_SET) < 0) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 cannot rewind the queued message: %s", strerror(errno));
        return;
    }
    /* Return-Path records the envelope sender (RFC 5321 §4.4); Delivered-To lets
       a mailbox owner see which address brought the message, and stops loops. */
    struct buf prefix;
    buf_init(&prefix, 2048);
    buf_printf(&prefix, "Return-Path: <%s>\nDelivered-To: %s\n", e->sender, r->addr);
    char path[4096];
    maildir_deliver(q->cfg->mail_dir, name, prefix.data ? prefix.data : "", msg_fd, st, path, sizeof path);
    buf_free(&prefix);
}

static void deliver_recipient(struct queue_proc *q, const struct envelope *e, struct env_rcpt *r,
                              int msg_fd, struct delivery_status *st)
{
    struct mailbox m;
    const char *why;
    if (addr_parse_mailbox(r->addr, strlen(r->addr), true, &m, &why) < 0) {
        delivery_set(st, DELIVERY_FAIL, "5.1.3 bad recipient address: %s", why);
        return;
    }
    if (m.domain_kind == ADDR_DOMAIN_NAME && settings_is_local_domain(q->cfg, m.domain)) {
        deliver_local(q, e, r, &m, msg_fd, st);
        return;
    }
    delivery_set(st, DELIVERY_DEFER, "4.4.3 no remote delivery configured for %s", m.domain);
}

static void process_message(struct queue_proc *q, const char *id, bool force)
{
    struct envelope e;
    bool corrupt;
    char err[256];
    if (spool_env_read(&q->spool, id, &e, &corrupt, err, sizeof err) < 0) {
        if (corrupt) {
            log_msg(LOG_LVL_ERROR, id, "quarantined to corrupt/: %s", err);
            spool_quarantine(&q->spool, id, err);
        } else if (errno != ENOENT) {
            log_msg(LOG_LVL_WARN, id, "%s", err);
        }
        return;
    }
    time_t now = time(NULL);
    if (!force && e.next_attempt > now) {
        env_free(&e);
        return;
    }
    int fd = spool_msg_open(&q->spool, id);
    if (fd < 0) {
        log_msg(LOG_LVL_WARN, id, "cannot open the message: %s", strerror(errno));
        env_free(&e);
        return;
    }
    bool expired = now - e.arrival > (time_t)q->cfg->queue_lifetime;
    for (size_t i = 0; i < e.nrcpts; i++) {
        struct env_rcpt *r = &e.rcpts[i];
        if (r->state != RCPT_PENDING)
            continue;
        struct delivery_status st;
        deliver_recipient(q, &e, r, fd, &st);
        r->attempts++;
        str_copy(r->result, st.text, sizeof r->result);
        const char *status = "sent";
        if (st.result == DELIVERY_OK) {
            r->state = RCPT_DELIVERED;
        } else if (st.result == DELIVERY_FAIL) {
            r->state = RCPT_FAILED;
            status = "bounced";
        } else if (expired) {
            r->state = RCPT_FAILED;
            char text[sizeof r->result + sizeof st.text];
            snprintf(text, sizeof text, "5.4.7 message expired after %llus in the queue; last: %s",
                     q->cfg->queue_lifetime, st.text);
            str_copy(r->result, text, sizeof r->result);
            status = "expired";
        } else {
            status = "deferred";
        }
        log_msg(LOG_LVL_INFO, id, "to=<%s> status=%s attempts=%u (%s)", r->addr, status, r->attempts, r->result);
    }
    close(fd);
    e.attempts++;
    if (env_pending(&e) == 0) {
        if (spool_remove(&q->spool, id) < 0)
            log_msg(LOG_LVL_ERROR, id, "cannot remove from the queue: %s", strerror(errno));
        else
            log_msg(LOG_LVL_INFO, id, "removed");
    } else {
        e.next_attempt = now + backoff(q->cfg, e.attempts);
        if (spool_env_write(&q->spool, &e) < 0)
            log_msg(LOG_LVL_ERROR, id, "cannot update the envelope: %s", strerror(errno));
    }
    env_free(&e);
}

static void visit(const char *id, void *arg)
{
    process_message(arg, id, false);
}

static void on_scan(evutil_socket_t fd, short what, void *arg)
{
    struct queue_proc *q = arg;
    if (spool_scan(&q->spool, false, visit, q) < 0)
        log_error("cannot scan %s/queue: %s", q->spool.dir, strerror(errno));
    struct timeval tv = { (time_t)q->cfg->queue_scan_interval, 0 };
    evtimer_add(q->scan_timer, &tv);
}

static void on_parent_msg(struct ipc_chan *c, uint32_t type, const void *data, size_t len, void *arg)
{
    struct queue_proc *q = arg;
    if (type == PROC_QUEUE_NEW && len == QID_LEN) {
        char id[QID_LEN + 1];
        memcpy(id, data, QID_LEN);
        id[QID_LEN] = '\0';
        if (qid_valid(id))
            process_message(q, id, true);
        return;
    }
    log_warn("unexpected message %u (%zu octets) from the parent", type, len);
}

static void on_parent_close(struct ipc_chan *c, void *arg)
{
    struct queue_proc *q = arg;
    log_error("parent process went away; stopping");
    event_base_loopexit(q->base, NULL);
}

static void on_sigterm(evutil_socket_t fd, short what, void *arg)
{
    struct queue_proc *q = arg;
    event_base_loopexit(q->base, NULL);
}

int queue_process_main(const struct ferry_config *cfg, int parent_fd)
{
    struct queue_proc q;
    memset(&q, 0, sizeof q);
    q.cfg = cfg;
    char err[256];
    if (spool_open(&q.spool, cfg->spool_dir, err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    q.base = event_base_new();
    if (!q.base)
        return 1;
    q.parent = ipc_chan_new(q.base, parent_fd, on_parent_msg, on_parent_close, &q);
    q.scan_timer = evtimer_new(q.base, on_scan, &q);
    struct event *sigterm = evsignal_new(q.base, SIGTERM, on_sigterm, &q);
    struct event *sigint = evsignal_new(q.base, SIGINT, on_sigterm, &q);
    if (!q.parent || !q.scan_timer || !sigterm || !sigint)
        return 1;
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    struct timeval now = { 0, 0 };
    evtimer_add(q.scan_timer, &now);    /* first scan: what was queued before we started */
    log_info("queue process ready");
    event_base_dispatch(q.base);
    ipc_chan_free(q.parent);
    event_free(q.scan_timer);
    event_free(sigterm);
    event_free(sigint);
    spool_close(&q.spool);
    event_base_free(q.base);
    log_info("queue process stopped");
    return 0;
}

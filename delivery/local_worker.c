/* local_worker — see local_worker.h. */
#include "delivery/local_worker.h"
#include "delivery/lmtp.h"
#include "delivery/local.h"
#include "delivery/local_job.h"
#include "lib/buf.h"
#include "lib/ipc.h"
#include "lib/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int send_reply(int fd, struct local_job_reply *r)
{
    char line[LOCAL_JOB_REPLY_MAX];
    int n = local_job_reply_format(r, line, sizeof line);
    if (n < 0) {
        /* Only a result text could be too long, and it is cut to fit; anything
           else is a bug: the queue then defers the recipient for want of a result. */
        log_msg(LOG_LVL_ERROR, r->id, "cannot encode a delivery answer (type %d, index %u)", (int)r->type,
                r->index);
        return 0;
    }
    return ipc_send_blocking(fd, (uint32_t)r->type, line, (size_t)n);
}

static int send_result(int fd, struct local_job_reply *r, unsigned index, const struct delivery_status *st)
{
    r->type = LJOB_RESULT;
    r->index = index;
    r->st = *st;
    return send_reply(fd, r);
}

/* The queue ID names a file in our own spool: letters and digits only. */
static int open_message(const struct ferry_config *cfg, const char *id)
{
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p)) {
            errno = EINVAL;
            return -1;
        }
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/queue/%s.msg", cfg->spool_dir, id) >= (int)sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

/* Deliver one job and answer it. -1 when the queue can no longer be told. */
static int run_job(const struct ferry_config *cfg, struct local_maps *maps, int fd,
                   const struct local_job_request *req)
{
    struct local_job_reply r;
    memset(&r, 0, sizeof r);
    r.nonce = req->nonce;
    str_copy(r.id, req->id, sizeof r.id);
    const char *addrs[LOCAL_JOB_MAX_RCPTS];
    bool want[LOCAL_JOB_MAX_RCPTS];
    for (size_t i = 0; i < req->n; i++) {
        addrs[i] = req->rcpt[i];
        want[i] = true;
    }
    struct local_batch b;
    struct delivery_status st;
    int msg_fd = open_message(cfg, req->id);
    /* Only the message part of the file: a queue file committed in one piece has
       its envelope behind it (lib/msgfile.h). */
    struct msg_src msg = { msg_fd, 0 };
    if (msg_fd >= 0 && msgfile_msg_size(msg_fd, req->id, &msg.size) < 0) {
        int saved = errno;
        close(msg_fd);
        errno = saved;
        msg_fd = -1;
    }
    if (msg_fd < 0) {
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 cannot open the queued message: %s", strerror(errno));
        for (size_t i = 0; i < req->n; i++)
            if (send_result(fd, &r, req->index[i], &st) < 0)
                return -1;
    } else if (local_deliver_batch(cfg, maps, req->sender, req->junk, addrs, want, req->n, msg, &b) < 0) {
        close(msg_fd);
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 out of memory for local delivery");
        for (size_t i = 0; i < req->n; i++)
            if (send_result(fd, &r, req->index[i], &st) < 0)
                return -1;
    } else {
        close(msg_fd);
        int rc = 0;
        for (size_t i = 0; i < req->n && rc == 0; i++) {
            r.index = req->index[i];
            if (b.home[i]) {
                r.type = LJOB_HOME;
                str_copy(r.user, b.home_user[i], sizeof r.user);
                str_copy(r.rcpt, b.home_rcpt[i], sizeof r.rcpt);
                rc = send_reply(fd, &r);
                continue;
            }
            /* The expansion first: the queue takes it as part of the OK that follows. */
            for (size_t k = 0; k < b.add[i].n && rc == 0; k++) {
                r.type = LJOB_ADD;
                str_copy(r.target, b.add[i].v[k], sizeof r.target);
                rc = send_reply(fd, &r);
            }
            if (rc == 0 && b.done[i])
                rc = send_result(fd, &r, req->index[i], &b.st[i]);
        }
        local_batch_free(&b);
        if (rc < 0)
            return -1;
    }
    r.type = LJOB_DONE;
    return send_reply(fd, &r);
}

int local_worker_main(const struct ferry_config *cfg, int fd)
{
    struct local_maps maps;
    memset(&maps, 0, sizeof maps);
    maps.users_transient = true;        /* a worker may be killed mid-delivery */
    struct local_job_request *req = malloc(sizeof *req);
    int rc = 0;
    while (req) {
        /* Idle: a kept LMTP connection is closed after LMTP_IDLE seconds. */
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int ready = poll(&p, 1, lmtp_is_open() ? LMTP_IDLE * 1000 : -1);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0) {
            lmtp_close();
            continue;
        }
        uint32_t type;
        void *data;
        size_t len;
        if (ipc_recv_blocking(fd, &type, &data, &len) < 0)
            break;      /* the queue process closed its end: stop */
        int bad = type != LJOB_REQUEST || local_job_request_parse(data, len, req) < 0;
        free(data);
        if (bad) {
            log_error("delivery worker: malformed request from the queue process (type %u, %zu octets)", type, len);
            rc = 1;
            break;
        }
        if (run_job(cfg, &maps, fd, req) < 0)
            break;
    }
    free(req);
    local_maps_free(&maps);
    return rc;
}

/* delivery_pool — see delivery_pool.h.
 *
 * A callback may free whatever the caller hangs on the job (the attempt), and
 * may submit again; so a job is taken off its worker and out of the pool's
 * lists before any callback about it runs, and dispatching new work happens
 * from an event of its own, never from inside submit. */
#include "queue/delivery_pool.h"
#include "lib/proc_fork.h"
#include "delivery/local_job.h"
#include "delivery/local_resolve.h"
#include "delivery/local_worker.h"
#include "lib/buf.h"
#include "lib/ipc.h"
#include "lib/log.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct pool_job {
    uint64_t nonce;
    char id[LOCAL_JOB_ID_MAX];
    char *payload;                  /* the formatted request */
    size_t len;
    size_t n;
    unsigned index[LOCAL_JOB_MAX_RCPTS];
    bool answered[LOCAL_JOB_MAX_RCPTS];
    size_t nadd[LOCAL_JOB_MAX_RCPTS];
    struct delivery_pool_cb cb;
    void *arg;
    struct pool_job *next;
};

struct worker {
    struct delivery_pool *p;
    pid_t pid;                      /* 0: the slot is free */
    struct ipc_chan *chan;
    struct pool_job *job;           /* NULL: idle */
    struct event *timer;            /* the job's time limit */
};

struct delivery_pool {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct worker *w;
    size_t nw;                      /* local_concurrency */
    struct pool_job *head, *tail;   /* waiting for a worker */
    size_t backlog;
    uint64_t next_nonce;
    struct event *kick;             /* dispatch, from the loop */
    struct event *sigchld;
    pid_t *reap;                    /* workers gone, still to be waited for */
    size_t nreap, reapcap;
};

static void job_free(struct pool_job *j)
{
    if (j) {
        free(j->payload);
        free(j);
    }
}

static void kick(struct delivery_pool *p)
{
    event_active(p->kick, EV_TIMEOUT, 0);
}

/* Every recipient not answered yet gets st, then the job is done. j is no
   longer on any list. */
static void job_finish(struct pool_job *j, const struct delivery_status *st)
{
    for (size_t k = 0; k < j->n; k++)
        if (!j->answered[k])
            j->cb.result(j->arg, j->index[k], st);
    j->cb.done(j->arg);
    job_free(j);
}

static void reap_later(struct delivery_pool *p, pid_t pid)
{
    /* Its SIGCHLD may have been handled before we knew it was gone. */
    if (waitpid(pid, NULL, WNOHANG) == pid)
        return;
    if (p->nreap == p->reapcap) {
        size_t cap = p->reapcap ? p->reapcap * 2 : 8;
        pid_t *v = realloc(p->reap, cap * sizeof *v);
        if (!v)
            return;     /* a zombie until the queue process exits: harmless */
        p->reap = v;
        p->reapcap = cap;
    }
    p->reap[p->nreap++] = pid;
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
    struct delivery_pool *p = arg;
    for (size_t i = 0; i < p->nreap; ) {
        int ws;
        pid_t r = waitpid(p->reap[i], &ws, WNOHANG);
        if (r == p->reap[i] || (r < 0 && errno == ECHILD))
            p->reap[i] = p->reap[--p->nreap];
        else
            i++;
    }
}

/* The worker is gone or must go: kill it, and end its job with st. */
static void worker_lost(struct worker *w, const struct delivery_status *st)
{
    struct delivery_pool *p = w->p;
    struct pool_job *j = w->job;
    kill(w->pid, SIGKILL);
    reap_later(p, w->pid);
    ipc_chan_free(w->chan);     /* safe inside its own callbacks (lib/ipc.c) */
    w->chan = NULL;
    w->pid = 0;
    w->job = NULL;
    evtimer_del(w->timer);
    kick(p);
    if (j)
        job_finish(j, st);
}

static void lost_for(struct worker *w, const char *code, const char *why)
{
    struct delivery_status st;
    if (w->job)
        log_msg(LOG_LVL_WARN, w->job->id, "delivery worker pid %ld %s; its recipients are deferred",
                (long)w->pid, why);
    else
        log_warn("delivery worker pid %ld %s", (long)w->pid, why);
    delivery_set(&st, DELIVERY_DEFER, "%s delivery agent %s", code, why);
    worker_lost(w, &st);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    lost_for(arg, "4.4.7", "timed out and was killed");
}

static void on_worker_close(struct ipc_chan *c, void *arg)
{
    struct worker *w = arg;
    if (w->job)
        lost_for(w, "4.3.0", "died");
    else
        worker_lost(w, NULL);   /* idle: nothing to tell anyone */
}

static ssize_t job_slot(const struct pool_job *j, unsigned index)
{
    for (size_t k = 0; k < j->n; k++)
        if (j->index[k] == index)
            return (ssize_t)k;
    return -1;
}

static void on_worker_msg(struct ipc_chan *c, uint32_t type, const void *data, size_t len, void *arg)
{
    struct worker *w = arg;
    struct pool_job *j = w->job;
    struct local_job_reply r;
    if (!j || local_job_reply_parse(type, data, len, &r) < 0 || r.nonce != j->nonce || strcmp(r.id, j->id)) {
        lost_for(w, "4.3.0", "sent an answer that belongs to no job");
        return;
    }
    if (r.type == LJOB_DONE) {
        struct delivery_status st;
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 the delivery agent gave no result");
        w->job = NULL;
        evtimer_del(w->timer);
        kick(w->p);
        job_finish(j, &st);
        return;
    }
    ssize_t k = job_slot(j, r.index);
    if (k < 0 || j->answered[k] || (r.type == LJOB_ADD && j->nadd[k] >= LOCAL_RESOLVE_MAX_TARGETS)) {
        lost_for(w, "4.3.0", "answered for a recipient it was not given");
        return;
    }
    switch (r.type) {
    case LJOB_ADD:
        j->nadd[k]++;
        j->cb.add(j->arg, r.index, r.target);
        break;
    case LJOB_RESULT:
        j->answered[k] = true;
        j->cb.result(j->arg, r.index, &r.st);
        break;
    case LJOB_HOME:
        j->answered[k] = true;
        j->cb.home(j->arg, r.index, r.user, r.rcpt);
        break;
    default:
        break;
    }
}

/* In the child: nothing of the queue process's stays but the channel and stdio. */
static void worker_child(struct delivery_pool *p, int fd)
{
    /* Signals: proc_fork reset them (SIGPIPE ignored: a command that stops
       reading is an EPIPE, not our death). */
    /* The queue's lock, spool, listeners, DNS and SMTP sockets all go: a worker
       outliving the queue process must not hold its lock. */
    proc_close_from(3, &fd, 1);
    log_reopen("delivery");
    _exit(local_worker_main(p->cfg, fd));
}

static int worker_start(struct worker *w)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -1;
    pid_t pid = proc_fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        worker_child(w->p, sv[1]);
    }
    close(sv[1]);
    w->pid = pid;
    w->chan = ipc_chan_new(w->p->base, sv[0], on_worker_msg, on_worker_close, w);
    if (!w->chan) {
        close(sv[0]);
        kill(pid, SIGKILL);
        reap_later(w->p, pid);
        w->pid = 0;
        return -1;
    }
    log_debug("delivery worker started, pid %ld", (long)pid);
    return 0;
}

static unsigned job_limit(const struct delivery_pool *p, const struct pool_job *j)
{
    unsigned long long s = LOCAL_JOB_GRACE + (unsigned long long)j->n * p->cfg->pipe_timeout +
                           4ULL * p->cfg->lmtp_timeout;
    return s > 7 * 86400ULL ? 7 * 86400 : (unsigned)s;
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct delivery_pool *p = arg;
    int err = 0;
    while (p->head) {
        struct worker *w = NULL, *free_slot = NULL;
        bool any = false;
        for (size_t i = 0; i < p->nw && !w; i++) {
            if (p->w[i].pid && !p->w[i].job)
                w = &p->w[i];
            else if (!p->w[i].pid && !free_slot)
                free_slot = &p->w[i];
            any = any || p->w[i].pid;
        }
        if (!w && free_slot) {
            if (worker_start(free_slot) == 0)
                w = free_slot;
            else
                err = errno;
        }
        if (!w && (any || !err))
            return;     /* a busy worker will take it when it is done */
        struct pool_job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->backlog--;
        j->next = NULL;
        if (!w) {
            /* No worker at all and none can start: tried again later. */
            struct delivery_status st;
            delivery_set(&st, DELIVERY_DEFER, "4.3.0 cannot start a delivery agent: %s", strerror(err));
            log_msg(LOG_LVL_ERROR, j->id, "cannot start a delivery worker: %s", strerror(err));
            job_finish(j, &st);
            continue;
        }
        w->job = j;
        struct timeval tv = { (time_t)job_limit(p, j), 0 };
        evtimer_add(w->timer, &tv);
        if (ipc_chan_send(w->chan, LJOB_REQUEST, j->payload, j->len) < 0)
            lost_for(w, "4.3.0", "could not be given the job");
    }
}

int delivery_pool_submit(struct delivery_pool *p, const char *id, const char *sender, bool junk,
                         const unsigned *index, const char *const *rcpts, size_t n,
                         const struct delivery_pool_cb *cb, void *arg)
{
    if (n == 0 || n > LOCAL_JOB_MAX_RCPTS)
        return -1;
    struct local_job_request *req = calloc(1, sizeof *req);
    struct pool_job *j = calloc(1, sizeof *j);
    char *payload = malloc(LOCAL_JOB_REQUEST_MAX);
    int len = -1;
    if (req && j && payload) {
        req->nonce = p->next_nonce++;
        str_copy(req->id, id, sizeof req->id);
        req->junk = junk;
        str_copy(req->sender, sender, sizeof req->sender);
        req->n = n;
        for (size_t k = 0; k < n; k++) {
            req->index[k] = index[k];
            str_copy(req->rcpt[k], rcpts[k], sizeof req->rcpt[k]);
        }
        len = local_job_request_format(req, payload, LOCAL_JOB_REQUEST_MAX);
    }
    if (len < 0) {
        free(req);
        free(j);
        free(payload);
        return -1;
    }
    j->nonce = req->nonce;
    str_copy(j->id, id, sizeof j->id);
    j->payload = payload;
    j->len = (size_t)len;
    j->n = n;
    memcpy(j->index, index, n * sizeof *index);
    j->cb = *cb;
    j->arg = arg;
    free(req);
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->backlog++;
    kick(p);
    return 0;
}

size_t delivery_pool_backlog(const struct delivery_pool *p)
{
    return p->backlog;
}

struct delivery_pool *delivery_pool_new(struct event_base *base, const struct ferry_config *cfg)
{
    struct delivery_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->base = base;
    p->cfg = cfg;
    p->nw = cfg->local_concurrency;
    p->w = calloc(p->nw, sizeof *p->w);
    /* Nonces need only differ between the jobs of one queue process; a random
       start keeps a stale answer from lining up with a new job by chance. */
    p->next_nonce = (uint64_t)random() << 32 ^ (uint64_t)random() ^ (uint64_t)time(NULL);
    p->kick = event_new(base, -1, 0, on_kick, p);
    p->sigchld = evsignal_new(base, SIGCHLD, on_sigchld, p);
    bool ok = p->w && p->kick && p->sigchld && event_add(p->sigchld, NULL) == 0;
    for (size_t i = 0; ok && i < p->nw; i++) {
        p->w[i].p = p;
        p->w[i].timer = evtimer_new(base, on_timeout, &p->w[i]);
        ok = p->w[i].timer != NULL;
    }
    if (!ok) {
        delivery_pool_free(p);
        return NULL;
    }
    return p;
}

/* Wait for a worker told to stop, but not for ever: one that neither dies of
   SIGTERM nor sees its channel close (stopped, or wedged) is killed after
   WORKER_STOP_MS, so the queue process itself always gets to exit. */
#define WORKER_STOP_MS 3000
static void stop_worker(pid_t pid)
{
    for (int waited = 0; waited < WORKER_STOP_MS; waited += 10) {
        pid_t r = waitpid(pid, NULL, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return;
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    log_warn("delivery worker %ld did not stop within %d ms; killing it", (long)pid, WORKER_STOP_MS);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

void delivery_pool_free(struct delivery_pool *p)
{
    if (!p)
        return;
    for (size_t i = 0; p->w && i < p->nw; i++) {
        struct worker *w = &p->w[i];
        if (w->pid) {
            kill(w->pid, SIGTERM);
            ipc_chan_free(w->chan);     /* and its end of the channel: EOF ends it too */
            stop_worker(w->pid);
        }
        job_free(w->job);
        if (w->timer)
            event_free(w->timer);
    }
    while (p->head) {
        struct pool_job *j = p->head;
        p->head = j->next;
        job_free(j);
    }
    for (size_t i = 0; i < p->nreap; i++)
        waitpid(p->reap[i], NULL, WNOHANG);
    if (p->kick)
        event_free(p->kick);
    if (p->sigchld)
        event_free(p->sigchld);
    free(p->reap);
    free(p->w);
    free(p);
}

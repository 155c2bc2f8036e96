/* queue_attempt_local — an attempt's local recipients: handed to the delivery
   workers (queue/delivery_pool.h) and their answers taken back; home-directory
   deliveries asked of the parent (PROC_HOME_DELIVER) and its answers. */
#include "queue/queue_proc_int.h"
#include "delivery/delivery.h"
#include "delivery/home_delivery.h"
#include "delivery/local.h"
#include "delivery/local_job.h"
#include "lib/buf.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/proc_msg.h"
#include "queue/delivery_pool.h"

#include <event2/event.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Home deliveries (mailbox_owner = system) go to the parent; its answer comes
   back as PROC_HOME_RESULT. False when the request cannot be sent. */
static bool request_home(struct attempt *a, size_t i)
{
    struct home_request hr;
    memset(&hr, 0, sizeof hr);
    str_copy(hr.id, a->id, sizeof hr.id);
    hr.index = (unsigned)i;
    str_copy(hr.user, a->lb.home_user[i], sizeof hr.user);
    str_copy(hr.sender, a->e.sender, sizeof hr.sender);
    str_copy(hr.rcpt, a->lb.home_rcpt[i], sizeof hr.rcpt);
    hr.junk = a->e.quarantine[0] != '\0';
    char line[1024];
    int n = home_request_format(&hr, line, sizeof line);
    return n > 0 && ipc_chan_send(a->q->parent, PROC_HOME_DELIVER, line, (size_t)n) == 0;
}

/* The parent never answered (it dropped the request, or the queue process was
   told nothing): the deliveries still awaited are tried again later. */
static void on_home_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct attempt *a = arg;
    size_t waiting = 0;
    struct delivery_status st;
    for (size_t i = 0; i < a->n0; i++) {
        if (!a->home_wait[i])
            continue;
        a->home_wait[i] = false;
        delivery_set(&st, DELIVERY_DEFER, "4.4.7 no answer about the delivery as %s", a->lb.home_user[i]);
        qp_record(a, i, &st, false, NULL, NULL);
        waiting++;
    }
    if (waiting == 0)
        return;
    a->remote_pending -= waiting - 1;
    qp_pending_done(a);        /* the last: may free a */
}

void qp_on_home_result(struct queue_proc *q, const void *data, size_t len)
{
    struct home_result hr;
    if (home_result_parse(data, len, &hr) < 0) {
        log_warn("malformed home delivery result from the parent (%zu octets)", len);
        return;
    }
    for (struct attempt *a = q->inflight; a; a = a->next) {
        if (strcmp(a->id, hr.id) != 0)
            continue;
        if (hr.index >= a->n0 || !a->lb.home || !a->lb.home[hr.index] || !a->home_wait[hr.index])
            break;
        a->home_wait[hr.index] = false;
        qp_record(a, hr.index, &hr.st, false, NULL, NULL);
        qp_pending_done(a);
        return;
    }
    log_warn("%s: home delivery result for an attempt no longer waiting (index %u)", hr.id, hr.index);
}

/* A worker resolved recipient i to a mailbox the parent writes as a system user. */
static void start_home(struct attempt *a, size_t i)
{
    struct queue_proc *q = a->q;
    if (!a->home_wait)
        a->home_wait = calloc(a->n0, sizeof *a->home_wait);
    if (a->home_wait && !a->home_timer) {
        a->home_timer = evtimer_new(q->base, on_home_timeout, a);
        struct timeval tv = {HOME_TIMEOUT_SECONDS + 60, 0};
        if (a->home_timer)
            evtimer_add(a->home_timer, &tv);
    }
    if (a->home_wait && a->home_timer && request_home(a, i)) {
        a->home_wait[i] = true;
        a->remote_pending++;
        return;
    }
    struct delivery_status st;
    delivery_set(&st, DELIVERY_DEFER, "4.3.0 cannot ask the parent to deliver as %s", a->lb.home_user[i]);
    qp_record(a, i, &st, false, NULL, NULL);
}

/* ---- answers from the delivery workers (queue/delivery_pool.h) ---- */

static void on_local_add(void *arg, unsigned index, const char *target)
{
    struct attempt *a = arg;
    struct local_new_rcpts *x = &a->lb.add[index];
    if (x->n == 0 || (x->n & (x->n - 1)) == 0) {     /* grow by doubling */
        void *v = realloc(x->v, (x->n ? 2 * x->n : 1) * sizeof *x->v);
        if (!v) {
            a->add_lost[index] = true;
            return;
        }
        x->v = v;
    }
    str_copy(x->v[x->n++], target, sizeof x->v[0]);
}

static void on_local_result(void *arg, unsigned index, const struct delivery_status *st)
{
    struct attempt *a = arg;
    struct delivery_status lost;
    if (st->result == DELIVERY_OK && a->add_lost[index]) {
        delivery_set(&lost, DELIVERY_DEFER, "4.3.0 out of memory keeping the expansion");
        st = &lost;
    }
    if (st->result != DELIVERY_OK) {
        /* Only an OK carries an expansion; a worker that died after sending part
           of one leaves nothing behind. */
        free(a->lb.add[index].v);
        a->lb.add[index].v = NULL;
        a->lb.add[index].n = 0;
    }
    qp_record(a, index, st, false, NULL, NULL);
}

static void on_local_home(void *arg, unsigned index, const char *user, const char *rcpt)
{
    struct attempt *a = arg;
    a->lb.home[index] = true;
    str_copy(a->lb.home_user[index], user, sizeof a->lb.home_user[index]);
    str_copy(a->lb.home_rcpt[index], rcpt, sizeof a->lb.home_rcpt[index]);
    start_home(a, index);
}

static void on_local_done(void *arg)
{
    qp_pending_done(arg);
}

static const struct delivery_pool_cb local_cb = { on_local_add, on_local_result, on_local_home, on_local_done };

/* Hand the local recipients idx[0..n) of a to the delivery workers: one job per
   recipient, except those that must share an LMTP transaction
   (local_txn_key), at most LOCAL_JOB_MAX_RCPTS a job. */
void qp_submit_local(struct attempt *a, const size_t *idx, size_t n)
{
    struct queue_proc *q = a->q;
    if (n == 0)
        return;
    char **keys = calloc(n, sizeof *keys);
    bool *taken = calloc(n, sizeof *taken);
    unsigned *jidx = calloc(LOCAL_JOB_MAX_RCPTS, sizeof *jidx);
    const char **jrcpt = calloc(LOCAL_JOB_MAX_RCPTS, sizeof *jrcpt);
    a->add_lost = calloc(a->n0, sizeof *a->add_lost);
    bool ok = keys && taken && jidx && jrcpt && a->add_lost && local_batch_alloc(&a->lb, a->n0) == 0;
    for (size_t g = 0; ok && g < n; g++) {
        char key[PATH_MAX + 8];
        local_txn_key(q->cfg, a->e.rcpts[idx[g]].addr, key, sizeof key);
        if (key[0] && !(keys[g] = strdup(key)))
            ok = false;
    }
    for (size_t g = 0; g < n; g++) {
        if (taken[g])
            continue;
        size_t k = 0;
        for (size_t h = g; ok && h < n && k < LOCAL_JOB_MAX_RCPTS; h++) {
            if (taken[h] || (h != g && (!keys[g] || !keys[h] || strcmp(keys[g], keys[h]))))
                continue;
            taken[h] = true;
            jidx[k] = (unsigned)idx[h];
            jrcpt[k++] = a->e.rcpts[idx[h]].addr;
        }
        if (ok && delivery_pool_submit(q->pool, a->id, a->e.sender, a->e.quarantine[0] != '\0', jidx, jrcpt, k,
                                       &local_cb, a) == 0) {
            a->remote_pending++;
            continue;
        }
        /* Out of memory: this job's recipients (or, when ok is false, just
           recipient g) are tried again later. */
        if (k == 0) {
            taken[g] = true;
            jidx[k++] = (unsigned)idx[g];
        }
        for (size_t x = 0; x < k; x++) {
            struct delivery_status st;
            qp_deliver_recipient(q, &a->e, &a->e.rcpts[jidx[x]], a->fd, &st);
            qp_record(a, jidx[x], &st, false, NULL, NULL);
        }
    }
    for (size_t g = 0; keys && g < n; g++)
        free(keys[g]);
    free(keys);
    free(taken);
    free(jidx);
    free(jrcpt);
}


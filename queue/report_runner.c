/* report_runner — see report_runner.h. */
#include "queue/report_runner.h"
#include "lib/proc_fork.h"
#include "lib/log.h"
#include "queue/dmarc_job.h"
#include "queue/tlsrpt_import.h"
#include "queue/tlsrpt_job.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct report_runner {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct event *timer;
    struct event *child_ev;     /* the read end of the child's pipe */
    pid_t child;
    int fd;
    time_t started;
};

static void schedule(struct report_runner *r, int seconds)
{
    struct timeval tv = { seconds, 0 };
    evtimer_add(r->timer, &tv);
}

static void child_gone(evutil_socket_t fd, short what, void *arg)
{
    struct report_runner *r = arg;
    char c;
    if (read(fd, &c, 1) > 0)
        return;                 /* the child writes nothing; only the end matters */
    int status = 0;
    if (waitpid(r->child, &status, 0) == r->child) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            log_debug("dmarc report run %ld done", (long)r->child);
        else
            log_warn("dmarc report run %ld ended with status %d", (long)r->child, status);
    }
    event_free(r->child_ev);
    r->child_ev = NULL;
    close(r->fd);
    r->fd = -1;
    r->child = 0;
}

static void run_child(const struct ferry_config *cfg)
{
    struct dmarc_job_result res = {0};
    char err[512];
    if (dmarc_job_lock(cfg) < 0) {
        log_info("dmarc reports: another run is going on; this one is skipped");
        _exit(0);
    }
    if (dmarc_job_import(cfg, err, sizeof err) < 0)
        log_error("dmarc reports received: %s", err);
    if (tlsrpt_import_run(cfg, err, sizeof err) < 0)
        log_error("tls-rpt reports received: %s", err);
    if (dmarc_job_failures(cfg, err, sizeof err) < 0)
        log_error("dmarc failure reports: %s", err);
    int rc = cfg->dmarc_reporting ? dmarc_job_run(cfg, false, NULL, &res, err, sizeof err) : 0;
    if (rc < 0)
        log_error("dmarc reports: %s", err);
    else if (rc == 0 && res.reports)
        log_info("dmarc reports: %u due, %u sent, %u too big, %u failed, %u left for later", res.reports, res.sent,
                 res.too_big, res.failed, res.skipped);
    struct tlsrpt_job_result tr;
    if (cfg->tlsrpt) {
        if (tlsrpt_job_run(cfg, (long long)time(NULL), &tr, err, sizeof err) < 0)
            log_error("tls-rpt reports: %s", err);
        else if (tr.reports || tr.pending)
            log_info("tls-rpt reports: %u built, %u mailed, %u posted, %u failed, %u left for later", tr.reports,
                     tr.mailed, tr.posted, tr.failed, tr.pending);
    }
    _exit(rc < 0 ? 1 : 0);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct report_runner *r = arg;
    schedule(r, REPORT_CHECK_SECONDS);
    if (r->child) {
        /* Never killed (see DMARC_JOB_SECONDS): a run stops starting work on its own. */
        if (time(NULL) - r->started > REPORT_RUN_MAX_SECONDS)
            log_warn("dmarc report run %ld has been going for %lld s", (long)r->child,
                     (long long)(time(NULL) - r->started));
        return;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        log_warn("dmarc reports: cannot make a pipe: %s", strerror(errno));
        return;
    }
    /* The watch exists before the child does: nothing below can leave a child
       the loop does not hear of. */
    r->child_ev = event_new(r->base, p[0], EV_READ | EV_PERSIST, child_gone, r);
    if (!r->child_ev || event_add(r->child_ev, NULL) < 0) {
        log_warn("dmarc reports: cannot watch a run; trying again later");
        if (r->child_ev)
            event_free(r->child_ev);
        r->child_ev = NULL;
        close(p[0]);
        close(p[1]);
        return;
    }
    pid_t pid = proc_fork();
    if (pid < 0) {
        log_warn("dmarc reports: cannot fork: %s", strerror(errno));
        event_free(r->child_ev);
        r->child_ev = NULL;
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        /* Only the pipe's write end stays (its closing tells the queue we are
           done): the queue's lock, spool, sockets and workers' channels all go,
           so a run outliving the queue process holds none of them. */
        int keep = p[1] == 3 ? 3 : dup2(p[1], 3);
        if (keep == 3) {
            proc_close_from(4, NULL, 0);
            log_reopen("dmarc-reports");
            run_child(r->cfg);
        }
        _exit(1);
    }
    close(p[1]);
    r->child = pid;
    r->fd = p[0];
    r->started = time(NULL);
}

struct report_runner *report_runner_start(struct event_base *base, const struct ferry_config *cfg)
{
    struct report_runner *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base = base;
    r->cfg = cfg;
    r->fd = -1;
    r->timer = evtimer_new(base, on_timer, r);
    if (!r->timer) {
        free(r);
        return NULL;
    }
    if (cfg->dmarc_reporting || cfg->dmarc_reports_address[0] || cfg->dmarc_failure_reports || cfg->tlsrpt)
        schedule(r, REPORT_FIRST_SECONDS);
    return r;
}

void report_runner_free(struct report_runner *r)
{
    if (!r)
        return;
    event_free(r->timer);
    if (r->child_ev)
        event_free(r->child_ev);
    if (r->fd >= 0)
        close(r->fd);
    free(r);
}

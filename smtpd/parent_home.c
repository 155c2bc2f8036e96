/* parent_home — see parent_home.h. */
#include "smtpd/parent_home.h"
#include "lib/proc_fork.h"
#include "lib/privsep.h"
#include "delivery/home_delivery.h"
#include "lib/buf.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/qid.h"
#include "smtpd/smtp_proc.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct home_job {
    struct home_jobs *h;
    struct home_request req;
    pid_t pid;
    int fd;                         /* the read end of the child's result pipe */
    struct event *ev;
    char buf[1024];
    size_t len;
    struct home_job *next;
};

struct home_jobs {
    struct event_base *base;
    struct ipc_chan **reply_chan;
    void (*child_cleanup)(void *arg);
    void *cleanup_arg;
    struct home_job *jobs;
    size_t njobs;
};

struct home_jobs *home_jobs_new(struct event_base *base, struct ipc_chan **reply_chan,
                                void (*child_cleanup)(void *arg), void *cleanup_arg)
{
    struct home_jobs *h = calloc(1, sizeof *h);
    if (h) {
        h->base = base;
        h->reply_chan = reply_chan;
        h->child_cleanup = child_cleanup;
        h->cleanup_arg = cleanup_arg;
    }
    return h;
}

static void reply(struct home_jobs *h, const char *id, unsigned index, enum delivery_result r, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void reply(struct home_jobs *h, const char *id, unsigned index, enum delivery_result r, const char *fmt, ...)
{
    struct home_result res;
    memset(&res, 0, sizeof res);
    str_copy(res.id, id, sizeof res.id);
    res.index = index;
    res.st.result = r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res.st.text, sizeof res.st.text, fmt, ap);
    va_end(ap);
    char line[1024];
    int n = home_result_format(&res, line, sizeof line);
    if (n > 0 && *h->reply_chan)
        ipc_chan_send(*h->reply_chan, PROC_HOME_RESULT, line, (size_t)n);
}

static void job_free(struct home_job *j)
{
    struct home_jobs *h = j->h;
    struct home_job **pp = &h->jobs;
    while (*pp && *pp != j)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = j->next;
        h->njobs--;
    }
    if (j->ev)
        event_free(j->ev);
    if (j->fd >= 0)
        close(j->fd);
    free(j);
}

static void on_result(evutil_socket_t fd, short what, void *arg)
{
    struct home_job *j = arg;
    if (what & EV_TIMEOUT) {
        kill(j->pid, SIGKILL);          /* reaped by the parent's SIGCHLD handler */
        log_warn("%s: delivery as %s timed out after %d s; the child was killed", j->req.id, j->req.user,
                 HOME_TIMEOUT_SECONDS);
        reply(j->h, j->req.id, j->req.index, DELIVERY_DEFER, "4.4.7 delivery as %s timed out", j->req.user);
        job_free(j);
        return;
    }
    ssize_t n = read(fd, j->buf + j->len, sizeof j->buf - 1 - j->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n > 0) {
        j->len += (size_t)n;
        if (j->len < sizeof j->buf - 1)
            return;
    }
    /* End of the pipe (or a full buffer): the child has said all it will. */
    struct home_result res;
    if (home_result_parse(j->buf, j->len, &res) == 0 && !strcmp(res.id, j->req.id) && res.index == j->req.index) {
        reply(j->h, res.id, res.index, res.st.result, "%s", res.st.text);
    } else {
        log_warn("%s: delivery as %s ended without a result", j->req.id, j->req.user);
        reply(j->h, j->req.id, j->req.index, DELIVERY_DEFER, "4.3.0 delivery as %s ended without a result",
              j->req.user);
    }
    job_free(j);
}

/* In the forked child: become the user, deliver, report. Never returns. */
static void child_run(struct home_jobs *h, const struct ferry_config *cfg, const struct home_request *req,
                      const struct passwd *pw, int msg_fd, int out_fd)
{
    if (h->child_cleanup)
        h->child_cleanup(h->cleanup_arg);
    /* Nothing else of the parent's goes along either (other deliveries' pipes,
       the event loop's descriptors): only stdio, the message and the result pipe. */
    const int keep[2] = { msg_fd, out_fd };
    proc_close_from(3, keep, 2);
    struct home_result res;
    memset(&res, 0, sizeof res);
    str_copy(res.id, req->id, sizeof res.id);
    res.index = req->index;
    if (geteuid() == 0 && (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
                           setuid(pw->pw_uid) < 0 || setuid(0) == 0)) {
        delivery_set(&res.st, DELIVERY_DEFER, "4.3.0 cannot become user %s: %s", pw->pw_name, strerror(errno));
    } else if (geteuid() != pw->pw_uid) {
        delivery_set(&res.st, DELIVERY_DEFER, "4.3.0 delivery as %s needs ferryd started as root", pw->pw_name);
    } else if (chdir(pw->pw_dir) < 0) {
        delivery_set(&res.st, DELIVERY_DEFER, "4.2.0 home directory %s of %s: %s", pw->pw_dir, pw->pw_name,
                     strerror(errno));
    } else {
        umask(077);
        /* Only the message part of the file, judged as the user (lib/msgfile.h). */
        struct msg_src msg = { msg_fd, 0 };
        if (msgfile_msg_size(msg_fd, req->id, &msg.size) < 0)
            delivery_set(&res.st, DELIVERY_DEFER, "4.3.0 cannot read the queued message: %s", strerror(errno));
        else
            home_deliver(pw->pw_dir, req->sender, req->rcpt, req->junk, msg, cfg->mailbox_quota, &res.st);
    }
    char line[1024];
    int n = home_result_format(&res, line, sizeof line);
    if (n > 0)
        (void)!write(out_fd, line, (size_t)n);
    _exit(0);
}

void home_jobs_start(struct home_jobs *h, const struct ferry_config *cfg, const void *data, size_t len)
{
    struct home_request req;
    if (home_request_parse(data, len, &req) < 0 || !qid_valid(req.id)) {
        log_warn("malformed home delivery request from the queue process (%zu octets)", len);
        return;
    }
    if (h->njobs >= HOME_JOBS_MAX) {
        reply(h, req.id, req.index, DELIVERY_DEFER, "4.3.2 too many deliveries to home directories at once");
        return;
    }
    /* Looked up before the account: getpwnam's answer is overwritten by the next call. */
    /* The smtp user writes received mail, the queue user the bounces it makes. */
    uid_t daemon_uid = geteuid(), queue_uid = geteuid();
    gid_t daemon_gid;
    char err[256];
    if (geteuid() == 0 && (proc_lookup_user(cfg->user, &daemon_uid, &daemon_gid, err, sizeof err) < 0 ||
                           proc_lookup_user(privsep_queue_user(cfg), &queue_uid, &daemon_gid, err, sizeof err) < 0))
        daemon_uid = 0;
    struct passwd *pw = home_user_ok(req.user) ? getpwnam(req.user) : NULL;
    if (!pw) {
        reply(h, req.id, req.index, DELIVERY_FAIL, "5.1.1 %s is not a system account Ferry delivers to", req.user);
        return;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/queue/%s.msg", cfg->spool_dir, req.id);
    /* Root opens a file in a directory the daemon's user owns, on the queue
       process's word: what it opened must be that user's own regular file (not a
       link to, or a hard link of, a file of root's it would then deliver). */
    int msg_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (msg_fd < 0) {
        reply(h, req.id, req.index, DELIVERY_DEFER, "4.3.0 cannot open the queued message: %s", strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(msg_fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 || daemon_uid == 0 ||
        queue_uid == 0 || (st.st_uid != daemon_uid && st.st_uid != queue_uid)) {
        close(msg_fd);
        log_error("%s: refusing %s: not a regular file of the daemon's user %s", req.id, path, cfg->user);
        reply(h, req.id, req.index, DELIVERY_DEFER, "4.3.0 the queued message is not the daemon's own file");
        return;
    }
    int pfd[2];
    struct home_job *j = calloc(1, sizeof *j);
    if (!j || pipe2(pfd, O_CLOEXEC) < 0) {
        free(j);
        close(msg_fd);
        reply(h, req.id, req.index, DELIVERY_DEFER, "4.3.0 cannot start the delivery: %s", strerror(errno));
        return;
    }
    pid_t pid = proc_fork();
    if (pid == 0) {
        close(pfd[0]);
        child_run(h, cfg, &req, pw, msg_fd, pfd[1]);
    }
    close(pfd[1]);
    close(msg_fd);
    if (pid < 0) {
        close(pfd[0]);
        free(j);
        reply(h, req.id, req.index, DELIVERY_DEFER, "4.3.0 cannot fork for the delivery: %s", strerror(errno));
        return;
    }
    j->h = h;
    j->req = req;
    j->pid = pid;
    j->fd = pfd[0];
    j->ev = event_new(h->base, j->fd, EV_READ | EV_PERSIST, on_result, j);
    struct timeval tv = {HOME_TIMEOUT_SECONDS, 0};
    if (!j->ev || event_add(j->ev, &tv) < 0) {
        kill(pid, SIGKILL);
        reply(h, req.id, req.index, DELIVERY_DEFER, "4.3.0 cannot wait for the delivery");
        if (j->ev)
            event_free(j->ev);
        close(j->fd);
        free(j);
        return;
    }
    j->next = h->jobs;
    h->jobs = j;
    h->njobs++;
    log_info("%s: delivering to the home of %s (pid %ld)", req.id, req.user, (long)pid);
}

void home_jobs_free(struct home_jobs *h)
{
    if (!h)
        return;
    while (h->jobs) {
        kill(h->jobs->pid, SIGKILL);
        job_free(h->jobs);
    }
    free(h);
}

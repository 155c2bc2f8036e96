/* parent — see parent.h. */
#include "smtpd/parent.h"
#include "lib/proc_fork.h"
#include "delivery/local_map.h"
#include "delivery/relayhost_creds.h"
#include "delivery/tls_client.h"
#include "delivery/tls_policy.h"
#include "lib/tls.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "lib/privsep.h"
#include "lib/safe_dir.h"
#include "smtpd/authproc.h"
#include "smtpd/keyproc.h"
#include "queue/spool.h"
#include "queue/spool_spare.h"
#include "smtpd/parent_home.h"
#include "smtpd/smtp_proc.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum child_kind { CHILD_QUEUE, CHILD_SMTP, CHILD_KEYS, CHILD_AUTH, NCHILDREN };
static const char *const child_names[] = { "queue", "smtp", "keys", "auth" };

/* After a crash, wait this long before starting the child again. */
#define RESTART_DELAY_SECONDS 1
/* On SIGTERM, children that have not exited by then are killed. */
#define STOP_KILL_SECONDS 30

struct child {
    pid_t pid;
    struct ipc_chan *chan;
    struct event *restart_timer;
};

struct parent {
    struct event_base *base;
    struct ferry_config *cfg;
    int listen_fds[SETTINGS_MAX_LISTEN];
    struct child children[NCHILDREN];
    bool stopping;
    bool reloading;
    bool foreground;
    struct event *kill_timer;
    SSL_CTX *tls;                   /* built here, as root; the smtp child inherits it */
    struct relayhost_creds creds;       /* read here, as root; the queue child inherits them */
    struct home_jobs *home;         /* deliveries as system users (mailbox_owner = system) */
    /* The smtp process's links to the key and auth processes: SOCK_SEQPACKET
       socketpairs made here before any child, held open for the daemon's life so
       that a restarted child on either end takes over the same socket ([0] the
       service's end, [1] the smtp process's). Nobody else can reach them: no name
       in any namespace (authproc.h, keyproc.h). */
    int key_link[2], auth_link[2];
};

static void start_child(struct parent *p, enum child_kind k);

int parent_tls_ctx(const struct ferry_config *cfg, SSL_CTX **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg->tls_cert[0])
        return 0;
    *out = tls_server_ctx(cfg->tls_cert, cfg->tls_key, (enum tls_min)cfg->tls_min_version, cfg->tls_ciphers,
                          err, errlen);
    return *out ? 0 : -1;
}

int parent_check_files(const struct ferry_config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls_client_ctx_new(cfg->smtp_tls_ca_file[0] ? cfg->smtp_tls_ca_file : NULL, err, errlen);
    if (!ctx)
        return -1;
    SSL_CTX_free(ctx);
    if (cfg->smtp_tls_policy[0]) {
        struct tls_policy *tp = tls_policy_new((enum tls_level)cfg->smtp_tls_level);
        int rc = tp ? tls_policy_load(tp, cfg->smtp_tls_policy, err, errlen) : -1;
        tls_policy_free(tp);
        if (rc < 0)
            return -1;
    }
    if (cfg->relayhost_auth_file[0]) {
        struct relayhost_creds c;
        int rc = relayhost_creds_load(cfg->relayhost_auth_file, &c, err, errlen);
        relayhost_creds_wipe(&c);
        if (rc < 0)
            return -1;
    }
    const char *maps[2] = {cfg->alias_file, cfg->virtual_map};
    const enum local_map_syntax syn[2] = {LOCAL_MAP_ALIASES, LOCAL_MAP_VIRTUAL};
    for (int i = 0; i < 2; i++) {
        if (!maps[i][0])
            continue;
        struct local_map m;
        bool from_db, stale;
        memset(&m, 0, sizeof m);
        if (local_map_open(maps[i], syn[i], &m, &from_db, &stale, err, errlen) < 0)
            return -1;
        local_map_free(&m);
    }
    return 0;
}

/* Connections waiting to be accepted. Relaying clients open one connection per
   message, many at once; when this queue is full the kernel drops the next SYN
   and that client retries only after a second (then three): at 200 sessions in
   `make bench` a queue of 128 overflowed a few times per run and each overflow
   stalled a client for a second (issue 16). The kernel caps it at somaxconn. */
#define LISTEN_BACKLOG 1024

static int bind_listener(const struct listen_addr *l, char *err, size_t errlen)
{
    int fd = socket(l->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", l->text, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l->sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)&l->sa, l->salen) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", l->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int open_listeners(const struct ferry_config *cfg, int *fds, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        fds[i] = bind_listener(&cfg->listeners[i], err, errlen);
        if (fds[i] < 0) {
            while (i--)
                close(fds[i]);
            return -1;
        }
    }
    return 0;
}

static void close_listeners(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]), fds[i] = -1;
}

/* Can uid/gid reach (search every ancestor of) path? A root parent can make and
   chown a directory the dropped children then cannot enter, e.g. under /root. */
static bool reachable_by(const char *path, uid_t uid, gid_t gid, char *blocker, size_t sz)
{
    char cur[PATH_MAX];
    str_copy(cur, path, sizeof cur);
    for (char *s = cur + strlen(cur); s > cur; ) {
        struct stat st;
        if (stat(cur, &st) == 0) {
            mode_t need = st.st_uid == uid ? S_IXUSR : st.st_gid == gid ? S_IXGRP : S_IXOTH;
            if (!(st.st_mode & need)) {
                str_copy(blocker, cur, sz);
                return false;
            }
        }
        s = strrchr(cur, '/');
        if (!s)
            break;
        *s = '\0';
    }
    return true;
}

/* Make the directories the children write, and give each to the user that
   writes it: the spool and data_dir to the smtp user (shared with the queue user
   through its group when the two differ: lib/privsep.h), mail_dir to the queue
   user, whose delivery workers write it. */
static int prepare_dirs(const struct ferry_config *cfg, char *err, size_t errlen)
{
    bool root = geteuid() == 0;
    uid_t uid = 0, quid = 0;
    gid_t gid = 0, qgid = 0;
    const char *quser = privsep_queue_user(cfg);
    if (root && (proc_lookup_user(cfg->user, &uid, &gid, err, errlen) < 0 ||
                 proc_lookup_user(quser, &quid, &qgid, err, errlen) < 0))
        return -1;
    mode_t shared = privsep_dir_group_bits(cfg);
    if (spool_prepare_mode(cfg->spool_dir, root, uid, gid, shared, err, errlen) < 0 ||
        privsep_prepare_auth_dir(cfg, err, errlen) < 0 || privsep_prepare_queue_data_dir(cfg, err, errlen) < 0)
        return -1;
    /* The same rule as the spool's (lib/safe_dir.h): made or checked without
       following a link the daemon's user could have planted; an existing one
       keeps its mode (a mail_dir shared with an IMAP server's group, say), except
       that a shared data_dir must be open to the group. */
    /* mail_dir is the queue user's; shared, the smtp user's group may pass through
       it (0710), so that RCPT can see whether a mailbox exists, but not list it. */
    struct safe_owner o = { root, uid, gid }, qo = { root, quid, shared ? gid : qgid };
    const char *dirs[] = { cfg->data_dir, cfg->mail_dir };
    const struct safe_owner *owners[] = { &o, &qo };
    mode_t modes[] = { shared ? 0700 | shared : 0700 | SAFE_DIR_KEEP_MODE,
                       (shared ? 0710 : 0700) | SAFE_DIR_KEEP_MODE };
    for (int i = 0; i < 2; i++) {
        int fd = safe_dir_prepare(dirs[i], modes[i], owners[i], err, errlen);
        if (fd < 0)
            return -1;
        close(fd);
    }
    /* Who must get through the path to each: the queue user reaches the shared
       ones through the smtp user's group. */
    const struct { const char *dir, *who; uid_t uid; gid_t gid; } need[] = {
        { cfg->spool_dir, cfg->user, uid, gid }, { cfg->data_dir, cfg->user, uid, gid },
        { cfg->spool_dir, quser, quid, shared ? gid : qgid }, { cfg->data_dir, quser, quid, shared ? gid : qgid },
        { cfg->mail_dir, quser, quid, qgid },
        { cfg->mail_dir, cfg->user, uid, gid },
    };
    for (size_t i = 0; root && i < sizeof need / sizeof need[0]; i++) {
        char blocker[PATH_MAX];
        if (!reachable_by(need[i].dir, need[i].uid, need[i].gid, blocker, sizeof blocker)) {
            snprintf(err, errlen, "user %s cannot reach %s: %s is not searchable by it "
                     "(choose another user, or a directory it can reach)", need[i].who, need[i].dir, blocker);
            return -1;
        }
    }
    return 0;
}

/* Clean up what a previous run left: incoming/ was never acknowledged, and *.tmp
   in queue/ is a cut-short rewrite. This deletes files in directories the daemon's user
   owns, so it runs as that user (a forked child that drops privileges first),
   never as root: root would follow whatever that user had put there.
   Ordering: parent_run waits for this child to finish before it starts the smtp
   and queue processes, so incoming/ is empty before anyone writes to it; a reload
   restarts the children but does not run this again (an accepted message is in
   queue/ by then, and a draft of a running session must not be removed). */
static int recover_spool(const struct ferry_config *cfg, char *err, size_t errlen)
{
    pid_t pid = proc_fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot fork to clean the spool: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        struct spool sp;
        char cerr[256];
        umask(privsep_umask(cfg));
        if (proc_drop_privileges(cfg->user, cerr, sizeof cerr) < 0 ||
            spool_open(&sp, cfg->spool_dir, cerr, sizeof cerr) < 0) {
            log_error("%s", cerr);
            _exit(1);
        }
        int n = spool_clean_incoming(&sp);
        if (n > 0)
            log_info("removed %d unacknowledged files from %s/incoming", n, cfg->spool_dir);
        /* Only the *.tmp files: a stray queue/ID.msg is the queue process's to
           remove as its first scan reads the envelopes (issue 16: opening every
           message here as well made a start with 100 000 take 0.5 s longer). */
        spool_remove_temps(&sp);
        /* Emptied files kept for reuse (queue/spool_spare.h): none is needed, and
           starting empty means no file from before the start can be reused. */
        int spares = spare_clean(cfg->spool_dir);
        if (spares < 0)
            log_warn("cannot empty %s/spare: %s", cfg->spool_dir, strerror(errno));
        spool_close(&sp);
        _exit(n < 0 ? 1 : 0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(err, errlen, "cannot wait for the spool cleaner: %s", strerror(errno));
            return -1;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "cleaning %s/incoming as user %s failed (see the log)", cfg->spool_dir, cfg->user);
        return -1;
    }
    return 0;
}

/* The default follows spool_dir, as the control socket and the queue lock do, so
   several instances on one machine need nothing but their own config file. */
static const char *pid_file_path(const struct ferry_config *cfg, char *buf, size_t sz)
{
    if (cfg->pid_file[0])
        return cfg->pid_file;
    snprintf(buf, sz, "%s/ferryd.pid", cfg->spool_dir);
    return buf;
}

/* The pid file may be configured inside a directory the daemon's user owns: it is
   read without following a link, and written to a new file made exclusively
   (never through a link or into an existing file), then renamed into place. */
static int write_pid_file(const char *path, char *err, size_t errlen)
{
    int rfd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    FILE *f = rfd >= 0 ? fdopen(rfd, "r") : NULL;
    if (f) {
        long old = 0;
        if (fscanf(f, "%ld", &old) == 1 && old > 0 && old != getpid() && kill((pid_t)old, 0) == 0) {
            fclose(f);
            snprintf(err, errlen, "ferryd is already running as pid %ld (%s)", old, path);
            return -1;
        }
        fclose(f);
    } else if (rfd >= 0) {
        close(rfd);
    }
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
        snprintf(err, errlen, "cannot write pid file %s: %s", path, strerror(errno));
        if (!f && fd >= 0)
            close(fd);
        return -1;
    }
    return 0;
}

static void on_child_msg(struct ipc_chan *c, uint32_t type, const void *data, size_t len, void *arg)
{
    struct parent *p = arg;
    if (type == PROC_HOME_DELIVER && c == p->children[CHILD_QUEUE].chan) {
        if (p->home)
            home_jobs_start(p->home, p->cfg, data, len);
        return;
    }
    if (type == PROC_QUEUE_NEW || type == PROC_PULL_NUDGE) {
        if (p->children[CHILD_QUEUE].chan)
            ipc_chan_send(p->children[CHILD_QUEUE].chan, type, data, len);
        /* else: the queue's next scan finds it */
        return;
    }
    log_warn("unexpected message %u from a child", type);
}

static void on_child_close(struct ipc_chan *c, void *arg)
{
    struct parent *p = arg;
    for (int k = 0; k < NCHILDREN; k++) {
        if (p->children[k].chan == c) {
            ipc_chan_free(c);
            p->children[k].chan = NULL;
        }
    }
}

/* In a child: close both links but the end it serves (-1: none). */
static void close_links(struct parent *p, int keep)
{
    int *ends[] = { &p->key_link[0], &p->key_link[1], &p->auth_link[0], &p->auth_link[1] };
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        if (*ends[i] >= 0 && *ends[i] != keep) {
            close(*ends[i]);
            *ends[i] = -1;
        }
}

/* A home-delivery child keeps nothing of the parent's: no listener, no channel,
   no key material. */
static void home_child_cleanup(void *arg)
{
    struct parent *p = arg;
    close_listeners(p->listen_fds, p->cfg->nlisteners);
    for (int i = 0; i < NCHILDREN; i++)
        if (p->children[i].chan)
            close(ipc_chan_fd(p->children[i].chan));
    relayhost_creds_wipe(&p->creds);
    SSL_CTX_free(p->tls);       /* the server's private key stays with the parent */
    p->tls = NULL;
    close_links(p, -1);
}

/* The key process (keyproc.h) and the auth process (authproc.h) keep root's uid,
   if we have it, to read files only root may read (keys; users.db) but no
   capability; each holds nothing else of ours: no listener, no relay credentials,
   no TLS context, no link but its own, no configuration but its one directory,
   and confines itself to that directory. */
static int run_service(struct parent *p, enum child_kind k, int fd)
{
    close_listeners(p->listen_fds, p->cfg->nlisteners);
    relayhost_creds_wipe(&p->creds);
    SSL_CTX_free(p->tls);
    p->tls = NULL;
    int link = k == CHILD_KEYS ? p->key_link[0] : p->auth_link[0];
    close_links(p, link);
    char buf[PATH_MAX], dir[PATH_MAX];
    str_copy(dir, k == CHILD_KEYS ? p->cfg->dkim_key_dir : privsep_auth_dir(p->cfg, buf, sizeof buf), sizeof dir);
    privsep_trim_config(p->cfg, k == CHILD_KEYS ? PRIVSEP_KEYS : PRIVSEP_AUTH);
    return k == CHILD_KEYS ? keyproc_main(dir, fd, link) : authproc_main(dir, fd, link);
}

/* The parent's earlier calls left their frames below ours (paths, file names it
   worked with: auth_dir when it prepared it, say); a child wipes that stretch of
   the stack it inherited before it runs, so its memory holds only its part. */
static void __attribute__((noinline)) scrub_stack(void)
{
    char junk[256 * 1024];
    explicit_bzero(junk, sizeof junk);
    __asm__ __volatile__("" : : "r"(junk) : "memory");
}

static void start_child(struct parent *p, enum child_kind k)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        log_error("socketpair: %s", strerror(errno));
        return;
    }
    pid_t pid = proc_fork();       /* no SIGTERM lost before the child's own handlers */
    if (pid < 0) {
        log_error("cannot fork the %s process: %s", child_names[k], strerror(errno));
        close(sv[0]);
        close(sv[1]);
        struct timeval tv = { RESTART_DELAY_SECONDS, 0 };
        evtimer_add(p->children[k].restart_timer, &tv);
        return;
    }
    if (pid == 0) {
        /* The child: forget the parent's loop and signal handlers, keep only what
           this child needs, drop root, run. */
        scrub_stack();
        close(sv[0]);
        for (int i = 0; i < NCHILDREN; i++)
            if (p->children[i].chan)
                close(ipc_chan_fd(p->children[i].chan));
        if (k == CHILD_QUEUE)
            close_listeners(p->listen_fds, p->cfg->nlisteners);
        log_init(p->foreground ? LOG_TO_STDERR : (p->cfg->log == LOGDEST_STDERR ? LOG_TO_STDERR : LOG_TO_SYSLOG),
                 (enum log_level)p->cfg->log_level, child_names[k]);
        char err[256];
        if (k == CHILD_KEYS || k == CHILD_AUTH)
            _exit(run_service(p, k, sv[1]));
        if (k == CHILD_SMTP) {
            close(p->key_link[0]);
            close(p->auth_link[0]);
            p->key_link[0] = p->auth_link[0] = -1;
        }
        umask(privsep_umask(p->cfg));
        int dropped = k == CHILD_QUEUE ? proc_drop_to(privsep_queue_user(p->cfg), p->cfg->user, err, sizeof err)
                                       : proc_drop_privileges(p->cfg->user, err, sizeof err);
        if (dropped < 0) {
            log_error("%s", err);
            _exit(1);
        }
        if (k != CHILD_QUEUE)
            relayhost_creds_wipe(&p->creds);
        if (k == CHILD_QUEUE) {         /* the server's TLS context (and key) is the smtp side's */
            SSL_CTX_free(p->tls);
            p->tls = NULL;
            close_links(p, -1);
        }
        privsep_trim_config(p->cfg, k == CHILD_QUEUE ? PRIVSEP_QUEUE : PRIVSEP_SMTP);
        int rc = k == CHILD_QUEUE ? queue_process_main(p->cfg, sv[1], &p->creds)
                                  : smtp_process_main(p->cfg, sv[1], p->listen_fds, p->tls, p->key_link[1],
                                                      p->auth_link[1]);
        _exit(rc);
    }
    close(sv[1]);
    p->children[k].pid = pid;
    p->children[k].chan = ipc_chan_new(p->base, sv[0], on_child_msg, on_child_close, p);
    log_info("started the %s process, pid %ld", child_names[k], (long)pid);
    if (k == CHILD_KEYS && p->children[CHILD_SMTP].chan)
        ipc_chan_send(p->children[CHILD_SMTP].chan, PROC_KEYS_RESTARTED, NULL, 0);
}

static void on_restart(evutil_socket_t fd, short what, void *arg);

struct restart_arg {
    struct parent *p;
    enum child_kind k;
};
static struct restart_arg restart_args[NCHILDREN];

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    struct restart_arg *ra = arg;
    if (!ra->p->stopping && ra->p->children[ra->k].pid == 0)
        start_child(ra->p, ra->k);
}

static void all_stopped(struct parent *p)
{
    event_base_loopexit(p->base, NULL);
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
    struct parent *p = arg;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int k = 0; k < NCHILDREN; k++) {
            if (p->children[k].pid != pid)
                continue;
            p->children[k].pid = 0;
            if (p->children[k].chan) {
                ipc_chan_free(p->children[k].chan);
                p->children[k].chan = NULL;
            }
            bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            if (p->stopping) {
                log_info("the %s process has stopped", child_names[k]);
                continue;
            }
            if (p->reloading) {
                if (k != CHILD_KEYS || p->cfg->dkim_key_dir[0])
                    start_child(p, (enum child_kind)k);
                continue;
            }
            if (WIFSIGNALED(status))
                log_error("the %s process was killed by signal %d; restarting it", child_names[k], WTERMSIG(status));
            else
                log_error("the %s process exited with status %d; restarting it", child_names[k],
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            (void)clean;
            struct timeval tv = { RESTART_DELAY_SECONDS, 0 };
            evtimer_add(p->children[k].restart_timer, &tv);
        }
    }
    if (p->reloading && p->children[CHILD_QUEUE].pid && p->children[CHILD_SMTP].pid)
        p->reloading = false;
    if (p->stopping && !p->children[CHILD_QUEUE].pid && !p->children[CHILD_SMTP].pid)
        all_stopped(p);
}

static void signal_children(struct parent *p, int sig)
{
    for (int k = 0; k < NCHILDREN; k++)
        if (p->children[k].pid > 0)
            kill(p->children[k].pid, sig);
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
    struct parent *p = arg;
    log_warn("children did not stop within %d seconds; killing them", STOP_KILL_SECONDS);
    signal_children(p, SIGKILL);
}

static void on_sigterm(evutil_socket_t fd, short what, void *arg)
{
    struct parent *p = arg;
    if (p->stopping)
        return;
    log_info("stopping (signal %d)", (int)fd);
    p->stopping = true;
    for (int k = 0; k < NCHILDREN; k++)
        evtimer_del(p->children[k].restart_timer);
    signal_children(p, SIGTERM);
    if (!p->children[CHILD_QUEUE].pid && !p->children[CHILD_SMTP].pid) {
        all_stopped(p);
        return;
    }
    struct timeval tv = { STOP_KILL_SECONDS, 0 };
    evtimer_add(p->kill_timer, &tv);
}

static bool same_listeners(const struct ferry_config *a, const struct ferry_config *b)
{
    if (a->nlisteners != b->nlisteners)
        return false;
    for (size_t i = 0; i < a->nlisteners; i++)
        if (strcmp(a->listeners[i].text, b->listeners[i].text) != 0)
            return false;
    return true;
}

static void on_sighup(evutil_socket_t fd, short what, void *arg)
{
    struct parent *p = arg;
    if (p->stopping)
        return;
    struct ferry_config *next = malloc(sizeof *next);
    char err[CONF_ERR_MAX];
    if (!next)
        return;
    if (settings_load(p->cfg->path, next, err, sizeof err) < 0) {
        log_error("reload refused, keeping the running configuration: %s", err);
        free(next);
        return;
    }
    if (prepare_dirs(next, err, sizeof err) < 0) {
        log_error("reload refused: %s", err);
        settings_free(next);
        free(next);
        return;
    }
    SSL_CTX *tls = NULL;
    struct relayhost_creds creds = {0};
    if (parent_tls_ctx(next, &tls, err, sizeof err) < 0 ||
        (next->relayhost_auth_file[0] && relayhost_creds_load(next->relayhost_auth_file, &creds, err, sizeof err) < 0)) {
        log_error("reload refused, keeping the running configuration and certificate: %s", err);
        relayhost_creds_wipe(&creds);
        SSL_CTX_free(tls);
        settings_free(next);
        free(next);
        return;
    }
    if (!same_listeners(p->cfg, next)) {
        int fds[SETTINGS_MAX_LISTEN];
        close_listeners(p->listen_fds, p->cfg->nlisteners);
        if (open_listeners(next, fds, err, sizeof err) < 0) {
            log_error("reload: %s; keeping the old listeners", err);
            char err2[CONF_ERR_MAX];
            if (open_listeners(p->cfg, p->listen_fds, err2, sizeof err2) < 0)
                log_error("cannot reopen the old listeners either: %s", err2);
            settings_free(next);
            free(next);
            SSL_CTX_free(tls);
            return;
        }
        memcpy(p->listen_fds, fds, sizeof fds);
    }
    SSL_CTX_free(p->tls);       /* the running children keep their own copies */
    p->tls = tls;
    relayhost_creds_wipe(&p->creds);
    p->creds = creds;
    relayhost_creds_wipe(&creds);
    /* Children hold pointers into the old config only in their own copies (fork),
       so it can be freed now; each is restarted with the new one. */
    settings_free(p->cfg);
    free(p->cfg);
    p->cfg = next;
    log_set_level((enum log_level)next->log_level);
    log_info("configuration reloaded from %s; restarting children", next->path);
    p->reloading = true;
    signal_children(p, SIGTERM);
    if (!p->children[CHILD_KEYS].pid && next->dkim_key_dir[0])
        start_child(p, CHILD_KEYS);
}

static void daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("ferryd: fork");
        exit(1);
    }
    if (pid > 0)
        _exit(0);
    setsid();
    if (chdir("/") < 0)
        _exit(1);
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
}

/* Every connection costs the smtp process a descriptor: raise the soft limit to
   the hard one (no privilege needed; systemd's default soft limit is 1 024),
   and say when the sessions allowed cannot all be held even with idle ones
   parked in the holder (smtp_park.h), which has as many again. */
static void raise_nofile(const struct ferry_config *cfg)
{
    unsigned long long lim, hard;
    if (proc_nofile_raise(&lim, &hard) < 0)
        log_warn("cannot raise the descriptor limit to its hard limit %llu: %s", hard, strerror(errno));
    unsigned long long want = cfg->smtp_max_sessions + cfg->submission_max_sessions;
    log_info("descriptor limit %llu per process", lim);
    if (want + 256 > 2 * lim)
        log_warn("smtp_max_sessions + submission_max_sessions = %llu, more than this descriptor limit (%llu per "
                 "process, with idle sessions parked about %llu) can hold: raise RLIMIT_NOFILE (LimitNOFILE= "
                 "under systemd)", want, lim, 2 * lim > 256 ? 2 * lim - 256 : 0);
}

int parent_run(struct ferry_config *cfg, bool foreground)
{
    static struct parent p;
    char err[CONF_ERR_MAX];
    p.cfg = cfg;
    p.foreground = foreground;
    p.key_link[0] = p.key_link[1] = p.auth_link[0] = p.auth_link[1] = -1;
    for (size_t i = 0; i < SETTINGS_MAX_LISTEN; i++)
        p.listen_fds[i] = -1;

    enum log_target target = foreground || cfg->log == LOGDEST_STDERR ? LOG_TO_STDERR : LOG_TO_SYSLOG;
    log_init(target, (enum log_level)cfg->log_level, "parent");
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(cfg);

    if (prepare_dirs(cfg, err, sizeof err) < 0 || parent_tls_ctx(cfg, &p.tls, err, sizeof err) < 0 ||
        parent_check_files(cfg, err, sizeof err) < 0 ||
        (cfg->relayhost_auth_file[0] && relayhost_creds_load(cfg->relayhost_auth_file, &p.creds, err, sizeof err) < 0) ||
        open_listeners(cfg, p.listen_fds, err, sizeof err) < 0 || recover_spool(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "ferryd: %s\n", err);
        log_error("%s", err);
        goto fail;
    }
    /* An older Ferry kept the users' keys in data_dir, where the smtp process can
       read them: say so until the operator has moved them (README). */
    char old_users[PATH_MAX + 16];
    struct stat ost;
    snprintf(old_users, sizeof old_users, "%s/users.db", cfg->data_dir);
    if (lstat(old_users, &ost) == 0)
        log_warn("%s holds AUTH users of an older Ferry, keys and all, where the smtp process can read them; "
                 "they are not used: run \"ferryctl user sync\" to import them, then delete the file", old_users);
    if (!foreground)
        daemonize();
    char pidbuf[PATH_MAX + 16];
    const char *pid_path = pid_file_path(cfg, pidbuf, sizeof pidbuf);
    if (write_pid_file(pid_path, err, sizeof err) < 0) {
        fprintf(stderr, "ferryd: %s\n", err);
        log_error("%s", err);
        goto fail;
    }
    char pid_saved[PATH_MAX + 16];
    str_copy(pid_saved, pid_path, sizeof pid_saved);

    p.base = event_base_new();
    if (!p.base)
        goto fail;
    struct event *sig_term = evsignal_new(p.base, SIGTERM, on_sigterm, &p);
    struct event *sig_int = evsignal_new(p.base, SIGINT, on_sigterm, &p);
    struct event *sig_hup = evsignal_new(p.base, SIGHUP, on_sighup, &p);
    struct event *sig_chld = evsignal_new(p.base, SIGCHLD, on_sigchld, &p);
    p.kill_timer = evtimer_new(p.base, on_kill_timer, &p);
    for (int k = 0; k < NCHILDREN; k++) {
        restart_args[k].p = &p;
        restart_args[k].k = (enum child_kind)k;
        p.children[k].restart_timer = evtimer_new(p.base, on_restart, &restart_args[k]);
    }
    event_add(sig_term, NULL);
    event_add(sig_int, NULL);
    event_add(sig_hup, NULL);
    event_add(sig_chld, NULL);

    log_info("ferryd starting: hostname=%s spool=%s listeners=%zu uid=%ld", cfg->hostname, cfg->spool_dir,
             cfg->nlisteners, (long)geteuid());
    p.home = home_jobs_new(p.base, &p.children[CHILD_QUEUE].chan, home_child_cleanup, &p);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p.key_link) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, p.auth_link) < 0) {
        log_error("socketpair: %s", strerror(errno));
        goto fail;
    }
    if (p.cfg->dkim_key_dir[0])
        start_child(&p, CHILD_KEYS);   /* first: the smtp process asks it at once */
    start_child(&p, CHILD_AUTH);
    start_child(&p, CHILD_QUEUE);
    start_child(&p, CHILD_SMTP);
    event_base_dispatch(p.base);
    home_jobs_free(p.home);

    close_listeners(p.listen_fds, p.cfg->nlisteners);
    for (int k = 0; k < NCHILDREN; k++) {
        if (p.children[k].chan)
            ipc_chan_free(p.children[k].chan);
        event_free(p.children[k].restart_timer);
    }
    event_free(sig_term);
    event_free(sig_int);
    event_free(sig_hup);
    event_free(sig_chld);
    event_free(p.kill_timer);
    event_base_free(p.base);
    unlink(pid_saved);
    log_info("ferryd stopped");
    settings_free(p.cfg);
    free(p.cfg);        /* ours since the call; after a reload no longer the caller's pointer */
    SSL_CTX_free(p.tls);
    return 0;
fail:
    close_listeners(p.listen_fds, cfg->nlisteners);
    settings_free(cfg);
    free(cfg);
    return 1;
}

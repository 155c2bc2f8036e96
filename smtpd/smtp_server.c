/* smtp_server — see smtp_server.h. The smtp process's entry point is here too. */
#include "smtpd/smtp_server.h"
#include "lib/ipc.h"
#include "lib/log.h"
#include "auth/dmarc_agg.h"
#include "auth/dmarc_failure.h"
#include "auth/userdb.h"
#include "lib/db.h"
#include "lib/dns.h"
#include "smtpd/smtp_dmtp.h"
#include "lib/ratelimit.h"
#include "smtpd/dkim_keystore.h"
#include "smtpd/authproc.h"
#include "smtpd/keyproc.h"
#include "smtpd/smtp_proc.h"
#include "smtpd/smtp_pickup.h"
#include "smtpd/smtp_gtml.h"
#include "smtpd/smtp_park.h"
#include "smtpd/smtp_session.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* How long sessions busy with a message may take to finish after SIGTERM. */
#define STOP_GRACE_SECONDS 10
#define ACCEPT_PAUSE_MS 100

void smtp_server_session_gone(struct smtp_server *srv, struct smtp_session *s)
{
    if (s->committing) {
        /* Its draft is in a group commit, perhaps on a flusher thread right now:
           the session goes when the outcome comes back (smtp_session_committed
           ends the transaction and, CLOSING, comes here again). */
        s->state = SS_CLOSING;
        return;
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nsessions--;
    smtp_session_free(s);
    if (srv->stopping && srv->nsessions == 0)
        event_base_loopexit(srv->base, NULL);
}

void smtp_server_pull_nudge(struct smtp_server *srv)
{
    if (srv->parent)
        ipc_chan_send(srv->parent, PROC_PULL_NUDGE, "", 0);
}

double smtp_server_now(const struct smtp_server *srv)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    struct smtp_server *srv = arg;
    for (size_t i = 0; i < srv->cfg->nlisteners; i++) {
        if (srv->listeners[i] == l) {
            smtp_session_start(srv, fd, sa, (socklen_t)len, &srv->cfg->listeners[i]);
            return;
        }
    }
    close(fd);
}

/* Out of descriptors (EMFILE, ENFILE) or memory: every listener stays readable,
   and libevent would call accept() in a loop at full CPU. They rest for a
   moment instead, and the clients wait in the backlog. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct smtp_server *srv = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (evtimer_pending(srv->accept_pause, NULL))
        return;
    log_warn("cannot accept connections for now: %s (%zu sessions, %zu parked); pausing %d ms",
             evutil_socket_error_to_string(e), srv->nsessions, smtp_park_count(srv->park), ACCEPT_PAUSE_MS);
    smtp_server_pause_accepting(srv);
}

void smtp_server_pause_accepting(struct smtp_server *srv)
{
    if (!srv->accept_pause || evtimer_pending(srv->accept_pause, NULL))
        return;
    for (size_t i = 0; i < srv->cfg->nlisteners; i++)
        if (srv->listeners[i])
            evconnlistener_disable(srv->listeners[i]);
    struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
    evtimer_add(srv->accept_pause, &tv);
}

static void on_accept_pause_end(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_server *srv = arg;
    if (!smtp_park_reserve_full(srv->park)) {
        /* Parked connections coming back need descriptors before new ones do. */
        struct timeval tv = { 0, ACCEPT_PAUSE_MS * 1000 };
        evtimer_add(srv->accept_pause, &tv);
        return;
    }
    for (size_t i = 0; i < srv->cfg->nlisteners; i++)
        if (srv->listeners[i])
            evconnlistener_enable(srv->listeners[i]);
}

static void stop_now(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_server *srv = arg;
    log_warn("stopping with %zu sessions still open", srv->nsessions);
    event_base_loopexit(srv->base, NULL);
}

static void on_sigterm(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_server *srv = arg;
    if (srv->stopping)
        return;
    srv->stopping = true;
    for (size_t i = 0; i < srv->cfg->nlisteners; i++) {
        if (srv->listeners[i])
            evconnlistener_free(srv->listeners[i]);
        srv->listeners[i] = NULL;
    }
    /* Idle sessions are told now; those inside a message finish it first. */
    struct smtp_session *next;
    for (struct smtp_session *s = srv->sessions; s; s = next) {
        next = s->next;
        smtp_session_shutdown(s);
    }
    if (srv->nsessions == 0) {
        event_base_loopexit(srv->base, NULL);
        return;
    }
    struct timeval tv = { STOP_GRACE_SECONDS, 0 };
    evtimer_add(srv->stop_timer, &tv);
}

static void on_parent_msg(struct ipc_chan *c, uint32_t type, const void *data, size_t len, void *arg)
{
    struct smtp_server *srv = arg;
    if (type == PROC_KEYS_RESTARTED) {
        if (srv->keyclient)
            keyclient_reset(srv->keyclient);
        return;
    }
    log_debug("unexpected message %u from the parent", type);
}

static void on_parent_close(struct ipc_chan *c, void *arg)
{
    struct smtp_server *srv = arg;
    log_error("parent process went away; stopping");
    on_sigterm(-1, 0, srv);
}

int smtp_process_main(const struct ferry_config *cfg, int parent_fd, const int *listen_fds, SSL_CTX *tls, int key_fd,
                      int auth_fd)
{
    struct smtp_server srv;
    memset(&srv, 0, sizeof srv);
    srv.cfg = cfg;
    srv.tls = tls;
    char err[256];
    if (spool_open(&srv.spool, cfg->spool_dir, err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    /* Drafts reuse delivered messages' files (queue/spool_spare.h), each checked
       under a moment's write lease, whose break the kernel signals with SIGIO:
       nothing waits for that signal, and its default would end the process. */
    signal(SIGIO, SIG_IGN);
    spool_take_spares(&srv.spool);
    srv.base = event_base_new();
    if (!srv.base)
        return 1;
    srv.parent = ipc_chan_new(srv.base, parent_fd, on_parent_msg, on_parent_close, &srv);
    srv.commit_ev = event_new(srv.base, -1, 0, smtp_commit_run, &srv);
    srv.stop_timer = evtimer_new(srv.base, stop_now, &srv);
    srv.accept_pause = evtimer_new(srv.base, on_accept_pause_end, &srv);
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
        nofile.rlim_cur = 1024;
    srv.park = smtp_park_new(&srv, nofile.rlim_cur == RLIM_INFINITY ? 1u << 20 : (unsigned long long)nofile.rlim_cur);
    struct event *sigterm = evsignal_new(srv.base, SIGTERM, on_sigterm, &srv);
    struct event *sigint = evsignal_new(srv.base, SIGINT, on_sigterm, &srv);
    if (!srv.parent || !srv.commit_ev || !srv.stop_timer || !srv.accept_pause || !srv.park || !sigterm || !sigint ||
        smtp_commit_init(&srv) < 0)
        return 1;
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        /* Backlog 0: the parent listens with its own backlog (smtpd/parent.c,
           LISTEN_BACKLOG); -1 would make libevent listen() again with 128. */
        srv.listeners[i] = evconnlistener_new(srv.base, on_accept, &srv, LEV_OPT_CLOSE_ON_FREE, 0,
                                              listen_fds[i]);
        if (!srv.listeners[i]) {
            log_error("cannot listen on %s", cfg->listeners[i].text);
            return 1;
        }
        evconnlistener_set_error_cb(srv.listeners[i], on_accept_error);
    }
    if (cfg->max_connection_rate > 0) {
        /* Room for the clients of a busy minute; beyond that the most idle are forgotten. */
        srv.conn_rate = ratelimit_new(10000, (double)cfg->max_connection_rate, 60.0);
        if (!srv.conn_rate) {
            log_error("cannot set up the connection rate limit: out of memory");
            return 1;
        }
    }
    struct dns_config dnscfg;
    settings_dns_config(cfg, &dnscfg);
    srv.dns = dns_client_new(srv.base, &dnscfg);
    if (!srv.dns) {
        log_error("cannot start the DNS client");
        return 1;
    }
    /* The keys stay with the key process (keyproc.h), a sibling started by our
       parent; the store here knows only which selectors sign. */
    if (!cfg->dkim_key_dir[0])
        close(key_fd);
    else if (!(srv.keyclient = keyclient_new(key_fd)) ||
             !(srv.dkim_keys = dkim_keystore_new(cfg->dkim_key_dir, srv.keyclient))) {
        log_error("cannot set up the DKIM key store: out of memory");
        return 1;
    }
    dkim_keystore_set_dns(srv.dkim_keys, srv.dns);
    srv.auth_failures = ratelimit_new(10000, (double)cfg->auth_max_failures, (double)cfg->auth_lockout);
    if (!srv.auth_failures) {
        log_error("cannot set up the AUTH lock-out: out of memory");
        return 1;
    }
    /* AUTH is verified by the auth process (authproc.h), which alone reads the
       users' secrets; here only the directory (who exists, who may send as what). */
    if (!(srv.auth = authclient_new(srv.base, auth_fd))) {
        log_error("cannot set up AUTH: out of memory");
        return 1;
    }
    if (fdb_env_open(cfg->data_dir, &srv.db, err, sizeof err) < 0 || !(srv.users = userdb_open(srv.db, err, sizeof err)))
        log_warn("the user directory is unavailable (AUTH users cannot send as their own addresses, "
                 "and are not local recipients): %s", err);
    if (srv.db && cfg->dmarc_check && cfg->dmarc_reporting && dmarc_agg_open(srv.db, &srv.dmarc_agg, err, sizeof err) < 0)
        log_warn("DMARC aggregate reports unavailable: %s", err);
    if (cfg->dmarc_check && cfg->dmarc_failure_reports && !(srv.failure_limiter = dmarc_failure_limiter(cfg->dmarc_failure_rate)))
        log_warn("DMARC failure reports unavailable: out of memory");
    if (smtp_pull_open(&srv) < 0)
        return 1;
    srv.local_maps.users = srv.users;   /* borrowed; never opened a second time */
    srv.local_maps.users_tried = true;
    if (!(srv.gtml = smtp_gtml_open(cfg, err, sizeof err)))
        log_warn("DMTP GTML unavailable: %s", err);
    if (srv.pull && srv.gtml) {     /* pull_mode = on: its dispatcher hands GTML over */
        srv.pull->gtml = smtp_gtml_serve;
        srv.pull->gtml_arg = NULL;
    }
    struct smtp_pickup *pickup = smtp_pickup_start(&srv);
    if (!pickup) {
        log_error("cannot start the maildrop pickup: out of memory");
        return 1;
    }
    /* Everything it opens at start is open: from here on only what it still needs. */
    if (smtp_confine(cfg) < 0)
        return 1;
    smtp_park_start(srv.park);
    log_info("smtp process ready (%zu listeners)", cfg->nlisteners);
    event_base_dispatch(srv.base);
    smtp_pickup_stop(pickup);
    smtp_commit_stop(&srv);     /* before any session is freed: batches in flight hold their drafts */

    while (srv.sessions)
        smtp_server_session_gone(&srv, srv.sessions);
    smtp_park_free(srv.park);
    event_free(srv.accept_pause);
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (srv.listeners[i])
            evconnlistener_free(srv.listeners[i]);
    ipc_chan_free(srv.parent);
    event_free(srv.commit_ev);
    event_free(srv.stop_timer);
    event_free(sigterm);
    event_free(sigint);
    free(srv.batch);
    ratelimit_free(srv.conn_rate);
    ratelimit_free(srv.auth_failures);
    smtp_gtml_close(srv.gtml);
    ratelimit_free(srv.failure_limiter);
    local_maps_close(&srv.local_maps);
    smtp_pull_close(&srv);
    userdb_close(srv.users);
    authclient_free(srv.auth);
    if (srv.dmarc_agg)
        dmarc_agg_close(srv.dmarc_agg);
    fdb_env_close(srv.db);
    dkim_keystore_free(srv.dkim_keys);
    keyclient_free(srv.keyclient);
    dns_client_free(srv.dns);
    spool_close(&srv.spool);
    event_base_free(srv.base);
    log_info("smtp process stopped");
    return 0;
}

/* smtp_gtml — see smtp_gtml.h. */
#include "smtpd/smtp_gtml.h"
#include "delivery/mx.h"
#include "delivery/smtp_cmds.h"
#include "lib/log.h"
#include "lib/msgfile.h"
#include "lib/netaddr.h"
#include "pull/dmtp_cmd.h"
#include "pull/msid.h"
#include "queue/held.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session.h"
#include "smtpd/smtp_session_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BODY_CHUNK 8192

struct smtp_gtml_ctx {
    struct msid_key key;
    struct held_store store;
};

/* One session's GTML state. */
struct smtp_gtml_req {
    unsigned count;                        /* GTML commands in this session */
    struct mx_lookup *mx;                  /* the MX check in progress */
    enum smtp_state resume;                /* the state to return to after it */
    char id[QID_LEN + 1];                  /* the held message being pulled */
    char rcpt[ADDR_PATH_MAX + 1];
    char msid[DMTP_MSID_MAX + 1];
    bool served;                           /* sent whole; counts at QUIT */
};

struct smtp_gtml_ctx *smtp_gtml_open(const struct ferry_config *cfg, char *err, size_t errlen)
{
    struct smtp_gtml_ctx *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (msid_key_load(cfg->data_dir, &g->key, err, errlen) < 0) {
        free(g);
        return NULL;
    }
    if (held_open(&g->store, cfg->spool_dir, err, errlen) < 0) {
        memset(&g->key, 0, sizeof g->key);
        free(g);
        return NULL;
    }
    return g;
}

void smtp_gtml_close(struct smtp_gtml_ctx *g)
{
    if (!g)
        return;
    held_close(&g->store);
    memset(&g->key, 0, sizeof g->key);
    free(g);
}

static void count_pull(struct smtp_session *s);

static void say(struct smtp_session *s, enum dmtp_reply_id id)
{
    char line[256];
    if (dmtp_reply_format(dmtp_reply(id), line, sizeof line) > 2) {
        line[strcspn(line, "\r\n")] = '\0';
        smtp_session_reply(s, "%s", line);
    }
}

__attribute__((format(printf, 3, 4)))
static void refuse(struct smtp_session *s, const char *msid, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    log_info("session %s: GTML from [%s] refused: msid=%.128s: %s", s->id, s->peer_ip, msid, why);
    say(s, DMTP_R_GTML_REFUSED);
}

/* Send the held message (its size octets: never past them, lib/msgfile.h),
   dot-stuffed, after the OK reply. */
static void serve(struct smtp_session *s, struct smtp_gtml_req *rq, unsigned long long size)
{
    struct smtp_gtml_ctx *g = s->srv->gtml;
    int fd = held_msg_open(&g->store, rq->id);
    if (fd < 0) {
        log_msg(LOG_LVL_WARN, rq->id, "GTML: cannot open the held message: %s", strerror(errno));
        say(s, DMTP_R_GTML_TEMP);
        return;
    }
    struct evbuffer *body = evbuffer_new();
    struct smtp_body enc;
    smtp_body_init(&enc);
    char in[BODY_CHUNK], out[2 * BODY_CHUNK + 8];
    off_t off = 0;
    bool ok = body != NULL;
    struct msg_src msg = { fd, size };
    while (ok) {
        ssize_t n = msg_pread(msg, in, sizeof in, (unsigned long long)off);
        if (n < 0) {
            ok = false;
            break;
        }
        size_t w = n == 0 ? smtp_body_finish(&enc, out) : smtp_body_encode(&enc, in, (size_t)n, out);
        ok = evbuffer_add(body, out, w) == 0;
        if (n == 0)
            break;
        off += n;
    }
    close(fd);
    if (!ok) {
        log_msg(LOG_LVL_WARN, rq->id, "GTML: cannot read the held message (or out of memory)");
        if (body)
            evbuffer_free(body);
        say(s, DMTP_R_GTML_TEMP);
        return;
    }
    say(s, DMTP_R_GTML_OK);
    evbuffer_add_buffer(bufferevent_get_output(s->bev), body);
    evbuffer_free(body);
    rq->served = true;
    log_msg(LOG_LVL_INFO, rq->id, "GTML: sent to [%s] for <%s> (%lld octets), msid=%s; counted when it says QUIT",
            s->peer_ip, rq->rcpt, (long long)off, rq->msid);
}

static const char *status_reason(enum msid_status st)
{
    return st == MSID_EXPIRED ? "expired" : st == MSID_BAD_MAC ? "altered, guessed or for another MTA"
                                                                : msid_status_name(st);
}

/* The msid's MAC has been checked (bound to bound_ip, the address it was handed to):
   only now is the held envelope read, so a guessed or altered msid costs the same
   whether or not the held message exists (no timing oracle for held IDs). */
static void finish(struct smtp_session *s, struct smtp_gtml_req *rq, const char *qid, const char *bound_ip,
                   bool via_mx)
{
    struct smtp_gtml_ctx *g = s->srv->gtml;
    struct envelope e;
    bool corrupt;
    char why[256];
    if (strcmp(qid, rq->id)) {
        refuse(s, rq->msid, "not the msid of this held message");
        return;
    }
    if (held_read(&g->store, rq->id, &e, &corrupt, why, sizeof why) < 0) {
        refuse(s, rq->msid, "no held message %s (%s)", rq->id, corrupt ? why : "pulled by all, expired or never held");
        return;
    }
    const char *reason = NULL;
    if (!msid_text_equal(rq->msid, e.pull_msid))
        reason = "not the msid of this held message";
    else if (via_mx && strcmp(e.pull_rmta, bound_ip))
        reason = "bound to an MX host the held message was not handed to";
    else if (held_rcpt_index(&e, rq->rcpt) < 0)
        reason = "the receiver is not a recipient of it";
    unsigned long long size = e.size;
    env_free(&e);
    if (reason) {
        refuse(s, rq->msid, "%s", reason);
        return;
    }
    if (via_mx)
        log_msg(LOG_LVL_INFO, rq->id, "GTML: [%s] is an MX host of <%s>'s domain", s->peer_ip, rq->rcpt);
    serve(s, rq, size);
}

/* The requester is not the MTA the msid was handed to. It may pull when it is an MX
   host of the receiver's domain and the msid was handed to one of that domain's MX
   addresses: the MAC is checked against each (at most MX_MAX_ADDRS) before any read. */
static void on_mx(const struct mx_route *route, void *arg)
{
    struct smtp_session *s = arg;
    struct smtp_gtml_req *rq = s->gtml;
    struct smtp_gtml_ctx *g = s->srv->gtml;
    rq->mx = NULL;
    if (s->state != SS_CHECK)       /* the session is ending */
        return;
    s->state = rq->resume;
    bool match = false;
    size_t n = route->st.result == DELIVERY_OK ? route->ntargets : 0;
    for (size_t i = 0; i < n && !match; i++) {
        char ip[64];
        netaddr_ntop((const struct sockaddr *)&route->targets[i].sa, ip, sizeof ip);
        match = !strcmp(ip, s->peer_ip);
    }
    if (!match) {
        refuse(s, rq->msid, "the requester is neither the MTA the msid was handed to nor an MX host of <%s>'s "
               "domain (%s)", rq->rcpt, route->st.result == DELIVERY_OK ? "not among its addresses" : route->st.text);
        smtp_session_resume(s);
        return;
    }
    enum msid_status st = MSID_BAD_MAC;
    char qid[MSID_QID_MAX + 1], bound[64] = "";
    time_t exp = 0, now = time(NULL);
    for (size_t i = 0; i < n && st == MSID_BAD_MAC; i++) {
        st = msid_check(&g->key, rq->msid, (const struct sockaddr *)&route->targets[i].sa, now, qid, &exp);
        netaddr_ntop((const struct sockaddr *)&route->targets[i].sa, bound, sizeof bound);
    }
    if (st != MSID_OK)
        refuse(s, rq->msid, "%s", status_reason(st));
    else
        finish(s, rq, qid, bound, true);
    smtp_session_resume(s);
}

void smtp_gtml_command(struct smtp_session *s, const char *line, size_t len)
{
    struct dmtp_cmd cmd;
    struct dmtp_reply err;
    if (dmtp_cmd_parse(line, len, true, &cmd, &err) < 0 || cmd.verb != DMTP_VERB_GTML) {
        count_pull(s);
        smtp_session_reply(s, "%d %s %s", err.code, err.enhanced, err.text);
        return;
    }
    smtp_gtml_serve(s, &cmd, NULL);
}

void smtp_gtml_serve(struct smtp_session *s, const struct dmtp_cmd *cmd, void *arg)
{
    struct smtp_gtml_ctx *g = s->srv->gtml;
    (void)arg;
    count_pull(s);          /* a command after a served pull: it read the message whole */
    if (s->state != SS_READY) {
        say(s, DMTP_R_GTML_SEQUENCE);       /* inside a transaction, or before EHLO (RFC-NOTES) */
        return;
    }
    if (!g) {
        log_info("session %s: GTML from [%s]: the held store is not available", s->id, s->peer_ip);
        say(s, DMTP_R_GTML_TEMP);
        return;
    }
    if (!s->gtml && !(s->gtml = calloc(1, sizeof *s->gtml))) {
        say(s, DMTP_R_GTML_TEMP);
        return;
    }
    struct smtp_gtml_req *rq = s->gtml;
    if (++rq->count > GTML_PER_SESSION) {
        say(s, DMTP_R_GTML_RATE);
        return;
    }
    rq->served = false;
    str_copy(rq->msid, cmd->msid, sizeof rq->msid);
    str_copy(rq->rcpt, cmd->receiver_text, sizeof rq->rcpt);

    /* 1. The held message the msid names (its first part is the held ID); nothing is read yet. */
    size_t qlen = strcspn(cmd->msid, "-");
    if (qlen == 0 || qlen > QID_LEN) {
        refuse(s, cmd->msid, "malformed msid");
        return;
    }
    str_copyn(rq->id, cmd->msid, qlen, sizeof rq->id);
    /* 2. The MAC first (constant time), bound to the requester. */
    char qid[MSID_QID_MAX + 1];
    time_t exp = 0;
    enum msid_status st = msid_check(&g->key, cmd->msid, (const struct sockaddr *)&s->peer, time(NULL), qid, &exp);
    if (st == MSID_OK) {
        finish(s, rq, qid, s->peer_ip, false);
        return;
    }
    if (st != MSID_BAD_MAC) {
        refuse(s, cmd->msid, "%s", status_reason(st));
        return;
    }
    /* 3. Another host pulls: it must be an MX of the receiver's domain. */
    const char *at = strrchr(rq->rcpt, '@');
    struct mx_config mc = { MX_FAMILY_ANY, 25, NULL, false };
    rq->resume = s->state;
    s->state = SS_CHECK;
    if (!at || !(rq->mx = mx_resolve(s->srv->base, s->srv->dns, at + 1, &mc, on_mx, s))) {
        s->state = rq->resume;
        refuse(s, cmd->msid, "cannot look up the MX hosts of <%s>", rq->rcpt);
    }
}

static void count_pull(struct smtp_session *s)
{
    struct smtp_gtml_req *rq = s->gtml;
    if (!rq || !rq->served || !s->srv->gtml)
        return;
    rq->served = false;
    char by[128];
    snprintf(by, sizeof by, "[%s]", s->peer_ip);
    int r = held_mark_pulled(&s->srv->gtml->store, rq->id, rq->rcpt, by, time(NULL));
    if (r < 0)
        log_msg(LOG_LVL_WARN, rq->id, "GTML: cannot record the pull of <%s> by %s: %s", rq->rcpt, by,
                strerror(errno));
    else
        log_msg(LOG_LVL_INFO, rq->id, "GTML: <%s> pulled by %s%s", rq->rcpt, by,
                r == 1 ? "; every recipient has pulled, held message removed" : "");
}

void smtp_gtml_quit(struct smtp_session *s)
{
    count_pull(s);
}

void smtp_gtml_free(struct smtp_session *s)
{
    if (!s->gtml)
        return;
    if (s->gtml->mx)
        mx_cancel(s->gtml->mx);
    free(s->gtml);
    s->gtml = NULL;
}

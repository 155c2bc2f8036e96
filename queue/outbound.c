/* outbound — see outbound.h. */
#include "queue/outbound.h"
#include "delivery/dane.h"
#include "delivery/mta_sts.h"
#include "delivery/mx.h"
#include "delivery/tls_client.h"
#include "delivery/tls_policy.h"
#include "lib/buf.h"
#include "lib/db.h"
#include "lib/dns.h"
#include "lib/https_fetch.h"
#include "lib/log.h"
#include "lib/netaddr.h"

#include <errno.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEST_BUCKETS 256

struct ob_dest {
    char name[256];
    struct outbound_job *head, *tail;
    size_t waiting;             /* jobs in the line */
    size_t pending;             /* waiting + in sessions */
    unsigned active;            /* sessions */
    int64_t next_start;         /* rate limit: earliest next message start (ms) */
    struct event *kick_timer;
    bool kicking;               /* inside kick(): d must outlive the loop */
    struct outbound *o;
    struct ob_dest *next;       /* hash chain */
};

struct ob_session {
    struct mta_sts_lookup *sts_lookup;
    struct mta_sts_result sts;              /* sts.applies: a policy for this domain */
    bool sts_verify;                        /* enforce: PKIX for the MX name, or DANE */
    struct outbound *o;
    struct ob_dest *d;
    struct outbound_job *job;
    struct mx_lookup *lookup;
    struct smtp_client *client;
    struct mx_route route;
    bool requiretls;            /* the first message's: decides the session's TLS */
    enum tls_level configured;
    /* per target: the level of that connection, and its TLSA result */
    enum tls_level level[MX_MAX_ADDRS];
    enum smtp_tls_mode modes[MX_MAX_ADDRS];
    struct dane_result *tlsa[MX_MAX_ADDRS];     /* shared per host name; NULL: none */
    /* TLSA lookups, one per distinct MX host name with secure addresses */
    size_t nhosts;
    struct dane_slot {
        struct ob_session *s;
        char name[DNS_NAME_MAX + 1];
        struct dane_lookup *l;
    } hosts[MX_MAX_ADDRS];
    struct dane_result *host_tlsa;              /* nhosts results */
    size_t dane_pending;
    struct smtp_tls_hooks hooks;
    struct ob_session *prev, *next;     /* every live session, for outbound_free */
};

struct outbound {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct dns_client *dns;
    SSL_CTX *ctx;
    struct tls_policy *policy;
    struct relay_creds creds;
    bool relay;
    char relay_host[256];
    uint16_t relay_port;
    bool relay_literal;
    struct sockaddr_storage src4, src6;
    socklen_t src4_len, src6_len;
    unsigned active;
    struct ob_dest *buckets[DEST_BUCKETS];
    struct ob_session *sessions;
    const struct smtp_dmtp_hooks *dmtp;     /* NULL: never DMTP */
    struct https_fetcher *https;            /* MTA-STS: all NULL when off */
    struct fdb_env *env;
    struct fdb *sts_db;
    struct mta_sts *sts;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned hash_name(const char *s)
{
    unsigned h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h % DEST_BUCKETS;
}

static void kick(struct ob_dest *d);

static void dest_maybe_free(struct ob_dest *d);

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    kick(arg);
    dest_maybe_free(arg);
}

static struct ob_dest *dest_find(const struct outbound *o, const char *name)
{
    for (struct ob_dest *d = o->buckets[hash_name(name)]; d; d = d->next)
        if (!strcmp(d->name, name))
            return d;
    return NULL;
}

static struct ob_dest *dest_get(struct outbound *o, const char *name)
{
    struct ob_dest *d = dest_find(o, name);
    if (d)
        return d;
    d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    str_copy(d->name, name, sizeof d->name);
    d->o = o;
    d->kick_timer = evtimer_new(o->base, on_kick, d);
    if (!d->kick_timer) {
        free(d);
        return NULL;
    }
    unsigned h = hash_name(name);
    d->next = o->buckets[h];
    o->buckets[h] = d;
    return d;
}

/* A destination with nothing left is forgotten (its rate state with it: an
   idle destination owes no spacing). */
static void dest_maybe_free(struct ob_dest *d)
{
    if (d->kicking || d->pending || d->active)
        return;
    int64_t wait = d->next_start - now_ms();
    if (wait > 0) {
        /* Its rate spacing still runs: look again when it is over (on_kick). */
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
        evtimer_add(d->kick_timer, &tv);
        return;
    }
    struct outbound *o = d->o;
    struct ob_dest **pp = &o->buckets[hash_name(d->name)];
    while (*pp && *pp != d)
        pp = &(*pp)->next;
    if (*pp)
        *pp = d->next;
    event_free(d->kick_timer);
    free(d);
}

static struct outbound_job *dest_pop(struct ob_dest *d)
{
    struct outbound_job *j = d->head;
    if (j) {
        d->head = j->next;
        if (!d->head)
            d->tail = NULL;
        j->next = NULL;
        d->waiting--;
    }
    return j;
}

static void dest_push_front(struct ob_dest *d, struct outbound_job *j)
{
    j->next = d->head;
    d->head = j;
    if (!d->tail)
        d->tail = j;
    d->waiting++;
}

/* Milliseconds to wait before the next message may start toward d, and books
   that start. */
static unsigned rate_book(struct ob_dest *d)
{
    unsigned long long rate = d->o->cfg->smtp_dest_rate;
    if (!rate)
        return 0;
    int64_t now = now_ms(), gap = (int64_t)(1000 / rate);
    int64_t start = d->next_start > now ? d->next_start : now;
    d->next_start = start + (gap > 0 ? gap : 1);
    return (unsigned)(start - now);
}

/* ---- answering jobs ---- */

static void job_done(struct outbound *o, struct ob_dest *d, struct outbound_job *j, const struct smtp_client_result *r)
{
    d->pending--;
    j->done(j, r, j->arg);
}

/* A result made here (no session), the same status for every recipient. */
static void job_answer(struct outbound *o, struct ob_dest *d, struct outbound_job *j, const struct delivery_status *st,
                       const char *remote_host, const char *tls)
{
    struct smtp_client_result r;
    memset(&r, 0, sizeof r);
    struct smtp_rcpt_result *rr = calloc(j->nrcpts, sizeof *rr);
    struct smtp_rcpt_result one;
    if (!rr)
        rr = &one;      /* no memory for them all: the first now, the rest retried */
    size_t n = rr == &one ? 1 : j->nrcpts;
    for (size_t i = 0; i < n; i++) {
        memset(&rr[i], 0, sizeof rr[i]);
        rr[i].index = j->rcpts[i];
        rr[i].st = *st;
    }
    r.nrcpts = n;
    r.rcpts = rr;
    str_copy(r.remote_host, remote_host ? remote_host : "", sizeof r.remote_host);
    str_copy(r.tls, tls ? tls : "none", sizeof r.tls);
    job_done(o, d, j, &r);
    if (rr != &one)
        free(rr);
}

/* Every job still in d's line gets st: the destination is unreachable now. */
static void dest_answer_all(struct ob_dest *d, const struct delivery_status *st)
{
    struct outbound_job *j;
    while ((j = dest_pop(d)))
        job_answer(d->o, d, j, st, NULL, NULL);
}

/* ---- TLS per target ---- */

static enum smtp_tls_mode hook_mode(void *arg, size_t target)
{
    struct ob_session *s = arg;
    return s->modes[target];
}

/* The recipient domain as a second reference name (RFC 7672 §3.2.2, RFC 8689
   §4.2.1), where that is sound; see tls_client.h. */
static const char *nexthop_for(const struct ob_session *s, size_t target)
{
    if (s->o->relay)
        return NULL;
    if (s->level[target] == TLS_LEVEL_DANE)
        return s->route.mx_secure ? s->d->name : NULL;
    if (s->level[target] == TLS_LEVEL_VERIFY)
        return s->requiretls || s->sts_verify ? NULL : s->d->name;
    return NULL;
}

static SSL *hook_new_ssl(void *arg, size_t target, char *err, size_t errsz)
{
    struct ob_session *s = arg;
    /* A relay host is authenticated by the name in the configuration: a name
       that came from an unvalidated MX answer proves nothing (an attacker who
       forges it would collect the AUTH credentials). */
    const char *host = s->route.targets[target].host;
    if (s->o->relay && !s->route.mx_secure)
        host = s->o->relay_host;
    return tls_client_ssl_new(s->o->ctx, host, nexthop_for(s, target), s->level[target], s->tlsa[target], err,
                              errsz);
}

static bool hook_judge(void *arg, size_t target, SSL *ssl, bool *verified, char *desc, size_t descsz)
{
    struct ob_session *s = arg;
    struct tls_outcome out;
    tls_client_outcome(ssl, s->level[target], s->level[target] == TLS_LEVEL_DANE, &out);
    *verified = out.verified;
    tls_outcome_format(&out, desc, descsz);
    if (s->sts.applies) {
        size_t n = strlen(desc);
        snprintf(desc + n, descsz - n, " mta-sts=%s", sts_mode_name(s->sts.policy.mode));
    }
    return out.acceptable;
}

static enum smtp_tls_mode mode_of(enum tls_level l)
{
    switch (l) {
    case TLS_LEVEL_NONE: return SMTP_TLS_OFF;
    case TLS_LEVEL_MAY: return SMTP_TLS_MAY;
    default: return tls_level_requires_tls(l) ? SMTP_TLS_MUST : SMTP_TLS_MAY;
    }
}

/* The level each target's connection runs at, from the configured level, the
   message's REQUIRETLS and the TLSA lookups. */
static void plan_tls(struct ob_session *s)
{
    const struct ferry_config *cfg = s->o->cfg;
    for (size_t i = 0; i < s->route.ntargets; i++) {
        if (s->o->relay && cfg->relayhost_tls == RELAYHOST_TLS_NONE) {
            s->level[i] = TLS_LEVEL_NONE;
            s->modes[i] = SMTP_TLS_OFF;
            continue;
        }
        s->level[i] = tls_level_effective(s->configured, s->requiretls, s->tlsa[i]);
        /* MTA-STS enforce: a certificate valid for the MX name, unless DANE
           authenticates this host (DANE takes precedence, RFC 8461 §2) */
        if (s->sts_verify && s->level[i] != TLS_LEVEL_DANE)
            s->level[i] = TLS_LEVEL_VERIFY;
        s->modes[i] = mode_of(s->level[i]);
        if (s->o->relay && cfg->relayhost_tls == RELAYHOST_TLS_IMPLICIT)
            s->modes[i] = SMTP_TLS_IMPLICIT;
    }
}

/* ---- sessions ---- */

/* Unlinks s and frees it with whatever lookup is still out (the client, when
   there is one, is the caller's to end first). */
static void session_free(struct ob_session *s)
{
    struct outbound *o = s->o;
    if (s->lookup)
        mx_cancel(s->lookup);
    if (s->sts_lookup)
        mta_sts_cancel(s->sts_lookup);
    for (size_t k = 0; k < s->nhosts; k++)
        if (s->hosts[k].l)
            dane_cancel(s->hosts[k].l);
    free(s->host_tlsa);
    if (s->prev)
        s->prev->next = s->next;
    else
        o->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

static void session_end(struct ob_session *s)
{
    struct outbound *o = s->o;
    struct ob_dest *d = s->d;
    session_free(s);
    d->active--;
    o->active--;
    kick(d);
    /* A slot in the total limit may be free now for another destination. */
    if (o->active < o->cfg->smtp_total_concurrency) {
        for (size_t b = 0; b < DEST_BUCKETS; b++)
            for (struct ob_dest *x = o->buckets[b]; x; x = x->next)
                if (x != d && x->head && !evtimer_pending(x->kick_timer, NULL)) {
                    struct timeval zero = {0, 0};
                    evtimer_add(x->kick_timer, &zero);
                }
    }
    dest_maybe_free(d);     /* last: d is not looked at after this */
}

static void on_client_done(struct smtp_client *c, const struct smtp_client_result *r, void *arg)
{
    struct ob_session *s = arg;
    struct outbound *o = s->o;
    struct ob_dest *d = s->d;
    struct outbound_job *j = s->job;
    s->job = NULL;
    bool requeued = false;
    if (r->not_attempted && !j->requeued) {
        /* The cached connection was gone (or could not take this message):
           once more, on a fresh session, which tries every MX. */
        j->requeued = requeued = true;
        dest_push_front(d, j);
        log_msg(LOG_LVL_INFO, j->env->id, "not sent on the reused connection to %s (%s); retrying on a new one",
                r->remote_host, r->nrcpts ? r->rcpts[0].st.text : "");
    } else {
        /* Dead destination: every address failed to connect or talk at the
           configured level. Not when this message's own REQUIRETLS raised the
           level, nor for what one message cannot do (those are 5xx or 4.7.x). */
        bool dead = !s->requiretls && r->txn_on_conn == 0 && r->nrcpts > 0 &&
                    r->rcpts[0].st.result == DELIVERY_DEFER && !strncmp(r->rcpts[0].st.text, "4.4.", 4);
        struct delivery_status dead_st = r->nrcpts ? r->rcpts[0].st : (struct delivery_status){0};
        job_done(o, d, j, r);
        if (dead)
            dest_answer_all(d, &dead_st);
    }
    /* A REQUIRETLS message rides only a session planned for REQUIRETLS (its MX
       validated, its level raised) and verified; a requeued one starts fresh. */
    if (r->session_open && d->head && !requeued &&
        (!d->head->env->requiretls || (r->tls_verified && s->requiretls))) {
        struct outbound_job *n = dest_pop(d);
        struct smtp_txn_params t = {n->env, n->rcpts, n->nrcpts, n->msg_fd, rate_book(d)};
        if (smtp_client_next(c, &t, on_client_done, s) == 0) {
            s->job = n;
            return;
        }
        dest_push_front(d, n);
    }
    s->client = NULL;       /* it ends itself after this callback */
    session_end(s);
}

static void start_client(struct ob_session *s)
{
    struct outbound *o = s->o;
    const struct ferry_config *cfg = o->cfg;
    struct outbound_job *j = s->job;
    plan_tls(s);
    s->hooks = (struct smtp_tls_hooks){hook_mode, hook_new_ssl, hook_judge, s};
    struct smtp_client_params p;
    memset(&p, 0, sizeof p);
    p.helo_name = cfg->hostname;
    smtp_timeouts_default(&p.timeouts);
    p.timeouts.connect = (unsigned)(cfg->smtp_connect_timeout * 1000);
    p.tls = &s->hooks;
    /* Only a border MTA holds for pulls (draft -03 §3.10): not through a relayhost. */
    p.dmtp = o->relay ? NULL : o->dmtp;
    if (o->relay && o->creds.set) {
        p.auth_user = o->creds.user;
        p.auth_pass = o->creds.pass;
        /* Only a policy that explicitly lowered the relay's level lets the
           credentials go to an unauthenticated peer. */
        p.auth_needs_verified = s->configured == TLS_LEVEL_VERIFY || s->configured == TLS_LEVEL_DANE;
    }
    /* One source address per family: bind only what matches the target. The
       client binds the one it is given when the families agree; with both set,
       the first target's family picks (the route alternates families, so a
       mismatched target goes unbound rather than failing). */
    if (o->src4_len && (!o->src6_len || s->route.targets[0].sa.ss_family == AF_INET)) {
        p.source = (const struct sockaddr *)&o->src4;
        p.source_len = o->src4_len;
    } else if (o->src6_len) {
        p.source = (const struct sockaddr *)&o->src6;
        p.source_len = o->src6_len;
    }
    p.targets = s->route.targets;
    p.ntargets = s->route.ntargets;
    p.env = j->env;
    p.rcpts = j->rcpts;
    p.nrcpts = j->nrcpts;
    p.msg_fd = j->msg_fd;
    s->client = smtp_client_start(o->base, &p, on_client_done, s);
    if (!s->client) {
        struct delivery_status st;
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 cannot start an SMTP session: %s", strerror(errno));
        s->job = NULL;
        job_answer(o, s->d, j, &st, NULL, NULL);
        session_end(s);
    }
}

/* The route is known and, where DANE applies, the TLSA records: go. */
static void routed(struct ob_session *s)
{
    /* Hosts whose TLSA lookup failed are skipped (RFC 7672 §2.2: a DNSSEC
       failure must not turn into plain text); the others keep their order. */
    size_t kept = 0;
    const char *failed_why = NULL;
    for (size_t i = 0; i < s->route.ntargets; i++) {
        struct dane_result *r = NULL;
        for (size_t k = 0; k < s->nhosts; k++)
            if (!strcmp(s->hosts[k].name, s->route.targets[i].host))
                r = &s->host_tlsa[k];
        if (r && r->status == DANE_FAILED) {
            failed_why = r->why;
            continue;
        }
        s->route.targets[kept] = s->route.targets[i];
        s->tlsa[kept] = r;
        kept++;
    }
    s->route.ntargets = kept;
    if (kept == 0) {
        struct delivery_status st;
        delivery_set(&st, DELIVERY_DEFER, "4.7.5 cannot look up the TLSA records of the mail servers of %s: %s",
                     s->o->relay ? s->o->relay_host : s->d->name, failed_why ? failed_why : "no answer");
        struct outbound_job *j = s->job;
        s->job = NULL;
        job_answer(s->o, s->d, j, &st, NULL, NULL);
        if (!s->requiretls)     /* lookups REQUIRETLS alone asked for do not condemn the rest */
            dest_answer_all(s->d, &st);
        session_end(s);
        return;
    }
    start_client(s);
}

static void on_tlsa(const struct dane_result *r, void *arg)
{
    struct dane_slot *slot = arg;
    struct ob_session *s = slot->s;
    slot->l = NULL;
    s->host_tlsa[slot - s->hosts] = *r;
    if (--s->dane_pending == 0)
        routed(s);
}

/* The MTA-STS step, before TLSA lookups: in enforce mode only the MX hosts the
   policy names stay, and TLS must verify (plan_tls); testing mode logs what
   enforce would have refused and delivers as usual. A per-domain entry in the
   TLS policy table overrides the policy. false: the job was answered (deferred). */
static bool sts_filter(struct ob_session *s)
{
    struct outbound *o = s->o;
    if (!s->sts.applies || s->configured != tls_policy_default(o->policy))
        return true;
    const char *qid = s->job->env->id;
    size_t kept = 0;
    for (size_t i = 0; i < s->route.ntargets; i++) {
        const char *host = s->route.targets[i].host;
        if (sts_policy_mx_ok(&s->sts.policy, host))
            s->route.targets[kept++] = s->route.targets[i];
        else
            log_msg(LOG_LVL_INFO, qid, "mta-sts: %s: MX host %s is not in the %s policy (id %s)%s", s->d->name, host,
                    sts_mode_name(s->sts.policy.mode), s->sts.id,
                    s->sts.policy.mode == STS_MODE_ENFORCE ? ", skipped" : "");
    }
    if (s->sts.policy.mode != STS_MODE_ENFORCE)
        return true;
    s->route.ntargets = kept;
    s->sts_verify = true;
    if (kept > 0)
        return true;
    struct delivery_status st;
    delivery_set(&st, DELIVERY_DEFER, "4.7.5 no MX host of %s matches its MTA-STS policy (mode enforce, id %s)",
                 s->d->name, s->sts.id);
    struct outbound_job *j = s->job;
    s->job = NULL;
    job_answer(o, s->d, j, &st, NULL, NULL);
    dest_answer_all(s->d, &st);
    session_end(s);
    return false;
}

static void on_route(const struct mx_route *route, void *arg)
{
    struct ob_session *s = arg;
    struct outbound *o = s->o;
    s->lookup = NULL;
    struct outbound_job *j = s->job;
    if (route->st.result != DELIVERY_OK) {
        s->job = NULL;
        job_answer(o, s->d, j, &route->st, NULL, NULL);
        /* The same answer for everything waiting: the DNS said so once. */
        dest_answer_all(s->d, &route->st);
        session_end(s);
        return;
    }
    s->route = *route;
    s->requiretls = j->env->requiretls;
    if (o->relay) {
        /* A relay host is verified unless the policy table names it. */
        enum tls_level l = tls_policy_lookup(o->policy, o->relay_host);
        s->configured = l != tls_policy_default(o->policy) ? l : TLS_LEVEL_VERIFY;
    } else {
        s->configured = tls_policy_lookup(o->policy, s->d->name);
        if (s->requiretls && !route->mx_secure) {
            /* RFC 8689 §4.2.1: the MX must come from DNSSEC (Ferry has no MTA-STS). */
            struct delivery_status st;
            delivery_set(&st, DELIVERY_FAIL, "5.7.10 the message requires TLS (REQUIRETLS) and the MX records of %s "
                         "are not DNSSEC-validated", s->d->name);
            s->job = NULL;
            job_answer(o, s->d, j, &st, NULL, NULL);
            session_end(s);
            return;
        }
    }
    if (!o->relay && !sts_filter(s))
        return;
    bool want_dane = s->configured == TLS_LEVEL_DANE || s->requiretls;
    if (want_dane) {
        /* One lookup per host name whose addresses are DNSSEC-validated; the
           others cannot have usable TLSA records (RFC 7672 §2.2.2). */
        for (size_t i = 0; i < s->route.ntargets; i++) {
            const struct mx_target *t = &s->route.targets[i];
            if (!t->dnssec)
                continue;
            bool seen = false;
            for (size_t k = 0; k < s->nhosts && !seen; k++)
                seen = !strcmp(s->hosts[k].name, t->host);
            if (!seen && s->nhosts < MX_MAX_ADDRS) {
                s->hosts[s->nhosts].s = s;
                str_copy(s->hosts[s->nhosts].name, t->host, sizeof s->hosts[0].name);
                s->nhosts++;
            }
        }
    }
    if (s->nhosts) {
        s->host_tlsa = calloc(s->nhosts, sizeof *s->host_tlsa);
        if (!s->host_tlsa) {
            s->nhosts = 0;
        } else {
            uint16_t port = netaddr_port((const struct sockaddr *)&s->route.targets[0].sa);
            s->dane_pending = 1;
            for (size_t k = 0; k < s->nhosts; k++) {
                s->hosts[k].l = dane_lookup(o->dns, s->hosts[k].name, port, on_tlsa, &s->hosts[k]);
                if (s->hosts[k].l) {
                    s->dane_pending++;
                } else {
                    s->host_tlsa[k].status = DANE_FAILED;
                    str_copy(s->host_tlsa[k].why, "out of memory starting the TLSA lookup",
                             sizeof s->host_tlsa[k].why);
                }
            }
            if (--s->dane_pending > 0)
                return;
        }
    }
    routed(s);
}

static void on_sts(void *arg, const struct mta_sts_result *r);
static void start_mx(struct ob_session *s);

static void session_start(struct ob_dest *d, struct outbound_job *j)
{
    struct outbound *o = d->o;
    struct ob_session *s = calloc(1, sizeof *s);
    if (!s) {
        struct delivery_status st;
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 out of memory starting a delivery");
        job_answer(o, d, j, &st, NULL, NULL);
        return;
    }
    s->o = o;
    s->d = d;
    s->job = j;
    s->next = o->sessions;
    if (o->sessions)
        o->sessions->prev = s;
    o->sessions = s;
    d->active++;
    o->active++;
    if (o->sts && !o->relay) {
        s->sts_lookup = mta_sts_lookup(o->sts, d->name, (long long)time(NULL), on_sts, s);
        if (s->sts_lookup)
            return;
    }
    start_mx(s);
}

static void on_sts(void *arg, const struct mta_sts_result *r)
{
    struct ob_session *s = arg;
    s->sts_lookup = NULL;
    s->sts = *r;
    if (r->failure)
        log_msg(LOG_LVL_INFO, s->job->env->id, "mta-sts: %s: %s: %s%s", s->d->name, r->failure, r->detail,
                r->source == MTA_STS_FALLBACK ? " (the cached policy applies)" : "");
    if (r->applies)
        log_msg(LOG_LVL_INFO, s->job->env->id, "mta-sts: %s: policy mode=%s id=%s source=%s", s->d->name,
                sts_mode_name(r->policy.mode), r->id, mta_sts_source_name(r->source));
    start_mx(s);
}

static void start_mx(struct ob_session *s)
{
    struct outbound *o = s->o;
    struct ob_dest *d = s->d;
    struct outbound_job *j = s->job;
    struct mx_config mc = {(enum mx_family)o->cfg->smtp_address_family, (uint16_t)o->cfg->smtp_port,
                           o->cfg->hostname, false};
    char name[300];
    if (o->relay) {
        mc.port = o->relay_port;
        mc.self = NULL;
        mc.no_mx = o->relay_literal;
        /* An address literal keeps its brackets so mx.h uses it as is. */
        struct sockaddr_storage sa;
        socklen_t len;
        bool ip = netaddr_parse_hostport(o->relay_host, 1, &sa, &len) == 0;
        snprintf(name, sizeof name, ip ? (strchr(o->relay_host, ':') ? "[IPv6:%s]" : "[%s]") : "%s", o->relay_host);
    } else {
        str_copy(name, d->name, sizeof name);
    }
    s->lookup = mx_resolve(o->base, o->dns, name, &mc, on_route, s);
    if (!s->lookup) {
        struct delivery_status st;
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 out of memory starting the MX lookup for %s", name);
        s->job = NULL;
        job_answer(o, d, j, &st, NULL, NULL);
        session_end(s);
    }
}

static void kick(struct ob_dest *d)
{
    struct outbound *o = d->o;
    if (d->kicking)
        return;
    d->kicking = true;
    while (d->head && d->active < o->cfg->smtp_dest_concurrency && o->active < o->cfg->smtp_total_concurrency) {
        if (o->cfg->smtp_dest_rate) {
            int64_t now = now_ms();
            if (d->next_start > now) {
                int64_t wait = d->next_start - now;
                struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
                evtimer_add(d->kick_timer, &tv);
                break;
            }
            rate_book(d);
        }
        session_start(d, dest_pop(d));
    }
    d->kicking = false;
}

/* ---- the module ---- */

static int parse_source(const char *text, struct sockaddr_storage *sa, socklen_t *len)
{
    *len = 0;
    if (!text[0])
        return 0;
    if (netaddr_parse_hostport(text, 1, sa, len) < 0)
        return -1;
    if (sa->ss_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = 0;
    else
        ((struct sockaddr_in6 *)sa)->sin6_port = 0;
    return 0;
}

static void sts_free(struct outbound *o)
{
    mta_sts_free(o->sts);
    https_fetcher_free(o->https);
    if (o->sts_db)
        fdb_close(o->sts_db);
    if (o->env)
        fdb_env_close(o->env);
}

struct outbound *outbound_new(struct event_base *base, const struct ferry_config *cfg, struct dns_client *dns,
                              const struct relay_creds *creds, const struct smtp_dmtp_hooks *dmtp, char *err,
                              size_t errsz)
{
    struct outbound *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    o->base = base;
    o->cfg = cfg;
    o->dns = dns;
    o->dmtp = dmtp;
    if (creds)
        o->creds = *creds;
    if (cfg->relayhost[0]) {
        o->relay = true;
        if (netaddr_parse_nexthop(cfg->relayhost, 25, o->relay_host, sizeof o->relay_host, &o->relay_port,
                                  &o->relay_literal) < 0) {
            snprintf(err, errsz, "relayhost %s: expected host, host:port, [host] or [host]:port", cfg->relayhost);
            goto fail;
        }
    }
    if (parse_source(cfg->smtp_source_ipv4, &o->src4, &o->src4_len) < 0 ||
        parse_source(cfg->smtp_source_ipv6, &o->src6, &o->src6_len) < 0) {
        snprintf(err, errsz, "smtp_source_ipv4/ipv6: not an address");
        goto fail;
    }
    o->ctx = tls_client_ctx_new(cfg->smtp_tls_ca_file[0] ? cfg->smtp_tls_ca_file : NULL, err, errsz);
    if (!o->ctx)
        goto fail;
    o->policy = tls_policy_new((enum tls_level)cfg->smtp_tls_level);
    if (!o->policy) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    if (cfg->smtp_tls_policy[0] && tls_policy_load(o->policy, cfg->smtp_tls_policy, err, errsz) < 0)
        goto fail;
    if (cfg->mta_sts && !o->relay) {
        struct mta_sts_config sc = {cfg->smtp_tls_ca_file[0] ? cfg->smtp_tls_ca_file : NULL, 0,
                                    cfg->mta_sts_test_policy_addr[0] ? cfg->mta_sts_test_policy_addr : NULL};
        if (fdb_env_open(cfg->data_dir, &o->env, err, errsz) < 0 || fdb_open(o->env, "mta_sts.db", &o->sts_db, err,
                                                                              errsz) < 0)
            goto fail;
        o->https = https_fetcher_new(base);
        o->sts = o->https ? mta_sts_new(dns, o->https, o->sts_db, &sc) : NULL;
        if (!o->sts) {
            snprintf(err, errsz, "out of memory starting MTA-STS");
            goto fail;
        }
    }
    ERR_clear_error();
    return o;
fail:
    sts_free(o);
    if (o->ctx)
        SSL_CTX_free(o->ctx);
    tls_policy_free(o->policy);
    free(o);
    return NULL;
}

int outbound_submit(struct outbound *o, struct outbound_job *j)
{
    /* Through a relay host every domain shares one line: the limits and the
       dead-host answer are the relay's (it is one server, whatever the domain). */
    struct ob_dest *d = dest_get(o, o->relay ? "[relayhost]" : j->dest);
    if (!d)
        return -1;
    j->next = NULL;
    j->requeued = false;
    if (d->tail)
        d->tail->next = j;
    else
        d->head = j;
    d->tail = j;
    d->waiting++;
    d->pending++;
    /* Sessions start from the loop, so the caller finishes its pass first. */
    if (!evtimer_pending(d->kick_timer, NULL)) {
        struct timeval zero = {0, 0};
        evtimer_add(d->kick_timer, &zero);
    }
    return 0;
}

void outbound_free(struct outbound *o)
{
    if (!o)
        return;
    while (o->sessions) {
        if (o->sessions->client)
            smtp_client_cancel(o->sessions->client);
        session_free(o->sessions);
    }
    smtp_client_cancel_all();       /* those still closing after their last message */
    for (size_t b = 0; b < DEST_BUCKETS; b++) {
        struct ob_dest *d = o->buckets[b];
        while (d) {
            struct ob_dest *n = d->next;
            event_free(d->kick_timer);
            free(d);
            d = n;
        }
    }
    sts_free(o);
    SSL_CTX_free(o->ctx);
    tls_policy_free(o->policy);
    OPENSSL_cleanse(&o->creds, sizeof o->creds);
    free(o);
}

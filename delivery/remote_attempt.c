/* remote_attempt — see remote_attempt.h. */
#include "delivery/remote_attempt.h"
#include "lib/privsep.h"
#include "delivery/dane.h"
#include "delivery/mta_sts.h"
#include "delivery/mx.h"
#include "delivery/tls_client.h"
#include "delivery/tls_policy.h"
#include "delivery/tlsrpt_store.h"
#include "lib/buf.h"
#include "lib/db.h"
#include "lib/https_fetch.h"
#include "lib/log.h"
#include "lib/netaddr.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct remote_ctx {
    struct event_base *base;
    const struct ferry_config *cfg;
    struct dns_client *dns;
    SSL_CTX *ctx;
    struct tls_policy *policy;
    struct relayhost_creds creds;
    bool relay;
    char relay_host[256];
    uint16_t relay_port;
    bool relay_literal;
    struct sockaddr_storage src4, src6;
    socklen_t src4_len, src6_len;
    const struct smtp_dmtp_hooks *dmtp;     /* NULL: never DMTP */
    struct https_fetcher *https;            /* MTA-STS: all NULL when off */
    struct fdb_env *env;
    struct fdb *sts_db;
    struct mta_sts *sts;
    struct fdb *rpt_db;                     /* TLS-RPT counters: NULL when off */
};

/* The plan's steps, in order. Each step either moves on at once or starts a
   lookup whose callback moves on; a step that ends the plan early answers the
   transaction (finish_plan). */
enum ra_step {
    RA_MX,          /* waiting for the MX lookup (on_route) */
    RA_POLICY,      /* the configured TLS level; REQUIRETLS's DNSSEC rule */
    RA_STS,         /* the MTA-STS policy (on_sts), then its MX filter */
    RA_TLSA,        /* DANE lookups, waiting for them all (on_tlsa) */
    RA_SESSION      /* the SMTP client runs; done once per transaction */
};

struct remote_attempt {
    struct remote_ctx *x;
    char dest[256];
    enum ra_step step;
    struct smtp_txn_params txn;         /* the transaction in progress */
    remote_attempt_done done;
    void *arg;
    struct mx_lookup *lookup;
    struct mta_sts_lookup *sts_lookup;
    struct mta_sts_result sts;          /* sts.applies: a policy for this domain */
    bool sts_verify;                    /* enforce: PKIX for the MX name, or DANE */
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
        struct remote_attempt *a;
        char name[DNS_NAME_MAX + 1];
        struct dane_lookup *l;
    } hosts[MX_MAX_ADDRS];
    struct dane_result *host_tlsa;              /* nhosts results */
    size_t dane_pending;
    struct smtp_tls_hooks hooks;
    /* While done runs: what the last transaction left, and whether the caller
       gave the session another. */
    bool in_done, next_set, last_open, last_verified;
};

static void advance(struct remote_attempt *a);
static void on_sts(void *arg, const struct mta_sts_result *r);

/* ---- results made here ---- */

void remote_uniform_init(struct remote_uniform *u, const size_t *rcpts, size_t n, const struct delivery_status *st,
                         const char *remote_host, const char *tls)
{
    memset(u, 0, sizeof *u);
    struct smtp_rcpt_result *rr = calloc(n, sizeof *rr);
    if (!rr)
        rr = &u->one;      /* no memory for them all: the first now, the rest retried */
    size_t k = rr == &u->one ? 1 : n;
    for (size_t i = 0; i < k; i++) {
        memset(&rr[i], 0, sizeof rr[i]);
        rr[i].index = rcpts[i];
        rr[i].st = *st;
    }
    u->r.nrcpts = k;
    u->r.rcpts = rr;
    str_copy(u->r.remote_host, remote_host ? remote_host : "", sizeof u->r.remote_host);
    str_copy(u->r.tls, tls ? tls : "none", sizeof u->r.tls);
}

void remote_uniform_free(struct remote_uniform *u)
{
    if (u->r.rcpts != &u->one)
        free(u->r.rcpts);
    u->r.rcpts = NULL;
}

static void attempt_free(struct remote_attempt *a)
{
    if (a->lookup)
        mx_cancel(a->lookup);
    if (a->sts_lookup)
        mta_sts_cancel(a->sts_lookup);
    for (size_t k = 0; k < a->nhosts; k++)
        if (a->hosts[k].l)
            dane_cancel(a->hosts[k].l);
    free(a->host_tlsa);
    free(a);
}

/* The plan stopped before a session: every recipient gets st, and the attempt
   is over. dest_down: see remote_attempt.h. */
static void finish_plan(struct remote_attempt *a, const struct delivery_status *st, bool dest_down)
{
    struct remote_uniform u;
    remote_uniform_init(&u, a->txn.rcpts, a->txn.nrcpts, st, NULL, NULL);
    a->in_done = true;
    a->done(a, &u.r, dest_down, a->arg);
    remote_uniform_free(&u);
    attempt_free(a);
}

/* ---- TLS per target (the client's hooks) ---- */

static enum smtp_tls_mode hook_mode(void *arg, size_t target)
{
    struct remote_attempt *a = arg;
    return a->modes[target];
}

/* The recipient domain as a second reference name (RFC 7672 §3.2.2, RFC 8689
   §4.2.1), where that is sound; see tls_client.h. */
static const char *nexthop_for(const struct remote_attempt *a, size_t target)
{
    if (a->x->relay)
        return NULL;
    if (a->level[target] == TLS_LEVEL_DANE)
        return a->route.mx_secure ? a->dest : NULL;
    if (a->level[target] == TLS_LEVEL_VERIFY)
        return a->requiretls || a->sts_verify ? NULL : a->dest;
    return NULL;
}

static SSL *hook_new_ssl(void *arg, size_t target, char *err, size_t errsz)
{
    struct remote_attempt *a = arg;
    /* A relay host is authenticated by the name in the configuration: a name
       that came from an unvalidated MX answer proves nothing (an attacker who
       forges it would collect the AUTH credentials). */
    const char *host = a->route.targets[target].host;
    if (a->x->relay && !a->route.mx_secure)
        host = a->x->relay_host;
    return tls_client_ssl_new(a->x->ctx, host, nexthop_for(a, target), a->level[target], a->tlsa[target], err,
                              errsz);
}

/* The address a session to target leaves from (TLS-RPT's sending-mta-ip): the
   connection's own when there is one; else the configured source address of
   the family; else the one the routing table would pick. */
static void sending_ip(struct remote_attempt *a, size_t target, char *out, size_t outsz)
{
    out[0] = '\0';
    if (a->client && smtp_client_local_addr(a->client, out, outsz) == 0)
        return;
    const struct sockaddr_storage *dst = &a->route.targets[target].sa;
    const struct sockaddr_storage *src = dst->ss_family == AF_INET6 ? &a->x->src6 : &a->x->src4;
    if ((dst->ss_family == AF_INET6 ? a->x->src6_len : a->x->src4_len) > 0) {
        netaddr_ntop((const struct sockaddr *)src, out, outsz);
        return;
    }
    netaddr_route_source((const struct sockaddr *)dst, a->route.targets[target].salen, out, outsz);
}

/* TLS-RPT (tlsrpt_store.h): one session's outcome for the destination. target
   SIZE_MAX: the policy step failed before any MX host (result set). reason:
   the failure-reason-code, or NULL. */
static void tls_count(struct remote_attempt *a, size_t target, const char *result, const char *reason)
{
    struct remote_ctx *x = a->x;
    if (!x->rpt_db || !settings_tlsrpt_domain(x->cfg, a->dest))
        return;
    bool tlsa = target != SIZE_MAX && a->level[target] == TLS_LEVEL_DANE;
    struct tlsrpt_event ev = {.when = (long long)time(NULL), .domain = a->dest, .result = result, .mx = "",
                              .ip = "", .reason = reason};
    ev.ptype = a->sts.applies || (target == SIZE_MAX) ? "sts" : tlsa ? "tlsa" : "no-policy-found";
    char ip[64] = "", sip[64] = "";
    if (target != SIZE_MAX) {
        ev.mx = a->route.targets[target].host;
        netaddr_ntop((const struct sockaddr *)&a->route.targets[target].sa, ip, sizeof ip);
        ev.ip = ip;
        if (result) {
            sending_ip(a, target, sip, sizeof sip);
            ev.sip = sip;
        }
    }
    struct buf pol;
    buf_init(&pol, TLSRPT_POLICY_MAX);
    char tlsa_text[TLSRPT_POLICY_MAX];
    if (a->sts.applies) {
        const char *mx[STS_MX_MAX];
        for (unsigned i = 0; i < a->sts.policy.n_mx; i++)
            mx[i] = a->sts.policy.mx[i];
        if (sts_policy_format(a->sts.policy.mode, a->sts.policy.max_age, mx, a->sts.policy.n_mx, &pol) == 0 &&
            buf_append(&pol, "", 1) == 0) {
            /* §4.4: one string per line; stored joined by "\n" */
            char *w = pol.data;
            for (const char *r = pol.data; *r; r++)
                if (*r != '\r')
                    *w++ = *r;
            *w = '\0';
            if (w > pol.data && w[-1] == '\n')
                w[-1] = '\0';
            ev.policy = pol.data;
        }
    } else if (tlsa && a->tlsa[target] && dane_set_text(&a->tlsa[target]->set, tlsa_text, sizeof tlsa_text) > 0) {
        ev.policy = tlsa_text;      /* §4.4: the TLSA records, one string each */
    }
    char err[256];
    if (tlsrpt_store_count(x->env, x->rpt_db, &ev, err, sizeof err) < 0)
        log_msg(LOG_LVL_WARN, a->txn.env->id, "tls-rpt: %s: %s", a->dest, err);
    buf_free(&pol);
}

static void hook_no_starttls(void *arg, size_t target)
{
    tls_count(arg, target, "starttls-not-supported", NULL);
}

/* A handshake that timed out has no verify result: validation-failure, the
   RFC's general category, with the reason code saying so (RFC-NOTES.md). */
static void hook_handshake_failed(void *arg, size_t target, SSL *ssl, bool timed_out)
{
    struct remote_attempt *a = arg;
    long vr = ssl && !timed_out ? SSL_get_verify_result(ssl) : X509_V_OK;
    tls_count(a, target, tlsrpt_result_of_verify(0, vr, a->level[target] == TLS_LEVEL_DANE),
              timed_out ? "TLS handshake timed out" : NULL);
}

static bool hook_judge(void *arg, size_t target, SSL *ssl, bool *verified, char *desc, size_t descsz)
{
    struct remote_attempt *a = arg;
    struct tls_outcome out;
    tls_client_outcome(ssl, a->level[target], a->level[target] == TLS_LEVEL_DANE, &out);
    /* A failure is a session the level refused; an opportunistic session over an
       unverified certificate is a success (RFC-NOTES.md "TLS-RPT"). */
    tls_count(a, target,
              out.acceptable ? NULL
                             : tlsrpt_result_of_verify(out.established, out.established ? SSL_get_verify_result(ssl) : 0,
                                                       a->level[target] == TLS_LEVEL_DANE),
              NULL);
    *verified = out.verified;
    tls_outcome_format(&out, desc, descsz);
    if (a->sts.applies) {
        size_t n = strlen(desc);
        snprintf(desc + n, descsz - n, " mta-sts=%s", sts_mode_name(a->sts.policy.mode));
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
static void plan_tls(struct remote_attempt *a)
{
    const struct ferry_config *cfg = a->x->cfg;
    for (size_t i = 0; i < a->route.ntargets; i++) {
        if (a->x->relay && cfg->relayhost_tls == RELAYHOST_TLS_NONE) {
            a->level[i] = TLS_LEVEL_NONE;
            a->modes[i] = SMTP_TLS_OFF;
            continue;
        }
        a->level[i] = tls_level_effective(a->configured, a->requiretls, a->tlsa[i]);
        /* MTA-STS enforce: a certificate valid for the MX name, unless DANE
           authenticates this host (DANE takes precedence, RFC 8461 §2) */
        if (a->sts_verify && a->level[i] != TLS_LEVEL_DANE)
            a->level[i] = TLS_LEVEL_VERIFY;
        a->modes[i] = mode_of(a->level[i]);
        if (a->x->relay && cfg->relayhost_tls == RELAYHOST_TLS_IMPLICIT)
            a->modes[i] = SMTP_TLS_IMPLICIT;
    }
}

/* ---- the steps ---- */

static void on_route(const struct mx_route *route, void *arg)
{
    struct remote_attempt *a = arg;
    a->lookup = NULL;
    if (route->st.result != DELIVERY_OK) {
        /* The same answer for everything waiting: the DNS said so once. */
        finish_plan(a, &route->st, true);
        return;
    }
    a->route = *route;
    a->step = RA_POLICY;
    advance(a);
}

/* RA_POLICY: false when the plan ended here. */
static bool choose_policy(struct remote_attempt *a)
{
    struct remote_ctx *x = a->x;
    a->requiretls = a->txn.env->requiretls;
    if (x->relay) {
        /* A relay host is verified unless the policy table names it. */
        enum tls_level l = tls_policy_lookup(x->policy, x->relay_host);
        a->configured = l != tls_policy_default(x->policy) ? l : TLS_LEVEL_VERIFY;
        return true;
    }
    a->configured = tls_policy_lookup(x->policy, a->dest);
    if (a->requiretls && !a->route.mx_secure) {
        /* RFC 8689 §4.2.1: the MX must come from DNSSEC (Ferry has no MTA-STS). */
        struct delivery_status st;
        delivery_set(&st, DELIVERY_FAIL, "5.7.10 the message requires TLS (REQUIRETLS) and the MX records of %s "
                     "are not DNSSEC-validated", a->dest);
        finish_plan(a, &st, false);
        return false;
    }
    return true;
}

/* RA_STS: the MTA-STS lookup for the domain; true when it was started (on_sts
   moves on). Not through a relay host, nor when MTA-STS is off. */
static bool start_sts(struct remote_attempt *a)
{
    if (!a->x->sts || a->x->relay)
        return false;
    a->sts_lookup = mta_sts_lookup(a->x->sts, a->dest, (long long)time(NULL), on_sts, a);
    return a->sts_lookup != NULL;
}

/* After the lookup: in enforce mode only the MX hosts the policy names stay,
   and TLS must verify (plan_tls); testing mode logs what enforce would have
   refused and delivers as usual. A per-domain entry in the TLS policy table
   overrides the policy. false: the plan ended here (no MX host left). */
static bool sts_filter(struct remote_attempt *a)
{
    if (!a->sts.applies || a->configured != tls_policy_default(a->x->policy))
        return true;
    const char *qid = a->txn.env->id;
    size_t kept = 0, all = a->route.ntargets;
    for (size_t i = 0; i < all; i++) {
        const char *host = a->route.targets[i].host;
        if (sts_policy_mx_ok(&a->sts.policy, host))
            a->route.targets[kept++] = a->route.targets[i];
        else
            log_msg(LOG_LVL_INFO, qid, "mta-sts: %s: MX host %s is not in the %s policy (id %s)%s", a->dest, host,
                    sts_mode_name(a->sts.policy.mode), a->sts.id,
                    a->sts.policy.mode == STS_MODE_ENFORCE ? ", skipped" : "");
    }
    if (a->sts.policy.mode != STS_MODE_ENFORCE)
        return true;
    a->route.ntargets = kept;
    a->sts_verify = true;
    if (kept > 0)
        return true;
    /* RFC 8460 §4.3.2.2: the policy as a whole cannot be met with these MX
       records, sts-policy-invalid; once per MX host, as the session to it that
       was not made (RFC-NOTES.md "TLS-RPT"). */
    a->route.ntargets = all;         /* none was moved: every target is still there */
    for (size_t i = 0; i < all; i++) {
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++)
            seen = !strcmp(a->route.targets[k].host, a->route.targets[i].host);
        if (!seen)
            tls_count(a, i, "sts-policy-invalid", "MX host not in the MTA-STS policy");
    }
    a->route.ntargets = 0;
    struct delivery_status st;
    delivery_set(&st, DELIVERY_DEFER, "4.7.5 no MX host of %s matches its MTA-STS policy (mode enforce, id %s)",
                 a->dest, a->sts.id);
    finish_plan(a, &st, true);
    return false;
}

static void on_sts(void *arg, const struct mta_sts_result *r)
{
    struct remote_attempt *a = arg;
    a->sts_lookup = NULL;
    a->sts = *r;
    const char *qid = a->txn.env->id;
    if (r->failure) {
        log_msg(LOG_LVL_INFO, qid, "mta-sts: %s: %s: %s%s", a->dest, r->failure, r->detail,
                r->source == MTA_STS_FALLBACK ? " (the cached policy applies)" : "");
        if (!r->applies)
            tls_count(a, SIZE_MAX, r->failure, NULL);
    }
    if (r->applies)
        log_msg(LOG_LVL_INFO, qid, "mta-sts: %s: policy mode=%s id=%s source=%s", a->dest,
                sts_mode_name(r->policy.mode), r->id, mta_sts_source_name(r->source));
    if (!sts_filter(a))
        return;
    a->step = RA_TLSA;
    advance(a);
}

static void on_tlsa(const struct dane_result *r, void *arg)
{
    struct dane_slot *slot = arg;
    struct remote_attempt *a = slot->a;
    slot->l = NULL;
    a->host_tlsa[slot - a->hosts] = *r;
    if (--a->dane_pending == 0) {
        a->step = RA_SESSION;
        advance(a);
    }
}

/* RA_TLSA: starts the lookups DANE or REQUIRETLS needs; true when the step
   waits for them (on_tlsa moves on). */
static bool start_tlsa(struct remote_attempt *a)
{
    if (a->configured == TLS_LEVEL_DANE || a->requiretls) {
        /* One lookup per host name whose addresses are DNSSEC-validated; the
           others cannot have usable TLSA records (RFC 7672 §2.2.2). */
        for (size_t i = 0; i < a->route.ntargets; i++) {
            const struct mx_target *t = &a->route.targets[i];
            if (!t->dnssec)
                continue;
            bool seen = false;
            for (size_t k = 0; k < a->nhosts && !seen; k++)
                seen = !strcmp(a->hosts[k].name, t->host);
            if (!seen && a->nhosts < MX_MAX_ADDRS) {
                a->hosts[a->nhosts].a = a;
                str_copy(a->hosts[a->nhosts].name, t->host, sizeof a->hosts[0].name);
                a->nhosts++;
            }
        }
    }
    if (a->nhosts == 0)
        return false;
    a->host_tlsa = calloc(a->nhosts, sizeof *a->host_tlsa);
    if (!a->host_tlsa) {
        a->nhosts = 0;
        return false;
    }
    uint16_t port = netaddr_port((const struct sockaddr *)&a->route.targets[0].sa);
    a->dane_pending = 1;
    for (size_t k = 0; k < a->nhosts; k++) {
        a->hosts[k].l = dane_lookup(a->x->dns, a->hosts[k].name, port, on_tlsa, &a->hosts[k]);
        if (a->hosts[k].l) {
            a->dane_pending++;
        } else {
            a->host_tlsa[k].status = DANE_FAILED;
            str_copy(a->host_tlsa[k].why, "out of memory starting the TLSA lookup", sizeof a->host_tlsa[k].why);
        }
    }
    return --a->dane_pending > 0;
}

/* Hosts whose TLSA lookup failed are skipped (RFC 7672 §2.2: a DNSSEC failure
   must not turn into plain text); the others keep their order. False when the
   plan ended here (no host left). */
static bool keep_tlsa_hosts(struct remote_attempt *a)
{
    size_t kept = 0;
    const char *failed_why = NULL;
    for (size_t i = 0; i < a->route.ntargets; i++) {
        struct dane_result *r = NULL;
        for (size_t k = 0; k < a->nhosts; k++)
            if (!strcmp(a->hosts[k].name, a->route.targets[i].host))
                r = &a->host_tlsa[k];
        if (r && r->status == DANE_FAILED) {
            failed_why = r->why;
            continue;
        }
        a->route.targets[kept] = a->route.targets[i];
        a->tlsa[kept] = r;
        kept++;
    }
    a->route.ntargets = kept;
    if (kept > 0)
        return true;
    struct delivery_status st;
    delivery_set(&st, DELIVERY_DEFER, "4.7.5 cannot look up the TLSA records of the mail servers of %s: %s",
                 a->x->relay ? a->x->relay_host : a->dest, failed_why ? failed_why : "no answer");
    /* Lookups REQUIRETLS alone asked for do not condemn the rest. */
    finish_plan(a, &st, !a->requiretls);
    return false;
}

static void on_client_done(struct smtp_client *c, const struct smtp_client_result *r, void *arg)
{
    struct remote_attempt *a = arg;
    /* Dead destination: every address failed to connect or talk at the
       configured level. Not when this message's own REQUIRETLS raised the
       level, nor for what one message cannot do (those are 5xx or 4.7.x). */
    bool down = !a->requiretls && r->txn_on_conn == 0 && r->nrcpts > 0 &&
                r->rcpts[0].st.result == DELIVERY_DEFER && !strncmp(r->rcpts[0].st.text, "4.4.", 4);
    a->in_done = true;
    a->next_set = false;
    a->last_open = r->session_open;
    a->last_verified = r->tls_verified;
    a->done(a, r, down, a->arg);
    a->in_done = false;
    if (a->next_set)
        return;
    a->client = NULL;       /* it ends itself after this callback */
    attempt_free(a);
}

/* RA_SESSION: each target's TLS, then the SMTP client. */
static void start_session(struct remote_attempt *a)
{
    struct remote_ctx *x = a->x;
    const struct ferry_config *cfg = x->cfg;
    if (!keep_tlsa_hosts(a))
        return;
    plan_tls(a);
    a->hooks = (struct smtp_tls_hooks){hook_mode, hook_new_ssl, hook_judge, a, hook_no_starttls,
                                       hook_handshake_failed};
    struct smtp_client_params p;
    memset(&p, 0, sizeof p);
    p.helo_name = cfg->hostname;
    smtp_timeouts_default(&p.timeouts);
    p.timeouts.connect = (unsigned)(cfg->smtp_connect_timeout * 1000);
    p.tls = &a->hooks;
    /* Only a border MTA holds for pulls (draft -03 §3.10): not through a relayhost. */
    p.dmtp = x->relay ? NULL : x->dmtp;
    if (x->relay && x->creds.set) {
        p.auth_user = x->creds.user;
        p.auth_pass = x->creds.pass;
        /* Only a policy that explicitly lowered the relay's level lets the
           credentials go to an unauthenticated peer. */
        p.auth_needs_verified = a->configured == TLS_LEVEL_VERIFY || a->configured == TLS_LEVEL_DANE;
    }
    /* One source address per family: bind only what matches the target. The
       client binds the one it is given when the families agree; with both set,
       the first target's family picks (the route alternates families, so a
       mismatched target goes unbound rather than failing). */
    if (x->src4_len && (!x->src6_len || a->route.targets[0].sa.ss_family == AF_INET)) {
        p.source = (const struct sockaddr *)&x->src4;
        p.source_len = x->src4_len;
    } else if (x->src6_len) {
        p.source = (const struct sockaddr *)&x->src6;
        p.source_len = x->src6_len;
    }
    p.targets = a->route.targets;
    p.ntargets = a->route.ntargets;
    p.env = a->txn.env;
    p.rcpts = a->txn.rcpts;
    p.nrcpts = a->txn.nrcpts;
    p.msg_fd = a->txn.msg_fd;
    a->client = smtp_client_start(x->base, &p, on_client_done, a);
    if (!a->client) {
        struct delivery_status st;
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 cannot start an SMTP session: %s", strerror(errno));
        finish_plan(a, &st, false);
    }
}

/*
 * The plan, one step after another. A step that waits (a lookup) returns and
 * its callback sets the next step and comes back here; a step that ends the
 * plan early has answered the transaction and freed a, and nothing here
 * touches a after it.
 */
static void advance(struct remote_attempt *a)
{
    for (;;) {
        switch (a->step) {
        case RA_MX:
            return;         /* started by remote_attempt_start; on_route moves on */
        case RA_POLICY:
            if (!choose_policy(a))
                return;
            a->step = RA_STS;
            break;
        case RA_STS:
            /* Not yet: a REQUIRETLS message accepting an MX the policy
               validates (RFC 8689 §4.2.1) in choose_policy's place. */
            if (start_sts(a))
                return;
            a->step = RA_TLSA;
            break;
        case RA_TLSA:
            if (start_tlsa(a))
                return;
            a->step = RA_SESSION;
            break;
        case RA_SESSION:
            start_session(a);
            return;
        }
    }
}

/* ---- the module ---- */

struct remote_attempt *remote_attempt_start(struct remote_ctx *x, const char *dest, const struct smtp_txn_params *t,
                                            remote_attempt_done done, void *arg, struct delivery_status *st)
{
    struct remote_attempt *a = calloc(1, sizeof *a);
    if (!a) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 out of memory starting a delivery");
        return NULL;
    }
    a->x = x;
    str_copy(a->dest, dest, sizeof a->dest);
    a->txn = *t;
    a->done = done;
    a->arg = arg;
    a->step = RA_MX;
    struct mx_config mc = {(enum mx_family)x->cfg->smtp_address_family, (uint16_t)x->cfg->smtp_port,
                           x->cfg->hostname, false};
    char name[300];
    if (x->relay) {
        mc.port = x->relay_port;
        mc.self = NULL;
        mc.no_mx = x->relay_literal;
        /* An address literal keeps its brackets so mx.h uses it as is. */
        struct sockaddr_storage sa;
        socklen_t len;
        bool ip = netaddr_parse_hostport(x->relay_host, 1, &sa, &len) == 0;
        snprintf(name, sizeof name, ip ? (strchr(x->relay_host, ':') ? "[IPv6:%s]" : "[%s]") : "%s", x->relay_host);
    } else {
        str_copy(name, dest, sizeof name);
    }
    a->lookup = mx_resolve(x->base, x->dns, name, &mc, on_route, a);
    if (!a->lookup) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 out of memory starting the MX lookup for %s", name);
        attempt_free(a);
        return NULL;
    }
    return a;
}

bool remote_attempt_can_take(const struct remote_attempt *a, const struct envelope *env)
{
    /* A REQUIRETLS message rides only a session planned for REQUIRETLS (its MX
       validated, its level raised) and verified. */
    return a->in_done && a->client && a->last_open && (!env->requiretls || (a->last_verified && a->requiretls));
}

int remote_attempt_next(struct remote_attempt *a, const struct smtp_txn_params *t)
{
    if (!remote_attempt_can_take(a, t->env) || a->next_set ||
        smtp_client_next(a->client, t, on_client_done, a) < 0)
        return -1;
    a->txn = *t;
    a->next_set = true;
    return 0;
}

void remote_attempt_cancel(struct remote_attempt *a)
{
    if (!a)
        return;
    if (a->client)
        smtp_client_cancel(a->client);
    attempt_free(a);
}

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

/* MTA-STS's policy cache (mta_sts.db in the queue's own environment,
   lib/privsep.h: the smtp process cannot poison it), HTTPS client and discovery. */
static int sts_open(struct remote_ctx *x, char *err, size_t errsz)
{
    const struct ferry_config *cfg = x->cfg;
    struct mta_sts_config sc = {cfg->smtp_tls_ca_file[0] ? cfg->smtp_tls_ca_file : NULL, 0,
                                cfg->mta_sts_test_policy_addr[0] ? cfg->mta_sts_test_policy_addr : NULL};
    char qdir[PATH_MAX];
    if (fdb_env_open(privsep_queue_data_dir(cfg, qdir, sizeof qdir), &x->env, err, errsz) < 0 ||
        fdb_open(x->env, "mta_sts.db", &x->sts_db, err, errsz) < 0)
        return -1;
    x->https = https_fetcher_new(x->base);
    x->sts = x->https ? mta_sts_new(x->dns, x->https, x->sts_db, &sc) : NULL;
    if (!x->sts) {
        snprintf(err, errsz, "out of memory starting MTA-STS");
        return -1;
    }
    return 0;
}

/* TLS-RPT's counters (tlsrpt.db), in the same environment. */
static int rpt_open(struct remote_ctx *x, char *err, size_t errsz)
{
    char qdir[PATH_MAX];
    if (!x->env && fdb_env_open(privsep_queue_data_dir(x->cfg, qdir, sizeof qdir), &x->env, err, errsz) < 0)
        return -1;
    return fdb_open(x->env, TLSRPT_STORE_DB, &x->rpt_db, err, errsz);
}

static void sts_close(struct remote_ctx *x)
{
    if (x->rpt_db)
        fdb_close(x->rpt_db);
    mta_sts_free(x->sts);
    https_fetcher_free(x->https);
    if (x->sts_db)
        fdb_close(x->sts_db);
    if (x->env)
        fdb_env_close(x->env);
}

struct remote_ctx *remote_ctx_new(struct event_base *base, const struct ferry_config *cfg, struct dns_client *dns,
                                  const struct relayhost_creds *creds, const struct smtp_dmtp_hooks *dmtp, char *err,
                                  size_t errsz)
{
    struct remote_ctx *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    x->base = base;
    x->cfg = cfg;
    x->dns = dns;
    x->dmtp = dmtp;
    if (creds)
        x->creds = *creds;
    if (cfg->relayhost[0]) {
        x->relay = true;
        if (netaddr_parse_nexthop(cfg->relayhost, 25, x->relay_host, sizeof x->relay_host, &x->relay_port,
                                  &x->relay_literal) < 0) {
            snprintf(err, errsz, "relayhost %s: expected host, host:port, [host] or [host]:port", cfg->relayhost);
            goto fail;
        }
    }
    if (parse_source(cfg->smtp_source_ipv4, &x->src4, &x->src4_len) < 0 ||
        parse_source(cfg->smtp_source_ipv6, &x->src6, &x->src6_len) < 0) {
        snprintf(err, errsz, "smtp_source_ipv4/ipv6: not an address");
        goto fail;
    }
    x->ctx = tls_client_ctx_new(cfg->smtp_tls_ca_file[0] ? cfg->smtp_tls_ca_file : NULL, err, errsz);
    if (!x->ctx)
        goto fail;
    x->policy = tls_policy_new((enum tls_level)cfg->smtp_tls_level);
    if (!x->policy) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    if (cfg->smtp_tls_policy[0] && tls_policy_load(x->policy, cfg->smtp_tls_policy, err, errsz) < 0)
        goto fail;
    if (cfg->mta_sts && !x->relay && sts_open(x, err, errsz) < 0)
        goto fail;
    if (cfg->tlsrpt && !x->relay && rpt_open(x, err, errsz) < 0)
        goto fail;
    ERR_clear_error();
    return x;
fail:
    sts_close(x);
    if (x->ctx)
        SSL_CTX_free(x->ctx);
    tls_policy_free(x->policy);
    OPENSSL_cleanse(&x->creds, sizeof x->creds);
    free(x);
    return NULL;
}

void remote_ctx_free(struct remote_ctx *x)
{
    if (!x)
        return;
    smtp_client_cancel_all();       /* those still closing after their last message */
    sts_close(x);
    SSL_CTX_free(x->ctx);
    tls_policy_free(x->policy);
    OPENSSL_cleanse(&x->creds, sizeof x->creds);
    free(x);
}

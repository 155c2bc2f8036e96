/* smtp_sender — see smtp_sender.h. */
#include "smtpd/smtp_sender.h"
#include "auth/auth_dns.h"
#include "auth/dmp.h"
#include "auth/spf.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/netaddr.h"
#include "smtpd/smtp_server.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct smtp_sender_check {
    struct smtp_server *srv;
    struct auth_resolver resolver;
    int family;
    uint8_t ip[16];
    char helo[256], sender[300], log_id[64];
    struct spf_check *spf;
    struct dmp_check *dmp;
    bool helo_done, spf_done, dmp_run, dmp_done;
    struct spf_outcome helo_out, spf_out;
    struct dmp_outcome dmp_out;
    bool starting, completed;
    sender_done_fn done;
    void *arg;
};

static void client_ip(const struct sockaddr *sa, int *family, uint8_t ip[16])
{
    memset(ip, 0, 16);
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {     /* checked as the IPv4 it is */
            *family = AF_INET;
            memcpy(ip, s6->sin6_addr.s6_addr + 12, 4);
        } else {
            *family = AF_INET6;
            memcpy(ip, s6->sin6_addr.s6_addr, 16);
        }
    } else {
        *family = AF_INET;
        memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    }
}

/* SPF's part of the verdict; true when SPF decided (DMP may not override it unless
   dmp_precedence = dmp). */
static bool spf_verdict(const struct smtp_sender_check *c, struct sender_verdict *v)
{
    const struct ferry_config *cfg = c->srv->cfg;
    const struct spf_outcome *o = &c->spf_out;
    switch (o->result) {
    case SPF_FAIL: {
        char line[600];
        snprintf(line, sizeof line, "550 5.7.23 SPF: %s is not allowed to send mail for %s (%s)", o->client_ip,
                 o->domain, o->explanation[0] ? o->explanation : "see RFC 7208");
        if (cfg->spf_fail_action == SPF_ACTION_REJECT)
            str_copy(v->reply, line, sizeof v->reply);
        else if (cfg->spf_fail_action == SPF_ACTION_DATA)
            str_copy(v->data_reply, line, sizeof v->data_reply);
        return true;
    }
    case SPF_TEMPERROR:
        snprintf(v->reply, sizeof v->reply, "451 4.7.24 SPF: temporary error checking %s (%s), try again later",
                 o->domain, o->reason);
        return true;
    case SPF_PERMERROR: {
        char line[600];
        snprintf(line, sizeof line, "550 5.7.24 SPF: the record of %s is broken (%s)", o->domain, o->reason);
        if (cfg->spf_permerror_action == SPF_ACTION_REJECT)
            str_copy(v->reply, line, sizeof v->reply);
        else if (cfg->spf_permerror_action == SPF_ACTION_DATA)
            str_copy(v->data_reply, line, sizeof v->data_reply);
        return true;
    }
    case SPF_NONE:
        return false;
    default:
        return true;        /* pass, softfail, neutral: accepted and recorded */
    }
}

static void dmp_verdict(const struct smtp_sender_check *c, struct sender_verdict *v)
{
    const struct dmp_outcome *o = &c->dmp_out;
    v->reply[0] = v->data_reply[0] = '\0';
    if (o->result == DMP_DENY)
        snprintf(v->reply, sizeof v->reply, "550 5.7.1 DMP: %s", o->reason);
    else if (o->result == DMP_TEMPERROR)
        snprintf(v->reply, sizeof v->reply, "451 4.7.1 DMP: %s, try again later", o->reason);
}

static void deliver(struct smtp_sender_check *c)
{
    const struct ferry_config *cfg = c->srv->cfg;
    struct sender_verdict v;
    memset(&v, 0, sizeof v);
    bool decided = false;
    if (c->helo_done) {
        log_info("session %s: spf=%s identity=helo domain=%s client=%s mechanism=\"%s\"%s%s%s", c->log_id,
                 spf_result_name(c->helo_out.result), c->helo_out.domain, c->helo_out.client_ip,
                 c->helo_out.mechanism, c->helo_out.reason[0] ? " (" : "", c->helo_out.reason,
                 c->helo_out.reason[0] ? ")" : "");
        if (c->helo_out.result == SPF_FAIL) {
            /* A conclusive HELO result (RFC 7208 2.3) decides without MAIL FROM. */
            struct smtp_sender_check tmp = *c;
            tmp.spf_out = c->helo_out;
            decided = spf_verdict(&tmp, &v);
            spf_format_auth_results(&c->helo_out, v.auth_results, sizeof v.auth_results);
        }
    }
    v.spf = SPF_NONE;
    if (c->spf_done) {
        /* the MAIL FROM verdict can only add: a HELO fail's data refusal stands */
        if (spf_verdict(c, &v))
            decided = true;
        v.spf = c->spf_out.result;
        str_copy(v.spf_domain, c->spf_out.domain, sizeof v.spf_domain);
        size_t used = 0;
        if (c->helo_done && c->helo_out.result != SPF_NONE) {     /* both identities in one field */
            spf_format_auth_results(&c->helo_out, v.auth_results, sizeof v.auth_results);
            used = strlen(v.auth_results);
            if (used + 4 < sizeof v.auth_results) {
                memcpy(v.auth_results + used, ";\r\n\t", 5);
                used += 4;
            }
        }
        spf_format_auth_results(&c->spf_out, v.auth_results + used, sizeof v.auth_results - used);
        if (cfg->spf_received_header)
            spf_format_received_spf(&c->spf_out, cfg->hostname, v.received_spf, sizeof v.received_spf);
        log_info("session %s: spf=%s domain=%s client=%s mechanism=\"%s\" record=\"%s\"%s%s%s", c->log_id,
                 spf_result_name(c->spf_out.result), c->spf_out.domain, c->spf_out.client_ip,
                 c->spf_out.mechanism, c->spf_out.record, c->spf_out.reason[0] ? " (" : "", c->spf_out.reason,
                 c->spf_out.reason[0] ? ")" : "");
    }
    if (c->dmp_done) {
        log_info("session %s: dmp=%s name=%s client=%s (%s) lookups: %s", c->log_id,
                 dmp_result_name(c->dmp_out.result), c->dmp_out.name, c->dmp_out.client_ip, c->dmp_out.reason,
                 c->dmp_out.trail);
        if (!decided || cfg->dmp_precedence == DMP_PRECEDENCE_DMP)
            dmp_verdict(c, &v);
    }
    if (v.reply[0])
        log_info("session %s: MAIL FROM:<%s> refused: %s", c->log_id, c->sender, v.reply);
    c->done(c->arg, &v);
    free(c);
}

static void complete(struct smtp_sender_check *c)
{
    if (c->starting)
        c->completed = true;    /* start delivers it once the stack unwinds */
    else
        deliver(c);
}

static void on_dmp(const struct dmp_outcome *out, void *arg)
{
    struct smtp_sender_check *c = arg;
    c->dmp = NULL;
    c->dmp_out = *out;
    c->dmp_done = true;
    complete(c);
}

static void start_dmp(struct smtp_sender_check *c)
{
    struct dmp_query q = {
        .family = c->family, .sender = c->sender, .helo = c->helo,
        .accept_nonparticipant = true, .allow_helo = true,
    };
    memcpy(q.ip, c->ip, 16);
    c->dmp_run = true;
    c->dmp = dmp_check_start(&c->resolver, &q, on_dmp, c);
}

static void on_spf(const struct spf_outcome *out, void *arg);
static void on_spf(const struct spf_outcome *out, void *arg)
{
    struct smtp_sender_check *c = arg;
    c->spf = NULL;
    c->spf_out = *out;
    c->spf_done = true;
    const struct ferry_config *cfg = c->srv->cfg;
    bool run_dmp = cfg->dmp_check == DMP_CHECK_ALWAYS ||
                   (cfg->dmp_check == DMP_CHECK_FALLBACK && out->result == SPF_NONE);
    if (run_dmp) {
        bool was_starting = c->starting;
        c->starting = true;             /* a synchronous DMP answer must not free c under us */
        start_dmp(c);
        c->starting = was_starting;
        if (!c->dmp_done)
            return;
    }
    complete(c);
}

static void start_mailfrom(struct smtp_sender_check *c)
{
    const struct ferry_config *cfg = c->srv->cfg;
    struct spf_query q = {
        .family = c->family, .sender = c->sender, .helo = c->helo, .receiver = cfg->hostname,
        .identity = SPF_ID_MAILFROM,
    };
    memcpy(q.ip, c->ip, 16);
    c->spf = spf_check_start(&c->resolver, &q, on_spf, c);
}

static void on_helo(const struct spf_outcome *out, void *arg)
{
    struct smtp_sender_check *c = arg;
    c->spf = NULL;
    c->helo_out = *out;
    c->helo_done = true;
    /* A HELO fail that refuses at MAIL decides alone (RFC 7208 2.3). Otherwise
       (spf_fail_action = data or accept) the message may go on, and DMARC needs
       the MAIL FROM identity's result: it is checked as well. */
    if (out->result == SPF_FAIL && c->srv->cfg->spf_fail_action == SPF_ACTION_REJECT) {
        complete(c);
        return;
    }
    bool was_starting = c->starting;
    c->starting = true;             /* a synchronous answer must not free c under us */
    start_mailfrom(c);
    c->starting = was_starting;
    if (c->spf_done && !c->dmp_run)
        complete(c);
    else if (c->spf_done && c->dmp_done)
        complete(c);
}

/* A HELO name worth checking: a domain with a dot, not an address literal. */
static bool checkable_helo(const char *h)
{
    return h[0] && h[0] != '[' && strchr(h, '.') != NULL;
}

struct smtp_sender_check *smtp_sender_check_start(struct smtp_server *srv, const struct sockaddr *client,
                                                  const char *helo, const char *sender, const char *log_id,
                                                  sender_done_fn done, void *arg)
{
    struct smtp_sender_check *c = calloc(1, sizeof *c);
    if (!c) {
        struct sender_verdict v = { .reply = "451 4.3.0 Out of memory checking the sender, try again later" };
        done(arg, &v);
        return NULL;
    }
    const struct ferry_config *cfg = srv->cfg;
    c->srv = srv;
    c->done = done;
    c->arg = arg;
    str_copy(c->helo, helo, sizeof c->helo);
    str_copy(c->sender, sender, sizeof c->sender);
    str_copy(c->log_id, log_id, sizeof c->log_id);
    client_ip(client, &c->family, c->ip);
    auth_resolver_dns(&c->resolver, srv->dns);
    c->starting = true;
    if (cfg->spf_check && checkable_helo(c->helo)) {
        struct spf_query q = {
            .family = c->family, .sender = c->sender, .helo = c->helo, .receiver = cfg->hostname,
            .identity = SPF_ID_HELO,
        };
        memcpy(q.ip, c->ip, 16);
        struct spf_check *h = spf_check_start(&c->resolver, &q, on_helo, c);
        if (!c->helo_done)      /* else on_helo ran already and c->spf is the MAIL FROM check's */
            c->spf = h;
    } else if (cfg->spf_check) {
        start_mailfrom(c);
    } else if (cfg->dmp_check != DMP_CHECK_OFF) {
        start_dmp(c);
    } else {
        c->completed = true;
    }
    c->starting = false;
    if (c->completed || (!c->spf && !c->dmp && (c->spf_done || c->dmp_done))) {
        deliver(c);
        return NULL;
    }
    return c;
}

void smtp_sender_check_cancel(struct smtp_sender_check *c)
{
    if (!c)
        return;
    if (c->spf)
        spf_check_cancel(c->spf);
    if (c->dmp)
        dmp_check_cancel(c->dmp);
    free(c);
}

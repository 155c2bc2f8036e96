/* smtp_dmtp_peer — see smtp_dmtp.h: the peer's FCrDNS name and class at connect,
   the denied greeting, the EHLO keywords. */
#include "auth/spf.h"
#include "lib/log.h"
#include "lib/netaddr.h"
#include "smtpd/smtp_dmtp_int.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session_int.h"

#include <ctype.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* Classify with keyed lookups in the stored peer list (any size). -1 on a
   database error, logged: the caller must not take the peer for unclassified
   (a denied peer would get in, an allowed one be made to pull), and defers. */
static int classify(struct smtp_session *s, const char *verified_domain, struct pull_verdict *v)
{
    const struct ferry_config *cfg = s->srv->cfg;
    struct pull_peer_facts f = {
        .ip = (const struct sockaddr *)&s->peer,
        .fcrdns = s->dmtp->fcrdns,
        .authenticated = s->authenticated,
        .relay_client = settings_is_relay_client(cfg, (const struct sockaddr *)&s->peer),
        .verified_domain = verified_domain,
        .allow_verified_domain = cfg->pull_allow_dmarc_pass,
    };
    if (pull_classify_peer_db(s->srv->pull->lists, &f, v) == 0)
        return 0;
    log_warn("session %s: cannot read the DMTP peer list to classify [%s]%s%s; its mail is deferred (451 4.3.0)",
             s->id, s->peer_ip, verified_domain ? " with sender domain " : "", verified_domain ? verified_domain : "");
    return -1;
}

/* The class from v; a denied peer may only pull (smtp_dmtp_may_greet). */
static void set_class(struct smtp_dmtp *d, const struct pull_verdict *v)
{
    d->peer_class = v->cls;
    str_copy(d->peer_reason, v->reason, sizeof d->peer_reason);
}

bool smtp_dmtp_reclassify(struct smtp_session *s)
{
    struct smtp_dmtp *d = s->dmtp;
    struct pull_verdict v;
    if (classify(s, NULL, &v) < 0)
        return false;
    d->unreadable = false;
    set_class(d, &v);
    log_info("session %s: dmtp peer [%s] fcrdns=%s class=%s (%s; the lists could be read again)", s->id,
             s->peer_ip, d->fcrdns[0] ? d->fcrdns : "-", pull_class_name(v.cls), v.reason);
    if (v.cls == PULL_DENIED) {
        log_info("session %s: dmtp peer [%s] denied: %s; GTML only", s->id, s->peer_ip, d->peer_reason);
        d->denied = true;
    }
    return true;
}

static void lookups_done(struct smtp_dmtp *d)
{
    struct smtp_session *s = d->s;
    struct pull_verdict v;
    d->q = NULL;
    if (d->fcrdns_timer) {
        event_free(d->fcrdns_timer);
        d->fcrdns_timer = NULL;
    }
    if (classify(s, NULL, &v) < 0) {
        /* Greeted as usual (GTML does not depend on the class); MAIL tries the
           lists again and is deferred while they stay unreadable. */
        d->unreadable = true;
        v.cls = PULL_UNCLASSIFIED;
    }
    set_class(d, &v);
    d->classified = true;
    if (!d->unreadable)
        log_info("session %s: dmtp peer [%s] fcrdns=%s class=%s (%s)", s->id, s->peer_ip,
                 d->fcrdns[0] ? d->fcrdns : "-", pull_class_name(v.cls), v.reason);
    if (d->greet_waiting && s->state == SS_PREGREET) {
        d->greet_waiting = false;
        smtp_session_greet(s);
    }
}

static void forward_next(struct smtp_dmtp *d);

/* pull_fcrdns_wait is over: the resolver's own bound (dns_timeout × dns_rounds per
   query, up to 1 + FCRDNS_MAX_NAMES queries) is far too long to hold a greeting, so
   the peer is classified by address alone, as when it has no name. */
static void on_fcrdns_timer(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_dmtp *d = arg;
    (void)fd, (void)what;
    if (d->q)
        dns_cancel(d->q);
    d->fcrdns[0] = '\0';
    log_info("session %s: no FCrDNS answer for [%s] within pull_fcrdns_wait; classified by address",
             d->s->id, d->s->peer_ip);
    lookups_done(d);
}

/* An A/AAAA answer for d->names[next_name - 1]: does it lead back to the peer? */
static void on_forward(const struct dns_answer *a, void *arg)
{
    struct smtp_dmtp *d = arg;
    d->q = NULL;
    int family;
    uint8_t ip[16];
    if (a->status == DNS_OK && netaddr_bytes((const struct sockaddr *)&d->s->peer, &family, ip) == 0) {
        for (size_t i = 0; i < a->count; i++) {
            const struct dns_record *r = &a->records[i];
            if ((r->type == DNS_T_A && family == AF_INET && !memcmp(&r->u.a, ip, 4)) ||
                (r->type == DNS_T_AAAA && family == AF_INET6 && !memcmp(&r->u.aaaa, ip, 16))) {
                str_copy(d->fcrdns, d->names[d->next_name - 1], sizeof d->fcrdns);
                lookups_done(d);
                return;
            }
        }
    }
    forward_next(d);
}

static void forward_next(struct smtp_dmtp *d)
{
    int family;
    uint8_t ip[16];
    if (d->next_name >= d->nnames || netaddr_bytes((const struct sockaddr *)&d->s->peer, &family, ip) < 0) {
        lookups_done(d);
        return;
    }
    const char *name = d->names[d->next_name++];
    d->q = dns_lookup(d->s->srv->dns, name, family == AF_INET ? DNS_T_A : DNS_T_AAAA, on_forward, d);
    if (!d->q)
        lookups_done(d);
}

/* A host name we can compare and store: letters, digits, '-', '.', '_'; lower-cased,
   without the final dot. */
static bool keep_name(const char *in, char *out, size_t outsz)
{
    size_t n = strnlen(in, DNS_NAME_MAX + 1);
    if (n && in[n - 1] == '.')
        n--;
    if (n == 0 || n >= outsz || n > ADDR_DOMAIN_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return false;
        out[i] = (char)tolower(c);
    }
    out[n] = '\0';
    return true;
}

static void on_ptr(const struct dns_answer *a, void *arg)
{
    struct smtp_dmtp *d = arg;
    d->q = NULL;
    if (a->status == DNS_OK)
        for (size_t i = 0; i < a->count && d->nnames < FCRDNS_MAX_NAMES; i++)
            if (a->records[i].type == DNS_T_PTR && keep_name(a->records[i].u.ptr, d->names[d->nnames],
                                                             sizeof d->names[0]))
                d->nnames++;
    forward_next(d);
}

int smtp_dmtp_start(struct smtp_session *s)
{
    if (!s->srv->pull)
        return 0;
    struct smtp_dmtp *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->s = s;
    s->dmtp = d;
    const struct ferry_config *cfg = s->srv->cfg;
    if (s->kind != LISTEN_SMTP) {
        /* Submission: every transaction is authenticated, so allowed. */
        d->peer_class = PULL_ALLOWED;
        str_copy(d->peer_reason, "submission listener", sizeof d->peer_reason);
        d->classified = true;
        return 0;
    }
    if (settings_is_relay_client(cfg, (const struct sockaddr *)&s->peer)) {
        d->peer_class = PULL_ALLOWED;
        str_copy(d->peer_reason, "relay_networks", sizeof d->peer_reason);
        d->classified = true;
        return 0;
    }
    int family;
    uint8_t ip[16];
    char rev[DNS_NAME_MAX + 1];
    if (netaddr_bytes((const struct sockaddr *)&s->peer, &family, ip) < 0 ||
        netaddr_reverse_name(family, ip, rev, sizeof rev) < 0 ||
        !(d->q = dns_lookup(s->srv->dns, rev, DNS_T_PTR, on_ptr, d))) {
        lookups_done(d);        /* no name: classified by address alone */
        return 0;
    }
    struct timeval cap = { (time_t)cfg->pull_fcrdns_wait, 0 };
    d->fcrdns_timer = evtimer_new(s->srv->base, on_fcrdns_timer, d);
    if (!d->fcrdns_timer || evtimer_add(d->fcrdns_timer, &cap) < 0) {
        if (d->q)
            dns_cancel(d->q);
        lookups_done(d);
    }
    return 0;
}

void smtp_dmtp_free(struct smtp_session *s)
{
    struct smtp_dmtp *d = s->dmtp;
    if (!d)
        return;
    if (d->q)
        dns_cancel(d->q);
    if (d->fcrdns_timer)
        event_free(d->fcrdns_timer);
    free(d->rcpts);
    free(d);
    s->dmtp = NULL;
}

bool smtp_dmtp_quiet(const struct smtp_session *s)
{
    const struct smtp_dmtp *d = s->dmtp;
    return !d || (!d->q && !(d->fcrdns_timer && evtimer_pending(d->fcrdns_timer, NULL)));
}

void smtp_dmtp_say(struct smtp_session *s, enum dmtp_reply_id id)
{
    const struct dmtp_reply *r = dmtp_reply(id);
    smtp_session_reply(s, "%d %s %s", r->code, r->enhanced, r->text);
}

bool smtp_dmtp_may_greet(struct smtp_session *s)
{
    struct smtp_dmtp *d = s->dmtp;
    if (!d)
        return true;
    if (d->quit_only)
        return false;               /* greeted already, with 554 */
    if (!d->classified) {
        d->greet_waiting = true;
        return false;
    }
    if (d->peer_class != PULL_DENIED)
        return true;
    if (s->srv->cfg->pull_denied_greeting) {
        /* -03 §3.5: a denied peer is greeted 554. RFC 5321 §3.1: the server then
           waits for QUIT and answers anything else 503 (smtp_dmtp_command). */
        log_info("session %s: dmtp peer [%s] denied: %s; greeted 554", s->id, s->peer_ip, d->peer_reason);
        d->quit_only = true;
        s->state = SS_INIT;
        smtp_dmtp_say(s, DMTP_R_DENIED_GREETING);
        return false;
    }
    /* pull_denied_greeting = no: after a 554 greeting a client may only QUIT, so the
       peer could not pull (GTML) the mail our users sent to it. Denied then means "we
       take no mail from it": it is greeted 220 and MAIL is refused (RFC-NOTES.md,
       "Denied peers"). */
    log_info("session %s: dmtp peer [%s] denied: %s; GTML only", s->id, s->peer_ip, d->peer_reason);
    d->denied = true;
    return true;
}

void smtp_dmtp_ehlo(struct smtp_session *s)
{
    struct smtp_dmtp *d = s->dmtp;
    if (!d || s->kind != LISTEN_SMTP)
        return;
    /* MSID only to unclassified peers (-03 §3.4); GTML always, because the sending
       side's GTML service answers on this listener whoever asks. */
    bool unclassified = smtp_dmtp_txn_class(s) == PULL_UNCLASSIFIED;
    for (size_t i = 0; dmtp_ehlo_keywords[i]; i++)
        if (unclassified || strcmp(dmtp_ehlo_keywords[i], "MSID") != 0)
            smtp_session_reply(s, "250-%s", dmtp_ehlo_keywords[i]);
}

enum pull_class smtp_dmtp_txn_class(struct smtp_session *s)
{
    struct smtp_dmtp *d = s->dmtp;
    if (s->authenticated)
        return PULL_ALLOWED;
    if (d->txn_known)
        return d->txn_class;
    enum pull_class c = d->peer_class;
    d->txn_unreadable = false;
    /* Decided once per transaction, when MAIL FROM's SPF result is known. */
    if (s->state == SS_MAIL || s->state == SS_RCPT) {
        d->txn_known = true;
        if (c == PULL_UNCLASSIFIED && s->srv->cfg->pull_allow_dmarc_pass && s->spf_result == SPF_PASS &&
            s->spf_domain[0]) {
            struct pull_verdict v;
            if (classify(s, s->spf_domain, &v) < 0) {
                d->txn_known = false;       /* tried again at the next RCPT */
                d->txn_unreadable = true;
                return c;
            }
            if (v.cls == PULL_ALLOWED)
                log_info("session %s: dmtp sender domain %s allowed by SPF pass: %s", s->id, s->spf_domain,
                         v.reason);
            c = v.cls;
        }
        d->txn_class = c;
    }
    return c;
}

/* smtp_dmtp_caps — the limits on notices an outsider can make us store and on
   intent messages it can make us put in a mailbox (RFC-NOTES.md, "Caps on
   notices"). A notice that waits for the user's decision costs a stored record and
   a message in the mailbox, so per user at most pull_max_pending of them, at most
   pull_max_pending_sender from one sender address, and per peer IP at most
   pull_max_intent_rate intent messages an hour. Over a cap the recipient is
   deferred with a 4xx: the sender's MTA keeps the message and tries later, nothing
   is lost, and the user's mailbox is not flooded. */
#include "lib/log.h"
#include "lib/ratelimit.h"
#include "smtpd/smtp_dmtp_int.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session_int.h"

#include <stdio.h>
#include <time.h>

#define INTENT_RATE_KEYS 10000      /* peers remembered; the most drained is forgotten first */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct ratelimit *rate_table(struct smtp_session *s)
{
    struct smtp_pull *p = s->srv->pull;
    if (!p->intent_rate)
        p->intent_rate = ratelimit_new(INTENT_RATE_KEYS, (double)s->srv->cfg->pull_max_intent_rate, 3600.0);
    return p->intent_rate;
}

/* Pending notices this transaction already holds for user (not yet stored). */
static size_t txn_pending(const struct smtp_dmtp *d, const char *user, size_t *all)
{
    size_t mine = 0;
    *all = 0;
    for (size_t i = 0; i < d->nrcpts; i++)
        if (d->rcpts[i].capped) {
            (*all)++;
            mine += !strcmp(d->rcpts[i].user, user);
        }
    return mine;
}

const char *smtp_dmtp_cap_refusal(struct smtp_session *s, const char *user, const char *addr, char *reply,
                                  size_t replysz)
{
    const struct ferry_config *cfg = s->srv->cfg;
    struct ratelimit *rl = rate_table(s);
    size_t in_txn_all, in_txn = txn_pending(s->dmtp, user, &in_txn_all);
    if (!rl || ratelimit_level(rl, s->peer_ip, mono_now()) + (double)in_txn_all + 1 >
                   (double)cfg->pull_max_intent_rate) {
        log_info("session %s: dmtp defer RCPT <%s> from=<%s> [%s]: over pull_max_intent_rate (%llu an hour)", s->id,
                 addr, s->env.sender, s->peer_ip, cfg->pull_max_intent_rate);
        snprintf(reply, replysz, "450 4.7.0 <%s>: too many notices from your host this hour, try again later", addr);
        return reply;
    }
    size_t total = 0, from_sender = 0;
    if (notice_count_pending(s->srv->pull->notices, user, s->env.sender, time(NULL), cfg->pull_max_pending, &total,
                             &from_sender) < 0) {
        log_warn("session %s: cannot count the pending notices of %s; deferring <%s>", s->id, user, addr);
        snprintf(reply, replysz, "451 4.3.0 <%s>: local error, try again later", addr);
        return reply;
    }
    total += in_txn;        /* the same user twice in one transaction (an alias and its owner) */
    if (total >= cfg->pull_max_pending || from_sender + in_txn >= cfg->pull_max_pending_sender) {
        bool user_cap = total >= cfg->pull_max_pending;
        log_info("session %s: dmtp defer RCPT <%s> from=<%s> [%s]: %s has %zu notices waiting%s (%s %llu)", s->id,
                 addr, s->env.sender, s->peer_ip, user, user_cap ? total : from_sender + in_txn,
                 user_cap ? "" : " from this sender", user_cap ? "pull_max_pending" : "pull_max_pending_sender",
                 user_cap ? cfg->pull_max_pending : cfg->pull_max_pending_sender);
        snprintf(reply, replysz, "452 4.2.2 <%s>: too many %s wait for this recipient's decision, try again later",
                 addr, user_cap ? "messages" : "of your messages");
        return reply;
    }
    return NULL;
}

void smtp_dmtp_caps_count(struct smtp_session *s, size_t count)
{
    struct ratelimit *rl = rate_table(s);
    double now = mono_now();
    for (size_t i = 0; rl && i < count; i++)
        ratelimit_hit(rl, s->peer_ip, now);
}

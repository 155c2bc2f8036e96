/* smtp_client_txn — one transaction on an open session: the capability checks,
   MAIL, the RCPTs, DATA or BDAT or MSID, and the body (see smtp_client.h). */
#include "delivery/smtp_client_int.h"
#include "pull/dmtp_cmd.h"
#include "lib/buf.h"
#include "lib/msgfile.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The body is read and encoded until this much waits in the output buffer, and
   topped up again when it drains below the low mark. */
#define BODY_HIGH   (256 * 1024)
#define BODY_LOW    (64 * 1024)
#define BODY_CHUNK  8192

/* ---- the body ---- */

/* BDAT: the stored octets as they are, exactly body_size of them. */
static void fill_bdat(struct smtp_client *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char in[BODY_CHUNK];
    while (evbuffer_get_length(out) < BODY_HIGH && c->body_off < c->body_size) {
        size_t want = (size_t)(c->body_size - c->body_off) < sizeof in ? (size_t)(c->body_size - c->body_off)
                                                                          : sizeof in;
        ssize_t n = pread(c->msg_fd, in, want, c->body_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* The count is promised: the connection must go (the server drops
               an incomplete chunk). */
            sc_txn_abort(c, "4.3.0 cannot read the queued message: %s", n < 0 ? strerror(errno) : "it shrank");
            return;
        }
        if (evbuffer_add(out, in, (size_t)n) < 0) {
            sc_txn_abort(c, "4.3.0 out of memory sending the message to %s", c->label);
            return;
        }
        c->body_off += n;
    }
    if (c->body_off == c->body_size) {
        c->state = SC_DOT;
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        sc_arm(c, c->to.data_final);
    }
}

void sc_fill_body(struct smtp_client *c)
{
    if (c->bdat) {
        fill_bdat(c);
        return;
    }
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char in[BODY_CHUNK];
    char enc[2 * BODY_CHUNK + 8];
    /* The message's own octets only, never to end of file: a queue file may
       hold its envelope after them (lib/msgfile.h). */
    struct msg_src msg = { c->msg_fd, (unsigned long long)c->body_size };
    while (evbuffer_get_length(out) < BODY_HIGH) {
        ssize_t n = msg_pread(msg, in, sizeof in, (unsigned long long)c->body_off);
        if (n < 0) {
            /* Closing without the final dot makes the server drop what it has. */
            sc_txn_abort(c, "4.3.0 cannot read the queued message: %s", strerror(errno));
            return;
        }
        size_t w = n == 0 ? smtp_body_finish(&c->body, enc) : smtp_body_encode(&c->body, in, (size_t)n, enc);
        if (evbuffer_add(out, enc, w) < 0) {
            sc_txn_abort(c, "4.3.0 out of memory sending the message to %s", c->label);
            return;
        }
        if (n == 0) {
            c->state = SC_DOT;
            bufferevent_set_timeouts(c->bev, NULL, NULL);
            sc_arm(c, c->to.data_final);
            return;
        }
        c->body_off += n;
    }
}

static void start_body(struct smtp_client *c)
{
    c->state = SC_BODY;
    evtimer_del(c->timer);
    struct timeval block = {(time_t)(c->to.data_block / 1000), (suseconds_t)(c->to.data_block % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, NULL, &block);
    bufferevent_setwatermark(c->bev, EV_WRITE, BODY_LOW, 0);
    smtp_body_init(&c->body);
    c->body_off = 0;
    c->body_size = (off_t)c->env->size;     /* not the file's size (lib/msgfile.h) */
    sc_fill_body(c);
}

/* RFC 3030: the whole message as one chunk, "BDAT n LAST", no dot-stuffing and
   no 354 round trip. */
static void start_bdat(struct smtp_client *c)
{
    char line[64];
    int n = snprintf(line, sizeof line, "BDAT %llu LAST\r\n", c->env->size);
    if (!sc_write_out(c, line, (size_t)n)) {
        sc_txn_abort(c, "4.3.0 out of memory talking to %s", c->label);
        return;
    }
    start_body(c);
}

/* ---- the transaction ---- */

static bool send_rcpt(struct smtp_client *c, size_t i)
{
    char line[SMTP_CMD_MAX];
    int n = smtp_build_rcpt(&c->env->rcpts[c->res.rcpts[i].index], &c->peer, line, sizeof line);
    return n > 0 && sc_write_out(c, line, (size_t)n);
}

/* What keeps this message from this peer, as a failure text; NULL when nothing. */
static bool message_mismatch(struct smtp_client *c, char *text, size_t textsz)
{
    const struct envelope *e = c->env;
    /* RFC 8689 §4.2.2: never in the clear, never to a peer that would not pass
       the requirement on; the next MX may qualify. */
    if (e->requiretls && !c->tls_verified)
        snprintf(text, textsz, "5.7.10 the message requires TLS (REQUIRETLS) and the session with %s is not "
                 "verified TLS", c->label);
    else if (e->requiretls && !c->peer.requiretls)
        snprintf(text, textsz, "5.7.30 the message requires TLS (REQUIRETLS) and host %s does not offer "
                 "REQUIRETLS", c->label);
    else if (c->peer.size && c->peer.size_limit > 0 && e->size > c->peer.size_limit)
        snprintf(text, textsz, "5.3.4 the message (%llu octets) exceeds the limit of host %s (SIZE %llu)",
                 e->size, c->label, c->peer.size_limit);
    else if (e->body_8bit && !c->peer.eightbitmime)
        snprintf(text, textsz, "5.6.3 the message has an 8-bit body and host %s does not offer 8BITMIME",
                 c->label);
    else if (e->smtputf8 && !c->peer.smtputf8)
        snprintf(text, textsz, "5.6.7 the message needs SMTPUTF8 and host %s does not offer it", c->label);
    else
        return false;
    return true;
}

void sc_start_txn(struct smtp_client *c)
{
    const struct envelope *e = c->env;
    char why[sizeof c->host_perm.text];
    if (message_mismatch(c, why, sizeof why)) {
        if (c->txn_on_conn > 1) {
            /* A reused session cannot take this message, but another MX might:
               not attempted, for the caller to retry on a fresh session (which
               tries every MX). The session stays. */
            char text[sizeof c->host_perm.text + 32];
            snprintf(text, sizeof text, "4.4.0 not sent on a reused session: %s", why);
            c->res.not_attempted = true;
            sc_set_open_rcpts(c, DELIVERY_DEFER, text);
            c->need_rset = false;
            sc_txn_end(c, true);
        } else {
            sc_host_fail(c, DELIVERY_FAIL, "%s", why);
        }
        return;
    }
    char line[SMTP_CMD_MAX];
    int n = smtp_build_mail(e, &c->peer, line, sizeof line);
    if (n < 0) {
        if (c->txn_on_conn > 1) {
            sc_set_open_rcpts(c, DELIVERY_FAIL, "5.1.7 the sender address does not fit in a MAIL command");
            sc_txn_end(c, true);
        } else {
            sc_host_fail(c, DELIVERY_FAIL, "5.1.7 the sender address <%.300s> does not fit in a MAIL command",
                      e->sender);
        }
        return;
    }
    bool ok = sc_write_out(c, line, (size_t)n);
    c->bdat = c->peer.chunking && !c->peer.msid;
    if (c->peer.pipelining) {
        /* RFC 2920: MAIL, every RCPT and DATA go in one write; the replies come back
           in the same order. With CHUNKING the BDAT waits for the RCPT replies: a
           chunk sent to nobody would still have to be transferred whole. */
        for (size_t i = 0; ok && i < c->res.nrcpts; i++)
            ok = send_rcpt(c, i);
        if (!c->bdat && !c->peer.msid)
            ok = ok && sc_write_out(c, "DATA\r\n", 6);
    }
    c->state = SC_MAIL;
    c->need_rset = true;
    c->mail_failed = false;
    c->discard_data = false;
    c->wants_msid = false;
    c->rcpt_i = 0;
    c->accepted = 0;
    if (!ok) {
        sc_txn_abort(c, "4.3.0 cannot send the envelope to %s (out of memory or an address too long)", c->label);
        return;
    }
    sc_arm(c, c->to.mail);
}

static void send_msid(struct smtp_client *c);

/* The transaction after the last RCPT reply. */
static void after_rcpts(struct smtp_client *c)
{
    if (c->peer.msid || (c->wants_msid && !c->peer.pipelining)) {
        if (c->mail_failed || c->accepted == 0)
            sc_txn_end(c, true);
        else
            send_msid(c);
        return;
    }
    if (c->bdat) {
        if (c->mail_failed || c->accepted == 0)
            sc_txn_end(c, true);
        else
            start_bdat(c);
        return;
    }
    if (c->peer.pipelining) {
        c->state = SC_DATA;      /* DATA went out with the RCPTs */
        sc_arm(c, c->to.data_init);
    } else if (c->mail_failed || c->accepted == 0) {
        sc_txn_end(c, true);
    } else if (!sc_write_out(c, "DATA\r\n", 6)) {
        sc_txn_abort(c, "4.3.0 out of memory talking to %s", c->label);
    } else {
        c->state = SC_DATA;
        sc_arm(c, c->to.data_init);
    }
}

static void apply_to_accepted(struct smtp_client *c, const struct smtp_reply *r, const char *in_reply_to)
{
    for (size_t i = 0; i < c->res.nrcpts; i++)
        if (c->stand[i] == RS_ACCEPTED)
            sc_rcpt_from_reply(c, i, r, in_reply_to);
}

/* DMTP: the message is held here and only its reference goes out. The hold's
   disk work runs off the loop (the hooks'); the session waits in SC_HOLD,
   sending nothing, until held() says the copy is durable, and only then does the
   MSID go out (queue/held.h: the held copy exists before anyone may pull it). */
static void held(void *client, bool ok, const char *line, size_t len, const char *handle, const char *err)
{
    struct smtp_client *c = client;
    c->hold_job = NULL;
    evtimer_del(c->timer);
    if (!ok) {
        c->hold[0] = '\0';
        sc_txn_abort(c, "4.3.0 cannot hold the message for a pull by %s: %s", c->label, err ? err : "failed");
        return;
    }
    str_copy(c->hold, handle, sizeof c->hold);
    if (!sc_write_out(c, line, len)) {
        sc_txn_abort(c, "4.3.0 out of memory talking to %s", c->label);
        return;
    }
    c->state = SC_MSID;
    sc_arm(c, c->to.data_final);
}

void sc_hold_abandon(struct smtp_client *c)
{
    if (c->hold_job) {
        c->dmtp.abandon(c->dmtp.arg, c->hold_job);
        c->hold_job = NULL;
    }
}

static void send_msid(struct smtp_client *c)
{
    size_t *idx = calloc(c->accepted, sizeof *idx);
    if (!idx) {
        sc_txn_abort(c, "4.3.0 out of memory holding the message for %s", c->label);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < c->res.nrcpts && n < c->accepted; i++)
        if (c->stand[i] == RS_ACCEPTED)
            idx[n++] = c->res.rcpts[i].index;
    char err[200] = "";
    const struct mx_target *t = &c->targets[c->target];
    c->hold[0] = '\0';
    c->hold_job = c->dmtp.hold(c->dmtp.arg, c->env, c->msg_fd, idx, n, (const struct sockaddr *)&t->sa,
                               !c->peer.smtputf8, held, c, err, sizeof err);
    free(idx);
    if (!c->hold_job) {
        sc_txn_abort(c, "4.3.0 cannot hold the message for a pull by %s: %s", c->label, err);
        return;
    }
    c->state = SC_HOLD;
    sc_arm(c, c->to.data_final);
}

static void msid_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX];
    bool ok = r->code / 100 == 2;
    if (ok) {
        sc_reply_flat(r, flat, sizeof flat);
        for (size_t i = 0; i < c->res.nrcpts; i++)
            if (c->stand[i] == RS_ACCEPTED)
                sc_set_rcpt(c, i, DELIVERY_OK, flat, "2.0.0 held for pull as %s; host %s said: %s (in reply to MSID)",
                         c->hold, c->label, flat);
    } else {
        apply_to_accepted(c, r, "MSID");
    }
    c->dmtp.settle(c->dmtp.arg, c->hold, ok);
    c->hold[0] = '\0';
    c->need_rset = !ok;
    sc_txn_end(c, true);
}

/* ---- the replies in a transaction ---- */

static void mail_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    if (r->code == 421 && c->txn_on_conn > 1) {
        /* The server timed the cached connection out: nothing was taken. */
        c->res.not_attempted = true;
        sc_set_open_rcpts(c, DELIVERY_DEFER, "4.4.2 the reused connection was closed by the server (421)");
        sc_txn_end(c, false);
        return;
    }
    if (r->code / 100 != 2) {
        c->mail_failed = true;
        for (size_t i = 0; i < c->res.nrcpts; i++)
            sc_rcpt_from_reply(c, i, r, "MAIL FROM");
    } else if (c->have_dmtp && dmtp_reply_wants_msid(r->code)) {
        c->wants_msid = true;
    }
    if (c->peer.pipelining) {
        c->state = SC_RCPT;  /* the RCPT replies follow, whatever MAIL got */
        sc_arm(c, c->to.rcpt);
    } else if (c->mail_failed) {
        sc_txn_end(c, true);
    } else if (!send_rcpt(c, 0)) {
        sc_txn_abort(c, "4.3.0 cannot send RCPT to %s", c->label);
    } else {
        c->state = SC_RCPT;
        sc_arm(c, c->to.rcpt);
    }
}

static void rcpt_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    if (!c->mail_failed) {
        if (r->code / 100 == 2) {
            c->stand[c->rcpt_i] = RS_ACCEPTED;
            c->accepted++;
            if (c->have_dmtp && dmtp_reply_wants_msid(r->code))
                c->wants_msid = true;
        } else {
            sc_rcpt_from_reply(c, c->rcpt_i, r, "RCPT TO");
        }
    }
    if (++c->rcpt_i < c->res.nrcpts) {
        if (!c->peer.pipelining && !send_rcpt(c, c->rcpt_i)) {
            sc_txn_abort(c, "4.3.0 cannot send RCPT to %s", c->label);
            return;
        }
        sc_arm(c, c->to.rcpt);
    } else {
        after_rcpts(c);
    }
}

static void data_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    if (c->have_dmtp && !c->mail_failed && c->accepted > 0 && dmtp_reply_wants_msid(r->code)) {
        send_msid(c);       /* -00: "don't send DATA, send MSID" */
        return;
    }
    if (r->code != 354) {
        if (!c->mail_failed)
            apply_to_accepted(c, r, "DATA");
        sc_txn_end(c, true);
        return;
    }
    if (!c->mail_failed && c->accepted > 0) {
        start_body(c);
        return;
    }
    /* RFC 2920 §3.1: a server should have refused DATA here; an empty message
       ends it without delivering anything to anyone. */
    c->discard_data = true;
    if (!sc_write_out(c, ".\r\n", 3)) {
        sc_txn_end(c, false);
        return;
    }
    c->state = SC_DOT;
    sc_arm(c, c->to.data_final);
}

/* A reply in the middle of the data: the server gave up on the message. */
static void body_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    char flat[SMTP_CLIENT_REPLY_MAX];
    int cls = r->code / 100;
    if (cls == 4 || cls == 5) {
        apply_to_accepted(c, r, "the message data");
        sc_txn_end(c, false);
    } else {
        sc_txn_abort(c, "4.5.0 host %s replied in the middle of the message data: %s", c->label,
                     sc_reply_flat(r, flat, sizeof flat));
    }
}

void sc_txn_reply(struct smtp_client *c, const struct smtp_reply *r)
{
    switch (c->state) {
    case SC_MAIL: mail_reply(c, r); return;
    case SC_RCPT: rcpt_reply(c, r); return;
    case SC_DATA: data_reply(c, r); return;
    case SC_MSID: msid_reply(c, r); return;
    case SC_HOLD:
        /* Nothing was asked since the last reply: the peer is out of step (a 421
           on its own timer, most likely). The hold is withdrawn (sc_txn_end). */
        sc_txn_abort(c, "4.5.0 host %s sent a reply nobody asked for while the message was being held", c->label);
        return;
    case SC_BODY: body_reply(c, r); return;
    case SC_DOT:
        if (!c->discard_data)
            apply_to_accepted(c, r, c->bdat ? "BDAT LAST" : "end of DATA");
        c->need_rset = false;
        sc_txn_end(c, true);
        return;
    default:
        return;
    }
}

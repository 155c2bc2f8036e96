/*
 * smtp_message — one message of a session, from its first octet to the reply:
 * the Received: field, spooling the content through the receive-time policy
 * (smtpd/smtp_dkim_dmarc.h), the end-of-data checks, the DMARC verdict and what
 * follows from it (refusal, quarantine, aggregate and failure reports), and the
 * commit. The commands that start a message (DATA, BDAT) stay with the session
 * (smtp_session.c, smtp_bdat.c); they call in through smtp_session_int.h.
 */
#include "auth/dmarc.h"
#include "lib/buf.h"
#include "lib/fdio.h"
#include "lib/log.h"
#include "lib/mail_date.h"
#include "smtpd/sender_identity.h"
#include "smtpd/smtp_dmarc_agg.h"
#include "smtpd/smtp_dmarc_failure.h"
#include "smtpd/smtp_dmtp.h"
#include "smtpd/smtp_dkim_dmarc.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session.h"
#include "smtpd/smtp_session_int.h"
#include "smtpd/smtp_tlsrpt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The trace header of RFC 5321 §4.4, with the protocol names of RFC 3848/6531. */
static int received_header(struct smtp_session *s, struct buf *b)
{
    const struct ferry_config *cfg = s->srv->cfg;
    char date[MAIL_DATE_MAX];
    mail_date(time(NULL), date, sizeof date);
    /* RFC 3848 / RFC 6531: ESMTP, then S for TLS and A for AUTH (ESMTPSA, UTF8SMTPSA). */
    char proto[16];
    snprintf(proto, sizeof proto, "%s%s%s", s->env.smtputf8 ? "UTF8SMTP" : s->esmtp ? "ESMTP" : "SMTP",
             s->esmtp && s->tls ? "S" : "", s->esmtp && s->authenticated ? "A" : "");
    str_copy(s->env.protocol, proto, sizeof s->env.protocol);
    int r = buf_printf(b, "Received: from %s ([%s])\r\n\tby %s (Ferry) with %s id %s",
                       s->helo, s->peer_ip, cfg->hostname, proto, s->draft.id);
    if (s->tls)
        r |= buf_printf(b, "\r\n\t(using %s with cipher %s (%d bits))", s->tls_version, s->tls_cipher, s->tls_bits);
    if (s->env.nrcpts == 1)
        r |= buf_printf(b, "\r\n\tfor <%s>", s->env.rcpts[0].addr);
    r |= buf_printf(b, "; %s\r\n", date);
    return r;
}

static void flush_wbuf(struct smtp_session *s)
{
    size_t off = 0;
    s->wflushed |= s->wlen > 0;
    while (off < s->wlen && !s->data_errno) {
        ssize_t w = write(s->draft.msg_fd, s->wbuf + off, s->wlen - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            s->data_errno = errno;
            break;
        }
        off += (size_t)w;
    }
    s->wlen = 0;
}

void smtp_session_spool_bytes(struct smtp_session *s, const char *p, size_t n)
{
    s->data_size += n;
    if (s->data_size > s->srv->cfg->message_size_limit)
        s->too_big = true;
    if (s->too_big || s->data_errno)
        return;     /* keep reading to the end, write nothing more */
    while (n) {
        size_t k = SESSION_WBUF_SIZE - s->wlen;
        if (k > n)
            k = n;
        memcpy(s->wbuf + s->wlen, p, k);
        s->wlen += k;
        p += k;
        n -= k;
        if (s->wlen == SESSION_WBUF_SIZE)
            flush_wbuf(s);
    }
}

const char *smtp_session_begin_message(struct smtp_session *s)
{
    if (!s->wbuf && !(s->wbuf = malloc(SESSION_WBUF_SIZE)))
        return "451 4.3.0 Local error in processing (out of memory), try again later";
    if (spool_draft_new(&s->srv->spool, &s->draft) < 0) {
        int e = errno;
        log_error("cannot create a spool file in %s/incoming: %s", s->srv->spool.dir, strerror(e));
        return e == ENOSPC || e == EDQUOT ? "452 4.3.1 Insufficient system storage"
                                          : "451 4.3.0 Local error in processing, try again later";
    }
    s->have_draft = true;
    str_copy(s->env.id, s->draft.id, sizeof s->env.id);
    struct buf hdr;
    buf_init(&hdr, 4096);
    if (received_header(s, &hdr) == 0)
        smtp_session_spool_bytes(s, hdr.data, hdr.len);
    buf_free(&hdr);
    const struct ferry_config *cfg = s->srv->cfg;
    bool own_user = s->authenticated || settings_is_relay_client(cfg, (const struct sockaddr *)&s->peer);
    struct smtp_policy_ctx ctx = {
        /* Port 25 is where mail from others arrives; submission is our users'. */
        .verify = cfg->dkim_verify && s->kind == LISTEN_SMTP,
        .sign = own_user,
        .add_missing = s->kind != LISTEN_SMTP,
        .hostname = cfg->hostname,
        .authserv_id = cfg->authserv_id,
        .other_results = s->spf_results[0] ? s->spf_results : NULL,
        .extra_fields = s->spf_fields[0] ? s->spf_fields : NULL,
        .log_id = s->draft.id,
        /* DMARC for strangers only (RFC 9989 asks it of mail from other domains'
           senders; our own users and local mail are not judged by it). */
        .dmarc = cfg->dmarc_check && s->kind == LISTEN_SMTP && !own_user,
        .spf = s->spf_result,
        .spf_domain = s->spf_domain,
        .trusted_forwarder = settings_is_trusted_forwarder(cfg, (const struct sockaddr *)&s->peer),
        .keep_header = cfg->dmarc_failure_reports,
        /* ARC beside DKIM on port 25, for the same strangers DMARC judges. */
        .arc = s->kind == LISTEN_SMTP && !own_user,
        .remote_ip = s->peer_ip,
        /* A recipient is relayed or forwarded by an alias (smtp_arc_seal.h). */
        .seal = s->seal_forward,
    };
    s->policy = smtp_policy_new(s->srv, &ctx);
    if (!s->policy)
        return "451 4.3.0 Local error in processing (out of memory), try again later";
    return NULL;
}

static void spool_write_cb(void *arg, const char *p, size_t n)
{
    smtp_session_spool_bytes(arg, p, n);
}

void smtp_session_content(struct smtp_session *s, const char *p, size_t n)
{
    smtp_policy_content(s->policy, p, n, spool_write_cb, s);
}

/* The whole message has been read: refuse it, or hand it to the group commit. */
static void on_policy_done(void *arg, const char *prepend, size_t len);

void smtp_session_finish_message(struct smtp_session *s)
{
    smtp_session_timeouts(s, false);
    smtp_policy_content_end(s->policy, spool_write_cb, s);
    /* A message that fits in the write buffer stays there until the header
       fields known only at the end (Authentication-Results, DKIM-Signature) are
       known: on_policy_done then writes them and the message in one pass, where
       prepending them later would copy the whole file (issue 16). A larger
       message is in its file already and takes spool_draft_prepend. */
    if (s->wflushed || smtp_dmtp_reply_pending(s))
        flush_wbuf(s);
    const char *qid = s->draft.id;
    const char *refusal = smtp_policy_refusal(s->policy);
    char from_refusal[700], tlsrpt_refusal[600];
    if (refusal)
        ;
    else if (s->data_refusal[0] && !smtp_policy_runs_dmarc(s->policy))
        refusal = s->data_refusal;      /* with DMARC, decided once its result is in */
    else if (s->too_big)
        refusal = "552 5.3.4 Message size exceeds fixed maximum message size";
    else if ((s->data.bare_lf || s->data.bare_cr) && !s->data.normalize)
        refusal = "550 5.6.0 Message contains a bare CR or LF; lines must end with CRLF (RFC 5321 2.3.8)";
    else if (s->data.nul)
        refusal = "550 5.6.0 Message contains a NUL octet, which SMTP cannot carry";
    else if (s->data.long_line)
        refusal = "550 5.6.0 Message contains a line longer than 1000 octets (RFC 5321 4.5.3.1.6)";
    else if (s->authenticated) {
        /* The author a reader sees, and the one a DKIM signature vouches for, must
           be the user's too, on every listener. */
        const char *from = smtp_policy_header_from(s->policy);
        if (!from[0] || !sender_identity_owns(s->srv, s->auth_user, false, from)) {
            snprintf(from_refusal, sizeof from_refusal, "553 5.7.1 The From: header address <%s> is not owned by "
                     "user %s", from[0] ? from : "(none or several)", s->auth_user);
            refusal = from_refusal;
        }
    }
    if (!refusal && !s->data_errno)
        refusal = smtp_tlsrpt_refusal(s, tlsrpt_refusal, sizeof tlsrpt_refusal);
    if (refusal) {
        s->junk++;              /* a refused message is no completed transaction (smtp_limits.c) */
        log_info("refused message from [%s] from=<%s>: %s", s->peer_ip, s->env.sender, refusal + 10);
        smtp_session_reply(s, "%s", refusal);
        smtp_session_reset_transaction(s);
        s->state = SS_READY;
        return;
    }
    if (s->data_errno) {
        log_msg(LOG_LVL_ERROR, qid, "cannot write to the spool: %s", strerror(s->data_errno));
        smtp_session_reply(s, "%s", s->data_errno == ENOSPC || s->data_errno == EDQUOT
                           ? "452 4.3.1 Insufficient system storage" : "451 4.3.0 Local error writing the message");
        smtp_session_reset_transaction(s);
        s->state = SS_READY;
        return;
    }
    if (smtp_dmtp_reply_finish(s))
        return;     /* only replies to DMTP intent messages: consumed */
    /* Reading stays paused (COMMIT) while key lookups run; the reply comes once the
       message is committed. */
    s->state = SS_COMMIT;
    s->in_policy_finish = true;
    smtp_policy_finish(s->policy, on_policy_done, s);
    s->in_policy_finish = false;
}

/* A transaction ended after its content was read (committed or refused): back to
   READY, or the session ends (closing, or the server stopping). resume: commands
   pipelined behind the data waited for this reply, read them now (false when the
   caller's own read loop is still on the stack and will). */
static void transaction_over(struct smtp_session *s, bool resume)
{
    smtp_session_reset_transaction(s);
    if (s->state == SS_CLOSING) {
        smtp_server_session_gone(s->srv, s);
        return;
    }
    s->state = SS_READY;
    if (s->srv->stopping) {
        smtp_session_shutdown(s);
        return;
    }
    if (resume)
        smtp_session_resume(s);
}

/* Count the DMARC evaluation of this transaction for the aggregate report, and
   leave a failure report when one is asked for. */
static void record_dmarc(struct smtp_session *s)
{
    const struct policy_dmarc *dm = s->policy ? smtp_policy_dmarc(s->policy) : NULL;
    if (!dm || !dm->evaluated)
        return;
    struct smtp_dmarc_seen m = {
        .outcome = smtp_policy_dmarc_outcome(s->policy),
        .verdict = dm,
        .spf = s->spf_result,
        .spf_domain = s->spf_domain,
        .client_ip = s->peer_ip,
        .envelope_from = s->env.sender,
        .envelope_to = s->env.nrcpts ? s->env.rcpts[0].addr : "",
        .log_id = s->draft.id,
    };
    m.dkim = smtp_policy_dkim_results(s->policy, &m.ndkim);
    smtp_dmarc_agg_record(s->srv, &m);
    size_t hlen;
    const char *hdr = smtp_policy_arrived_header(s->policy, &hlen);
    smtp_dmarc_failure_report(s->srv, &m, hdr, hlen,
                              dm->applied == DMARC_P_REJECT ? "reject" :
                              dm->applied == DMARC_P_QUARANTINE ? "spam" : "delivered");
}

/* The receive-time policy refused the message after its content was read. */
static void refuse_after_policy(struct smtp_session *s, const char *text)
{
    s->junk++;                  /* a refused message is no completed transaction (smtp_limits.c) */
    log_msg(LOG_LVL_INFO, s->draft.id, "refused message from [%s] from=<%s>: %s", s->peer_ip, s->env.sender, text);
    if (s->state != SS_CLOSING)
        smtp_session_reply(s, "%s", text);
    transaction_over(s, !s->in_policy_finish);
}

/* Receive-time policy is done: prepend its fields, write the envelope, commit. */
static void on_policy_done(void *arg, const char *prepend, size_t len)
{
    struct smtp_session *s = arg;
    const char *qid = s->draft.id;
    const struct policy_dmarc *dm = smtp_policy_dmarc(s->policy);
    const char *deferral = smtp_policy_deferral(s->policy);
    if (deferral) {
        char text[200];
        str_copy(text, deferral, sizeof text);
        refuse_after_policy(s, text);
        return;
    }
    if (dm->evaluated && dm->applied == DMARC_P_REJECT) {
        record_dmarc(s);        /* the report shows what was rejected too */
        char text[600];
        if (dm->result == DMARC_RES_FAIL)
            snprintf(text, sizeof text, "550 5.7.1 Message refused: the DMARC policy of %s is reject, and "
                     "neither SPF nor DKIM passed aligned with it", dm->header_from);
        else
            snprintf(text, sizeof text, "550 5.7.1 Message refused: its From: names more than one author domain, "
                     "so no DMARC policy can be honoured (RFC 9989 11.5)");
        refuse_after_policy(s, text);
        return;
    }
    if (s->data_refusal[0]) {
        /* spf_fail_action = data: an aligned DMARC pass vouches for the message
           the SPF fail would have refused (a forwarder, RFC 9989 section 8.3), and
           so does a trusted ARC sealer whose results say it authenticated there:
           the SPF fail is the forward's, which the seal explains (RFC 8617 7.2.1). */
        if (dm->evaluated && dm->result == DMARC_RES_PASS) {
            log_msg(LOG_LVL_INFO, qid, "SPF fail not enforced: DMARC passed for %s", dm->header_from);
        } else if (dm->evaluated && dm->arc_vouch[0]) {
            log_msg(LOG_LVL_INFO, qid, "SPF fail not enforced: %s", dm->arc_vouch);
        } else {
            char text[600];
            str_copy(text, s->data_refusal, sizeof text);
            refuse_after_policy(s, text);
            return;
        }
    }
    if (dm->evaluated && dm->applied == DMARC_P_QUARANTINE)
        snprintf(s->env.quarantine, sizeof s->env.quarantine, "dmarc=%s policy=quarantine header.from=%s",
                 dmarc_result_name((enum dmarc_result)dm->result), dm->header_from);
    if (!s->wflushed) {
        /* The whole message is still in memory (smtp_session_finish_message): the
           new header fields go first and the message after them, no copy. */
        if ((len && fd_write_all(s->draft.msg_fd, prepend, len) < 0) ||
            fd_write_all(s->draft.msg_fd, s->wbuf, s->wlen) < 0) {
            int e = errno;
            log_msg(LOG_LVL_ERROR, qid, "cannot write to the spool: %s", strerror(e));
            smtp_session_committed(s, false, e);
            return;
        }
        s->wlen = 0;
        s->wflushed = true;
    } else if (len && spool_draft_prepend(&s->srv->spool, &s->draft, prepend, len) < 0) {
        int e = errno;
        log_msg(LOG_LVL_ERROR, qid, "cannot add header fields to the message: %s", strerror(e));
        smtp_session_committed(s, false, e);
        return;
    }
    s->data_size += len;
    s->env.arrival = time(NULL);
    s->env.size = s->data_size;
    str_copy(s->env.client_addr, s->peer_ip, sizeof s->env.client_addr);
    str_copy(s->env.client_helo, s->helo, sizeof s->env.client_helo);
    if (spool_draft_put_env(&s->srv->spool, &s->draft, &s->env) < 0) {
        int e = errno;
        log_msg(LOG_LVL_ERROR, qid, "cannot write the envelope: %s", strerror(e));
        smtp_session_committed(s, false, e);
        return;
    }
    smtp_server_commit(s->srv, s);
}

void smtp_session_committed(struct smtp_session *s, bool ok, int err)
{
    if (ok) {
        const struct policy_dmarc *dm = s->policy ? smtp_policy_dmarc(s->policy) : NULL;
        const char *arc = s->policy ? smtp_policy_arc_summary(s->policy) : "";
        log_msg(LOG_LVL_INFO, s->draft.id,
                "from=<%s> size=%llu nrcpt=%zu client=[%s] helo=%s proto=%s session=%s%s%s%s%s", s->env.sender,
                s->env.size, s->env.nrcpts, s->peer_ip, s->helo, s->env.protocol, s->id,
                dm && dm->evaluated ? " " : "", dm && dm->evaluated ? dm->summary : "",
                arc[0] ? " " : "", arc);
        s->messages++;
        s->rcpts_accepted += (unsigned)s->env.nrcpts;
        s->octets += s->env.size;
        str_copy(s->last_qid, s->draft.id, sizeof s->last_qid);
        record_dmarc(s);
        smtp_dmtp_committed(s);
        smtp_limits_transaction_done(s);
        if (s->state != SS_CLOSING)
            smtp_session_reply(s, "250 2.0.0 Ok: queued as %s", s->draft.id);
        s->have_draft = false;      /* it belongs to the queue now */
    } else {
        log_msg(LOG_LVL_ERROR, s->draft.id, "commit failed: %s", strerror(err));
        if (s->state != SS_CLOSING)
            smtp_session_reply(s, "%s", err == ENOSPC || err == EDQUOT ? "452 4.3.1 Insufficient system storage"
                                                          : "451 4.3.0 Local error committing the message");
        s->have_draft = false;      /* the failed commit aborted the draft */
    }
    transaction_over(s, true);
}


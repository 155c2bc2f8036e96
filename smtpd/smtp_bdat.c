/*
 * smtp_bdat — the BDAT command of CHUNKING (RFC 3030) in a session; see
 * smtp_session.h for the states and RFC-NOTES.md for the choices.
 *
 * The rule everything here serves: the octets announced by a BDAT command are
 * always read to their end before it is answered, whether the chunk is accepted
 * or refused, so the client and Ferry never disagree about where the next
 * command starts. Content goes to the spool as it comes (no dot-stuffing, no end
 * marker); the DATA line rules are checked over it (smtp_text) and judged, like
 * DATA, when the LAST chunk has arrived.
 */
#include "lib/log.h"
#include "smtpd/smtp_dmtp.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session_int.h"

#include <errno.h>
#include <event2/buffer.h>
#include <limits.h>
#include <string.h>

/* smtp_cmd_parse has checked the form "1*DIGIT [ SP LAST ]" (at most 20 digits);
   a count beyond what fits saturates, and is refused as too big like any other. */
static unsigned long long chunk_size(const char *arg, bool *last)
{
    unsigned long long v = 0;
    const char *p = arg;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        v = v > (ULLONG_MAX - d) / 10 ? ULLONG_MAX : v * 10 + d;
    }
    *last = *p == ' ';
    return v;
}

void smtp_bdat_command(struct smtp_session *s, const struct smtp_cmd *cmd)
{
    const struct ferry_config *cfg = s->srv->cfg;
    s->chunk_size = s->chunk_left = chunk_size(cmd->arg, &s->chunk_last);
    s->chunk_from = s->state;
    s->chunk_refusal = NULL;
    switch (s->state) {
    case SS_INIT:
        s->chunk_refusal = "503 5.5.1 Send EHLO or HELO first";
        break;
    case SS_READY:
        s->chunk_refusal = "503 5.5.1 Need MAIL and RCPT before BDAT";
        break;
    case SS_MAIL:
        s->chunk_refusal = "503 5.5.1 No valid recipients";
        break;
    case SS_BDAT_FAILED:
        s->chunk_refusal = "503 5.5.1 This transaction has failed; send RSET";
        break;
    case SS_RCPT:
        s->chunk_refusal = smtp_dmtp_data_refusal(s);
        break;
    case SS_BDAT:
        break;
    default:
        /* DATA, CHUNK, COMMIT and CLOSING read no commands. */
        return;
    }
    if (!s->chunk_refusal &&
        (s->chunk_size > cfg->message_size_limit || s->data_size + s->chunk_size > cfg->message_size_limit))
        s->chunk_refusal = "552 5.3.4 Message size exceeds fixed maximum message size";
    if (!s->chunk_refusal && s->state == SS_RCPT) {
        /* The first chunk opens the message, as DATA does. */
        s->chunk_refusal = smtp_session_begin_message(s);
        smtp_text_init(&s->text);
    }
    s->state = SS_CHUNK;
    smtp_session_timeouts(s, true);
}

bool smtp_bdat_read(struct smtp_session *s, struct evbuffer *in)
{
    while (s->chunk_left > 0) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return false;
        size_t want = avail < s->chunk_left ? avail : (size_t)s->chunk_left;
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, (ev_ssize_t)want, NULL, &v, 1) < 1)
            return false;
        size_t n = v.iov_len < want ? v.iov_len : want;
        if (!s->chunk_refusal) {
            smtp_text_feed(&s->text, v.iov_base, n);
            smtp_session_content(s, v.iov_base, n);
        }
        evbuffer_drain(in, n);
        s->chunk_left -= n;
    }
    return true;
}

void smtp_bdat_chunk_done(struct smtp_session *s)
{
    smtp_session_timeouts(s, false);
    if (s->chunk_refusal) {
        smtp_session_reply(s, "%s", s->chunk_refusal);
        log_info("refused BDAT chunk of %llu octets from [%s]: %s", s->chunk_size, s->peer_ip,
                 s->chunk_refusal + 10);
        if (s->chunk_from == SS_INIT || s->chunk_from == SS_READY) {
            s->state = s->chunk_from;      /* no transaction to fail */
            return;
        }
        /* RFC 3030 §2: after a failed chunk the client sends no more, but those
           already pipelined must be read and discarded. */
        smtp_session_reset_transaction(s);
        s->state = s->chunk_last ? SS_READY : SS_BDAT_FAILED;
        return;
    }
    if (!s->chunk_last) {
        if (s->data_errno) {
            /* Said now rather than at LAST, so the client stops sending. */
            smtp_session_reply(s, "%s", s->data_errno == ENOSPC || s->data_errno == EDQUOT
                                            ? "452 4.3.1 Insufficient system storage"
                                            : "451 4.3.0 Local error writing the message");
            smtp_session_reset_transaction(s);
            s->state = SS_BDAT_FAILED;
            return;
        }
        if (s->chunk_size == 0)
            s->junk++;          /* an empty chunk that is not LAST moves nothing: junk (smtp_limits.c) */
        smtp_session_reply(s, "250 2.0.0 %llu octets received", s->chunk_size);
        s->state = SS_BDAT;
        return;
    }
    /* LAST: judge the whole message by the DATA rules. */
    smtp_text_end(&s->text);
    /* BDAT content is stored as sent, never normalized: with bare_newlines =
       normalize a bare CR or LF is still refused here rather than queued raw. */
    smtp_data_init(&s->data);
    s->data.nul = s->text.nul;
    s->data.bare_lf = s->text.bare_lf;
    s->data.bare_cr = s->text.bare_cr;
    s->data.long_line = s->text.long_line;
    smtp_session_finish_message(s);
}

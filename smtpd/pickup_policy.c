/* pickup_policy — see pickup_policy.h. */
#include "smtpd/pickup_policy.h"
#include "lib/log.h"
#include "lib/settings.h"
#include "smtpd/sender_identity.h"
#include "smtpd/smtp_dkim_dmarc.h"
#include "smtpd/smtp_server.h"

#include <string.h>

/* Offset of the empty line that ends the header section starting at m[from], or
   len when there is none (a message that is all header). */
static size_t header_end(const char *m, size_t from, size_t len)
{
    if (len - from >= 2 && m[from] == '\r' && m[from + 1] == '\n')
        return from;
    for (size_t i = from; i + 3 < len; i++)
        if (m[i] == '\r' && m[i + 1] == '\n' && m[i + 2] == '\r' && m[i + 3] == '\n')
            return i + 2;
    return len;
}

int pickup_policy_apply(struct smtp_server *srv, const struct pickup_submitter *who, struct buf *msg,
                        size_t own_len, size_t max)
{
    const struct ferry_config *cfg = srv->cfg;
    const char *m = msg->data ? msg->data : "";
    size_t len = msg->len;
    struct buf out;
    buf_init(&out, max);
    int r = buf_append(&out, m, own_len);

    /* The submitted header section, and what stands behind it. */
    size_t hstart = own_len, hend;
    bool leading_ws = hstart < len && (m[hstart] == ' ' || m[hstart] == '\t');
    hend = leading_ws ? hstart : header_end(m, hstart, len);

    char from[600] = "";
    if (policy_from_address(m + hstart, hend - hstart, from, sizeof from) < 0)
        from[0] = '\0';
    bool trusted = sender_identity_trusted(cfg, who->uid, who->user);
    bool sender_own = !who->sender[0] || sender_identity_owns(srv, who->user, true, who->sender);
    bool from_own = from[0] && sender_identity_owns(srv, who->user, true, from);
    if (!trusted && !sender_own) {
        r |= buf_printf(&out, "X-Authentication-Warning: %s: %s set sender to %s using -f\r\n", cfg->hostname,
                        who->user, who->sender);
        log_info("maildrop/%s: user %s (uid %ld) is not trusted and set sender <%s>", who->log_id, who->user,
                 (long)who->uid, who->sender);
    }
    int removed = policy_strip_forged_ar(m + hstart, hend - hstart, cfg->authserv_id, &out);
    if (removed > 0)
        log_info("maildrop/%s: removed %d Authentication-Results field%s claiming to be ours (%s)", who->log_id,
                 removed, removed == 1 ? "" : "s", cfg->authserv_id);
    r |= removed < 0 ? -1 : 0;
    if (leading_ws) {
        log_info("maildrop/%s: message begins with white space: it starts the body", who->log_id);
        r |= buf_puts(&out, "\r\n");
    }
    r |= buf_append(&out, m + hend, len - hend);
    if (r < 0) {
        buf_free(&out);
        return -1;
    }

    /* Signing vouches for the From: domain: only for what the submitter owns. */
    if (trusted || (sender_own && from_own)) {
        struct buf signed_msg;
        buf_init(&signed_msg, max);
        int n = smtp_policy_sign_whole(srv, out.data, out.len, &signed_msg, who->log_id);
        if (n > 0 && buf_append(&signed_msg, out.data, out.len) == 0) {
            buf_free(&out);
            out = signed_msg;
        } else {
            buf_free(&signed_msg);
        }
        if (n < 0) {            /* the key process failed: the drop waits in maildrop/ */
            buf_free(&out);
            return -1;
        }
    } else if (srv->dkim_keys) {
        log_info("maildrop/%s: not signed: user %s is not trusted and %s", who->log_id, who->user,
                 !from_own ? "the From: is not a single address of its own" : "the sender is not its own");
    }
    buf_free(msg);
    *msg = out;
    return 0;
}

/* dsn — see dsn.h. */
#include "queue/dsn.h"
#include "lib/mail_date.h"
#include "lib/mime.h"

#include <stdio.h>
#include <string.h>

#define HUMAN_DIAG_MAX 900

const char *dsn_action_name(enum dsn_action a)
{
    switch (a) {
    case DSN_FAILED: return "failed";
    case DSN_DELAYED: return "delayed";
    case DSN_DELIVERED: return "delivered";
    case DSN_RELAYED: return "relayed";
    case DSN_EXPANDED: return "expanded";
    }
    return "failed";
}

static bool has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

static bool str_8bit(const char *s)
{
    return s && has_8bit(s, strlen(s));
}

/* The length of the header section of msg, including the CRLF of its last line
   (not the empty line). A message without an empty line is all header. */
static size_t header_section_len(const char *msg, size_t len)
{
    if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
        return 0;
    for (size_t i = 0; i + 3 < len; i++)
        if (msg[i] == '\r' && msg[i + 1] == '\n' && msg[i + 2] == '\r' && msg[i + 3] == '\n')
            return i + 2;
    return len;
}

static const char *subject_for(const struct dsn_report *r)
{
    bool any_failed = false, any_delayed = false;
    for (size_t i = 0; i < r->nrcpts; i++) {
        any_failed |= r->rcpts[i].action == DSN_FAILED;
        any_delayed |= r->rcpts[i].action == DSN_DELAYED;
    }
    if (any_failed)
        return "Undelivered Mail Returned to Sender";
    if (any_delayed)
        return "Delayed Mail (still being retried)";
    return "Successful Mail Delivery Report";
}

static int put_human_part(struct buf *b, const struct dsn_report *r, bool utf8)
{
    char date[64];
    int rc = buf_printf(b, "Content-Type: text/plain; charset=%s\r\n", utf8 ? "utf-8" : "us-ascii");
    if (utf8)
        rc |= buf_puts(b, "Content-Transfer-Encoding: 8bit\r\n");
    rc |= buf_puts(b, "Content-Description: Notification\r\n\r\n");
    rc |= buf_printf(b, "This is the mail system at %s, reporting on your message\r\n"
                        "queued as %s.\r\n", r->reporting_mta, r->queue_id);
    static const enum dsn_action order[] = { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        bool heading = false;
        for (size_t i = 0; i < r->nrcpts; i++) {
            const struct dsn_rcpt *d = &r->rcpts[i];
            if (d->action != order[k])
                continue;
            if (!heading) {
                heading = true;
                switch (order[k]) {
                case DSN_FAILED:
                    rc |= buf_puts(b, "\r\nIt could not be delivered to the recipients below, and\r\n"
                                      "will not be tried again. The reasons follow each address.\r\n\r\n");
                    break;
                case DSN_DELAYED:
                    rc |= buf_puts(b, "\r\nIt has not yet been delivered to the recipients below.\r\n"
                                      "Ferry keeps trying; you need not send it again.\r\n\r\n");
                    break;
                case DSN_DELIVERED:
                    rc |= buf_puts(b, "\r\nIt was delivered to the recipients below, as you asked.\r\n\r\n");
                    break;
                case DSN_RELAYED:
                    rc |= buf_puts(b, "\r\nIt was passed to a mail system that does not send delivery\r\n"
                                      "notices, so this is the last report on the recipients below.\r\n\r\n");
                    break;
                case DSN_EXPANDED:
                    rc |= buf_puts(b, "\r\nIt was delivered to the recipients below, which are lists\r\n"
                                      "or aliases that passed it on to their members.\r\n\r\n");
                    break;
                }
            }
            char diag[HUMAN_DIAG_MAX + 1];
            mime_sanitize(d->diagnostic ? d->diagnostic : "", diag, sizeof diag);
            rc |= buf_printf(b, "<%s>%s%s\r\n", d->final_recipient, diag[0] ? ": " : "", diag);
            if (d->action == DSN_DELAYED && d->will_retry_until) {
                mail_date(d->will_retry_until, date, sizeof date);
                rc |= buf_printf(b, "    (retried until %s)\r\n", date);
            }
        }
    }
    return rc;
}

static int put_status_part(struct buf *b, const struct dsn_report *r, bool global)
{
    char date[64], field[2048];
    int rc = buf_printf(b, "Content-Type: message/%sdelivery-status\r\n", global ? "global-" : "");
    if (global)     /* RFC 6533 6.2: UTF-8 addresses travel as 8bit */
        rc |= buf_puts(b, "Content-Transfer-Encoding: 8bit\r\n");
    rc |= buf_puts(b, "Content-Description: Delivery report\r\n\r\n");
    snprintf(field, sizeof field, "dns; %s", r->reporting_mta);
    rc |= mime_put_field(b, "Reporting-MTA", field);
    rc |= mime_put_field(b, "X-Ferry-Queue-ID", r->queue_id);
    if (r->envid && r->envid[0])
        rc |= mime_put_field(b, "Original-Envelope-Id", r->envid);
    if (r->received_from_mta && r->received_from_mta[0]) {
        snprintf(field, sizeof field, "dns; %s", r->received_from_mta);
        rc |= mime_put_field(b, "Received-From-MTA", field);
    }
    if (r->arrival) {
        mail_date(r->arrival, date, sizeof date);
        rc |= mime_put_field(b, "Arrival-Date", date);
    }
    for (size_t i = 0; i < r->nrcpts; i++) {
        const struct dsn_rcpt *d = &r->rcpts[i];
        rc |= buf_puts(b, "\r\n");
        if (d->orcpt && d->orcpt[0]) {
            snprintf(field, sizeof field, "%s; %s", d->orcpt_type ? d->orcpt_type : "rfc822", d->orcpt);
            rc |= mime_put_field(b, "Original-Recipient", field);
        }
        snprintf(field, sizeof field, "%s; %s", str_8bit(d->final_recipient) ? "utf-8" : "rfc822",
                 d->final_recipient);
        rc |= mime_put_field(b, "Final-Recipient", field);
        rc |= mime_put_field(b, "Action", dsn_action_name(d->action));
        rc |= mime_put_field(b, "Status", d->status);
        if (d->remote_mta && d->remote_mta[0]) {
            snprintf(field, sizeof field, "dns; %s", d->remote_mta);
            rc |= mime_put_field(b, "Remote-MTA", field);
        }
        if (d->diagnostic && d->diagnostic[0]) {
            snprintf(field, sizeof field, "%s; %s", d->diagnostic_is_smtp ? "smtp" : "x-ferry", d->diagnostic);
            rc |= mime_put_field(b, "Diagnostic-Code", field);
        }
        if (d->last_attempt) {
            mail_date(d->last_attempt, date, sizeof date);
            rc |= mime_put_field(b, "Last-Attempt-Date", date);
        }
        if (d->action == DSN_DELAYED && d->will_retry_until) {
            mail_date(d->will_retry_until, date, sizeof date);
            rc |= mime_put_field(b, "Will-Retry-Until", date);
        }
    }
    return rc;
}

int dsn_build(const struct dsn_report *r, const char *msg, size_t msglen, const char *seed,
              struct buf *out, bool *needs_8bit, char *err, size_t errlen)
{
    *needs_8bit = false;
    if (r->nrcpts == 0 || !r->rcpts) {
        snprintf(err, errlen, "a delivery status notification needs at least one recipient");
        return -1;
    }
    for (size_t i = 0; i < r->nrcpts; i++) {
        if (!r->rcpts[i].final_recipient || !r->rcpts[i].status) {
            snprintf(err, errlen, "recipient %zu of the report has no address or status", i + 1);
            return -1;
        }
    }
    /* Only failures return the whole message: a delay or success notice has no
       reason to carry it, and RET=HDRS or a huge message gets the headers. */
    bool any_failed = false, global = r->smtputf8 || str_8bit(r->original_sender);
    for (size_t i = 0; i < r->nrcpts; i++) {
        any_failed |= r->rcpts[i].action == DSN_FAILED;
        global |= str_8bit(r->rcpts[i].final_recipient) || str_8bit(r->rcpts[i].orcpt);
    }
    bool full = any_failed && !r->ret_headers_only && msglen <= DSN_RETURN_FULL_MAX;
    size_t hlen = header_section_len(msg, msglen);
    size_t ret_len = full ? msglen : hlen;
    bool ret_8bit = has_8bit(msg, ret_len);

    /* A boundary that cannot occur in the returned text. */
    char boundary[128];
    unsigned n = 0;
    do {
        snprintf(boundary, sizeof boundary, "=_ferry_%s_%u", seed, n++);
    } while (mime_contains(msg, ret_len, boundary) && n < 1000);

    size_t start = out->len;
    char date[64];
    mail_date(r->now, date, sizeof date);
    int rc = 0;
    rc |= buf_printf(out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", r->reporting_mta);
    rc |= buf_printf(out, "To: <%s>\r\n", r->original_sender);
    rc |= buf_printf(out, "Subject: %s\r\n", subject_for(r));
    rc |= buf_printf(out, "Date: %s\r\n", date);
    rc |= buf_printf(out, "Message-ID: <%s.dsn@%s>\r\n", seed, r->reporting_mta);
    rc |= buf_puts(out, "Auto-Submitted: auto-replied\r\n");     /* RFC 3834 5 */
    rc |= buf_puts(out, "MIME-Version: 1.0\r\n");
    rc |= buf_printf(out, "Content-Type: multipart/report; report-type=%sdelivery-status;\r\n"
                          "\tboundary=\"%s\"\r\n", global ? "global-" : "", boundary);
    rc |= buf_printf(out, "\r\nThis is a MIME-encapsulated delivery status notification.\r\n");

    rc |= buf_printf(out, "\r\n--%s\r\n", boundary);
    rc |= put_human_part(out, r, global);
    rc |= buf_printf(out, "\r\n--%s\r\n", boundary);
    rc |= put_status_part(out, r, global);

    rc |= buf_printf(out, "\r\n--%s\r\n", boundary);
    if (full) {
        rc |= buf_printf(out, "Content-Type: message/%s\r\n", r->smtputf8 ? "global" : "rfc822");
        rc |= buf_puts(out, "Content-Description: Undelivered message\r\n");
    } else {
        rc |= buf_printf(out, "Content-Type: %s\r\n", r->smtputf8 ? "message/global-headers" : "text/rfc822-headers");
        rc |= buf_puts(out, "Content-Description: Headers of the message\r\n");
    }
    if (ret_8bit)
        rc |= buf_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
    rc |= buf_puts(out, "\r\n");
    rc |= buf_append(out, msg, ret_len);
    if (ret_len > 0 && !(ret_len >= 2 && msg[ret_len - 2] == '\r' && msg[ret_len - 1] == '\n'))
        rc |= buf_puts(out, "\r\n");
    rc |= buf_printf(out, "\r\n--%s--\r\n", boundary);

    if (rc < 0) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        snprintf(err, errlen, "the delivery status notification does not fit in %zu octets", out->max);
        return -1;
    }
    *needs_8bit = ret_8bit || global;
    return 0;
}

/* intent — see intent.h. */
#include "pull/intent.h"
#include "lib/mail_date.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>

static bool ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* "Subject: TEXT TOKEN": TEXT as is when ASCII, otherwise RFC 2047 B-encoded words
   of whole UTF-8 characters, one per folded line (each under 76 octets); TOKEN
   always plain, so a reply's Subject carries it readable whatever the client does
   with the rest. */
static int subject_field(struct buf *out, const char *text, const char *token)
{
    if (ascii(text))
        return buf_printf(out, "Subject: %s %s\r\n", text, token);
    int rc = buf_puts(out, "Subject:");
    size_t len = strlen(text), i = 0;
    while (i < len && rc == 0) {
        size_t n = len - i < 45 ? len - i : 45;
        while (n > 0 && i + n < len && ((unsigned char)text[i + n] & 0xc0) == 0x80)
            n--;        /* do not split a character */
        if (n == 0)
            n = 1;
        unsigned char enc[64];
        int el = EVP_EncodeBlock(enc, (const unsigned char *)text + i, (int)n);
        rc |= buf_printf(out, "%s=?utf-8?B?%.*s?=", i ? "\r\n " : " ", el, enc);
        i += n;
    }
    return rc | buf_printf(out, " %s\r\n", token);
}

static bool plain_host(const char *h)
{
    size_t n = strlen(h);
    return n > 0 && n < 254 && strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

int intent_build(const struct pull_notice *n, const char *hostname, time_t now, struct buf *out)
{
    if (!plain_host(hostname))
        return -1;
    char date[MAIL_DATE_MAX], offered[MAIL_DATE_MAX], until[MAIL_DATE_MAX];
    mail_date(now, date, sizeof date);
    mail_date(n->created, offered, sizeof offered);
    mail_date(n->expires, until, sizeof until);
    const char *sender = n->sender[0] ? n->sender : "<>";
    char subject[ADDR_PATH_MAX + 64], token[64];
    snprintf(subject, sizeof subject, "Mail waiting from %s", sender);
    snprintf(token, sizeof token, "[pull %s.%s]", n->id, n->h);
    int rc = buf_printf(out,
                        "Date: %s\r\n"
                        "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
                        "Reply-To: <" INTENT_LOCAL_PART "+%s.%s@%s>\r\n"
                        "To: <%s>\r\n",
                        date, hostname, n->id, n->h, hostname, n->recipient);
    rc |= subject_field(out, subject, token);
    rc |= buf_printf(out,
                     "Message-ID: <dmtp.%s.%s@%s>\r\n"
                     "Auto-Submitted: auto-generated\r\n"
                     "X-Ferry-Pull: id=%s; h=%s\r\n"
                     "MIME-Version: 1.0\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Transfer-Encoding: 8bit\r\n"
                     "\r\n",
                     n->id, n->h, hostname, n->id, n->h);
    rc |= buf_printf(out,
                     "A mail server this server does not know offered a message for you.\r\n"
                     "It keeps the message until you ask for it (DMTP receiver-pull).\r\n"
                     "\r\n"
                     "  From:        %s\r\n"
                     "  To:          %s\r\n"
                     "  Subject:     %s\r\n"
                     "  Offered by:  %s%s%s%s\r\n"
                     "  Offered at:  %s\r\n"
                     "  Kept until:  %s\r\n"
                     "\r\n"
                     "To receive it, reply to this message (what you write does not matter),\r\n"
                     "or ask your administrator to run:\r\n"
                     "\r\n"
                     "  ferryctl pull fetch %s %s\r\n"
                     "\r\n"
                     "If you do not want it, do nothing: the offer lapses at the time above\r\n"
                     "and the sender is not told.\r\n",
                     sender, n->recipient, n->subject[0] ? n->subject : "(none given)", n->peer_ip,
                     n->peer_name[0] ? " (" : "", n->peer_name, n->peer_name[0] ? ")" : "", offered, until,
                     n->user, n->id);
    if (n->sender[0])
        rc |= buf_printf(out,
                         "\r\n"
                         "To accept mail from this sender without asking in future:\r\n"
                         "\r\n"
                         "  ferryctl pull allow %s %s\r\n",
                         n->user, n->sender);
    return rc < 0 ? -1 : 0;
}

/* "ID.H" at s (ID 16 hex digits either case, H 16 base32hex either case), followed
   by end (when end is non-zero) */
static int token_at(const char *s, char end, char id[NOTICE_ID_LEN + 1], char h[NOTICE_H_LEN + 1])
{
    for (int i = 0; i < NOTICE_ID_LEN; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        id[i] = c;
    }
    if (s[NOTICE_ID_LEN] != '.')
        return -1;
    const char *p = s + NOTICE_ID_LEN + 1;
    for (int i = 0; i < NOTICE_H_LEN; i++) {
        char c = p[i];
        if (c >= 'a' && c <= 'v')
            c = (char)(c - 'a' + 'A');
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'V')))
            return -1;
        h[i] = c;
    }
    if (end && p[NOTICE_H_LEN] != end)
        return -1;
    id[NOTICE_ID_LEN] = '\0';
    h[NOTICE_H_LEN] = '\0';
    return 0;
}

/* The last "prefix" + token + end in s (bounded scan), case-insensitive prefix.
   The last, because our token ends the Subject: text before it (the sender's
   address) came from the peer and may imitate one. */
static int find_after(const char *s, const char *prefix, char end, char id[NOTICE_ID_LEN + 1],
                      char h[NOTICE_H_LEN + 1])
{
    size_t pl = strlen(prefix), n = strnlen(s, 4096);
    for (size_t i = n; i-- > 0;)
        if (i + pl + NOTICE_ID_LEN + 1 + NOTICE_H_LEN <= n && str_nieq(s + i, prefix, pl) &&
            token_at(s + i + pl, end, id, h) == 0)
            return 0;
    return -1;
}

int intent_reply_token(const char *rcpt_local, const char *references, const char *subject,
                       char id[NOTICE_ID_LEN + 1], char h[NOTICE_H_LEN + 1])
{
    const size_t ll = strlen(INTENT_LOCAL_PART);
    if (rcpt_local && strnlen(rcpt_local, 128) == ll + 1 + NOTICE_ID_LEN + 1 + NOTICE_H_LEN &&
        str_nieq(rcpt_local, INTENT_LOCAL_PART, ll) && strchr("+-_=", rcpt_local[ll]) && token_at(rcpt_local + ll + 1, '\0', id, h) == 0)
        return 0;
    if (references && find_after(references, "<dmtp.", '@', id, h) == 0)
        return 0;
    if (subject && find_after(subject, "[pull ", ']', id, h) == 0)
        return 0;
    return -1;
}

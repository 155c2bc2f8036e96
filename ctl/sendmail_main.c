/*
 * ferry-sendmail — sendmail-compatible local submission: reads a message on
 * standard input and drops it into the spool's maildrop/ (queue/maildrop.h), where
 * the daemon picks it up. No network is involved, and the daemon need not be
 * running: the message waits in maildrop/ until it is.
 *
 *   ferry-sendmail [-c FILE] [-t] [-f SENDER] [-F NAME] [-i] [RCPT...]
 *
 * -t takes recipients from To:, Cc: and Bcc: as well, and removes Bcc:. Without -i
 * (or -oi) a line holding only "." ends the input, as with sendmail. -f sets the
 * envelope sender (default: the login name at the configured hostname); -F the
 * display name of the From: field written when the message has none. A message
 * without Date:, Message-ID: or From: gets them here, where the submitting user is
 * known. Exit: 0 queued (in maildrop/), 1 failure, 2 usage, 65 a message the
 * daemon could not carry (a line over 998 octets, a NUL, over message_size_limit:
 * the same checks the pickup makes, queue/maildrop.h); errors name the input at
 * fault. Other sendmail options (-o..., -B, -v) are accepted and ignored so that
 * programs which call sendmail work unchanged.
 */
#include "lib/buf.h"
#include "lib/hdr_value.h"
#include "lib/mail_date.h"
#include "queue/maildrop.h"
#include "lib/netaddr.h"
#include "lib/settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/ferry/ferry.conf"
#define MAX_MESSAGE (64UL * 1024 * 1024)
#define MAX_RCPTS 1000
/* sendmail's exit status for a message it refuses to carry (sysexits.h). */
#define EX_DATAERR 65

static int die_usage(void)
{
    fprintf(stderr, "usage: ferry-sendmail [-c FILE] [-t] [-f SENDER] [-i] [RCPT...]\n");
    return 2;
}

static void add_item(char *item, char **rcpts, size_t *n)
{
    char *lt = strchr(item, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    char *a;
    if (lt && gt) {
        *gt = '\0';
        a = lt + 1;
    } else {
        char *colon = strrchr(item, ':');      /* "group: addr" */
        a = colon ? colon + 1 : item;
    }
    a = str_trim(a);
    if (*a && strchr(a, '@') && *n < MAX_RCPTS)
        rcpts[(*n)++] = strdup(a);
}

/* Collect the addresses of one address-list header value (RFC 5322 §3.4):
   "Name <a@b>", bare a@b, "\"Doe, J\" <a@b>", groups "g: a@b, c@d;",
   comments in parentheses. */
static void collect_addresses(const char *v, char **rcpts, size_t *n)
{
    char item[1024];
    size_t k = 0;
    int depth = 0;
    bool quoted = false, angle = false;
    for (const char *p = v;; p++) {
        char ch = *p;
        if (ch == '\0' || (!quoted && !depth && !angle && (ch == ',' || ch == ';'))) {
            item[k] = '\0';
            add_item(item, rcpts, n);
            k = 0;
            if (ch == '\0')
                break;
            continue;
        }
        if (!quoted && ch == '(') {
            depth++;
            continue;
        }
        if (!quoted && depth) {
            if (ch == ')')
                depth--;
            continue;
        }
        if (ch == '"')
            quoted = !quoted;
        else if (!quoted && ch == '<')
            angle = true;
        else if (!quoted && ch == '>')
            angle = false;
        if (k + 1 < sizeof item)
            item[k++] = ch;
    }
}

/* Read the message; with -t gather recipients from the header and drop Bcc:. */
static int read_message(bool dot_ends, bool from_headers, struct buf *msg, char **rcpts, size_t *n)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool in_header = true, skipping_bcc = false;
    struct buf field;
    buf_init(&field, 65536);
    while ((len = getline(&line, &cap, stdin)) > 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (dot_ends && strcmp(line, ".") == 0)
            break;
        if (in_header) {
            bool continuation = line[0] == ' ' || line[0] == '\t';
            if (!continuation && field.len) {
                if (from_headers && (str_nieq(field.data, "to:", 3) || str_nieq(field.data, "cc:", 3)))
                    collect_addresses(field.data + 3, rcpts, n);
                else if (from_headers && str_nieq(field.data, "bcc:", 4))
                    collect_addresses(field.data + 4, rcpts, n);
                buf_reset(&field);
            }
            if (len == 0) {
                in_header = false;
            } else {
                if (!continuation)
                    skipping_bcc = from_headers && str_nieq(line, "bcc:", 4);
                buf_append(&field, line, (size_t)len);
                if (skipping_bcc)
                    continue;
            }
        }
        if (buf_append(msg, line, (size_t)len) < 0 || buf_append(msg, "\r\n", 2) < 0) {
            free(line);
            buf_free(&field);
            fprintf(stderr, "ferry-sendmail: message larger than %lu octets\n", MAX_MESSAGE);
            return -1;
        }
    }
    if (in_header && from_headers && field.len) {     /* a message that is all header */
        if (str_nieq(field.data, "to:", 3) || str_nieq(field.data, "cc:", 3))
            collect_addresses(field.data + 3, rcpts, n);
        else if (str_nieq(field.data, "bcc:", 4))
            collect_addresses(field.data + 4, rcpts, n);
    }
    free(line);
    buf_free(&field);
    return 0;
}

/* Header fields a message needs that the user's program may have left out. */
static int add_missing_headers(struct buf *msg, const char *sender, const char *fullname,
                               const struct ferry_config *cfg, struct buf *out)
{
    bool have_from = false, have_date = false, have_msgid = false;
    size_t pos = 0;
    while (pos < msg->len) {        /* the header section: up to the first empty line */
        const char *line = msg->data + pos;
        const char *eol = memchr(line, '\n', msg->len - pos);
        size_t n = eol ? (size_t)(eol - line) + 1 : msg->len - pos;
        if ((n <= 2 && (line[0] == '\r' || line[0] == '\n')) || (pos == 0 && (line[0] == ' ' || line[0] == '\t')))
            break;          /* the empty line; or a first line that is no field: no header section */
        have_from |= hdr_field_is(line, n, "From", NULL);
        have_date |= hdr_field_is(line, n, "Date", NULL);
        have_msgid |= hdr_field_is(line, n, "Message-ID", NULL);
        pos += n;
    }
    int r = 0;
    /* A first line starting with white space could only continue a field: put the
       empty line after the fields added here, so it starts the body instead of
       continuing the last of them. */
    bool leading_ws = msg->len && (msg->data[0] == ' ' || msg->data[0] == '\t');
    if (!have_from) {
        if (fullname && *fullname)
            r |= buf_printf(out, "From: \"%s\" <%s>\r\n", fullname, sender[0] ? sender : "MAILER-DAEMON");
        else
            r |= buf_printf(out, "From: <%s>\r\n", sender[0] ? sender : "MAILER-DAEMON");
    }
    if (!have_date) {
        char date[MAIL_DATE_MAX];
        mail_date(time(NULL), date, sizeof date);
        r |= buf_printf(out, "Date: %s\r\n", date);
    }
    if (!have_msgid) {
        unsigned char rnd[8];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            memset(rnd, 0, sizeof rnd);
        r |= buf_printf(out, "Message-ID: <%lld.%02x%02x%02x%02x%02x%02x%02x%02x@%s>\r\n", (long long)time(NULL),
                        rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], cfg->hostname);
    }
    if (leading_ws)
        r |= buf_puts(out, "\r\n");
    return r;
}

/* A display name as a quoted-string (RFC 5322 3.2.4): quotes and backslashes escaped,
   control characters dropped. */
static void quote_name(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    for (; *in && o + 3 < outsz; in++) {
        unsigned char c = (unsigned char)*in;
        if (c < 0x20 || c == 0x7f)
            continue;
        if (c == '"' || c == '\\')
            out[o++] = '\\';
        out[o++] = (char)c;
    }
    out[o] = '\0';
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG, *sender = NULL, *fullname = NULL;
    bool from_headers = false, dot_ends = true;
    int c;
    while ((c = getopt(argc, argv, "c:tf:r:iF:o:B:vh")) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 't': from_headers = true; break;
        case 'f': case 'r': sender = optarg; break;
        case 'i': dot_ends = false; break;
        case 'o': if (optarg[0] == 'i') dot_ends = false; break;
        case 'F': fullname = optarg; break;
        case 'B': case 'v': break;
        default: return die_usage();
        }
    }
    struct ferry_config cfg;
    char err[CONF_ERR_MAX];
    if (settings_load(path, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "ferry-sendmail: %s\n", err);
        return 1;
    }
    char *rcpts[MAX_RCPTS];
    size_t n = 0;
    for (int i = optind; i < argc && n < MAX_RCPTS; i++)
        rcpts[n++] = strdup(argv[i]);
    struct buf msg, drop;
    buf_init(&msg, MAX_MESSAGE);
    buf_init(&drop, MAX_MESSAGE + 1024 * 1024);
    int rc = 1;
    if (read_message(dot_ends, from_headers, &msg, rcpts, &n) < 0)
        goto out;
    if (n == 0) {
        fprintf(stderr, "ferry-sendmail: no recipients (give them as arguments, or use -t)\n");
        rc = 2;
        goto out;
    }
    char from[600], name[300];
    if (sender) {
        str_copy(from, sender, sizeof from);
    } else {
        struct passwd *pw = getpwuid(getuid());
        snprintf(from, sizeof from, "%s@%s", pw ? pw->pw_name : "nobody", cfg.hostname);
    }
    quote_name(fullname ? fullname : "", name, sizeof name);
    /* The pickup's own verdict, given here while someone can still hear it: a
       message the pickup would quarantine is refused now, not accepted and lost.
       First on the message as read (line numbers as the user counts them), then on
       the message with the fields added below (the size the pickup will see). */
    if (maildrop_check_message(msg.data ? msg.data : "", msg.len, cfg.message_size_limit, err, sizeof err) < 0) {
        fprintf(stderr, "ferry-sendmail: %s; nothing was sent\n", err);
        rc = EX_DATAERR;
        goto out;
    }
    if (maildrop_write_envelope(&drop, from, rcpts, n, err, sizeof err) < 0) {
        fprintf(stderr, "ferry-sendmail: %s\n", err);
        goto out;
    }
    size_t body = drop.len;
    if (add_missing_headers(&msg, from, name, &cfg, &drop) < 0 ||
        (msg.len && buf_append(&drop, msg.data, msg.len) < 0)) {
        fprintf(stderr, "ferry-sendmail: the message is too large; nothing was sent\n");
        rc = EX_DATAERR;
        goto out;
    }
    if (maildrop_check_message(drop.data + body, drop.len - body, cfg.message_size_limit, err, sizeof err) < 0) {
        fprintf(stderr, "ferry-sendmail: %s; nothing was sent\n", err);
        rc = EX_DATAERR;
        goto out;
    }
    if (maildrop_submit(cfg.spool_dir, drop.data, drop.len, err, sizeof err) < 0) {
        fprintf(stderr, "ferry-sendmail: %s\n", err);
        goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(rcpts[i]);
    buf_free(&msg);
    buf_free(&drop);
    settings_free(&cfg);
    return rc;
}

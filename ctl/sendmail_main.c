/*
 * ferry-sendmail — sendmail-compatible injection: reads a message on standard
 * input and hands it to the local ferryd over SMTP.
 *
 *   ferry-sendmail [-c FILE] [-t] [-f SENDER] [-i] [RCPT...]
 *
 * -t takes recipients from To:, Cc: and Bcc: as well, and removes Bcc:. Without -i
 * (or -oi) a line holding only "." ends the input, as with sendmail. The message
 * goes to the first submission listener of the configuration (else the first
 * smtp one); a wildcard listen address is reached through loopback. Lines are
 * sent with CRLF and dot-stuffed. Exit: 0 ok, 1 failure (the server's reply is
 * printed), 2 usage. Other sendmail options (-o..., -F, -B, -v) are accepted and
 * ignored so that programs which call sendmail work unchanged.
 */
#include "lib/buf.h"
#include "lib/netaddr.h"
#include "lib/settings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/ferry/ferry.conf"
#define MAX_MESSAGE (64UL * 1024 * 1024)
#define MAX_RCPTS 1000

struct smtp_conn {
    FILE *in;
    int fd;
};

static int die_usage(void)
{
    fprintf(stderr, "usage: ferry-sendmail [-c FILE] [-t] [-f SENDER] [-i] [RCPT...]\n");
    return 2;
}

/* Read one reply (all its lines); returns the code, last line in text. */
static int read_reply(struct smtp_conn *c, char *text, size_t sz)
{
    char line[1024];
    for (;;) {
        if (!fgets(line, sizeof line, c->in)) {
            str_copy(text, "connection closed by the server", sz);
            return -1;
        }
        line[strcspn(line, "\r\n")] = '\0';
        str_copy(text, line, sz);
        if (strlen(line) < 4 || line[3] != '-')
            return atoi(line);
    }
}

static int send_text(struct smtp_conn *c, const char *s, size_t n)
{
    while (n) {
        ssize_t w = write(c->fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int command(struct smtp_conn *c, int want, const char *what, char *text, size_t sz)
{
    if (send_text(c, what, strlen(what)) < 0 || send_text(c, "\r\n", 2) < 0) {
        str_copy(text, "cannot write to the server", sz);
        return -1;
    }
    int code = read_reply(c, text, sz);
    return code / 100 == want / 100 ? 0 : -1;
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
        /* Dot-stuffing (RFC 5321 §4.5.2) and CRLF line ends. */
        if ((line[0] == '.' && buf_append(msg, ".", 1) < 0) || buf_append(msg, line, (size_t)len) < 0 ||
            buf_append(msg, "\r\n", 2) < 0) {
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

static int connect_to(const struct ferry_config *cfg, char *where, size_t sz)
{
    const struct listen_addr *l = NULL;
    for (size_t i = 0; i < cfg->nlisteners && !l; i++)
        if (cfg->listeners[i].kind == LISTEN_SUBMISSION)
            l = &cfg->listeners[i];
    for (size_t i = 0; i < cfg->nlisteners && !l; i++)
        if (cfg->listeners[i].kind == LISTEN_SMTP)
            l = &cfg->listeners[i];
    if (!l) {
        str_copy(where, "no smtp or submission listener in the configuration", sz);
        return -1;
    }
    struct sockaddr_storage sa = l->sa;
    if (sa.ss_family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
        if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
            s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
        if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
            s6->sin6_addr = in6addr_loopback;
    }
    str_copy(where, l->text, sz);
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, l->salen) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        snprintf(where, sz, "cannot connect to %s: %s", l->text, strerror(e));
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG, *sender = NULL;
    bool from_headers = false, dot_ends = true;
    int c;
    while ((c = getopt(argc, argv, "c:tf:r:iF:o:B:vh")) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 't': from_headers = true; break;
        case 'f': case 'r': sender = optarg; break;
        case 'i': dot_ends = false; break;
        case 'o': if (optarg[0] == 'i') dot_ends = false; break;
        case 'F': case 'B': case 'v': break;
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
    struct buf msg;
    buf_init(&msg, MAX_MESSAGE);
    int rc = 1;
    if (read_message(dot_ends, from_headers, &msg, rcpts, &n) < 0)
        goto out;
    if (n == 0) {
        fprintf(stderr, "ferry-sendmail: no recipients (give them as arguments, or use -t)\n");
        rc = 2;
        goto out;
    }
    char from[600];
    if (sender) {
        str_copy(from, sender, sizeof from);
    } else {
        struct passwd *pw = getpwuid(getuid());
        snprintf(from, sizeof from, "%s@%s", pw ? pw->pw_name : "nobody", cfg.hostname);
    }
    char where[600], text[1024], line[1200];
    int fd = connect_to(&cfg, where, sizeof where);
    if (fd < 0) {
        fprintf(stderr, "ferry-sendmail: %s\n", where);
        goto out;
    }
    struct smtp_conn conn = { fdopen(dup(fd), "r"), fd };
    if (!conn.in || read_reply(&conn, text, sizeof text) != 220)
        goto fail;
    if (command(&conn, 250, "EHLO localhost", text, sizeof text) < 0)
        goto fail;
    snprintf(line, sizeof line, "MAIL FROM:<%s>", from);
    if (command(&conn, 250, line, text, sizeof text) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        snprintf(line, sizeof line, "RCPT TO:<%s>", rcpts[i]);
        if (command(&conn, 250, line, text, sizeof text) < 0)
            goto fail;
    }
    if (command(&conn, 354, "DATA", text, sizeof text) < 0)
        goto fail;
    if ((msg.len && send_text(&conn, msg.data, msg.len) < 0) || command(&conn, 250, ".", text, sizeof text) < 0)
        goto fail;
    command(&conn, 221, "QUIT", line, sizeof line);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "ferry-sendmail: %s: %s\n", where, text);
done:
    if (conn.in)
        fclose(conn.in);
    close(fd);
out:
    for (size_t i = 0; i < n; i++)
        free(rcpts[i]);
    buf_free(&msg);
    settings_free(&cfg);
    return rc;
}

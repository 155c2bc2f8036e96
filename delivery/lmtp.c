/* lmtp — see lmtp.h. */
#include "delivery/lmtp.h"
#include "lib/fdio.h"
#include "lib/buf.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define LMTP_LINE_MAX  2048
#define LMTP_MAX_LINES 100

struct conn {
    int fd;
    char spec[1024];
    time_t last_used;
    char rbuf[4096];
    size_t rlen, roff;
};

static struct conn kept = { .fd = -1 };

struct reply {
    int code;
    char text[LMTP_LINE_MAX];    /* the last line, "250 2.1.5 ok" */
};

static int read_line(struct conn *c, char *line, size_t linesz)
{
    size_t o = 0;
    for (;;) {
        if (c->roff == c->rlen) {
            ssize_t r = recv(c->fd, c->rbuf, sizeof c->rbuf, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                if (r == 0)
                    errno = ECONNRESET;
                return -1;
            }
            c->rlen = (size_t)r;
            c->roff = 0;
        }
        char ch = c->rbuf[c->roff++];
        if (ch == '\n')
            break;
        if (ch != '\r' && o + 1 < linesz)
            line[o++] = ch;
    }
    line[o] = '\0';
    return 0;
}

/* One reply, possibly multi-line. -1 on I/O error or nonsense. */
static int read_reply(struct conn *c, struct reply *r)
{
    for (int i = 0; i < LMTP_MAX_LINES; i++) {
        if (read_line(c, r->text, sizeof r->text) < 0)
            return -1;
        if (strlen(r->text) < 3 || r->text[0] < '2' || r->text[0] > '5' ||
            r->text[1] < '0' || r->text[1] > '9' || r->text[2] < '0' || r->text[2] > '9') {
            errno = EPROTO;
            return -1;
        }
        r->code = (r->text[0] - '0') * 100 + (r->text[1] - '0') * 10 + (r->text[2] - '0');
        if (r->text[3] != '-')
            return 0;
    }
    errno = EPROTO;
    return -1;
}

static int command(struct conn *c, struct reply *r, const char *fmt, const char *arg)
{
    char line[ADDR_PATH_MAX + 300];
    int n = snprintf(line, sizeof line, fmt, arg);
    if (n < 0 || (size_t)n >= sizeof line) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (fd_send_all(c->fd, line, (size_t)n) < 0)
        return -1;
    return read_reply(c, r);
}

/* The result of a reply: the server's enhanced code when it gave one. */
static void from_reply(struct delivery_status *st, const struct reply *r, const char *spec)
{
    enum delivery_result res = r->code < 300 ? DELIVERY_OK : r->code < 500 ? DELIVERY_DEFER : DELIVERY_FAIL;
    const char *t = r->text + 4;
    char code[16];
    if ((t[0] == '2' || t[0] == '4' || t[0] == '5') && t[1] == '.' && strspn(t + 2, "0123456789.") >= 3)
        snprintf(code, sizeof code, "%.*s", (int)strcspn(t, " "), t);
    else
        snprintf(code, sizeof code, "%c.0.0", r->text[0]);
    delivery_set(st, res, "%s lmtp %s said: %.300s", code, spec, r->text);
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->rlen = c->roff = 0;
}

static int dial(const char *spec, unsigned timeout)
{
    int fd = -1;
    if (!strncmp(spec, "unix:", 5)) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        if (strlen(spec + 5) >= sizeof sun.sun_path) {
            errno = ENAMETOOLONG;
            return -1;
        }
        strcpy(sun.sun_path, spec + 5);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = { (time_t)timeout, 0 };
        if (fd >= 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  /* bounds connect */
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
    } else if (!strncmp(spec, "inet:", 5)) {
        char host[256];
        const char *hp = spec + 5, *colon = strrchr(hp, ':');
        if (!colon || (size_t)(colon - hp) >= sizeof host) {
            errno = EINVAL;
            return -1;
        }
        str_copyn(host, hp, (size_t)(colon - hp), sizeof host);
        if (host[0] == '[' && host[strlen(host) - 1] == ']') {
            memmove(host, host + 1, strlen(host));
            host[strlen(host) - 1] = '\0';
        }
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
        if (getaddrinfo(host, colon + 1, &hints, &res) != 0) {
            errno = EHOSTUNREACH;
            return -1;
        }
        int e = ECONNREFUSED;
        for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
            fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0)
                continue;
            struct timeval tv = { (time_t)timeout, 0 };
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  /* bounds connect too */
            if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
                e = errno;
                close(fd);
                fd = -1;
            }
        }
        freeaddrinfo(res);
        if (fd < 0)
            errno = e;
    } else {
        errno = EINVAL;
    }
    if (fd >= 0) {
        struct timeval tv = { (time_t)timeout, 0 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    return fd;
}

/* A ready connection: the kept one after a successful RSET, or a new one past
   the greeting and LHLO. -1 with st set. */
static int ready(const char *spec, const char *lhlo, unsigned timeout, struct delivery_status *st)
{
    struct reply r;
    if (kept.fd >= 0) {
        if (!strcmp(kept.spec, spec) && time(NULL) - kept.last_used < LMTP_IDLE &&
            command(&kept, &r, "RSET\r\n", "") == 0 && r.code == 250)
            return 0;
        lmtp_close();
    }
    int fd = dial(spec, timeout);
    if (fd < 0) {
        delivery_set(st, DELIVERY_DEFER, "4.4.1 cannot connect to lmtp %s: %s", spec, strerror(errno));
        return -1;
    }
    kept.fd = fd;
    kept.rlen = kept.roff = 0;
    str_copy(kept.spec, spec, sizeof kept.spec);
    if (read_reply(&kept, &r) < 0 || r.code != 220) {
        delivery_set(st, DELIVERY_DEFER, "4.4.2 lmtp %s: no greeting", spec);
        conn_close(&kept);
        return -1;
    }
    if (command(&kept, &r, "LHLO %s\r\n", lhlo) < 0 || r.code != 250) {
        delivery_set(st, DELIVERY_DEFER, "4.4.2 lmtp %s refused LHLO", spec);
        conn_close(&kept);
        return -1;
    }
    return 0;
}

/* The message, CRLF line ends, dot-stuffed, then ".". */
static int send_data(struct conn *c, const char *prefix, struct msg_src msg)
{
    struct buf out;
    buf_init(&out, 1 << 20);
    bool bol = true, cr = false;
    char ib[16384];
    unsigned long long left = msg.size;     /* the queue file goes on after it (lib/msgfile.h) */
    const char *src = prefix;
    size_t srclen = strlen(prefix);
    int e = 0;
    for (;;) {
        for (size_t i = 0; i < srclen && !e; i++) {
            char ch = src[i];
            if (bol && ch == '.')
                e |= buf_append(&out, ".", 1);
            if (ch == '\n' && !cr)
                e |= buf_append(&out, "\r", 1);
            e |= buf_append(&out, &ch, 1);
            cr = ch == '\r';
            bol = ch == '\n';
        }
        if (e || (out.len && fd_send_all(c->fd, out.data, out.len) < 0)) {
            buf_free(&out);
            return -1;
        }
        buf_reset(&out);
        ssize_t r = msg_read(msg.fd, &left, ib, sizeof ib);
        if (r < 0) {
            buf_free(&out);
            return -1;
        }
        if (r == 0)
            break;
        src = ib;
        srclen = (size_t)r;
    }
    int rc = fd_send_all(c->fd, bol ? ".\r\n" : "\r\n.\r\n", bol ? 3 : 5);
    buf_free(&out);
    return rc;
}

/* Where each recipient stands in the transaction. */
enum rcpt_phase { RP_UNANSWERED, RP_AWAITING_DATA, RP_DONE };

static void set_all(struct delivery_status *sts, const enum rcpt_phase *ph, size_t n,
                    const struct delivery_status *st, enum rcpt_phase which)
{
    for (size_t i = 0; i < n; i++)
        if (ph[i] == which)
            sts[i] = *st;
}

void lmtp_deliver(const char *spec, const char *lhlo_name, unsigned timeout, const char *sender,
                  const char *const *rcpts, size_t n, const char *prefix, struct msg_src msg,
                  struct delivery_status *sts)
{
    struct delivery_status st;
    enum rcpt_phase *ph = calloc(n ? n : 1, sizeof *ph);   /* all RP_UNANSWERED */
    if (!ph) {
        delivery_set(&st, DELIVERY_DEFER, "4.3.0 out of memory");
        for (size_t i = 0; i < n; i++)
            sts[i] = st;
        return;
    }
    if (ready(spec, lhlo_name, timeout, &st) < 0) {
        set_all(sts, ph, n, &st, RP_UNANSWERED);
        free(ph);
        return;
    }
    struct reply r;
    size_t accepted = 0;
    if (command(&kept, &r, "MAIL FROM:<%s>\r\n", sender) < 0)
        goto broken;
    if (r.code != 250) {
        from_reply(&st, &r, spec);
        set_all(sts, ph, n, &st, RP_UNANSWERED);
        goto reset;
    }
    for (size_t i = 0; i < n; i++) {
        if (command(&kept, &r, "RCPT TO:<%s>\r\n", rcpts[i]) < 0)
            goto broken;
        from_reply(&sts[i], &r, spec);
        ph[i] = sts[i].result == DELIVERY_OK ? RP_AWAITING_DATA : RP_DONE;
        accepted += ph[i] == RP_AWAITING_DATA;
    }
    if (!accepted)
        goto reset;
    if (command(&kept, &r, "DATA\r\n", "") < 0)
        goto broken;
    if (r.code != 354) {
        from_reply(&st, &r, spec);
        set_all(sts, ph, n, &st, RP_AWAITING_DATA);
        goto reset;
    }
    if (send_data(&kept, prefix, msg) < 0)
        goto broken;
    /* RFC 2033 §4.2: one reply per accepted recipient, in RCPT order. */
    for (size_t i = 0; i < n; i++) {
        if (ph[i] != RP_AWAITING_DATA)
            continue;
        if (read_reply(&kept, &r) < 0)
            goto broken;
        from_reply(&sts[i], &r, spec);
        ph[i] = RP_DONE;
    }
    kept.last_used = time(NULL);
    free(ph);
    return;
reset:
    if (command(&kept, &r, "RSET\r\n", "") < 0 || r.code != 250)
        conn_close(&kept);
    kept.last_used = time(NULL);
    free(ph);
    return;
broken:
    delivery_set(&st, DELIVERY_DEFER, "4.4.2 lmtp %s: connection failed: %s", spec, strerror(errno));
    set_all(sts, ph, n, &st, RP_UNANSWERED);
    set_all(sts, ph, n, &st, RP_AWAITING_DATA);
    conn_close(&kept);
    free(ph);
}

void lmtp_close(void)
{
    if (kept.fd >= 0) {
        struct reply r;
        command(&kept, &r, "QUIT\r\n", "");
    }
    conn_close(&kept);
}

bool lmtp_is_open(void)
{
    return kept.fd >= 0;
}

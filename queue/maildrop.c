/* maildrop — see maildrop.h. */
#include "queue/maildrop.h"
#include "lib/addr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "FERRY-DROP 1\n"

static bool valid_mailbox(const char *a, size_t n, bool *utf8)
{
    struct mailbox m;
    const char *why;
    if (addr_parse_mailbox(a, n, true, &m, &why) < 0)
        return false;
    *utf8 |= m.utf8;
    return true;
}

int maildrop_write_envelope(struct buf *out, const char *sender, char *const *rcpts, size_t n,
                            char *err, size_t errlen)
{
    bool utf8 = false;
    /* The parser takes what SMTP can carry (a path of 256 octets with its angle
       brackets, RFC 5321 4.5.3.1.3): refuse the rest here, while the submitter
       can still be told, not at the pickup. */
    if (strlen(sender) > ADDR_PATH_MAX - 2) {
        snprintf(err, errlen, "sender address <%.60s...> is longer than %d octets", sender, ADDR_PATH_MAX - 2);
        return -1;
    }
    for (size_t i = 0; i < n && i < MAILDROP_MAX_RCPTS; i++) {
        if (strlen(rcpts[i]) > ADDR_PATH_MAX - 2) {
            snprintf(err, errlen, "recipient address <%.60s...> is longer than %d octets", rcpts[i],
                     ADDR_PATH_MAX - 2);
            return -1;
        }
    }
    if (sender[0] && !valid_mailbox(sender, strlen(sender), &utf8)) {
        snprintf(err, errlen, "sender address <%.300s> is not a valid mailbox", sender);
        return -1;
    }
    if (n == 0 || n > MAILDROP_MAX_RCPTS) {
        snprintf(err, errlen, "a message needs 1 to %d recipients, not %zu", MAILDROP_MAX_RCPTS, n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!valid_mailbox(rcpts[i], strlen(rcpts[i]), &utf8)) {
            snprintf(err, errlen, "recipient address <%.300s> is not a valid mailbox (user@domain)", rcpts[i]);
            return -1;
        }
    }
    int r = buf_puts(out, MAGIC);
    r |= buf_printf(out, "sender %s\n", sender[0] ? sender : "-");
    for (size_t i = 0; i < n; i++)
        r |= buf_printf(out, "rcpt %s\n", rcpts[i]);
    r |= buf_puts(out, "\n");
    if (r < 0) {
        snprintf(err, errlen, "the envelope is too large");
        return -1;
    }
    return 0;
}

/* The next line of data at *pos (without its LF); -1 when there is no complete line. */
static int next_line(const char *data, size_t len, size_t *pos, const char **line, size_t *llen)
{
    const char *p = data + *pos;
    const char *nl = memchr(p, '\n', len - *pos);
    if (!nl)
        return -1;
    *line = p;
    *llen = (size_t)(nl - p);
    *pos += *llen + 1;
    return 0;
}

int maildrop_parse(const char *data, size_t len, struct envelope *e, size_t *body_off,
                   char *err, size_t errlen)
{
    size_t pos = 0, llen;
    const char *line;
    if (len < sizeof MAGIC - 1 || memcmp(data, MAGIC, sizeof MAGIC - 1) != 0) {
        snprintf(err, errlen, "not a maildrop file (no \"FERRY-DROP 1\" first line)");
        return -1;
    }
    pos = sizeof MAGIC - 1;
    bool have_sender = false, utf8 = false;
    size_t lineno = 1;
    for (;;) {
        lineno++;
        if (next_line(data, len, &pos, &line, &llen) < 0) {
            snprintf(err, errlen, "line %zu: the envelope does not end with an empty line", lineno);
            return -1;
        }
        if (llen == 0)
            break;
        if (llen > 5 + ADDR_PATH_MAX) {
            snprintf(err, errlen, "line %zu: too long for an envelope line", lineno);
            return -1;
        }
        if (llen > 7 && memcmp(line, "sender ", 7) == 0) {
            if (have_sender) {
                snprintf(err, errlen, "line %zu: a second sender line", lineno);
                return -1;
            }
            have_sender = true;
            const char *a = line + 7;
            size_t alen = llen - 7;
            if (alen == 1 && a[0] == '-') {
                e->sender[0] = '\0';
                continue;
            }
            if (!valid_mailbox(a, alen, &utf8) || alen >= sizeof e->sender) {
                snprintf(err, errlen, "line %zu: the sender is not a valid mailbox", lineno);
                return -1;
            }
            memcpy(e->sender, a, alen);
            e->sender[alen] = '\0';
        } else if (llen > 5 && memcmp(line, "rcpt ", 5) == 0) {
            char addr[ADDR_PATH_MAX + 1];
            size_t alen = llen - 5;
            if (!have_sender) {
                snprintf(err, errlen, "line %zu: a recipient before the sender", lineno);
                return -1;
            }
            if (alen >= sizeof addr || !valid_mailbox(line + 5, alen, &utf8)) {
                snprintf(err, errlen, "line %zu: the recipient is not a valid mailbox", lineno);
                return -1;
            }
            if (e->nrcpts >= MAILDROP_MAX_RCPTS) {
                snprintf(err, errlen, "line %zu: more than %d recipients", lineno, MAILDROP_MAX_RCPTS);
                return -1;
            }
            memcpy(addr, line + 5, alen);
            addr[alen] = '\0';
            if (env_add_rcpt(e, addr) < 0) {
                snprintf(err, errlen, "line %zu: cannot add the recipient (out of memory)", lineno);
                return -1;
            }
        } else {
            snprintf(err, errlen, "line %zu: expected \"sender ADDRESS\" or \"rcpt ADDRESS\"", lineno);
            return -1;
        }
    }
    if (!have_sender || e->nrcpts == 0) {
        snprintf(err, errlen, "the envelope needs a sender line and at least one rcpt line");
        return -1;
    }
    e->smtputf8 = utf8;
    *body_off = pos;
    return 0;
}

/* The one pass over a user's message that both the check and the conversion make:
   every line ends at LF, CRLF or a lone CR; out (may be NULL) gets each line with
   CRLF; *wire_len is the size of that wire form. */
static int scan_message(const char *msg, size_t len, struct buf *out, bool *eight_bit, size_t *wire_len,
                        char *err, size_t errlen)
{
    *eight_bit = false;
    *wire_len = 0;
    size_t start = 0, lineno = 1;
    while (start < len) {
        size_t i = start;
        while (i < len && msg[i] != '\n' && msg[i] != '\r') {
            if (msg[i] == '\0') {
                snprintf(err, errlen, "line %zu of the message contains a NUL octet", lineno);
                return -1;
            }
            *eight_bit |= (unsigned char)msg[i] >= 0x80;
            i++;
        }
        if (i - start > 998) {
            snprintf(err, errlen, "line %zu of the message is longer than 998 octets (RFC 5322 2.1.1)", lineno);
            return -1;
        }
        *wire_len += i - start + 2;
        if (out && (buf_append(out, msg + start, i - start) < 0 || buf_append(out, "\r\n", 2) < 0)) {
            snprintf(err, errlen, "the message is too large");
            return -1;
        }
        if (i < len && msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')
            i++;
        start = i + 1;
        lineno++;
    }
    return 0;
}

int maildrop_to_wire(const char *msg, size_t len, struct buf *out, bool *eight_bit, char *err, size_t errlen)
{
    size_t wire_len;
    return scan_message(msg, len, out, eight_bit, &wire_len, err, errlen);
}

int maildrop_check_message(const char *msg, size_t len, unsigned long long size_limit, char *err, size_t errlen)
{
    bool eight_bit;
    size_t wire_len;
    if (scan_message(msg, len, NULL, &eight_bit, &wire_len, err, errlen) < 0)
        return -1;
    if ((unsigned long long)wire_len + MAILDROP_TRACE_MAX > size_limit) {
        snprintf(err, errlen, "the message is %zu octets, over the size limit of %llu octets", wire_len,
                 size_limit > MAILDROP_TRACE_MAX ? size_limit - MAILDROP_TRACE_MAX : 0);
        return -1;
    }
    return 0;
}

/* maildrop/ as ferry-sendmail may trust it: a real directory (not a link the
   spool's owner put in its place; when root submits, that link would make root
   create files wherever it pointed), sticky and writable by all, so that nobody
   but its owner and us can rename or remove what we put in it. */
static int open_maildrop(const char *spool_dir, char *err, size_t errlen)
{
    int sfd = open(spool_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0) {
        snprintf(err, errlen, "cannot open the spool directory %s: %s", spool_dir, strerror(errno));
        return -1;
    }
    /* O_PATH: others may search maildrop/ but not read it. */
    int fd = openat(sfd, MAILDROP_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int saved = errno;
    close(sfd);
    struct stat st;
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s/%s: %s", spool_dir, MAILDROP_DIR,
                 saved == ELOOP || saved == ENOTDIR ? "it is not a directory (a symbolic link?)" : strerror(saved));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 01777) != 01733) {
        snprintf(err, errlen, "%s/%s is not the drop directory ferryd makes (mode 1733): refusing to write there",
                 spool_dir, MAILDROP_DIR);
        close(fd);
        return -1;
    }
    return fd;
}

int maildrop_submit(const char *spool_dir, const char *data, size_t len, char *err, size_t errlen)
{
    unsigned char rnd[12];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        snprintf(err, errlen, "cannot get random bytes for a file name: %s", strerror(errno));
        return -1;
    }
    char name[2 * sizeof rnd + 1];
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(name + 2 * i, 3, "%02x", rnd[i]);
    char tmp[sizeof name + 2], final[sizeof name + 2];
    snprintf(tmp, sizeof tmp, "t.%s", name);
    snprintf(final, sizeof final, "d.%s", name);
    int dfd = open_maildrop(spool_dir, err, errlen);
    if (dfd < 0)
        return -1;
    /* Readable by the daemon's user, which need not be ours; the directory cannot
       be listed, so nobody else finds the name. Created here and now, never an
       existing file or a link (O_EXCL|O_NOFOLLOW). */
    int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s/%s/%s: %s", spool_dir, MAILDROP_DIR, tmp, strerror(errno));
        close(dfd);
        return -1;
    }
    fchmod(fd, 0644);       /* whatever our umask says */
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            snprintf(err, errlen, "cannot write %s/%s/%s: %s", spool_dir, MAILDROP_DIR, tmp,
                     w < 0 ? strerror(errno) : "short write");
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0) {
        snprintf(err, errlen, "cannot fsync %s/%s/%s: %s", spool_dir, MAILDROP_DIR, tmp, strerror(errno));
        goto fail;
    }
    if (close(fd) < 0) {
        fd = -1;
        snprintf(err, errlen, "cannot close %s/%s/%s: %s", spool_dir, MAILDROP_DIR, tmp, strerror(errno));
        goto fail;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, final) < 0) {
        snprintf(err, errlen, "cannot rename %s/%s/%s: %s", spool_dir, MAILDROP_DIR, tmp, strerror(errno));
        goto fail;
    }
    /* Make the rename durable when we may (fsync of a directory we may not read
       fails for others, who rely on the file system's next journal commit: the
       file's content is already on disk). */
    int rfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd >= 0) {
        fsync(rfd);
        close(rfd);
    }
    close(dfd);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlinkat(dfd, tmp, 0);
    close(dfd);
    return -1;
}

/* smtp_trace — see smtp_trace.h. */
#include "smtpd/smtp_trace.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct smtp_trace {
    FILE *f;
    char path[512];
    unsigned long long max_data, data_seen;
    bool data_line_open;    /* a "D:" line has been started and not ended */
    bool data_cr_pending;   /* the last data octet was a CR not yet written */
    bool failed;
};

struct smtp_trace *smtp_trace_open(const char *dir, const char *id, unsigned long long max_data,
                                   char *err, size_t errlen)
{
    struct smtp_trace *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if ((size_t)snprintf(t->path, sizeof t->path, "%s/%s.trace", dir, id) >= sizeof t->path) {
        snprintf(err, errlen, "trace directory name %s is too long", dir);
        free(t);
        return NULL;
    }
    /* O_EXCL|O_NOFOLLOW: a trace directory writable by others cannot be used to
       make Ferry append to some other file. */
    int fd = open(t->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", t->path, strerror(errno));
        free(t);
        return NULL;
    }
    t->f = fdopen(fd, "w");
    if (!t->f) {
        snprintf(err, errlen, "cannot open %s: %s", t->path, strerror(errno));
        close(fd);
        free(t);
        return NULL;
    }
    t->max_data = max_data;
    return t;
}

static void check_error(struct smtp_trace *t)
{
    if (!t->failed && ferror(t->f)) {
        t->failed = true;
        log_warn("trace %s: write failed, tracing of this session stopped", t->path);
    }
}

static void prefix(struct smtp_trace *t, const char *dir)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(t->f, "%lld.%06ld %s ", (long long)ts.tv_sec, ts.tv_nsec / 1000, dir);
}

static void put_escaped(FILE *f, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\\')
            fputs("\\\\", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);    /* UTF-8 octets pass: the file is for people reading UTF-8 */
    }
}

/* Close an open content line before writing any other kind of line. */
static void end_data_line(struct smtp_trace *t)
{
    if (t->data_cr_pending) {
        fputs("\\x0d", t->f);
        t->data_cr_pending = false;
    }
    if (t->data_line_open) {
        fputc('\n', t->f);
        t->data_line_open = false;
    }
}

static size_t strip_eol(const char *line, size_t len)
{
    if (len && line[len - 1] == '\n')
        len--;
    if (len && line[len - 1] == '\r')
        len--;
    return len;
}

static void write_line(struct smtp_trace *t, const char *dir, const char *line, size_t len)
{
    end_data_line(t);
    prefix(t, dir);
    put_escaped(t->f, line, strip_eol(line, len));
    fputc('\n', t->f);
    check_error(t);
}

void smtp_trace_client(struct smtp_trace *t, const char *line, size_t len, bool secret)
{
    if (!t || t->failed)
        return;
    len = strip_eol(line, len);
    if (secret) {
        write_line(t, "C:", "***", 3);
        return;
    }
    /* "AUTH mech initial-response": keep the verb and mechanism, hide the rest. */
    if (len > 5 && str_nieq(line, "AUTH ", 5)) {
        size_t mech_end = 5;
        while (mech_end < len && line[mech_end] != ' ')
            mech_end++;
        if (mech_end < len) {
            char masked[96];
            size_t keep = mech_end < 64 ? mech_end : 64;
            memcpy(masked, line, keep);
            memcpy(masked + keep, " ***", 4);
            write_line(t, "C:", masked, keep + 4);
            return;
        }
    }
    write_line(t, "C:", line, len);
}

void smtp_trace_server(struct smtp_trace *t, const char *line, size_t len)
{
    if (!t || t->failed)
        return;
    write_line(t, "S:", line, len);
}

void smtp_trace_note(struct smtp_trace *t, const char *fmt, ...)
{
    if (!t || t->failed)
        return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    write_line(t, "*:", text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

void smtp_trace_data(struct smtp_trace *t, const char *p, size_t n)
{
    if (!t || t->failed || n == 0)
        return;
    if (t->data_seen >= t->max_data) {
        t->data_seen += n;
        return;
    }
    size_t room = t->max_data - t->data_seen;
    size_t take = n < room ? n : room;
    t->data_seen += n;
    for (size_t i = 0; i < take; i++) {
        char c = p[i];
        if (!t->data_line_open) {
            prefix(t, "D:");
            t->data_line_open = true;
        }
        if (t->data_cr_pending) {
            t->data_cr_pending = false;
            if (c == '\n') {     /* CRLF: the ordinary end of a line */
                fputc('\n', t->f);
                t->data_line_open = false;
                continue;
            }
            fputs("\\x0d", t->f);
        }
        if (c == '\r') {
            t->data_cr_pending = true;
        } else if (c == '\n') {     /* a bare LF: shown, and ends the trace line */
            fputs("\\x0a\n", t->f);
            t->data_line_open = false;
        } else {
            put_escaped(t->f, &c, 1);
        }
    }
    check_error(t);
}

void smtp_trace_close(struct smtp_trace *t)
{
    if (!t)
        return;
    if (!t->failed) {
        end_data_line(t);
        if (t->data_seen > t->max_data) {
            prefix(t, "*:");
            fprintf(t->f, "%llu octets of message content not traced (trace limit %llu)\n",
                    t->data_seen - t->max_data, t->max_data);
        }
    }
    if (fclose(t->f) != 0 && !t->failed)
        log_warn("trace %s: close failed: %s", t->path, strerror(errno));
    free(t);
}

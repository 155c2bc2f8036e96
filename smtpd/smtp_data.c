/* smtp_data — see smtp_data.h. */
#include "smtpd/smtp_data.h"

#include <string.h>

enum {
    D_LINE_START,   /* at the start of a line */
    D_DOT,          /* a line began with "." */
    D_DOT_CR,       /* a line began with ".\r" */
    D_MID,          /* inside a line */
    D_CR            /* inside a line, after "\r" */
};

void smtp_data_init(struct smtp_data *d)
{
    d->state = D_LINE_START;
    d->line_len = 0;
    d->bare_lf = d->bare_cr = d->long_line = d->nul = d->normalize = d->done = false;
}

void smtp_data_set_normalize(struct smtp_data *d, bool on)
{
    d->normalize = on;
}

/* A bare CR or LF: passed through as it is, or written as CRLF when normalizing. */
static size_t put_bare(const struct smtp_data *d, char c, char *out)
{
    if (!d->normalize) {
        out[0] = c;
        return 1;
    }
    out[0] = '\r';
    out[1] = '\n';
    return 2;
}

static void count(struct smtp_data *d, size_t k)
{
    d->line_len += k;
    if (d->line_len > SMTP_TEXT_LINE_MAX)
        d->long_line = true;
}

size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t n, char *out, size_t *outlen)
{
    size_t o = 0, i = 0;
    while (i < n && !d->done) {
        char c = in[i++];
        switch (d->state) {
        case D_LINE_START:
            d->line_len = 0;
            if (c == '.') {
                count(d, 1);
                d->state = D_DOT;
                break;
            }
            d->state = D_MID;
            /* fall through */
        case D_MID:
            if (c != '\r' && c != '\n') {
                /* The fast path (issue 16: this loop was 28 instructions per octet,
                   most of the smtp process's cost per message): the ordinary octets
                   up to the next CR or LF are copied as one span. memchr finds both
                   ends with word-wide compares; the span is exactly what the state
                   machine would have emitted octet by octet (no state change inside
                   it, NULs noted and passed on, every octet counted on the line). */
                const char *p = in + i - 1;
                size_t left = n - i + 1;
                const char *lf = memchr(p, '\n', left);
                size_t span = lf ? (size_t)(lf - p) : left;
                const char *cr = memchr(p, '\r', span);
                if (cr)
                    span = (size_t)(cr - p);
                d->nul |= memchr(p, '\0', span) != NULL;
                memcpy(out + o, p, span);
                o += span;
                i += span - 1;
                count(d, span);
                break;
            }
            count(d, 1);
            if (c == '\r') {
                d->state = D_CR;
            } else if (c == '\n') {
                /* A bare LF is not a line end: what follows is not at the start of
                   a line, so "\n.\r\n" neither ends the data nor unstuffs the dot
                   (the line length still restarts, as a receiver may see a line). */
                d->bare_lf = true;
                o += put_bare(d, c, out + o);
                d->line_len = 0;
            } else {
                d->nul |= c == '\0';
                out[o++] = c;
            }
            break;
        case D_DOT:
            /* The stuffed dot is dropped; what follows is ordinary line content. */
            if (c == '\r') {
                count(d, 1);
                d->state = D_DOT_CR;
            } else {
                d->state = D_MID;
                i--;
            }
            break;
        case D_DOT_CR:
            if (c == '\n') {
                d->done = true;
            } else {
                /* ".\rX": the CR was bare. */
                d->bare_cr = true;
                o += put_bare(d, '\r', out + o);
                if (d->normalize)
                    d->line_len = 0;
                d->state = D_MID;
                i--;
            }
            break;
        case D_CR:
            if (c == '\n') {
                count(d, 1);
                out[o++] = '\r';
                out[o++] = '\n';
                d->state = D_LINE_START;
            } else {
                d->bare_cr = true;
                o += put_bare(d, '\r', out + o);
                if (d->normalize)
                    d->line_len = 0;
                d->state = D_MID;
                i--;
            }
            break;
        }
    }
    *outlen = o;
    return i;
}

void smtp_text_init(struct smtp_text *t)
{
    t->line_len = 0;
    t->after_cr = t->nul = t->bare_lf = t->bare_cr = t->long_line = false;
}

void smtp_text_feed(struct smtp_text *t, const char *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (t->after_cr && c != '\n')
            t->bare_cr = true;
        t->nul |= c == '\0';
        /* Counted as in DATA: every octet of the line, CRLF included. */
        if (++t->line_len > SMTP_TEXT_LINE_MAX)
            t->long_line = true;
        if (c == '\n') {
            if (!t->after_cr)
                t->bare_lf = true;
            t->line_len = 0;
        }
        t->after_cr = c == '\r';
    }
}

void smtp_text_end(struct smtp_text *t)
{
    if (t->after_cr)
        t->bare_cr = true;
    t->after_cr = false;
}

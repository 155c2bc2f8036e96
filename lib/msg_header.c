/* msg_header — see msg_header.h. One octet-driven state machine; the only shortcut
   (copying a run of value octets at once) ends at every CR, so any chunking walks
   the same states. */
#include "lib/msg_header.h"
#include "lib/buf.h"

#include <stdlib.h>
#include <string.h>

static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

static bool is_ftext(unsigned char c)
{
    return c >= 33 && c <= 126 && c != ':';
}

void msg_header_init(struct msg_header *s, const struct msg_header_opts *opts)
{
    memset(s, 0, sizeof *s);
    s->value_max = opts && opts->value_max ? opts->value_max : MSG_HEADER_VALUE_DEFAULT;
    if (s->value_max > MSG_HEADER_VALUE_LIMIT)
        s->value_max = MSG_HEADER_VALUE_LIMIT;
    s->state = MSG_HEADER_S_LINE_START;
    s->end = MSG_HEADER_END_NONE;
}

void msg_header_free(struct msg_header *s)
{
    for (size_t w = 0; w < s->nwatch; w++)
        for (size_t i = 0; i < MSG_HEADER_KEEP_MAX; i++) {
            free(s->watch[w].values[i].data);
            memset(&s->watch[w].values[i], 0, sizeof s->watch[w].values[i]);
        }
    s->nwatch = 0;
    s->target = NULL;
}

static struct msg_header_watch *find_watch(const struct msg_header *s, const char *name,
                                           size_t len)
{
    for (size_t w = 0; w < s->nwatch; w++)
        if (s->watch[w].name_len == len && str_nieq(s->watch[w].name, name, len))
            return (struct msg_header_watch *)&s->watch[w];
    return NULL;
}

int msg_header_watch(struct msg_header *s, const char *name, unsigned keep)
{
    size_t len = strlen(name);
    if (len == 0 || len > MSG_HEADER_NAME_MAX || keep > MSG_HEADER_KEEP_MAX ||
        s->nwatch >= MSG_HEADER_WATCH_MAX || s->offset > 0)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!is_ftext((unsigned char)name[i]))
            return -1;
    if (find_watch(s, name, len))
        return -1;
    struct msg_header_watch *w = &s->watch[s->nwatch++];
    memcpy(w->name, name, len + 1);
    w->name_len = len;
    w->keep = keep;
    return 0;
}

/* Append to the kept value; octets past value_max are dropped. -1 only on ENOMEM. */
static int value_append(struct msg_header *s, const char *p, size_t n)
{
    struct msg_header_value *v = s->target;
    if (!v || n == 0)
        return 0;
    if (v->len + n > s->value_max) {
        n = s->value_max - v->len;
        v->truncated = true;
        if (n == 0)
            return 0;
    }
    if (v->len + n + 1 > v->cap) {
        size_t cap = v->cap ? v->cap : 64;
        while (cap < v->len + n + 1)
            cap *= 2;
        if (cap > s->value_max + 1)
            cap = s->value_max + 1;
        char *d = realloc(v->data, cap);
        if (!d)
            return -1;
        v->data = d;
        v->cap = cap;
    }
    memcpy(v->data + v->len, p, n);
    v->len += n;
    v->data[v->len] = '\0';
    return 0;
}

/* The field is complete (a new line is not its continuation): drop trailing WSP. */
static void field_close(struct msg_header *s)
{
    struct msg_header_value *v = s->target;
    if (v && v->data) {
        while (v->len > 0 && is_wsp((unsigned char)v->data[v->len - 1]))
            v->len--;
        v->data[v->len] = '\0';
    }
    s->target = NULL;
}

/* The ':' after a field name: count it and decide whether its value is kept. */
static void field_open(struct msg_header *s)
{
    s->fields++;
    s->field_open = true;
    s->value_leading = true;
    s->target = NULL;
    size_t len = s->name_len;
    if (len > MSG_HEADER_NAME_MAX)
        return;
    if (len == 8 && str_nieq(s->name, "Received", 8) && s->received < SIZE_MAX)
        s->received++;
    struct msg_header_watch *w = find_watch(s, s->name, len);
    if (!w)
        return;
    if (w->count < w->keep) {
        s->target = &w->values[w->count];
        s->target->len = 0;
        s->target->truncated = false;
    }
    if (w->count < SIZE_MAX)
        w->count++;
}

static void end_here(struct msg_header *s, enum msg_header_end kind, uint64_t end,
                     uint64_t body)
{
    field_close(s);
    s->end = kind;
    s->end_offset = end;
    s->body_offset = body;
    s->state = MSG_HEADER_S_BODY;
}

static void malformed(struct msg_header *s, const char *why)
{
    s->malformed_reason = why;
    end_here(s, MSG_HEADER_END_MALFORMED, s->line_start, s->line_start);
}

static void check_line_length(struct msg_header *s, uint64_t line_end)
{
    if (line_end - s->line_start > MSG_HEADER_LINE_MAX)
        s->long_line = true;
}

/* A run of value octets without CR, from p: WSP at the start is skipped. */
static int value_run(struct msg_header *s, const unsigned char *p, size_t n)
{
    if (s->value_leading) {
        size_t k = 0;
        while (k < n && is_wsp(p[k]))
            k++;
        p += k;
        n -= k;
        if (n == 0)
            return 0;
        s->value_leading = false;
    }
    return value_append(s, (const char *)p, n);
}

/*
 * Advance over in[0..n) while in the header section. Returns the octets used; stops
 * early only when the header section ends (or on ENOMEM, with the state FAILED).
 */
static size_t step(struct msg_header *s, const unsigned char *in, size_t n)
{
    size_t i = 0;
    while (i < n && s->state != MSG_HEADER_S_BODY && s->state != MSG_HEADER_S_FAILED) {
        unsigned char c = in[i];
        switch (s->state) {
        case MSG_HEADER_S_LINE_START:
            if (c == '\r') {
                s->state = MSG_HEADER_S_LINE_CR;
            } else if (is_wsp(c)) {
                if (!s->field_open) {
                    malformed(s, "a continuation line precedes the first header field");
                    return i;
                }
                s->state = MSG_HEADER_S_VALUE;
                continue;               /* the WSP is part of the unfolded value */
            } else if (is_ftext(c)) {
                field_close(s);
                s->field_open = false;
                s->name[0] = (char)c;
                s->name_len = 1;
                s->state = MSG_HEADER_S_NAME;
            } else if (c == ':') {
                malformed(s, "a header line starts with ':' (empty field name)");
                return i;
            } else {
                malformed(s, "a header line is neither a field nor a continuation");
                return i;
            }
            break;
        case MSG_HEADER_S_LINE_CR:
            if (c == '\n') {
                end_here(s, MSG_HEADER_END_EMPTY_LINE, s->line_start, s->offset + i + 1);
                return i + 1;
            }
            malformed(s, "a header line starts with a bare CR");
            return i;
        case MSG_HEADER_S_NAME:
        case MSG_HEADER_S_NAME_WSP:
            if (c == ':') {
                field_open(s);
                s->state = MSG_HEADER_S_VALUE;
            } else if (is_wsp(c)) {
                s->state = MSG_HEADER_S_NAME_WSP;
            } else if (is_ftext(c) && s->state == MSG_HEADER_S_NAME) {
                if (s->name_len < MSG_HEADER_NAME_MAX)
                    s->name[s->name_len] = (char)c;
                s->name_len++;
            } else {
                malformed(s, c == '\r' ? "a header line has no ':' after the field name"
                                       : "a field name contains a character not allowed "
                                         "(octets 33-126 except ':')");
                return i;
            }
            if (s->state != MSG_HEADER_S_VALUE &&
                s->offset + i + 1 - s->line_start > MSG_HEADER_LINE_MAX) {
                malformed(s, "a field name runs past 998 octets without a ':'");
                return i + 1;
            }
            break;
        case MSG_HEADER_S_VALUE: {
            const unsigned char *cr = memchr(in + i, '\r', n - i);
            size_t run = cr ? (size_t)(cr - (in + i)) : n - i;
            if (run > 0 && value_run(s, in + i, run) < 0) {
                s->state = MSG_HEADER_S_FAILED;
                return i;
            }
            i += run;
            if (cr) {
                s->state = MSG_HEADER_S_VALUE_CR;
                i++;
            }
            continue;
        }
        case MSG_HEADER_S_VALUE_CR:
            if (c == '\n') {
                check_line_length(s, s->offset + i - 1);
                s->line_start = s->offset + i + 1;
                s->state = MSG_HEADER_S_LINE_START;
                break;
            }
            /* a bare CR is an octet of the value; c is looked at again as a value octet */
            if (value_run(s, (const unsigned char *)"\r", 1) < 0) {
                s->state = MSG_HEADER_S_FAILED;
                return i;
            }
            s->state = MSG_HEADER_S_VALUE;
            continue;
        case MSG_HEADER_S_BODY:
        case MSG_HEADER_S_FAILED:
            return i;
        }
        i++;
    }
    return i;
}

enum msg_header_result msg_header_feed(struct msg_header *s, const void *bytes, size_t n,
                                       ptrdiff_t *end_in_chunk)
{
    if (s->state == MSG_HEADER_S_FAILED)
        return MSG_HEADER_ERROR;
    uint64_t chunk_start = s->offset;
    if (s->state == MSG_HEADER_S_BODY) {
        s->offset += n;
        return MSG_HEADER_BODY;
    }
    step(s, bytes, n);
    if (s->state == MSG_HEADER_S_FAILED)
        return MSG_HEADER_ERROR;
    s->offset += n;
    if (s->state != MSG_HEADER_S_BODY)
        return MSG_HEADER_MORE;
    if (end_in_chunk)
        *end_in_chunk = (ptrdiff_t)((int64_t)s->end_offset - (int64_t)chunk_start);
    return MSG_HEADER_ENDED;
}

enum msg_header_result msg_header_finish(struct msg_header *s)
{
    switch (s->state) {
    case MSG_HEADER_S_FAILED:
        return MSG_HEADER_ERROR;
    case MSG_HEADER_S_BODY:
        return MSG_HEADER_BODY;
    case MSG_HEADER_S_LINE_START:
        end_here(s, MSG_HEADER_END_EOF, s->offset, s->offset);
        break;
    case MSG_HEADER_S_LINE_CR:
        malformed(s, "a header line starts with a bare CR");
        break;
    case MSG_HEADER_S_NAME:
    case MSG_HEADER_S_NAME_WSP:
        malformed(s, "a header line has no ':' after the field name");
        break;
    case MSG_HEADER_S_VALUE_CR:
        if (value_run(s, (const unsigned char *)"\r", 1) < 0) {
            s->state = MSG_HEADER_S_FAILED;
            return MSG_HEADER_ERROR;
        }
        /* fall through */
    case MSG_HEADER_S_VALUE:
        check_line_length(s, s->offset);
        s->unterminated = true;
        end_here(s, MSG_HEADER_END_EOF, s->offset, s->offset);
        break;
    }
    return MSG_HEADER_ENDED;
}

size_t msg_header_holdback(const struct msg_header *s)
{
    switch (s->state) {
    case MSG_HEADER_S_LINE_CR:
    case MSG_HEADER_S_NAME:
    case MSG_HEADER_S_NAME_WSP:
        return (size_t)(s->offset - s->line_start);
    default:
        return 0;
    }
}

size_t msg_header_count(const struct msg_header *s, const char *name)
{
    size_t len = strlen(name);
    const struct msg_header_watch *w = find_watch(s, name, len);
    if (w)
        return w->count;
    if (str_ieq(name, "Received"))
        return s->received;
    return 0;
}

const struct msg_header_value *msg_header_value(const struct msg_header *s, const char *name,
                                                size_t i)
{
    const struct msg_header_watch *w = find_watch(s, name, strlen(name));
    if (!w || i >= w->keep || i >= w->count)
        return NULL;
    return &w->values[i];
}

bool msg_header_looping(const struct msg_header *s)
{
    return s->received > MSG_HEADER_HOPS_MAX;
}

/*
 * msg_header — a streaming scanner of a message's header section (RFC 5322 §2.2, §3.6,
 * §4.5). Pure: no I/O, no policy. Memory is bounded by the options whatever the input.
 *
 * Who calls it: the SMTP submission path while DATA/BDAT bytes arrive (after
 * dot-unstuffing, CRLF line ends), to learn where the header section ends (so it can
 * insert Date:/Message-ID: just before the empty line), the values of From:/Sender:,
 * and the Received: count for hop-count loop detection; later DKIM and DMARC.
 *
 * Use:
 *   msg_header_init(&s, NULL or &opts);           no allocation
 *   msg_header_watch(&s, "From", 2);               names of interest, before feeding
 *   msg_header_feed(&s, chunk, n, &at) ...         any chunking gives the same result
 *   msg_header_finish(&s);                         at the end of the message
 *   msg_header_count(&s, "From"), msg_header_value(&s, "From", 0, &len)
 *   msg_header_free(&s);
 *
 * What is a header line. Lines end only in CRLF; a bare CR or bare LF is an ordinary
 * octet of its line (the SMTP layer refuses such messages, this only keeps the scanner
 * defined). In the header section a line is either
 *   - a field:        1*ftext *WSP ":" ...   (ftext = octets 33-126 except ':'; the
 *                     WSP before ':' is the obsolete syntax of §4.5, still accepted),
 *   - a continuation: it starts with SP or HTAB and follows a field (folding, §2.2.3),
 *   - the empty line: CRLF alone, which ends the header section.
 * Anything else is malformed. Like most MTAs, the first malformed line ends the header
 * section: it becomes the first line of the body, the message has no empty line
 * (end kind MSG_HEADER_END_MALFORMED) and malformed_reason says why. A field name line
 * that runs past MSG_HEADER_LINE_MAX octets without its ':' is malformed too, which
 * bounds how long a line stays undecided.
 *
 * Values are unfolded (each CRLF that precedes WSP is removed, the WSP kept), with
 * leading and trailing WSP removed, and bounded at opts.value_max octets (the rest is
 * dropped and the value marked truncated). They may contain any octet, NUL included;
 * the stored copy is NUL-terminated after len octets.
 *
 * Inserting before the header end while streaming: msg_header_holdback() is the number
 * of trailing octets already fed whose place relative to the header end is still
 * unknown (at most MSG_HEADER_LINE_MAX + 1; only a line start that is not decided yet).
 * A caller that keeps those octets back and writes the rest can always insert at the
 * end: when feed returns MSG_HEADER_ENDED, *end_in_chunk is end_offset minus the
 * chunk's first offset; it is negative (by at most the holdback before the call) when
 * the end lies in held-back octets of earlier chunks.
 *
 * Failure modes: msg_header_feed returns MSG_HEADER_ERROR only when memory for a kept
 * value cannot be allocated; the scanner then stays in that state.
 */
#ifndef FERRY_MSG_HEADER_H
#define FERRY_MSG_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MSG_HEADER_WATCH_MAX     24        /* names of interest */
#define MSG_HEADER_KEEP_MAX      8         /* kept values per name */
#define MSG_HEADER_NAME_MAX      64        /* longest name that can be watched */
#define MSG_HEADER_VALUE_DEFAULT 8192      /* kept octets per value unless told */
#define MSG_HEADER_VALUE_LIMIT   (1u << 20)
#define MSG_HEADER_LINE_MAX      998       /* RFC 5322 §2.1.1, without the CRLF */
#define MSG_HEADER_HOPS_MAX      100       /* more Received: fields than this: a loop */

struct msg_header_opts {
    size_t value_max;   /* octets kept per value; 0 = MSG_HEADER_VALUE_DEFAULT */
};

enum msg_header_state {
    MSG_HEADER_S_LINE_START,   /* at the first octet of a header line */
    MSG_HEADER_S_LINE_CR,      /* a line began with CR: the empty line, or malformed */
    MSG_HEADER_S_NAME,         /* in a field name */
    MSG_HEADER_S_NAME_WSP,     /* WSP after a field name, before ':' (obsolete) */
    MSG_HEADER_S_VALUE,        /* after ':' or in a continuation line */
    MSG_HEADER_S_VALUE_CR,     /* CR in a value: the line end, or a bare CR */
    MSG_HEADER_S_BODY,         /* the header section is over */
    MSG_HEADER_S_FAILED        /* out of memory */
};

enum msg_header_end {
    MSG_HEADER_END_NONE,       /* still in the header section */
    MSG_HEADER_END_EMPTY_LINE, /* the empty line at end_offset; body after it */
    MSG_HEADER_END_MALFORMED,  /* a non-header line at end_offset starts the body */
    MSG_HEADER_END_EOF         /* the message ended in the header section: no body */
};

enum msg_header_result {
    MSG_HEADER_MORE,           /* still in the header section */
    MSG_HEADER_ENDED,          /* the header section ended in this call */
    MSG_HEADER_BODY,           /* it had ended before this call */
    MSG_HEADER_ERROR           /* out of memory */
};

struct msg_header_value {
    char  *data;               /* NUL-terminated after len; NULL when the value is empty */
    size_t len;
    size_t cap;
    bool   truncated;          /* longer than value_max: the rest was dropped */
};

struct msg_header_watch {
    char     name[MSG_HEADER_NAME_MAX + 1];
    size_t   name_len;
    unsigned keep;             /* values kept: the first `keep` occurrences */
    size_t   count;            /* occurrences seen */
    struct msg_header_value values[MSG_HEADER_KEEP_MAX];
};

struct msg_header {
    size_t value_max;
    enum msg_header_state state;
    uint64_t offset;           /* octets fed so far */
    uint64_t line_start;       /* offset of the current line */

    /* the field being read */
    char   name[MSG_HEADER_NAME_MAX + 1];
    size_t name_len;           /* may exceed MSG_HEADER_NAME_MAX: then never watched */
    bool   field_open;         /* a field was seen and continuation lines extend it */
    bool   value_leading;      /* still skipping WSP at the start of the value */
    struct msg_header_value *target;   /* where the value goes, or NULL */

    /* results */
    size_t fields;             /* header fields seen */
    size_t received;           /* Received: fields seen */
    bool   long_line;          /* a header line was longer than MSG_HEADER_LINE_MAX */
    bool   unterminated;       /* the message ended inside a header line (no CRLF) */
    enum msg_header_end end;
    uint64_t end_offset;       /* where fields would be inserted: the empty line,
                                  the malformed line, or the end of input */
    uint64_t body_offset;      /* first octet of the body (== end_offset unless an
                                  empty line separates them) */
    const char *malformed_reason;      /* for MSG_HEADER_END_MALFORMED */

    struct msg_header_watch watch[MSG_HEADER_WATCH_MAX];
    size_t nwatch;
};

/* Set up; opts may be NULL. Allocates nothing. */
void msg_header_init(struct msg_header *s, const struct msg_header_opts *opts);

/* Free the kept values. The scanner may be initialised again afterwards. */
void msg_header_free(struct msg_header *s);

/*
 * Register a field name of interest (case-insensitive) before the first feed: its
 * occurrences are counted and the first `keep` values (0..MSG_HEADER_KEEP_MAX) kept.
 * Returns 0, or -1 when the name is not 1..MSG_HEADER_NAME_MAX ftext octets, is
 * already watched, keep is too large, or MSG_HEADER_WATCH_MAX names are watched.
 */
int msg_header_watch(struct msg_header *s, const char *name, unsigned keep);

/* Feed the next n octets. *end_in_chunk (may be NULL) is set only for MSG_HEADER_ENDED. */
enum msg_header_result msg_header_feed(struct msg_header *s, const void *bytes, size_t n,
                                       ptrdiff_t *end_in_chunk);

/* The input is complete. Returns MSG_HEADER_ENDED when the end was found only now
   (end kind EOF, or MALFORMED for an unfinished non-field last line), else as feed. */
enum msg_header_result msg_header_finish(struct msg_header *s);

/* Trailing octets fed so far that may still turn out to follow the header end. */
size_t msg_header_holdback(const struct msg_header *s);

/* Occurrences of a watched name so far ("Received" is always counted). 0 otherwise. */
size_t msg_header_count(const struct msg_header *s, const char *name);

/* The i-th kept value of a watched name, or NULL (not watched, not seen, not kept). */
const struct msg_header_value *msg_header_value(const struct msg_header *s, const char *name,
                                                size_t i);

/* True when the Received: count says the message is looping (RFC 5321 §6.3). */
bool msg_header_looping(const struct msg_header *s);

#endif

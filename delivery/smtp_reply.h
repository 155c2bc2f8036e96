/*
 * smtp_reply — the SMTP client's reading of what a server says. Pure.
 *
 * smtp_reply_feed takes the bytes received so far, in pieces of any size, and
 * yields one complete reply at a time (RFC 5321 §4.2): lines "CODE-text" ending
 * with a line "CODE text" (or a bare "CODE"), every line with the same code. A line
 * ends with CRLF; a bare LF is accepted too, since being strict here only turns a
 * sloppy peer's answer into a needless deferral. The enhanced status code (RFC
 * 3463, RFC 2034) is taken from the first line when its class matches the reply's.
 *
 * Everything is bounded: a line longer than SMTP_REPLY_LINE_MAX, more than
 * SMTP_REPLY_MAX_LINES lines or more than SMTP_REPLY_TEXT_MAX octets in one reply,
 * a line that does not start with a valid code, or a continuation with a different
 * code is an error; the parser then stays in error (the session must end).
 *
 * smtp_ehlo_parse reads the service extensions out of a 250 reply to EHLO.
 */
#ifndef FERRY_SMTP_REPLY_H
#define FERRY_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_REPLY_LINE_MAX   2048   /* RFC 5321 says 512; some servers exceed it */
#define SMTP_REPLY_MAX_LINES  100
#define SMTP_REPLY_TEXT_MAX   8192

struct smtp_reply {
    int code;                          /* 200..599 */
    char enhanced[16];                 /* "5.1.1", or "" when the reply has none */
    size_t nlines;
    size_t len;                        /* of text */
    /* The lines as received, CRLF removed, joined by '\n' ("250-a\n250 b"). */
    char text[SMTP_REPLY_TEXT_MAX];
};

enum smtp_reply_state { SMTP_RP_LINE, SMTP_RP_ERROR };

struct smtp_reply_parser {
    enum smtp_reply_state state;
    char line[SMTP_REPLY_LINE_MAX + 2];
    size_t line_len;
    struct smtp_reply cur;             /* the reply being assembled */
};

enum smtp_feed_result {
    SMTP_FEED_MORE,    /* all input used, no complete reply yet */
    SMTP_FEED_REPLY,   /* *out holds a reply; input after *used is not read yet */
    SMTP_FEED_ERROR    /* err says why; the parser stays in error */
};

void smtp_reply_parser_init(struct smtp_reply_parser *p);
/* Reads data[0..len) up to the end of the first complete reply; *used is the
   number of octets consumed (all of them unless a reply is returned). */
enum smtp_feed_result smtp_reply_feed(struct smtp_reply_parser *p, const char *data, size_t len,
                                      size_t *used, struct smtp_reply *out, char *err, size_t errlen);
/* True while a reply has started but not ended (a line or more is buffered). */
bool smtp_reply_pending(const struct smtp_reply_parser *p);

/* The reply as one line for logs and DSNs: "550 5.1.1 first text second text",
   control octets replaced by '?'. Always NUL-terminated. */
void smtp_reply_flatten(const struct smtp_reply *r, char *out, size_t outsz);
/* The enhanced code, or "C.0.0" for the reply's class when it gave none. */
const char *smtp_reply_status(const struct smtp_reply *r, char *buf, size_t bufsz);

enum {
    SMTP_AUTH_PLAIN       = 1,
    SMTP_AUTH_LOGIN       = 2,
    SMTP_AUTH_CRAM_MD5    = 4,
    SMTP_AUTH_SCRAM_SHA_1 = 8,
    SMTP_AUTH_SCRAM_SHA_256 = 16,
    SMTP_AUTH_XOAUTH2     = 32,
    SMTP_AUTH_OTHER       = 64,
};

struct smtp_ehlo {
    bool pipelining;
    bool size;                         /* SIZE offered */
    unsigned long long size_limit;     /* SIZE n; 0: no fixed limit announced */
    bool eightbitmime;
    bool smtputf8;
    bool chunking;
    bool binarymime;
    bool dsn;
    bool starttls;
    bool enhancedstatuscodes;
    bool requiretls;
    bool msid;                         /* DMTP MSID offered (and the client will use it) */
    unsigned auth;                     /* SMTP_AUTH_* of the mechanisms offered */
};

/* Extensions of a 2xx EHLO reply (the first line, the greeting, is skipped;
   unknown keywords are ignored). 0 ok, -1 when the reply is not 2xx. */
int smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *out);

#endif

/*
 * smtp_cmd — parse one SMTP command line into a struct. Pure: bytes in, struct out.
 *
 * The caller passes the line without its CRLF (it enforces the 512-octet limit of
 * RFC 5321 §4.5.3.1.4 before calling, as it owns the reading). The parser knows the
 * grammar of every verb (RFC 5321 §4.1.1, plus STARTTLS, AUTH, BDAT): verbs are
 * case-insensitive; MAIL/RCPT take a Path (see addr.h) and ESMTP parameters
 * `keyword[=value]` (§4.1.2 esmtp-param; keywords case-insensitive, at most
 * SMTP_MAX_PARAMS; a keyword given twice is 501 5.5.4). It does not judge parameters
 * (SIZE=, BODY=, NOTIFY=…): smtp_params.c does.
 *
 * Tolerances, chosen and documented in RFC-NOTES.md: spaces between "FROM:"/"TO:"
 * and the path are accepted; a path without angle brackets (a plain Mailbox up to
 * the first space, no quotes, no source route) is parsed and flagged bare_path, for
 * the session to accept with a logged note or refuse (strict_envelopes); any other
 * deviation is a syntax error.
 * On error, err holds the reply: code, enhanced status code, text.
 */
#ifndef FERRY_SMTP_CMD_H
#define FERRY_SMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/addr.h"

#define SMTP_CMD_LINE_MAX   512     /* octets, including CRLF */
#define SMTP_MAX_PARAMS     16

enum smtp_verb {
    SMTP_VERB_HELO, SMTP_VERB_EHLO, SMTP_VERB_MAIL, SMTP_VERB_RCPT, SMTP_VERB_DATA,
    SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_QUIT, SMTP_VERB_VRFY, SMTP_VERB_EXPN,
    SMTP_VERB_HELP, SMTP_VERB_STARTTLS, SMTP_VERB_AUTH, SMTP_VERB_BDAT
};

struct smtp_param {
    const char *key;     /* points into smtp_cmd.text */
    const char *value;   /* NULL when the parameter has no "=value" */
};

struct smtp_cmd {
    enum smtp_verb verb;
    char text[SMTP_CMD_LINE_MAX];   /* private copy; the pointers below point into it */
    const char *arg;                /* HELO/EHLO name, VRFY/EXPN/HELP/AUTH/BDAT/NOOP argument,
                                       "" when absent */
    struct mailbox path;            /* MAIL/RCPT */
    bool null_path;                 /* MAIL FROM:<> */
    bool bare_path;                 /* MAIL FROM:a@b, RCPT TO:a@b (no angle brackets) */
    struct smtp_param params[SMTP_MAX_PARAMS];
    size_t nparams;
};

struct smtp_error {
    int code;               /* 500, 501, 504, 555 ... */
    const char *enhanced;   /* "5.5.2" ... */
    const char *text;       /* human reason */
};

/*
 * Parse line[0..len) (no CRLF). utf8_ok: the session has seen SMTPUTF8 on this
 * MAIL, so UTF-8 is allowed in RCPT paths; for MAIL itself the parser allows
 * UTF-8 in the path when an SMTPUTF8 parameter is present. 0 ok, -1 error.
 */
int smtp_cmd_parse(const char *line, size_t len, bool utf8_ok,
                   struct smtp_cmd *cmd, struct smtp_error *err);

/* Find a parameter by keyword (case-insensitive); NULL when absent. */
const struct smtp_param *smtp_cmd_param(const struct smtp_cmd *cmd, const char *key);

const char *smtp_verb_name(enum smtp_verb verb);

#endif

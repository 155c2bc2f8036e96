/*
 * dmtp_cmd — the wire elements of DMTP (draft-duan-smtp-receiver-driven-03, with the
 * -00 forms accepted on receipt), parsed and formatted. Pure: bytes in, struct out.
 *
 * Parsed: the MSID and GTML command lines (-03 "MSID id [subject]", "GTML id rcpt";
 * -00 "MSID:id [subject]", "GTML:id rcpt"), the DMTP MAIL parameter, an EHLO reply
 * line naming MSID, and the -00 reply code 253. Formatted: MSID and GTML lines for
 * our sending side, the EHLO keywords, and every DMTP reply Ferry sends (one table,
 * so the smtp process and the tests agree on the words). The caller strips CRLF and
 * enforces the 512-octet line limit as for any command; lengths are checked again.
 * Subject text is untrusted and always comes out sanitised (dmtp_subject_clean).
 * RFC-NOTES.md "DMTP" gives the reasons for each limit and reply.
 */
#ifndef FERRY_DMTP_CMD_H
#define FERRY_DMTP_CMD_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/addr.h"

#define DMTP_LINE_MAX     512   /* octets, including CRLF, as any SMTP command */
#define DMTP_MSID_MAX     128   /* octets of an msid we accept */
#define DMTP_SUBJECT_MAX  200   /* octets of subject text kept */

enum dmtp_verb { DMTP_VERB_NONE, DMTP_VERB_MSID, DMTP_VERB_GTML };

struct dmtp_cmd {
    enum dmtp_verb verb;
    bool draft00;                          /* written "MSID:" / "GTML:" */
    char msid[DMTP_MSID_MAX + 1];
    char subject[DMTP_SUBJECT_MAX + 1];    /* MSID: sanitised, "" when absent */
    struct mailbox receiver;               /* GTML */
    char receiver_text[ADDR_PATH_MAX + 1]; /* GTML: "local@domain" */
};

struct dmtp_reply {
    int code;
    const char *enhanced;   /* "5.7.1" */
    const char *text;
};

/* Which DMTP verb (if any) line[0..len) starts with: lets a session dispatcher hand
   the line here before its own parser calls it unknown. */
enum dmtp_verb dmtp_cmd_verb(const char *line, size_t len);

/* Parse an MSID or GTML line (no CRLF). utf8_ok: a UTF-8 receiver address is
   allowed (SMTPUTF8 session). 0 ok; -1 with *err the reply to send. */
int dmtp_cmd_parse(const char *line, size_t len, bool utf8_ok, struct dmtp_cmd *out, struct dmtp_reply *err);

/* A MAIL parameter: 1 it is DMTP (valid, no value); 0 not DMTP; -1 DMTP written
   wrong (*err set). */
int dmtp_mail_param(const char *key, const char *value, struct dmtp_reply *err);

/* Is s[0..len) an acceptable msid (1..DMTP_MSID_MAX octets of VCHAR but < > ")? */
bool dmtp_msid_valid(const char *s, size_t len);

/* Untrusted subject text into out (NUL-terminated, at most DMTP_SUBJECT_MAX octets
   and outsz - 1): controls become spaces, blank runs collapse, ends are trimmed,
   invalid UTF-8 becomes '?', and with ascii_only every non-ASCII octet too. The cut
   never splits a UTF-8 character. Returns the length written. */
size_t dmtp_subject_clean(const char *in, size_t len, bool ascii_only, char *out, size_t outsz);

/* "MSID id[ subject]\r\n" (subject cleaned; omitted when empty) and
   "GTML id receiver\r\n". Length written, or -1 when an argument is invalid or the
   line would pass DMTP_LINE_MAX or outsz. */
int dmtp_format_msid(char *out, size_t outsz, const char *msid, const char *subject, bool ascii_only);
int dmtp_format_gtml(char *out, size_t outsz, const char *msid, const char *receiver);

/* The EHLO keywords we advertise to unclassified peers, in order (NULL-terminated). */
extern const char *const dmtp_ehlo_keywords[];

/* One EHLO reply line's text (after "250-" / "250 "): does it advertise MSID? */
bool dmtp_ehlo_line_offers_msid(const char *text, size_t len);

/* A reply code a sending MTA got to MAIL/RCPT/DATA: does it mean "send MSID" (-00's 253)? */
bool dmtp_reply_wants_msid(int code);

enum dmtp_reply_id {
    DMTP_R_DENIED,          /* MAIL from a denied peer (it is greeted, and may pull) */
    DMTP_R_DENIED_GREETING, /* the greeting of a denied peer (pull_denied_greeting) */
    DMTP_R_QUIT_ONLY,       /* any command but QUIT after that greeting */
    DMTP_R_MSID_OK,
    DMTP_R_MSID_NO_RCPT,    /* MSID before any accepted RCPT */
    DMTP_R_DATA_REFUSED,    /* DATA/BDAT from an unclassified peer that declared DMTP */
    DMTP_R_GTML_OK,         /* the message follows */
    DMTP_R_GTML_REFUSED,    /* unknown, expired, altered, wrong receiver or requester */
    DMTP_R_GTML_TEMP,
    DMTP_R_GTML_RATE,
    DMTP_R_GTML_SEQUENCE,   /* GTML inside a transaction */
    DMTP_R_LEGACY_REJECT,   /* pull_legacy = reject */
    DMTP_R_GREYLISTED,
    DMTP_R_USER_DENIED,     /* the recipient's own list denies the sender */
    DMTP_R_PEER_UNREADABLE, /* MAIL: the peer lists could not be read (a database error) */
    DMTP_R_USER_UNREADABLE, /* RCPT: the recipient's sender lists could not be read */
    DMTP_R_COUNT
};

const struct dmtp_reply *dmtp_reply(enum dmtp_reply_id id);
/* "CODE X.Y.Z text\r\n"; length, or -1 when it does not fit. */
int dmtp_reply_format(const struct dmtp_reply *r, char *out, size_t outsz);

#endif

/*
 * smtp_cmds — what the SMTP client sends, built as bytes. Pure.
 *
 * The MAIL and RCPT command lines with exactly the parameters the peer announced
 * and the envelope needs: SIZE (RFC 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8
 * (RFC 6531), REQUIRETLS (RFC 8689) and the DSN parameters RET, ENVID, NOTIFY and
 * ORCPT (RFC 3461) only when the peer offers DSN; DMTP (draft-duan-smtp-receiver-
 * driven-03) when peer->msid says the client will send MSID instead of DATA; xtext and RFC 6533
 * utf-8-addr-xtext encoders for them. A parameter whose value cannot be encoded
 * (a malformed stored value) is left out rather than sent broken.
 *
 * And the message body for DATA: smtp_body_encode turns the stored message into
 * its transmitted form a chunk at a time: a '.' opening a line is doubled (RFC
 * 5321 §4.5.2), line ends are CRLF (a bare LF or CR becomes CRLF: a bare one may
 * never be sent), and smtp_body_finish closes the last line if needed and adds
 * the ".\r\n" terminator. State carries over between chunks, so a chunk may end
 * anywhere, even between CR and LF.
 */
#ifndef FERRY_SMTP_CMDS_H
#define FERRY_SMTP_CMDS_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/smtp_reply.h"
#include "lib/envelope.h"

/* A command line with its CRLF, bounded by the longest address plus parameters. */
#define SMTP_CMD_MAX  2048

/* RFC 3461 §4 xtext of the NUL-terminated in. 0 ok, -1 when out is too small. */
int smtp_xtext_encode(const char *in, char *out, size_t outsz);
/* RFC 6533 utf-8-addr-xtext of the UTF-8 string in (pure ASCII out). -1 when in
   is not valid UTF-8, holds a control character, or out is too small. */
int smtp_utf8_xtext_encode(const char *in, char *out, size_t outsz);

/* "MAIL FROM:<sender> params\r\n" into out. Returns its length, -1 when too long. */
int smtp_build_mail(const struct envelope *e, const struct smtp_ehlo *peer, char *out, size_t outsz);
/* "RCPT TO:<addr> params\r\n" into out. Returns its length, -1 when too long. */
int smtp_build_rcpt(const struct env_rcpt *r, const struct smtp_ehlo *peer, char *out, size_t outsz);

enum smtp_body_state {
    SMTP_BODY_LINE_START,   /* at the start of a line (and of the message) */
    SMTP_BODY_MID_LINE,
    SMTP_BODY_AFTER_CR      /* a CR was sent; an LF is owed unless the next octet is LF */
};

struct smtp_body {
    enum smtp_body_state state;
};

void smtp_body_init(struct smtp_body *b);
/* Encodes in[0..n) into out, which must hold 2 * n + 1 octets (the worst case:
   every octet a bare LF or a leading dot). Returns the octets written. */
size_t smtp_body_encode(struct smtp_body *b, const char *in, size_t n, char *out);
/* The end of the data: a CRLF when the last line is open, then ".\r\n". out holds
   at least 6 octets. Returns the octets written. */
size_t smtp_body_finish(struct smtp_body *b, char *out);

#endif

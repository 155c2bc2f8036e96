/*
 * maildrop — local submission without the network: the file format that
 * ferry-sendmail drops into <spool_dir>/maildrop/, and its strict parser.
 *
 * maildrop/ is mode 1733 (anyone may create a file, nobody but the daemon may
 * list or remove others' files) inside a spool that others may traverse but not
 * read. A local user's ferry-sendmail writes "t.<random>" and renames it to
 * "d.<random>" once complete, so the daemon never sees half a file; the smtp
 * process picks up d.* files (smtpd/smtp_pickup.c), queues them and removes them.
 * The owner of the file is the submitting user, recorded in Received:.
 *
 * Format (text, LF line ends):
 *   FERRY-DROP 1
 *   sender ADDRESS          (or "sender -" for the null reverse-path)
 *   rcpt ADDRESS            (one line per recipient, 1 to max)
 *   <empty line>
 *   the message, as the user wrote it (LF or CRLF line ends)
 * Addresses are RFC 5321 Mailboxes (UTF-8 allowed). The file is untrusted input:
 * the parser checks every line and every limit and says what is wrong.
 */
#ifndef FERRY_MAILDROP_H
#define FERRY_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/envelope.h"

#define MAILDROP_DIR        "maildrop"
#define MAILDROP_MAX_RCPTS  1000

/* Append the envelope part (header lines and the empty line) to out. -1 when an
   address is not a valid Mailbox (err names it) or out is full. sender may be ""
   for the null reverse-path. */
int maildrop_write_envelope(struct buf *out, const char *sender, char *const *rcpts, size_t n,
                            char *err, size_t errlen);

/* Parse a drop file: fills e->sender, the recipients and e->smtputf8; *body_off
   is where the message starts. 0 ok; -1 with err. e must be env_init'ed. */
int maildrop_parse(const char *data, size_t len, struct envelope *e, size_t *body_off,
                   char *err, size_t errlen);

/* Convert the user's message to the wire form the spool keeps: every line ends in
   CRLF (a lone LF or a lone CR becomes CRLF), appended to out. Fails (-1, err
   set) on a line over 998 octets or a NUL, which SMTP cannot carry, or when out is
   full. *eight_bit is set when an octet >= 0x80 occurs. */
int maildrop_to_wire(const char *msg, size_t len, struct buf *out, bool *eight_bit, char *err, size_t errlen);

/* Room the pickup's own trace field (Received:) may take in front of a message. */
#define MAILDROP_TRACE_MAX  512

/* Would the pickup queue this message (the part of a drop after its envelope)?
   The one verdict both sides use: ferry-sendmail refuses what fails here before it
   says the message was accepted, and the pickup quarantines it. Checks what
   maildrop_to_wire checks, and that the wire form plus MAILDROP_TRACE_MAX fits
   size_limit. 0 ok; -1 with err naming the problem (and the line). */
int maildrop_check_message(const char *msg, size_t len, unsigned long long size_limit, char *err, size_t errlen);

/* ferry-sendmail's side: write data to <spool_dir>/maildrop/ atomically
   (t.NAME, fsync, rename to d.NAME). 0 ok; -1 with err naming the file. */
int maildrop_submit(const char *spool_dir, const char *data, size_t len, char *err, size_t errlen);

#endif

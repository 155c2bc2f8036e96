/*
 * smtp_data — the DATA byte stream: end-of-data detection, dot-unstuffing, and the
 * line rules that keep SMTP smuggling out. Pure: bytes in, bytes out.
 *
 * Only <CRLF>.<CRLF> ends the data (RFC 5321 §4.1.1.4); "\n.\n", "\r.\r", "\n.\r\n"
 * and the like do not. A bare CR or bare LF anywhere is passed through but flagged,
 * and the session refuses such a message (RFC 5321 §2.3.8), so two servers can never
 * disagree about where a message ends. A leading dot on a line is removed (§4.5.2).
 * Lines longer than 1000 octets including CRLF are flagged (§4.5.3.1.6), and so is a
 * NUL octet, which no SMTP body type may carry (RFC 6152 §3).
 *
 * With normalize on (bare_newlines = normalize), each bare CR and bare LF is written
 * as CRLF instead of being passed through, but it still never starts a line for the
 * purpose of finding the end of the data or unstuffing a dot: a sender can never make
 * the end fall where a strict server would not see it. A line of "." that results is
 * content; the SMTP client dot-stuffs it when the message goes on.
 *
 * smtp_text applies the same line rules (bare CR, bare LF, long lines) to BDAT
 * content (RFC 3030), which has no end marker and no dot-stuffing: the bytes are
 * stored as they come, and the session refuses the message on the same flags as
 * DATA, so a message can never enter the queue by BDAT that DATA would refuse.
 */
#ifndef FERRY_SMTP_DATA_H
#define FERRY_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_TEXT_LINE_MAX 1000   /* octets, including CRLF */
/* Output room for n input octets: normalizing can double them. */
#define SMTP_DATA_OUT_MAX(n) (2 * (n) + 2)

struct smtp_data {
    int state;
    size_t line_len;
    bool bare_lf;
    bool bare_cr;
    bool long_line;
    bool nul;
    bool normalize;
    bool done;
};

void smtp_data_init(struct smtp_data *d);
void smtp_data_set_normalize(struct smtp_data *d, bool on);
/*
 * Consume in[0..n) up to and including the end-of-data line. The message bytes
 * are written to out, which must hold SMTP_DATA_OUT_MAX(n) bytes; *outlen gets their count.
 * Returns the number of input bytes consumed (< n only when done).
 */
size_t smtp_data_feed(struct smtp_data *d, const char *in, size_t n, char *out, size_t *outlen);

struct smtp_text {
    size_t line_len;
    bool after_cr;      /* the last octet seen was a CR */
    bool nul;
    bool bare_lf;
    bool bare_cr;
    bool long_line;
};

void smtp_text_init(struct smtp_text *t);
/* Check in[0..n); the content may be split anywhere, a CRLF across two calls included. */
void smtp_text_feed(struct smtp_text *t, const char *in, size_t n);
/* The message is complete: a CR at its very end is bare. (A last line without a
   CRLF is allowed: BDAT content need not end in one.) */
void smtp_text_end(struct smtp_text *t);

#endif

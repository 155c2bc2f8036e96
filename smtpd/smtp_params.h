/*
 * smtp_params — judge the ESMTP parameters of MAIL and RCPT. Pure: a parsed
 * command (smtp_cmd.h) in, the accepted values or the exact error reply out.
 *
 * MAIL: SIZE (RFC 1870), BODY=7BIT|8BITMIME (RFC 6152; BINARYMIME is not
 * offered: 504 5.5.4), SMTPUTF8 (RFC 6531), RET and ENVID (RFC 3461),
 * REQUIRETLS (RFC 8689; only under TLS, else 530 5.7.10).
 * RCPT: NOTIFY and ORCPT (RFC 3461, RFC 6533 for the utf-8 address type).
 * Any other keyword: 555 5.5.4; parameters in a HELO (not EHLO) session: 555 5.5.4;
 * a malformed value: 501 5.5.4. A keyword given twice is already refused with
 * 501 5.5.4 by smtp_cmd_parse. The size limit and spool room are the session's
 * business (it knows the configuration and the disk).
 *
 * xtext (RFC 3461 §4) decoding and the NOTIFY and ORCPT value grammars are
 * exported for the unit tests and for whoever writes DSNs later.
 */
#ifndef FERRY_SMTP_PARAMS_H
#define FERRY_SMTP_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/envelope.h"
#include "smtpd/smtp_cmd.h"

struct smtp_mail_params {
    unsigned long long size;            /* SIZE=, 0 when absent */
    bool body_8bit;
    bool smtputf8;
    enum env_ret ret;
    char envid[ENV_ENVID_MAX + 1];      /* decoded */
    bool requiretls;
    bool dmtp;                          /* DMTP (receiver-pull), only when offered */
};

struct smtp_rcpt_params {
    unsigned notify;                    /* ENV_NOTIFY_* bits, 0 when absent */
    enum env_orcpt_type orcpt_type;
    char orcpt[ENV_ORCPT_MAX + 1];      /* decoded */
};

/* esmtp: the session began with EHLO. tls: the session is under TLS.
   0 ok; -1 with the reply in err. */
int smtp_mail_params(const struct smtp_cmd *cmd, bool esmtp, bool tls,
                     struct smtp_mail_params *mp, struct smtp_error *err);
/* The same, and dmtp: DMTP receiver-pull is on, so the DMTP keyword (no value)
   is accepted (pull/dmtp_cmd.h); otherwise it is 555 like any unknown keyword. */
int smtp_mail_params_dmtp(const struct smtp_cmd *cmd, bool esmtp, bool tls, bool dmtp,
                          struct smtp_mail_params *mp, struct smtp_error *err);
/* utf8: the transaction's MAIL carried SMTPUTF8 (raw UTF-8 allowed in a utf-8 ORCPT). */
int smtp_rcpt_params(const struct smtp_cmd *cmd, bool esmtp, bool utf8,
                     struct smtp_rcpt_params *rp, struct smtp_error *err);

/*
 * Decode the xtext in[0..n) into out (outsz octets with the NUL). Every octet must
 * be an xchar (33..126 except '+' and '=') or "+XX" with two upper-case hex
 * digits; the decoded text must be printable US-ASCII (32..126), as RFC 3461
 * §4.2/§4.4 require of ENVID and ORCPT. 0 ok; -1 malformed or too long.
 */
int xtext_decode(const char *in, size_t n, char *out, size_t outsz);

/* NOTIFY value: "NEVER" or a comma list of SUCCESS, FAILURE, DELAY, any case,
   each at most once. 0 with *flags set; -1 otherwise. */
int smtp_notify_parse(const char *v, unsigned *flags);

/* ORCPT value "addr-type;address": addr-type rfc822 (xtext, decoded to printable
   ASCII) or utf-8 (RFC 6533 utf-8-addr-xtext, or utf-8-addr-unitext when utf8,
   decoded to UTF-8 without control characters); addr-type is case-insensitive.
   0 ok; -1 with a reason in *why. */
int smtp_orcpt_parse(const char *v, bool utf8, enum env_orcpt_type *type, char *out, size_t outsz,
                     const char **why);

#endif

/*
 * smtp_gtml — the DMTP GTML service on the smtp listener (draft -03 §3.5
 * "Procedure to retrieve"; RFC-NOTES.md "DMTP"): a receiving MTA we handed an
 * msid to comes back and fetches the held message for one recipient.
 *
 * "GTML <msid> <receiver>" (or -00's "GTML:"), outside a transaction, after
 * EHLO/HELO (or before it, as the receiving side's dispatcher allows). Checks, in order, every failure answered with the same
 * DMTP_R_GTML_REFUSED (no oracle) and its real reason logged:
 *  1. the msid names a held message (its queue ID part) whose envelope records it;
 *  2. msid_check against the requester's IP (constant time, expiry). When the MAC
 *     does not match that IP, it is checked against the IP the MSID was handed
 *     to, and then the requester must be an address of an MX host (or the
 *     implicit MX) of the receiver's domain: resolved on the smtp process's DNS
 *     client, the session paused meanwhile, never blocking;
 *  3. the receiver is a recipient of that held message.
 * Then DMTP_R_GTML_OK and the message, dot-stuffed, ended by ".". The recipient
 * counts as served (held_mark_pulled: the last one removes the held message)
 * only when the requester sends its next command (QUIT, or another GTML) after
 * the whole message; a drop before that leaves it pullable. Pulls per session are bounded (DMTP_R_GTML_RATE after
 * GTML_PER_SESSION). Reads spool/held/ and writes its envelopes (queue/held.h).
 *
 * Entry points for the session: smtp_gtml_command for the line, smtp_gtml_quit
 * at QUIT, smtp_gtml_free when the session ends; smtp_gtml_open/close for the
 * server (NULL context: the service is off and GTML is refused as a local fault).
 */
#ifndef FERRY_SMTP_GTML_H
#define FERRY_SMTP_GTML_H

#include <stddef.h>

struct smtp_session;
struct ferry_config;
struct dmtp_cmd;
struct smtp_gtml_ctx;

#define GTML_PER_SESSION 100

/* The key and held/ (NULL with err when either cannot be opened). */
struct smtp_gtml_ctx *smtp_gtml_open(const struct ferry_config *cfg, char *err, size_t errlen);
void smtp_gtml_close(struct smtp_gtml_ctx *g);

/* A GTML command line (no CRLF): parsed, then smtp_gtml_serve. */
void smtp_gtml_command(struct smtp_session *s, const char *line, size_t len);
/* A parsed GTML (the smtp_gtml_fn the receiving side's dispatcher calls when
   pull_mode = on, smtpd/smtp_dmtp.h; arg unused). Replies itself. */
void smtp_gtml_serve(struct smtp_session *s, const struct dmtp_cmd *cmd, void *arg);
/* The session got QUIT: a pull that was served completely counts now. */
void smtp_gtml_quit(struct smtp_session *s);
/* The session ends: cancel a lookup in progress, free the request. */
void smtp_gtml_free(struct smtp_session *s);

#endif

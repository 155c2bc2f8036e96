/*
 * smtp_session_int — what smtp_session.c shares with the files that implement
 * parts of the session (smtp_bdat.c). Not for anyone else: these work on a live
 * session inside the event loop and assume its invariants.
 */
#ifndef FERRY_SMTP_SESSION_INT_H
#define FERRY_SMTP_SESSION_INT_H

#include <stdbool.h>

#include "smtpd/smtp_cmd.h"
#include "smtpd/smtp_session.h"

struct evbuffer;

void smtp_session_reply(struct smtp_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* End the session once the reply just queued has been written (state CLOSING). */
void smtp_session_close_after_reply(struct smtp_session *s);
/* Drop the transaction (draft, envelope, counters); the state is the caller's. */
void smtp_session_reset_transaction(struct smtp_session *s);
/* Open the spool draft and write the Received: header. NULL ok; otherwise the
   reply to give (nothing is sent: BDAT must read its chunk first). */
const char *smtp_session_begin_message(struct smtp_session *s);
/* Append message octets to the draft (counted against message_size_limit). */
void smtp_session_spool_bytes(struct smtp_session *s, const char *p, size_t n);
/* Message content from the client: through receive-time policy, then spooled. */
void smtp_session_content(struct smtp_session *s, const char *p, size_t n);
/* The message is complete: judge s->data's flags, size and write errors, then
   refuse it (state READY) or hand it to the group commit (state COMMIT). */
void smtp_session_finish_message(struct smtp_session *s);
/* The timeout for waiting on a command (false) or on message octets (true). */
void smtp_session_timeouts(struct smtp_session *s, bool data);

/* Say 220 now (or what smtp_dmtp_may_greet decides). */
void smtp_session_greet(struct smtp_session *s);
/* Greet (after greeting_delay, when set). */
void smtp_session_begin_greeting(struct smtp_session *s);
/* Install bev as the session's connection (callbacks, limits, timeouts). */
void smtp_session_attach(struct smtp_session *s, struct bufferevent *bev);

/* The command timeout passed: 421, then close. */
void smtp_session_timed_out(struct smtp_session *s);

/* Reading was paused (CHECK, AUTH_WAIT): read and answer what is buffered. */
void smtp_session_resume(struct smtp_session *s);

/* smtp_auth.c */
bool smtp_auth_offered(const struct smtp_session *s);
void smtp_auth_command(struct smtp_session *s, const struct smtp_cmd *cmd);
void smtp_auth_line(struct smtp_session *s, const char *line, size_t len);
void smtp_auth_free(struct smtp_session *s);

/* smtp_tls.c */
void smtp_tls_starttls(struct smtp_session *s, const struct smtp_cmd *cmd);
/* The handshake finished (BEV_EVENT_CONNECTED while in HANDSHAKE). */
void smtp_tls_established(struct smtp_session *s);
/* The handshake failed: log why. */
void smtp_tls_failed(struct smtp_session *s);
/* Free a TLS connection so its last records still reach the client. */
void smtp_tls_close(struct smtp_session *s);

/* smtp_bdat.c */
void smtp_bdat_command(struct smtp_session *s, const struct smtp_cmd *cmd);
/* Read what is buffered of the current chunk; true once all of it is read. */
bool smtp_bdat_read(struct smtp_session *s, struct evbuffer *in);
/* The chunk is read: answer it and move on. */
void smtp_bdat_chunk_done(struct smtp_session *s);

/* smtp_limits.c: session counts, junk commands and the idle-session limit. */
/* At connect (s already linked in): NULL, or which limit s is over, with the
   reply's detail ("" or " from your address") in *detail. */
const char *smtp_limits_connect(const struct smtp_session *s, const char **detail);
/* The client is in relay_networks and relay_networks_limit_exempt is on: no
   max_connections_per_ip, no max_connection_rate for it. */
bool smtp_limits_exempt(const struct smtp_session *s);
/* Arm smtp_idle_session_limit. 0 ok, -1 out of memory. */
int  smtp_limits_start(struct smtp_session *s);
/* Does this verb count as junk whatever its reply? */
bool smtp_limits_junk_verb(enum smtp_verb verb);
/* A command line has been answered: count it when junk (s->cmd_junk, or an
   error reply in s->reply_class; the reader clears both before each line). */
void smtp_limits_count(struct smtp_session *s);
/* A transaction completed (a message queued): both limits start afresh. */
void smtp_limits_transaction_done(struct smtp_session *s);
/* Over a limit now? Then say 421, close, and return true. */
bool smtp_limits_enforce(struct smtp_session *s);
void smtp_limits_free(struct smtp_session *s);

#endif

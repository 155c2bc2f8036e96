/*
 * smtp_trace — a session's full transcript in a file, for interop testing.
 *
 * When a listener has tracing on, each session writes DIR/<session-id>.trace:
 * one line per event, "<seconds.micro> <dir> <text>", where dir is "C:" (client
 * line), "S:" (server reply line), "D:" (message content, after dot-unstuffing
 * for DATA or as sent for BDAT) or "*:" (a note: TLS established, connection
 * closed, ...). Non-printable octets are written as \xHH so the file stays one
 * line per event whatever the client sends.
 *
 * Secrets never reach the file: the initial response of "AUTH <mech> <resp>" and
 * every line the caller marks secret (the client's side of a SASL exchange) are
 * written as "***". Message content is traced up to max_data octets per session,
 * then noted as cut. Write errors disable the trace (logged once) and never
 * disturb the session: a transcript is a diagnostic, not a duty.
 */
#ifndef FERRY_SMTP_TRACE_H
#define FERRY_SMTP_TRACE_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_trace;

/* Creates DIR/<id>.trace (mode 0600, never following a symlink, never replacing a
   file). NULL with err set when it cannot. */
struct smtp_trace *smtp_trace_open(const char *dir, const char *id, unsigned long long max_data,
                                   char *err, size_t errlen);
void smtp_trace_client(struct smtp_trace *t, const char *line, size_t len, bool secret);
void smtp_trace_server(struct smtp_trace *t, const char *line, size_t len);
void smtp_trace_data(struct smtp_trace *t, const char *bytes, size_t len);
void smtp_trace_note(struct smtp_trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Flushes and closes; t may be NULL. */
void smtp_trace_close(struct smtp_trace *t);

#endif

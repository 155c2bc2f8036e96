/*
 * smtp_park — idle sessions' connections handed to a holder process when the
 * smtp process nears its descriptor limit (smtpd/conn_holder.h).
 *
 * A connection costs the smtp process a descriptor, and RLIMIT_NOFILE's hard
 * limit caps descriptors per process; a mail administrator who may not raise
 * it (a container) still expects smtp_max_sessions to hold. Below the
 * threshold (smtp_park_above sessions not parked; 0: half the descriptor
 * limit) nothing here runs. Above it, a sweep every quarter second parks, down
 * to three quarters of the threshold, sessions that
 *   - wait for a command (INIT, READY, MAIL, RCPT), silent for PARK_IDLE_SECONDS,
 *   - have nothing buffered either way (TLS records included) and nothing in
 *     flight (no timer but the limits', no lookup, no AUTH question, no draft).
 * A parked session keeps all its state, TLS session included; only its socket
 * is in the holder. It comes back when its client sends anything or closes,
 * when its command timeout (smtp_timeout, counted from its last input) or
 * smtp_idle_session_limit fires, and a session that ends while parked (the
 * daemon stopping) is dropped: the holder closes the connection without a 421.
 * The holder starts with the smtp process (while it is small: see
 * smtp_park_start). If it dies, its sessions end; a sweep at least
 * HOLDER_RESTART_SECONDS later starts a new one.
 */
#ifndef FERRY_SMTP_PARK_H
#define FERRY_SMTP_PARK_H

#include <stdbool.h>
#include <stddef.h>

struct smtp_server;
struct smtp_session;
struct smtp_park;

#define PARK_IDLE_SECONDS 1.0

/* fd_limit: the process's RLIMIT_NOFILE. NULL: out of memory (nothing parks). */
struct smtp_park *smtp_park_new(struct smtp_server *srv, unsigned long long fd_limit);
/* Take the descriptor reserve and start the holder: once the listeners exist
   and the smtp process is confined (the holder inherits its Landlock domain),
   before any session does. */
void smtp_park_start(struct smtp_park *p);
/* Every session must be gone: closes the link, and the holder ends. */
void smtp_park_free(struct smtp_park *p);
/* One more active session (a connection, or one back from the holder): start
   sweeping when over the threshold. */
void smtp_park_note_active(struct smtp_server *srv);
/* The session ends while parked: the holder closes its connection. */
void smtp_park_session_gone(struct smtp_session *s);
/* A parked session's limit timer fired (smtp_limits.c): it is called back once
   its connection is here again. */
void smtp_park_wake_for_limits(struct smtp_session *s);
/* Refill the descriptors kept for connections coming back; false while that
   cannot be done (accepting must wait: returns go first). */
bool smtp_park_reserve_full(struct smtp_park *p);
/* Sessions parked now. */
size_t smtp_park_count(const struct smtp_park *p);

#endif

/*
 * pull_tls — opportunistic STARTTLS (RFC 3207) for the DMTP pull client.
 *
 * A pull carries a whole message across the Internet, as a push does, so it is
 * encrypted whenever the holder offers STARTTLS, at the level remote delivery
 * calls `may`: any certificate is accepted (the holder is reached by the address
 * that handed us the msid, not by a name we could verify), the outcome is logged
 * and noted in the pulled message's Received: field. A handshake that fails
 * makes the caller retry that notice once in plaintext (as `may` does for
 * remote delivery), never in a loop.
 *
 * pull_tls_start checks that nothing arrived after the 220 to STARTTLS (a
 * command injected before the handshake would be read as if it came over TLS)
 * and wraps the connection; the new bufferevent replaces the old one, which it
 * owns. pull_tls_describe formats the outcome once the handshake is done.
 */
#ifndef FERRY_QUEUE_PULL_TLS_H
#define FERRY_QUEUE_PULL_TLS_H

#include <stddef.h>

#include <event2/bufferevent.h>
#include <openssl/ssl.h>

/* 0: *bev is now the TLS filter over the old connection. -1 with err set: *bev
   is unchanged, or NULL when libevent failed half-way (out of memory only; the
   old connection may be gone with it, so it is forgotten, not freed). */
int pull_tls_start(struct event_base *base, struct bufferevent **bev, SSL_CTX *ctx, const char *sni, char *err,
                   size_t errlen);
/* After the handshake: the log line ("TLS=TLSv1.3 cipher=... peer=... auth=none
   unverified (...)") and, for the Received: field, protocol and cipher only (the
   names OpenSSL gives; nothing the holder chose to write). */
void pull_tls_describe(struct bufferevent *tls, char *log_line, size_t logsz, char *trace, size_t tracesz);
/* Why the handshake failed, for the log. */
void pull_tls_error(struct bufferevent *tls, char *out, size_t outsz);

#endif

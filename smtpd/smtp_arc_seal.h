/*
 * smtp_arc_seal — the ARC set (RFC 8617 §5.1) the smtp process adds to port-25 mail
 * it will forward to a remote destination: the AAR is Ferry's own
 * Authentication-Results value for the message, the AMS and AS are signed with a
 * key of arc_seal_domain through the key process (smtpd/keyproc.h; this process
 * holds no private key), and cv= is what the receive-time ARC verification found.
 *
 * Why at intake (RFC-NOTES.md, "ARC", "Where sealing happens"): the
 * Authentication-Results and the chain result exist here and nowhere else, the key
 * process serves this process alone, and a sealed message is committed before the
 * 250, so every later attempt sends the same sealed octets. Whether a message will
 * be forwarded is decided per recipient at RCPT (smtp_arc_seal_rcpt): a relayed
 * recipient (relay_domains), or a local one whose alias or virtual expansion
 * reaches a remote address or an include file (which the smtp process does not
 * read). One such recipient makes the whole message sealed, local copies
 * included (§5.1.5: sealing is always safe).
 *
 * Who calls it: smtp_session (RCPT), smtp_dkim_dmarc (the stream and the end).
 * Failure modes: no key of arc_seal_algorithm for arc_seal_domain, a message ARC
 * cannot seal (two From fields, 50 sets, a newest cv=fail): not sealed, logged,
 * delivered. The key process unreachable: -1, the message is deferred (451) like
 * a message that cannot be DKIM-signed, so it never leaves without the seal the
 * next hop may need.
 */
#ifndef FERRY_SMTP_ARC_SEAL_H
#define FERRY_SMTP_ARC_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/arc.h"
#include "lib/buf.h"

struct smtp_server;
struct smtp_session;

/* Is this session's mail sealed when forwarded: arc_seal on, a key directory,
   DKIM verification on (the AAR needs Ferry's results), a stranger on port 25? */
bool smtp_arc_seal_session(const struct smtp_session *s);
/* At RCPT, for an accepted recipient: does it make the message one to seal?
   relayed: relay_decide said RELAY_INBOUND; otherwise addr is a local address. */
bool smtp_arc_seal_rcpt(struct smtp_session *s, bool relayed, const char *addr);

struct smtp_arc_seal;
/* NULL when out of memory (the message is then not sealed; logged). */
struct smtp_arc_seal *smtp_arc_seal_new(struct smtp_server *srv, const char *log_id);
/* The header section as it is stored (copied; at most POLICY_HEADER_MAX octets). */
void smtp_arc_seal_header(struct smtp_arc_seal *a, const char *hdr, size_t len);
/* Body octets (after the empty line), hashed as they pass. */
void smtp_arc_seal_body(struct smtp_arc_seal *a, const char *p, size_t n);
/* ar: the value of our Authentication-Results field ("authserv-id; ..."); cv:
   the verification's chain status. The ARC set (AS, AMS, AAR; CRLF) is appended
   to out. 0 sealed or not to be sealed (logged), -1 the key process cannot sign
   now. */
int smtp_arc_seal_finish(struct smtp_arc_seal *a, const char *ar, enum arc_cv cv, struct buf *out);
void smtp_arc_seal_free(struct smtp_arc_seal *a);

#endif

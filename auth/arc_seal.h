/*
 * arc_seal — adding the next ARC set (RFC 8617 §5.1) to a message: the AAR (from the
 * sealer's own Authentication-Results), the AMS and the AS with the cv= the caller's
 * verification found.
 *
 * Who calls it: ferryctl arc sign, tests, and the smtp process for port-25 mail it
 * will forward (smtpd/smtp_arc_seal.h), which streams the body through a sealer.
 * Signing goes through dkim_sign_compute_b, the entry point the DKIM signer uses, so
 * a change in where keys live (a key process signing digests over IPC) applies to
 * both. Both the AMS and the AS are relaxed/relaxed, rsa-sha256 or ed25519-sha256
 * by the key. A message whose newest ARC-Seal says cv=fail is left alone (§5.1 step
 * 2: returns 1). Failure modes (-1 with one sentence in err): a message without
 * exactly one From field, a header block we cannot split, a chain that already has
 * ARC_SETS_MAX sets, an OpenSSL or key-process failure.
 */
#ifndef FERRY_ARC_SEAL_H
#define FERRY_ARC_SEAL_H

#include "auth/arc.h"
#include "auth/dkim_sign.h"
#include "lib/buf.h"

#include <stdint.h>

/* ar: the sealer's Authentication-Results value ("authserv-id; method=result ...").
   cv: the chain status as this sealer verified it (ARC_CV_NONE when the message has
   no chain). Appends the three fields (CRLF line ends, newest first: AS, AMS, AAR)
   to out, to be prepended to the message. 0 sealed, 1 not to be sealed (err says
   why), ARC_SEAL_SIGN_FAILED when a signature could not be made (the key process
   may be back later), -1 for any other failure. */
#define ARC_SEAL_SIGN_FAILED (-2)
int arc_seal_message(const struct dkim_sign_key *k, const char *ar, enum arc_cv cv, int64_t now,
                     const char *msg, size_t len, struct buf *out, char *err, size_t errsz);

/* The same in a stream: new, the body (after the empty line) in chunks of any
   size, hashed relaxed as it passes and never kept, then finish once with the
   header section as it will be sent (hdr[0..hlen), the fields the AMS signs and
   every ARC field). new returns NULL when out of memory. */
struct arc_sealer;
struct arc_sealer *arc_sealer_new(void);
void arc_sealer_body(struct arc_sealer *s, const char *p, size_t n);
int arc_sealer_finish(struct arc_sealer *s, const struct dkim_sign_key *k, const char *ar, enum arc_cv cv,
                      int64_t now, const char *hdr, size_t hlen, struct buf *out, char *err, size_t errsz);
void arc_sealer_free(struct arc_sealer *s);

#endif

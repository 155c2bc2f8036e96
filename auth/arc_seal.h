/*
 * arc_seal — adding the next ARC set (RFC 8617 §5.1) to a message: the AAR (from the
 * sealer's own Authentication-Results), the AMS and the AS with the cv= the caller's
 * verification found.
 *
 * Who calls it: ferryctl arc sign, tests; the forwarding path when it is wired.
 * Signing goes through dkim_sign_compute_b, the entry point the DKIM signer uses, so
 * a change in where keys live (a key process signing digests over IPC) applies to
 * both. Both the AMS and the AS are relaxed/relaxed, rsa-sha256 or ed25519-sha256
 * by the key. Failure modes (-1 with one sentence in err): a message without exactly
 * one From field, a header block we cannot split, a chain that already has
 * ARC_SETS_MAX sets, an OpenSSL failure.
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
   to out, to be prepended to the message. */
int arc_seal_message(const struct dkim_sign_key *k, const char *ar, enum arc_cv cv, int64_t now,
                     const char *msg, size_t len, struct buf *out, char *err, size_t errsz);

#endif

/*
 * msid — DMTP message identifiers made and checked by the sending side (draft -03
 * §3.6; RFC-NOTES.md "DMTP"), and the keyed tokens the receiving side derives from
 * the same secret (the notices' H).
 *
 * An msid is "QID-EXPIRY-MAC": the queue ID (1..32 of [0-9A-Za-z]), the expiry as 10
 * upper-case hex digits of Unix time, and 26 base32hex characters of
 * HMAC-SHA-256(K, "ferry-msid-1", qid, expiry, RMTA IP) cut to 128 bits. It names
 * the held message without a lookup, is unguessable without K, and is bound to the
 * IP it was handed to; it carries only characters safe in an SMTP command.
 * msid_check compares in constant time, then checks expiry; the caller decides
 * which IP the msid must be bound to (the requester's, or the one the held envelope
 * recorded when the requester is an MX of the receiver's domain).
 *
 * K is 32 random bytes in data_dir/dmtp.key, created 0600 on first use (atomically:
 * two processes starting together end up with the same key); a key file another
 * user could read, or of the wrong size, is refused. No sockets, no global state.
 */
#ifndef FERRY_MSID_H
#define FERRY_MSID_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#define MSID_KEY_LEN   32
#define MSID_QID_MAX   32
#define MSID_MAC_CHARS 26
#define MSID_TEXT_MAX  (MSID_QID_MAX + 1 + 10 + 1 + MSID_MAC_CHARS)
#define MSID_KEY_FILE  "dmtp.key"

struct msid_key {
    unsigned char k[MSID_KEY_LEN];
};

enum msid_status { MSID_OK, MSID_MALFORMED, MSID_BAD_MAC, MSID_EXPIRED };

/* Read data_dir/dmtp.key, creating it when absent. 0 ok; -1 with err. */
int msid_key_load(const char *data_dir, struct msid_key *key, char *err, size_t errlen);

/* The msid for queue id qid handed to rmta, valid until expiry. Length written
   (NUL excluded), or -1 when qid is not 1..32 of [0-9A-Za-z], expiry is out of
   range, rmta is not IPv4/IPv6, or outsz < MSID_TEXT_MAX + 1. */
int msid_make(const struct msid_key *key, const char *qid, const struct sockaddr *rmta, time_t expiry, char *out,
              size_t outsz);

/* Check msid (NUL-terminated) bound to `bound` at time now. On MSID_OK (and on
   MSID_EXPIRED, for the log) qid and *expiry are filled. */
enum msid_status msid_check(const struct msid_key *key, const char *msid, const struct sockaddr *bound, time_t now,
                            char qid[MSID_QID_MAX + 1], time_t *expiry);

const char *msid_status_name(enum msid_status s);

/* nchars (1..51) base32hex characters of HMAC-SHA-256(K, label, part[0], ...,
   part[n-1]), each part length-prefixed so no two inputs collide; out gets
   nchars + NUL. For tokens other modules derive (notice H). */
void msid_token(const struct msid_key *key, const char *label, const char *const *parts, size_t nparts, char *out,
                size_t nchars);

/* Constant-time equality of two NUL-terminated strings of public length. */
bool msid_text_equal(const char *a, const char *b);

#endif

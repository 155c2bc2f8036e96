/*
 * keyproc — the key process: the only process that opens DKIM private keys.
 *
 * The parent forks it (as root when ferryd runs as root); it chroots into
 * dkim_key_dir, drops every capability (lib/caps.h: it keeps root's uid only to
 * read root's 0600 key files by owner permission) and sets no_new_privs, keeps no
 * descriptor but its parent channel and its link, and answers two fixed-size
 * requests, one datagram each:
 *
 *   KEYPROC_INFO  (domain, selector)          -> algorithm and the public record text
 *   KEYPROC_SIGN  (domain, selector, algo, SHA-256 digest) -> the signature
 *   KEYPROC_PROMOTE (domain, selector)     -> the rotation switch: the selector
 *                 root's DIR/<domain>/next names replaces the active one of its
 *                 algorithm in `active`, and `next` goes (dkim_keystore.h). The key
 *                 process writes these files, so no other user needs write access
 *                 to the key directory, and the smtp user can neither remove nor
 *                 replace a key.
 *
 * It never sees a message, only 32-octet digests. The link is one end of a
 * SOCK_SEQPACKET socketpair the parent made before forking either side (no name
 * in any namespace: nobody else can connect, nobody can take its place), held by
 * the parent for the daemon's life so a restarted key or smtp process takes over
 * the same socket; requests carry an id, and a reply to any other id (one meant
 * for a predecessor) is dropped. Keys are read from DIR/<domain>/<selector>.key
 * (no link followed, one link only, a regular file, root's and writable by no one
 * else) and cached until the file changes, so `ferryctl dkim keygen|rotate` needs
 * no restart.
 *
 * The client (keyclient_*) is used by the smtp process: a round-trip is
 * synchronous but bounded by KEYPROC_TIMEOUT_MS (the key process is local and
 * does one signature per request, about a millisecond for RSA-2048). After a
 * timeout the client does not ask again for KEYPROC_BACKOFF_SECONDS: every
 * request in that time fails at once (a circuit breaker), so a stopped key
 * process costs the event loop one timeout, not one per message; when the parent
 * starts a new key process it tells the smtp process, which closes the breaker at
 * once (keyclient_reset). A message that
 * cannot be signed is deferred with 451, never sent unsigned.
 */
#ifndef FERRY_KEYPROC_H
#define FERRY_KEYPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "auth/dkim_sign.h"

#define KEYPROC_TIMEOUT_MS 2000
#define KEYPROC_BACKOFF_SECONDS 5
#define KEYPROC_SIG_MAX 1024        /* RSA up to 8192 bits */
#define KEYPROC_REC_MAX 2048

enum keyproc_op { KEYPROC_INFO = 1, KEYPROC_SIGN = 2, KEYPROC_PROMOTE = 3 };

struct keyproc_req {
    uint64_t id;
    uint32_t op;
    uint32_t algo;                  /* enum dkim_algo, SIGN only */
    char domain[256];
    char selector[64];
    unsigned char digest[32];       /* SIGN only */
};

struct keyproc_rep {
    uint64_t id;                    /* the request's */
    int32_t status;                 /* 0 ok, -1 refused or failed (text holds why) */
    uint32_t algo;
    uint32_t len;                   /* of data: the signature, or the record text */
    unsigned char data[KEYPROC_REC_MAX];
};

/* The key process: serves on fd (its end of the link) until parent_fd closes.
   Returns the exit status. */
int keyproc_main(const char *key_dir, int parent_fd, int fd);

struct keyclient;
/* fd: the smtp process's end of the link (taken). */
struct keyclient *keyclient_new(int fd);
void keyclient_free(struct keyclient *kc);
/* A new key process is up (the parent says so): close the circuit breaker. */
void keyclient_reset(struct keyclient *kc);
/* The algorithm of a key and its public record text; -1 with err when the key
   process refused (no such key), -2 when it could not be asked. */
int keyclient_info(struct keyclient *kc, const char *domain, const char *selector, enum dkim_algo *algo,
                   char *rec, size_t recsz, char *err, size_t errsz);
/* Ask the key process to switch domain to selector (KEYPROC_PROMOTE). 0, or
   -1 with err. */
int keyclient_promote(struct keyclient *kc, const char *domain, const char *selector, char *err, size_t errsz);
/* A dkim_sign_digest_fn; ctx is the keyclient. */
int keyclient_sign(void *ctx, const struct dkim_sign_key *k, const unsigned char md[32], unsigned char *sig,
                   size_t *siglen);

#endif

/*
 * keyproc — the key process: the only process that opens DKIM private keys.
 *
 * The parent forks it (as root when ferryd runs as root); it chroots into
 * dkim_key_dir, sets no_new_privs, keeps no descriptor but its parent channel and
 * its socket, and answers two fixed-size requests, one datagram each, over a
 * SOCK_SEQPACKET socket in the abstract namespace named after the parent's pid:
 *
 *   KEYPROC_INFO  (domain, selector)          -> algorithm and the public record text
 *   KEYPROC_SIGN  (domain, selector, algo, SHA-256 digest) -> the signature
 *
 * It never sees a message, only 32-octet digests. A peer is served only when its
 * SO_PEERCRED uid is the smtp process's user; the client in turn talks only to a
 * server whose uid is root or its own. Keys are read from DIR/<domain>/<selector>.key
 * (no link followed, one link only, a regular file) and cached until the file
 * changes, so `ferryctl dkim keygen|rotate` needs no restart.
 *
 * The client (keyclient_*) is used by the smtp process: a round-trip is
 * synchronous but bounded by KEYPROC_TIMEOUT_MS (the key process is local and
 * does one signature per request, about a millisecond for RSA-2048); on a timeout
 * or a dead key process the call fails, the socket is dropped and the next call
 * reconnects (the parent restarts the key process within a second). A message that
 * cannot be signed is deferred with 451, never sent unsigned.
 */
#ifndef FERRY_KEYPROC_H
#define FERRY_KEYPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "auth/dkim_sign.h"

#define KEYPROC_TIMEOUT_MS 2000
#define KEYPROC_SIG_MAX 1024        /* RSA up to 8192 bits */
#define KEYPROC_REC_MAX 2048

enum keyproc_op { KEYPROC_INFO = 1, KEYPROC_SIGN = 2 };

struct keyproc_req {
    uint32_t op;
    uint32_t algo;                  /* enum dkim_algo, SIGN only */
    char domain[256];
    char selector[64];
    unsigned char digest[32];       /* SIGN only */
};

struct keyproc_rep {
    int32_t status;                 /* 0 ok, -1 refused or failed (text holds why) */
    uint32_t algo;
    uint32_t len;                   /* of data: the signature, or the record text */
    unsigned char data[KEYPROC_REC_MAX];
};

/* The key process: serves until parent_fd closes. client_uid is whom it serves
   (the smtp user when root, else its own uid). Returns the exit status. */
int keyproc_main(const char *key_dir, int parent_fd, uid_t client_uid);

struct sockaddr_un;
/* The key socket's address for the parent server_pid; returns its length. */
socklen_t keyproc_addr(pid_t server_pid, struct sockaddr_un *sa);

struct keyclient;
/* server_pid names the socket (the parent's pid). */
struct keyclient *keyclient_new(pid_t server_pid);
void keyclient_free(struct keyclient *kc);
/* The algorithm of a key and its public record text; -1 with err when the key
   process refused (no such key), -2 when it could not be asked. */
int keyclient_info(struct keyclient *kc, const char *domain, const char *selector, enum dkim_algo *algo,
                   char *rec, size_t recsz, char *err, size_t errsz);
/* A dkim_sign_digest_fn; ctx is the keyclient. */
int keyclient_sign(void *ctx, const struct dkim_sign_key *k, const unsigned char md[32], unsigned char *sig,
                   size_t *siglen);

#endif

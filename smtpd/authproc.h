/*
 * authproc — the auth process: the only process that reads the user database's
 * secrets (users.db in auth_dir: the salt, iteration count, SCRAM StoredKey and
 * ServerKey of each AUTH user), and the smtp process's client of it.
 *
 * Why a process of its own and not the key process: the two hold different
 * secrets with different lifetimes (files root made once, a database ferryctl
 * changes while the daemon runs); the key process is chrooted into dkim_key_dir
 * and the auth process must be in auth_dir's Berkeley DB environment, so sharing
 * one would widen each one's view to both directories; and either may be off
 * (no dkim_key_dir; no users) without the other.
 *
 * The parent forks it (as root when ferryd runs as root). It opens the
 * environment in auth_dir (0700, root's), chroots there, drops every capability
 * and sets no_new_privs, and answers the questions of auth/sasl.h (a password to
 * check, SCRAM parameters, a SCRAM proof) with auth/sasl_verify.h, one datagram
 * each way. It parses no SMTP and no SASL: the smtp process does that and sends
 * only the fixed-format question below.
 *
 * The channel is one end of a SOCK_SEQPACKET socketpair the parent made before
 * forking either side and keeps open for the daemon's life: no name anyone could
 * squat or connect to, and when either side is restarted the new one takes over
 * the same socket. So every request carries an id; the client keeps the ids it is
 * waiting for and drops any other reply (one meant for a predecessor).
 *
 * The client (authclient_*) runs on the smtp process's event loop and never
 * waits: authclient_ask sends and returns; the answer comes as a callback, or a
 * verdict of ok = -1 after AUTHPROC_TIMEOUT_MS (a stopped or dead auth process),
 * which the session answers with 454 4.7.0.
 */
#ifndef FERRY_AUTHPROC_H
#define FERRY_AUTHPROC_H

#include <stddef.h>
#include <stdint.h>

#include "auth/sasl.h"

#define AUTHPROC_TIMEOUT_MS 5000
#define AUTHPROC_DATA_MAX SASL_AUTH_MESSAGE_MAX

struct authproc_req {
    uint64_t id;
    uint32_t q;                                 /* enum sasl_question */
    uint32_t len;                               /* of data */
    char user[SASL_USER_MAX + 1];
    unsigned char proof[CRED_KEY_LEN];
    unsigned char data[AUTHPROC_DATA_MAX];      /* sent only up to len */
};
#define AUTHPROC_REQ_HDR offsetof(struct authproc_req, data)

struct authproc_rep {
    uint64_t id;
    int32_t ok;                                 /* 1, 0 (reason says why) */
    uint32_t iterations;
    uint32_t salt_len;
    unsigned char salt[CRED_SALT_LEN];
    unsigned char server_sig[CRED_KEY_LEN];
    char reason[96];
};

/* The auth process: serves on fd until parent_fd closes. Returns the exit status. */
int authproc_main(const char *auth_dir, int parent_fd, int fd);

struct event_base;
struct authclient;
typedef void (*authclient_cb)(void *arg, const struct sasl_verdict *v);

/* Takes fd (the socketpair end). NULL when out of memory. */
struct authclient *authclient_new(struct event_base *base, int fd);
void authclient_free(struct authclient *ac);
/* Ask q; cb(arg, verdict) comes later, from the event loop, exactly once unless
   cancelled. Returns a handle for authclient_cancel, or 0 when it could not be
   sent (then cb has not been and will not be called). */
uint64_t authclient_ask(struct authclient *ac, const struct sasl_request *q, authclient_cb cb, void *arg);
/* The asker went away (its session ended): its callback will not come. */
void authclient_cancel(struct authclient *ac, uint64_t handle);

#endif

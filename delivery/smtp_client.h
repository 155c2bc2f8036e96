/*
 * smtp_client — an outbound SMTP session over libevent bufferevents, never
 * blocking: one transaction (one message, its recipients at one destination),
 * then, when the caller has more for the same destination, further transactions
 * on the same connection (smtp_client_next). Called by the queue process once
 * delivery/mx.h has produced the list of addresses to try.
 *
 * The session (RFC 5321 client side):
 *  - Connects to each target in order (connect timeout, optional source address
 *    bound when its family matches the target's) until one greets with 2xx and
 *    accepts EHLO, or HELO after a 5xx to EHLO.
 *  - TLS, as the caller's hooks decide per target (smtp_tls_hooks): STARTTLS
 *    when offered (MAY) or required (MUST), or TLS from the first octet
 *    (IMPLICIT, RFC 8314). After the handshake the hooks judge the peer (policy,
 *    DANE, verification); a judged-bad peer is a temporary failure of that
 *    target. Under MAY a handshake that fails is retried once on the same target
 *    in plain text (a broken TLS stack must not stop mail that may go in the
 *    clear). EHLO is sent again over TLS and the first answer forgotten.
 *  - AUTH (PLAIN, else LOGIN) when credentials are given, and only over TLS:
 *    credentials never go out in the clear. A refusal is temporary (4.7.0): a
 *    wrong password is the sender's administrator's problem, not the
 *    recipient's.
 *  - Checks the message against the peer's extensions before MAIL: a SIZE limit
 *    smaller than the message fails it (5.3.4); an 8-bit body to a peer without
 *    8BITMIME fails (5.6.3: Ferry does not downgrade to 7 bit, see RFC-NOTES.md);
 *    an SMTPUTF8 message to a peer without SMTPUTF8 fails (5.6.7); a REQUIRETLS
 *    message needs verified TLS (5.7.10) and the peer's REQUIRETLS (5.7.30). Such a
 *    mismatch, like any failure before MAIL, moves on to the next target.
 *  - MAIL, RCPTs and DATA in one write when the peer offers PIPELINING, one at a
 *    time otherwise; DSN parameters only to a peer offering DSN.
 *  - DMTP: MSID instead of DATA to a peer that asks for it (smtp_dmtp_hooks);
 *    the recipients it accepts are OK with a text saying they are held for pull.
 *  - The body is read from msg_fd (pread from offset 0, in chunks) and sent
 *    dot-stuffed with CRLF line ends (smtp_cmds.h).
 *  - QUIT, and the completion callback.
 *
 * Results: each recipient gets OK, DEFER or FAIL with a text that starts with an
 * enhanced status code and quotes the server ("5.1.1 host mx.example[192.0.2.1]
 * said: 550 5.1.1 no such user (in reply to RCPT TO)"); the server's reply itself
 * is kept verbatim (flattened to one line) for the DSN's Diagnostic-Code. A RCPT
 * answered 2xx takes the reply to the end of data (or to DATA when that fails).
 * Once MAIL is sent the transaction's outcome is final for this attempt: a lost
 * connection or a timeout defers the recipients still open (4.4.2), and no other
 * target is tried (the peer may have the message already). When every target
 * failed before MAIL, all recipients get the last failure: permanent only when
 * every target's failure was permanent, temporary otherwise.
 *
 * Timeouts are RFC 5321 §4.5.3.2's by default; tests shorten them. The process
 * ignores SIGPIPE (the daemon's processes do), since a peer may close at any time.
 *
 * Reuse: after each transaction the callback learns whether the session can
 * carry another (result.session_open: the transaction ended in step with the
 * server). From inside the callback the caller may start the next transaction
 * with smtp_client_next (RSET first when the last one did not finish); the
 * capability checks above then fail that message alone (the connection stays).
 * Otherwise the client sends QUIT and frees itself. A reused connection that
 * breaks before MAIL is sent reports result.not_attempted: every recipient is
 * DEFER but the message was never offered, so the caller may retry it at once
 * on a new connection.
 *
 * Ownership: the client copies the parameters it needs except env (and its
 * recipients) and msg_fd, which the caller keeps valid until the callback, and
 * the TLS hooks' arg, valid until the session ends. The callback runs exactly
 * once per transaction, from the event loop, never inside smtp_client_start or
 * smtp_client_next, unless smtp_client_cancel is called first; the result is
 * valid only during the callback.
 */
#ifndef FERRY_SMTP_CLIENT_H
#define FERRY_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "delivery/delivery.h"
#include "delivery/mx.h"
#include "lib/envelope.h"

struct event_base;
typedef struct ssl_st SSL;

/* Recipients per transaction: RFC 5321 §4.5.3.1.8 has servers take at least 100;
   a caller with more starts another transaction for the rest. */
#define SMTP_CLIENT_MAX_RCPTS  1000
#define SMTP_CLIENT_REPLY_MAX  400

/* Milliseconds each. */
struct smtp_timeouts {
    unsigned connect;       /* TCP connect (not in the RFC; 30 s) */
    unsigned greeting;      /* 5 min, §4.5.3.2.1 */
    unsigned helo;          /* EHLO/HELO: 5 min, as for MAIL */
    unsigned mail;          /* 5 min, §4.5.3.2.2 */
    unsigned rcpt;          /* 5 min, §4.5.3.2.3 */
    unsigned data_init;     /* 2 min, §4.5.3.2.4 */
    unsigned data_block;    /* 3 min per send that makes no progress, §4.5.3.2.5 */
    unsigned data_final;    /* 10 min, §4.5.3.2.6 */
    unsigned quit;          /* the reply to QUIT: 1 min */
};

void smtp_timeouts_default(struct smtp_timeouts *t);

enum smtp_tls_mode {
    SMTP_TLS_OFF,           /* never STARTTLS */
    SMTP_TLS_MAY,           /* STARTTLS when offered, plain text otherwise */
    SMTP_TLS_MUST,          /* STARTTLS or nothing: a peer without it fails (4.7.4) */
    SMTP_TLS_IMPLICIT       /* TLS from the first octet (RFC 8314 submissions port) */
};

struct smtp_tls_hooks {
    /* The TLS this target (index into params.targets) needs. */
    enum smtp_tls_mode (*mode)(void *arg, size_t target);
    /* A new client SSL for the target (SNI, DANE records, verification set up);
       NULL with err filled when it cannot be made. */
    SSL *(*new_ssl)(void *arg, size_t target, char *err, size_t errsz);
    /* After the handshake: may the session go on with this peer? desc gets a
       line for the log and the result ("TLSv1.3 ... dane-ee verified");
       *verified whether the peer was authenticated (REQUIRETLS needs it). */
    bool (*judge)(void *arg, size_t target, SSL *ssl, bool *verified, char *desc, size_t descsz);
    void *arg;
    /* Optional (NULL: none): the target's mode asked for TLS and the server did
       not offer STARTTLS or refused it (TLS-RPT's starttls-not-supported). */
    void (*no_starttls)(void *arg, size_t target);
    /* Optional: the handshake failed (ssl's verify result may say why), or
       stalled past the helo timeout (timed_out). */
    void (*handshake_failed)(void *arg, size_t target, SSL *ssl, bool timed_out);
};

/* DMTP sending side (draft -03 §3.3-§3.5; RFC-NOTES.md "DMTP"): a peer whose EHLO
   offers MSID gets "MAIL FROM:<...> DMTP", the RCPTs, then MSID instead of DATA
   (and no BDAT); a -00 peer's 253 to MAIL, RCPT or DATA is taken the same way.
   The message itself stays with us: the hooks hold it. Without hooks (or with
   hold NULL) such a peer gets plain SMTP. */
/* The end of a hold (smtp_dmtp_hooks.hold): ok with the MSID command line (CRLF
   included, len octets) and the hold's handle, or not ok with err (the
   transaction is deferred). client is the one hold was given. */
typedef void (*smtp_dmtp_held_fn)(void *client, bool ok, const char *line, size_t len, const char *handle,
                                  const char *err);

struct smtp_dmtp_hooks {
    /* Begin holding the message for the accepted recipients (rcpts: indices into
       env->rcpts) handed to rmta. The durable writes (a copy of the message,
       fsync'd) must not run on the caller's event loop: held(client, ...) is called
       once, from the loop and never from inside hold, when they are done. The
       session sends nothing meanwhile. Returns the job (for abandon), or NULL with
       err when nothing was begun (the transaction is deferred). */
    void *(*hold)(void *arg, const struct envelope *env, int msg_fd, const size_t *rcpts, size_t n,
                  const struct sockaddr *rmta, bool ascii_only, smtp_dmtp_held_fn held, void *client, char *err,
                  size_t errsz);
    /* The session no longer waits for job (it broke, timed out or is freed):
       held is never called for it; a hold that completes anyway was never
       offered, and is withdrawn. */
    void (*abandon)(void *arg, void *job);
    /* The peer answered the MSID: 2xx keeps the hold, anything else withdraws it.
       A session that breaks while waiting calls nothing: the hold stays (the
       peer may have taken it) until it is pulled or expires. */
    void (*settle)(void *arg, const char *handle, bool accepted);
    void *arg;
};

struct smtp_client_params {
    const char *helo_name;                 /* our host name for EHLO/HELO */
    const struct sockaddr *source;         /* NULL: the kernel chooses */
    socklen_t source_len;
    struct smtp_timeouts timeouts;
    const struct smtp_tls_hooks *tls;      /* NULL: plain text only */
    const char *auth_user, *auth_pass;     /* NULL: no AUTH */
    const struct smtp_dmtp_hooks *dmtp;    /* NULL: never DMTP */
    bool auth_needs_verified;              /* credentials only to an authenticated peer */
    const struct mx_target *targets;       /* in the order to try */
    size_t ntargets;                       /* 1..MX_MAX_ADDRS */
    /* The first transaction. */
    const struct envelope *env;            /* sender, size, DSN and body flags */
    const size_t *rcpts;                   /* indices into env->rcpts, in order */
    size_t nrcpts;                         /* 1..SMTP_CLIENT_MAX_RCPTS */
    int msg_fd;                            /* the message as spooled (CRLF lines) */
};

/* A further transaction on an open session. */
struct smtp_txn_params {
    const struct envelope *env;
    const size_t *rcpts;
    size_t nrcpts;
    int msg_fd;
    unsigned delay_ms;                     /* wait this long before MAIL (rate limits) */
};

struct smtp_rcpt_result {
    size_t index;                          /* into env->rcpts */
    struct delivery_status st;
    /* The server's reply that decided it, one line ("550 5.1.1 no such user"); ""
       when Ferry decided without one (timeout, capability, connection lost). */
    char reply[SMTP_CLIENT_REPLY_MAX];
    /* Delivered to a peer without DSN while NOTIFY=SUCCESS was asked: Ferry owes
       the sender the "relayed" DSN (RFC 3461 §6.2.1.2). */
    bool dsn_relayed;
};

struct smtp_client_result {
    size_t nrcpts;
    struct smtp_rcpt_result *rcpts;        /* in the order of params.rcpts */
    /* The last server connected to (for the DSN's Remote-MTA), "" when none. */
    char remote_host[DNS_NAME_MAX + 1];
    char remote_ip[64];
    unsigned targets_tried;
    /* The TLS of that connection for the log: "none", or the hooks' line. */
    char tls[200];
    bool tls_verified;
    bool session_open;      /* smtp_client_next may be called */
    bool not_attempted;     /* a reused session broke before MAIL (see above) */
    unsigned txn_on_conn;   /* 1 for the first transaction of a connection */
};

struct smtp_client;

typedef void (*smtp_client_done)(struct smtp_client *c, const struct smtp_client_result *r, void *arg);

/* NULL with errno set: EINVAL for bad parameters, ENOMEM. */
struct smtp_client *smtp_client_start(struct event_base *base, const struct smtp_client_params *p,
                                      smtp_client_done done, void *arg);
/* Only inside the callback, when r->session_open: the next transaction on the
   same connection. 0 ok; -1 with errno (EINVAL, ENOMEM): the session then ends
   with QUIT as if it had not been called. */
int smtp_client_next(struct smtp_client *c, const struct smtp_txn_params *t, smtp_client_done done, void *arg);
/* Ends the session at once (no QUIT), without calling the callback. Not from
   inside the callback. */
void smtp_client_cancel(struct smtp_client *c);

/* The local address of the connection in progress (TLS-RPT's sending-mta-ip),
   as text; -1 when there is none. Callable from the TLS hooks. */
int smtp_client_local_addr(const struct smtp_client *c, char *out, size_t outsz);
/* Process shutdown: ends every client still alive, including those closing
   after their last callback (QUIT sent), which nothing else owns any more. */
void smtp_client_cancel_all(void);

#endif

/*
 * smtp_client_int — what the three files of the SMTP client share: the client's
 * state (one struct, one state enum) and the steps each file offers the others.
 * Internal to delivery/smtp_client*.c; everyone else uses smtp_client.h.
 *
 *   smtp_client.c        connecting, reading replies, timers, results, reuse
 *   smtp_client_hello.c  greeting, EHLO/HELO, STARTTLS, AUTH
 *   smtp_client_txn.c    MAIL, RCPT, DATA/BDAT/MSID, the body
 */
#ifndef FERRY_SMTP_CLIENT_INT_H
#define FERRY_SMTP_CLIENT_INT_H

#include "delivery/smtp_client.h"
#include "delivery/smtp_cmds.h"
#include "delivery/smtp_reply.h"

#include <sys/types.h>

struct bufferevent;
struct event;

enum sc_state {
    SC_IDLE,        /* between targets: the timer starts the next connection */
    SC_CONNECT,
    SC_HANDSHAKE,   /* TLS handshake (after STARTTLS's 220, or implicit TLS) */
    SC_GREETING,
    SC_EHLO,
    SC_HELO,
    SC_STARTTLS,    /* waiting for the reply to STARTTLS */
    SC_AUTH,        /* waiting for a reply in the AUTH exchange (auth_step) */
    SC_WAIT,        /* an open session waiting to begin the next transaction */
    SC_RSET,        /* waiting for the reply to RSET before the next transaction */
    SC_MAIL,        /* waiting for the reply to MAIL */
    SC_RCPT,        /* waiting for the reply to RCPT number rcpt_i */
    SC_DATA,        /* waiting for the reply to DATA */
    SC_HOLD,        /* DMTP: waiting for the held copy to be written (hooks' held) */
    SC_MSID,        /* waiting for the reply to MSID (DMTP, instead of DATA) */
    SC_BODY,        /* sending the message */
    SC_DOT,         /* waiting for the reply to the end of data */
    SC_TXN_END,     /* the timer delivers the transaction's results */
    SC_QUIT,        /* no transaction left: waiting for the reply to QUIT */
    SC_FREE         /* the timer frees the client */
};

/* Where each recipient stands in this transaction. */
enum rcpt_stand { RS_OPEN, RS_ACCEPTED, RS_DONE };

enum auth_step { AUTH_PLAIN_SENT, AUTH_LOGIN_SENT, AUTH_USER_SENT, AUTH_PASS_SENT };

struct smtp_client {
    struct event_base *base;
    char helo[256];
    struct sockaddr_storage source;
    socklen_t source_len;
    struct smtp_timeouts to;
    struct smtp_tls_hooks tls;
    bool have_tls_hooks;
    char *auth_user, *auth_pass;
    bool auth_needs_verified;
    struct smtp_dmtp_hooks dmtp;
    bool have_dmtp;
    struct smtp_client *live_prev, *live_next;   /* every client alive, for cancel_all */
    struct mx_target targets[MX_MAX_ADDRS];
    size_t ntargets;

    /* The transaction in progress. */
    const struct envelope *env;
    int msg_fd;
    smtp_client_done done;
    void *arg;
    enum rcpt_stand *stand;
    struct smtp_client_result res;
    unsigned delay_ms;

    /* The next one, set by smtp_client_next during the callback. */
    bool in_callback;
    bool next_set;
    struct smtp_txn_params next;
    smtp_client_done next_done;
    void *next_arg;
    struct smtp_rcpt_result *next_rcpts;
    enum rcpt_stand *next_stand;

    enum sc_state state;
    size_t target;                 /* the one connected or being tried */
    char label[DNS_NAME_MAX + 72]; /* "host[ip]" of that target, for texts */
    struct bufferevent *bev;
    struct event *timer;
    struct smtp_reply_parser parser;
    struct smtp_reply reply;
    struct smtp_ehlo peer;
    enum smtp_tls_mode tls_mode;   /* of the current target */
    bool tls_plain_retry;          /* MAY: the handshake failed; this target again, in clear */
    bool tls_active;
    bool tls_verified;
    char tls_desc[200];
    bool authed;
    enum auth_step auth_step;
    unsigned txn_on_conn;          /* transactions begun on this connection */
    bool need_rset;                /* the last transaction did not end at a final dot */

    bool mail_failed;
    size_t rcpt_i;
    size_t accepted;
    bool discard_data;             /* a 354 came with nobody to deliver to */
    bool wants_msid;               /* a -00 peer replied 253: MSID, not DATA */
    char hold[64];                 /* the DMTP hold of this transaction (hooks' handle) */
    void *hold_job;                /* SC_HOLD: the hold being written (hooks' job) */
    bool bdat;                     /* this transaction sends the body with BDAT (RFC 3030) */
    struct smtp_body body;
    off_t body_off;
    off_t body_size;               /* the message's octets in msg_fd (env->size; BDAT announces it) */

    /* The last failure of a target before MAIL, of each kind. */
    struct delivery_status host_temp, host_perm;
    bool any_temp, any_perm;
};

/* smtp_client.c */
void sc_arm(struct smtp_client *c, unsigned ms);
void sc_close_conn(struct smtp_client *c);
const char *sc_reply_flat(const struct smtp_reply *r, char *buf, size_t bufsz);
bool sc_write_out(struct smtp_client *c, const char *s, size_t n);
/* The transaction is over; keep: the session stays usable. */
void sc_txn_end(struct smtp_client *c, bool keep);
void sc_set_rcpt(struct smtp_client *c, size_t i, enum delivery_result r, const char *reply, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void sc_set_open_rcpts(struct smtp_client *c, enum delivery_result r, const char *text);
void sc_rcpt_from_reply(struct smtp_client *c, size_t i, const struct smtp_reply *r, const char *in_reply_to);
/* A failure before MAIL: the next target (or, on a reused session, not attempted). */
void sc_host_fail(struct smtp_client *c, enum delivery_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A failure after MAIL: the open recipients defer and the session ends. */
void sc_txn_abort(struct smtp_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sc_on_read(struct bufferevent *bev, void *arg);
void sc_on_write(struct bufferevent *bev, void *arg);
void sc_on_event(struct bufferevent *bev, short what, void *arg);

/* smtp_client_hello.c */
void sc_tls_begin(struct smtp_client *c);
void sc_tls_done(struct smtp_client *c);
const char *sc_ssl_error_text(struct smtp_client *c, char *buf, size_t bufsz);
/* A reply while greeting, EHLO/HELO, STARTTLS, AUTH, RSET or between transactions. */
void sc_hello_reply(struct smtp_client *c, const struct smtp_reply *r);

/* smtp_client_txn.c */
/* The client stops waiting for a hold in progress (if any): the hooks withdraw it. */
void sc_hold_abandon(struct smtp_client *c);
void sc_fill_body(struct smtp_client *c);
void sc_start_txn(struct smtp_client *c);
/* A reply from MAIL to the end of data. */
void sc_txn_reply(struct smtp_client *c, const struct smtp_reply *r);

#endif

/*
 * smtp_session — one inbound SMTP conversation (RFC 5321), as an explicit state
 * machine over a libevent bufferevent.
 *
 * States: HANDSHAKE (a TLS handshake: on smtps before anything, after STARTTLS)
 * PREGREET (greeting_delay: waiting to greet; a client that talks now is
 * an early talker and is refused) → INIT (greeted, no EHLO yet) → READY (EHLO/HELO
 * seen) → [AUTH (a SASL exchange) → AUTH_WAIT (a failure's delay)] → [CHECK (SPF/DMP lookups for MAIL FROM)] → MAIL (sender accepted) → RCPT
 * (a recipient accepted) → DATA (receiving the message) → COMMIT (receive-time
 * policy lookups, then the group commit) → READY ... and CLOSING once QUIT, a
 * timeout, too many errors, a progress limit (smtp_limits.c) or a fatal fault
 * ends it. Commands are read line by
 * line, at most 512 octets with CRLF; PIPELINING means many may be waiting and
 * are answered in order, and nothing more is read while CHECK or COMMIT waits.
 *
 * BDAT (RFC 3030, smtp_bdat.c): each BDAT command moves to CHUNK while its octets
 * are read (always all of them, even when the chunk is refused); after a good
 * chunk without LAST the transaction waits in BDAT for the next one; after a
 * refused chunk it waits in BDAT_FAILED, where further chunks are read, discarded
 * and refused, until RSET, EHLO/HELO or a chunk with LAST.
 *
 * One message, from its first octet to the reply (trace field, policy, DMARC
 * verdict and reports, commit), is smtp_message.c's.
 */
#ifndef FERRY_SMTP_SESSION_H
#define FERRY_SMTP_SESSION_H

#include <stdbool.h>
#include <sys/socket.h>

#include "lib/settings.h"
#include "lib/envelope.h"
#include "queue/spool.h"
#include "smtpd/smtp_data.h"

struct smtp_server;
struct smtp_trace;
struct smtp_policy;
struct smtp_sender_check;
struct smtp_dmtp;
struct sasl_server;
struct bufferevent;
struct event;

enum smtp_state { SS_HANDSHAKE, SS_PREGREET, SS_CHECK, SS_AUTH, SS_AUTH_WAIT, SS_INIT, SS_READY, SS_MAIL, SS_RCPT, SS_DATA, SS_COMMIT, SS_CLOSING,
                  SS_CHUNK, SS_BDAT, SS_BDAT_FAILED };

struct smtp_gtml_req;
struct smtp_parked;

struct smtp_session {
    struct smtp_session *prev, *next;
    struct smtp_server *srv;
    struct bufferevent *bev;
    char id[QID_LEN + 1];         /* names the session in logs and its trace file */
    const struct listen_addr *listener;
    enum listen_kind kind;
    struct smtp_trace *trace;     /* NULL unless the listener has trace=DIR */
    bool tls;                     /* TLS is up (STARTTLS or smtps) */
    char tls_version[32], tls_cipher[96];
    int tls_bits;
    struct event *greet_timer;    /* greeting_delay */
    struct sockaddr_storage peer;
    char peer_ip[64];
    enum smtp_state state;
    bool esmtp;
    char helo[256];
    unsigned errors;
    bool authenticated;           /* SMTP AUTH succeeded (may relay) */
    char auth_user[65];
    struct sasl_server *sasl;     /* the AUTH exchange in progress (state AUTH) */
    struct event *auth_timer;     /* auth_failure_delay */
    uint64_t auth_q;              /* a question to the auth process in flight (authclient handle), or 0 */
    char auth_pending_reply[128];
    /* for the summary line logged when the session ends */
    unsigned messages, rcpts_accepted;
    unsigned long long octets;
    char last_qid[QID_LEN + 1];
    const char *end_reason;
    bool discarding_line;         /* an over-long command line is being skipped */
    /* progress limits (smtp_limits.c) */
    unsigned junk;                /* junk commands since connecting or the last completed transaction */
    bool cmd_junk;                /* the command being handled is junk by its verb */
    char reply_class;             /* first digit of the last reply to the command being handled */
    bool idle_expired;            /* smtp_idle_session_limit has passed */
    struct event *idle_timer;
    bool output_blocked;          /* reading paused until the client reads our replies */
    struct smtp_gtml_req *gtml;   /* DMTP pulls served in this session (smtp_gtml.c); NULL */
    struct smtp_dmtp *dmtp;       /* DMTP receiver-pull state (smtp_dmtp.h); NULL: pull_mode = off */
    double last_read;             /* when input last came (smtp_server_now) */
    struct smtp_parked *parked;   /* the connection is in the holder (smtp_park.h): bev is NULL */

    /* the transaction */
    struct envelope env;
    struct spool_draft draft;
    struct smtp_policy *policy;   /* DKIM verify/sign and Authentication-Results for this message */
    struct smtp_sender_check *sender_check;   /* SPF/DMP at MAIL FROM (state CHECK) */
    bool in_sender_start;
    char spf_results[700];        /* spf= for Authentication-Results */
    char spf_fields[1500];        /* "Received-SPF: ...\r\n" */
    bool noted_bare_path;         /* the bare-address note is logged once per session */
    char data_refusal[600];       /* spf_fail_action = data: the reply at the end of DATA */
    bool seal_forward;            /* a recipient is forwarded or relayed: ARC-seal (smtp_arc_seal.h) */
    int spf_result;               /* enum spf_result of MAIL FROM (SPF_NONE when not run) */
    char spf_domain[256];         /* the domain SPF checked, for DMARC */
    bool in_policy_finish;        /* smtp_policy_finish is on the stack */
    bool have_draft;
    bool committing;              /* in a group commit (smtp_commit.c): freed only once it is answered */
    struct smtp_data data;
    unsigned long long data_size;
    int data_errno;               /* a write to the spool failed */
    bool too_big;
    /* Pending bytes for the message file: SESSION_WBUF_SIZE octets allocated when a
       message begins and freed when its transaction ends, never held by a session
       between messages. Inline in the session it made every idle connection cost
       70 KB resident (calloc touches it all); allocated per message, an idle
       session costs a few KB (issue 16: 20 000 idle connections, <= 16 KB each). */
    char *wbuf;
#define SESSION_WBUF_SIZE 65536
    size_t wlen;
    bool wflushed;                /* some of the message is in its file already */

    /* the BDAT chunk being read (state SS_CHUNK) */
    unsigned long long chunk_size;
    unsigned long long chunk_left;
    bool chunk_last;
    enum smtp_state chunk_from;   /* the state the BDAT command came in */
    const char *chunk_refusal;    /* non-NULL: discard the octets, then reply this */
    struct smtp_text text;        /* line rules over the BDAT content */
};

/* Takes the accepted socket; greets (or refuses, when over the limits). */
void smtp_session_start(struct smtp_server *srv, int fd, const struct sockaddr *sa, socklen_t len,
                        const struct listen_addr *listener);
/* Called by the server once the session's draft is committed (ok) or not. */
void smtp_session_committed(struct smtp_session *s, bool ok, int err);
/* The server is stopping: say 421 now when idle. */
void smtp_session_shutdown(struct smtp_session *s);
void smtp_session_free(struct smtp_session *s);

#endif

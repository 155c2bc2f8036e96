/*
 * smtp_dmtp_int — the per-session DMTP state shared by smtp_dmtp*.c. Not for
 * anyone else.
 */
#ifndef FERRY_SMTP_DMTP_INT_H
#define FERRY_SMTP_DMTP_INT_H

#include "lib/dns.h"
#include "smtpd/smtp_dmtp.h"

#define FCRDNS_MAX_NAMES   5     /* PTR names checked forward, as SPF's "ptr" does (RFC 7208 §5.5: 10) */
#define DMTP_MAX_REPLIES   16    /* intent-message replies in one transaction */

struct dmtp_rcpt_info {
    char addr[ADDR_PATH_MAX + 1];
    char user[PULL_USER_MAX + 1];   /* "" for a recipient that is not local */
    bool allowed;                   /* the user's lists allow the sender */
    bool capped;                    /* its pending notice passed the caps at RCPT */
};

struct dmtp_reply_req {
    char user[PULL_USER_MAX + 1];
    char id[NOTICE_ID_LEN + 1];     /* "": the token is in the reply's header */
    char h[NOTICE_H_LEN + 1];
};

struct smtp_dmtp {
    struct smtp_session *s;
    /* the peer, decided at connect */
    bool classified;                /* the lookups are over and the class known */
    bool greet_waiting;             /* the greeting waits for the lookups */
    bool denied;                    /* a denied peer: MAIL is refused (GTML only) */
    bool quit_only;                 /* greeted 554: nothing but QUIT is served */
    bool unreadable;                /* the peer lists could not be read: MAIL gets 451 */
    enum pull_class peer_class;
    char peer_reason[PULL_REASON_MAX];
    char fcrdns[ADDR_DOMAIN_MAX + 1];       /* verified name or "" */
    struct dns_query *q;
    struct event *fcrdns_timer;     /* caps the lookups (pull_fcrdns_wait) */
    char names[FCRDNS_MAX_NAMES][DNS_NAME_MAX + 1];
    size_t nnames, next_name;
    /* the transaction */
    bool mail_dmtp;                 /* MAIL carried DMTP */
    bool txn_known;
    enum pull_class txn_class;      /* the peer's class for this transaction */
    bool txn_unreadable;            /* deciding it hit a database error: RCPT gets 451 */
    struct dmtp_rcpt_info *rcpts;
    size_t nrcpts, cap;
    struct dmtp_reply_req replies[DMTP_MAX_REPLIES];
    size_t nreplies;
    char refusal[160];
};

/* The peer's class for this transaction: authenticated and relay clients are
   allowed; with pull_allow_dmarc_pass an SPF pass of MAIL FROM's domain on the
   allowed list counts (smtp_dmtp_peer.c). */
enum pull_class smtp_dmtp_txn_class(struct smtp_session *s);
/* The peer's class again after a database error at connect (at MAIL): true when
   the lists could be read this time (the class is then set, and a denied peer
   marked), false when they still cannot. */
bool smtp_dmtp_reclassify(struct smtp_session *s);
/* The caps on pending notices (smtp_dmtp_caps.c), for a notice that would wait for
   user's decision (an intent message): NULL when within them, else the reply. */
const char *smtp_dmtp_cap_refusal(struct smtp_session *s, const char *user, const char *addr, char *reply,
                                  size_t replysz);
/* count intent messages were queued for this peer. */
void smtp_dmtp_caps_count(struct smtp_session *s, size_t count);
/* Reply from the DMTP table. */
void smtp_dmtp_say(struct smtp_session *s, enum dmtp_reply_id id);

#endif

/*
 * envelope — the record of one queued message: who sent it, to whom, and how each
 * recipient stands. Pure: serialise to bytes, parse from bytes.
 *
 * The file is text, one record per line, `keyword value...`, values percent-encoded
 * (every octet <= 0x20, 0x7f and '%' as %XX; an empty value as "-"). It opens with
 * "FERRY-ENV 1" and closes with "end CRC", the CRC-32 of every byte before that
 * line, so a torn or edited file is recognised and never half-trusted. Unknown
 * keywords, missing required records or a bad checksum make the parse fail with
 * a reason (the queue then quarantines the file).
 *
 * The DSN (RFC 3461) and REQUIRETLS (RFC 8689) records — `ret`, `envid`,
 * `requiretls`, and `notify`/`orcpt` right after the `rcpt` line they belong to —
 * and `quarantine` (the receive-time policy's reason for filing it as junk)
 * and `pull` (a DMTP held message, spool held/)
 * are written only when set, so an envelope of a message without them is the same
 * as before they existed, and an envelope written before them still parses.
 *
 * It lives in lib/ because every part reads it: smtpd/ writes it, queue/ keeps it,
 * delivery/ sends from it (smtp_client, smtp_cmds) and ctl/ shows it; a queue/
 * header there made delivery/ depend on the part that calls it.
 */
#ifndef FERRY_ENVELOPE_H
#define FERRY_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/qid.h"

#define ENV_MAX_RCPTS      100000
#define ENV_RESULT_MAX     512
#define ENV_MAX_SIZE       (64 * 1024 * 1024)
#define ENV_ENVID_MAX      100     /* RFC 3461 §4.4, decoded octets */
#define ENV_ORCPT_MAX      500     /* RFC 3461 §4.2, decoded octets */
#define ENV_QUARANTINE_MAX 200     /* the reason, decoded octets */
#define ENV_MSID_MAX       128     /* DMTP msid (pull/dmtp_cmd.h DMTP_MSID_MAX) */

/* DEFERRED was added after the first three: it is a pending recipient that has
   been tried and got a temporary failure (the queue treats both as "to do"). */
enum rcpt_state { RCPT_PENDING, RCPT_DELIVERED, RCPT_FAILED, RCPT_DEFERRED };

/* What a queued message is, for the double-bounce rule: a bounce that cannot be
   delivered goes to the postmaster once; a failed double bounce is dropped. */
enum env_kind { ENV_KIND_NORMAL, ENV_KIND_BOUNCE, ENV_KIND_DOUBLE_BOUNCE };

/* MAIL ... RET= (RFC 3461 §4.3); UNSET lets the DSN writer choose. */
enum env_ret { ENV_RET_UNSET, ENV_RET_FULL, ENV_RET_HDRS };

/* RCPT ... NOTIFY= (RFC 3461 §4.1): 0 means "not given" (the RFC's default
   applies); NEVER is never combined with the others. */
enum {
    ENV_NOTIFY_SUCCESS = 1,
    ENV_NOTIFY_FAILURE = 2,
    ENV_NOTIFY_DELAY   = 4,
    ENV_NOTIFY_NEVER   = 8,
};

/* RCPT ... ORCPT=addr-type;xtext (RFC 3461 §4.2, RFC 6533). */
enum env_orcpt_type { ENV_ORCPT_NONE, ENV_ORCPT_RFC822, ENV_ORCPT_UTF8 };

struct env_rcpt {
    char addr[ADDR_PATH_MAX + 1];      /* local@domain as received */
    enum rcpt_state state;
    unsigned attempts;
    char result[ENV_RESULT_MAX];       /* last result: reply or local error, verbatim */
    unsigned notify;                   /* ENV_NOTIFY_* bits, 0: not given */
    enum env_orcpt_type orcpt_type;
    char orcpt[ENV_ORCPT_MAX + 1];     /* decoded original recipient ("" when none) */
    /* scheduler state ("rsched" records, written after the rcpt lines; 0: unset) */
    time_t next_attempt;               /* wall time this recipient is due */
    time_t last_attempt;               /* wall time of the last attempt */
};

struct envelope {
    char id[QID_LEN + 1];
    time_t arrival;
    unsigned long long size;           /* octets of ID.msg */
    char sender[ADDR_PATH_MAX + 1];    /* "" for the null reverse-path */
    char client_addr[64];
    char client_helo[256];
    char protocol[16];                 /* SMTP, ESMTP, ESMTPS, ... (RFC 3848) */
    bool body_8bit;                    /* BODY=8BITMIME */
    bool smtputf8;
    enum env_ret ret;                  /* RET= */
    char envid[ENV_ENVID_MAX + 1];     /* ENVID=, decoded ("" when none) */
    bool requiretls;                   /* MAIL ... REQUIRETLS (RFC 8689) */
    /* Receive-time policy (DMARC quarantine) put the message aside: local
       mailboxes file it in their Junk folder. "" when not; else why. */
    char quarantine[ENV_QUARANTINE_MAX + 1];
    unsigned attempts;
    time_t next_attempt;
    size_t nrcpts;
    struct env_rcpt *rcpts;
    /* scheduler state (records "hold", "delaywarned", "kind"; absent in old files) */
    bool hold;                         /* ferryctl queue hold: no attempts until released */
    bool delay_warned;                 /* the delay DSN has been queued (once per message) */
    enum env_kind kind;
    /* DMTP (spool held/ only; record "pull", absent elsewhere): the msid handed
       to the receiving MTA, the IP it was handed to, and when the hold ends.
       A recipient PENDING is waiting for its pull, DELIVERED has pulled. */
    char pull_msid[ENV_MSID_MAX + 1];  /* "" when not a held message */
    char pull_rmta[64];
    time_t pull_expires;
    /* Not in the text: where the spool found this envelope (queue/spool.h). True
       when spool_env_read took it from inside ID.msg (no ID.env beside it). */
    bool spool_embedded;
};

void env_init(struct envelope *e);
void env_free(struct envelope *e);
/* Appends a pending recipient. -1 on limit or memory. */
int  env_add_rcpt(struct envelope *e, const char *addr);
/* Recipients still to do: pending or deferred. */
size_t env_pending(const struct envelope *e);
/* The earliest next_attempt of the recipients still to do (0 when none has one). */
time_t env_earliest_next(const struct envelope *e);

/* Serialise into out (appended). -1 when out's limit is reached. */
int  env_serialize(const struct envelope *e, struct buf *out);
/* Parse data[0..len). 0 ok, -1 with a reason in err. */
int  env_parse(const char *data, size_t len, struct envelope *e, char *err, size_t errlen);

const char *rcpt_state_name(enum rcpt_state s);
/* "rfc822" / "utf-8" (the RFC 6533 name), NULL for NONE. */
const char *env_orcpt_type_name(enum env_orcpt_type t);
/* NOTIFY flags as the canonical list ("NEVER", "SUCCESS,FAILURE,DELAY"...) into
   out (at least 32 octets); "" for 0. */
void env_notify_format(unsigned notify, char *out, size_t outsz);
const char *env_kind_name(enum env_kind k);
static inline bool rcpt_todo(const struct env_rcpt *r)
{
    return r->state == RCPT_PENDING || r->state == RCPT_DEFERRED;
}

#endif

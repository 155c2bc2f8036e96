/*
 * notice — pending DMTP notices on the receiving side (draft -03 §3.5; RFC-NOTES.md
 * "DMTP"): one per recipient of an accepted MSID, kept until the user fetches or
 * drops it, or it expires.
 *
 * Stored in pull_notices.db in the data_dir environment, key "user id", as a
 * self-checking text record ("FERRY-NOTICE 1" ... "end CRC-32"); a damaged record is
 * reported, never half-trusted. notice_add writes all the notices of one MSID in one
 * transaction, durable on return: the smtp process answers MSID 250 only after it.
 * IDs are 16 lower-case hex digits (time, then random), unique in the store. H, the
 * token a reply to the intent message must carry, is HMAC(K, id, recipient) from the
 * DMTP key (pull/msid.h), 16 base32hex characters; it is stored with the notice and
 * checked in constant time. Used by the smtp process (add), the queue process (get,
 * state, expire) and ferryctl (list, fetch, drop). No sockets.
 */
#ifndef FERRY_PULL_NOTICE_H
#define FERRY_PULL_NOTICE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/addr.h"
#include "lib/db.h"
#include "pull/classify.h"
#include "pull/dmtp_cmd.h"
#include "pull/msid.h"

#define NOTICE_ID_LEN  16
#define NOTICE_H_LEN   16
#define NOTICE_MAX_BATCH 1000     /* notices in one notice_add (max_recipients bound) */

enum notice_state {
    NOTICE_PENDING,           /* told the user, waiting */
    NOTICE_FETCH_REQUESTED,   /* the user asked (reply or ferryctl pull fetch): pull it */
    NOTICE_AUTO,              /* the user's lists allow the sender: pull at once */
};

struct pull_notice {
    char id[NOTICE_ID_LEN + 1];
    char user[PULL_USER_MAX + 1];
    char msid[DMTP_MSID_MAX + 1];
    char sender[ADDR_PATH_MAX + 1];         /* "" for the null sender */
    char recipient[ADDR_PATH_MAX + 1];
    char subject[DMTP_SUBJECT_MAX + 1];
    char peer_ip[64];
    char peer_name[ADDR_DOMAIN_MAX + 1];    /* verified FCrDNS name or "" */
    char h[NOTICE_H_LEN + 1];
    enum notice_state state;
    time_t created, expires;
    time_t requested;                       /* when a fetch was asked for; 0 */
    unsigned attempts;                      /* pulls tried (the queue process counts) */
};

struct notice_store;

struct notice_store *notice_open(struct fdb_env *env, const struct msid_key *key, char *err, size_t errlen);
void notice_close(struct notice_store *s);

/* Store n[0..count) in one transaction: each gets its id, H, created = now and
   expires = now + lifetime (the caller fills user, msid, sender, recipient,
   subject, peer, state). All or nothing. 0 ok; -1 with err. */
int notice_add(struct notice_store *s, struct pull_notice *n, size_t count, time_t now, time_t lifetime, char *err,
               size_t errlen);

/* 0 found, 1 not found, -1 error (err). */
int notice_get(struct notice_store *s, const char *user, const char *id, struct pull_notice *out, char *err,
               size_t errlen);
int notice_drop(struct notice_store *s, const char *user, const char *id, char *err, size_t errlen);
/* Set the state (and requested = now for NOTICE_FETCH_REQUESTED); attempts_add is
   added to attempts. 0 / 1 / -1 as notice_get. */
int notice_update(struct notice_store *s, const char *user, const char *id, enum notice_state state,
                  unsigned attempts_add, time_t now, char *err, size_t errlen);

/* Visit one user's notices (user non-NULL) or all, in key order (user, then id:
   oldest first). Damaged records are skipped and counted in *damaged (may be NULL).
   Stops when fn returns non-zero. -1 on a database error. */
int notice_list(struct notice_store *s, const char *user, int (*fn)(const struct pull_notice *n, void *arg),
                void *arg, size_t *damaged);

/* Count user's pending notices (waiting for the user's decision, not expired at
   now) into *total and those of them from sender (compared without case) into
   *from_sender; the scan stops once *total reaches stop_at, so it costs at most
   stop_at pending records (the caps keep fewer than that stored). -1 on a database
   error. */
int notice_count_pending(struct notice_store *s, const char *user, const char *sender, time_t now, size_t stop_at,
                         size_t *total, size_t *from_sender);

/* One window of notice_list over every user: at most max records from the first
   key >= from (fromlen 0: the start). next (nextsz >= PULL_USER_MAX +
   NOTICE_ID_LEN + 3) gets where the following window starts, *nextlen 0 when
   this one reached the end. 1 more may follow, 0 the end, -1 database error. */
int notice_list_from(struct notice_store *s, const char *from, size_t fromlen, size_t max,
                     int (*fn)(const struct pull_notice *n, void *arg), void *arg, char *next, size_t nextsz,
                     size_t *nextlen);

/* Drop at most max notices with expires <= now (and damaged records). */
int notice_expire(struct notice_store *s, time_t now, size_t max, size_t *dropped);

/* Does h (from a reply) match the notice's H? Recomputed from the key, compared in
   constant time. */
bool notice_h_ok(const struct notice_store *s, const struct pull_notice *n, const char *h);

const char *notice_state_name(enum notice_state st);

/* The record format, exposed for tests and the fuzz target. */
int notice_serialize(const struct pull_notice *n, char *out, size_t outsz);
int notice_parse(const char *data, size_t len, struct pull_notice *n, char *err, size_t errlen);

#endif

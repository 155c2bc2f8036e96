/*
 * greylist — the treatment of unclassified legacy senders (draft -03 §3.8;
 * pull_legacy = greylist): a triplet (client network — the /24 of an IPv4 client,
 * the /64 of an IPv6 one, so a pool of outbound hosts counts as one — sender,
 * recipient) is refused with a temporary error until it retries after `delay` and
 * within `window` of its first attempt; a triplet that passed is remembered for
 * `lifetime` after its last use. A delay of 0 lets the first attempt through
 * (records are still kept).
 *
 * greylist_decide is pure (old record and clock in, verdict and new record out);
 * the store keeps records in pull_greylist.db, reading and writing each triplet in
 * one transaction. Keys are bounded (addresses at most 256 octets each); records
 * are a short text line. No sockets; the clock is always passed in.
 */
#ifndef FERRY_PULL_GREYLIST_H
#define FERRY_PULL_GREYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/addr.h"
#include "lib/db.h"

#define GREYLIST_KEY_MAX (64 + 2 * (ADDR_PATH_MAX + 2) + 2)

struct greylist_params {
    time_t delay, window, lifetime;
};

struct greylist_record {
    time_t first, last;
    unsigned count;     /* attempts seen (saturates) */
    bool passed;
};

enum greylist_verdict { GREYLIST_PASS, GREYLIST_DEFER };

/* old NULL: no record. *next is what to store. reason: for the log. */
enum greylist_verdict greylist_decide(const struct greylist_params *p, const struct greylist_record *old,
                                      time_t now, struct greylist_record *next, const char **reason);

/* "192.0.2.0/24 sender rcpt" (lower-case, "<>" for the null sender). Length, or -1. */
int greylist_key(const struct sockaddr *client, const char *sender, const char *rcpt, char *out, size_t outsz);

/* The record format ("first last count passed"), exposed for tests and fuzzing. */
int greylist_format(const struct greylist_record *r, char *out, size_t outsz);
int greylist_parse(const char *s, size_t len, struct greylist_record *r);

struct greylist_store;
struct greylist_store *greylist_open(struct fdb_env *env, char *err, size_t errlen);
void greylist_close(struct greylist_store *g);

/* Decide and record in one transaction. -1 on a bad triplet or a database error
   (the caller then lets the mail through or defers, by its own rule). */
int greylist_check(struct greylist_store *g, const struct greylist_params *p, const struct sockaddr *client,
                   const char *sender, const char *rcpt, time_t now, enum greylist_verdict *verdict,
                   const char **reason);

/* Drop at most max records that can no longer pass (unpassed past the window,
   passed past the lifetime, or damaged). */
int greylist_expire(struct greylist_store *g, const struct greylist_params *p, time_t now, size_t max,
                    size_t *dropped);

#endif

/*
 * ratelimit — per-key event rates in a bounded table (leaky buckets).
 *
 * Each key (a short string: a client IP, a user name) has a level that rises by
 * one per event and drains at `limit` per `window` seconds. An event that would
 * lift the level above `limit` is refused and not counted, so a client that keeps
 * hammering stays refused exactly as long as it keeps exceeding the rate, and no
 * longer. Used for connection rates per IP and for AUTH failure lock-outs.
 *
 * The table holds at most max_keys keys; when it is full, the key whose bucket
 * has drained the most is forgotten (a forgotten key starts again at zero, which
 * errs on the side of letting a client in). Memory is fixed at creation. The
 * caller supplies the time (seconds, monotonic), so tests need no clock.
 * Pure: no I/O, no global state.
 */
#ifndef FERRY_RATELIMIT_H
#define FERRY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

#define RATELIMIT_KEY_MAX 63

struct ratelimit;

/* limit > 0 events per window > 0 seconds. NULL on bad arguments or no memory. */
struct ratelimit *ratelimit_new(size_t max_keys, double limit, double window);
void ratelimit_free(struct ratelimit *rl);

/* Count one event for key at time now. true: allowed (counted); false: over the rate. */
bool ratelimit_hit(struct ratelimit *rl, const char *key, double now);
/* Would one more event for key be refused at time now? Counts nothing. */
bool ratelimit_exceeded(const struct ratelimit *rl, const char *key, double now);
/* The current level of key (0 when unknown). */
double ratelimit_level(const struct ratelimit *rl, const char *key, double now);
/* Seconds until key may have one more event (0 when it may now). */
double ratelimit_wait(const struct ratelimit *rl, const char *key, double now);
/* Forget key (e.g. after a successful login). */
void ratelimit_forget(struct ratelimit *rl, const char *key);
size_t ratelimit_count(const struct ratelimit *rl);

#endif

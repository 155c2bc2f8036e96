/*
 * scheduler — the queue process's in-memory index of what is due when.
 *
 * Pure data structure: no I/O, no clock. Callers pass times in milliseconds of
 * CLOCK_MONOTONIC, so a wall clock stepped back or forward never moves a timer;
 * wall time exists only in the envelopes on disk and is converted once, at load,
 * by sched_due_from_wall (which caps how far ahead a stored time can park a job).
 *
 * A job is one (message, destination) pair: the recipients of one message at one
 * domain. A message to two domains has two jobs, so a dead domain delays only its
 * own recipients. Jobs sit in a min-heap by due time; a pass pops only due jobs,
 * O(due · log n), however many messages are queued. A message is indexed by queue
 * ID (hash table) for the admin operations (flush, hold, release, delete).
 *
 * Destinations: when an attempt at a destination defers, the caller marks it down
 * until its own retry time (sched_dest_down). Any other job of that destination
 * that falls due before then is not returned but moved to that time, without an
 * attempt being counted — one dead domain costs one attempt per retry period, not
 * one per queued message. A pass returns at most `dest_concurrency` jobs per
 * destination; the rest stay due for the next pass, so one busy destination
 * cannot fill a pass and starve the others.
 *
 * Popped jobs are "in flight": out of the heap, still indexed. The caller ends
 * each one with sched_put (next due time) or sched_remove_job.
 * Errors: -1 only on memory exhaustion; the index is unchanged then.
 */
#ifndef FERRY_SCHEDULER_H
#define FERRY_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "lib/qid.h"

#define SCHED_DEST_MAX 255          /* a domain name */
#define SCHED_NEVER    INT64_MAX

struct sched_params {
    int64_t retry_min_ms;
    int64_t retry_max_ms;
    unsigned dest_concurrency;      /* jobs per destination per pass (>= 1) */
};

struct sched_due {
    char id[QID_LEN + 1];
    char dest[SCHED_DEST_MAX + 1];
};

struct sched;

struct sched *sched_new(const struct sched_params *p);
void sched_free(struct sched *s);

/* Insert the job (id, dest), or move it, due at `due`. A held message's job is
   recorded but stays out of the heap until released. */
int  sched_put(struct sched *s, const char *id, const char *dest, int64_t due);
/* Forget one job, or every job of a message. */
void sched_remove_job(struct sched *s, const char *id, const char *dest);
void sched_remove_msg(struct sched *s, const char *id);
bool sched_has_msg(const struct sched *s, const char *id);
size_t sched_msg_count(const struct sched *s);
size_t sched_job_count(const struct sched *s);

/* Hold takes a message's jobs out of the heap; release puts them back, due now. */
int  sched_hold(struct sched *s, const char *id, bool hold, int64_t now);
/* Make one message's jobs (id) or every job (id NULL) due now, and clear the
   destinations' down marks so they are really tried. Returns jobs moved. */
size_t sched_flush(struct sched *s, const char *id, int64_t now);

/* Destination state. */
int  sched_dest_down(struct sched *s, const char *dest, int64_t until);
void sched_dest_up(struct sched *s, const char *dest);
int64_t sched_dest_down_until(const struct sched *s, const char *dest);

/* Earliest due time in the heap, SCHED_NEVER when empty. */
int64_t sched_next_due(const struct sched *s);
/* Pop up to max due jobs (see above). Returns how many were written to out. */
size_t sched_pop_due(struct sched *s, int64_t now, struct sched_due *out, size_t max);

/* Back-off before attempt number attempts+1: retry_min doubled per attempt made,
   capped at retry_max, then ±10 % jitter from rnd, kept within the bounds. */
int64_t sched_backoff(const struct sched_params *p, unsigned attempts, uint32_t rnd);
/* A stored wall time `next` as a monotonic due time: now_mono when already past;
   otherwise now_mono plus the remaining wall delay, but at most horizon_ms ahead
   (a wall clock stepped back would otherwise park the job for as long). */
int64_t sched_due_from_wall(time_t next, time_t now_wall, int64_t now_mono, int64_t horizon_ms);

/* What a message's age (wall time since arrival) calls for. lifetime first, then
   the delay warning (warn_after 0: never; warned: already sent). A wall clock
   set back before the arrival reads as age 0, never as a huge age. */
enum sched_age { SCHED_AGE_YOUNG, SCHED_AGE_WARN, SCHED_AGE_EXPIRED };
enum sched_age sched_age_check(time_t arrival, time_t now_wall, unsigned long long lifetime,
                               unsigned long long warn_after, bool warned);

#endif

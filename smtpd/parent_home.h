/*
 * parent_home — the parent's half of delivery as a system user
 * (delivery/home_delivery.h): for each PROC_HOME_DELIVER request from the queue
 * process, a child forked from the parent (still root) closes what it inherited,
 * becomes the account (initgroups, setgid, setuid, and checks root is gone),
 * delivers into ~/Maildir/ and writes its result to a pipe. The parent reads the
 * pipe on its event loop and answers the queue with PROC_HOME_RESULT through
 * whatever queue channel exists then (*reply_chan: a restarted queue process
 * simply ignores an answer for an attempt it does not know).
 *
 * Limits: HOME_JOBS_MAX deliveries at once (more are deferred, 4.3.2), and
 * HOME_TIMEOUT_SECONDS each (the child is killed, 4.4.7). The spool file is
 * opened by the parent and handed over as a descriptor, so the user never
 * needs access to the spool.
 */
#ifndef FERRY_PARENT_HOME_H
#define FERRY_PARENT_HOME_H

#include <stddef.h>

#include "delivery/home_delivery.h"
#include "lib/settings.h"

#define HOME_JOBS_MAX        20

struct event_base;
struct ipc_chan;
struct home_jobs;

/* child_cleanup runs in each forked child before it drops privileges: it must
   close the listeners and the channels the child inherited. */
struct home_jobs *home_jobs_new(struct event_base *base, struct ipc_chan **reply_chan,
                                void (*child_cleanup)(void *arg), void *cleanup_arg);
void home_jobs_start(struct home_jobs *h, const struct ferry_config *cfg, const void *data, size_t len);
/* Kills and forgets the deliveries still running (shutdown). */
void home_jobs_free(struct home_jobs *h);

#endif

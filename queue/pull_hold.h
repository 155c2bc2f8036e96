/*
 * pull_hold — the queue process's side of DMTP sending (draft -03 §3.3; RFC-NOTES.md
 * "DMTP"): the smtp_client's hold hooks (delivery/smtp_client.h) over the held
 * store (queue/held.h) and the msid key (pull/msid.h).
 *
 * hold: a fresh held ID, msid_make(ID, the receiving MTA's IP, now + pull_expiry)
 * and the MSID line with the message's Subject: (dmtp_format_msid), made at once;
 * then the message is copied into held/ with an envelope naming the accepted
 * recipients by a forked disk_child (the copy and its fsyncs never run on the
 * queue loop), and the smtp_client hears of it (its held callback) only when the
 * copy is durable: the MSID goes out after that. abandon: a client that stopped
 * waiting; the copy is withdrawn once written. settle: a refused MSID removes the
 * held copy; an accepted one is logged. The crash ordering is held.h's.
 *
 * Also the periodic expiry of held messages, which tells nobody unless
 * pull_notify_unpulled = yes: the sender was never promised delivery
 * (RFC-NOTES.md "DMTP", Expiry).
 */
#ifndef FERRY_PULL_HOLD_H
#define FERRY_PULL_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "delivery/smtp_client.h"
#include "lib/msgfile.h"
#include "lib/settings.h"
#include "pull/msid.h"
#include "queue/held.h"

struct event_base;
struct disk_child;

struct hold_job;

struct pull_hold {
    const struct ferry_config *cfg;
    struct event_base *base;
    struct held_store store;
    struct msid_key key;
    struct smtp_dmtp_hooks hooks;   /* arg = this */
    struct disk_child *sweep;       /* a running pull_hold_expire_start, or NULL */
    struct hold_job *jobs;          /* holds being written by their children */
    /* A notice the expiry sweep queued (pull_notify_unpulled), to be indexed. */
    void (*queued)(const char *id, void *arg);
    void *queued_arg;
};

/* Open held/ and the key (data_dir/dmtp.key); holds and sweeps run their
   children from base. 0 ok; -1 with err. */
int  pull_hold_open(struct pull_hold *p, struct event_base *base, const struct ferry_config *cfg, char *err,
                    size_t errlen);
void pull_hold_close(struct pull_hold *p);
/* Remove held messages past their expiry (at most max), in a forked child
   (queue/disk_child.h), for the event loop; with pull_notify_unpulled the
   sender of each is first sent a failure DSN naming the recipients that never
   pulled (p->queued hears of each). False when one is still running or it
   cannot start (the caller tries next time). */
bool pull_hold_expire_start(struct pull_hold *p, time_t now, size_t max);

/* The message's Subject: value (unfolded, the first one) from msg into out;
   "" when absent. Reads at most the first 64 KiB. */
void pull_hold_subject(struct msg_src msg, char *out, size_t outsz);

#endif

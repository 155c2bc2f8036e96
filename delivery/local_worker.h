/*
 * local_worker — the loop of a delivery worker process (queue/delivery_pool.h
 * forks it from the queue process; it runs as the queue's user, with the
 * queue's configuration and nothing else open).
 *
 * It reads one job at a time from fd (local_job.h), opens the queued message
 * under spool_dir/queue/ itself, runs local_deliver_batch (delivery/local.h:
 * maps, aliases, Maildir, mbox, pipe, file, LMTP) and writes its answers back,
 * blocking: only this worker waits on a slow command, lock or LMTP server. A
 * kept LMTP connection is closed after LMTP_IDLE seconds without a job. It
 * returns when the queue process closes its end (or a write to it fails), or
 * exits on a request it cannot parse: the queue never sends one.
 */
#ifndef FERRY_LOCAL_WORKER_H
#define FERRY_LOCAL_WORKER_H

#include "lib/settings.h"

/* The worker's exit status: 0 when the queue closed the channel, 1 on a bad request. */
int local_worker_main(const struct ferry_config *cfg, int fd);

#endif

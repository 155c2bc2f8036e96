/*
 * queue_proc — the queue process: the scheduler, remote and local delivery, DSNs,
 * DMARC report runs and DMTP pulls, on one event loop that never blocks (the
 * crash ordering of each step is at the top of queue_proc.c). The parent forks
 * it, hands it its end of a socketpair (lib/proc_msg.h) and the relay
 * credentials, and restarts it when it dies.
 */
#ifndef FERRY_QUEUE_PROC_H
#define FERRY_QUEUE_PROC_H

#include "lib/settings.h"

struct relayhost_creds;

/* Runs until SIGTERM; returns the process exit status. */
int queue_process_main(const struct ferry_config *cfg, int parent_fd, const struct relayhost_creds *creds);

#endif

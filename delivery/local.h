/*
 * local — local delivery: one recipient of one message, from address to mailbox.
 *
 * The queue process calls local_deliver for every recipient in a local domain and
 * for every queued expansion target (local_is_target). It resolves the address
 * (delivery/local_resolve.h: virtual map, aliases, sub-addressing, catch-all) and
 *  - when it stands for exactly one local delivery (a mailbox, a file, a pipe, an
 *    LMTP server), performs it and reports its result in st;
 *  - otherwise (several deliveries, or a remote address) delivers nothing, sets st
 *    to OK "2.1.5 expanded to N recipients" and fills *add with N new recipient
 *    strings. THE QUEUE MUST append each to the envelope as a new pending
 *    recipient (they are final: local ones are encoded "::kind rcpt<TAB>arg" and are
 *    never expanded again, so alias loops cannot grow the envelope) and record the
 *    original as delivered with that text, in one envelope write, before the next
 *    attempt. A crash before that write re-expands the original, which delivered
 *    nothing: no duplicates.
 *
 * Mailboxes: Maildir under mail_dir or mbox under mbox_dir (mailbox_format, per
 * domain), or the mailbox_transport LMTP server; mailbox_quota applies to Maildir
 * and mbox targets (5.2.2, permanent). Maps are re-read when their file changes;
 * a map that does not parse defers every local delivery (4.3.5) rather than
 * deliver past a broken alias. Every failure is classified where it happens
 * (delivery.h: delivery_errno_class).
 */
#ifndef FERRY_LOCAL_H
#define FERRY_LOCAL_H

#include <stdbool.h>
#include <sys/stat.h>

#include "delivery/delivery.h"
#include "delivery/local_map.h"
#include "lib/settings.h"

struct local_map_file {
    struct local_map map;
    bool loaded;
    struct stat sb;              /* of the file when loaded */
    char error[512];             /* "" when the file parsed */
};

/* Owned by the queue process; zero-initialise, free with local_maps_free. */
struct local_maps {
    struct local_map_file aliases, virtual;
};

struct local_new_rcpts {
    char (*v)[ADDR_PATH_MAX + 1];
    size_t n;
};

/* Is this recipient string a queued expansion target (always delivered locally)? */
bool local_is_target(const char *rcpt_addr);

void local_deliver(const struct ferry_config *cfg, struct local_maps *maps, const char *sender,
                   const char *rcpt_addr, int msg_fd, struct delivery_status *st,
                   struct local_new_rcpts *add);

void local_new_rcpts_free(struct local_new_rcpts *add);
void local_maps_free(struct local_maps *maps);

/* Octets in a mailbox: a Maildir's new/ and cur/ files, or an mbox file's size.
   0 for a mailbox that does not exist yet. -1 on error (errno). */
int  local_mailbox_usage(const char *path, bool maildir, unsigned long long *bytes);
/* The quota verdict: FAIL 5.2.2 when usage + size would pass quota (0: none). */
bool local_quota_exceeded(unsigned long long usage, unsigned long long size, unsigned long long quota,
                          const char *mailbox, struct delivery_status *st);

#endif

/*
 * home_delivery — local delivery as a system user (mailbox_owner = system).
 *
 * The queue process runs as Ferry's unprivileged user and cannot write into
 * users' home directories. For a mailbox whose name is a system account, it asks
 * the parent (still root) with a request; the parent forks, the child drops to
 * that account (initgroups, setgid, setuid: no way back), delivers into
 * ~/Maildir/ (quota checked as for other mailboxes) and writes its result into a
 * pipe; the parent answers the queue. Root's mailbox is never written this way
 * (aliases should send root's mail to a person).
 *
 * This module is the wire format (pure) and the delivery done inside the child.
 * Request: "ID\tINDEX\tJUNK\tUSER\tSENDER\tRCPT" (JUNK 1: the message was
 * quarantined at receipt, file it in ~/Maildir/.Junk; else 0); result: "ID\tINDEX\tR\tTEXT" with R
 * 0 ok, 1 defer, 2 fail. Neither field may hold a tab or a line end: addresses
 * are validated SMTP paths and user names come from getpwnam, so none does; the
 * parser refuses anything else.
 */
#ifndef FERRY_HOME_DELIVERY_H
#define FERRY_HOME_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/delivery.h"
#include "lib/msgfile.h"
#include "lib/addr.h"

#define HOME_USER_MAX 64
/* The longest one delivery may take; the parent kills the child then, and the
   queue stops waiting a little later whatever happened to the answer. */
#define HOME_TIMEOUT_SECONDS 300

struct home_request {
    char id[32];
    unsigned index;
    char user[HOME_USER_MAX];
    char sender[ADDR_PATH_MAX + 1];
    char rcpt[ADDR_PATH_MAX + 1];
    bool junk;
};

struct home_result {
    char id[32];
    unsigned index;
    struct delivery_status st;
};

/* Is name a system account Ferry may deliver to as that user (not root)? */
bool home_user_ok(const char *name);

/* Each returns the length written, -1 when it does not fit or a field is bad. */
int  home_request_format(const struct home_request *r, char *out, size_t outsz);
int  home_result_format(const struct home_result *r, char *out, size_t outsz);
/* 0 ok, -1 malformed. */
int  home_request_parse(const char *data, size_t len, struct home_request *r);
int  home_result_parse(const char *data, size_t len, struct home_result *r);

/* In the child, already running as the user: ~/Maildir/ delivery of msg (its
   size octets, lib/msgfile.h). */
void home_deliver(const char *home, const char *sender, const char *rcpt, bool junk, struct msg_src msg,
                  unsigned long long quota, struct delivery_status *st);

#endif

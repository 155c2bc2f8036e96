/*
 * mailbox_quota — how full a mailbox is, and the mailbox_quota verdict, for
 * both writers of mailboxes: local delivery (delivery/local.c, in the delivery
 * workers) and home-directory delivery (delivery/home_delivery.c, in the
 * parent as the user). A Maildir's size is the sum of its new/ and cur/ files
 * (at most LOCAL_USAGE_MAX_FILES of them are counted: a bounded walk).
 */
#ifndef FERRY_MAILBOX_QUOTA_H
#define FERRY_MAILBOX_QUOTA_H

#include <stdbool.h>

#include "delivery/delivery.h"

/* Octets in a mailbox: a Maildir's new/ and cur/ files, or an mbox file's size.
   0 for a mailbox that does not exist yet. -1 on error (errno). */
int  mailbox_usage(const char *path, bool maildir, unsigned long long *bytes);
/* The quota verdict: FAIL 5.2.2 when usage + size would pass quota (0: none). */
bool mailbox_quota_exceeded(unsigned long long usage, unsigned long long size, unsigned long long quota,
                            const char *mailbox, struct delivery_status *st);

#endif

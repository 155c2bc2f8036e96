/*
 * maildir — deliver one message into a Maildir (tmp → new), durably.
 *
 * The mailbox is <root>/<name>/ with tmp/, new/ and cur/ created on first use
 * (mode 0700). The file is written in tmp/ under a unique name
 * (<seconds>.M<usec>P<pid>Q<n>.<host>), its header lines `prefix` first, then the
 * spooled message with CRLF turned into the local LF convention; it is fsync'd,
 * renamed into new/, and new/ is fsync'd before success is reported. Any failure
 * removes the tmp file and is classified: disk full, quota, I/O → DEFER (4.x.x);
 * a path that cannot be a mailbox → FAIL (5.x.x).
 */
#ifndef FERRY_MAILDIR_H
#define FERRY_MAILDIR_H

#include <stddef.h>

#include "delivery/delivery.h"
#include "lib/msgfile.h"

/* msg's size octets are read from its current offset (never to end of file:
   lib/msgfile.h). folder: NULL for the inbox,
   or a Maildir++ folder name such as ".Junk" (<root>/<name>/.Junk/, made on first
   use with its "maildirfolder" marker, the inbox made first so the folder has a
   Maildir to belong to). On success, the path of the new file is written to
   delivered (if not NULL). */
void maildir_deliver(const char *root, const char *name, const char *folder, const char *prefix, struct msg_src msg,
                     struct delivery_status *st, char *delivered, size_t delivered_sz);

/* The folder receive-time policy files quarantined mail in (RFC-NOTES, DMARC). */
#define MAILDIR_JUNK_FOLDER ".Junk"

#endif

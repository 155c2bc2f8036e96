/*
 * crlf — reading a spooled message (CRLF line ends, as received) with LF line
 * ends, for the local mailboxes and commands that want Unix text (Maildir,
 * mbox, pipe).
 *
 * A CR is dropped only before an LF; a CR at the end of one read is held until
 * the next read tells whether an LF follows, and given back at end of file. The
 * reader's state is in the caller's struct; no allocation.
 *
 * A queue file may hold more than the message (its envelope: lib/msgfile.h), so
 * the reader is given the message's size and stops there, never at end of file.
 */
#ifndef FERRY_CRLF_H
#define FERRY_CRLF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct crlf_reader {
    bool pending_cr;
    unsigned long long left;        /* octets of the message still to read */
};

/* A reader of the next size octets of a file (from its current offset). */
#define CRLF_READER(size) ((struct crlf_reader){ false, (size) })

/* The next piece of fd into out (outsz >= 2), CRLF turned into LF. The octets
   written (> 0); 0 at the message's end; -1 with errno (EINTR is retried; EIO
   when the file ends first: lib/msgfile.h's msg_read). */
ssize_t crlf_read(int fd, struct crlf_reader *s, char *out, size_t outsz);

#endif

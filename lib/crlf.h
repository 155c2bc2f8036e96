/*
 * crlf — reading a spooled message (CRLF line ends, as received) with LF line
 * ends, for the local mailboxes and commands that want Unix text (Maildir,
 * mbox, pipe).
 *
 * A CR is dropped only before an LF; a CR at the end of one read is held until
 * the next read tells whether an LF follows, and given back at end of file. The
 * reader's state is one flag in the caller's struct; no allocation.
 */
#ifndef FERRY_CRLF_H
#define FERRY_CRLF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct crlf_reader {
    bool pending_cr;
};

/* The next piece of fd into out (outsz >= 2), CRLF turned into LF. The octets
   written (> 0); 0 at end of file; -1 with errno (EINTR is retried). */
ssize_t crlf_read(int fd, struct crlf_reader *s, char *out, size_t outsz);

#endif

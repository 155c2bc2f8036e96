/*
 * msgfile — the layout of a queued message's file (queue/ID.msg), for every part
 * that reads one: the message octets come first, and a file committed by the
 * spool may hold more after them.
 *
 *   format 1   the message, exactly `size` octets (its envelope is ID.env beside it)
 *   format 2   the message, then its first envelope (lib/envelope.h's text, ending in
 *              its own "end CRC" line), then a trailer of MSGFILE_TRAILER_LEN octets:
 *                "FERRY-ENV-AT <offset: 16 hex> <length: 8 hex> <queue ID>\n"
 *              naming where that envelope starts (= the message's size) and how long
 *              it is; offset + length + the trailer's length is the file's size.
 *
 * Format 2 is what the spool commits (one file per message: queue/spool.h); a later
 * envelope update writes ID.env and cuts the file back to format 1. The queue ID in
 * the trailer ties it to its file: message text that happens to end like a trailer
 * (a format-1 file is the sender's octets) names a queue ID the sender cannot know
 * in advance (microseconds and a process ID), and anything inconsistent is no trailer.
 *
 * So no reader may read a message file to its end: struct msg_src carries the
 * message's size beside the descriptor, and msg_read stops there. Pure file I/O,
 * nothing logged or allocated.
 */
#ifndef FERRY_MSGFILE_H
#define FERRY_MSGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define MSGFILE_TRAILER_LEN 56      /* 13 + 16 + 1 + 8 + 1 + 16 (QID_LEN) + 1 */

/* A message to read: its file, and how many octets of it (from offset 0) are the
   message. */
struct msg_src {
    int fd;
    unsigned long long size;
};

/* The trailer for an envelope of len octets at off, in file id: out gets
   MSGFILE_TRAILER_LEN octets and a NUL. -1 when id is not a queue ID. */
int  msgfile_trailer_format(char *out, size_t outsz, const char *id, unsigned long long off, unsigned long len);
/* Is t[0..tlen) the trailer of a file of file_size octets named id? Then *off and
   *len name its envelope (len > 0, at most ENV_MAX_SIZE). */
bool msgfile_trailer_parse(const char *t, size_t tlen, const char *id, unsigned long long file_size,
                           unsigned long long *off, unsigned long *len);
/* Read fd's trailer: 1 (format 2: *off, *len set), 0 (none: format 1), 2 (the
   file ends in what starts like a trailer but is not a right one: damaged), -1
   with errno. *file_size is the size it was judged at. A file cut back to
   format 1 while this looked (the queue updating the envelope) is seen as
   format 1. */
int  msgfile_trailer_read(int fd, const char *id, unsigned long long *file_size, unsigned long long *off,
                          unsigned long *len);
/* The message's size in fd (file id): a right trailer's offset, else the file's size. */
int  msgfile_msg_size(int fd, const char *id, unsigned long long *size);

/* Read the next piece of the message from fd's file offset, *left octets at
   most: the octets read (> 0), 0 once *left is 0, -1 with errno (EINTR retried;
   EIO when the file ends before the message does). */
ssize_t msg_read(int fd, unsigned long long *left, void *buf, size_t n);
/* pread(2) within m's message: at most m.size - off octets. Same returns. */
ssize_t msg_pread(struct msg_src m, void *buf, size_t n, unsigned long long off);

#endif

/*
 * fdio — whole reads and writes on file descriptors, for every part: the loops
 * that retry EINTR and short counts, written once; and listings of a directory
 * held open by descriptor.
 *
 * Blocking descriptors only (a non-blocking one may fail with EAGAIN half-way).
 * Nothing here logs or allocates, except fd_read_file, whose buffer the caller
 * frees.
 */
#ifndef FERRY_FDIO_H
#define FERRY_FDIO_H

#include <dirent.h>
#include <stddef.h>

/* write(2) until all of p[0..n) is out (EINTR retried). 0 / -1 with errno. */
int fd_write_all(int fd, const void *p, size_t n);
/* The same through send(2) with MSG_NOSIGNAL, for a socket whose peer may be
   gone: EPIPE instead of SIGPIPE. */
int fd_send_all(int fd, const void *p, size_t n);
/* read(2) until n octets are in. -1 at an error or at end of file first. */
int fd_read_all(int fd, void *p, size_t n);
/* read(2) until n octets are in, end of file or an error (EINTR retried): the
   octets read, which callers that tolerate a short read take as they are. */
size_t fd_read_upto(int fd, void *p, size_t n);
/* Reads the whole file dirfd/name (AT_FDCWD: a path) into a malloc'd buffer,
   NUL-terminated (*len excludes it). -1 with errno; EFBIG when it is larger
   than max. */
int fd_read_file(int dirfd, const char *name, size_t max, char **data, size_t *len);

/* A directory stream over a duplicate of dirfd, rewound to the start (a dup
   shares the offset an earlier listing left at the end); dirfd stays open and
   the caller closedir()s the stream. NULL with errno. */
DIR *fd_dir_listing(int dirfd);
/* Unlink every entry of the directory dirfd ("." and ".." aside, no
   subdirectories expected); returns how many were removed, or -1. */
int fd_dir_unlink_all(int dirfd);

#endif

/*
 * conn_holder — a process that only holds idle client connections for the smtp
 * process, so that together they keep more connections open than one process
 * has descriptors for (issue 16: 20 000 idle connections where RLIMIT_NOFILE's
 * hard limit is 20 000 and cannot be raised).
 *
 * The smtp process starts it (conn_holder_start) and talks to it over one
 * SOCK_SEQPACKET link in fixed records (struct holder_msg), descriptors riding
 * along (lib/fdpass.h):
 *   smtp -> holder  PARK (with the connection), RETURN (give it back now),
 *                   DROP (close it: the session has ended)
 *   holder -> smtp  BACK (with the connection: it became readable, or hung up,
 *                   or RETURN asked), LOST (it could not be held: no descriptor
 *                   came, or the holder had no memory; the connection is closed)
 * A slot (the smtp side's index) and a token (slot plus a generation) name each
 * connection, so that a RETURN or DROP crossing a BACK on the link is ignored.
 *
 * The holder never reads a byte from a client, parses nothing but the link's
 * records, and opens nothing: it polls for readability and hands connections
 * back. It exits when the link closes (the smtp process stopped or died), and
 * every connection it held closes with it.
 */
#ifndef FERRY_CONN_HOLDER_H
#define FERRY_CONN_HOLDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum holder_op { HOLDER_PARK = 1, HOLDER_RETURN, HOLDER_DROP, HOLDER_BACK, HOLDER_LOST };

struct holder_msg {
    uint32_t op;        /* enum holder_op */
    uint32_t slot;
    uint64_t token;
};

#define HOLDER_SLOTS_MAX (1u << 22)     /* a slot beyond this is a broken link */

/* Fork the holder. *link: the smtp side's end (non-blocking, close-on-exec).
   The child keeps only the link and stdin/stdout/stderr. Returns the child's
   pid, or -1 with err. */
pid_t conn_holder_start(int *link, char *err, size_t errlen);

#endif

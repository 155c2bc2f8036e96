/*
 * spool_spare — message files reused instead of created (issue 16).
 *
 * On ext4 without a journal, every inode created first walks the block group's
 * recently freed inodes (ext4 will not hand out one freed less than a minute
 * ago); under mail churn that walk was 40 % of the smtp process's CPU. So a
 * delivered message's file is not unlinked: the queue process empties it and
 * keeps it in spare/, and a new draft takes one from there before it creates one.
 *
 * The danger is a reader still holding the old file open: it would read another
 * message. The smtp process, which owns the files it created, uses a taken file
 * only after a write lease on it (fcntl F_SETLEASE F_WRLCK) was granted and was
 * still whole a moment later: the kernel grants one only when no other open file
 * exists for the inode anywhere (a descriptor passed to a worker included), and
 * any open made while it is held breaks it (F_GETLEASE then says so).
 *
 *   retire   (queue process, the message delivered, its own descriptor closed)
 *            rename queue/ID.msg to spare/.ID (a name no taker looks at); its
 *            thread empties it (ftruncate): published spare/ files never
 *            hold a delivered message's text (hidden ones may, until emptied). Anything going wrong: the file is unlinked.
 *   publish  (the same thread, after its fsync of queue/ made the removals
 *            durable, so that a crash cannot bring the old name back beside a
 *            reused inode) rename spare/.ID to spare/ID, where takers find it.
 *   take     (smtp process) rename spare/ID to incoming/NEWID.msg (never over an
 *            existing name), open it, and use it only if it is a regular, empty
 *            file of this process's user with one link and the lease says no one
 *            else has it open; otherwise unlink it and try the next, or create.
 *
 * Nothing in spare/ is ever needed: a crash at any step loses no message (a
 * delivered one may come back as an empty stray, which the first scan removes),
 * spare/ is emptied at daemon start, and it holds at most SPARE_MAX files.
 * Only format-2 files (the envelope inside ID.msg) are retired: a pair's ID.env
 * goes first and an emptied ID.msg beside a resurrected ID.env would be
 * quarantined instead of removed. Where leases are refused (a filesystem without
 * them) taking turns itself off and every draft creates its file, as before. The
 * lease's break signal is SIGIO, which the smtp process ignores.
 */
#ifndef FERRY_SPOOL_SPARE_H
#define FERRY_SPOOL_SPARE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/qid.h"

#define SPARE_MAX 1024          /* files kept in spare/ at most */
#define SPARE_TAKE_BATCH 64     /* names a taker reads from spare/ at a time */
#define SPARE_PAUSE_MS 1000     /* a taker's pause after a failure that may pass */

/* The queue process's side. A delivered message leaves queue/ on the loop (one
   rename, no I/O wait); a thread does what waits for the disk: emptying the
   file (freeing its blocks, which on a `discard` mount waits for the device),
   the fsync of queue/ that makes the removals durable, and the publish.
   Before, the unlink's block freeing and that fsync stood the queue's loop
   still (issue 16: relaying was bounded by them). */
#define SPARE_RING 4096         /* retired files waiting for the thread */
struct spare_pool {
    int dirfd;                  /* spare/, or -1: off (the caller unlinks) */
    int queue_dirfd;            /* queue/, fsync'd by the thread */
    pthread_t thread;
    bool started, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t head, len;           /* ring[head .. head+len) waits for the thread */
    char ring[SPARE_RING][QID_LEN + 1];
    int sync_errno;             /* the thread's last failed fsync of queue/, for the loop to log */
    /* The thread's own. */
    size_t count, since_count;  /* files in spare/, recounted every SPARE_MAX/4 */
};

/* Open spare/ under the spool directory and remove the hidden leftovers of an
   earlier queue process. queue_dirfd must stay open until spare_pool_close.
   Returns 0, or -1 (off; logged). The thread starts at the first retire. */
int  spare_pool_open(struct spare_pool *p, const char *spool_dir, int queue_dirfd);
/* Let the thread finish what it was given, then stop it. */
void spare_pool_close(struct spare_pool *p);
/* Take the delivered queue/ID.msg out of the queue: renamed to spare/.ID (a name
   no taker looks at), then the thread empties it and, once its fsync of queue/
   made the removal durable (so that a crash cannot bring the old name back
   beside a reused inode), renames it to spare/ID; over SPARE_MAX files, or when
   anything fails, it unlinks it instead. 1: out of queue/; 0: not touched, the
   caller removes it as before (off, or the thread is SPARE_RING behind). */
int  spare_retire(struct spare_pool *p, const char *id);

/* The taker's side (the smtp process). */
struct spare_taker {
    int dirfd;                  /* spare/, or -1: taking is off */
    int incoming_dirfd;         /* incoming/ */
    unsigned n, next;           /* names[next..n) not yet tried */
    mode_t umask;               /* the process's, when the taker was made */
    long long idle_until;       /* spare/ was empty, or a take failed: not looked at again
                                   before (ms, monotonic) */
    long long warned_until;     /* one warning a minute about failing takes */
    char names[SPARE_TAKE_BATCH][QID_LEN + 1];
};

/* NULL when spare/ or incoming/ cannot be opened (the caller creates files). */
struct spare_taker *spare_taker_new(const char *spool_dir);
void spare_taker_free(struct spare_taker *t);
/* A spare file renamed to incoming/<id>.msg, open read-write and empty, or -1:
   none (the caller creates the file as before). Where the filesystem refuses
   RENAME_NOREPLACE or leases, taking stops for good; after any other failure
   (but the ID being taken) it pauses for SPARE_PAUSE_MS. Either is logged. */
int  spare_take(struct spare_taker *t, const char *id);

/* Delete every file in spare/ (daemon start). Returns how many, or -1. */
int  spare_clean(const char *spool_dir);

#endif

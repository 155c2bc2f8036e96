/*
 * spool — the on-disk queue, and the promise behind "250 OK".
 *
 *   incoming/  being received; never acknowledged; emptied at daemon start
 *   queue/     committed: ID.msg, and ID.env once the envelope changed
 *   held/      DMTP: messages kept for a receiver to pull (always a pair, format 1)
 *   corrupt/   files that failed validation, moved aside with their reason, never deleted
 *   spare/     delivered messages' files, emptied, waiting to be a new draft's file
 *              (queue/spool_spare.h); emptied at daemon start
 *
 * A queued message is one file, or two (lib/msgfile.h):
 *   format 2   ID.msg = the message, its first envelope, a trailer naming where that
 *              envelope is. What the spool commits: one inode, one fsync per message.
 *   format 1   ID.msg = the message alone, ID.env = its envelope. What an envelope
 *              update leaves, what held/ keeps, and what earlier versions wrote.
 * Either way the message is ID.msg's first e->size octets: no reader reads it to
 * its end (struct msg_src, lib/msgfile.h).
 *
 * Commit (spool_commit, for a batch of drafts at once — group commit): fsync every
 * draft's ID.msg (message + envelope + trailer) in incoming/, rename each into
 * queue/, fsync queue/. Only then may the caller answer 250. The rename of ID.msg
 * into queue/ is the commit mark; a file there is never torn (it was fsync'd first),
 * and its trailer and the envelope's "end CRC" tell a damaged one (quarantined).
 *
 * Envelope updates are atomic: ID.env.tmp written, fsync'd, renamed over ID.env,
 * directory fsync'd; then an ID.msg still holding an envelope is cut back to the
 * message (ftruncate, fsync), so it is format 1 from then on. At load ID.env, when
 * present, wins (ID.msg must then be e->size octets, or longer with a trailer that
 * names exactly that end: a crash before the cut).
 *
 * Loading and removal: a queue/ID.msg with neither an ID.env nor a trailer was never
 * acknowledged (format 1 from an earlier version, crash between its two renames)
 * or was already delivered (a crash between the two unlinks of a pair) and is
 * removed by the queue process's first scan at start (spool_remove_stray); a
 * queue/ID.env whose ID.msg is missing or the wrong size is quarantined. Removal
 * unlinks ID.env first, then takes ID.msg out of queue/: a rename to spare/.ID
 * where the queue process reuses files (spare_retire), else an unlink; either way
 * one directory entry, made durable by an fsync of queue/ before the file can
 * hold another message.
 * Errors: -1 with errno preserved (ENOSPC, EROFS, EDQUOT... mean "try later").
 */
#ifndef FERRY_SPOOL_H
#define FERRY_SPOOL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/envelope.h"
#include "lib/msgfile.h"
#include "lib/qid.h"

struct spare_taker;

struct spool {
    char dir[PATH_MAX];
    int queue_dirfd;      /* open on queue/, for fsync */
    struct spare_taker *spare;  /* drafts reuse spare/ files (spool_take_spares), or NULL */
};

/* A message being received: incoming/ID.msg, open read-write in msg_fd (the
   smtp side reads back what it wrote: the header section of a DMTP reply, an
   inline TLSRPT report). */
struct spool_draft {
    char id[QID_LEN + 1];
    int msg_fd;
    bool has_env;         /* spool_draft_put_env wrote the envelope behind the message */
};

/* Create or check the directory tree (the spool 0711, maildrop/ 1733, the rest
   0700), owned by uid/gid when do_chown (root preparing it for the daemon's
   user): a link or a directory of someone else's where one is expected is
   refused with err naming it (lib/safe_dir.h), never followed or taken over. */
int  spool_prepare(const char *dir, bool do_chown, uid_t uid, gid_t gid, char *err, size_t errlen);
/* The same; group_bits (lib/privsep.h: 02070 when the smtp and queue users differ)
   are added to the private subdirectories' 0700. Files are created 0660 and
   narrowed by the process's umask (077 unless shared). */
int  spool_prepare_mode(const char *dir, bool do_chown, uid_t uid, gid_t gid, mode_t group_bits, char *err,
                        size_t errlen);
int  spool_open(struct spool *sp, const char *dir, char *err, size_t errlen);
void spool_close(struct spool *sp);
/* From now on spool_draft_new takes an emptied file from spare/ when there is one
   (queue/spool_spare.h) before it creates one. For the process that receives mail. */
void spool_take_spares(struct spool *sp);
/* Delete everything in incoming/; returns how many files, or -1. */
int  spool_clean_incoming(const struct spool *sp);

int  spool_draft_new(struct spool *sp, struct spool_draft *d);
/* Write the whole envelope and the trailer behind the message in the draft's
   file (format 2). The message must be complete: exactly e->size octets written
   (else EINVAL), e->id == d->id. Nothing may be written to the draft after it. */
int  spool_draft_put_env(struct spool *sp, struct spool_draft *d, const struct envelope *e);
void spool_draft_abort(struct spool *sp, struct spool_draft *d);
/* Put hdr[0..len) in front of the draft's message (header fields known only once
   the whole message was read: Authentication-Results, DKIM-Signature). The message
   is copied behind them into a new file that replaces the draft's. Before
   spool_draft_put_env only (EINVAL after it). */
int  spool_draft_prepend(struct spool *sp, struct spool_draft *d, const char *hdr, size_t len);
/* Commit n drafts with one directory fsync. On failure none is acknowledged and
   every draft is aborted. Every fsync runs in the calling thread, one after another. */
int  spool_commit(struct spool *sp, struct spool_draft **drafts, size_t n);

/* spool_commit in its steps, for a caller that runs the fsyncs on several threads
   at once (queue/spool_flusher.h). The order is the promise: begin; fsync every
   file of every draft (spool_draft_sync_file, which = 0 .. SPOOL_DRAFT_FILES-1, in
   any order, on any threads); only after all of them succeeded, publish (renames
   and the directory fsync: the drafts are committed when it returns 0); after any
   failure, abort instead. A draft is touched by one step at a time, and nothing
   else uses the drafts meanwhile; struct spool is only read. */
#define SPOOL_DRAFT_FILES 1     /* ID.msg, which holds the envelope too */
void spool_commit_begin(struct spool_draft **drafts, size_t n);
int  spool_draft_sync_file(const struct spool_draft *d, unsigned which);
int  spool_commit_publish(struct spool *sp, struct spool_draft **drafts, size_t n);
void spool_commit_abort(struct spool *sp, struct spool_draft **drafts, size_t n);

/* Queue a message that exists whole in memory (local pickups, generated mail):
   draft, write, envelope, commit — durable on return. Sets e->id and e->size.
   0 ok; -1 with errno, nothing queued. */
int  spool_enqueue(struct spool *sp, struct envelope *e, const char *msg, size_t len);

/* The envelope of queue/ID: ID.env, else the one inside ID.msg (format 2); read
   and validated, including ID.msg's size; e->spool_embedded tells which. 0 ok;
   -1 with err: *corrupt is set when a file exists but is bad (quarantine it);
   errno ENOENT when there is no envelope at all. */
int  spool_env_read(const struct spool *sp, const char *id, struct envelope *e,
                    bool *corrupt, char *err, size_t errlen);
/* spool_env_read for an ID from spool_scan_unopened: without SPOOL_HAS_ENV in
   files the envelope inside ID.msg is read first, with no lookup of ID.env. */
int  spool_env_read_listed(const struct spool *sp, const char *id, unsigned files, struct envelope *e,
                           bool *corrupt, char *err, size_t errlen);
int  spool_env_write(struct spool *sp, const struct envelope *e);
int  spool_msg_open(const struct spool *sp, const char *id);
int  spool_remove(struct spool *sp, const char *id);
/* spool_remove without its fsync of queue/, for a caller that fsyncs queue/ once
   for several removals (the queue process, once per turn of its loop). Until that
   fsync a crash may bring the message back: delivered twice, never lost.
   env_inside: the caller knows there is no ID.env (the envelope is inside ID.msg),
   so only ID.msg is unlinked. */
int  spool_remove_unsynced(struct spool *sp, const char *id, bool env_inside);
/* Move queue/ID.env and queue/ID.msg (whichever exist) to corrupt/, with ID.reason. */
int  spool_quarantine(struct spool *sp, const char *id, const char *reason);

/* Visit the IDs that have a queue/ID.env or an ID.msg with a trailer (format 2),
   each once, in ID order. In held/, stray files (ID.msg alone without a trailer,
   leftover .tmp) are cleaned up as described above when clean_strays is set;
   queue/ strays are removed by the queue process's first scan
   (spool_remove_stray).
   Returns the number visited or -1. */
typedef void (*spool_visit_fn)(const char *id, void *arg);
/* Every ID with a queue/ID.env or a queue/ID.msg, each once, in ID order, without
   opening anything: the caller's spool_env_read decides (ENOENT: not queued, a
   stray for spool_remove_stray). For the queue process, which reads every
   envelope it has not indexed anyway: a start with 100 000 messages then opens
   each once, not twice. files says which of the two the listing showed, so
   spool_env_read_listed need not look for an ID.env that is not there. */
#define SPOOL_HAS_ENV 1u
#define SPOOL_HAS_MSG 2u
typedef void (*spool_files_fn)(const char *id, unsigned files, void *arg);
int  spool_scan_unopened(struct spool *sp, spool_files_fn fn, void *arg);
/* queue/ID.msg with neither an ID.env nor a trailer is a stray (above): unlink it,
   logged. 1 removed, 0 not a stray (or gone), -1 error. Safe while the smtp
   process runs: it only ever renames whole format-2 files into queue/. */
int  spool_remove_stray(struct spool *sp, const char *id);
/* Delete the *.tmp files in queue/ (an envelope rewrite cut short). The count, or -1. */
int  spool_remove_temps(const struct spool *sp);
/* Is id queued (an ID.env, or an ID.msg with a trailer), as spool_scan would visit it? */
bool spool_queued(const struct spool *sp, const char *id);
int  spool_scan(struct spool *sp, bool clean_strays, spool_visit_fn fn, void *arg);

/* The same four on another directory of the spool (held/: queue/held.h). */
int  spool_env_read_at(int dirfd, const char *id, struct envelope *e, bool *corrupt, char *err, size_t errlen);
int  spool_env_write_at(int dirfd, const struct envelope *e);
int  spool_remove_at(int dirfd, const char *id);
int  spool_scan_at(int dirfd, bool clean_strays, spool_visit_fn fn, void *arg);

/* Create dirfd/name as a new file of ours (0600) and return it open for writing:
   never through a symbolic link and never into someone else's file (O_CREAT|O_EXCL|
   O_NOFOLLOW). With replace, whatever has that name is unlinked first (a planted
   link goes, its target is untouched); without, an existing name fails (EEXIST). */
int  spool_create_new(int dirfd, const char *name, bool replace);
/* Write text and a newline to dirfd/name through spool_create_new: the .reason
   beside a quarantined file. 0 ok; -1 with errno. */
int  spool_write_reason(int dirfd, const char *name, const char *text, bool replace);
/* fsync a file or directory by path. */
int  spool_fsync_path(const char *path);

#endif

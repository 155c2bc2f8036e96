/*
 * smtp_pickup — the smtp process's reader of <spool_dir>/maildrop/ (local mail
 * from ferry-sendmail; the format is in queue/maildrop.h).
 *
 * Every PICKUP_INTERVAL it looks for complete drop files ("d.*") and takes them one
 * per turn of the smtp process's event loop (a drop may be as large as
 * message_size_limit; sessions are served between two files). Each is checked as
 * the untrusted input it is (a regular file with one link, within the size limit,
 * a well-formed envelope, a message SMTP can carry), prepends a Received: naming
 * the submitting user (the file's owner), commits it to the queue, tells the
 * parent its queue ID, and removes the file. The commit comes first: a crash
 * between commit and removal queues the message twice (at least once, never
 * lost). A file that fails the checks is copied (through the descriptor that was
 * checked, never reopened by name) to a new file in corrupt/ with a .reason beside
 * it, then removed from maildrop/; something that is no regular file (a link, a
 * FIFO) leaves only its .reason. A temporary failure (spool full) leaves the file
 * for the next pass.
 */
#ifndef FERRY_SMTP_PICKUP_H
#define FERRY_SMTP_PICKUP_H

struct smtp_server;
struct smtp_pickup;

#define PICKUP_INTERVAL_MS 500

struct smtp_pickup *smtp_pickup_start(struct smtp_server *srv);
void smtp_pickup_stop(struct smtp_pickup *pk);
/* One whole pass now, all files at once (tests). Returns the number queued. */
int smtp_pickup_run(struct smtp_pickup *pk);

#endif

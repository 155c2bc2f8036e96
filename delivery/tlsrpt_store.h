/*
 * tlsrpt_store — the TLS-RPT counters (RFC 8460 §4): how many outbound sessions
 * per policy domain and UTC day succeeded, and how many failed with which result
 * type at which MX host and address. Called by remote delivery in the queue
 * process after each TLS step (delivery/remote_attempt.c), and read by the daily
 * report run.
 *
 * Store: tlsrpt.db in the queue's own environment (lib/privsep.h). One counter per key
 *   "C1\t" DAY "\t" DOMAIN "\t" PTYPE "\t" RESULT "\t" MX "\t" IP
 * and, for a failure, "\t" SIP "\t" REASON after it (SIP: the sending MTA's
 * address, REASON: a failure-reason-code; either may be empty; a key without
 * them, from before they were kept, still reads)
 * (DAY = UTC seconds / 86400; RESULT "ok" for a success, MX and IP then empty),
 * value the count in decimal; and the policy strings of a domain-day,
 *   "S1\t" DAY "\t" DOMAIN "\t" PTYPE   -> the policy's lines joined by "\n",
 * written by the first session of the day that has them. Key order groups a
 * day's domains together for the report run.
 *
 * A count is a read-modify-write in one transaction committed written, not
 * fsync'd (fdb_txn_commit_written): the queue's loop never waits for a disk
 * flush for a counter, and what an operating-system crash undoes is the last
 * few sessions' counts, never a report's consistency (RFC-NOTES.md "TLS-RPT").
 * Fields are bounded (TLSRPT_FIELD_MAX) and may not hold a tab or newline; an
 * event that breaks this is refused, not stored.
 */
#ifndef FERRY_TLSRPT_STORE_H
#define FERRY_TLSRPT_STORE_H

#include <stddef.h>

#define TLSRPT_STORE_DB   "tlsrpt.db"
#define TLSRPT_FIELD_MAX  255
#define TLSRPT_KEY_MAX    1024
#define TLSRPT_POLICY_MAX 8192

struct fdb_env;
struct fdb;

struct tlsrpt_event {
    long long when;             /* UTC seconds */
    const char *domain;         /* the policy domain (recipient domain) */
    const char *ptype;          /* "sts", "tlsa", "no-policy-found" */
    const char *result;         /* NULL: success; else an RFC 8460 §4.3 type */
    const char *mx, *ip;        /* the receiving MX host and address (failures) */
    const char *sip;            /* the sending address (failures; NULL: unknown) */
    const char *reason;         /* failure-reason-code (failures; NULL: none) */
    const char *policy;         /* the policy's lines joined by "\n", or NULL */
};

/* The counter key of ev, NUL-terminated; its length, or -1 when a field is
   missing, too long, or holds a tab or newline. The domain is lower-cased. */
int tlsrpt_store_key(const struct tlsrpt_event *ev, char *out, size_t outsz);

/* Add one to ev's counter (and store its policy strings when the domain-day
   has none yet). 0 ok, -1 with err. */
int tlsrpt_store_count(struct fdb_env *env, struct fdb *db, const struct tlsrpt_event *ev, char *err,
                       size_t errlen);

/* The RFC 8460 §4.3 result type for a TLS session that was not acceptable:
   established (the handshake completed), OpenSSL's verify result vr, dane
   (TLSA records were in force). */
const char *tlsrpt_result_of_verify(int established, long vr, int dane);

/* The count stored under ev's key: >= 0, or -1 on error. */
long long tlsrpt_store_get(struct fdb *db, const struct tlsrpt_event *ev);

#endif

/*
 * db — the Berkeley DB 5.3 environment Ferry keeps its durable key/value state in.
 *
 * One transactional environment per data_dir (DB_INIT_TXN|LOCK|LOG|MPOOL). Every
 * opener registers (DB_REGISTER) and asks for recovery (DB_RECOVER), so recovery
 * runs exactly when a previous user died inside the environment, and ferryctl can
 * open it safely while the daemon runs. Recovery run by another process panics
 * this one's handles: the next operation reopens the environment and its
 * databases (struct fdb pointers stay valid) and is retried once, unless it runs
 * inside a transaction begun before the reopen, which then fails. Databases are
 * B-trees opened inside a transaction. Errors come back as -1 with a one-sentence
 * message in err. One thread per environment handle.
 */
#ifndef FERRY_DB_H
#define FERRY_DB_H

#include <stddef.h>

struct fdb_env;
struct fdb;
struct fdb_txn;

/* A second open of the same dir in the same process shares the first's handle
   (Berkeley DB's DB_REGISTER allows one per process); each open needs its close. */
int  fdb_env_open(const char *dir, struct fdb_env **out, char *err, size_t errlen);
void fdb_env_close(struct fdb_env *env);

/* Open (creating when absent) the B-tree named file inside the environment. */
int  fdb_open(struct fdb_env *env, const char *file, struct fdb **out, char *err, size_t errlen);
void fdb_close(struct fdb *db);

int  fdb_txn_begin(struct fdb_env *env, struct fdb_txn **out);
int  fdb_txn_commit(struct fdb_txn *txn);   /* durable on return (synchronous log flush) */
/* Written to the kernel on return, not fsync'd: survives the death of any
   process, but an operating-system crash or power loss may undo the last few.
   For counters a hot path updates per message. */
int  fdb_txn_commit_written(struct fdb_txn *txn);
void fdb_txn_abort(struct fdb_txn *txn);

/* txn may be NULL: the call then runs in its own transaction.
   get: 0 found (*val malloc'd, caller frees), 1 not found, -1 error. */
int  fdb_put(struct fdb *db, struct fdb_txn *txn, const void *key, size_t klen,
             const void *val, size_t vlen);
int  fdb_get(struct fdb *db, struct fdb_txn *txn, const void *key, size_t klen,
             void **val, size_t *vlen);
/* As fdb_get, but takes the write lock at once (DB_RMW): for a read-modify-write
   inside txn, so two writers of the same key wait instead of deadlocking. */
int  fdb_get_for_update(struct fdb *db, struct fdb_txn *txn, const void *key, size_t klen,
                        void **val, size_t *vlen);
int  fdb_del(struct fdb *db, struct fdb_txn *txn, const void *key, size_t klen);  /* 1 if absent */

/* Visit every pair in key order; stop early when fn returns non-zero (returned). */
typedef int (*fdb_visit_fn)(const void *key, size_t klen, const void *val, size_t vlen, void *arg);
int  fdb_foreach(struct fdb *db, fdb_visit_fn fn, void *arg);

/* Delete at most max pairs for which pred returns non-zero. The keys are collected
   in one read scan and deleted after it (a delete inside the scan's transaction
   would wait on its own read lock), FDB_SWEEP_TXN to a transaction committed
   written, not fsync'd: a sweep is housekeeping (expiry), and one undone by a power
   loss is simply done again, so it costs an event loop no fsync. *deleted counts
   the pairs removed. 0 ok, -1 error. */
#define FDB_SWEEP_TXN 100
int  fdb_sweep(struct fdb *db, fdb_visit_fn pred, void *arg, size_t max, size_t *deleted);

/* Visit, in key order, the pairs whose key starts with prefix (plen may be 0),
   inside txn (NULL: a transaction of its own). Returns as fdb_foreach. */
int  fdb_foreach_prefix(struct fdb *db, struct fdb_txn *txn, const void *prefix, size_t plen,
                        fdb_visit_fn fn, void *arg);

/* Visit, in key order, the pairs from the first key >= from (flen 0: all), in a
   transaction of its own. Returns as fdb_foreach. */
int  fdb_foreach_from(struct fdb *db, const void *from, size_t flen, fdb_visit_fn fn, void *arg);

/* Store records 0..n-1 in one durable transaction, each only when its key is
   not there yet (a report received twice is kept once): key() writes record
   i's key (its length, 0 when it cannot be made: the batch fails), value() its
   value, asked only for a new key (0 or -1). A failed transaction (a deadlock)
   is tried again, up to 5 times. *stored and *dups count the records. 0 ok,
   -1 error (nothing stored; fdb_last_error says why). */
struct buf;
typedef size_t (*fdb_key_fn)(void *arg, size_t i, char *key, size_t keysz);
typedef int (*fdb_value_fn)(void *arg, size_t i, struct buf *value);
#define FDB_KEY_MAX 1024
int  fdb_put_new(struct fdb_env *env, struct fdb *db, size_t n, fdb_key_fn key, fdb_value_fn value,
                 size_t value_max, void *arg, size_t *stored, size_t *dups);

const char *fdb_last_error(struct fdb_env *env);

#endif

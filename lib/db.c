/* db — see db.h. Berkeley DB 5.3's transactional data store, wrapped so callers
   see four verbs and one error style. */
#include "lib/db.h"
#include "lib/buf.h"

#include <db.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A call that met a deadlock (two writers crossing) is retried this often when it
   runs in its own transaction; inside the caller's transaction the caller decides. */
#define DEADLOCK_RETRIES 10

/* Every database handle of the environment is kept on a list so that, when
   another process runs recovery (it found a dead user: a killed ferryctl, a
   killed worker) and thereby panics this process's handles, the environment
   can be closed and opened again under the callers' feet: their struct fdb
   pointers stay valid. generation counts reopens, so a transaction begun before
   one is known to be dead; open_txns keeps a reopen from pulling the
   environment out from under a transaction still running. */
struct fdb_env {
    DB_ENV *env;
    char *dir;
    struct fdb *dbs;
    unsigned generation;
    int open_txns;
    char err[256];
    /* Shared within a process (see fdb_env_open): */
    pid_t pid;
    unsigned refs;
    struct fdb_env *next_open;
};

/* The environments this process has open. DB_REGISTER allows one DB_ENV handle
   per process and environment, and the queue process has more than one user of
   data_dir (the pull client, MTA-STS's cache): the second open of a directory
   shares the first's handle. pid keeps a forked child (a disk_child, a report
   run) from using its parent's handle, which Berkeley DB forbids across fork. */
static struct fdb_env *open_envs;

struct fdb {
    struct fdb_env *env;
    DB *db;
    char *file;
    struct fdb *next;
};

struct fdb_txn {
    DB_TXN *txn;
    struct fdb_env *env;
    unsigned generation;
};

static void set_err(struct fdb_env *e, const char *what, int r)
{
    if (e)
        snprintf(e->err, sizeof e->err, "%s: %s", what, db_strerror(r));
}

/* Create and open the DB_ENV of e->dir into e->env. */
static int env_start(struct fdb_env *e, char *err, size_t errlen)
{
    int r = db_env_create(&e->env, 0);
    if (r != 0) {
        snprintf(err, errlen, "cannot create a Berkeley DB environment: %s", db_strerror(r));
        e->env = NULL;
        return -1;
    }
    /* Deadlocks are resolved as they happen (one of the two callers gets
       DB_LOCK_DEADLOCK and retries), so no detector thread is needed. */
    e->env->set_lk_detect(e->env, DB_LOCK_DEFAULT);
    /* DB_REGISTER + DB_RECOVER: recovery runs only when an earlier user of the
       environment died inside it, and never under a live process (ferryctl while
       the daemon runs). */
    u_int32_t flags = DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL | DB_REGISTER |
                      DB_RECOVER;
    r = e->env->open(e->env, e->dir, flags, 0660);    /* narrowed by the umask: lib/privsep.h */
    if (r != 0) {
        snprintf(err, errlen, "cannot open the Berkeley DB environment in %s: %s", e->dir, db_strerror(r));
        e->env->close(e->env, 0);
        e->env = NULL;
        return -1;
    }
    /* Old log files are removed once a checkpoint no longer needs them. */
    e->env->log_set_config(e->env, DB_LOG_AUTO_REMOVE, 1);
    return 0;
}

static int db_start(struct fdb *d, char *err, size_t errlen)
{
    int r = db_create(&d->db, d->env->env, 0);
    if (r == 0)
        r = d->db->open(d->db, NULL, d->file, NULL, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT, 0660);
    if (r != 0) {
        snprintf(err, errlen, "cannot open database %s: %s", d->file, db_strerror(r));
        if (d->db)
            d->db->close(d->db, 0);
        d->db = NULL;
        return -1;
    }
    return 0;
}

int fdb_env_open(const char *dir, struct fdb_env **out, char *err, size_t errlen)
{
    *out = NULL;
    pid_t self = getpid();
    for (struct fdb_env *o = open_envs; o; o = o->next_open)
        if (o->pid == self && !strcmp(o->dir, dir)) {
            o->refs++;
            *out = o;
            return 0;
        }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the database directory %s: %s", dir, strerror(errno));
        return -1;
    }
    struct fdb_env *e = calloc(1, sizeof *e);
    if (!e || !(e->dir = strdup(dir))) {
        snprintf(err, errlen, "out of memory");
        free(e);
        return -1;
    }
    if (env_start(e, err, errlen) < 0) {
        free(e->dir);
        free(e);
        return -1;
    }
    e->pid = self;
    e->refs = 1;
    e->next_open = open_envs;
    open_envs = e;
    *out = e;
    return 0;
}

/* DB_RUNRECOVERY: another process ran recovery (or the region is damaged) and
   every handle here is dead. Close them all and open again; the open joins the
   recovered environment, or recovers it itself. Refused while a transaction of
   ours is running, since its handle would dangle: the caller fails that one
   operation, aborts, and the next operation outside a transaction reopens. */
static int env_reopen(struct fdb_env *e)
{
    if (e->open_txns > 0)
        return -1;
    for (struct fdb *d = e->dbs; d; d = d->next) {
        if (d->db)
            d->db->close(d->db, 0);
        d->db = NULL;
    }
    if (e->env)
        e->env->close(e->env, 0);
    e->env = NULL;
    e->generation++;
    char why[256];
    if (env_start(e, why, sizeof why) < 0) {
        snprintf(e->err, sizeof e->err, "%s", why);
        return -1;
    }
    for (struct fdb *d = e->dbs; d; d = d->next)
        if (db_start(d, why, sizeof why) < 0) {
            snprintf(e->err, sizeof e->err, "%s", why);
            return -1;
        }
    return 0;
}

/* An environment whose reopen failed half way has NULL handles: try again
   before use, so the next operation either works or reports why it cannot. */
static int env_usable(struct fdb_env *e)
{
    if (e->env) {
        int all = 1;
        for (struct fdb *d = e->dbs; d; d = d->next)
            all = all && d->db;
        if (all)
            return 0;
    }
    return env_reopen(e);
}

void fdb_env_close(struct fdb_env *e)
{
    if (!e || --e->refs > 0)
        return;
    for (struct fdb_env **pp = &open_envs; *pp; pp = &(*pp)->next_open)
        if (*pp == e) {
            *pp = e->next_open;
            break;
        }
    if (e->env) {
        e->env->txn_checkpoint(e->env, 0, 0, 0);
        e->env->close(e->env, 0);
    }
    free(e->dir);
    free(e);
}

const char *fdb_last_error(struct fdb_env *e)
{
    return e ? e->err : "no database environment";
}

int fdb_open(struct fdb_env *e, const char *file, struct fdb **out, char *err, size_t errlen)
{
    *out = NULL;
    struct fdb *d = calloc(1, sizeof *d);
    if (!d || !(d->file = strdup(file))) {
        snprintf(err, errlen, "out of memory");
        free(d);
        return -1;
    }
    d->env = e;
    if ((e->env == NULL && env_usable(e) < 0) || db_start(d, err, errlen) < 0) {
        if (!e->env)
            snprintf(err, errlen, "%s", e->err);
        free(d->file);
        free(d);
        return -1;
    }
    d->next = e->dbs;
    e->dbs = d;
    *out = d;
    return 0;
}

void fdb_close(struct fdb *d)
{
    if (!d)
        return;
    for (struct fdb **p = &d->env->dbs; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            break;
        }
    if (d->db)
        d->db->close(d->db, 0);
    free(d->file);
    free(d);
}

int fdb_txn_begin(struct fdb_env *e, struct fdb_txn **out)
{
    struct fdb_txn *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    for (int attempt = 0;; attempt++) {
        int r = env_usable(e) < 0 ? DB_RUNRECOVERY : e->env->txn_begin(e->env, NULL, &t->txn, 0);
        if (r == 0)
            break;
        if (r == DB_RUNRECOVERY && attempt == 0 && env_reopen(e) == 0)
            continue;
        set_err(e, "cannot begin a transaction", r);
        free(t);
        return -1;
    }
    t->env = e;
    t->generation = e->generation;
    e->open_txns++;
    *out = t;
    return 0;
}

/* End t with commit flags (or abort when how < 0). A transaction from before a
   reopen belongs to a closed environment: it is only freed. */
static int txn_end(struct fdb_txn *t, int how)
{
    struct fdb_env *e = t->env;
    int r = DB_RUNRECOVERY;
    if (t->generation == e->generation)
        r = how < 0 ? t->txn->abort(t->txn) : t->txn->commit(t->txn, (u_int32_t)how);
    e->open_txns--;
    free(t);
    return r;
}

int fdb_txn_commit_written(struct fdb_txn *t)
{
    /* DB_TXN_WRITE_NOSYNC: the log is written to the kernel, not fsync'd. */
    return txn_end(t, DB_TXN_WRITE_NOSYNC) == 0 ? 0 : -1;
}

int fdb_txn_commit(struct fdb_txn *t)
{
    /* DB_TXN_SYNC: the log is on disk when this returns, whatever the
       environment's default. */
    return txn_end(t, DB_TXN_SYNC) == 0 ? 0 : -1;
}

void fdb_txn_abort(struct fdb_txn *t)
{
    if (t)
        txn_end(t, -1);
}

static void dbt_in(DBT *d, const void *p, size_t n)
{
    memset(d, 0, sizeof *d);
    d->data = (void *)p;
    d->size = (u_int32_t)n;
}

/* One operation: in the caller's transaction, or in its own, retried on deadlock. */
enum op { OP_PUT, OP_GET, OP_GET_RMW, OP_DEL };

static int run(struct fdb *d, struct fdb_txn *txn, enum op op, const void *key, size_t klen, const void *val,
               size_t vlen, void **out, size_t *outlen)
{
    if (klen > UINT32_MAX || vlen > UINT32_MAX) {
        snprintf(d->env->err, sizeof d->env->err, "key or value too large");
        return -1;
    }
    if (txn && txn->generation != d->env->generation) {
        snprintf(d->env->err, sizeof d->env->err, "transaction outlived a database recovery");
        return -1;
    }
    int reopened = 0;
    for (int attempt = 0;; attempt++) {
        DB_TXN *t = txn ? txn->txn : NULL;
        int r = 0;
        if (!txn && env_usable(d->env) < 0)
            return -1;
        if (!txn && (r = d->env->env->txn_begin(d->env->env, NULL, &t, 0)) != 0) {
            if (r == DB_RUNRECOVERY && !reopened++ && env_reopen(d->env) == 0)
                continue;
            set_err(d->env, "cannot begin a transaction", r);
            return -1;
        }
        DBT k, v;
        dbt_in(&k, key, klen);
        int result = 0;
        switch (op) {
        case OP_PUT:
            dbt_in(&v, val, vlen);
            r = d->db->put(d->db, t, &k, &v, 0);
            break;
        case OP_GET:
        case OP_GET_RMW:
            memset(&v, 0, sizeof v);
            v.flags = DB_DBT_MALLOC;
            r = d->db->get(d->db, t, &k, &v, op == OP_GET_RMW ? DB_RMW : 0);
            if (r == 0) {
                *out = v.data;
                *outlen = v.size;
            } else if (r == DB_NOTFOUND) {
                result = 1;
                r = 0;
            }
            break;
        case OP_DEL:
            r = d->db->del(d->db, t, &k, 0);
            if (r == DB_NOTFOUND) {
                result = 1;
                r = 0;
            }
            break;
        }
        if (txn) {
            if (r != 0) {
                set_err(d->env, "database operation failed", r);
                return -1;
            }
            return result;
        }
        /* commit and abort both free the handle, whatever they return */
        if (r == 0)
            r = t->commit(t, DB_TXN_SYNC);
        else
            t->abort(t);
        if (r == 0)
            return result;
        if ((op == OP_GET || op == OP_GET_RMW) && *out) {
            free(*out);
            *out = NULL;
        }
        if ((r == DB_LOCK_DEADLOCK || r == DB_LOCK_NOTGRANTED) && attempt < DEADLOCK_RETRIES)
            continue;
        if (r == DB_RUNRECOVERY && !reopened++ && env_reopen(d->env) == 0)
            continue;
        set_err(d->env, "database operation failed", r);
        return -1;
    }
}

int fdb_put(struct fdb *d, struct fdb_txn *txn, const void *key, size_t klen, const void *val, size_t vlen)
{
    return run(d, txn, OP_PUT, key, klen, val, vlen, NULL, NULL);
}

int fdb_get(struct fdb *d, struct fdb_txn *txn, const void *key, size_t klen, void **val, size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    return run(d, txn, OP_GET, key, klen, NULL, 0, val, vlen);
}

int fdb_get_for_update(struct fdb *d, struct fdb_txn *txn, const void *key, size_t klen, void **val, size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    return run(d, txn, OP_GET_RMW, key, klen, NULL, 0, val, vlen);
}

int fdb_del(struct fdb *d, struct fdb_txn *txn, const void *key, size_t klen)
{
    return run(d, txn, OP_DEL, key, klen, NULL, 0, NULL, NULL);
}

/* One scan; *visited counts the pairs handed to fn, and *dberr is the Berkeley DB
   error when -1 is returned. */
/* From the first key >= prefix; with match, only while keys start with it. */
static int scan_once(struct fdb *d, struct fdb_txn *txn, const void *prefix, size_t plen, bool match, fdb_visit_fn fn,
                void *arg, size_t *visited, int *dberr)
{
    DBC *c;
    DB_TXN *t = txn ? txn->txn : NULL;
    int r;
    if (!txn && (r = d->env->env->txn_begin(d->env->env, NULL, &t, 0)) != 0) {
        *dberr = r;
        set_err(d->env, "cannot begin a transaction", r);
        return -1;
    }
    r = d->db->cursor(d->db, t, &c, 0);
    if (r != 0) {
        if (!txn)
            t->abort(t);
        *dberr = r;
        set_err(d->env, "cannot open a cursor", r);
        return -1;
    }
    DBT k, v;
    memset(&k, 0, sizeof k);
    memset(&v, 0, sizeof v);
    u_int32_t how = DB_NEXT;
    if (plen > 0) {
        /* DB_SET_RANGE: the first key >= prefix (BDB then points k at its own copy). */
        k.data = (void *)prefix;
        k.size = (u_int32_t)plen;
        how = DB_SET_RANGE;
    }
    int stop = 0;
    while ((r = c->get(c, &k, &v, how)) == 0) {
        how = DB_NEXT;
        if (match && plen > 0 && (k.size < plen || memcmp(k.data, prefix, plen) != 0)) {
            r = DB_NOTFOUND;
            break;
        }
        (*visited)++;
        stop = fn(k.data, k.size, v.data, v.size, arg);
        if (stop)
            break;
    }
    c->close(c);
    if (r != 0 && r != DB_NOTFOUND) {
        if (!txn)
            t->abort(t);
        *dberr = r;
        set_err(d->env, "cannot read the database", r);
        return -1;
    }
    if (!txn)
        t->commit(t, 0);
    return stop;
}

/* A scan in a transaction of its own counts as an open transaction while it runs:
   a visitor's own operation that meets DB_RUNRECOVERY must not reopen the
   environment under the scan's cursor. */
static int scan(struct fdb *d, struct fdb_txn *txn, const void *prefix, size_t plen, bool match, fdb_visit_fn fn,
                void *arg, size_t *visited, int *dberr)
{
    if (!txn)
        d->env->open_txns++;
    int r = scan_once(d, txn, prefix, plen, match, fn, arg, visited, dberr);
    if (!txn)
        d->env->open_txns--;
    return r;
}

static int foreach(struct fdb *d, struct fdb_txn *txn, const void *prefix, size_t plen, bool match,
                   fdb_visit_fn fn, void *arg)
{
    if (txn && txn->generation != d->env->generation) {
        snprintf(d->env->err, sizeof d->env->err, "transaction outlived a database recovery");
        return -1;
    }
    if (!txn && env_usable(d->env) < 0)
        return -1;
    size_t visited = 0;
    int dberr = 0;
    int r = scan(d, txn, prefix, plen, match, fn, arg, &visited, &dberr);
    /* Retried after a reopen only when fn has seen nothing yet: a visitor with
       side effects must not see the same pairs twice. */
    if (r < 0 && dberr == DB_RUNRECOVERY && !txn && visited == 0 && env_reopen(d->env) == 0)
        r = scan(d, txn, prefix, plen, match, fn, arg, &visited, &dberr);
    return r;
}


int fdb_foreach_prefix(struct fdb *d, struct fdb_txn *txn, const void *prefix, size_t plen, fdb_visit_fn fn,
                       void *arg)
{
    return foreach(d, txn, prefix, plen, true, fn, arg);
}

int fdb_foreach_from(struct fdb *d, const void *from, size_t flen, fdb_visit_fn fn, void *arg)
{
    return foreach(d, NULL, from, flen, false, fn, arg);
}

int fdb_foreach(struct fdb *d, fdb_visit_fn fn, void *arg)
{
    return fdb_foreach_prefix(d, NULL, NULL, 0, fn, arg);
}

struct sweep {
    fdb_visit_fn pred;
    void *arg;
    size_t max, n;
    void **keys;
    size_t *lens;
};

static int sweep_visit(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct sweep *w = arg;
    if (!w->pred(k, kl, v, vl, w->arg))
        return 0;
    void *copy = malloc(kl ? kl : 1);
    if (!copy)
        return -1;
    memcpy(copy, k, kl);
    w->keys[w->n] = copy;
    w->lens[w->n] = kl;
    return ++w->n == w->max ? 1 : 0;
}

int fdb_sweep(struct fdb *d, fdb_visit_fn pred, void *arg, size_t max, size_t *deleted)
{
    *deleted = 0;
    if (max == 0)
        return 0;
    struct sweep w = { .pred = pred, .arg = arg, .max = max, .keys = calloc(max, sizeof(void *)),
                       .lens = calloc(max, sizeof(size_t)) };
    int r = -1;
    if (w.keys && w.lens)
        r = fdb_foreach(d, sweep_visit, &w) < 0 ? -1 : 0;
    struct fdb_txn *txn = NULL;
    size_t in_txn = 0, pending = 0;
    for (size_t i = 0; i < w.n; i++) {
        if (r == 0 && !txn && fdb_txn_begin(d->env, &txn) < 0)
            r = -1;
        if (r == 0) {
            int x = fdb_del(d, txn, w.keys[i], w.lens[i]);
            if (x < 0)
                r = -1;
            else if (x == 0)
                pending++;
            if (r == 0 && (++in_txn == FDB_SWEEP_TXN || i + 1 == w.n)) {
                if (fdb_txn_commit_written(txn) < 0)
                    r = -1;
                else
                    *deleted += pending;
                txn = NULL, in_txn = 0, pending = 0;
            }
        }
        free(w.keys[i]);
    }
    if (txn)
        fdb_txn_abort(txn);
    free(w.keys);
    free(w.lens);
    return r;
}

int fdb_put_new(struct fdb_env *env, struct fdb *db, size_t n, fdb_key_fn key, fdb_value_fn value,
                size_t value_max, void *arg, size_t *stored, size_t *dups)
{
    *stored = *dups = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        struct fdb_txn *t;
        if (fdb_txn_begin(env, &t) < 0)
            return -1;
        int rc = 0;
        size_t st = 0, du = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            char k[FDB_KEY_MAX];
            size_t klen = key(arg, i, k, sizeof k);
            void *v;
            size_t vlen;
            int g = klen ? fdb_get_for_update(db, t, k, klen, &v, &vlen) : -1;
            if (g == 0) {
                free(v);
                du++;
                continue;
            }
            struct buf b;
            buf_init(&b, value_max);
            rc = g < 0 || value(arg, i, &b) < 0 || fdb_put(db, t, k, klen, b.data, b.len) < 0 ? -1 : 0;
            buf_free(&b);
            st++;
        }
        if (rc == 0 && fdb_txn_commit(t) == 0) {
            *stored = st;
            *dups = du;
            return 0;
        }
        if (rc < 0)
            fdb_txn_abort(t);
    }
    return -1;
}

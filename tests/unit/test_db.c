/* Unit tests for lib/db: the Berkeley DB environment wrapper, on real files. */
#include "lib/db.h"
#include "tests/unit/unit.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];
static char err[512];

static void setup(void)
{
    strcpy(dir, "/tmp/ferry-db-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void open_both(struct fdb_env **e, struct fdb **d)
{
    ck_assert_msg(fdb_env_open(dir, e, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(fdb_open(*e, "t.db", d, err, sizeof err) == 0, "%s", err);
}

static char *get_str(struct fdb *d, const char *key)
{
    void *v;
    size_t n;
    int r = fdb_get(d, NULL, key, strlen(key), &v, &n);
    ck_assert_int_ge(r, 0);
    if (r == 1)
        return NULL;
    char *s = malloc(n + 1);
    memcpy(s, v, n);
    s[n] = '\0';
    free(v);
    return s;
}

static int collect(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    char *out = arg;
    strncat(out, k, kl);
    strcat(out, "=");
    strncat(out, v, vl);
    strcat(out, ";");
    return 0;
}

static int stop_at_b(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    (*(int *)arg)++;
    return kl == 1 && *(const char *)k == 'b' ? 7 : 0;
}

START_TEST(put_get_del_foreach)
{
    struct fdb_env *e;
    struct fdb *d;
    open_both(&e, &d);
    ck_assert_int_eq(fdb_put(d, NULL, "b", 1, "2", 1), 0);
    ck_assert_int_eq(fdb_put(d, NULL, "a", 1, "1", 1), 0);
    ck_assert_int_eq(fdb_put(d, NULL, "c", 1, "3", 1), 0);
    ck_assert_int_eq(fdb_put(d, NULL, "b", 1, "two", 3), 0);      /* replaces */
    char *s = get_str(d, "b");
    ck_assert_str_eq(s, "two");
    free(s);
    ck_assert_ptr_null(get_str(d, "zz"));
    char all[256] = "";
    ck_assert_int_eq(fdb_foreach(d, collect, all), 0);
    ck_assert_str_eq(all, "a=1;b=two;c=3;");                       /* key order */
    int visited = 0;
    ck_assert_int_eq(fdb_foreach(d, stop_at_b, &visited), 7);     /* early stop returns fn's value */
    ck_assert_int_eq(visited, 2);
    ck_assert_int_eq(fdb_del(d, NULL, "a", 1), 0);
    ck_assert_int_eq(fdb_del(d, NULL, "a", 1), 1);
    ck_assert_ptr_null(get_str(d, "a"));
    /* binary keys and values with NULs */
    ck_assert_int_eq(fdb_put(d, NULL, "k\0x", 3, "\0\1\2", 3), 0);
    void *v;
    size_t n;
    ck_assert_int_eq(fdb_get(d, NULL, "k\0x", 3, &v, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert(memcmp(v, "\0\1\2", 3) == 0);
    free(v);
    fdb_close(d);
    fdb_env_close(e);
}
END_TEST

START_TEST(prefix_scan_and_get_for_update)
{
    struct fdb_env *e;
    struct fdb *d;
    open_both(&e, &d);
    const char *keys[] = { "a", "ab", "ab\0x", "abc", "b", "ac" };
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(fdb_put(d, NULL, keys[i], strlen(keys[i]) + (i == 2 ? 2 : 0), "v", 1), 0);
    char all[256] = "";
    ck_assert_int_eq(fdb_foreach_prefix(d, NULL, "ab", 2, collect, all), 0);
    ck_assert_str_eq(all, "ab=v;ab=v;abc=v;");        /* "ab", "ab\0x" (printed to the NUL), "abc" */
    all[0] = '\0';
    ck_assert_int_eq(fdb_foreach_prefix(d, NULL, "zz", 2, collect, all), 0);
    ck_assert_str_eq(all, "");
    struct fdb_txn *t;
    ck_assert_int_eq(fdb_txn_begin(e, &t), 0);
    void *v;
    size_t n;
    ck_assert_int_eq(fdb_get_for_update(d, t, "b", 1, &v, &n), 0);
    free(v);
    ck_assert_int_eq(fdb_get_for_update(d, t, "none", 4, &v, &n), 1);
    all[0] = '\0';
    ck_assert_int_eq(fdb_foreach_prefix(d, t, "a", 1, collect, all), 0);   /* inside a transaction */
    ck_assert_str_eq(all, "a=v;ab=v;ab=v;abc=v;ac=v;");
    ck_assert_int_eq(fdb_txn_commit(t), 0);
    fdb_close(d);
    fdb_env_close(e);
}
END_TEST

static int starts_with_a(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    return kl > 0 && *(const char *)k == 'a';
}

START_TEST(sweep)
{
    struct fdb_env *e;
    struct fdb *d;
    open_both(&e, &d);
    const char *keys[] = { "a1", "a2", "a3", "b1" };
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(fdb_put(d, NULL, keys[i], 2, "v", 1), 0);
    size_t n;
    ck_assert_int_eq(fdb_sweep(d, starts_with_a, NULL, 2, &n), 0);     /* at most 2 */
    ck_assert_uint_eq(n, 2);
    char all[256] = "";
    ck_assert_int_eq(fdb_foreach(d, collect, all), 0);
    ck_assert_str_eq(all, "a3=v;b1=v;");
    ck_assert_int_eq(fdb_sweep(d, starts_with_a, NULL, 100, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(fdb_sweep(d, starts_with_a, NULL, 100, &n), 0);
    ck_assert_uint_eq(n, 0);
    fdb_close(d);
    fdb_env_close(e);
}
END_TEST

START_TEST(foreach_prefix)
{
    struct fdb_env *e;
    struct fdb *d;
    open_both(&e, &d);
    const char *keys[] = { "al x", "alice a", "alice b", "alicex c", "bob a", "a" };
    for (size_t i = 0; i < 6; i++)
        ck_assert_int_eq(fdb_put(d, NULL, keys[i], strlen(keys[i]), "v", 1), 0);
    char all[256] = "";
    ck_assert_int_eq(fdb_foreach_prefix(d, NULL, "alice ", 6, collect, all), 0);
    ck_assert_str_eq(all, "alice a=v;alice b=v;");
    all[0] = '\0';
    ck_assert_int_eq(fdb_foreach_prefix(d, NULL, "zz", 2, collect, all), 0);      /* past the end */
    ck_assert_str_eq(all, "");
    ck_assert_int_eq(fdb_foreach_prefix(d, NULL, "bob", 3, collect, all), 0);
    ck_assert_str_eq(all, "bob a=v;");
    int count = 0;
    ck_assert_int_eq(fdb_foreach_prefix(d, NULL, "a", 1, stop_at_b, &count), 0);
    ck_assert_int_eq(count, 5);
    fdb_close(d);
    fdb_env_close(e);
}
END_TEST

START_TEST(transactions_commit_and_abort)
{
    struct fdb_env *e;
    struct fdb *d;
    open_both(&e, &d);
    struct fdb_txn *t;
    ck_assert_int_eq(fdb_txn_begin(e, &t), 0);
    ck_assert_int_eq(fdb_put(d, t, "x", 1, "1", 1), 0);
    ck_assert_int_eq(fdb_put(d, t, "y", 1, "2", 1), 0);
    fdb_txn_abort(t);
    ck_assert_ptr_null(get_str(d, "x"));
    ck_assert_ptr_null(get_str(d, "y"));
    ck_assert_int_eq(fdb_txn_begin(e, &t), 0);
    ck_assert_int_eq(fdb_put(d, t, "x", 1, "1", 1), 0);
    void *v;
    size_t n;
    ck_assert_int_eq(fdb_get(d, t, "x", 1, &v, &n), 0);           /* visible inside its transaction */
    free(v);
    ck_assert_int_eq(fdb_del(d, t, "nothing", 7), 1);
    ck_assert_int_eq(fdb_txn_commit(t), 0);
    char *s = get_str(d, "x");
    ck_assert_str_eq(s, "1");
    free(s);
    fdb_close(d);
    fdb_env_close(e);
}
END_TEST

START_TEST(reopen_keeps_data)
{
    struct fdb_env *e;
    struct fdb *d;
    open_both(&e, &d);
    ck_assert_int_eq(fdb_put(d, NULL, "kept", 4, "yes", 3), 0);
    fdb_close(d);
    fdb_env_close(e);
    open_both(&e, &d);
    char *s = get_str(d, "kept");
    ck_assert_str_eq(s, "yes");
    free(s);
    fdb_close(d);
    fdb_env_close(e);
}
END_TEST

START_TEST(second_process_while_open)
{
    /* ferryctl writes while the daemon has the environment open. */
    struct fdb_env *e;
    struct fdb *d;
    open_both(&e, &d);
    ck_assert_int_eq(fdb_put(d, NULL, "parent", 6, "1", 1), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct fdb_env *ce;
        struct fdb *cd;
        char cerr[512];
        if (fdb_env_open(dir, &ce, cerr, sizeof cerr) < 0 || fdb_open(ce, "t.db", &cd, cerr, sizeof cerr) < 0)
            _exit(2);
        void *v;
        size_t n;
        if (fdb_get(cd, NULL, "parent", 6, &v, &n) != 0)
            _exit(3);
        free(v);
        if (fdb_put(cd, NULL, "child", 5, "2", 1) < 0)
            _exit(4);
        fdb_close(cd);
        fdb_env_close(ce);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    char *s = get_str(d, "child");
    ck_assert_str_eq(s, "2");
    free(s);
    fdb_close(d);
    fdb_env_close(e);
}
END_TEST

START_TEST(recovery_after_a_crash)
{
    /* A process dies with the environment open and a transaction running; the
       next opener recovers, and committed data is there while the unfinished
       transaction's is not. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct fdb_env *ce;
        struct fdb *cd;
        char cerr[512];
        struct fdb_txn *t;
        if (fdb_env_open(dir, &ce, cerr, sizeof cerr) < 0 || fdb_open(ce, "t.db", &cd, cerr, sizeof cerr) < 0)
            _exit(2);
        if (fdb_put(cd, NULL, "committed", 9, "1", 1) < 0 || fdb_txn_begin(ce, &t) < 0 ||
            fdb_put(cd, t, "unfinished", 10, "1", 1) < 0)
            _exit(3);
        _exit(0);       /* no close, no commit: as if killed */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    struct fdb_env *e;
    struct fdb *d;
    open_both(&e, &d);
    char *s = get_str(d, "committed");
    ck_assert_ptr_nonnull(s);
    free(s);
    ck_assert_ptr_null(get_str(d, "unfinished"));
    fdb_close(d);
    fdb_env_close(e);
}
END_TEST

START_TEST(survives_recovery_run_by_another_process)
{
    /* The daemon holds the environment open; a ferryctl is killed inside it; the
       next ferryctl runs recovery, which panics every handle the daemon holds.
       The daemon's next operations must reopen and go on, not fail until restart. */
    struct fdb_env *e;
    struct fdb *d;
    open_both(&e, &d);
    ck_assert_int_eq(fdb_put(d, NULL, "before", 6, "1", 1), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct fdb_env *ce;
        struct fdb *cd;
        char cerr[512];
        struct fdb_txn *t;
        if (fdb_env_open(dir, &ce, cerr, sizeof cerr) < 0 || fdb_open(ce, "t.db", &cd, cerr, sizeof cerr) < 0 ||
            fdb_txn_begin(ce, &t) < 0 || fdb_put(cd, t, "unfinished", 10, "1", 1) < 0)
            _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct fdb_env *ce;
        char cerr[512];
        if (fdb_env_open(dir, &ce, cerr, sizeof cerr) < 0) /* runs recovery */
            _exit(2);
        fdb_env_close(ce);
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    /* each entry point once: a plain read, a write, a transaction, a scan */
    char *s = get_str(d, "before");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "1");
    free(s);
    ck_assert_ptr_null(get_str(d, "unfinished"));
    ck_assert_int_eq(fdb_put(d, NULL, "after", 5, "2", 1), 0);
    struct fdb_txn *t;
    ck_assert_int_eq(fdb_txn_begin(e, &t), 0);
    ck_assert_int_eq(fdb_put(d, t, "in-txn", 6, "3", 1), 0);
    ck_assert_int_eq(fdb_txn_commit(t), 0);
    char all[256] = "";
    ck_assert_int_eq(fdb_foreach(d, collect, all), 0);
    ck_assert_str_eq(all, "after=2;before=1;in-txn=3;");
    fdb_close(d);
    fdb_env_close(e);
}
END_TEST

START_TEST(errors_name_the_place)
{
    struct fdb_env *e;
    if (geteuid() != 0) {
        char ro[128];
        snprintf(ro, sizeof ro, "%s/ro", dir);
        ck_assert_int_eq(mkdir(ro, 0500), 0);
        char sub[160];
        snprintf(sub, sizeof sub, "%s/env", ro);
        ck_assert_int_eq(fdb_env_open(sub, &e, err, sizeof err), -1);
        ck_assert_ptr_nonnull(strstr(err, sub));
    }
    /* A path through a regular file fails for root too. */
    char file[128], below[160];
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(below, sizeof below, "%s/env", file);
    ck_assert_int_eq(fdb_env_open(below, &e, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, below));
}
END_TEST

Suite *db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, put_get_del_foreach);
    tcase_add_test(tc, foreach_prefix);
    tcase_add_test(tc, sweep);
    tcase_add_test(tc, transactions_commit_and_abort);
    tcase_add_test(tc, prefix_scan_and_get_for_update);
    tcase_add_test(tc, reopen_keeps_data);
    tcase_add_test(tc, second_process_while_open);
    tcase_add_test(tc, recovery_after_a_crash);
    tcase_add_test(tc, survives_recovery_run_by_another_process);
    tcase_add_test(tc, errors_name_the_place);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(db_suite)

/*
 * test_dmarc_agg.c — auth/dmarc_agg.h on real Berkeley DB files.
 *
 * Covers: agreeing messages share a row and are counted; the period's policy is
 * the last one published; due only after the period's end; freeze fixes one report
 * ID; a message for a frozen period is counted in the next one; claim is granted
 * once; marking every destination makes the period done and deletes its rows;
 * purge forgets done periods; no rua: nothing recorded; invalid values refused;
 * a writer killed with SIGKILL mid-stream loses no committed count; a sender that
 * dies between claim and mark never gets the same destination again.
 */
#include "auth/dmarc_agg.h"
#include "lib/buf.h"
#include "tests/unit/unit.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DAY 86400
#define T0  (1700000000LL - 1700000000LL % DAY)     /* a UTC midnight */

static char dir[64];
static char err[512];
static struct fdb_env *env;
static struct dmarc_agg *agg;

static void open_store(void)
{
    ck_assert_msg(fdb_env_open(dir, &env, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(dmarc_agg_open(env, &agg, err, sizeof err) == 0, "%s", err);
}

static void close_store(void)
{
    dmarc_agg_close(agg);
    fdb_env_close(env);
    agg = NULL;
    env = NULL;
}

static void setup(void)
{
    strcpy(dir, "/tmp/ferry-dmarc-agg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    open_store();
}

static void teardown(void)
{
    if (agg)
        close_store();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct dmarc_agg_policy policy(const char *p, size_t nrua)
{
    struct dmarc_agg_policy pol;
    memset(&pol, 0, sizeof pol);
    strcpy(pol.p, p);
    strcpy(pol.adkim, "r");
    strcpy(pol.aspf, "r");
    strcpy(pol.testing, "n");
    strcpy(pol.psd, "u");
    strcpy(pol.discovery, "treewalk");
    for (size_t i = 0; i < nrua; i++)
        snprintf(pol.rua[i], sizeof pol.rua[i], "mailto:rua%zu@example.com", i);
    pol.nrua = nrua;
    return pol;
}

static struct dmarc_agg_row row(const char *ip, const char *dkim_result)
{
    struct dmarc_agg_row r;
    memset(&r, 0, sizeof r);
    strcpy(r.source_ip, ip);
    strcpy(r.disposition, "none");
    strcpy(r.dkim_aligned, strcmp(dkim_result, "pass") ? "fail" : "pass");
    strcpy(r.spf_aligned, "fail");
    strcpy(r.header_from, "example.com");
    strcpy(r.envelope_from, "bounce.example.net");
    strcpy(r.envelope_to, "ferry.test");
    strcpy(r.spf_domain, "bounce.example.net");
    strcpy(r.spf_scope, "mfrom");
    strcpy(r.spf_result, "softfail");
    strcpy(r.dkim[0].domain, "example.com");
    strcpy(r.dkim[0].selector, "s1");
    strcpy(r.dkim[0].result, dkim_result);
    r.ndkim = 1;
    return r;
}

static unsigned long long total(const struct dmarc_agg_report *r)
{
    unsigned long long n = 0;
    for (size_t i = 0; i < r->nrows; i++)
        n += r->rows[i].count;
    return n;
}

START_TEST(agreeing_messages_share_a_row)
{
    struct dmarc_agg_policy pol = policy("none", 1);
    struct dmarc_agg_row a = row("192.0.2.1", "pass"), b = row("2001:db8::1", "fail");
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(dmarc_agg_add(agg, "Example.COM.", &pol, &a, T0 + 10 + i, DAY), 0);
    pol = policy("quarantine", 2);     /* the record changed during the day */
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &b, T0 + 500, DAY), 0);
    /* other period, other domain */
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0 + DAY + 1, DAY), 0);
    ck_assert_int_eq(dmarc_agg_add(agg, "example.org", &pol, &a, T0 + 1, DAY), 0);

    struct dmarc_agg_report r;
    ck_assert_int_eq(dmarc_agg_load(agg, "example.com", T0, &r), 0);
    ck_assert_uint_eq(r.nrows, 2);
    ck_assert_str_eq(r.rows[0].source_ip, "192.0.2.1");
    ck_assert_uint_eq(r.rows[0].count, 3);
    ck_assert_str_eq(r.rows[0].dkim[0].selector, "s1");
    ck_assert_str_eq(r.rows[0].spf_result, "softfail");
    ck_assert_str_eq(r.rows[1].source_ip, "2001:db8::1");
    ck_assert_uint_eq(r.rows[1].count, 1);
    ck_assert_str_eq(r.rows[1].dkim[0].result, "fail");
    ck_assert_str_eq(r.policy.p, "quarantine");
    ck_assert_uint_eq(r.policy.nrua, 2);
    ck_assert_int_eq(r.end, T0 + DAY);
    ck_assert_int_eq(r.state, DMARC_PERIOD_OPEN);
    ck_assert_str_eq(r.report_id, "");
    dmarc_agg_report_free(&r);

    struct dmarc_agg_period_id *due;
    size_t n;
    ck_assert_int_eq(dmarc_agg_due(agg, T0 + DAY - 1, &due, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(due);
    ck_assert_int_eq(dmarc_agg_due(agg, T0 + DAY, &due, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(due[0].domain, "example.com");
    ck_assert_int_eq(due[0].begin, T0);
    ck_assert_str_eq(due[1].domain, "example.org");
    free(due);
}
END_TEST

START_TEST(passing_signatures_first_and_capped)
{
    struct dmarc_agg_policy pol = policy("none", 1);
    struct dmarc_agg_row a = row("192.0.2.1", "fail");
    for (size_t i = 1; i < DMARC_AGG_MAX_DKIM + 5; i++) {
        snprintf(a.dkim[i % DMARC_AGG_MAX_DKIM].domain, DMARC_AGG_DOMAIN_MAX, "d%zu.example", i);
        strcpy(a.dkim[i % DMARC_AGG_MAX_DKIM].selector, "s");
        strcpy(a.dkim[i % DMARC_AGG_MAX_DKIM].result, i == 7 ? "pass" : "neutral");
    }
    a.ndkim = DMARC_AGG_MAX_DKIM + 5;
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0, DAY), 0);
    struct dmarc_agg_report r;
    ck_assert_int_eq(dmarc_agg_load(agg, "example.com", T0, &r), 0);
    ck_assert_uint_eq(r.rows[0].ndkim, DMARC_AGG_MAX_DKIM);
    ck_assert_str_eq(r.rows[0].dkim[0].result, "pass");
    ck_assert_str_eq(r.rows[0].dkim[0].domain, "d7.example");
    dmarc_agg_report_free(&r);
}
END_TEST

START_TEST(freeze_claim_mark_done_purge)
{
    struct dmarc_agg_policy pol = policy("reject", 2);
    struct dmarc_agg_row a = row("192.0.2.1", "pass");
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0 + 5, DAY), 0);
    struct dmarc_agg_report r, again;
    ck_assert_int_eq(dmarc_agg_freeze(agg, "example.com", T0, T0 + DAY - 1, &r), 1);   /* not over */
    ck_assert_int_eq(dmarc_agg_freeze(agg, "example.com", T0, T0 + DAY, &r), 0);
    ck_assert_int_eq(r.state, DMARC_PERIOD_FROZEN);
    ck_assert_uint_eq(strlen(r.report_id), 32);
    ck_assert_int_eq(dmarc_agg_freeze(agg, "example.com", T0, T0 + DAY + 60, &again), 0);
    ck_assert_str_eq(again.report_id, r.report_id);            /* fixed once */
    dmarc_agg_report_free(&again);

    /* A late message stamped inside the frozen period is counted in the next one. */
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0 + 100, DAY), 0);
    ck_assert_int_eq(dmarc_agg_load(agg, "example.com", T0, &again), 0);
    ck_assert_uint_eq(total(&again), 1);
    dmarc_agg_report_free(&again);
    ck_assert_int_eq(dmarc_agg_load(agg, "example.com", T0 + DAY, &again), 0);
    ck_assert_uint_eq(total(&again), 1);
    dmarc_agg_report_free(&again);

    ck_assert_int_eq(dmarc_agg_mark(agg, "example.com", T0, 0, DMARC_DEST_SENT), 1);  /* not claimed */
    ck_assert_int_eq(dmarc_agg_claim(agg, "example.com", T0, 0), 0);
    ck_assert_int_eq(dmarc_agg_claim(agg, "example.com", T0, 0), 1);
    ck_assert_int_eq(dmarc_agg_claim(agg, "example.com", T0, 5), 1);
    ck_assert_int_eq(dmarc_agg_mark(agg, "example.com", T0, 0, DMARC_DEST_SENT), 0);
    ck_assert_int_eq(dmarc_agg_mark(agg, "example.com", T0, 0, DMARC_DEST_FAILED), 1);
    ck_assert_int_eq(dmarc_agg_load(agg, "example.com", T0, &again), 0);
    ck_assert_int_eq(again.state, DMARC_PERIOD_FROZEN);         /* rua 1 still pending */
    ck_assert_int_eq(again.dest[0], DMARC_DEST_SENT);
    ck_assert_int_eq(again.dest[1], DMARC_DEST_PENDING);
    dmarc_agg_report_free(&again);
    ck_assert_int_eq(dmarc_agg_claim(agg, "example.com", T0, 1), 0);
    ck_assert_int_eq(dmarc_agg_mark(agg, "example.com", T0, 1, DMARC_DEST_TOO_BIG), 0);
    ck_assert_int_eq(dmarc_agg_load(agg, "example.com", T0, &again), 0);
    ck_assert_int_eq(again.state, DMARC_PERIOD_DONE);
    ck_assert_uint_eq(again.nrows, 0);                          /* rows deleted */
    ck_assert_int_eq(again.dest[1], DMARC_DEST_TOO_BIG);
    dmarc_agg_report_free(&again);
    dmarc_agg_report_free(&r);

    struct dmarc_agg_period_id *due;
    size_t n;
    ck_assert_int_eq(dmarc_agg_due(agg, T0 + 3 * DAY, &due, &n), 0);
    ck_assert_uint_eq(n, 1);                                    /* only the next day's */
    ck_assert_int_eq(due[0].begin, T0 + DAY);
    free(due);
    ck_assert_int_eq(dmarc_agg_purge(agg, T0 + DAY + 10, 7 * DAY), 0);
    ck_assert_int_eq(dmarc_agg_purge(agg, T0 + 9 * DAY, 7 * DAY), 1);
    ck_assert_int_eq(dmarc_agg_load(agg, "example.com", T0, &again), 1);
}
END_TEST

START_TEST(no_rua_is_not_recorded_and_no_destination_is_done)
{
    struct dmarc_agg_policy pol = policy("none", 0);
    struct dmarc_agg_row a = row("192.0.2.1", "pass");
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0, DAY), 1);
    struct dmarc_agg_report r;
    ck_assert_int_eq(dmarc_agg_load(agg, "example.com", T0, &r), 1);
}
END_TEST

START_TEST(invalid_values_are_refused)
{
    struct dmarc_agg_policy pol = policy("none", 1);
    struct dmarc_agg_row a = row("192.0.2.1", "pass");
    strcpy(a.disposition, "drop");
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0, DAY), -1);
    ck_assert_ptr_nonnull(strstr(dmarc_agg_error(agg), "disposition"));
    a = row("192.0.2.1", "pass");
    strcpy(a.header_from, "evil\ncom");
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0, DAY), -1);
    ck_assert_ptr_nonnull(strstr(dmarc_agg_error(agg), "header_from"));
    a = row("192.0.2.1", "pass");
    strcpy(pol.p, "block");
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0, DAY), -1);
    ck_assert_ptr_nonnull(strstr(dmarc_agg_error(agg), "p"));
    pol = policy("none", 1);
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0, 7 * 3600), -1);
    struct dmarc_agg_report r;
    ck_assert_int_eq(dmarc_agg_load(agg, "example.com", T0, &r), 1);
}
END_TEST

/* A writer killed with SIGKILL at an arbitrary moment: every add it reported as
   committed is in the store, and at most the one in flight is extra. */
START_TEST(kill_9_loses_no_committed_count)
{
    close_store();
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        struct fdb_env *ce;
        struct dmarc_agg *ca;
        char cerr[512];
        if (fdb_env_open(dir, &ce, cerr, sizeof cerr) < 0 || dmarc_agg_open(ce, &ca, cerr, sizeof cerr) < 0)
            _exit(2);
        struct dmarc_agg_policy pol = policy("none", 1);
        for (unsigned i = 0;; i++) {
            char ip[32];
            snprintf(ip, sizeof ip, "192.0.2.%u", i % 7);
            struct dmarc_agg_row a = row(ip, i % 3 ? "pass" : "fail");
            if (dmarc_agg_add(ca, "example.com", &pol, &a, T0 + i % 100, DAY) != 0)
                _exit(3);
            if (write(fds[1], "x", 1) != 1)
                _exit(4);
        }
    }
    close(fds[1]);
    char c;
    unsigned long long acked = 0;
    while (acked < 150 && read(fds[0], &c, 1) == 1)
        acked++;
    kill(pid, SIGKILL);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    while (read(fds[0], &c, 1) == 1)
        acked++;
    close(fds[0]);

    open_store();           /* DB_RECOVER runs: the child died inside the environment */
    struct dmarc_agg_report r;
    ck_assert_int_eq(dmarc_agg_load(agg, "example.com", T0, &r), 0);
    unsigned long long n = total(&r);
    ck_assert_msg(n >= acked && n <= acked + 1, "store has %llu, writer acknowledged %llu", n, acked);
    ck_assert_uint_eq(r.nrows, 14);         /* 7 addresses x pass/fail */
    dmarc_agg_report_free(&r);
    /* and the store still takes writes */
    struct dmarc_agg_policy pol = policy("none", 1);
    struct dmarc_agg_row a = row("192.0.2.1", "pass");
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0, DAY), 0);
}
END_TEST

/* A sender that claimed a destination and died before marking it: the claim
   survives recovery and nobody can claim that destination again. */
START_TEST(crash_between_claim_and_mark_never_sends_twice)
{
    struct dmarc_agg_policy pol = policy("none", 1);
    struct dmarc_agg_row a = row("192.0.2.1", "pass");
    ck_assert_int_eq(dmarc_agg_add(agg, "example.com", &pol, &a, T0, DAY), 0);
    close_store();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct fdb_env *ce;
        struct dmarc_agg *ca;
        char cerr[512];
        struct dmarc_agg_report r;
        if (fdb_env_open(dir, &ce, cerr, sizeof cerr) < 0 || dmarc_agg_open(ce, &ca, cerr, sizeof cerr) < 0 ||
            dmarc_agg_freeze(ca, "example.com", T0, T0 + DAY, &r) != 0 || dmarc_agg_claim(ca, "example.com", T0, 0) != 0)
            _exit(2);
        raise(SIGKILL);     /* the mail was (or was not) queued: we will never know */
        _exit(3);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    open_store();
    struct dmarc_agg_report r;
    ck_assert_int_eq(dmarc_agg_freeze(agg, "example.com", T0, T0 + DAY + 5, &r), 0);
    ck_assert_int_eq(r.dest[0], DMARC_DEST_CLAIMED);
    ck_assert_uint_eq(total(&r), 1);
    dmarc_agg_report_free(&r);
    ck_assert_int_eq(dmarc_agg_claim(agg, "example.com", T0, 0), 1);
}
END_TEST

Suite *dmarc_agg_suite(void)
{
    Suite *s = suite_create("dmarc_agg");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, agreeing_messages_share_a_row);
    tcase_add_test(tc, passing_signatures_first_and_capped);
    tcase_add_test(tc, freeze_claim_mark_done_purge);
    tcase_add_test(tc, no_rua_is_not_recorded_and_no_destination_is_done);
    tcase_add_test(tc, invalid_values_are_refused);
    tcase_add_test(tc, kill_9_loses_no_committed_count);
    tcase_add_test(tc, crash_between_claim_and_mark_never_sends_twice);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(dmarc_agg_suite)

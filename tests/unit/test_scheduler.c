/*
 * test_scheduler.c — queue/scheduler.h, with times fed in (no clock).
 *
 * Covers: heap order over random due times and only due jobs popped; update and
 * removal keep the heap valid; back-off doubling and its cap; jitter bounds;
 * message age (lifetime, delay warning once, wall clock stepped back/forward);
 * wall times converted at load with a stepped-back clock capped at the horizon;
 * per-destination behaviour (a down destination parks its jobs without
 * returning them, others proceed; concurrency share per pass); hold, release,
 * flush; many messages with few due.
 */
#include "queue/scheduler.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct sched_params params = { .retry_min_ms = 1000, .retry_max_ms = 64000, .dest_concurrency = 100000 };

static void id_of(char *id, long n)
{
    snprintf(id, QID_LEN + 1, "%016ld", n);
}

START_TEST(heap_order)
{
    struct sched *s = sched_new(&params);
    ck_assert_ptr_nonnull(s);
    srand(7);
    char id[QID_LEN + 1];
    enum { N = 5000 };
    for (int i = 0; i < N; i++) {
        long due = rand() % 1000000;
        /* the ID carries the due time and i, so order can be checked from IDs */
        id_of(id, due * 10000 + i);
        ck_assert_int_eq(sched_put(s, id, "example.org", due), 0);
    }
    ck_assert_uint_eq(sched_msg_count(s), N);
    /* half way: only due jobs, in order */
    static struct sched_due out[N];
    size_t n = sched_pop_due(s, 500000, out, N);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_lt(n, N);
    for (size_t i = 0; i < n; i++) {
        long v = atol(out[i].id) / 10000;
        ck_assert_int_le(v, 500000);
        if (i)      /* equal due times may come in either order */
            ck_assert_int_le(atol(out[i - 1].id) / 10000, v);
    }
    ck_assert_int_gt(sched_next_due(s), 500000);
    /* popped jobs are in flight: still indexed, not due */
    ck_assert_uint_eq(sched_msg_count(s), N);
    for (size_t i = 0; i < n; i++)
        sched_remove_msg(s, out[i].id);
    size_t rest = sched_pop_due(s, 2000000, out, N);
    ck_assert_uint_eq(n + rest, N);
    for (size_t i = 1; i < rest; i++)
        ck_assert_int_le(atol(out[i - 1].id) / 10000, atol(out[i].id) / 10000);
    ck_assert_int_eq(sched_next_due(s), SCHED_NEVER);
    sched_free(s);
}
END_TEST

START_TEST(update_and_remove_keep_order)
{
    struct sched *s = sched_new(&params);
    char id[QID_LEN + 1];
    for (int i = 0; i < 100; i++) {
        id_of(id, i);
        sched_put(s, id, "d", 1000 + i);
    }
    id_of(id, 50);
    sched_put(s, id, "d", 10);          /* moved to the front */
    id_of(id, 0);
    sched_put(s, id, "d", 5000);        /* moved to the back */
    id_of(id, 20);
    sched_remove_msg(s, id);
    ck_assert(!sched_has_msg(s, id));
    ck_assert_int_eq(sched_next_due(s), 10);
    struct sched_due out[200];
    size_t n = sched_pop_due(s, 100000, out, 200);
    ck_assert_uint_eq(n, 99);
    ck_assert_str_eq(out[0].id, "0000000000000050");
    ck_assert_str_eq(out[98].id, "0000000000000000");
    sched_free(s);
}
END_TEST

START_TEST(backoff_doubles_and_caps)
{
    struct sched_params p = { .retry_min_ms = 300000, .retry_max_ms = 4020000, .dest_concurrency = 1 };
    /* with rnd at the middle of the jitter range, the plain schedule shows */
    ck_assert_int_eq(sched_backoff(&p, 1, 30000), 300000);
    ck_assert_int_eq(sched_backoff(&p, 2, 60000), 600000);
    ck_assert_int_eq(sched_backoff(&p, 3, 120000), 1200000);
    ck_assert_int_eq(sched_backoff(&p, 4, 240000), 2400000);
    ck_assert_int_le(sched_backoff(&p, 5, 0), 4020000);
    ck_assert_int_eq(sched_backoff(&p, 5, 402000), 4020000);
    ck_assert_int_le(sched_backoff(&p, 1000, 12345), 4020000);
}
END_TEST

START_TEST(jitter_bounds)
{
    struct sched_params p = { .retry_min_ms = 1000, .retry_max_ms = 100000, .dest_concurrency = 1 };
    for (unsigned a = 1; a < 12; a++) {
        int64_t base = 1000;
        for (unsigned i = 1; i < a && base < 100000; i++)
            base *= 2;
        if (base > 100000)
            base = 100000;
        int64_t lo = INT64_MAX, hi = 0;
        for (uint32_t r = 0; r < 20000; r++) {
            int64_t d = sched_backoff(&p, a, r * 2654435761u);
            ck_assert_int_ge(d, p.retry_min_ms);
            ck_assert_int_le(d, p.retry_max_ms);
            ck_assert_int_ge(d, base - base / 10);
            ck_assert_int_le(d, base + base / 10);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
        }
        /* the jitter really spreads (except where a bound clips one side) */
        ck_assert_int_gt(hi - lo, base / 20);
    }
}
END_TEST

START_TEST(age_lifetime_and_warning)
{
    time_t arr = 1700000000;
    ck_assert_int_eq(sched_age_check(arr, arr + 10, 5 * 86400, 4 * 3600, false), SCHED_AGE_YOUNG);
    ck_assert_int_eq(sched_age_check(arr, arr + 4 * 3600, 5 * 86400, 4 * 3600, false), SCHED_AGE_WARN);
    ck_assert_int_eq(sched_age_check(arr, arr + 4 * 3600, 5 * 86400, 4 * 3600, true), SCHED_AGE_YOUNG);
    ck_assert_int_eq(sched_age_check(arr, arr + 4 * 3600, 5 * 86400, 0, false), SCHED_AGE_YOUNG);
    ck_assert_int_eq(sched_age_check(arr, arr + 5 * 86400, 5 * 86400, 4 * 3600, false), SCHED_AGE_EXPIRED);
    ck_assert_int_eq(sched_age_check(arr, arr + 5 * 86400, 5 * 86400, 4 * 3600, true), SCHED_AGE_EXPIRED);
    /* wall clock set back to before the arrival: young, not "huge age" */
    ck_assert_int_eq(sched_age_check(arr, arr - 86400, 5 * 86400, 4 * 3600, false), SCHED_AGE_YOUNG);
}
END_TEST

START_TEST(clock_jumps)
{
    /* stored next attempts converted at load: past → now; ahead → the delay;
       far ahead (the wall clock was stepped back after they were written) →
       capped at the horizon, so the scheduler cannot stall on them */
    int64_t mono = 5000000;
    time_t wall = 1700000000;
    ck_assert_int_eq(sched_due_from_wall(wall - 100, wall, mono, 64000), mono);
    ck_assert_int_eq(sched_due_from_wall(wall, wall, mono, 64000), mono);
    ck_assert_int_eq(sched_due_from_wall(wall + 30, wall, mono, 64000), mono + 30000);
    ck_assert_int_eq(sched_due_from_wall(wall + 86400 * 365, wall, mono, 64000), mono + 64000);
    /* stepped forward a year: everything is simply due now */
    ck_assert_int_eq(sched_due_from_wall(wall + 30, wall + 86400 * 365, mono, 64000), mono);

    /* the running scheduler sees only monotonic time: a job armed for +30 s is
       due 30 s of monotonic time later, whatever the wall clock did meanwhile */
    struct sched *s = sched_new(&params);
    sched_put(s, "0000000000000001", "a", sched_due_from_wall(wall + 30, wall, mono, 64000));
    sched_put(s, "0000000000000002", "a", sched_due_from_wall(wall + 86400 * 30, wall, mono, 64000));
    struct sched_due out[4];
    ck_assert_uint_eq(sched_pop_due(s, mono + 29999, out, 4), 0);
    ck_assert_uint_eq(sched_pop_due(s, mono + 30000, out, 4), 1);
    ck_assert_uint_eq(sched_pop_due(s, mono + 64000, out, 4), 1);
    ck_assert_str_eq(out[0].id, "0000000000000002");
    sched_free(s);
}
END_TEST

START_TEST(dest_down_parks_its_jobs_only)
{
    struct sched *s = sched_new(&params);
    char id[QID_LEN + 1];
    for (int i = 0; i < 10; i++) {
        id_of(id, i);
        sched_put(s, id, "dead.example", 100 + i);
        id_of(id, 100 + i);
        sched_put(s, id, "live.example", 100 + i);
    }
    /* an attempt at dead.example deferred: it is down until 60 000 */
    ck_assert_int_eq(sched_dest_down(s, "dead.example", 60000), 0);
    ck_assert_int_eq(sched_dest_down_until(s, "dead.example"), 60000);
    struct sched_due out[32];
    size_t n = sched_pop_due(s, 1000, out, 32);
    ck_assert_uint_eq(n, 10);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(out[i].dest, "live.example");
    /* dead.example's jobs were moved to its retry time, not attempted */
    ck_assert_int_eq(sched_next_due(s), 60000);
    ck_assert_uint_eq(sched_pop_due(s, 59999, out, 32), 0);
    ck_assert_uint_eq(sched_pop_due(s, 60000, out, 32), 10);
    ck_assert_str_eq(out[0].dest, "dead.example");

    /* flush clears the down mark */
    id_of(id, 3);
    sched_put(s, id, "dead.example", 70000);
    sched_dest_down(s, "dead.example", 200000);
    ck_assert_uint_eq(sched_flush(s, id, 65000), 1);
    ck_assert_int_eq(sched_dest_down_until(s, "dead.example"), 0);
    ck_assert_uint_eq(sched_pop_due(s, 65000, out, 32), 1);
    sched_dest_down(s, "dead.example", 1);
    sched_dest_up(s, "dead.example");
    ck_assert_int_eq(sched_dest_down_until(s, "dead.example"), 0);
    sched_free(s);
}
END_TEST

START_TEST(dest_concurrency_share)
{
    struct sched_params p = params;
    p.dest_concurrency = 3;
    struct sched *s = sched_new(&p);
    char id[QID_LEN + 1];
    for (int i = 0; i < 10; i++) {
        id_of(id, i);
        sched_put(s, id, "busy.example", 10);
    }
    id_of(id, 99);
    sched_put(s, id, "quiet.example", 20);
    struct sched_due out[32];
    size_t n = sched_pop_due(s, 100, out, 32);
    ck_assert_uint_eq(n, 4);            /* 3 busy + the quiet one, which is not starved */
    int quiet = 0;
    for (size_t i = 0; i < n; i++)
        quiet += !strcmp(out[i].dest, "quiet.example");
    ck_assert_int_eq(quiet, 1);
    /* the rest stay due for the next passes */
    ck_assert_int_eq(sched_next_due(s), 10);
    ck_assert_uint_eq(sched_pop_due(s, 100, out, 32), 3);
    ck_assert_uint_eq(sched_pop_due(s, 100, out, 32), 3);
    ck_assert_uint_eq(sched_pop_due(s, 100, out, 32), 1);
    ck_assert_uint_eq(sched_pop_due(s, 100, out, 32), 0);
    sched_free(s);
}
END_TEST

START_TEST(two_destinations_of_one_message)
{
    struct sched *s = sched_new(&params);
    sched_put(s, "0000000000000001", "a.example", 10);
    sched_put(s, "0000000000000001", "b.example", 20);
    ck_assert_uint_eq(sched_msg_count(s), 1);
    ck_assert_uint_eq(sched_job_count(s), 2);
    sched_remove_job(s, "0000000000000001", "a.example");
    ck_assert(sched_has_msg(s, "0000000000000001"));
    ck_assert_int_eq(sched_next_due(s), 20);
    sched_remove_job(s, "0000000000000001", "b.example");
    ck_assert(!sched_has_msg(s, "0000000000000001"));
    ck_assert_uint_eq(sched_job_count(s), 0);
    sched_free(s);
}
END_TEST

START_TEST(hold_release_flush)
{
    struct sched *s = sched_new(&params);
    sched_put(s, "0000000000000001", "a", 10);
    sched_put(s, "0000000000000002", "a", 5000);
    ck_assert_int_eq(sched_hold(s, "0000000000000001", true, 0), 0);
    ck_assert_int_eq(sched_hold(s, "00000000000000FF", true, 0), -1);
    struct sched_due out[4];
    ck_assert_uint_eq(sched_pop_due(s, 100, out, 4), 0);
    /* a held message stays held when its job is re-armed */
    sched_put(s, "0000000000000001", "a", 20);
    ck_assert_uint_eq(sched_pop_due(s, 100, out, 4), 0);
    ck_assert_uint_eq(sched_flush(s, "0000000000000001", 100), 0);
    ck_assert_int_eq(sched_hold(s, "0000000000000001", false, 100), 0);
    ck_assert_uint_eq(sched_pop_due(s, 100, out, 4), 1);
    ck_assert_str_eq(out[0].id, "0000000000000001");
    ck_assert_uint_eq(sched_flush(s, NULL, 200), 1);
    ck_assert_uint_eq(sched_pop_due(s, 200, out, 4), 1);
    ck_assert_str_eq(out[0].id, "0000000000000002");
    sched_free(s);
}
END_TEST

START_TEST(many_queued_few_due)
{
    struct sched *s = sched_new(&params);
    char id[QID_LEN + 1];
    enum { N = 100000 };
    for (long i = 0; i < N; i++) {
        id_of(id, i);
        char dest[32];
        snprintf(dest, sizeof dest, "d%ld.example", i % 500);
        ck_assert_int_eq(sched_put(s, id, dest, i < 100 ? 50 : 1000000 + i), 0);
    }
    struct sched_due out[256];
    ck_assert_uint_eq(sched_pop_due(s, 100, out, 256), 100);
    ck_assert_int_eq(sched_next_due(s), 1000100);
    ck_assert_uint_eq(sched_msg_count(s), N);
    sched_free(s);
}
END_TEST

Suite *scheduler_suite(void)
{
    Suite *s = suite_create("scheduler");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, heap_order);
    tcase_add_test(tc, update_and_remove_keep_order);
    tcase_add_test(tc, backoff_doubles_and_caps);
    tcase_add_test(tc, jitter_bounds);
    tcase_add_test(tc, age_lifetime_and_warning);
    tcase_add_test(tc, clock_jumps);
    tcase_add_test(tc, dest_down_parks_its_jobs_only);
    tcase_add_test(tc, dest_concurrency_share);
    tcase_add_test(tc, two_destinations_of_one_message);
    tcase_add_test(tc, hold_release_flush);
    tcase_add_test(tc, many_queued_few_due);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(scheduler_suite)

/* Unit tests for lib/ratelimit: leaky buckets per key in a bounded table. */
#include "lib/ratelimit.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

START_TEST(bad_arguments)
{
    ck_assert_ptr_null(ratelimit_new(0, 1, 1));
    ck_assert_ptr_null(ratelimit_new(10, 0, 1));
    ck_assert_ptr_null(ratelimit_new(10, 1, 0));
    ck_assert_ptr_null(ratelimit_new(10, -1, 1));
}
END_TEST

START_TEST(limit_then_refuse_then_drain)
{
    /* 5 events per 10 s: the bucket drains 0.5 per second. */
    struct ratelimit *rl = ratelimit_new(16, 5, 10);
    ck_assert_ptr_nonnull(rl);
    for (int i = 0; i < 5; i++)
        ck_assert(ratelimit_hit(rl, "192.0.2.1", 100.0));
    ck_assert(!ratelimit_hit(rl, "192.0.2.1", 100.0));
    ck_assert(ratelimit_exceeded(rl, "192.0.2.1", 100.0));
    /* A refused event is not counted: level stays at 5. */
    ck_assert_double_eq_tol(ratelimit_level(rl, "192.0.2.1", 100.0), 5.0, 1e-9);
    ck_assert_double_eq_tol(ratelimit_wait(rl, "192.0.2.1", 100.0), 2.0, 1e-9);
    /* Other keys are independent. */
    ck_assert(ratelimit_hit(rl, "192.0.2.2", 100.0));
    /* After 1.9 s not yet room for one; after 2 s there is. */
    ck_assert(!ratelimit_hit(rl, "192.0.2.1", 101.9));
    ck_assert(ratelimit_hit(rl, "192.0.2.1", 102.0));
    ck_assert(!ratelimit_hit(rl, "192.0.2.1", 102.0));
    /* Long silence drains to zero. */
    ck_assert_double_eq_tol(ratelimit_level(rl, "192.0.2.1", 1000.0), 0.0, 1e-9);
    ck_assert_int_eq(ratelimit_count(rl), 2);
    ratelimit_free(rl);
}
END_TEST

START_TEST(clock_going_backwards_drains_nothing)
{
    struct ratelimit *rl = ratelimit_new(4, 2, 10);
    ck_assert(ratelimit_hit(rl, "k", 50.0));
    ck_assert(ratelimit_hit(rl, "k", 50.0));
    ck_assert(!ratelimit_hit(rl, "k", 20.0));
    ck_assert_double_eq_tol(ratelimit_level(rl, "k", 20.0), 2.0, 1e-9);
    ratelimit_free(rl);
}
END_TEST

START_TEST(forget)
{
    struct ratelimit *rl = ratelimit_new(4, 1, 60);
    ck_assert(ratelimit_hit(rl, "alice", 1.0));
    ck_assert(!ratelimit_hit(rl, "alice", 1.0));
    ratelimit_forget(rl, "alice");
    ck_assert_int_eq(ratelimit_count(rl), 0);
    ck_assert(ratelimit_hit(rl, "alice", 1.0));
    ratelimit_forget(rl, "nobody");    /* absent: harmless */
    ck_assert_int_eq(ratelimit_count(rl), 1);
    ratelimit_free(rl);
}
END_TEST

START_TEST(full_table_evicts_most_drained)
{
    struct ratelimit *rl = ratelimit_new(3, 10, 10);    /* drains 1 per second */
    char key[16];
    ck_assert(ratelimit_hit(rl, "old", 0.0));           /* level 1 at t=0, 0 at t=5 */
    for (int i = 0; i < 5; i++)
        ck_assert(ratelimit_hit(rl, "busy", 4.0));      /* level 5 */
    ck_assert(ratelimit_hit(rl, "mid", 4.0));           /* level 1 */
    ck_assert_int_eq(ratelimit_count(rl), 3);
    ck_assert(ratelimit_hit(rl, "new", 5.0));           /* evicts "old" (drained to 0) */
    ck_assert_int_eq(ratelimit_count(rl), 3);
    ck_assert_double_eq_tol(ratelimit_level(rl, "old", 5.0), 0.0, 1e-9);
    ck_assert_double_eq_tol(ratelimit_level(rl, "busy", 5.0), 4.0, 1e-9);
    /* Many distinct keys never grow the table. */
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        ratelimit_hit(rl, key, 6.0);
    }
    ck_assert_int_eq(ratelimit_count(rl), 3);
    ratelimit_free(rl);
}
END_TEST

START_TEST(long_keys_are_truncated_consistently)
{
    struct ratelimit *rl = ratelimit_new(4, 1, 60);
    char a[200], b[200];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[150] = 'y';    /* differs only past the key limit: the same key */
    ck_assert(ratelimit_hit(rl, a, 0));
    ck_assert(!ratelimit_hit(rl, b, 0));
    ratelimit_free(rl);
}
END_TEST

Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, limit_then_refuse_then_drain);
    tcase_add_test(tc, clock_going_backwards_drains_nothing);
    tcase_add_test(tc, forget);
    tcase_add_test(tc, full_table_evicts_most_drained);
    tcase_add_test(tc, long_keys_are_truncated_consistently);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(ratelimit_suite)

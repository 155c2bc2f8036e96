/* Unit tests for pull/greylist: the pure decision over an injected clock (delay,
   window, lifetime, zero delay), triplet keys (/24, /64, mapped IPv4, case), the
   record format, and the store on real Berkeley DB files. */
#include "lib/netaddr.h"
#include "pull/greylist.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct greylist_params P = { .delay = 300, .window = 86400, .lifetime = 36 * 86400 };

static struct sockaddr_storage ip(const char *s)
{
    struct sockaddr_storage sa;
    socklen_t len;
    ck_assert_int_eq(netaddr_parse_hostport(s, 25, &sa, &len), 0);
    return sa;
}

START_TEST(decide)
{
    struct greylist_record r, next;
    const char *why;
    ck_assert_int_eq(greylist_decide(&P, NULL, 1000, &r, &why), GREYLIST_DEFER);
    ck_assert_str_eq(why, "new triplet");
    ck_assert_int_eq((long long)r.first, 1000);
    ck_assert(!r.passed);
    ck_assert_int_eq(greylist_decide(&P, &r, 1299, &next, &why), GREYLIST_DEFER);   /* 299 s: too soon */
    ck_assert_int_eq((long long)next.first, 1000);                                  /* not restarted */
    ck_assert_uint_eq(next.count, 2);
    r = next;
    ck_assert_int_eq(greylist_decide(&P, &r, 1300, &next, &why), GREYLIST_PASS);     /* exactly the delay */
    ck_assert(next.passed);
    r = next;
    ck_assert_int_eq(greylist_decide(&P, &r, 1300 + 36 * 86400, &next, &why), GREYLIST_PASS);
    r = next;
    ck_assert_int_eq(greylist_decide(&P, &r, r.last + 36 * 86400 + 1, &next, &why), GREYLIST_DEFER);
    ck_assert_str_eq(why, "triplet expired, starting again");
    /* a retry after the window starts over */
    struct greylist_record old = { .first = 1000, .last = 1000, .count = 1 };
    ck_assert_int_eq(greylist_decide(&P, &old, 1000 + 86401, &next, &why), GREYLIST_DEFER);
    ck_assert_int_eq((long long)next.first, 1000 + 86401);
    ck_assert_int_eq(greylist_decide(&P, &old, 1000 + 86400, &next, &why), GREYLIST_PASS);
    /* zero delay: the first attempt passes */
    struct greylist_params z = P;
    z.delay = 0;
    ck_assert_int_eq(greylist_decide(&z, NULL, 5, &next, &why), GREYLIST_PASS);
    ck_assert(next.passed);
}
END_TEST

START_TEST(keys)
{
    char k[GREYLIST_KEY_MAX];
    struct sockaddr_storage a = ip("192.0.2.77"), b = ip("::ffff:192.0.2.1"), c = ip("2001:db8:1:2:3:4:5:6");
    ck_assert_int_gt(greylist_key((struct sockaddr *)&a, "A@Far.Example", "b@here.example", k, sizeof k), 0);
    ck_assert_str_eq(k, "192.0.2.0/24 a@far.example b@here.example");
    ck_assert_int_gt(greylist_key((struct sockaddr *)&b, "", "b@here.example", k, sizeof k), 0);
    ck_assert_str_eq(k, "192.0.2.0/24 <> b@here.example");
    ck_assert_int_gt(greylist_key((struct sockaddr *)&c, "a@x", "b@y", k, sizeof k), 0);
    ck_assert_str_eq(k, "2001:db8:1:2::/64 a@x b@y");
    ck_assert_int_eq(greylist_key((struct sockaddr *)&a, "a b@x", "b@y", k, sizeof k), -1);
    ck_assert_int_eq(greylist_key((struct sockaddr *)&a, "a@x", "", k, sizeof k), -1);
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(greylist_key((struct sockaddr *)&a, big, "b@y", k, sizeof k), -1);
}
END_TEST

START_TEST(record_format)
{
    struct greylist_record r = { 100, 200, 3, true }, back;
    char s[80];
    int n = greylist_format(&r, s, sizeof s);
    ck_assert_str_eq(s, "100 200 3 1");
    ck_assert_int_eq(greylist_parse(s, (size_t)n, &back), 0);
    ck_assert_int_eq((long long)back.last, 200);
    ck_assert(back.passed);
    ck_assert_int_eq(greylist_parse("100 200 3", 9, &back), -1);
    ck_assert_int_eq(greylist_parse("100 200 3 2", 11, &back), -1);
    ck_assert_int_eq(greylist_parse("200 100 3 1", 11, &back), -1);     /* last before first */
    ck_assert_int_eq(greylist_parse("100 200 3 1 ", 12, &back), -1);
    ck_assert_int_eq(greylist_parse("", 0, &back), -1);
}
END_TEST

START_TEST(store)
{
    char dir[] = "/tmp/ferry-grey-XXXXXX", err[512];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct fdb_env *env;
    ck_assert_msg(fdb_env_open(dir, &env, err, sizeof err) == 0, "%s", err);
    struct greylist_store *g = greylist_open(env, err, sizeof err);
    ck_assert_ptr_nonnull(g);
    struct sockaddr_storage a = ip("192.0.2.7"), a2 = ip("192.0.2.200"), other = ip("198.51.100.7");
    enum greylist_verdict v;
    const char *why;
    ck_assert_int_eq(greylist_check(g, &P, (struct sockaddr *)&a, "s@far.example", "r@here.example", 1000, &v, &why), 0);
    ck_assert_int_eq(v, GREYLIST_DEFER);
    ck_assert_int_eq(greylist_check(g, &P, (struct sockaddr *)&a2, "S@far.example", "r@here.example", 1100, &v, &why), 0);
    ck_assert_int_eq(v, GREYLIST_DEFER);                        /* same /24, too soon */
    ck_assert_str_eq(why, "retried too soon");
    ck_assert_int_eq(greylist_check(g, &P, (struct sockaddr *)&other, "s@far.example", "r@here.example", 1400, &v, &why), 0);
    ck_assert_int_eq(v, GREYLIST_DEFER);                        /* another network: its own triplet */
    ck_assert_int_eq(greylist_check(g, &P, (struct sockaddr *)&a2, "s@far.example", "r@here.example", 1400, &v, &why), 0);
    ck_assert_int_eq(v, GREYLIST_PASS);                          /* another host of the /24 retried */
    ck_assert_int_eq(greylist_check(g, &P, (struct sockaddr *)&a, "s@far.example", "x@here.example", 1400, &v, &why), 0);
    ck_assert_int_eq(v, GREYLIST_DEFER);                        /* another recipient */
    ck_assert_int_eq(greylist_check(g, &P, (struct sockaddr *)&a, "bad sender", "x@here.example", 1400, &v, &why), -1);
    /* expiry: at 1400 + window + 1 the two unpassed triplets go, the passed one stays */
    size_t dropped;
    ck_assert_int_eq(greylist_expire(g, &P, 1400 + 86401, 100, &dropped), 0);
    ck_assert_uint_eq(dropped, 2);
    ck_assert_int_eq(greylist_check(g, &P, (struct sockaddr *)&a, "s@far.example", "r@here.example", 1400 + 86402, &v, &why), 0);
    ck_assert_int_eq(v, GREYLIST_PASS);
    ck_assert_int_eq(greylist_expire(g, &P, 1400 + 86402 + 36 * 86400 + 1, 100, &dropped), 0);
    ck_assert_uint_eq(dropped, 1);
    greylist_close(g);
    fdb_env_close(env);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

static Suite *pull_greylist_suite(void)
{
    Suite *s = suite_create("pull_greylist");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, decide);
    tcase_add_test(tc, keys);
    tcase_add_test(tc, record_format);
    tcase_add_test(tc, store);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(pull_greylist_suite)

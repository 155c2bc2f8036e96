/* delivery/home_delivery: the request and result lines between the queue process
   and the parent, fed raw bytes. */
#include "delivery/home_delivery.h"
#include "tests/unit/unit.h"

#include <string.h>

START_TEST(request_round_trip)
{
    struct home_request r = {"1LG7ENTAE2J007PN", 3, "alice", "bob@example.net", "alice@example.org", true}, back;
    char line[1024];
    int n = home_request_format(&r, line, sizeof line);
    ck_assert_int_gt(n, 0);
    ck_assert_str_eq(line, "1LG7ENTAE2J007PN\t3\t1\talice\tbob@example.net\talice@example.org");
    ck_assert_int_eq(home_request_parse(line, (size_t)n, &back), 0);
    ck_assert_str_eq(back.id, r.id);
    ck_assert_uint_eq(back.index, 3);
    ck_assert_str_eq(back.user, "alice");
    ck_assert_str_eq(back.sender, "bob@example.net");
    ck_assert_str_eq(back.rcpt, "alice@example.org");
    ck_assert(back.junk);
    /* the null sender is an empty field */
    ck_assert_int_eq(home_request_parse("ID\t0\t0\tu\t\tu@x", 13, &back), 0);
    ck_assert_str_eq(back.sender, "");
    ck_assert(!back.junk);
}
END_TEST

START_TEST(request_malformed)
{
    struct home_request r;
    const char *bad[] = {"", "ID", "ID\t1\t0\tu\ts", "ID\tx\t0\tu\ts\tr", "ID\t-1\t0\tu\ts\tr",
                         "ID\t1\t0\t\ts\tr", "ID\t1\t0\tu\ts\t", "ID\t1\t0\tu\ts\tr\textra",
                         "\t1\t0\tu\ts\tr", "ID\t1\t0\tu\ts\tr\n", "ID\t99999999999\t0\tu\ts\tr",
                         "ID\t1\t2\tu\ts\tr", "ID\t1\t\tu\ts\tr", "ID\t1\tu\ts\tr"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(home_request_parse(bad[i], strlen(bad[i]), &r) < 0, "%s", bad[i]);
    ck_assert_int_lt(home_request_parse("ID\t1\t0\tu\0\ts\tr", 13, &r), 0);
    struct home_request tab = {"ID", 1, "a\tb", "", "x@y", false};
    char line[256];
    ck_assert_int_lt(home_request_format(&tab, line, sizeof line), 0);
}
END_TEST

START_TEST(result_round_trip)
{
    struct home_result r = {"1LG7ENTAE2J007PN", 2, {DELIVERY_FAIL, "5.2.2 mailbox full:\tx\ny"}}, back;
    char line[1024];
    int n = home_result_format(&r, line, sizeof line);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(home_result_parse(line, (size_t)n, &back), 0);
    ck_assert_int_eq(back.st.result, DELIVERY_FAIL);
    ck_assert_str_eq(back.st.text, "5.2.2 mailbox full: x y");    /* tabs and line ends flattened */
    ck_assert_int_lt(home_result_parse("ID\t1\t7\ttext", 12, &back), 0);     /* no such result */
    ck_assert_int_lt(home_result_parse("ID\t1\t0", 6, &back), 0);
}
END_TEST

START_TEST(root_is_never_a_home_user)
{
    ck_assert(!home_user_ok("root"));
    ck_assert(!home_user_ok(""));
    ck_assert(!home_user_ok("../etc"));
    ck_assert(!home_user_ok("no-such-user-ferry-test"));
}
END_TEST

Suite *home_delivery_suite(void)
{
    Suite *s = suite_create("home_delivery");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, request_round_trip);
    tcase_add_test(tc, request_malformed);
    tcase_add_test(tc, result_round_trip);
    tcase_add_test(tc, root_is_never_a_home_user);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(home_delivery_suite)

/* Unit tests for pull/msid: the key file on a real temp dir, msid creation and
   checking (binding, expiry, every altered character, guesses). */
#include "lib/netaddr.h"
#include "pull/msid.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], path[128], err[512];
static struct msid_key key;

static void setup(void)
{
    strcpy(dir, "/tmp/ferry-msid-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/%s", dir, MSID_KEY_FILE);
    ck_assert_msg(msid_key_load(dir, &key, err, sizeof err) == 0, "%s", err);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static struct sockaddr_storage ip(const char *s)
{
    struct sockaddr_storage sa;
    socklen_t len;
    ck_assert_int_eq(netaddr_parse_hostport(s, 25, &sa, &len), 0);
    return sa;
}

#define SA(x) ((const struct sockaddr *)&(x))

START_TEST(key_file)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(st.st_size, MSID_KEY_LEN);
    struct msid_key again;
    ck_assert_int_eq(msid_key_load(dir, &again, err, sizeof err), 0);
    ck_assert_mem_eq(again.k, key.k, MSID_KEY_LEN);
    ck_assert_int_eq(chmod(path, 0640), 0);                  /* readable by the group: refused */
    ck_assert_int_eq(msid_key_load(dir, &again, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "no one else"));
    ck_assert_int_eq(chmod(path, 0600), 0);
    ck_assert_int_eq(truncate(path, 31), 0);                 /* short: refused */
    ck_assert_int_eq(msid_key_load(dir, &again, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "damaged"));

    /* A data_dir shared with the queue user (set-group-id, lib/privsep.h): the key
       is made readable by that group, which may then read it; still never others. */
    char shared[600], spath[700];
    snprintf(shared, sizeof shared, "%s/shared", dir);
    ck_assert_int_eq(mkdir(shared, 0700), 0);
    ck_assert_int_eq(chown(shared, (uid_t)-1, getegid()), 0);
    ck_assert_int_eq(chmod(shared, 02770), 0);
    struct msid_key sk, sk2;
    ck_assert_int_eq(msid_key_load(shared, &sk, err, sizeof err), 0);
    snprintf(spath, sizeof spath, "%s/%s", shared, MSID_KEY_FILE);
    ck_assert_int_eq(stat(spath, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0640);
    ck_assert_int_eq(msid_key_load(shared, &sk2, err, sizeof err), 0);
    ck_assert_mem_eq(sk.k, sk2.k, MSID_KEY_LEN);
    ck_assert_int_eq(chmod(spath, 0644), 0);                 /* others: refused even here */
    ck_assert_int_eq(msid_key_load(shared, &sk2, err, sizeof err), -1);
    ck_assert_int_eq(chmod(spath, 0660), 0);                 /* group-writable: refused */
    ck_assert_int_eq(msid_key_load(shared, &sk2, err, sizeof err), -1);
}
END_TEST

START_TEST(round_trip_and_binding)
{
    struct sockaddr_storage a = ip("192.0.2.7"), b = ip("192.0.2.8"), mapped = ip("::ffff:192.0.2.7"),
                            v6 = ip("2001:db8::7");
    char m[MSID_TEXT_MAX + 1], qid[MSID_QID_MAX + 1];
    time_t exp;
    int n = msid_make(&key, "0ABCDEFGHIJKLMNO", SA(a), 2000000000, m, sizeof m);
    ck_assert_int_eq(n, 16 + 1 + 10 + 1 + 26);
    ck_assert_int_eq((int)strlen(m), n);
    ck_assert(strspn(m, "0123456789ABCDEFGHIJKLMNOPQRSTUV-") == (size_t)n);   /* SMTP-safe */
    ck_assert_int_eq(msid_check(&key, m, SA(a), 1900000000, qid, &exp), MSID_OK);
    ck_assert_str_eq(qid, "0ABCDEFGHIJKLMNO");
    ck_assert_int_eq((long long)exp, 2000000000LL);
    ck_assert_int_eq(msid_check(&key, m, SA(mapped), 1900000000, qid, &exp), MSID_OK);
    ck_assert_int_eq(msid_check(&key, m, SA(b), 1900000000, qid, &exp), MSID_BAD_MAC);
    ck_assert_str_eq(qid, "");
    ck_assert_int_eq(msid_check(&key, m, SA(v6), 1900000000, qid, &exp), MSID_BAD_MAC);
    ck_assert_int_eq(msid_check(&key, m, SA(a), 2000000000, qid, &exp), MSID_EXPIRED);
    /* another key does not accept it */
    struct msid_key other = key;
    other.k[0] ^= 1;
    ck_assert_int_eq(msid_check(&other, m, SA(a), 1900000000, qid, &exp), MSID_BAD_MAC);
    /* two messages, two msids */
    char m2[MSID_TEXT_MAX + 1];
    msid_make(&key, "0ABCDEFGHIJKLMNP", SA(a), 2000000000, m2, sizeof m2);
    ck_assert_str_ne(m + 28, m2 + 28);
}
END_TEST

START_TEST(every_alteration_fails)
{
    struct sockaddr_storage a = ip("198.51.100.1");
    char m[MSID_TEXT_MAX + 1], qid[MSID_QID_MAX + 1];
    time_t exp;
    int n = msid_make(&key, "Q1", SA(a), 1800000000, m, sizeof m);
    const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabz-";
    for (int i = 0; i < n; i++) {
        for (const char *c = alphabet; *c; c++) {
            if (*c == m[i])
                continue;
            char x[MSID_TEXT_MAX + 1];
            strcpy(x, m);
            x[i] = *c;
            ck_assert_msg(msid_check(&key, x, SA(a), 1700000000, qid, &exp) != MSID_OK, "accepted %s", x);
        }
    }
    /* a later expiry written by the holder is an alteration too */
    char later[MSID_TEXT_MAX + 1];
    strcpy(later, m);
    memcpy(later + 3, "00FFFFFFFF", 10);
    ck_assert_int_eq(msid_check(&key, later, SA(a), 1700000000, qid, &exp), MSID_BAD_MAC);
    /* truncations and extensions */
    char t[MSID_TEXT_MAX + 8];
    for (int len = 0; len < n; len++) {
        memcpy(t, m, (size_t)len);
        t[len] = '\0';
        ck_assert(msid_check(&key, t, SA(a), 1700000000, qid, &exp) != MSID_OK);
    }
    snprintf(t, sizeof t, "%sA", m);
    ck_assert(msid_check(&key, t, SA(a), 1700000000, qid, &exp) != MSID_OK);
}
END_TEST

START_TEST(guesses_fail)
{
    struct sockaddr_storage a = ip("198.51.100.1");
    char qid[MSID_QID_MAX + 1], g[MSID_TEXT_MAX + 1];
    time_t exp;
    srand(42);
    for (int i = 0; i < 10000; i++) {
        char mac[MSID_MAC_CHARS + 1];
        for (int k = 0; k < MSID_MAC_CHARS; k++)
            mac[k] = "0123456789ABCDEFGHIJKLMNOPQRSTUV"[rand() % 32];
        mac[MSID_MAC_CHARS] = '\0';
        snprintf(g, sizeof g, "Q1-006B49D200-%s", mac);
        ck_assert_int_eq(msid_check(&key, g, SA(a), 1700000000, qid, &exp), MSID_BAD_MAC);
    }
    ck_assert_int_eq(msid_check(&key, "", SA(a), 0, qid, &exp), MSID_MALFORMED);
    ck_assert_int_eq(msid_check(&key, "Q1-006b49d200-0000000000000000000000000A", SA(a), 0, qid, &exp),
                     MSID_MALFORMED);
}
END_TEST

START_TEST(make_refuses)
{
    struct sockaddr_storage a = ip("198.51.100.1");
    char m[MSID_TEXT_MAX + 1];
    ck_assert_int_eq(msid_make(&key, "", SA(a), 1, m, sizeof m), -1);
    ck_assert_int_eq(msid_make(&key, "a-b", SA(a), 1, m, sizeof m), -1);
    ck_assert_int_eq(msid_make(&key, "012345678901234567890123456789012", SA(a), 1, m, sizeof m), -1);
    ck_assert_int_eq(msid_make(&key, "Q", SA(a), 0, m, sizeof m), -1);
    ck_assert_int_eq(msid_make(&key, "Q", SA(a), 1, m, 20), -1);
    ck_assert_int_gt(msid_make(&key, "012345678901234567890123456789AB", SA(a), 1, m, sizeof m), 0);
    ck_assert_int_eq(strlen(m), MSID_TEXT_MAX);
}
END_TEST

START_TEST(tokens)
{
    char t1[27], t2[27], t3[27];
    const char *p1[] = { "ab", "c" }, *p2[] = { "a", "bc" };
    msid_token(&key, "x", p1, 2, t1, 16);
    msid_token(&key, "x", p2, 2, t2, 16);
    msid_token(&key, "y", p1, 2, t3, 16);
    ck_assert_int_eq(strlen(t1), 16);
    ck_assert_str_ne(t1, t2);       /* length-prefixed: no shifting between parts */
    ck_assert_str_ne(t1, t3);
    ck_assert(msid_text_equal(t1, t1));
    ck_assert(!msid_text_equal(t1, t2));
    ck_assert(!msid_text_equal("abc", "ab"));
}
END_TEST

static Suite *msid_suite(void)
{
    Suite *s = suite_create("msid");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, key_file);
    tcase_add_test(tc, round_trip_and_binding);
    tcase_add_test(tc, every_alteration_fails);
    tcase_add_test(tc, guesses_fail);
    tcase_add_test(tc, make_refuses);
    tcase_add_test(tc, tokens);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(msid_suite)

/*
 * test_tlsrpt_store.c — delivery/tlsrpt_store.h: the counter keys (day, domain
 * normalised, fields refused), counting in a real Berkeley DB environment
 * across a close and reopen (a restart loses no count), and the map from
 * OpenSSL's verify results to RFC 8460 result types.
 */
#include "delivery/tlsrpt_store.h"
#include "lib/db.h"
#include "tests/unit/unit.h"

#include <openssl/x509_vfy.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(keys)
{
    char k[TLSRPT_KEY_MAX];
    struct tlsrpt_event ok = {.when = 86400 * 20000 + 5, .domain = "Example.COM.", .ptype = "sts"};
    ck_assert_int_gt(tlsrpt_store_key(&ok, k, sizeof k), 0);
    ck_assert_str_eq(k, "C1\t20000\texample.com\tsts\tok\t\t");
    struct tlsrpt_event f = {.when = 86400 * 20000 + 86399, .domain = "example.com", .ptype = "sts",
                             .result = "starttls-not-supported", .mx = "mx.example.com", .ip = "127.0.0.42"};
    ck_assert_int_gt(tlsrpt_store_key(&f, k, sizeof k), 0);
    ck_assert_str_eq(k, "C1\t20000\texample.com\tsts\tstarttls-not-supported\tmx.example.com\t127.0.0.42\t\t");
    f.sip = "192.0.2.25";
    f.reason = "TLS handshake timed out";
    ck_assert_int_gt(tlsrpt_store_key(&f, k, sizeof k), 0);
    ck_assert_str_eq(k, "C1\t20000\texample.com\tsts\tstarttls-not-supported\tmx.example.com\t127.0.0.42"
                        "\t192.0.2.25\tTLS handshake timed out");
    f.reason = "a\nb";
    ck_assert_int_eq(tlsrpt_store_key(&f, k, sizeof k), -1);
    f.reason = f.sip = NULL;
    /* refused: an unknown result type, a tab in a field, no domain, too small */
    f.result = "bogus";
    ck_assert_int_eq(tlsrpt_store_key(&f, k, sizeof k), -1);
    f.result = "validation-failure";
    f.mx = "mx\tx";
    ck_assert_int_eq(tlsrpt_store_key(&f, k, sizeof k), -1);
    f.mx = "mx";
    f.domain = "";
    ck_assert_int_eq(tlsrpt_store_key(&f, k, sizeof k), -1);
    f.domain = "example.com";
    ck_assert_int_eq(tlsrpt_store_key(&f, k, 20), -1);
}
END_TEST

START_TEST(counting)
{
    char dir[] = "/tmp/ferry-tlsrpt-XXXXXX", err[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct fdb_env *env;
    struct fdb *db;
    ck_assert_msg(fdb_env_open(dir, &env, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(fdb_open(env, TLSRPT_STORE_DB, &db, err, sizeof err) == 0, "%s", err);
    struct tlsrpt_event ok = {.when = 86400 * 20000, .domain = "example.com", .ptype = "sts",
                              .policy = "version: STSv1\nmode: enforce"};
    struct tlsrpt_event f = {.when = 86400 * 20000, .domain = "example.com", .ptype = "sts",
                             .result = "certificate-expired", .mx = "mx", .ip = "127.0.0.42"};
    ck_assert_int_eq(tlsrpt_store_get(db, &ok), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(tlsrpt_store_count(env, db, &ok, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(tlsrpt_store_count(env, db, &f, err, sizeof err), 0);
    fdb_close(db);
    fdb_env_close(env);
    /* reopened, as after a restart */
    ck_assert_msg(fdb_env_open(dir, &env, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(fdb_open(env, TLSRPT_STORE_DB, &db, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(tlsrpt_store_get(db, &ok), 3);
    ck_assert_int_eq(tlsrpt_store_get(db, &f), 1);
    /* the next day is another counter */
    ok.when += 86400;
    ck_assert_int_eq(tlsrpt_store_get(db, &ok), 0);
    /* the policy strings of the day are kept */
    void *val;
    size_t vlen;
    const char *pk = "S1\t20000\texample.com\tsts";
    ck_assert_int_eq(fdb_get(db, NULL, pk, strlen(pk), &val, &vlen), 0);
    ck_assert_int_eq(vlen, strlen("version: STSv1\nmode: enforce"));
    ck_assert_int_eq(memcmp(val, "version: STSv1\nmode: enforce", vlen), 0);
    free(val);
    /* an invalid event is refused */
    f.result = "nope";
    ck_assert_int_eq(tlsrpt_store_count(env, db, &f, err, sizeof err), -1);
    fdb_close(db);
    fdb_env_close(env);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(verify_map)
{
    ck_assert_str_eq(tlsrpt_result_of_verify(1, X509_V_ERR_CERT_HAS_EXPIRED, 0), "certificate-expired");
    ck_assert_str_eq(tlsrpt_result_of_verify(1, X509_V_ERR_HOSTNAME_MISMATCH, 0), "certificate-host-mismatch");
    ck_assert_str_eq(tlsrpt_result_of_verify(1, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, 0),
                     "certificate-not-trusted");
    ck_assert_str_eq(tlsrpt_result_of_verify(1, X509_V_ERR_DANE_NO_MATCH, 1), "validation-failure");
    ck_assert_str_eq(tlsrpt_result_of_verify(0, 0, 0), "validation-failure");
}
END_TEST

static Suite *tlsrpt_store_suite(void)
{
    Suite *s = suite_create("tlsrpt_store");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, keys);
    tcase_add_test(tc, counting);
    tcase_add_test(tc, verify_map);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(tlsrpt_store_suite)

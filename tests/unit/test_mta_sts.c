/*
 * test_mta_sts.c — delivery/tls_txt.h's _mta-sts record and selection rule, and
 * delivery/mta_sts_policy.h's policy file parser and MX matching, on raw bytes;
 * delivery/sts_cache.h's decision, record format and Berkeley DB round trip.
 */
#include "delivery/mta_sts_policy.h"
#include "delivery/sts_cache.h"
#include "lib/buf.h"
#include "lib/db.h"
#include "delivery/tls_txt.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

static int txt(const char *rec, char *id)
{
    char err[128] = "";
    return sts_txt_parse(rec, strlen(rec), id, err, sizeof err);
}

START_TEST(txt_valid)
{
    char id[STS_ID_MAX + 1];
    ck_assert_int_eq(txt("v=STSv1; id=20160831085700Z;", id), 0);
    ck_assert_str_eq(id, "20160831085700Z");
    ck_assert_int_eq(txt("v=STSv1;id=abc", id), 0);
    ck_assert_str_eq(id, "abc");
    /* WSP around ';', an unknown extension, the id anywhere, the first id wins */
    ck_assert_int_eq(txt("v=STSv1 ;\tfoo.bar=x:y ; id=A1 ; id=B2 ;  ", id), 0);
    ck_assert_str_eq(id, "A1");
    /* 32 characters is the most */
    ck_assert_int_eq(txt("v=STSv1; id=0123456789abcdef0123456789ABCDEF", id), 0);
    ck_assert_uint_eq(strlen(id), 32);
}
END_TEST

START_TEST(txt_invalid)
{
    char id[STS_ID_MAX + 1] = "untouched";
    const char *bad[] = {
        "",
        "v=STSv1",                          /* no field after the version */
        "v=STSv1;",                         /* no id */
        "v=STSv1; foo=bar",                 /* no id */
        " v=STSv1; id=1",                   /* does not begin with the version */
        "id=1; v=STSv1",
        "v=STSv2; id=1",
        "v=stsv1; id=1",                    /* %s: case-sensitive */
        "v=STSv1; id=",                     /* empty id */
        "v=STSv1; id=a-b",                  /* id is letters and digits */
        "v=STSv1; id=0123456789abcdef0123456789ABCDEFG",  /* 33 */
        "v=STSv1;; id=1",                   /* empty field */
        "v=STSv1; id =1",                   /* space before '=' */
        "v=STSv1; id=1; ext=a=b",           /* '=' in an extension value */
        "v=STSv1; id=1; -ext=a",            /* name starts with '-' */
        "v=STSv1; id=1; ext=a b",           /* SP in an extension value */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(txt(bad[i], id) == -1, "accepted: %s", bad[i]);
    ck_assert_str_eq(id, "untouched");
    /* a NUL inside the record (TXT strings may carry one) */
    char err[128];
    ck_assert_int_eq(sts_txt_parse("v=STSv1; id=1\0x", 15, id, err, sizeof err), -1);
}
END_TEST

START_TEST(txt_select)
{
    const char *recs[] = { "v=spf1 -all", "v=STSv1; id=1", "v=STSv10; id=2", "v=STSv1" };
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(recs[i]);
    ck_assert_int_eq(tls_txt_select(recs, lens, 3, "v=STSv1"), 1);
    /* two records beginning with the version: no policy */
    ck_assert_int_eq(tls_txt_select(recs, lens, 4, "v=STSv1"), -1);
    ck_assert_int_eq(tls_txt_select(recs, lens, 1, "v=STSv1"), -1);
    ck_assert_int_eq(tls_txt_select(recs, lens, 0, "v=STSv1"), -1);
}
END_TEST

static const char *example =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
    "mx: backupmx.example.com\r\nmax_age: 604800\r\n";

static int pol(const char *text, struct sts_policy *p, char *err, size_t errlen)
{
    return sts_policy_parse(text, strlen(text), p, err, errlen);
}

START_TEST(policy_example)
{
    struct sts_policy p;
    char err[128] = "";
    ck_assert_msg(pol(example, &p, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(p.mode, STS_MODE_ENFORCE);
    ck_assert_uint_eq(p.max_age, 604800);
    ck_assert_uint_eq(p.n_mx, 3);
    ck_assert_str_eq(p.mx[0], "mail.example.com");
    ck_assert_str_eq(p.mx[1], "*.example.net");
    ck_assert_str_eq(p.mx[2], "backupmx.example.com");
    ck_assert_str_eq(sts_mode_name(p.mode), "enforce");
}
END_TEST

START_TEST(policy_lf_and_leniency)
{
    struct sts_policy p;
    char err[128] = "";
    /* LF lines, no final line end, WSP after the colon and at the line end, an
       unknown key, repeated non-mx keys (the first wins), upper-case mx folded */
    const char *t = "version:STSv1\nmode:\ttesting  \nfoo_bar.x: anything at all \xc3\xa9\n"
                    "mode: enforce\nmx: MX1.Example.COM\n\nmax_age: 86400\nmax_age: 5";
    ck_assert_msg(pol(t, &p, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(p.mode, STS_MODE_TESTING);
    ck_assert_uint_eq(p.max_age, 86400);
    ck_assert_uint_eq(p.n_mx, 1);
    ck_assert_str_eq(p.mx[0], "mx1.example.com");
    /* mode none needs no mx */
    ck_assert_int_eq(pol("version: STSv1\nmode: none\nmax_age: 0\n", &p, err, sizeof err), 0);
    ck_assert_int_eq(p.mode, STS_MODE_NONE);
    ck_assert_uint_eq(p.max_age, 0);
    /* max_age bounds: the RFC's maximum, above it clamped, ten digits the most */
    ck_assert_int_eq(pol("version: STSv1\nmode: none\nmax_age: 31557600\n", &p, err, sizeof err), 0);
    ck_assert_uint_eq(p.max_age, STS_MAX_AGE_MAX);
    ck_assert_int_eq(pol("version: STSv1\nmode: none\nmax_age: 9999999999\n", &p, err, sizeof err), 0);
    ck_assert_uint_eq(p.max_age, STS_MAX_AGE_MAX);
    ck_assert_int_eq(pol("version: STSv1\nmode: none\nmax_age: 99999999999\n", &p, err, sizeof err), -1);
}
END_TEST

START_TEST(policy_invalid)
{
    struct sts_policy p;
    char err[128];
    const char *bad[] = {
        "",
        "mode: enforce\nmx: a.example\nmax_age: 1\n",                       /* no version */
        "version: STSv1\nmx: a.example\nmax_age: 1\n",                      /* no mode */
        "version: STSv1\nmode: enforce\nmx: a.example\n",                   /* no max_age */
        "version: STSv1\nmode: enforce\nmax_age: 1\n",                      /* enforce without mx */
        "version: STSv1\nmode: testing\nmax_age: 1\n",                      /* testing without mx */
        "version: STSv2\nmode: none\nmax_age: 1\n",
        "version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n",       /* %s: case-sensitive */
        "version: STSv1\nmode: none\nmax_age: -1\n",
        "version: STSv1\nmode: none\nmax_age: 1s\n",
        "version: STSv1\nmode: none\nmax_age:\n",
        "version: STSv1\nmode: none\nmax_age: 1\njunk line\n",              /* not key: value */
        "version: STSv1\nmode: none\nmax_age: 1\n: value\n",                /* empty key */
        "version: STSv1\nmode: none\nmax_age: 1\nbad key: v\n",
        "version: STSv1\nmode: none\nmax_age: 1\nx: a\x01z\n",              /* a CTL */
        "version: STSv1\nmode: enforce\nmax_age: 1\nmx: *\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\nmx: *.\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\nmx: a.*.example\n",     /* wildcard only leftmost */
        "version: STSv1\nmode: enforce\nmax_age: 1\nmx: **.example.com\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\nmx: mail.example.com.\n", /* final dot */
        "version: STSv1\nmode: enforce\nmax_age: 1\nmx: mail_1.example.com\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\nmx: -a.example.com\n",
        "version: STSv1\nmode: enforce\nmax_age: 1\nmx: localhost\n",       /* one label */
        "version: STSv1\nmode: enforce\nmax_age: 1\nmx: m\xc3\xa9.example\n", /* a U-label */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(pol(bad[i], &p, err, sizeof err) == -1, "accepted #%zu", i);
    ck_assert_int_eq(pol("version: STSv1\nmode: none\nmax_age: 1\njunk line\n", &p, err, sizeof err), -1);
    ck_assert_str_eq(err, "line 4 is not \"key: value\"");
}
END_TEST

START_TEST(policy_limits)
{
    struct sts_policy p;
    char err[128];
    /* 64 KB is the limit: padding with an unknown key up to exactly it parses */
    size_t max = STS_POLICY_MAX;
    char *t = malloc(max + 2);
    ck_assert_ptr_nonnull(t);
    const char *head = "version: STSv1\nmode: none\nmax_age: 1\nx: ";
    size_t hl = strlen(head);
    memcpy(t, head, hl);
    memset(t + hl, 'a', max - hl);
    ck_assert_int_eq(sts_policy_parse(t, max, &p, err, sizeof err), 0);
    t[max] = 'a';
    ck_assert_int_eq(sts_policy_parse(t, max + 1, &p, err, sizeof err), -1);
    free(t);
    /* a 63-octet label is fine, 64 is not */
    char line[400];
    snprintf(line, sizeof line, "version: STSv1\nmode: enforce\nmax_age: 1\nmx: %.63s.example\n",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    ck_assert_int_eq(pol(line, &p, err, sizeof err), 0);
    snprintf(line, sizeof line, "version: STSv1\nmode: enforce\nmax_age: 1\nmx: %.64s.example\n",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    ck_assert_int_eq(pol(line, &p, err, sizeof err), -1);
    /* STS_MX_MAX patterns, not one more */
    char many[STS_MX_MAX * 32 + 128];
    size_t n = (size_t)snprintf(many, sizeof many, "version: STSv1\nmode: enforce\nmax_age: 1\n");
    for (int i = 0; i < STS_MX_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "mx: m%d.example\n", i);
    ck_assert_int_eq(sts_policy_parse(many, n, &p, err, sizeof err), 0);
    ck_assert_uint_eq(p.n_mx, STS_MX_MAX);
    n += (size_t)snprintf(many + n, sizeof many - n, "mx: one-more.example\n");
    ck_assert_int_eq(sts_policy_parse(many, n, &p, err, sizeof err), -1);
}
END_TEST

START_TEST(mx_matching)
{
    ck_assert(sts_mx_pattern_match("mail.example.com", "mail.example.com"));
    ck_assert(sts_mx_pattern_match("mail.example.com", "MAIL.Example.com."));
    ck_assert(!sts_mx_pattern_match("mail.example.com", "mail.example.co"));
    ck_assert(!sts_mx_pattern_match("mail.example.com", "xmail.example.com"));
    ck_assert(!sts_mx_pattern_match("mail.example.com", "mail.example.com.evil"));
    /* a wildcard stands for exactly one label */
    ck_assert(sts_mx_pattern_match("*.example.net", "mx1.example.net"));
    ck_assert(sts_mx_pattern_match("*.example.net", "MX1.EXAMPLE.NET."));
    ck_assert(!sts_mx_pattern_match("*.example.net", "example.net"));
    ck_assert(!sts_mx_pattern_match("*.example.net", "a.b.example.net"));
    ck_assert(!sts_mx_pattern_match("*.example.net", ".example.net"));
    ck_assert(!sts_mx_pattern_match("*.example.net", "mx1.badexample.net"));
    ck_assert(!sts_mx_pattern_match("*.example.net", "mx1xexample.net"));
    ck_assert(!sts_mx_pattern_match("*.example.net", ""));
    ck_assert(!sts_mx_pattern_match("*.example.net", "."));
    struct sts_policy p;
    char err[128];
    ck_assert_int_eq(pol(example, &p, err, sizeof err), 0);
    ck_assert(sts_policy_mx_ok(&p, "backupmx.example.com"));
    ck_assert(sts_policy_mx_ok(&p, "x.example.net"));
    ck_assert(!sts_policy_mx_ok(&p, "evil.example.org"));
    ck_assert(!sts_policy_mx_ok(&p, "a.mail.example.com"));
}
END_TEST


static void cached(struct sts_cached *c, const char *id, long long fetched, long long max_age)
{
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    c->fetched_at = fetched;
    c->expires_at = fetched + max_age;
}

START_TEST(cache_plan)
{
    struct sts_cached c;
    cached(&c, "A1", 1000, 400);
    struct sts_plan p;
    /* nothing cached: fetch when a TXT id exists, else no policy */
    p = sts_cache_plan(NULL, "A1", 1000);
    ck_assert_int_eq(p.action, STS_FETCH);
    ck_assert(!p.fallback);
    ck_assert_int_eq(sts_cache_plan(NULL, NULL, 1000).action, STS_NO_POLICY);
    /* same id, fresh: use it, no refresh yet */
    p = sts_cache_plan(&c, "A1", 1100);
    ck_assert_int_eq(p.action, STS_USE_CACHED);
    ck_assert(!p.refresh);
    /* same id, less than a quarter of max_age left: use it and refresh */
    p = sts_cache_plan(&c, "A1", 1301);
    ck_assert_int_eq(p.action, STS_USE_CACHED);
    ck_assert(p.refresh);
    /* the TXT record vanished: the cached policy still applies, no refresh */
    p = sts_cache_plan(&c, NULL, 1301);
    ck_assert_int_eq(p.action, STS_USE_CACHED);
    ck_assert(!p.refresh);
    /* the id changed: fetch, the cached one is the fallback */
    p = sts_cache_plan(&c, "B2", 1100);
    ck_assert_int_eq(p.action, STS_FETCH);
    ck_assert(p.fallback);
    /* expired: fetch with no fallback, or no policy without a TXT record */
    p = sts_cache_plan(&c, "A1", 1400);
    ck_assert_int_eq(p.action, STS_FETCH);
    ck_assert(!p.fallback);
    ck_assert_int_eq(sts_cache_plan(&c, NULL, 1400).action, STS_NO_POLICY);
}
END_TEST

START_TEST(cache_record)
{
    struct sts_policy p;
    char err[128];
    ck_assert_int_eq(pol(example, &p, err, sizeof err), 0);
    size_t len;
    char *v = sts_cache_encode("id7", 5000, &p, example, strlen(example), &len);
    ck_assert_ptr_nonnull(v);
    struct sts_cached c;
    ck_assert_int_eq(sts_cache_decode(v, len, &c), 0);
    ck_assert_str_eq(c.id, "id7");
    ck_assert_int_eq(c.fetched_at, 5000);
    ck_assert_int_eq(c.expires_at, 5000 + 604800);
    ck_assert_uint_eq(c.policy.n_mx, 3);
    ck_assert_str_eq(c.body, example);
    sts_cached_free(&c);
    /* damaged records are absent: cut short, wrong magic, bad number, bad body */
    ck_assert_int_eq(sts_cache_decode(v, 10, &c), -1);
    v[0] = 'X';
    ck_assert_int_eq(sts_cache_decode(v, len, &c), -1);
    free(v);
    const char *bad[] = { "STS1\nid\n12x\n13\nversion: STSv1\nmode: none\nmax_age: 1\n",
                          "STS1\nid\n13\n12\nversion: STSv1\nmode: none\nmax_age: 1\n",
                          "STS1\n\n12\n13\nversion: STSv1\nmode: none\nmax_age: 1\n",
                          "STS1\nid\n12\n13\nmode: none\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(sts_cache_decode(bad[i], strlen(bad[i]), &c) == -1, "accepted #%zu", i);
}
END_TEST

START_TEST(cache_db)
{
    char dir[] = "/tmp/ferry-sts-cache-XXXXXX", err[256];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    struct fdb_env *env;
    struct fdb *db;
    ck_assert_msg(fdb_env_open(dir, &env, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(fdb_open(env, "mta_sts.db", &db, err, sizeof err) == 0, "%s", err);
    struct sts_policy p;
    ck_assert_int_eq(pol(example, &p, err, sizeof err), 0);
    struct sts_cached c;
    ck_assert_int_eq(sts_cache_get(db, "Example.COM.", &c), 1);
    ck_assert_int_eq(sts_cache_put(db, "Example.COM.", "one", 100, &p, example, strlen(example)), 0);
    ck_assert_int_eq(sts_cache_get(db, "example.com", &c), 0);
    ck_assert_str_eq(c.id, "one");
    sts_cached_free(&c);
    /* a new id replaces the record */
    ck_assert_int_eq(sts_cache_put(db, "example.com", "two", 200, &p, example, strlen(example)), 0);
    ck_assert_int_eq(sts_cache_get(db, "example.com", &c), 0);
    ck_assert_str_eq(c.id, "two");
    ck_assert_int_eq(c.fetched_at, 200);
    sts_cached_free(&c);
    fdb_close(db);
    fdb_env_close(env);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(policy_format)
{
    const char *mx[] = { "mx1.example.com", "*.example.net" };
    struct buf b;
    buf_init(&b, STS_POLICY_MAX);
    ck_assert_int_eq(sts_policy_format(STS_MODE_ENFORCE, 86400, mx, 2, &b), 0);
    ck_assert_str_eq(b.data, "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\n"
                             "max_age: 86400\r\n");
    /* what it writes, the parser reads back the same */
    struct sts_policy p;
    char err[128];
    ck_assert_int_eq(sts_policy_parse(b.data, b.len, &p, err, sizeof err), 0);
    ck_assert_int_eq(p.mode, STS_MODE_ENFORCE);
    ck_assert_uint_eq(p.n_mx, 2);
    ck_assert_str_eq(p.mx[1], "*.example.net");
    const char *bad[] = { "mx_1.example.com" };
    ck_assert_int_eq(sts_policy_format(STS_MODE_TESTING, 1, bad, 1, &b), -1);
    ck_assert_int_eq(sts_policy_format(STS_MODE_TESTING, STS_MAX_AGE_MAX + 1, mx, 1, &b), -1);
    ck_assert_int_eq(sts_policy_format(STS_MODE_ENFORCE, 1, mx, 0, &b), -1);
    buf_free(&b);
}
END_TEST

static Suite *mta_sts_suite(void)
{
    Suite *s = suite_create("mta_sts");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, txt_valid);
    tcase_add_test(tc, txt_invalid);
    tcase_add_test(tc, txt_select);
    tcase_add_test(tc, policy_example);
    tcase_add_test(tc, policy_lf_and_leniency);
    tcase_add_test(tc, policy_invalid);
    tcase_add_test(tc, policy_limits);
    tcase_add_test(tc, mx_matching);
    tcase_add_test(tc, policy_format);
    tcase_add_test(tc, cache_plan);
    tcase_add_test(tc, cache_record);
    tcase_add_test(tc, cache_db);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(mta_sts_suite)

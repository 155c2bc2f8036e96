/* delivery/relayhost_creds: the credentials file's parser (bytes in), and the loader's
   permission checks on real files. */
#include "delivery/relayhost_creds.h"
#include "tests/unit/unit.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse(const char *text, struct relayhost_creds *c, const char **why)
{
    return relayhost_creds_parse(text, strlen(text), c, why);
}

START_TEST(parse_forms)
{
    struct relayhost_creds c;
    const char *why = NULL;
    ck_assert_int_eq(parse("alice s3cret\n", &c, &why), 0);
    ck_assert_str_eq(c.user, "alice");
    ck_assert_str_eq(c.pass, "s3cret");
    ck_assert_int_eq(parse("# comment\n\n  bob@example.net   pass with  spaces\r\n", &c, &why), 0);
    ck_assert_str_eq(c.user, "bob@example.net");
    ck_assert_str_eq(c.pass, "pass with  spaces");
    ck_assert_int_eq(parse("carol\tpw", &c, &why), 0);      /* no final newline */
    ck_assert_str_eq(c.pass, "pw");
}
END_TEST

START_TEST(parse_errors)
{
    struct relayhost_creds c;
    const char *why;
    ck_assert_int_eq(parse("", &c, &why), -1);
    ck_assert_str_eq(why, "no credentials line");
    ck_assert_int_eq(parse("# only a comment\n", &c, &why), -1);
    ck_assert_int_eq(parse("justauser\n", &c, &why), -1);
    ck_assert_str_eq(why, "expected \"user password\"");
    ck_assert_int_eq(parse("a b\nc d\n", &c, &why), -1);
    ck_assert_str_eq(why, "more than one credentials line");
    ck_assert_int_eq(parse("a b\x01z\n", &c, &why), -1);
    char big[700];
    memset(big, 'x', sizeof big);
    big[0] = 'u';
    big[1] = ' ';
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(parse(big, &c, &why), -1);
    ck_assert_str_eq(why, "user name or password too long");
    ck_assert(!c.set);
}
END_TEST

START_TEST(load_checks_permissions)
{
    char dir[] = "/tmp/ferry-creds-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/auth", dir);
    FILE *f = fopen(path, "w");
    fputs("relay pw\n", f);
    fclose(f);
    struct relayhost_creds c;
    char err[256];
    chmod(path, 0640);
    ck_assert_int_eq(relayhost_creds_load(path, &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "readable or writable by group or others"));
    chmod(path, 0600);
    ck_assert_int_eq(relayhost_creds_load(path, &c, err, sizeof err), 0);
    ck_assert_str_eq(c.user, "relay");
    relayhost_creds_wipe(&c);
    ck_assert(!c.set);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none", dir);
    ck_assert_int_eq(relayhost_creds_load(missing, &c, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "No such file"));
    unlink(path);
    rmdir(dir);
}
END_TEST

Suite *relayhost_creds_suite(void)
{
    Suite *s = suite_create("relayhost_creds");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parse_forms);
    tcase_add_test(tc, parse_errors);
    tcase_add_test(tc, load_checks_permissions);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(relayhost_creds_suite)

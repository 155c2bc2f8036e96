/* Unit tests for auth/credentials and auth/sasl: the RFC 7677 SCRAM-SHA-256
   example, PLAIN and LOGIN, and malformed exchanges, fed raw bytes. */
#include "auth/sasl.h"
#include "tests/unit/unit.h"

#include <string.h>

static struct credentials pencil;      /* "user" / "pencil", RFC 7677's salt */

static int lookup(void *arg, const char *user, struct credentials *out)
{
    if (strcmp(user, "user") != 0)
        return -1;
    *out = pencil;
    return 0;
}

static void setup(void)
{
    unsigned char salt[32];
    size_t n;
    ck_assert_int_eq(cred_b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof salt, &n), 0);
    ck_assert_int_eq(cred_derive("pencil", 6, salt, n, 4096, &pencil), 0);
}

static const char *b64(const char *s)
{
    static char out[1024];
    cred_b64_encode((const unsigned char *)s, strlen(s), out, sizeof out);
    return out;
}

static const char *unb64(const char *s)
{
    static char out[1024];
    size_t n;
    ck_assert_int_eq(cred_b64_decode(s, strlen(s), (unsigned char *)out, sizeof out - 1, &n), 0);
    out[n] = '\0';
    return out;
}

START_TEST(scram_rfc7677_example)
{
    struct sasl_server *s = sasl_start("scram-sha-256", lookup, NULL);
    ck_assert_ptr_nonnull(s);
    sasl_set_nonce(s, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    char ch[SASL_CHALLENGE_MAX];
    ck_assert_int_eq(sasl_initial(s, b64("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), ch, sizeof ch), SASL_CONTINUE);
    ck_assert_str_eq(unb64(ch), "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    const char *final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const char *line = b64(final);
    ck_assert_int_eq(sasl_step(s, line, strlen(line), ch, sizeof ch), SASL_CONTINUE);
    ck_assert_str_eq(unb64(ch), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    ck_assert_int_eq(sasl_step(s, "", 0, ch, sizeof ch), SASL_SUCCESS);
    ck_assert_str_eq(sasl_user(s), "user");
    sasl_free(s);
}
END_TEST

START_TEST(scram_failures)
{
    char ch[SASL_CHALLENGE_MAX];
    struct { const char *first, *final; enum sasl_status want; } cases[] = {
        { "p=tls-unique,,n=user,r=abc", NULL, SASL_FAIL },          /* channel binding */
        { "x,,n=user,r=abc", NULL, SASL_MALFORMED },                 /* bad gs2 */
        { "n,,n=us=41er,r=abc", NULL, SASL_MALFORMED },              /* bad saslname escape */
        { "n,,n=user", NULL, SASL_MALFORMED },                       /* no nonce */
        { "n,,m=ext,n=user,r=abc", NULL, SASL_FAIL },                /* mandatory extension */
        { "n,,n=user,r=abc", "c=biws,r=abcWRONG,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", SASL_FAIL },
        { "n,,n=user,r=abc", "c=eSws,r=abcNONCE,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", SASL_FAIL },
        { "n,,n=user,r=abc", "c=biws,r=abcNONCE,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", SASL_FAIL },
        { "n,,n=user,r=abc", "c=biws,r=abcNONCE,p=short", SASL_MALFORMED },
        { "n,,n=nobody,r=abc", "c=biws,r=abcNONCE,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", SASL_FAIL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sasl_server *s = sasl_start("SCRAM-SHA-256", lookup, NULL);
        sasl_set_nonce(s, "NONCE");
        enum sasl_status st = sasl_initial(s, b64(cases[i].first), ch, sizeof ch);
        if (cases[i].final) {
            ck_assert_int_eq(st, SASL_CONTINUE);
            const char *l = b64(cases[i].final);
            st = sasl_step(s, l, strlen(l), ch, sizeof ch);
        }
        ck_assert_msg(st == cases[i].want, "case %zu: %d (%s)", i, st, sasl_reason(s));
        sasl_free(s);
    }
}
END_TEST

START_TEST(plain_and_login)
{
    char ch[SASL_CHALLENGE_MAX];
    struct sasl_server *s = sasl_start("PLAIN", lookup, NULL);
    static const char ok[] = "\0user\0pencil", authz[] = "user\0user\0pencil", other[] = "admin\0user\0pencil",
                      bad[] = "\0user\0pen", nonul[] = "user pencil";
    char line[64];
    cred_b64_encode((const unsigned char *)ok, sizeof ok - 1, line, sizeof line);
    ck_assert_int_eq(sasl_initial(s, line, ch, sizeof ch), SASL_SUCCESS);
    ck_assert_str_eq(sasl_user(s), "user");
    sasl_free(s);
    struct { const char *m; size_t n; enum sasl_status want; } cases[] = {
        { authz, sizeof authz - 1, SASL_SUCCESS }, { other, sizeof other - 1, SASL_FAIL },
        { bad, sizeof bad - 1, SASL_FAIL }, { nonul, sizeof nonul - 1, SASL_MALFORMED },
    };
    for (size_t i = 0; i < 4; i++) {
        s = sasl_start("plain", lookup, NULL);
        ck_assert_int_eq(sasl_initial(s, NULL, ch, sizeof ch), SASL_CONTINUE);     /* "334 " */
        ck_assert_str_eq(ch, "");
        cred_b64_encode((const unsigned char *)cases[i].m, cases[i].n, line, sizeof line);
        ck_assert_int_eq(sasl_step(s, line, strlen(line), ch, sizeof ch), cases[i].want);
        sasl_free(s);
    }
    s = sasl_start("LOGIN", lookup, NULL);
    ck_assert_int_eq(sasl_initial(s, NULL, ch, sizeof ch), SASL_CONTINUE);
    ck_assert_str_eq(unb64(ch), "Username:");
    const char *u = b64("User");
    ck_assert_int_eq(sasl_step(s, u, strlen(u), ch, sizeof ch), SASL_CONTINUE);
    ck_assert_str_eq(unb64(ch), "Password:");
    const char *p = b64("pencil");
    ck_assert_int_eq(sasl_step(s, p, strlen(p), ch, sizeof ch), SASL_SUCCESS);
    ck_assert_str_eq(sasl_user(s), "user");          /* names are case-insensitive */
    sasl_free(s);
    ck_assert_ptr_null(sasl_start("CRAM-MD5", lookup, NULL));
}
END_TEST

START_TEST(base64_layer)
{
    char ch[SASL_CHALLENGE_MAX];
    struct sasl_server *s = sasl_start("PLAIN", lookup, NULL);
    ck_assert_int_eq(sasl_step(s, "*", 1, ch, sizeof ch), SASL_CANCELLED);
    sasl_free(s);
    s = sasl_start("PLAIN", lookup, NULL);
    ck_assert_int_eq(sasl_step(s, "not base64!", 11, ch, sizeof ch), SASL_MALFORMED);
    sasl_free(s);
    s = sasl_start("PLAIN", lookup, NULL);
    ck_assert_int_eq(sasl_step(s, "AGE=A", 5, ch, sizeof ch), SASL_MALFORMED);      /* bad length */
    sasl_free(s);
    s = sasl_start("PLAIN", lookup, NULL);
    ck_assert_int_eq(sasl_initial(s, "=", ch, sizeof ch), SASL_MALFORMED);          /* empty: no NULs */
    sasl_free(s);
    char *big = malloc(SASL_LINE_MAX + 5);
    memset(big, 'A', SASL_LINE_MAX + 4);
    s = sasl_start("PLAIN", lookup, NULL);
    ck_assert_int_eq(sasl_step(s, big, SASL_LINE_MAX + 4, ch, sizeof ch), SASL_MALFORMED);
    sasl_free(s);
    free(big);
}
END_TEST

START_TEST(password_preparation)
{
    char out[64];
    const char *why;
    ck_assert_int_eq(cred_prepare_password("a\xc2\xa0" "b", 4, out, sizeof out, &why), 0);
    ck_assert_str_eq(out, "a b");                       /* NO-BREAK SPACE → space */
    ck_assert_int_eq(cred_prepare_password("a\tb", 3, out, sizeof out, &why), -1);
    ck_assert_int_eq(cred_prepare_password("\xff", 1, out, sizeof out, &why), -1);
    ck_assert_int_eq(cred_prepare_password("", 0, out, sizeof out, &why), -1);
    struct credentials c;
    ck_assert_int_eq(cred_make("s3cret pass", 11, 1000, &c, &why), 0);
    ck_assert(cred_check_password(&c, "s3cret pass", 11));
    ck_assert(!cred_check_password(&c, "s3cret pasS", 11));
}
END_TEST

Suite *sasl_suite(void)
{
    Suite *s = suite_create("sasl");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, scram_rfc7677_example);
    tcase_add_test(tc, scram_failures);
    tcase_add_test(tc, plain_and_login);
    tcase_add_test(tc, base64_layer);
    tcase_add_test(tc, password_preparation);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(sasl_suite)

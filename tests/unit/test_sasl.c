/* Unit tests for auth/credentials and auth/sasl: the RFC 7677 SCRAM-SHA-256
   example, PLAIN and LOGIN, and malformed exchanges, fed raw bytes. */
#include "auth/sasl.h"
#include "auth/sasl_verify.h"
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

static struct sasl_verifier *verifier;

/* The session's side of the split: every SASL_VERIFY is answered here at once by
   the verifier (the auth process's side), as the smtp process does through IPC. */
static enum sasl_status drive(struct sasl_server *s, enum sasl_status st, char *ch, size_t chsz)
{
    while (st == SASL_VERIFY) {
        struct sasl_request q;
        struct sasl_verdict v;
        sasl_get_request(s, &q);
        sasl_verify(verifier, &q, &v);
        st = sasl_answer(s, &v, ch, chsz);
    }
    return st;
}
#define STEP(s, l, n, ch) drive(s, sasl_step(s, l, n, ch, sizeof ch), ch, sizeof ch)
#define INITIAL(s, ir, ch) drive(s, sasl_initial(s, ir, ch, sizeof ch), ch, sizeof ch)

static void teardown(void)
{
    sasl_verifier_free(verifier);
    verifier = NULL;
}

static void setup(void)
{
    verifier = sasl_verifier_new(lookup, NULL);
    ck_assert_ptr_nonnull(verifier);
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
    struct sasl_server *s = sasl_start("scram-sha-256");
    ck_assert_ptr_nonnull(s);
    sasl_set_nonce(s, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    char ch[SASL_CHALLENGE_MAX];
    ck_assert_int_eq(INITIAL(s, b64("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"), ch), SASL_CONTINUE);
    ck_assert_str_eq(unb64(ch), "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    const char *final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    const char *line = b64(final);
    ck_assert_int_eq(STEP(s, line, strlen(line), ch), SASL_CONTINUE);
    ck_assert_str_eq(unb64(ch), "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    ck_assert_int_eq(STEP(s, "", 0, ch), SASL_SUCCESS);
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
        struct sasl_server *s = sasl_start("SCRAM-SHA-256");
        sasl_set_nonce(s, "NONCE");
        enum sasl_status st = INITIAL(s, b64(cases[i].first), ch);
        if (cases[i].final) {
            ck_assert_int_eq(st, SASL_CONTINUE);
            const char *l = b64(cases[i].final);
            st = STEP(s, l, strlen(l), ch);
        }
        ck_assert_msg(st == cases[i].want, "case %zu: %d (%s)", i, st, sasl_reason(s));
        sasl_free(s);
    }
}
END_TEST

START_TEST(plain_and_login)
{
    char ch[SASL_CHALLENGE_MAX];
    struct sasl_server *s = sasl_start("PLAIN");
    static const char ok[] = "\0user\0pencil", authz[] = "user\0user\0pencil", other[] = "admin\0user\0pencil",
                      bad[] = "\0user\0pen", nonul[] = "user pencil";
    char line[64];
    cred_b64_encode((const unsigned char *)ok, sizeof ok - 1, line, sizeof line);
    ck_assert_int_eq(INITIAL(s, line, ch), SASL_SUCCESS);
    ck_assert_str_eq(sasl_user(s), "user");
    sasl_free(s);
    struct { const char *m; size_t n; enum sasl_status want; } cases[] = {
        { authz, sizeof authz - 1, SASL_SUCCESS }, { other, sizeof other - 1, SASL_FAIL },
        { bad, sizeof bad - 1, SASL_FAIL }, { nonul, sizeof nonul - 1, SASL_MALFORMED },
    };
    for (size_t i = 0; i < 4; i++) {
        s = sasl_start("plain");
        ck_assert_int_eq(INITIAL(s, NULL, ch), SASL_CONTINUE);     /* "334 " */
        ck_assert_str_eq(ch, "");
        cred_b64_encode((const unsigned char *)cases[i].m, cases[i].n, line, sizeof line);
        ck_assert_int_eq(STEP(s, line, strlen(line), ch), cases[i].want);
        sasl_free(s);
    }
    s = sasl_start("LOGIN");
    ck_assert_int_eq(INITIAL(s, NULL, ch), SASL_CONTINUE);
    ck_assert_str_eq(unb64(ch), "Username:");
    const char *u = b64("User");
    ck_assert_int_eq(STEP(s, u, strlen(u), ch), SASL_CONTINUE);
    ck_assert_str_eq(unb64(ch), "Password:");
    const char *p = b64("pencil");
    ck_assert_int_eq(STEP(s, p, strlen(p), ch), SASL_SUCCESS);
    ck_assert_str_eq(sasl_user(s), "user");          /* names are case-insensitive */
    sasl_free(s);
    ck_assert_ptr_null(sasl_start("CRAM-MD5"));
}
END_TEST

START_TEST(base64_layer)
{
    char ch[SASL_CHALLENGE_MAX];
    struct sasl_server *s = sasl_start("PLAIN");
    ck_assert_int_eq(STEP(s, "*", 1, ch), SASL_CANCELLED);
    sasl_free(s);
    s = sasl_start("PLAIN");
    ck_assert_int_eq(STEP(s, "not base64!", 11, ch), SASL_MALFORMED);
    sasl_free(s);
    s = sasl_start("PLAIN");
    ck_assert_int_eq(STEP(s, "AGE=A", 5, ch), SASL_MALFORMED);      /* bad length */
    sasl_free(s);
    s = sasl_start("PLAIN");
    ck_assert_int_eq(INITIAL(s, "=", ch), SASL_MALFORMED);          /* empty: no NULs */
    sasl_free(s);
    char *big = malloc(SASL_LINE_MAX + 5);
    memset(big, 'A', SASL_LINE_MAX + 4);
    s = sasl_start("PLAIN");
    ck_assert_int_eq(STEP(s, big, SASL_LINE_MAX + 4, ch), SASL_MALFORMED);
    sasl_free(s);
    free(big);
}
END_TEST

/* The state machine stops at each secret and asks: a PLAIN exchange asks about
   the password it was given; SCRAM asks for parameters, then about the proof; a
   verifier that cannot be reached makes a temporary failure (454), not a 535. */
START_TEST(asks_the_verifier)
{
    char ch[SASL_CHALLENGE_MAX];
    static const char plain[] = "\0user\0pencil";
    char line[64];
    cred_b64_encode((const unsigned char *)plain, sizeof plain - 1, line, sizeof line);
    struct sasl_server *s = sasl_start("PLAIN");
    ck_assert_int_eq(sasl_initial(s, line, ch, sizeof ch), SASL_VERIFY);
    struct sasl_request q;
    sasl_get_request(s, &q);
    ck_assert_int_eq(q.q, SASL_Q_PASSWORD);
    ck_assert_str_eq(q.user, "user");
    ck_assert_uint_eq(q.len, 6);
    ck_assert(memcmp(q.data, "pencil", 6) == 0);
    struct sasl_verdict v = { .ok = -1 };
    ck_assert_int_eq(sasl_answer(s, &v, ch, sizeof ch), SASL_TEMPFAIL);
    sasl_free(s);
    s = sasl_start("SCRAM-SHA-256");
    sasl_set_nonce(s, "NONCE");
    ck_assert_int_eq(sasl_initial(s, b64("n,,n=user,r=abc"), ch, sizeof ch), SASL_VERIFY);
    sasl_get_request(s, &q);
    ck_assert_int_eq(q.q, SASL_Q_SCRAM_PARAMS);
    sasl_verify(verifier, &q, &v);
    ck_assert_int_eq(sasl_answer(s, &v, ch, sizeof ch), SASL_CONTINUE);
    const char *fin = b64("c=biws,r=abcNONCE,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    ck_assert_int_eq(sasl_step(s, fin, strlen(fin), ch, sizeof ch), SASL_VERIFY);
    sasl_get_request(s, &q);
    ck_assert_int_eq(q.q, SASL_Q_SCRAM_PROOF);
    ck_assert_int_eq(sasl_answer(s, &(struct sasl_verdict){ .ok = -1 }, ch, sizeof ch), SASL_TEMPFAIL);
    sasl_free(s);
    /* Unknown users get parameters too, the same each time for the same name. */
    struct sasl_verdict a, b;
    sasl_verify(verifier, &(struct sasl_request){ .q = SASL_Q_SCRAM_PARAMS, .user = "ghost" }, &a);
    sasl_verify(verifier, &(struct sasl_request){ .q = SASL_Q_SCRAM_PARAMS, .user = "ghost" }, &b);
    ck_assert_int_eq(a.ok, 1);
    ck_assert_uint_eq(a.salt_len, CRED_SALT_LEN);
    ck_assert(memcmp(a.salt, b.salt, a.salt_len) == 0);
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
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, scram_rfc7677_example);
    tcase_add_test(tc, scram_failures);
    tcase_add_test(tc, plain_and_login);
    tcase_add_test(tc, base64_layer);
    tcase_add_test(tc, asks_the_verifier);
    tcase_add_test(tc, password_preparation);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(sasl_suite)

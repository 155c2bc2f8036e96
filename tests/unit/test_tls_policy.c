/*
 * test_tls_policy.c — delivery/tls_policy.h (levels, the policy table, the
 * effective level) and delivery/dane.h's pure part (TLSA usability, answer
 * classification), with tables and DNS answers built by hand.
 */
#include "delivery/dane.h"
#include "delivery/tls_policy.h"
#include "lib/settings.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct tls_policy *table(const char *text, enum tls_level def)
{
    struct tls_policy *p = tls_policy_new(def);
    ck_assert_ptr_nonnull(p);
    char err[256] = "";
    int rc = tls_policy_parse(p, "pol", text, strlen(text), err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    return p;
}

static void parse_fails(const char *text, const char *want)
{
    struct tls_policy *p = table("keep.example verify\n", TLS_LEVEL_DANE);
    char err[256] = "";
    ck_assert_int_eq(tls_policy_parse(p, "pol", text, strlen(text), err, sizeof err), -1);
    ck_assert_msg(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
    /* a refused table leaves the previous one in force */
    ck_assert_int_eq(tls_policy_lookup(p, "keep.example"), TLS_LEVEL_VERIFY);
    ck_assert_uint_eq(tls_policy_count(p), 1);
    tls_policy_free(p);
}

START_TEST(levels_parse_and_name)
{
    static const char *names[] = { "none", "may", "encrypt", "dane", "verify" };
    for (int i = 0; i < 5; i++) {
        enum tls_level l;
        ck_assert_int_eq(tls_level_parse(names[i], &l), 0);
        ck_assert_int_eq(l, i);
        ck_assert_str_eq(tls_level_name(l), names[i]);
    }
    enum tls_level l;
    ck_assert_int_eq(tls_level_parse("VERIFY", &l), 0);
    ck_assert_int_eq(l, TLS_LEVEL_VERIFY);
    ck_assert_int_eq(tls_level_parse("secure", &l), -1);
    ck_assert_int_eq(tls_level_parse("", &l), -1);
}
END_TEST

/* lib/settings.c cannot include delivery/: its smtp_tls_level choices must
   follow enum tls_level by hand, and this keeps them in step. */
START_TEST(settings_choices_follow_the_enum)
{
    size_t n = 0;
    const struct conf_setting *schema = settings_schema(&n);
    const struct conf_setting *hit = NULL;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(schema[i].key, "smtp_tls_level"))
            hit = &schema[i];
    ck_assert_ptr_nonnull(hit);
    size_t k = 0;
    for (; hit->choices[k]; k++)
        ck_assert_str_eq(hit->choices[k], tls_level_name((enum tls_level)k));
    ck_assert_uint_eq(k, TLS_LEVEL_VERIFY + 1);
    ck_assert_str_eq(hit->def, "dane");
}
END_TEST

START_TEST(lookup_exact_subdomain_default)
{
    struct tls_policy *p = table("# comment line\n"
                                 "\n"
                                 "example.com      verify   # trailing comment\n"
                                 ".example.com\tencrypt\r\n"
                                 ".deep.example.com none\n"
                                 "Bank.Example.    dane\n"
                                 "plain.test may",
                                 TLS_LEVEL_DANE);
    ck_assert_uint_eq(tls_policy_count(p), 5);
    ck_assert_int_eq(tls_policy_default(p), TLS_LEVEL_DANE);
    ck_assert_int_eq(tls_policy_lookup(p, "example.com"), TLS_LEVEL_VERIFY);
    ck_assert_int_eq(tls_policy_lookup(p, "EXAMPLE.COM."), TLS_LEVEL_VERIFY);
    ck_assert_int_eq(tls_policy_lookup(p, "mx.example.com"), TLS_LEVEL_ENCRYPT);
    ck_assert_int_eq(tls_policy_lookup(p, "a.b.example.com"), TLS_LEVEL_ENCRYPT);
    /* the longest suffix wins, and ".deep..." does not cover deep.example.com itself */
    ck_assert_int_eq(tls_policy_lookup(p, "x.deep.example.com"), TLS_LEVEL_NONE);
    ck_assert_int_eq(tls_policy_lookup(p, "deep.example.com"), TLS_LEVEL_ENCRYPT);
    ck_assert_int_eq(tls_policy_lookup(p, "bank.example"), TLS_LEVEL_DANE);
    ck_assert_int_eq(tls_policy_lookup(p, "plain.test"), TLS_LEVEL_MAY);
    /* no partial-label match, no match of unrelated names */
    ck_assert_int_eq(tls_policy_lookup(p, "notexample.com"), TLS_LEVEL_DANE);
    ck_assert_int_eq(tls_policy_lookup(p, "com"), TLS_LEVEL_DANE);
    ck_assert_int_eq(tls_policy_lookup(p, "other.org"), TLS_LEVEL_DANE);
    ck_assert_int_eq(tls_policy_lookup(p, ""), TLS_LEVEL_DANE);
    tls_policy_free(p);

    p = table("", TLS_LEVEL_MAY);
    ck_assert_int_eq(tls_policy_lookup(p, "example.com"), TLS_LEVEL_MAY);
    tls_policy_free(p);
}
END_TEST

START_TEST(parse_errors_name_file_and_line)
{
    parse_fails("a.example may\nb.example sometimes\n", "pol:2: unknown level \"sometimes\"");
    parse_fails("\n\nlonely.example\n", "pol:3: expected \"DOMAIN LEVEL\"");
    parse_fails("a.example may extra\n", "pol:1: unexpected \"extra\"");
    parse_fails("a..example may\n", "pol:1: empty label");
    parse_fails("a/b.example may\n", "pol:1: invalid character");
    parse_fails(". may\n", "pol:1:");
    parse_fails("a.example may\nA.Example. verify\n", "\"a.example\" is listed twice");
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    parse_fails(big, "pol:1: line longer");
    char label[100];
    snprintf(label, sizeof label, "%070d.example may\n", 0);
    parse_fails(label, "label longer than 63");
    const char nul[] = "a.example may\nb\0.example may\n";
    struct tls_policy *p = tls_policy_new(TLS_LEVEL_DANE);
    char err[256];
    ck_assert_int_eq(tls_policy_parse(p, "pol", nul, sizeof nul - 1, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "pol:2: NUL") != NULL, "%s", err);
    tls_policy_free(p);
}
END_TEST

START_TEST(load_file)
{
    char path[] = "/tmp/ferry-tls-policy-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "example.net verify\n.example.net encrypt\nbad line here\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct tls_policy *p = tls_policy_new(TLS_LEVEL_DANE);
    char err[512], want[512];
    ck_assert_int_eq(tls_policy_load(p, path, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:3: ", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("example.net verify\n.example.net encrypt\n", f);
    fclose(f);
    ck_assert_int_eq(tls_policy_load(p, path, err, sizeof err), 0);
    ck_assert_int_eq(tls_policy_lookup(p, "mx.example.net"), TLS_LEVEL_ENCRYPT);
    unlink(path);
    ck_assert_int_eq(tls_policy_load(p, path, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "cannot open") && strstr(err, path), "%s", err);
    ck_assert_int_eq(tls_policy_lookup(p, "example.net"), TLS_LEVEL_VERIFY);
    tls_policy_free(p);
}
END_TEST

/* ---- dane.h, pure ---- */

static struct dns_record trec[16];
static unsigned char tdata[16][64];

/* "U S M LEN|..." records with LEN octets of data each (value 0xAB). */
static struct dns_answer tlsa_answer(enum dns_status st, bool ad, const char *list)
{
    struct dns_answer a;
    memset(&a, 0, sizeof a);
    a.status = st;
    a.authenticated = ad;
    a.qtype = DNS_T_TLSA;
    snprintf(a.qname, sizeof a.qname, "_25._tcp.mx.example");
    snprintf(a.error, sizeof a.error, "%s", st == DNS_SERVFAIL ? "server failure (SERVFAIL)" : "");
    a.records = trec;
    if (st != DNS_OK)
        return a;
    char copy[512];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save, *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        size_t i = a.count++;
        struct dns_record *r = &trec[i];
        memset(r, 0, sizeof *r);
        r->type = DNS_T_TLSA;
        unsigned u, s, m, len;
        ck_assert_int_eq(sscanf(tok, "%u %u %u %u", &u, &s, &m, &len), 4);
        r->u.tlsa.usage = (uint8_t)u;
        r->u.tlsa.selector = (uint8_t)s;
        r->u.tlsa.matching = (uint8_t)m;
        memset(tdata[i], 0xAB, sizeof tdata[i]);
        tdata[i][0] = (unsigned char)i;
        r->data = tdata[i];
        r->len = len;
    }
    return a;
}

START_TEST(record_usability)
{
    ck_assert(dane_record_usable(3, 1, 1, 32));
    ck_assert(dane_record_usable(2, 0, 1, 32));
    ck_assert(dane_record_usable(3, 0, 2, 64));
    ck_assert(!dane_record_usable(0, 0, 1, 32));     /* PKIX-TA */
    ck_assert(!dane_record_usable(1, 1, 1, 32));     /* PKIX-EE */
    ck_assert(!dane_record_usable(4, 1, 1, 32));
    ck_assert(!dane_record_usable(3, 2, 1, 32));     /* unknown selector */
    ck_assert(!dane_record_usable(3, 1, 3, 32));     /* unknown matching type */
    ck_assert(!dane_record_usable(3, 1, 1, 31));     /* SHA2-256 of the wrong length */
    ck_assert(!dane_record_usable(3, 1, 2, 32));     /* SHA2-512 of the wrong length */
    ck_assert(!dane_record_usable(3, 1, 0, 0));
    ck_assert(!dane_record_usable(3, 1, 0, DANE_DATA_MAX + 1));
    char name[300];
    ck_assert_int_eq(dane_tlsa_name("mx.example.com.", 25, name, sizeof name), 0);
    ck_assert_str_eq(name, "_25._tcp.mx.example.com");
    char longhost[260];
    memset(longhost, 'a', 250);
    longhost[250] = '\0';
    ck_assert_int_eq(dane_tlsa_name(longhost, 25, name, sizeof name), -1);
    ck_assert_int_eq(dane_tlsa_name("", 25, name, sizeof name), -1);
}
END_TEST

START_TEST(answer_classification)
{
    struct dane_result r;
    struct dns_answer a = tlsa_answer(DNS_OK, true, "3 1 1 32|0 0 1 32|2 0 2 64|3 1 1 20|3 1 0 40");
    dane_result_from_answer(&a, &r);
    ck_assert_int_eq(r.status, DANE_SECURE);
    ck_assert_uint_eq(r.set.total, 5);
    ck_assert_uint_eq(r.set.n, 2);                  /* 3 1 1 and 2 0 2; 3 1 0 is no SPKI */
    ck_assert_int_eq(r.set.r[0].usage, 3);
    ck_assert_int_eq(r.set.r[0].data[0], 0);
    ck_assert_int_eq(r.set.r[1].usage, 2);
    ck_assert_int_eq(r.set.r[1].matching, 2);
    ck_assert_uint_eq(r.set.r[1].len, 64);
    ck_assert_int_eq(r.set.r[1].data[0], 2);
    ck_assert(dane_result_usable(&r));
    ck_assert(!dane_result_all_unusable(&r));
    ck_assert_str_eq(r.qname, "_25._tcp.mx.example");
    ck_assert_msg(strstr(r.why, "5 TLSA records, 2 usable"), "%s", r.why);

    a = tlsa_answer(DNS_OK, true, "1 1 1 32|0 0 1 32|3 3 1 32");
    dane_result_from_answer(&a, &r);
    ck_assert_int_eq(r.status, DANE_SECURE);
    ck_assert(!dane_result_usable(&r));
    ck_assert(dane_result_all_unusable(&r));
    ck_assert_msg(strstr(r.why, "all unusable"), "%s", r.why);

    a = tlsa_answer(DNS_OK, false, "3 1 1 32");
    dane_result_from_answer(&a, &r);
    ck_assert_int_eq(r.status, DANE_INSECURE);
    ck_assert_uint_eq(r.set.n, 0);
    ck_assert(!dane_result_usable(&r));

    a = tlsa_answer(DNS_NODATA, true, NULL);
    dane_result_from_answer(&a, &r);
    ck_assert_int_eq(r.status, DANE_NONE);
    a = tlsa_answer(DNS_NXDOMAIN, true, NULL);
    dane_result_from_answer(&a, &r);
    ck_assert_int_eq(r.status, DANE_NONE);
    a = tlsa_answer(DNS_NXDOMAIN, false, NULL);
    dane_result_from_answer(&a, &r);
    ck_assert_int_eq(r.status, DANE_INSECURE);
    a = tlsa_answer(DNS_SERVFAIL, false, NULL);
    dane_result_from_answer(&a, &r);
    ck_assert_int_eq(r.status, DANE_FAILED);
    ck_assert_msg(strstr(r.why, "SERVFAIL"), "%s", r.why);
    a = tlsa_answer(DNS_TIMEOUT, true, NULL);
    dane_result_from_answer(&a, &r);
    ck_assert_int_eq(r.status, DANE_FAILED);
    a = tlsa_answer(DNS_ERROR, true, NULL);
    dane_result_from_answer(&a, &r);
    ck_assert_int_eq(r.status, DANE_FAILED);
}
END_TEST

START_TEST(record_bound)
{
    struct dane_result r;
    struct dns_answer a = tlsa_answer(DNS_OK, true, "3 1 1 32|3 1 1 32|3 1 1 32|3 1 1 32|3 1 1 32|3 1 1 32|"
                                                    "3 1 1 32|3 1 1 32|3 1 1 32|3 1 1 32");
    dane_result_from_answer(&a, &r);
    ck_assert_uint_eq(r.set.total, 10);
    ck_assert_uint_eq(r.set.n, DANE_MAX_RECORDS);
    ck_assert_uint_eq(r.set.dropped, 10 - DANE_MAX_RECORDS);
}
END_TEST

START_TEST(tlsa_policy_text)
{
    struct dane_set set;
    memset(&set, 0, sizeof set);
    set.n = 2;
    set.r[0] = (struct dane_record){ .usage = 3, .selector = 1, .matching = 1, .len = 4 };
    memcpy(set.r[0].data, "\x1f\x85\x0a\x33", 4);
    set.r[1] = (struct dane_record){ .usage = 2, .selector = 0, .matching = 0, .len = 300 };
    memset(set.r[1].data, 0xab, 300);
    char out[700];
    ck_assert_uint_eq(dane_set_text(&set, out, sizeof out), 2);
    ck_assert(strncmp(out, "3 1 1 1F850A33\n2 0 0 ABAB", 25) == 0);
    ck_assert_uint_eq(strlen(out), 14 + 1 + 6 + 600);
    /* a record that does not fit is left out whole; the rest stay */
    ck_assert_uint_eq(dane_set_text(&set, out, 100), 1);
    ck_assert_str_eq(out, "3 1 1 1F850A33");
    ck_assert_uint_eq(dane_set_text(&set, out, 10), 0);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(effective_level)
{
    struct dane_result usable, unusable, none, insecure;
    struct dns_answer a = tlsa_answer(DNS_OK, true, "3 1 1 32");
    dane_result_from_answer(&a, &usable);
    a = tlsa_answer(DNS_OK, true, "1 1 1 32");
    dane_result_from_answer(&a, &unusable);
    a = tlsa_answer(DNS_NODATA, true, NULL);
    dane_result_from_answer(&a, &none);
    a = tlsa_answer(DNS_OK, false, "3 1 1 32");
    dane_result_from_answer(&a, &insecure);

    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_DANE, false, &usable), TLS_LEVEL_DANE);
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_DANE, false, &unusable), TLS_LEVEL_ENCRYPT);
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_DANE, false, &none), TLS_LEVEL_MAY);
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_DANE, false, &insecure), TLS_LEVEL_MAY);
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_DANE, false, NULL), TLS_LEVEL_MAY);
    /* other levels ignore TLSA */
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_MAY, false, &usable), TLS_LEVEL_MAY);
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_NONE, false, &usable), TLS_LEVEL_NONE);
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_VERIFY, false, &none), TLS_LEVEL_VERIFY);
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_ENCRYPT, false, &usable), TLS_LEVEL_ENCRYPT);
    /* REQUIRETLS: authenticated, whatever the policy */
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_NONE, true, &usable), TLS_LEVEL_DANE);
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_MAY, true, &none), TLS_LEVEL_VERIFY);
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_DANE, true, &unusable), TLS_LEVEL_VERIFY);
    ck_assert_int_eq(tls_level_effective(TLS_LEVEL_VERIFY, true, &usable), TLS_LEVEL_DANE);

    ck_assert(tls_level_plaintext_retry(TLS_LEVEL_MAY));
    ck_assert(!tls_level_plaintext_retry(TLS_LEVEL_ENCRYPT));
    ck_assert(!tls_level_plaintext_retry(TLS_LEVEL_DANE));
    ck_assert(!tls_level_requires_tls(TLS_LEVEL_NONE));
    ck_assert(!tls_level_requires_tls(TLS_LEVEL_MAY));
    ck_assert(tls_level_requires_tls(TLS_LEVEL_ENCRYPT));
    ck_assert(tls_level_requires_tls(TLS_LEVEL_DANE));
    ck_assert(tls_level_requires_tls(TLS_LEVEL_VERIFY));
}
END_TEST

Suite *tls_policy_suite(void)
{
    Suite *s = suite_create("tls_policy");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, levels_parse_and_name);
    tcase_add_test(tc, settings_choices_follow_the_enum);
    tcase_add_test(tc, lookup_exact_subdomain_default);
    tcase_add_test(tc, parse_errors_name_file_and_line);
    tcase_add_test(tc, load_file);
    tcase_add_test(tc, record_usability);
    tcase_add_test(tc, answer_classification);
    tcase_add_test(tc, record_bound);
    tcase_add_test(tc, effective_level);
    tcase_add_test(tc, tlsa_policy_text);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(tls_policy_suite)

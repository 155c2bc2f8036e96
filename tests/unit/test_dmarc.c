/*
 * Unit tests of auth/dmarc: evaluation over a table resolver — alignment strict and
 * relaxed for SPF and DKIM, p/sp/np (existence by an A lookup), t=y, psd=y, the
 * §4.10.1 fallbacks, temperror, From: outcomes, cancel, and the A-R text.
 */
#include "auth/dmarc.h"
#include "tests/unit/fake_dns.h"
#include "tests/unit/unit.h"

static const struct fake_row zone[] = {
    {"_dmarc.example.com", DNS_T_TXT, DNS_OK, "v=DMARC1; p=reject; sp=quarantine; np=reject; rua=mailto:d@example.com"},
    {"mail.example.com", DNS_T_A, DNS_OK, "192.0.2.1"},
    {"_dmarc.indep.example.com", DNS_T_TXT, DNS_OK, "v=DMARC1; p=none; psd=n"},
    {"_dmarc.strict.example", DNS_T_TXT, DNS_OK, "v=DMARC1; p=reject; adkim=s; aspf=s"},
    {"_dmarc.test.example", DNS_T_TXT, DNS_OK, "v=DMARC1; p=reject; t=y"},
    {"_dmarc.q.example", DNS_T_TXT, DNS_OK, "v=DMARC1; p=quarantine; t=y"},
    {"_dmarc.bank.example", DNS_T_TXT, DNS_OK, "v=DMARC1; p=reject; psd=y"},
    {"_dmarc.broken.example", DNS_T_TXT, DNS_OK, "v=DMARC1; p=bogus"},
    {"_dmarc.forced.example", DNS_T_TXT, DNS_OK, "v=DMARC1; p=bogus; rua=mailto:x@forced.example"},
    {"_dmarc.flaky.example", DNS_T_TXT, DNS_SERVFAIL, NULL},
    {"_dmarc.sub.upfail.example", DNS_T_TXT, DNS_OK, "v=DMARC1; p=reject"},
    {"_dmarc.upfail.example", DNS_T_TXT, DNS_SERVFAIL, NULL},
    {NULL, 0, 0, NULL}};

static struct dmarc_outcome got;
static int calls;
static unsigned nqueries;

static void done(const struct dmarc_outcome *o, void *arg)
{
    (void)arg;
    got = *o;
    calls++;
}

static struct dkim_sig_result sig(enum dkim_result r, const char *d)
{
    struct dkim_sig_result s;
    memset(&s, 0, sizeof s);
    s.result = r;
    snprintf(s.domain, sizeof s.domain, "%s", d);
    snprintf(s.selector, sizeof s.selector, "sel");
    return s;
}

static const struct dmarc_outcome *eval(const char *from_hdr, enum spf_result spf, const char *spf_domain,
                                        const struct dkim_sig_result *dkim, size_t ndkim)
{
    struct dmarc_from f;
    dmarc_from_extract(from_hdr, strlen(from_hdr), &f);
    struct dmarc_input in = {&f, spf, spf_domain, dkim, ndkim};
    struct fake_dns fd;
    struct auth_resolver r;
    fake_dns_resolver(&fd, zone, &r);
    calls = 0;
    dmarc_evaluate(&r, &in, done, NULL);
    fake_dns_run(&fd);
    ck_assert_int_eq(calls, 1);
    nqueries = fd.queries;
    return &got;
}

static bool has_step(const struct dmarc_outcome *o, const char *text)
{
    for (size_t i = 0; i < o->nsteps; i++)
        if (strstr(o->steps[i], text))
            return true;
    return false;
}

START_TEST(spf_strict_identical_pass)
{
    const struct dmarc_outcome *o = eval("From: a@example.com\r\n\r\n", SPF_PASS, "example.com", NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_PASS);
    ck_assert(o->spf_aligned);
    ck_assert_int_eq(o->disposition, DMARC_P_NONE);
    ck_assert_int_eq(o->policy, DMARC_P_REJECT);
    ck_assert_str_eq(o->policy_tag, "p");
    ck_assert_str_eq(o->header_from, "example.com");
    ck_assert_uint_eq(o->record.nrua, 1);
    ck_assert(has_step(o, "aligned (identical"));
}
END_TEST

START_TEST(spf_relaxed_child_pass)
{
    const struct dmarc_outcome *o = eval("From: a@example.com\r\n\r\n", SPF_PASS, "bounces.example.com", NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_PASS);
    ck_assert(has_step(o, "same organizational domain example.com"));
}
END_TEST

START_TEST(fail_reject_and_unaligned)
{
    struct dkim_sig_result d[] = {sig(DKIM_RES_PASS, "example.net"), sig(DKIM_RES_FAIL, "example.com")};
    const struct dmarc_outcome *o = eval("From: a@example.com\r\n\r\n", SPF_PASS, "example.org", d, 2);
    ck_assert_int_eq(o->result, DMARC_RES_FAIL);
    ck_assert_int_eq(o->disposition, DMARC_P_REJECT);
    ck_assert(has_step(o, "not aligned (not within example.com"));
    ck_assert(has_step(o, "d=example.com s=sel fail: not an authenticated identifier"));
    char ar[256];
    ck_assert_int_gt(dmarc_format_auth_results(o, ar, sizeof ar), 0);
    ck_assert_str_eq(ar, "dmarc=fail (p=reject sp=quarantine dis=reject) header.from=example.com policy.dmarc=reject");
}
END_TEST

START_TEST(dkim_relaxed_pass)
{
    struct dkim_sig_result d[] = {sig(DKIM_RES_PASS, "Example.COM")};
    const struct dmarc_outcome *o = eval("From: a@mail.example.com\r\n\r\n", SPF_FAIL, "x.example", d, 1);
    ck_assert_int_eq(o->result, DMARC_RES_PASS);
    ck_assert(o->dkim_aligned);
    ck_assert(!o->spf_aligned);
    ck_assert_str_eq(o->dkim_aligned_domain, "example.com");
    ck_assert_str_eq(o->policy_tag, "sp");
    /* a child that is its own organizational domain (psd=n) does not align */
    struct dkim_sig_result d2[] = {sig(DKIM_RES_PASS, "indep.example.com")};
    o = eval("From: a@example.com\r\n\r\n", SPF_FAIL, "x.example", d2, 1);
    ck_assert_int_eq(o->result, DMARC_RES_FAIL);
    ck_assert(has_step(o, "its organizational domain is indep.example.com"));
}
END_TEST

START_TEST(strict_modes)
{
    struct dkim_sig_result d[] = {sig(DKIM_RES_PASS, "mail.strict.example")};
    const struct dmarc_outcome *o = eval("From: a@strict.example\r\n\r\n", SPF_PASS, "bounce.strict.example", d, 1);
    ck_assert_int_eq(o->result, DMARC_RES_FAIL);
    ck_assert(has_step(o, "aspf=s: not aligned (strict needs strict.example exactly)"));
    ck_assert(has_step(o, "adkim=s: not aligned"));
    struct dkim_sig_result d2[] = {sig(DKIM_RES_PASS, "strict.example")};
    o = eval("From: a@strict.example\r\n\r\n", SPF_PASS, "bounce.strict.example", d2, 1);
    ck_assert_int_eq(o->result, DMARC_RES_PASS);
}
END_TEST

START_TEST(sp_for_existing_np_for_missing)
{
    /* mail.example.com has an A record: sp */
    const struct dmarc_outcome *o = eval("From: a@mail.example.com\r\n\r\n", SPF_NONE, NULL, NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_FAIL);
    ck_assert_str_eq(o->policy_tag, "sp");
    ck_assert_int_eq(o->disposition, DMARC_P_QUARANTINE);
    ck_assert_int_eq(o->source, DMARC_SRC_ORG);
    /* nothing at nx.example.com: NXDOMAIN, np */
    o = eval("From: a@nx.example.com\r\n\r\n", SPF_NONE, NULL, NULL, 0);
    ck_assert_str_eq(o->policy_tag, "np");
    ck_assert_int_eq(o->disposition, DMARC_P_REJECT);
    ck_assert(has_step(o, "does not exist (NXDOMAIN)"));
}
END_TEST

START_TEST(testing_lowers_one_step)
{
    const struct dmarc_outcome *o = eval("From: a@test.example\r\n\r\n", SPF_NONE, NULL, NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_FAIL);
    ck_assert_int_eq(o->policy, DMARC_P_REJECT);
    ck_assert_int_eq(o->disposition, DMARC_P_QUARANTINE);
    o = eval("From: a@q.example\r\n\r\n", SPF_NONE, NULL, NULL, 0);
    ck_assert_int_eq(o->disposition, DMARC_P_NONE);
}
END_TEST

START_TEST(psd_record)
{
    /* no record at the org giant.bank.example: the PSD's applies, sp */
    struct dkim_sig_result d[] = {sig(DKIM_RES_PASS, "mail.mega.bank.example")};
    const struct dmarc_outcome *o = eval("From: a@giant.bank.example\r\n\r\n", SPF_PASS,
                                         "mail.giant.bank.example", d, 1);
    ck_assert_int_eq(o->source, DMARC_SRC_PSD);
    ck_assert_str_eq(o->org_domain, "giant.bank.example");
    ck_assert_int_eq(o->result, DMARC_RES_PASS);      /* SPF: same org */
    ck_assert(o->spf_aligned);
    ck_assert(!o->dkim_aligned);                       /* org mega.bank.example */
    ck_assert(has_step(o, "not aligned (not within giant.bank.example"));
}
END_TEST

START_TEST(record_fallbacks)
{
    const struct dmarc_outcome *o = eval("From: a@broken.example\r\n\r\n", SPF_PASS, "broken.example", NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_PERMERROR);
    ck_assert_int_eq(o->disposition, DMARC_P_NONE);
    o = eval("From: a@forced.example\r\n\r\n", SPF_NONE, NULL, NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_FAIL);
    ck_assert_int_eq(o->policy, DMARC_P_NONE);
    ck_assert_int_eq(o->disposition, DMARC_P_NONE);
    ck_assert(has_step(o, "acting as p=none"));
    o = eval("From: a@nothing.example\r\n\r\n", SPF_PASS, "nothing.example", NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_NONE);
    ck_assert(!o->has_record);
}
END_TEST

START_TEST(temperrors)
{
    const struct dmarc_outcome *o = eval("From: a@flaky.example\r\n\r\n", SPF_PASS, "flaky.example", NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_TEMPERROR);
    ck_assert_int_eq(o->disposition, DMARC_P_NONE);
    /* the record at the author domain is known, the org above is not: identical still
       passes, a relaxed child cannot be decided */
    o = eval("From: a@sub.upfail.example\r\n\r\n", SPF_PASS, "sub.upfail.example", NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_PASS);
    o = eval("From: a@sub.upfail.example\r\n\r\n", SPF_PASS, "x.sub.upfail.example", NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_TEMPERROR);
}
END_TEST

START_TEST(from_outcomes)
{
    const struct dmarc_outcome *o = eval("To: x@y.example\r\n\r\n", SPF_PASS, "example.com", NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_NONE);
    ck_assert_uint_eq(nqueries, 0);
    o = eval("From: a@example.com, b@evil.example\r\n\r\n", SPF_PASS, "example.com", NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_PERMERROR);
    ck_assert_int_eq(o->disposition, DMARC_P_REJECT);
    ck_assert_uint_eq(nqueries, 0);
    o = eval("From: a@[192.0.2.1]\r\n\r\n", SPF_PASS, "example.com", NULL, 0);
    ck_assert_int_eq(o->result, DMARC_RES_PERMERROR);
    ck_assert_int_eq(o->disposition, DMARC_P_NONE);
    char ar[256];
    dmarc_format_auth_results(o, ar, sizeof ar);
    ck_assert_str_eq(ar, "dmarc=permerror");
}
END_TEST

START_TEST(query_bound)
{
    /* 9 DKIM domains under one org: at most 8 identifier walks, and they stop at
       the first aligned one */
    struct dkim_sig_result d[10];
    for (int i = 0; i < 10; i++) {
        char dom[64];
        snprintf(dom, sizeof dom, "s%d.other.example", i);
        d[i] = sig(DKIM_RES_PASS, dom);
    }
    const struct dmarc_outcome *o = eval("From: a@example.com\r\n\r\n", SPF_NONE, NULL, d, 10);
    ck_assert_int_eq(o->result, DMARC_RES_FAIL);
    ck_assert_uint_eq(nqueries, 2);           /* names alone settle other.example */
    ck_assert(has_step(o, "beyond the first 8"));
}
END_TEST

START_TEST(cancel)
{
    struct dmarc_from f;
    const char *h = "From: a@example.com\r\n\r\n";
    dmarc_from_extract(h, strlen(h), &f);
    struct dmarc_input in = {&f, SPF_NONE, NULL, NULL, 0};
    struct fake_dns fd;
    struct auth_resolver r;
    fake_dns_resolver(&fd, zone, &r);
    calls = 0;
    struct dmarc_eval *e = dmarc_evaluate(&r, &in, done, NULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(calls, 0);
    dmarc_evaluate_cancel(e);
    fake_dns_run(&fd);
    ck_assert_int_eq(calls, 0);
}
END_TEST

static Suite *dmarc_suite(void)
{
    Suite *s = suite_create("dmarc");
    TCase *t = tcase_create("evaluate");
    tcase_add_test(t, spf_strict_identical_pass);
    tcase_add_test(t, spf_relaxed_child_pass);
    tcase_add_test(t, fail_reject_and_unaligned);
    tcase_add_test(t, dkim_relaxed_pass);
    tcase_add_test(t, strict_modes);
    tcase_add_test(t, sp_for_existing_np_for_missing);
    tcase_add_test(t, testing_lowers_one_step);
    tcase_add_test(t, psd_record);
    tcase_add_test(t, record_fallbacks);
    tcase_add_test(t, temperrors);
    tcase_add_test(t, from_outcomes);
    tcase_add_test(t, query_bound);
    tcase_add_test(t, cancel);
    suite_add_tcase(s, t);
    return s;
}

UNIT_MAIN(dmarc_suite)

/*
 * Unit tests of auth/dmarc_discover: the §4.10 tree walk over a table resolver
 * (targets and the 8-query bound, several records, psd=y/n, org-domain selection,
 * the §4.10.1 policy record, temperror, cancel, callback exactly once).
 */
#include "auth/dmarc_discover.h"
#include "tests/unit/fake_dns.h"
#include "tests/unit/unit.h"

static struct dmarc_walk got;
static int calls;

static void done(const struct dmarc_walk *w, void *arg)
{
    (void)arg;
    got = *w;
    calls++;
}

static const struct dmarc_walk *walk(const struct fake_row *rows, const char *domain, unsigned *queries)
{
    struct fake_dns f;
    struct auth_resolver r;
    fake_dns_resolver(&f, rows, &r);
    calls = 0;
    memset(&got, 0, sizeof got);
    dmarc_discover_start(&r, domain, done, NULL);
    fake_dns_run(&f);
    ck_assert_int_eq(calls, 1);
    if (queries)
        *queries = f.queries;
    return &got;
}

START_TEST(targets)
{
    char t[DMARC_WALK_MAX][DMARC_DOMAIN_MAX + 1];
    ck_assert_uint_eq(dmarc_walk_targets("a.mail.example.com", t, DMARC_WALK_MAX), 4);
    ck_assert_str_eq(t[0], "a.mail.example.com");
    ck_assert_str_eq(t[1], "mail.example.com");
    ck_assert_str_eq(t[3], "com");
    /* the RFC's example: 13 labels, 8 queries, g..com after the first */
    size_t n = dmarc_walk_targets("a.b.c.d.e.f.g.h.i.j.mail.example.com", t, DMARC_WALK_MAX);
    ck_assert_uint_eq(n, 8);
    ck_assert_str_eq(t[0], "a.b.c.d.e.f.g.h.i.j.mail.example.com");
    ck_assert_str_eq(t[1], "g.h.i.j.mail.example.com");
    ck_assert_str_eq(t[2], "h.i.j.mail.example.com");
    ck_assert_str_eq(t[7], "com");
    /* exactly 8 labels: the parent has 7 */
    n = dmarc_walk_targets("a.b.c.d.e.f.g.h", t, DMARC_WALK_MAX);
    ck_assert_uint_eq(n, 8);
    ck_assert_str_eq(t[1], "b.c.d.e.f.g.h");
    ck_assert_uint_eq(dmarc_walk_targets("com", t, DMARC_WALK_MAX), 1);
}
END_TEST

START_TEST(record_at_domain)
{
    static const struct fake_row rows[] = {
        {"_dmarc.example.com", DNS_T_TXT, DNS_OK, "v=spf1 -all|v=DMARC1; p=reject"},
        {NULL, 0, 0, NULL}};
    unsigned q;
    const struct dmarc_walk *w = walk(rows, "Example.COM", &q);
    ck_assert_int_eq(w->status, DMARC_WALK_OK);
    ck_assert_uint_eq(q, 2);                       /* _dmarc.example.com, _dmarc.com */
    ck_assert_int_eq(w->source, DMARC_SRC_DOMAIN);
    ck_assert_int_eq(w->policy_level, 0);
    ck_assert_str_eq(w->org_domain, "example.com");
    ck_assert_int_eq(w->levels[0].rec.p, DMARC_P_REJECT);
    ck_assert_int_eq(w->levels[1].kind, DMARC_LVL_NONE);
}
END_TEST

START_TEST(deep_walk_finds_org)
{
    /* B.4.2: the author domain has 14 labels; the record is at example.com */
    static const struct fake_row rows[] = {
        {"_dmarc.example.com", DNS_T_TXT, DNS_OK, "v=DMARC1; p=quarantine; sp=reject"},
        {"_dmarc.signing.example.com", DNS_T_TXT, DNS_OK, "v=DMARC1; p=none"},
        {NULL, 0, 0, NULL}};
    unsigned q;
    const struct dmarc_walk *w = walk(rows, "a.b.c.d.e.f.g.h.i.j.k.example.com", &q);
    ck_assert_uint_eq(q, 8);
    ck_assert_str_eq(w->levels[1].domain, "g.h.i.j.k.example.com");
    ck_assert_int_eq(w->source, DMARC_SRC_ORG);
    ck_assert_str_eq(w->org_domain, "example.com");
    ck_assert_str_eq(w->levels[w->policy_level].domain, "example.com");
    /* the identifier signing.example.com: two records, the org is the shorter one */
    w = walk(rows, "signing.example.com", &q);
    ck_assert_uint_eq(q, 3);
    ck_assert_str_eq(w->org_domain, "example.com");
    ck_assert_int_eq(w->source, DMARC_SRC_DOMAIN);
}
END_TEST

START_TEST(psd_y)
{
    /* B.4.3 */
    static const struct fake_row rows[] = {
        {"_dmarc.bank.example", DNS_T_TXT, DNS_OK, "v=DMARC1; p=reject; psd=y"},
        {"_dmarc.giant.bank.example", DNS_T_TXT, DNS_OK, "v=DMARC1; p=quarantine"},
        {NULL, 0, 0, NULL}};
    unsigned q;
    const struct dmarc_walk *w = walk(rows, "giant.bank.example", &q);
    ck_assert_uint_eq(q, 2);                       /* stops at psd=y, no _dmarc.example */
    ck_assert_str_eq(w->org_domain, "giant.bank.example");
    ck_assert_int_eq(w->source, DMARC_SRC_DOMAIN);
    w = walk(rows, "mail.giant.bank.example", &q);
    ck_assert_str_eq(w->org_domain, "giant.bank.example");
    ck_assert_int_eq(w->source, DMARC_SRC_ORG);
    ck_assert_int_eq(w->levels[w->policy_level].rec.p, DMARC_P_QUARANTINE);
    w = walk(rows, "mail.mega.bank.example", &q);
    ck_assert_str_eq(w->org_domain, "mega.bank.example");
    ck_assert_int_eq(w->source, DMARC_SRC_PSD);     /* the org has no record: the PSD's */
    ck_assert_str_eq(w->levels[w->policy_level].domain, "bank.example");
    /* psd=y at the start domain itself: it is its own org */
    w = walk(rows, "bank.example", &q);
    ck_assert_uint_eq(q, 1);
    ck_assert_str_eq(w->org_domain, "bank.example");
    ck_assert_int_eq(w->source, DMARC_SRC_DOMAIN);
}
END_TEST

START_TEST(psd_n_stops)
{
    static const struct fake_row rows[] = {
        {"_dmarc.mail.example.com", DNS_T_TXT, DNS_OK, "v=DMARC1; p=reject; psd=n"},
        {"_dmarc.example.com", DNS_T_TXT, DNS_OK, "v=DMARC1; p=none"},
        {NULL, 0, 0, NULL}};
    unsigned q;
    const struct dmarc_walk *w = walk(rows, "a.mail.example.com", &q);
    ck_assert_uint_eq(q, 2);
    ck_assert_str_eq(w->org_domain, "mail.example.com");
    ck_assert_int_eq(w->source, DMARC_SRC_ORG);
    ck_assert_int_eq(w->levels[w->policy_level].rec.p, DMARC_P_REJECT);
}
END_TEST

START_TEST(several_records_are_none)
{
    static const struct fake_row rows[] = {
        {"_dmarc.mail.example.com", DNS_T_TXT, DNS_OK, "v=DMARC1; p=reject|v=DMARC1; p=none"},
        {"_dmarc.example.com", DNS_T_TXT, DNS_OK, "v=DMARC1; p=quarantine"},
        {NULL, 0, 0, NULL}};
    const struct dmarc_walk *w = walk(rows, "mail.example.com", NULL);
    ck_assert_int_eq(w->levels[0].kind, DMARC_LVL_SEVERAL);
    ck_assert_int_eq(w->source, DMARC_SRC_ORG);
    ck_assert_str_eq(w->levels[w->policy_level].domain, "example.com");
}
END_TEST

START_TEST(no_record_anywhere)
{
    static const struct fake_row rows[] = {
        {"_dmarc.example.com", DNS_T_TXT, DNS_OK, "v=spf1 -all"},
        {NULL, 0, 0, NULL}};
    const struct dmarc_walk *w = walk(rows, "mail.example.com", NULL);
    ck_assert_int_eq(w->status, DMARC_WALK_OK);
    ck_assert_int_eq(w->source, DMARC_SRC_NONE);
    ck_assert_int_eq(w->policy_level, -1);
    ck_assert_str_eq(w->org_domain, "mail.example.com");   /* the start is its own org */
}
END_TEST

START_TEST(temperror)
{
    static const struct fake_row rows[] = {
        {"_dmarc.mail.example.com", DNS_T_TXT, DNS_OK, "v=DMARC1; p=reject"},
        {"_dmarc.example.com", DNS_T_TXT, DNS_SERVFAIL, NULL},
        {NULL, 0, 0, NULL}};
    unsigned q;
    const struct dmarc_walk *w = walk(rows, "mail.example.com", &q);
    ck_assert_int_eq(w->status, DMARC_WALK_TEMPERROR);
    ck_assert_uint_eq(q, 2);
    ck_assert_uint_eq(w->nlevels, 2);
    ck_assert_int_eq(w->levels[0].kind, DMARC_LVL_ONE);     /* what was found is kept */
    ck_assert_int_eq(w->levels[1].kind, DMARC_LVL_TEMPFAIL);
    ck_assert_ptr_nonnull(strstr(w->reason, "_dmarc.example.com"));
}
END_TEST

START_TEST(bad_name_and_cancel)
{
    static const struct fake_row rows[] = {{NULL, 0, 0, NULL}};
    struct fake_dns f;
    struct auth_resolver r;
    fake_dns_resolver(&f, rows, &r);
    calls = 0;
    ck_assert_ptr_null(dmarc_discover_start(&r, "exa mple.com", done, NULL));
    ck_assert_int_eq(calls, 1);
    ck_assert_int_eq(got.status, DMARC_WALK_BAD_NAME);
    ck_assert_uint_eq(f.queries, 0);
    calls = 0;
    struct dmarc_discover *d = dmarc_discover_start(&r, "example.com", done, NULL);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(calls, 0);                 /* never inside start */
    dmarc_discover_cancel(d);
    fake_dns_run(&f);
    ck_assert_int_eq(calls, 0);
}
END_TEST

START_TEST(within)
{
    ck_assert(dmarc_domain_is_within("a.example.com", "example.com"));
    ck_assert(dmarc_domain_is_within("example.com", "example.com"));
    ck_assert(!dmarc_domain_is_within("badexample.com", "example.com"));
    ck_assert(!dmarc_domain_is_within("com", "example.com"));
    ck_assert(!dmarc_domain_is_within("example.com", ""));
}
END_TEST

static Suite *dmarc_discover_suite(void)
{
    Suite *s = suite_create("dmarc_discover");
    TCase *t = tcase_create("walk");
    tcase_add_test(t, targets);
    tcase_add_test(t, record_at_domain);
    tcase_add_test(t, deep_walk_finds_org);
    tcase_add_test(t, psd_y);
    tcase_add_test(t, psd_n_stops);
    tcase_add_test(t, several_records_are_none);
    tcase_add_test(t, no_record_anywhere);
    tcase_add_test(t, temperror);
    tcase_add_test(t, bad_name_and_cancel);
    tcase_add_test(t, within);
    suite_add_tcase(s, t);
    return s;
}

UNIT_MAIN(dmarc_discover_suite)

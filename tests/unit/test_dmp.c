/*
 * Unit tests of auth/dmp over a fake resolver: names, record classification, the
 * flowchart's branches and the retry of temporary answers.
 */
#include "auth/dmp.h"
#include "lib/netaddr.h"
#include "auth/spf.h"
#include "tests/unit/fake_dns.h"
#include "tests/unit/unit.h"

static const struct fake_row ZONE[] = {
    {"_smtp-client.example.com", DNS_T_TXT, DNS_OK, "dmp="},
    {"1.2.0.192.in-addr._smtp-client.example.com", DNS_T_TXT, DNS_OK, " DMP = Allow "},
    {"7.2.0.192.in-addr._smtp-client.example.com", DNS_T_TXT, DNS_OK, "dmp=deny|unrelated text"},
    {"8.2.0.192.in-addr._smtp-client.example.com", DNS_T_TXT, DNS_OK, "dmp=allow|dmp=deny"},
    {"9.2.0.192.in-addr._smtp-client.example.com", DNS_T_TXT, DNS_OK, "dmp=altdomain:x.example."},
    {"7.2.0.192.in-addr._smtp-client.fwd.example.org", DNS_T_TXT, DNS_OK, "dmp=allow"},
    {"7.2.0.192.in-addr._smtp-client.down.example", DNS_T_TXT, DNS_SERVFAIL, NULL},
    {NULL, 0, 0, NULL},
};

struct box {
    int calls;
    struct dmp_outcome o;
};

static void done(const struct dmp_outcome *o, void *arg)
{
    struct box *b = arg;
    b->calls++;
    b->o = *o;
}

static struct dmp_outcome run(const char *ip, const char *sender, const char *helo, bool a, bool h, unsigned *q)
{
    struct fake_dns f;
    struct auth_resolver r;
    fake_dns_resolver(&f, ZONE, &r);
    struct dmp_query dq = {.sender = sender, .helo = helo, .accept_nonparticipant = a, .allow_helo = h};
    ck_assert_int_eq(netaddr_text_bytes(ip, &dq.family, dq.ip), 0);
    struct box b = {0};
    if (dmp_check_start(&r, &dq, done, &b))
        ck_assert_int_eq(b.calls, 0);
    fake_dns_run(&f);
    ck_assert_int_eq(b.calls, 1);
    if (q)
        *q = f.queries;
    return b.o;
}

START_TEST(names_and_records)
{
    uint8_t ip[16];
    int fam;
    char name[300], line[400];
    netaddr_text_bytes("2345:c1:ca11:1:1234:5678:9abc:def0", &fam, ip);
    ck_assert_int_eq(dmp_address_name("example.com.", fam, ip, name, sizeof name), 0);
    ck_assert_str_eq(name, "0.f.e.d.c.b.a.9.8.7.6.5.4.3.2.1.1.0.0.0.1.1.a.c.1.c.0.0.5.4.3.2.ip6._smtp-client.example.com");
    ck_assert_int_eq(dmp_record_text("sender.example.com", "192.0.2.1", line, sizeof line), 0);
    ck_assert_str_eq(line, "1.2.0.192.in-addr._smtp-client.sender.example.com. IN TXT \"dmp=allow\"");
    ck_assert_int_eq(dmp_record_text("example.com", "192.0.2", line, sizeof line), -1);
    char longd[260];
    memset(longd, 'a', 250);
    longd[250] = '\0';
    longd[60] = longd[120] = longd[180] = '.';
    ck_assert_int_eq(dmp_record_text(longd, "2001:db8::1", line, sizeof line), -1);
}
END_TEST

START_TEST(flowchart)
{
    unsigned q;
    struct dmp_outcome o = run("192.0.2.1", "u@example.com", "h.example.net", true, true, &q);
    ck_assert_int_eq(o.result, DMP_PASS);      /* case and blanks of " DMP = Allow " */
    ck_assert_int_eq(o.smtp_code, 250);
    ck_assert_uint_eq(q, 1);
    o = run("192.0.2.7", "u@example.com", "fwd.example.org", true, true, NULL);
    ck_assert_int_eq(o.result, DMP_PASS);
    ck_assert_int_eq(o.tier, DMP_TIER_HELO);
    o = run("192.0.2.7", "u@example.com", "fwd.example.org", true, false, NULL);
    ck_assert_int_eq(o.result, DMP_DENY);       /* no HELO alternative */
    o = run("192.0.2.8", "u@example.com", "nohost.example.net", true, true, NULL);
    ck_assert_int_eq(o.result, DMP_DENY);       /* conflicting: invalid; participant; HELO none */
    ck_assert(strstr(o.trail, "8.2.0.192.in-addr._smtp-client.example.com: no valid DMP record") != NULL);
    o = run("192.0.2.9", "u@example.com", "nohost.example.net", true, true, NULL);
    ck_assert_int_eq(o.result, DMP_DENY);       /* an unknown dmp= value is invalid */
    o = run("192.0.2.1", "u@other.example", "nohost.example.net", true, true, NULL);
    ck_assert_int_eq(o.result, DMP_NONE);       /* non-participant, A */
    o = run("192.0.2.1", "u@other.example", "nohost.example.net", false, true, NULL);
    ck_assert_int_eq(o.result, DMP_DENY);
    o = run("192.0.2.1", "", "nohost.example.net", true, true, NULL);
    ck_assert_int_eq(o.result, DMP_NONE);       /* null sender, non-participant host, A */
    o = run("192.0.2.1", "", "[192.0.2.1]", true, true, &q);
    ck_assert_int_eq(o.result, DMP_NONE);
    ck_assert_uint_eq(q, 0);
    o = run("192.0.2.1", "", "[192.0.2.1]", false, true, NULL);
    ck_assert_int_eq(o.result, DMP_DENY);
    o = run("192.0.2.1", "root@localhost", "x", false, false, &q);
    ck_assert_int_eq(o.result, DMP_NONE);
    ck_assert_int_eq(o.tier, DMP_TIER_LOCAL);
    o = run("192.0.2.1", "@relay.example:u@example.com", "h.example", true, true, NULL);
    ck_assert_int_eq(o.result, DMP_PASS);       /* source route: the last domain */
    o = run("::ffff:192.0.2.1", "u@example.com", "h.example", true, true, NULL);
    ck_assert_int_eq(o.result, DMP_PASS);
}
END_TEST

START_TEST(temporary_answers_are_retried)
{
    unsigned q;
    struct dmp_outcome o = run("192.0.2.7", "u@down.example", "h.example.net", true, true, &q);
    ck_assert_int_eq(o.result, DMP_TEMPERROR);
    ck_assert_int_eq(o.smtp_code, 451);
    ck_assert_uint_eq(q, 2);
    o = run("192.0.2.7", "u@example.com", "down.example", true, true, NULL);
    ck_assert_int_eq(o.result, DMP_TEMPERROR);   /* §5.10 */
    ck_assert_str_eq(o.name, "down.example");
}
END_TEST

Suite *dmp_suite(void)
{
    Suite *s = suite_create("dmp");
    TCase *t = tcase_create("dmp");
    tcase_add_test(t, names_and_records);
    tcase_add_test(t, flowchart);
    tcase_add_test(t, temporary_answers_are_retried);
    suite_add_tcase(s, t);
    return s;
}

UNIT_MAIN(dmp_suite)

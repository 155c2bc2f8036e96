/*
 * test_dns_client.c — lib/dns_client.c behaviour that needs no DNS server (the
 * rest is in tests/integration against a real nsd): the callback contract when
 * every try fails at once.
 */
#include "lib/dns.h"
#include "tests/unit/unit.h"

#include <event2/event.h>
#include <string.h>

struct seen {
    int calls;
    enum dns_status status;
    bool inside_lookup;
};

static bool in_lookup;

static void cb(const struct dns_answer *a, void *arg)
{
    struct seen *s = arg;
    s->calls++;
    s->status = a->status;
    s->inside_lookup = in_lookup;
}

START_TEST(unreachable_servers_answer_from_the_loop)
{
    /* a server of an address family no socket can be made for: every try fails
       inside dns_lookup itself, which must still return a live query */
    struct dns_config cfg;
    dns_config_init(&cfg);
    cfg.nservers = 2;
    cfg.servers[0].ss_family = 0xfff;
    cfg.servers[1].ss_family = 0xfff;
    cfg.server_len[0] = cfg.server_len[1] = sizeof cfg.servers[0];
    struct event_base *base = event_base_new();
    ck_assert_ptr_nonnull(base);
    struct dns_client *cl = dns_client_new(base, &cfg);
    ck_assert_ptr_nonnull(cl);
    struct seen s = { 0, DNS_OK, false };
    in_lookup = true;
    struct dns_query *q = dns_lookup(cl, "example.com", DNS_T_A, cb, &s);
    in_lookup = false;
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(s.calls, 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(s.calls, 1);
    ck_assert(!s.inside_lookup);
    ck_assert_int_eq(s.status, DNS_TIMEOUT);

    /* the same, cancelled before the loop runs: no callback, no leak */
    struct seen s2 = { 0, DNS_OK, false };
    q = dns_lookup(cl, "example.com", DNS_T_MX, cb, &s2);
    ck_assert_ptr_nonnull(q);
    dns_cancel(q);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(s2.calls, 0);

    /* a bad name is reported from the loop too */
    struct seen s3 = { 0, DNS_OK, false };
    q = dns_lookup(cl, "bad..name", DNS_T_A, cb, &s3);
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(s3.calls, 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_int_eq(s3.calls, 1);
    ck_assert_int_eq(s3.status, DNS_ERROR);
    dns_client_free(cl);
    event_base_free(base);
}
END_TEST

Suite *dns_client_suite(void)
{
    Suite *s = suite_create("dns_client");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, unreachable_servers_answer_from_the_loop);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(dns_client_suite)

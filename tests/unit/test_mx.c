/*
 * test_mx.c — delivery/mx.h's pure routing steps, fed DNS answers built by hand.
 *
 * Covers: preference order; random order among equal preferences (every order
 * seen, groups never mixed); duplicates; the host bound; implicit MX on NODATA and
 * on an answer without MX records; null MX alone (5.1.10) and mixed with real
 * ones; NXDOMAIN (5.1.2); SERVFAIL/timeout (4.4.3); ourselves among the MX hosts;
 * address ordering for ipv4/ipv6/any; deduplicated addresses; the address bound;
 * no address (5.1.2, 5.4.4, 4.4.3); address literals.
 */
#include "delivery/mx.h"
#include "lib/netaddr.h"
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static struct dns_record recs[64];

/* "10 a.test|20 b.test" */
static struct dns_answer mx_answer(enum dns_status st, const char *list)
{
    struct dns_answer a;
    memset(&a, 0, sizeof a);
    a.status = st;
    a.qtype = DNS_T_MX;
    a.records = recs;
    if (st != DNS_OK)
        return a;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save, *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        struct dns_record *r = &recs[a.count++];
        memset(r, 0, sizeof *r);
        r->type = DNS_T_MX;
        ck_assert_int_eq(sscanf(tok, "%hu %255s", &r->u.mx.preference, r->u.mx.exchange), 2);
    }
    return a;
}

/* Address answers: one record pool per answer. */
struct addr_ans {
    struct dns_answer a;
    struct dns_record r[32];
};

static void addr_answer(struct addr_ans *x, uint16_t type, enum dns_status st, const char *list)
{
    memset(x, 0, sizeof *x);
    x->a.status = st;
    x->a.qtype = type;
    x->a.records = x->r;
    if (st != DNS_OK || !list)
        return;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save, *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        struct dns_record *r = &x->r[x->a.count++];
        r->type = type;
        ck_assert_int_eq(inet_pton(type == DNS_T_A ? AF_INET : AF_INET6, tok, type == DNS_T_A ? (void *)&r->u.a
                                                                                              : (void *)&r->u.aaaa),
                         1);
    }
}

/* A deterministic generator the tests can steer. */
static uint32_t seq_rng(void *arg)
{
    uint32_t *s = arg;
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void route_text(const struct mx_route *r, char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->ntargets; i++) {
        char ip[64];
        netaddr_ntop((const struct sockaddr *)&r->targets[i].sa, ip, sizeof ip);
        o += (size_t)snprintf(out + o, outsz - o, "%s%s=%s:%u", i ? " " : "", r->targets[i].host, ip,
                              netaddr_port((const struct sockaddr *)&r->targets[i].sa));
    }
}

START_TEST(preference_order)
{
    struct dns_answer a = mx_answer(DNS_OK, "30 c.test|10 a.test|20 b.test|10 A.TEST");
    struct mx_hosts h;
    struct delivery_status st;
    uint32_t seed = 1;
    ck_assert_int_eq(mx_hosts_from_answer("d.test", &a, NULL, seq_rng, &seed, &h, &st), 0);
    ck_assert_uint_eq(h.n, 3);
    ck_assert(!h.implicit);
    ck_assert_str_eq(h.h[0].name, "a.test");
    ck_assert_str_eq(h.h[1].name, "b.test");
    ck_assert_str_eq(h.h[2].name, "c.test");
}
END_TEST

START_TEST(equal_preferences_random)
{
    struct dns_answer a = mx_answer(DNS_OK, "10 x.test|20 p.test|20 q.test|20 r.test|30 z.test");
    int seen[6] = {0};
    for (uint32_t seed = 0; seed < 300; seed++) {
        uint32_t s = seed;
        struct mx_hosts h;
        struct delivery_status st;
        ck_assert_int_eq(mx_hosts_from_answer("d.test", &a, NULL, seq_rng, &s, &h, &st), 0);
        ck_assert_uint_eq(h.n, 5);
        ck_assert_str_eq(h.h[0].name, "x.test");
        ck_assert_str_eq(h.h[4].name, "z.test");
        char o[4] = {h.h[1].name[0], h.h[2].name[0], h.h[3].name[0], 0};
        const char *perms[6] = {"pqr", "prq", "qpr", "qrp", "rpq", "rqp"};
        int k = -1;
        for (int i = 0; i < 6; i++)
            if (!strcmp(o, perms[i]))
                k = i;
        ck_assert_msg(k >= 0, "not a permutation: %s", o);
        seen[k]++;
    }
    for (int i = 0; i < 6; i++)
        ck_assert_msg(seen[i] > 10, "order %d seen %d times in 300", i, seen[i]);
}
END_TEST

START_TEST(host_bound)
{
    char list[1024] = "";
    for (int i = 0; i < 15; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d h%02d.test", i ? "|" : "", i, i);
    struct dns_answer a = mx_answer(DNS_OK, list);
    struct mx_hosts h;
    struct delivery_status st;
    ck_assert_int_eq(mx_hosts_from_answer("d.test", &a, NULL, NULL, NULL, &h, &st), 0);
    ck_assert_uint_eq(h.n, MX_MAX_HOSTS);
    ck_assert_str_eq(h.h[9].name, "h09.test");
}
END_TEST

START_TEST(implicit_and_errors)
{
    struct mx_hosts h;
    struct delivery_status st;
    struct dns_answer a = mx_answer(DNS_NODATA, NULL);
    ck_assert_int_eq(mx_hosts_from_answer("d.test", &a, NULL, NULL, NULL, &h, &st), 0);
    ck_assert(h.implicit);
    ck_assert_uint_eq(h.n, 1);
    ck_assert_str_eq(h.h[0].name, "d.test");

    a = mx_answer(DNS_NXDOMAIN, NULL);
    ck_assert_int_eq(mx_hosts_from_answer("d.test", &a, NULL, NULL, NULL, &h, &st), -1);
    ck_assert_int_eq(st.result, DELIVERY_FAIL);
    ck_assert_msg(!strncmp(st.text, "5.1.2 ", 6), "%s", st.text);

    enum dns_status temp[] = {DNS_SERVFAIL, DNS_TIMEOUT, DNS_ERROR};
    for (size_t i = 0; i < 3; i++) {
        a = mx_answer(temp[i], NULL);
        ck_assert_int_eq(mx_hosts_from_answer("d.test", &a, NULL, NULL, NULL, &h, &st), -1);
        ck_assert_int_eq(st.result, DELIVERY_DEFER);
        ck_assert_msg(!strncmp(st.text, "4.4.3 ", 6), "%s", st.text);
    }
}
END_TEST

START_TEST(null_mx)
{
    struct mx_hosts h;
    struct delivery_status st;
    struct dns_answer a = mx_answer(DNS_OK, "0 .");
    ck_assert_int_eq(mx_hosts_from_answer("d.test", &a, NULL, NULL, NULL, &h, &st), -1);
    ck_assert_int_eq(st.result, DELIVERY_FAIL);
    ck_assert_msg(!strncmp(st.text, "5.1.10 ", 7), "%s", st.text);
    /* mixed with a real MX (a broken zone): the null one is ignored */
    a = mx_answer(DNS_OK, "0 .|10 mx.test");
    ck_assert_int_eq(mx_hosts_from_answer("d.test", &a, NULL, NULL, NULL, &h, &st), 0);
    ck_assert_uint_eq(h.n, 1);
    ck_assert_str_eq(h.h[0].name, "mx.test");
}
END_TEST

START_TEST(self_among_hosts)
{
    struct mx_hosts h;
    struct delivery_status st;
    struct dns_answer a = mx_answer(DNS_OK, "10 a.test|20 me.test|20 b.test|30 c.test");
    ck_assert_int_eq(mx_hosts_from_answer("d.test", &a, "ME.test", NULL, NULL, &h, &st), 0);
    ck_assert_uint_eq(h.n, 1);
    ck_assert_str_eq(h.h[0].name, "a.test");
    a = mx_answer(DNS_OK, "10 me.test|20 b.test");
    ck_assert_int_eq(mx_hosts_from_answer("d.test", &a, "me.test", NULL, NULL, &h, &st), -1);
    ck_assert_int_eq(st.result, DELIVERY_FAIL);
    ck_assert_msg(!strncmp(st.text, "5.4.6 ", 6), "%s", st.text);
}
END_TEST

static struct mx_hosts two_hosts(void)
{
    struct mx_hosts h;
    memset(&h, 0, sizeof h);
    h.n = 2;
    strcpy(h.h[0].name, "mx1.test");
    strcpy(h.h[1].name, "mx2.test");
    return h;
}

START_TEST(family_order)
{
    struct mx_hosts h = two_hosts();
    static struct addr_ans a1, a2, q1, q2;
    addr_answer(&a1, DNS_T_A, DNS_OK, "192.0.2.1 192.0.2.2");
    addr_answer(&q1, DNS_T_AAAA, DNS_OK, "2001:db8::1 2001:db8::2");
    addr_answer(&a2, DNS_T_A, DNS_OK, "192.0.2.9");
    addr_answer(&q2, DNS_T_AAAA, DNS_NODATA, NULL);
    const struct dns_answer *a[2] = {&a1.a, &a2.a}, *aaaa[2] = {&q1.a, &q2.a};
    static struct mx_route r;
    char text[1024];

    struct mx_config cfg = {MX_FAMILY_IPV4, 2525, NULL, false};
    mx_route_build("d.test", &h, a, aaaa, &cfg, NULL, NULL, &r);
    ck_assert_int_eq(r.st.result, DELIVERY_OK);
    route_text(&r, text, sizeof text);
    ck_assert_str_eq(text, "mx1.test=192.0.2.1:2525 mx1.test=192.0.2.2:2525 mx1.test=2001:db8::1:2525 "
                           "mx1.test=2001:db8::2:2525 mx2.test=192.0.2.9:2525");

    cfg.family = MX_FAMILY_IPV6;
    mx_route_build("d.test", &h, a, aaaa, &cfg, NULL, NULL, &r);
    route_text(&r, text, sizeof text);
    ck_assert_str_eq(text, "mx1.test=2001:db8::1:2525 mx1.test=2001:db8::2:2525 mx1.test=192.0.2.1:2525 "
                           "mx1.test=192.0.2.2:2525 mx2.test=192.0.2.9:2525");

    /* any: families alternate, the first one chosen at random; both starts occur */
    cfg.family = MX_FAMILY_ANY;
    int v6first = 0, v4first = 0;
    for (uint32_t seed = 0; seed < 50; seed++) {
        uint32_t s = seed;
        mx_route_build("d.test", &h, a, aaaa, &cfg, seq_rng, &s, &r);
        ck_assert_uint_eq(r.ntargets, 5);
        route_text(&r, text, sizeof text);
        if (!strcmp(text, "mx1.test=2001:db8::1:2525 mx1.test=192.0.2.1:2525 mx1.test=2001:db8::2:2525 "
                          "mx1.test=192.0.2.2:2525 mx2.test=192.0.2.9:2525"))
            v6first++;
        else if (!strcmp(text, "mx1.test=192.0.2.1:2525 mx1.test=2001:db8::1:2525 mx1.test=192.0.2.2:2525 "
                               "mx1.test=2001:db8::2:2525 mx2.test=192.0.2.9:2525"))
            v4first++;
        else
            ck_abort_msg("unexpected order: %s", text);
    }
    ck_assert(v6first > 5 && v4first > 5);
}
END_TEST

START_TEST(dedup_and_bound)
{
    struct mx_hosts h = two_hosts();
    static struct addr_ans a1, a2;
    char many[1024] = "";
    for (int i = 1; i <= 25; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s192.0.2.%d", i > 1 ? " " : "", i);
    addr_answer(&a1, DNS_T_A, DNS_OK, "192.0.2.7 192.0.2.7 192.0.2.8");
    addr_answer(&a2, DNS_T_A, DNS_OK, "192.0.2.8 192.0.2.9");
    const struct dns_answer *a[2] = {&a1.a, &a2.a};
    struct mx_config cfg = {MX_FAMILY_IPV4, 25, NULL, false};
    static struct mx_route r;
    char text[2048];
    mx_route_build("d.test", &h, a, NULL, &cfg, NULL, NULL, &r);
    route_text(&r, text, sizeof text);
    ck_assert_str_eq(text, "mx1.test=192.0.2.7:25 mx1.test=192.0.2.8:25 mx2.test=192.0.2.9:25");

    addr_answer(&a1, DNS_T_A, DNS_OK, many);
    mx_route_build("d.test", &h, a, NULL, &cfg, NULL, NULL, &r);
    ck_assert_uint_eq(r.ntargets, MX_MAX_ADDRS);
    ck_assert_str_eq(r.targets[MX_MAX_ADDRS - 1].host, "mx1.test");
}
END_TEST

START_TEST(no_address)
{
    struct mx_hosts h = two_hosts();
    static struct addr_ans a1, a2, q1, q2;
    addr_answer(&a1, DNS_T_A, DNS_NXDOMAIN, NULL);
    addr_answer(&q1, DNS_T_AAAA, DNS_NXDOMAIN, NULL);
    addr_answer(&a2, DNS_T_A, DNS_NODATA, NULL);
    addr_answer(&q2, DNS_T_AAAA, DNS_NODATA, NULL);
    const struct dns_answer *a[2] = {&a1.a, &a2.a}, *aaaa[2] = {&q1.a, &q2.a};
    struct mx_config cfg = {MX_FAMILY_ANY, 25, NULL, false};
    static struct mx_route r;
    mx_route_build("d.test", &h, a, aaaa, &cfg, NULL, NULL, &r);
    ck_assert_int_eq(r.st.result, DELIVERY_FAIL);
    ck_assert_msg(!strncmp(r.st.text, "5.4.4 ", 6), "%s", r.st.text);

    addr_answer(&q2, DNS_T_AAAA, DNS_SERVFAIL, NULL);
    mx_route_build("d.test", &h, a, aaaa, &cfg, NULL, NULL, &r);
    ck_assert_int_eq(r.st.result, DELIVERY_DEFER);
    ck_assert_msg(!strncmp(r.st.text, "4.4.3 ", 6), "%s", r.st.text);

    /* a temporary failure for one host does not stop delivery to another */
    addr_answer(&a2, DNS_T_A, DNS_OK, "192.0.2.5");
    mx_route_build("d.test", &h, a, aaaa, &cfg, NULL, NULL, &r);
    ck_assert_int_eq(r.st.result, DELIVERY_OK);
    ck_assert_uint_eq(r.ntargets, 1);

    struct mx_hosts imp;
    memset(&imp, 0, sizeof imp);
    imp.n = 1;
    imp.implicit = true;
    strcpy(imp.h[0].name, "d.test");
    mx_route_build("d.test", &imp, a, aaaa, &cfg, NULL, NULL, &r);
    ck_assert_int_eq(r.st.result, DELIVERY_FAIL);
    ck_assert(r.implicit);
    ck_assert_msg(!strncmp(r.st.text, "5.1.2 ", 6), "%s", r.st.text);
}
END_TEST

START_TEST(literals)
{
    static struct mx_route r;
    char text[256];
    ck_assert_int_eq(mx_route_literal("example.test", 25, &r), 0);
    ck_assert_int_eq(mx_route_literal("[192.0.2.1]", 25, &r), 1);
    ck_assert_int_eq(r.st.result, DELIVERY_OK);
    route_text(&r, text, sizeof text);
    ck_assert_str_eq(text, "[192.0.2.1]=192.0.2.1:25");
    ck_assert_int_eq(mx_route_literal("[IPv6:2001:db8::1]", 587, &r), 1);
    route_text(&r, text, sizeof text);
    ck_assert_str_eq(text, "[IPv6:2001:db8::1]=2001:db8::1:587");
    const char *bad[] = {"[192.0.2.300]", "[2001:db8::1]", "[IPv6:192.0.2.1]", "[]", "[192.0.2.1", "["};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(mx_route_literal(bad[i], 25, &r), 1);
        ck_assert_msg(r.st.result == DELIVERY_FAIL && !strncmp(r.st.text, "5.1.2 ", 6), "%s: %s", bad[i],
                      r.st.text);
    }
}
END_TEST

START_TEST(family_names)
{
    enum mx_family f;
    ck_assert_int_eq(mx_family_parse("IPv6", &f), 0);
    ck_assert_int_eq(f, MX_FAMILY_IPV6);
    ck_assert_int_eq(mx_family_parse("ipv4", &f), 0);
    ck_assert_int_eq(f, MX_FAMILY_IPV4);
    ck_assert_int_eq(mx_family_parse("any", &f), 0);
    ck_assert_int_eq(f, MX_FAMILY_ANY);
    ck_assert_int_eq(mx_family_parse("both", &f), -1);
    ck_assert_str_eq(mx_family_name(MX_FAMILY_IPV6), "ipv6");
}
END_TEST

Suite *mx_suite(void)
{
    Suite *s = suite_create("mx");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, preference_order);
    tcase_add_test(tc, equal_preferences_random);
    tcase_add_test(tc, host_bound);
    tcase_add_test(tc, implicit_and_errors);
    tcase_add_test(tc, null_mx);
    tcase_add_test(tc, self_among_hosts);
    tcase_add_test(tc, family_order);
    tcase_add_test(tc, dedup_and_bound);
    tcase_add_test(tc, no_address);
    tcase_add_test(tc, literals);
    tcase_add_test(tc, family_names);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(mx_suite)

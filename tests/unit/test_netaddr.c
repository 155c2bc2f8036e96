/*
 * test_netaddr.c — lib/netaddr.h.
 *
 * Covers: host:port forms (IPv4, IPv4:port, [IPv6]:port, [IPv6] and bare IPv6
 * with a default port, a missing port when one is required, ports 0 and 65536,
 * junk); CIDR parsing and matching (/0, /32, /23, IPv6 prefixes, an
 * IPv4-mapped IPv6 peer against an IPv4 block); netaddr_ntop and netaddr_port.
 */
#include "lib/netaddr.h"
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static void hp_ok(const char *s, uint16_t defport, int family, const char *ip, uint16_t port)
{
    struct sockaddr_storage sa;
    socklen_t len = 0;
    char text[64];
    ck_assert_msg(netaddr_parse_hostport(s, defport, &sa, &len) == 0, "\"%s\" rejected", s);
    ck_assert_int_eq(sa.ss_family, family);
    ck_assert_uint_eq(len, family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    netaddr_ntop((struct sockaddr *)&sa, text, sizeof text);
    ck_assert_str_eq(text, ip);
    ck_assert_uint_eq(netaddr_port((struct sockaddr *)&sa), port);
}

static void hp_bad(const char *s, uint16_t defport)
{
    struct sockaddr_storage sa;
    socklen_t len;
    ck_assert_msg(netaddr_parse_hostport(s, defport, &sa, &len) < 0,
                  "\"%s\" (default port %u) accepted", s, defport);
}

START_TEST(hostport_forms)
{
    hp_ok("192.0.2.1:25", 0, AF_INET, "192.0.2.1", 25);
    hp_ok("192.0.2.1:65535", 0, AF_INET, "192.0.2.1", 65535);
    hp_ok("0.0.0.0:1", 0, AF_INET, "0.0.0.0", 1);
    hp_ok("192.0.2.1", 53, AF_INET, "192.0.2.1", 53);
    hp_ok("192.0.2.1:5353", 53, AF_INET, "192.0.2.1", 5353);
    hp_ok("[2001:db8::1]:587", 0, AF_INET6, "2001:db8::1", 587);
    hp_ok("[::]:25", 0, AF_INET6, "::", 25);
    hp_ok("[2001:db8::1]", 53, AF_INET6, "2001:db8::1", 53);
    hp_ok("2001:db8::1", 53, AF_INET6, "2001:db8::1", 53);
    hp_ok("::1", 25, AF_INET6, "::1", 25);
    hp_ok("[::ffff:192.0.2.1]:25", 0, AF_INET6, "192.0.2.1", 25);
}
END_TEST

START_TEST(hostport_errors)
{
    /* port required */
    hp_bad("192.0.2.1", 0);
    hp_bad("[2001:db8::1]", 0);
    hp_bad("2001:db8::1", 0);
    /* port out of range or malformed */
    hp_bad("192.0.2.1:0", 0);
    hp_bad("192.0.2.1:0", 25);
    hp_bad("192.0.2.1:65536", 0);
    hp_bad("192.0.2.1:99999999999999999999", 0);
    hp_bad("192.0.2.1:", 25);
    hp_bad("192.0.2.1:-1", 0);
    hp_bad("192.0.2.1:+25", 0);
    hp_bad("192.0.2.1:25 ", 0);
    hp_bad("192.0.2.1:2x", 0);
    hp_bad("[2001:db8::1]:0", 0);
    hp_bad("[2001:db8::1]:65536", 0);
    hp_bad("[2001:db8::1]:", 25);
    /* junk */
    hp_bad("", 25);
    hp_bad(":25", 0);
    hp_bad("localhost:25", 0);
    hp_bad("mail.example.com", 25);
    hp_bad("192.0.2:25", 0);
    hp_bad("192.0.2.256:25", 0);
    hp_bad(" 192.0.2.1:25", 0);
    hp_bad("[192.0.2.1]:25", 0);
    hp_bad("[2001:db8::1", 25);
    hp_bad("[2001:db8::1]x", 25);
    hp_bad("[2001:db8::1]25", 25);
    hp_bad("2001:db8::1]:25", 0);
    hp_bad("[2001:db8::g]:25", 0);
    hp_bad("[]:25", 0);
    hp_bad("1.2.3.4:25:26", 0);
    char longs[200];
    memset(longs, '1', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    hp_bad(longs, 25);
}
END_TEST

static struct sockaddr_storage sa_of(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
        s4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
        s6->sin6_family = AF_INET6;
    else
        ck_abort_msg("bad test address %s", ip);
    return ss;
}

static bool match(const char *block, const char *ip)
{
    struct cidr c;
    ck_assert_msg(netaddr_parse_cidr(block, &c) == 0, "block %s rejected", block);
    struct sockaddr_storage ss = sa_of(ip);
    return netaddr_cidr_match(&c, (struct sockaddr *)&ss);
}

START_TEST(cidr_parse)
{
    struct cidr c;
    ck_assert_int_eq(netaddr_parse_cidr("192.0.2.0/24", &c), 0);
    ck_assert_int_eq(c.family, AF_INET);
    ck_assert_uint_eq(c.prefix, 24);
    ck_assert_uint_eq(c.addr[0], 192);
    ck_assert_uint_eq(c.addr[2], 2);
    ck_assert_int_eq(netaddr_parse_cidr("192.0.2.7", &c), 0);
    ck_assert_uint_eq(c.prefix, 32);
    ck_assert_int_eq(netaddr_parse_cidr("2001:db8::/32", &c), 0);
    ck_assert_int_eq(c.family, AF_INET6);
    ck_assert_uint_eq(c.prefix, 32);
    ck_assert_int_eq(netaddr_parse_cidr("::1", &c), 0);
    ck_assert_uint_eq(c.prefix, 128);
    ck_assert_int_eq(netaddr_parse_cidr("0.0.0.0/0", &c), 0);
    ck_assert_uint_eq(c.prefix, 0);
    ck_assert_int_eq(netaddr_parse_cidr("::/0", &c), 0);
    ck_assert_int_eq(netaddr_parse_cidr("::/128", &c), 0);

    static const char *const bad[] = {
        "", "/24", "192.0.2.0/", "192.0.2.0/33", "192.0.2.0/-1", "192.0.2.0/+8",
        "192.0.2.0/8/8", "192.0.2.0/ 8", "192.0.2/24", "2001:db8::/129", "2001:db8::/x",
        "example.com/24", "192.0.2.0/99999999999999999999", "[::1]/128", " 192.0.2.0/24",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(netaddr_parse_cidr(bad[i], &c) < 0, "CIDR \"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(cidr_match_v4)
{
    ck_assert(match("0.0.0.0/0", "1.2.3.4"));
    ck_assert(match("0.0.0.0/0", "255.255.255.255"));
    ck_assert(match("10.1.2.3/0", "192.0.2.1"));       /* host bits ignored */
    ck_assert(match("192.0.2.7/32", "192.0.2.7"));
    ck_assert(!match("192.0.2.7/32", "192.0.2.6"));
    ck_assert(!match("192.0.2.7", "192.0.2.8"));
    /* /23: 198.51.100.0 - 198.51.101.255 */
    ck_assert(match("198.51.100.0/23", "198.51.100.0"));
    ck_assert(match("198.51.100.0/23", "198.51.101.255"));
    ck_assert(!match("198.51.100.0/23", "198.51.102.0"));
    ck_assert(!match("198.51.100.0/23", "198.51.99.255"));
    ck_assert(match("198.51.101.9/23", "198.51.100.1"));
    ck_assert(match("10.0.0.0/8", "10.255.255.255"));
    ck_assert(!match("10.0.0.0/8", "11.0.0.0"));
    ck_assert(match("192.0.2.128/25", "192.0.2.200"));
    ck_assert(!match("192.0.2.128/25", "192.0.2.127"));
    /* family mismatch */
    ck_assert(!match("0.0.0.0/0", "::1"));
    ck_assert(!match("0.0.0.0/0", "2001:db8::1"));
}
END_TEST

START_TEST(cidr_match_v6)
{
    ck_assert(match("::/0", "2001:db8::1"));
    ck_assert(match("::/0", "::"));
    ck_assert(!match("::/0", "192.0.2.1"));
    ck_assert(match("2001:db8::/32", "2001:db8:ffff:ffff::1"));
    ck_assert(!match("2001:db8::/32", "2001:db9::1"));
    ck_assert(match("2001:db8:8000::/33", "2001:db8:ffff::1"));
    ck_assert(!match("2001:db8:8000::/33", "2001:db8:7fff::1"));
    ck_assert(match("fe80::/10", "febf::1"));
    ck_assert(!match("fe80::/10", "fec0::1"));
    ck_assert(match("::1/128", "::1"));
    ck_assert(!match("::1/128", "::2"));
    ck_assert(match("2001:db8::1:0/127", "2001:db8::1:1"));
    ck_assert(!match("2001:db8::1:0/127", "2001:db8::1:2"));
}
END_TEST

START_TEST(cidr_match_mapped)
{
    ck_assert(match("192.0.2.0/24", "::ffff:192.0.2.1"));
    ck_assert(match("192.0.2.0/24", "::ffff:192.0.2.255"));
    ck_assert(!match("192.0.2.0/24", "::ffff:192.0.3.1"));
    ck_assert(match("127.0.0.0/8", "::ffff:127.0.0.1"));
    ck_assert(match("0.0.0.0/0", "::ffff:8.8.8.8"));
    ck_assert(match("198.51.100.0/23", "::ffff:198.51.101.3"));
    /* not mapped: IPv4-compatible or other IPv6 addresses do not match v4 blocks */
    ck_assert(!match("0.0.0.0/0", "::192.0.2.1"));
    ck_assert(!match("192.0.2.0/24", "::fffe:192.0.2.1"));
    ck_assert(!match("192.0.2.0/24", "64:ff9b::192.0.2.1"));
    /* a mapped IPv6 block matches the mapped peer as IPv6 */
    ck_assert(match("::ffff:0:0/96", "::ffff:192.0.2.1"));
    ck_assert(!match("::ffff:0:0/96", "192.0.2.1"));
}
END_TEST

START_TEST(ntop)
{
    char out[64];
    struct sockaddr_storage ss;
    static const char *const same[] = { "192.0.2.1", "0.0.0.0", "255.255.255.255",
                                        "2001:db8::1", "::", "::1", "fe80::1:2:3:4" };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        ss = sa_of(same[i]);
        netaddr_ntop((struct sockaddr *)&ss, out, sizeof out);
        ck_assert_str_eq(out, same[i]);
    }
    ss = sa_of("::ffff:192.0.2.33");
    netaddr_ntop((struct sockaddr *)&ss, out, sizeof out);
    ck_assert_str_eq(out, "192.0.2.33");
    ss = sa_of("2001:DB8:0:0:0:0:0:1");
    netaddr_ntop((struct sockaddr *)&ss, out, sizeof out);
    ck_assert_str_eq(out, "2001:db8::1");

    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNIX;
    netaddr_ntop((struct sockaddr *)&ss, out, sizeof out);
    ck_assert_str_eq(out, "local");
    ck_assert_uint_eq(netaddr_port((struct sockaddr *)&ss), 0);

    /* too small a buffer: "?" rather than garbage */
    char tiny[4];
    ss = sa_of("192.0.2.1");
    netaddr_ntop((struct sockaddr *)&ss, tiny, sizeof tiny);
    ck_assert_str_eq(tiny, "?");
}
END_TEST

START_TEST(nexthop_forms)
{
    char host[256];
    uint16_t port;
    bool lit;
    ck_assert_int_eq(netaddr_parse_nexthop("smtp.Example.NET", 25, host, sizeof host, &port, &lit), 0);
    ck_assert_str_eq(host, "smtp.example.net");
    ck_assert_uint_eq(port, 25);
    ck_assert(!lit);
    ck_assert_int_eq(netaddr_parse_nexthop("smtp.example.net:2525", 25, host, sizeof host, &port, &lit), 0);
    ck_assert_uint_eq(port, 2525);
    ck_assert(!lit);
    ck_assert_int_eq(netaddr_parse_nexthop("[smtp.example.net]:587", 25, host, sizeof host, &port, &lit), 0);
    ck_assert_str_eq(host, "smtp.example.net");
    ck_assert_uint_eq(port, 587);
    ck_assert(lit);
    ck_assert_int_eq(netaddr_parse_nexthop("[192.0.2.7]", 25, host, sizeof host, &port, &lit), 0);
    ck_assert_str_eq(host, "192.0.2.7");
    ck_assert_uint_eq(port, 25);
    ck_assert(lit);
    ck_assert_int_eq(netaddr_parse_nexthop("[IPv6:2001:DB8::1]:465", 25, host, sizeof host, &port, &lit), 0);
    ck_assert_str_eq(host, "2001:db8::1");
    ck_assert_uint_eq(port, 465);
    ck_assert(lit);
}
END_TEST

START_TEST(nexthop_errors)
{
    char host[16];
    uint16_t port;
    bool lit;
    const char *bad[] = {"", "[]", "[x", "host:", "host:0", "host:65536", "host:25x", "2001:db8::1", "[a]b",
                         "ho st", "host/x", "[a]:", "a.very.long.name.example:25"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(netaddr_parse_nexthop(bad[i], 25, host, sizeof host, &port, &lit) < 0, "%s", bad[i]);
}
END_TEST

START_TEST(reverse_names)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int family;
    uint8_t ip[16];
    char out[80];
    ck_assert_int_eq(netaddr_parse_hostport("192.0.2.10:25", 0, &ss, &len), 0);
    ck_assert_int_eq(netaddr_bytes((struct sockaddr *)&ss, &family, ip), 0);
    ck_assert_int_eq(family, AF_INET);
    ck_assert_int_eq(netaddr_reverse_name(family, ip, out, sizeof out), 23);
    ck_assert_str_eq(out, "10.2.0.192.in-addr.arpa");
    ck_assert_int_eq(netaddr_reverse_name(family, ip, out, 23), -1);      /* no room for the NUL */
    /* an IPv4-mapped peer is named as IPv4 */
    ck_assert_int_eq(netaddr_parse_hostport("[::ffff:192.0.2.10]:25", 0, &ss, &len), 0);
    ck_assert_int_eq(netaddr_bytes((struct sockaddr *)&ss, &family, ip), 0);
    ck_assert_int_eq(family, AF_INET);
    ck_assert_int_eq(netaddr_parse_hostport("[2001:db8::567:89ab]:25", 0, &ss, &len), 0);
    ck_assert_int_eq(netaddr_bytes((struct sockaddr *)&ss, &family, ip), 0);
    ck_assert_int_eq(family, AF_INET6);
    ck_assert_int_eq(netaddr_reverse_name(family, ip, out, sizeof out), 72);
    ck_assert_str_eq(out, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    ck_assert_int_eq(netaddr_reverse_name(family, ip, out, 72), -1);
    struct sockaddr unix_sa = { .sa_family = AF_UNIX };
    ck_assert_int_eq(netaddr_bytes(&unix_sa, &family, ip), -1);
}
END_TEST

Suite *netaddr_suite(void)
{
    Suite *s = suite_create("netaddr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hostport_forms);
    tcase_add_test(tc, hostport_errors);
    tcase_add_test(tc, cidr_parse);
    tcase_add_test(tc, cidr_match_v4);
    tcase_add_test(tc, cidr_match_v6);
    tcase_add_test(tc, cidr_match_mapped);
    tcase_add_test(tc, ntop);
    tcase_add_test(tc, nexthop_forms);
    tcase_add_test(tc, nexthop_errors);
    tcase_add_test(tc, reverse_names);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(netaddr_suite)

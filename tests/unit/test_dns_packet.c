/*
 * test_dns_packet.c — the pure packet half of lib/dns.h, fed hand-built bytes.
 *
 * The packets are assembled here with a small byte builder (not ldns), so these
 * tests do not share the parser's idea of the wire format. Covers: every record
 * type Ferry asks for; CNAME chains, loops and over-long chains; NXDOMAIN/NODATA
 * and the RFC 2308 §5 negative TTL; SERVFAIL/REFUSED; answers that do not match
 * the question; every truncated prefix of a packet; compression pointers (loops,
 * forward); foreign records mixed in; the AD and TC bits; name case; (the query
 * builder, answer copy and type names are in test_dns_query.c).
 */
#include "lib/dns.h"
#include "lib/dns_internal.h"
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* ---- byte builder ------------------------------------------------------------ */

struct pb {
    uint8_t b[8192];
    size_t n;
};

static void u8(struct pb *p, unsigned v)
{
    ck_assert_uint_lt(p->n, sizeof p->b);
    p->b[p->n++] = (uint8_t)v;
}

static void u16(struct pb *p, unsigned v)
{
    u8(p, v >> 8);
    u8(p, v & 0xff);
}

static void u32(struct pb *p, uint32_t v)
{
    u16(p, v >> 16);
    u16(p, v & 0xffff);
}

static void bytes(struct pb *p, const void *d, size_t n)
{
    ck_assert_uint_le(p->n + n, sizeof p->b);
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

/* "a.b.c" as labels, ending with the root label (no compression). */
static void name(struct pb *p, const char *s)
{
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        u8(p, (unsigned)n);
        bytes(p, s, n);
        s += n;
        if (*s == '.')
            s++;
    }
    u8(p, 0);
}

static void ptr(struct pb *p, unsigned off)
{
    u16(p, 0xc000 | off);
}

#define F_QR 0x8000
#define F_AA 0x0400
#define F_TC 0x0200
#define F_RD 0x0100
#define F_RA 0x0080
#define F_AD 0x0020

static void header(struct pb *p, unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar)
{
    p->n = 0;
    u16(p, id);
    u16(p, flags);
    u16(p, qd);
    u16(p, an);
    u16(p, ns);
    u16(p, ar);
}

static void question(struct pb *p, const char *qname, unsigned type)
{
    name(p, qname);
    u16(p, type);
    u16(p, 1);
}

/* Owner already written; type, class IN, ttl, then rdata; returns the rdlength slot. */
static size_t rr_head(struct pb *p, unsigned type, uint32_t ttl)
{
    u16(p, type);
    u16(p, 1);
    u32(p, ttl);
    size_t at = p->n;
    u16(p, 0);
    return at;
}

static void rr_end(struct pb *p, size_t at)
{
    size_t len = p->n - at - 2;
    p->b[at] = (uint8_t)(len >> 8);
    p->b[at + 1] = (uint8_t)len;
}

static void rr_a(struct pb *p, uint32_t ttl, const char *ip)
{
    size_t at = rr_head(p, DNS_T_A, ttl);
    struct in_addr a;
    ck_assert_int_eq(inet_pton(AF_INET, ip, &a), 1);
    bytes(p, &a, 4);
    rr_end(p, at);
}

static void rr_cname(struct pb *p, uint32_t ttl, const char *target)
{
    size_t at = rr_head(p, 5, ttl);
    name(p, target);
    rr_end(p, at);
}

static void rr_soa(struct pb *p, uint32_t ttl, uint32_t minimum)
{
    size_t at = rr_head(p, 6, ttl);
    name(p, "ns.example.com");
    name(p, "hostmaster.example.com");
    u32(p, 2024010101);
    u32(p, 3600);
    u32(p, 600);
    u32(p, 86400);
    u32(p, minimum);
    rr_end(p, at);
}

#define QOFF 12   /* offset of the question name: target of compression pointers */

static struct dns_answer ans;
static uint32_t ttl;

static int parse(const struct pb *p, const char *qname, uint16_t qtype, uint16_t id)
{
    return dns_parse_response(p->b, p->n, qname, qtype, id, &ans, &ttl);
}

static void teardown(void)
{
    dns_answer_free(&ans);
}

/* ---- record types -------------------------------------------------------------- */

START_TEST(a_records)
{
    struct pb p;
    header(&p, 0x1234, F_QR | F_RD | F_RA, 1, 2, 0, 0);
    question(&p, "example.com", DNS_T_A);
    ptr(&p, QOFF);
    rr_a(&p, 300, "192.0.2.1");
    ptr(&p, QOFF);
    rr_a(&p, 200, "192.0.2.2");
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 0x1234), 0);
    ck_assert_int_eq(ans.status, DNS_OK);
    ck_assert_int_eq(ans.rcode, 0);
    ck_assert(!ans.authenticated);
    ck_assert(!ans.from_cache);
    ck_assert_str_eq(ans.qname, "example.com.");
    ck_assert_uint_eq(ans.qtype, DNS_T_A);
    ck_assert_uint_eq(ans.count, 2);
    char text[64];
    inet_ntop(AF_INET, &ans.records[0].u.a, text, sizeof text);
    ck_assert_str_eq(text, "192.0.2.1");
    inet_ntop(AF_INET, &ans.records[1].u.a, text, sizeof text);
    ck_assert_str_eq(text, "192.0.2.2");
    ck_assert_uint_eq(ans.records[0].ttl, 300);
    ck_assert_uint_eq(ans.records[1].type, DNS_T_A);
    ck_assert_uint_eq(ttl, 200);
    dns_answer_free(&ans);
    /* the question name with a final dot is the same question */
    ck_assert_int_eq(parse(&p, "example.com.", DNS_T_A, 0x1234), 0);
    ck_assert_uint_eq(ans.count, 2);
    dns_answer_free(&ans);
    /* an A record with 5 octets of rdata: ldns reads the 4 it expects and skips the
       rest of RDLENGTH (the packet stays aligned); either refused or those 4 */
    header(&p, 1, F_QR, 1, 1, 0, 0);
    question(&p, "example.com", DNS_T_A);
    ptr(&p, QOFF);
    size_t at = rr_head(&p, DNS_T_A, 60);
    bytes(&p, "\1\2\3\4\5", 5);
    rr_end(&p, at);
    int rc = parse(&p, "example.com", DNS_T_A, 1);
    ck_assert(rc == -1 || ans.count == 0 || (ans.count == 1 && memcmp(&ans.records[0].u.a, "\1\2\3\4", 4) == 0));
}
END_TEST

START_TEST(aaaa_mx_ptr)
{
    struct pb p;
    header(&p, 7, F_QR, 1, 1, 0, 0);
    question(&p, "example.com", DNS_T_AAAA);
    ptr(&p, QOFF);
    size_t at = rr_head(&p, DNS_T_AAAA, 3600);
    struct in6_addr a6;
    inet_pton(AF_INET6, "2001:db8::25", &a6);
    bytes(&p, &a6, 16);
    rr_end(&p, at);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_AAAA, 7), 0);
    ck_assert_uint_eq(ans.count, 1);
    ck_assert(memcmp(&ans.records[0].u.aaaa, &a6, 16) == 0);
    ck_assert_uint_eq(ttl, 3600);
    dns_answer_free(&ans);

    /* MX: exchange compressed against the question name; a null MX "." */
    header(&p, 8, F_QR, 1, 3, 0, 0);
    question(&p, "example.com", DNS_T_MX);
    ptr(&p, QOFF);
    at = rr_head(&p, DNS_T_MX, 600);
    u16(&p, 10);
    u8(&p, 2);
    bytes(&p, "mx", 2);
    ptr(&p, QOFF);
    rr_end(&p, at);
    ptr(&p, QOFF);
    at = rr_head(&p, DNS_T_MX, 500);
    u16(&p, 20);
    name(&p, "backup.example.net");
    rr_end(&p, at);
    ptr(&p, QOFF);
    at = rr_head(&p, DNS_T_MX, 500);
    u16(&p, 0);
    u8(&p, 0);
    rr_end(&p, at);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_MX, 8), 0);
    ck_assert_uint_eq(ans.count, 3);
    ck_assert_uint_eq(ans.records[0].u.mx.preference, 10);
    ck_assert_str_eq(ans.records[0].u.mx.exchange, "mx.example.com");
    ck_assert_uint_eq(ans.records[1].u.mx.preference, 20);
    ck_assert_str_eq(ans.records[1].u.mx.exchange, "backup.example.net");
    ck_assert_uint_eq(ans.records[2].u.mx.preference, 0);
    ck_assert_str_eq(ans.records[2].u.mx.exchange, ".");
    ck_assert_uint_eq(ttl, 500);
    dns_answer_free(&ans);

    header(&p, 9, F_QR, 1, 1, 0, 0);
    question(&p, "1.2.0.192.in-addr.arpa", DNS_T_PTR);
    ptr(&p, QOFF);
    at = rr_head(&p, DNS_T_PTR, 86400);
    name(&p, "host.example.com");
    rr_end(&p, at);
    ck_assert_int_eq(parse(&p, "1.2.0.192.in-addr.arpa", DNS_T_PTR, 9), 0);
    ck_assert_uint_eq(ans.count, 1);
    ck_assert_str_eq(ans.records[0].u.ptr, "host.example.com");
}
END_TEST

START_TEST(txt_records)
{
    struct pb p;
    header(&p, 10, F_QR, 1, 4, 0, 0);
    question(&p, "example.com", DNS_T_TXT);
    /* several character-strings, one of them empty: concatenated */
    ptr(&p, QOFF);
    size_t at = rr_head(&p, DNS_T_TXT, 300);
    u8(&p, 6);
    bytes(&p, "v=spf1", 6);
    u8(&p, 0);
    u8(&p, 5);
    bytes(&p, " -all", 5);
    rr_end(&p, at);
    /* one empty string */
    ptr(&p, QOFF);
    at = rr_head(&p, DNS_T_TXT, 300);
    u8(&p, 0);
    rr_end(&p, at);
    /* a NUL inside */
    ptr(&p, QOFF);
    at = rr_head(&p, DNS_T_TXT, 300);
    u8(&p, 3);
    bytes(&p, "a\0b", 3);
    rr_end(&p, at);
    /* a 255-octet string and another after it */
    ptr(&p, QOFF);
    at = rr_head(&p, DNS_T_TXT, 300);
    u8(&p, 255);
    for (int i = 0; i < 255; i++)
        u8(&p, 'x');
    u8(&p, 1);
    u8(&p, 'y');
    rr_end(&p, at);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_TXT, 10), 0);
    ck_assert_uint_eq(ans.count, 4);
    ck_assert_uint_eq(ans.records[0].len, 11);
    ck_assert_str_eq((char *)ans.records[0].data, "v=spf1 -all");
    ck_assert_uint_eq(ans.records[1].len, 0);
    ck_assert_ptr_nonnull(ans.records[1].data);
    ck_assert_str_eq((char *)ans.records[1].data, "");
    ck_assert_uint_eq(ans.records[2].len, 3);
    ck_assert(memcmp(ans.records[2].data, "a\0b", 4) == 0);
    ck_assert_uint_eq(ans.records[3].len, 256);
    ck_assert_int_eq(ans.records[3].data[255], 'y');
    ck_assert_int_eq(ans.records[3].data[256], '\0');

    /* a copy is deep and survives the original */
    struct dns_answer copy;
    ck_assert_int_eq(dns_answer_copy(&copy, &ans), 0);
    dns_answer_free(&ans);
    ck_assert_uint_eq(copy.count, 4);
    ck_assert(memcmp(copy.records[2].data, "a\0b", 4) == 0);
    ck_assert_str_eq(copy.qname, "example.com.");
    dns_answer_free(&copy);
    ck_assert_uint_eq(copy.count, 0);
    ck_assert_ptr_null(copy.records);
}
END_TEST

START_TEST(tlsa_records)
{
    struct pb p;
    header(&p, 11, F_QR | F_AD, 1, 1, 0, 0);
    question(&p, "_25._tcp.mx.example.com", DNS_T_TLSA);
    ptr(&p, QOFF);
    size_t at = rr_head(&p, DNS_T_TLSA, 3600);
    u8(&p, 3);
    u8(&p, 1);
    u8(&p, 1);
    for (int i = 0; i < 32; i++)
        u8(&p, i);
    rr_end(&p, at);
    ck_assert_int_eq(parse(&p, "_25._tcp.mx.example.com", DNS_T_TLSA, 11), 0);
    ck_assert(ans.authenticated);
    ck_assert_uint_eq(ans.count, 1);
    ck_assert_uint_eq(ans.records[0].u.tlsa.usage, 3);
    ck_assert_uint_eq(ans.records[0].u.tlsa.selector, 1);
    ck_assert_uint_eq(ans.records[0].u.tlsa.matching, 1);
    ck_assert_uint_eq(ans.records[0].len, 32);
    ck_assert_int_eq(ans.records[0].data[31], 31);
}
END_TEST

/* ---- CNAMEs ------------------------------------------------------------------- */

START_TEST(cname_chains)
{
    struct pb p;
    header(&p, 20, F_QR, 1, 4, 0, 0);
    question(&p, "www.example.com", DNS_T_A);
    /* out of order on purpose, plus an A record for the alias owner that must be ignored
       (only the end of the chain counts) */
    name(&p, "b.example.org");
    rr_a(&p, 900, "192.0.2.9");
    ptr(&p, QOFF);
    rr_cname(&p, 120, "a.example.net");
    name(&p, "A.EXAMPLE.NET");
    rr_cname(&p, 800, "b.example.org");
    name(&p, "unrelated.example");
    rr_a(&p, 1, "192.0.2.66");
    ck_assert_int_eq(parse(&p, "www.example.com", DNS_T_A, 20), 0);
    ck_assert_int_eq(ans.status, DNS_OK);
    ck_assert_uint_eq(ans.count, 1);
    char text[32];
    inet_ntop(AF_INET, &ans.records[0].u.a, text, sizeof text);
    ck_assert_str_eq(text, "192.0.2.9");
    ck_assert_uint_eq(ttl, 120);     /* the smallest TTL along the chain */
    dns_answer_free(&ans);

    /* a chain that ends without a record: NODATA */
    header(&p, 21, F_QR, 1, 1, 1, 0);
    question(&p, "www.example.com", DNS_T_A);
    ptr(&p, QOFF);
    rr_cname(&p, 120, "nowhere.example.net");
    name(&p, "example.net");
    rr_soa(&p, 600, 300);
    ck_assert_int_eq(parse(&p, "www.example.com", DNS_T_A, 21), 0);
    ck_assert_int_eq(ans.status, DNS_NODATA);
    ck_assert_uint_eq(ans.count, 0);
    ck_assert_uint_eq(ttl, 300);
}
END_TEST

START_TEST(cname_loops_and_long_chains)
{
    struct pb p;
    /* a <-> b loop */
    header(&p, 22, F_QR, 1, 2, 0, 0);
    question(&p, "a.example", DNS_T_A);
    ptr(&p, QOFF);
    rr_cname(&p, 60, "b.example");
    name(&p, "b.example");
    rr_cname(&p, 60, "a.example");
    ck_assert_int_eq(parse(&p, "a.example", DNS_T_A, 22), 0);
    ck_assert_int_eq(ans.status, DNS_NODATA);
    ck_assert_uint_eq(ans.count, 0);
    dns_answer_free(&ans);
    /* a self loop */
    header(&p, 23, F_QR, 1, 1, 0, 0);
    question(&p, "a.example", DNS_T_A);
    ptr(&p, QOFF);
    rr_cname(&p, 60, "a.example");
    ck_assert_int_eq(parse(&p, "a.example", DNS_T_A, 23), 0);
    ck_assert_int_eq(ans.status, DNS_NODATA);
    dns_answer_free(&ans);

    /* chains of n CNAMEs: 8 are followed, 9 are not */
    for (int n = 1; n <= 12; n++) {
        header(&p, 24, F_QR, 1, (unsigned)n + 1, 0, 0);
        question(&p, "c0.example", DNS_T_A);
        char owner[32], target[32];
        for (int i = 0; i < n; i++) {
            snprintf(owner, sizeof owner, "c%d.example", i);
            snprintf(target, sizeof target, "c%d.example", i + 1);
            name(&p, owner);
            rr_cname(&p, 60, target);
        }
        name(&p, target);
        rr_a(&p, 60, "192.0.2.1");
        ck_assert_int_eq(parse(&p, "c0.example", DNS_T_A, 24), 0);
        ck_assert_msg(ans.status == (n <= 8 ? DNS_OK : DNS_NODATA), "chain of %d: %s", n,
                      dns_status_name(ans.status));
        ck_assert_uint_eq(ans.count, n <= 8 ? 1 : 0);
        dns_answer_free(&ans);
    }
}
END_TEST

/* ---- negative answers and rcodes ---------------------------------------------- */

START_TEST(negative_answers)
{
    struct pb p;
    /* NXDOMAIN, SOA TTL above MINIMUM: MINIMUM wins */
    header(&p, 30, F_QR | 3, 1, 0, 1, 0);
    question(&p, "nope.example.com", DNS_T_MX);
    name(&p, "example.com");
    rr_soa(&p, 3600, 300);
    ck_assert_int_eq(parse(&p, "nope.example.com", DNS_T_MX, 30), 0);
    ck_assert_int_eq(ans.status, DNS_NXDOMAIN);
    ck_assert_int_eq(ans.rcode, 3);
    ck_assert_uint_eq(ans.count, 0);
    ck_assert_ptr_null(ans.records);
    ck_assert(ans.error[0] != '\0');
    ck_assert_uint_eq(ttl, 300);
    dns_answer_free(&ans);
    /* SOA TTL below MINIMUM: the TTL wins */
    header(&p, 31, F_QR | 3, 1, 0, 1, 0);
    question(&p, "nope.example.com", DNS_T_MX);
    name(&p, "example.com");
    rr_soa(&p, 60, 300);
    ck_assert_int_eq(parse(&p, "nope.example.com", DNS_T_MX, 31), 0);
    ck_assert_uint_eq(ttl, 60);
    dns_answer_free(&ans);
    /* NXDOMAIN without SOA: nothing to cache for */
    header(&p, 32, F_QR | 3, 1, 0, 0, 0);
    question(&p, "nope.example.com", DNS_T_MX);
    ck_assert_int_eq(parse(&p, "nope.example.com", DNS_T_MX, 32), 0);
    ck_assert_int_eq(ans.status, DNS_NXDOMAIN);
    ck_assert_uint_eq(ttl, 0);
    dns_answer_free(&ans);
    /* NODATA: NOERROR, no answer, SOA in authority */
    header(&p, 33, F_QR, 1, 0, 1, 0);
    question(&p, "example.com", DNS_T_AAAA);
    ptr(&p, QOFF);
    rr_soa(&p, 900, 1800);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_AAAA, 33), 0);
    ck_assert_int_eq(ans.status, DNS_NODATA);
    ck_assert_int_eq(ans.rcode, 0);
    ck_assert_uint_eq(ttl, 900);
    ck_assert(ans.error[0] != '\0');
    dns_answer_free(&ans);
    /* NODATA because only other types are there */
    header(&p, 34, F_QR, 1, 1, 0, 0);
    question(&p, "example.com", DNS_T_AAAA);
    ptr(&p, QOFF);
    rr_a(&p, 60, "192.0.2.1");
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_AAAA, 34), 0);
    ck_assert_int_eq(ans.status, DNS_NODATA);
    ck_assert_uint_eq(ttl, 0);
}
END_TEST

START_TEST(rcodes)
{
    struct pb p;
    header(&p, 40, F_QR | 2, 1, 0, 0, 0);
    question(&p, "example.com", DNS_T_A);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 40), 0);
    ck_assert_int_eq(ans.status, DNS_SERVFAIL);
    ck_assert_int_eq(ans.rcode, 2);
    ck_assert_uint_eq(ttl, 0);
    ck_assert(ans.error[0]);
    dns_answer_free(&ans);
    header(&p, 41, F_QR | 5, 1, 0, 0, 0);
    question(&p, "example.com", DNS_T_A);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 41), 0);
    ck_assert_int_eq(ans.status, DNS_ERROR);
    ck_assert_int_eq(ans.rcode, 5);
    dns_answer_free(&ans);
    header(&p, 42, F_QR | 4, 1, 0, 0, 0);
    question(&p, "example.com", DNS_T_A);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 42), 0);
    ck_assert_int_eq(ans.status, DNS_ERROR);
    ck_assert_int_eq(ans.rcode, 4);
    /* SERVFAIL with records present still is SERVFAIL */
    dns_answer_free(&ans);
    header(&p, 43, F_QR | 2, 1, 1, 0, 0);
    question(&p, "example.com", DNS_T_A);
    ptr(&p, QOFF);
    rr_a(&p, 60, "192.0.2.1");
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 43), 0);
    ck_assert_int_eq(ans.status, DNS_SERVFAIL);
    ck_assert_uint_eq(ans.count, 0);
}
END_TEST

/* ---- answers that are not for our question ------------------------------------ */

static void good_a(struct pb *p, unsigned id, unsigned flags, const char *qname, unsigned qtype, unsigned qclass)
{
    header(p, id, flags, 1, 1, 0, 0);
    name(p, qname);
    u16(p, qtype);
    u16(p, qclass);
    ptr(p, QOFF);
    rr_a(p, 60, "192.0.2.1");
}

START_TEST(mismatches)
{
    struct pb p;
    good_a(&p, 50, F_QR, "example.com", DNS_T_A, 1);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 50), 0);
    dns_answer_free(&ans);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 51), -1);          /* wrong ID */
    ck_assert_int_eq(ans.count, 0);
    ck_assert_int_eq(parse(&p, "example.org", DNS_T_A, 50), -1);          /* wrong name */
    ck_assert_int_eq(parse(&p, "www.example.com", DNS_T_A, 50), -1);
    ck_assert_int_eq(parse(&p, "com", DNS_T_A, 50), -1);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_AAAA, 50), -1);       /* wrong type */
    ck_assert_int_eq(parse(&p, "example..com", DNS_T_A, 50), -1);         /* bad name */
    ck_assert_int_eq(parse(&p, "", DNS_T_A, 50), -1);
    good_a(&p, 50, 0, "example.com", DNS_T_A, 1);                           /* QR clear */
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 50), -1);
    good_a(&p, 50, F_QR, "example.com", DNS_T_A, 3);                        /* class CH */
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 50), -1);
    /* no question, or two */
    header(&p, 50, F_QR, 0, 0, 0, 0);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 50), -1);
    header(&p, 50, F_QR, 2, 0, 0, 0);
    question(&p, "example.com", DNS_T_A);
    question(&p, "example.com", DNS_T_A);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 50), -1);
    /* trailing garbage after the last record, or a record count beyond the data */
    good_a(&p, 50, F_QR, "example.com", DNS_T_A, 1);
    p.b[7] = 2;
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 50), -1);
    ck_assert_int_eq(dns_parse_response(p.b, 0, "example.com", DNS_T_A, 50, &ans, &ttl), -1);
}
END_TEST

START_TEST(name_case)
{
    struct pb p;
    header(&p, 60, F_QR, 1, 1, 0, 0);
    question(&p, "ExAmPlE.CoM", DNS_T_A);
    name(&p, "EXAMPLE.com");
    rr_a(&p, 60, "192.0.2.7");
    ck_assert_int_eq(parse(&p, "example.COM", DNS_T_A, 60), 0);
    ck_assert_int_eq(ans.status, DNS_OK);
    ck_assert_uint_eq(ans.count, 1);
    ck_assert_str_eq(ans.qname, "example.COM.");
}
END_TEST

START_TEST(foreign_records)
{
    struct pb p;
    header(&p, 70, F_QR, 1, 5, 1, 1);
    question(&p, "example.com", DNS_T_A);
    ptr(&p, QOFF);
    size_t at = rr_head(&p, 46, 60);        /* an RRSIG-typed blob */
    bytes(&p, "\0\1\2\3\4\5\6\7", 8);
    rr_end(&p, at);
    ptr(&p, QOFF);
    rr_a(&p, 60, "192.0.2.1");
    /* the same owner in class CH: ignored */
    ptr(&p, QOFF);
    u16(&p, DNS_T_A);
    u16(&p, 3);
    u32(&p, 60);
    u16(&p, 4);
    bytes(&p, "\x0a\0\0\1", 4);
    name(&p, "other.example.com");
    rr_a(&p, 60, "192.0.2.2");
    ptr(&p, QOFF);
    at = rr_head(&p, 99, 60);                /* SPF type */
    u8(&p, 0);
    rr_end(&p, at);
    /* authority: an NS; additional: an A for it */
    ptr(&p, QOFF);
    at = rr_head(&p, 2, 60);
    name(&p, "ns.example.com");
    rr_end(&p, at);
    name(&p, "ns.example.com");
    rr_a(&p, 60, "192.0.2.53");
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 70), 0);
    ck_assert_int_eq(ans.status, DNS_OK);
    ck_assert_uint_eq(ans.count, 1);
    char text[32];
    inet_ntop(AF_INET, &ans.records[0].u.a, text, sizeof text);
    ck_assert_str_eq(text, "192.0.2.1");
}
END_TEST

START_TEST(flags_ad_tc)
{
    struct pb p;
    good_a(&p, 80, F_QR | F_AD, "example.com", DNS_T_A, 1);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 80), 0);
    ck_assert(ans.authenticated);
    dns_answer_free(&ans);
    good_a(&p, 80, F_QR, "example.com", DNS_T_A, 1);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 80), 0);
    ck_assert(!ans.authenticated);
    dns_answer_free(&ans);

    /* TC: dns_parse_response takes what the truncated packet holds (the client uses
       dns_parse_packet's flag to retry over TCP and never returns such an answer
       from UDP) */
    bool tc = false;
    good_a(&p, 81, F_QR | F_TC, "example.com", DNS_T_A, 1);
    ck_assert_int_eq(dns_parse_packet(p.b, p.n, "example.com", DNS_T_A, 81, &ans, &ttl, &tc), 0);
    ck_assert(tc);
    ck_assert_uint_eq(ans.count, 1);
    dns_answer_free(&ans);
    header(&p, 82, F_QR | F_TC, 1, 0, 0, 0);
    question(&p, "example.com", DNS_T_TXT);
    ck_assert_int_eq(dns_parse_packet(p.b, p.n, "example.com", DNS_T_TXT, 82, &ans, &ttl, &tc), 0);
    ck_assert(tc);
    ck_assert_int_eq(ans.status, DNS_NODATA);
    dns_answer_free(&ans);
    good_a(&p, 83, F_QR, "example.com", DNS_T_A, 1);
    ck_assert_int_eq(dns_parse_packet(p.b, p.n, "example.com", DNS_T_A, 83, &ans, &ttl, &tc), 0);
    ck_assert(!tc);
}
END_TEST

START_TEST(ttl_high_bit)
{
    /* RFC 2181 §8: a TTL with the top bit set is read as zero */
    struct pb p;
    header(&p, 85, F_QR, 1, 2, 0, 0);
    question(&p, "example.com", DNS_T_A);
    ptr(&p, QOFF);
    rr_a(&p, 0x80000000u, "192.0.2.1");
    ptr(&p, QOFF);
    rr_a(&p, 600, "192.0.2.2");
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 85), 0);
    ck_assert_uint_eq(ans.count, 2);
    ck_assert_uint_eq(ans.records[0].ttl, 0);
    ck_assert_uint_eq(ttl, 0);
    dns_answer_free(&ans);
    header(&p, 86, F_QR | 3, 1, 0, 1, 0);
    question(&p, "example.com", DNS_T_A);
    ptr(&p, QOFF);
    rr_soa(&p, 0xffffffffu, 0xfffffff0u);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 86), 0);
    ck_assert_uint_eq(ttl, 0);
}
END_TEST

/* ---- hostile bytes ------------------------------------------------------------ */

START_TEST(every_prefix)
{
    struct pb p;
    header(&p, 90, F_QR | F_AD, 1, 4, 1, 0);
    question(&p, "www.example.com", DNS_T_TXT);
    ptr(&p, QOFF);
    rr_cname(&p, 300, "txt.example.net");
    name(&p, "txt.example.net");
    size_t at = rr_head(&p, DNS_T_TXT, 300);
    u8(&p, 4);
    bytes(&p, "abcd", 4);
    u8(&p, 0);
    rr_end(&p, at);
    name(&p, "txt.example.net");
    at = rr_head(&p, DNS_T_TXT, 300);
    u8(&p, 2);
    bytes(&p, "ef", 2);
    rr_end(&p, at);
    ptr(&p, QOFF);
    rr_a(&p, 5, "192.0.2.1");
    name(&p, "example.net");
    rr_soa(&p, 100, 100);
    ck_assert_int_eq(parse(&p, "www.example.com", DNS_T_TXT, 90), 0);
    ck_assert_uint_eq(ans.count, 2);
    dns_answer_free(&ans);
    for (size_t n = 0; n < p.n; n++) {
        int rc = dns_parse_response(p.b, n, "www.example.com", DNS_T_TXT, 90, &ans, &ttl);
        ck_assert_msg(rc == -1, "prefix of %zu octets accepted", n);
        ck_assert_uint_eq(ans.count, 0);
        ck_assert_ptr_null(ans.records);
    }
    /* flip every octet in turn: never a crash, and any success is self-consistent */
    for (size_t i = 0; i < p.n; i++) {
        struct pb q = p;
        q.b[i] ^= 0xff;
        if (dns_parse_response(q.b, q.n, "www.example.com", DNS_T_TXT, 90, &ans, &ttl) == 0) {
            ck_assert(ans.count == 0 || ans.records);
            ck_assert(ans.status != DNS_OK || ans.count > 0);
            for (size_t k = 0; k < ans.count; k++)
                ck_assert_ptr_nonnull(ans.records[k].data);
        }
        dns_answer_free(&ans);
    }
}
END_TEST

START_TEST(compression_pointers)
{
    struct pb p;
    /* an answer owner that points at itself */
    header(&p, 100, F_QR, 1, 1, 0, 0);
    question(&p, "example.com", DNS_T_A);
    size_t self = p.n;
    ptr(&p, (unsigned)self);
    rr_a(&p, 60, "192.0.2.1");
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 100), -1);
    /* two pointers pointing at each other */
    header(&p, 101, F_QR, 1, 2, 0, 0);
    question(&p, "example.com", DNS_T_A);
    size_t first = p.n;
    ptr(&p, (unsigned)first + 16);
    rr_a(&p, 60, "192.0.2.1");
    ck_assert_uint_eq(p.n, first + 16);
    ptr(&p, (unsigned)first);
    rr_a(&p, 60, "192.0.2.2");
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 101), -1);
    /* a label then a pointer back to the start of the same name */
    header(&p, 102, F_QR, 1, 1, 0, 0);
    question(&p, "example.com", DNS_T_A);
    size_t start = p.n;
    u8(&p, 1);
    u8(&p, 'x');
    ptr(&p, (unsigned)start);
    rr_a(&p, 60, "192.0.2.1");
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 102), -1);
    /* a pointer beyond the end of the packet */
    header(&p, 103, F_QR, 1, 1, 0, 0);
    question(&p, "example.com", DNS_T_A);
    ptr(&p, 0x3fff);
    rr_a(&p, 60, "192.0.2.1");
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 103), -1);
    /* a pointer in the question itself, to the header */
    header(&p, 104, F_QR, 1, 0, 0, 0);
    ptr(&p, 0);
    u16(&p, 1);
    u16(&p, 1);
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 104), -1);
    /* a forward pointer (to a name later in the packet): RFC 1035 says "prior
       occurrence", but the target is a well-formed name; whatever the verdict, it
       must be consistent and bounded */
    header(&p, 105, F_QR, 1, 1, 0, 0);
    question(&p, "example.com", DNS_T_MX);
    ptr(&p, QOFF);
    size_t at = rr_head(&p, DNS_T_MX, 60);
    u16(&p, 10);
    size_t fwd = p.n;
    ptr(&p, 0);
    rr_end(&p, at);
    size_t target = p.n;
    name(&p, "mx.example.com");
    p.b[fwd] = (uint8_t)(0xc0 | (target >> 8));
    p.b[fwd + 1] = (uint8_t)target;
    int rc = parse(&p, "example.com", DNS_T_MX, 105);
    if (rc == 0 && ans.count == 1)
        ck_assert_str_eq(ans.records[0].u.mx.exchange, "mx.example.com");
    /* a name of 255+ octets made of pointers chained backwards through labels */
    dns_answer_free(&ans);
    header(&p, 106, F_QR, 1, 1, 0, 0);
    question(&p, "example.com", DNS_T_A);
    size_t prev = QOFF;
    for (int i = 0; i < 60; i++) {
        size_t here = p.n;
        u8(&p, 3);
        bytes(&p, "abc", 3);
        ptr(&p, (unsigned)prev);
        prev = here;
    }
    ptr(&p, (unsigned)prev);
    rr_a(&p, 60, "192.0.2.1");
    ck_assert_int_eq(parse(&p, "example.com", DNS_T_A, 106), -1);
}
END_TEST

Suite *dns_packet_suite(void)
{
    Suite *s = suite_create("dns_packet");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, a_records);
    tcase_add_test(tc, aaaa_mx_ptr);
    tcase_add_test(tc, txt_records);
    tcase_add_test(tc, tlsa_records);
    tcase_add_test(tc, cname_chains);
    tcase_add_test(tc, cname_loops_and_long_chains);
    tcase_add_test(tc, negative_answers);
    tcase_add_test(tc, rcodes);
    tcase_add_test(tc, mismatches);
    tcase_add_test(tc, name_case);
    tcase_add_test(tc, foreign_records);
    tcase_add_test(tc, flags_ad_tc);
    tcase_add_test(tc, ttl_high_bit);
    tcase_add_test(tc, every_prefix);
    tcase_add_test(tc, compression_pointers);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(dns_packet_suite)

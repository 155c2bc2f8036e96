/*
 * Unit tests of auth/spf_record, auth/spf_macro, auth/spf (over a fake resolver)
 * and auth/spf_format.
 */
#include "auth/spf.h"
#include "lib/netaddr.h"
#include "auth/spf_macro.h"
#include "tests/unit/fake_dns.h"
#include "tests/unit/unit.h"

#include <sys/socket.h>

/* --- macros: RFC 7208 §7.4 -------------------------------------------------- */

static struct spf_macro_vars vars4(void)
{
    struct spf_macro_vars v = {
        .local = "strong-bad", .sender_domain = "email.example.com", .domain = "email.example.com",
        .family = AF_INET, .ip = {192, 0, 2, 3}, .helo = "mx.example.org", .validated = "mx.example.org",
        .receiver = "mx.example.net", .now = 1234567890,
    };
    return v;
}

static const char *expand(const char *s, enum spf_macro_ctx ctx, const struct spf_macro_vars *v)
{
    static char out[SPF_EXPANSION_MAX];
    char err[200];
    if (spf_macro_expand(s, strlen(s), ctx, v, out, sizeof out, err, sizeof err) < 0)
        snprintf(out, sizeof out, "ERROR: %s", err);
    return out;
}

START_TEST(macro_rfc_examples)
{
    struct spf_macro_vars v = vars4();
    static const char *cases[][2] = {
        {"%{s}", "strong-bad@email.example.com"}, {"%{o}", "email.example.com"},
        {"%{d}", "email.example.com"}, {"%{d4}", "email.example.com"}, {"%{d3}", "email.example.com"},
        {"%{d2}", "example.com"}, {"%{d1}", "com"}, {"%{dr}", "com.example.email"}, {"%{d2r}", "example.email"},
        {"%{l}", "strong-bad"}, {"%{l-}", "strong.bad"}, {"%{lr}", "strong-bad"}, {"%{lr-}", "bad.strong"},
        {"%{l1r-}", "strong"},
        {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
        {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
        {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
        {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"},
        {"%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_str_eq(expand(cases[i][0], SPF_MACRO_DOMAIN, &v), cases[i][1]);
    /* the IPv6 example: 2001:db8::cb01 */
    v.family = AF_INET6;
    memset(v.ip, 0, 16);
    v.ip[0] = 0x20, v.ip[1] = 0x01, v.ip[2] = 0x0d, v.ip[3] = 0xb8, v.ip[14] = 0xcb, v.ip[15] = 0x01;
    ck_assert_str_eq(expand("%{ir}.%{v}._spf.%{d2}", SPF_MACRO_DOMAIN, &v),
                     "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com");
    ck_assert_str_eq(expand("%{c}", SPF_MACRO_EXPLAIN, &v), "2001:db8::cb01");
}
END_TEST

START_TEST(macro_letters_escapes_and_contexts)
{
    struct spf_macro_vars v = vars4();
    ck_assert_str_eq(expand("%{p}.%{h}", SPF_MACRO_DOMAIN, &v), "mx.example.org.mx.example.org");
    ck_assert_str_eq(expand("%{p2}", SPF_MACRO_DOMAIN, &v), "example.org");
    ck_assert_str_eq(expand("%{S}", SPF_MACRO_DOMAIN, &v), "strong-bad%40email.example.com");
    v.local = "a b/c~d";
    ck_assert_str_eq(expand("%{L}", SPF_MACRO_EXPLAIN, &v), "a%20b%2Fc~d");
    ck_assert_str_eq(expand("x%%y%_z%-w", SPF_MACRO_EXPLAIN, &v), "x%y z%20w");
    ck_assert_str_eq(expand("%{c} %{r} %{t}", SPF_MACRO_EXPLAIN, &v), "192.0.2.3 mx.example.net 1234567890");
    ck_assert_str_eq(expand("%{d}.", SPF_MACRO_DOMAIN, &v), "email.example.com");     /* trailing dot */
    ck_assert_str_eq(expand("%{d2+}", SPF_MACRO_DOMAIN, &v), "email.example.com");
    v.local = "a+b=c_d";
    ck_assert_str_eq(expand("%{l+=_}", SPF_MACRO_DOMAIN, &v), "a.b.c.d");
    ck_assert_str_eq(expand("%{l1r+=_}", SPF_MACRO_DOMAIN, &v), "a");
    /* c, r, t are explanation-only; broken syntax is an error */
    char err[200], out[300];
    const char *bad[] = {"%{c}", "%{r}.x.com", "%{t}", "%(ir).sbl.example.org", "%{d0}", "%{x}", "%{d", "%",
                         "a b", "%{ir"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(spf_macro_expand(bad[i], strlen(bad[i]), SPF_MACRO_DOMAIN, &v, out, sizeof out, err,
                                       sizeof err) < 0, "%s accepted", bad[i]);
    ck_assert(spf_macro_check("%{c} says %{i}", 14, SPF_MACRO_EXPLAIN, err, sizeof err) == 0);
    ck_assert(spf_macro_uses_p("x.%{p}.y", 8));
    ck_assert(!spf_macro_uses_p("x.%%{p}", 7));
}
END_TEST

START_TEST(macro_253_truncation)
{
    struct spf_macro_vars v = vars4();
    char local[300];
    memset(local, 'a', 60);
    for (int i = 0; i < 3; i++)
        local[60 * (i + 1) + i] = '.', memset(local + 60 * (i + 1) + i + 1, 'b' + i, 60);
    local[60 * 4 + 3] = '\0';   /* 4 labels of 60 octets: 243 octets */
    v.local = local;
    const char *r = expand("%{l}.%{d}", SPF_MACRO_DOMAIN, &v);
    /* 243 + 1 + 17 = 261 > 253: the leftmost label goes */
    ck_assert_uint_le(strlen(r), 253);
    ck_assert(!strncmp(r, "bbbb", 4));
    ck_assert(strstr(r, ".email.example.com") != NULL);
}
END_TEST

/* --- record parser ------------------------------------------------------------ */

START_TEST(record_parse_valid)
{
    struct spf_record r;
    char err[200];
    const char *t = "v=spf1 +a -mx/24//64 ~ptr:%{d} ?ip4:192.0.2.0/25 ip6:2001:db8::/32 include:_spf.example.com "
                    "exists:%{ir}.x.example.org A:Mail.Example.COM. all redirect=x.example.com exp=e.%{d} "
                    "foo.bar=%{l}x  ";
    ck_assert_int_eq(spf_record_parse(t, strlen(t), &r, err, sizeof err), 0);
    ck_assert_uint_eq(r.nterms, 9);
    ck_assert_int_eq(r.terms[0].mech, SPF_M_A);
    ck_assert_int_eq(r.terms[0].qualifier, SPF_PASS);
    ck_assert_ptr_null(r.terms[0].domain_spec);
    ck_assert_int_eq(r.terms[1].qualifier, SPF_FAIL);
    ck_assert_uint_eq(r.terms[1].cidr4, 24);
    ck_assert_uint_eq(r.terms[1].cidr6, 64);
    ck_assert_int_eq(r.terms[2].qualifier, SPF_SOFTFAIL);
    ck_assert_str_eq(r.terms[2].domain_spec, "%{d}");
    ck_assert_int_eq(r.terms[3].qualifier, SPF_NEUTRAL);
    ck_assert_uint_eq(r.terms[3].cidr4, 25);
    ck_assert_uint_eq(r.terms[3].addr[2], 2);
    ck_assert_uint_eq(r.terms[4].cidr6, 32);
    ck_assert_int_eq(r.terms[5].mech, SPF_M_INCLUDE);
    ck_assert_str_eq(r.terms[7].domain_spec, "Mail.Example.COM.");
    ck_assert_int_eq(r.terms[8].mech, SPF_M_ALL);
    ck_assert_str_eq(r.redirect, "x.example.com");
    ck_assert_str_eq(r.exp, "e.%{d}");
    spf_record_free(&r);
    ck_assert(spf_record_is_spf1("v=spf1", 6));
    ck_assert(spf_record_is_spf1("V=SPF1 -all", 11));
    ck_assert(!spf_record_is_spf1("v=spf10 -all", 12));
    ck_assert(!spf_record_is_spf1("v=spf2.0/pra", 12));
}
END_TEST

START_TEST(record_parse_errors_name_the_term)
{
    static const char *bad[][2] = {
        {"v=spf1 foo:bar -all", "foo:bar"},
        {"v=spf1 ip4:192.0.2.300", "ip4:192.0.2.300"},
        {"v=spf1 ip4:1.2.03.4", "ip4:1.2.03.4"},
        {"v=spf1 ip4:192.0.2.0/33", "ip4:192.0.2.0/33"},
        {"v=spf1 ip4:192.0.2.0/024", "/024"},
        {"v=spf1 ip4:192.0.2.0//24", "ip4:192.0.2.0//24"},
        {"v=spf1 ip6:2001:db8::/129", "ip6:2001:db8::/129"},
        {"v=spf1 ip6:2001:db8:::1", "ip6:2001:db8:::1"},
        {"v=spf1 a/33", "a/33"},
        {"v=spf1 mx//129", "mx//129"},
        {"v=spf1 -all:foo", "all:foo"},
        {"v=spf1 include", "include"},
        {"v=spf1 exists", "exists"},
        {"v=spf1 a:example", "a:example"},
        {"v=spf1 a:example.123", "a:example.123"},
        {"v=spf1 a:example.com:8080", "a:example.com:8080"},
        {"v=spf1 redirect=a.example redirect=b.example", "redirect"},
        {"v=spf1 exp=a.example exp=b.example", "exp"},
        {"v=spf1 exists:%(ir).sbl.example.org", "%(ir)"},
        {"v=spf1 foo=%{z}", "foo=%{z}"},
        {"v=spf1 a:%{c}.example.com", "a:%{c}.example.com"},
        {"v=spf1 ptr:", "ptr:"},
        {"v=spf1 =x", "=x"},
        {"v=spf1\ta", "v=spf1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct spf_record r;
        char err[200] = "";
        ck_assert_msg(spf_record_parse(bad[i][0], strlen(bad[i][0]), &r, err, sizeof err) == -1, "%s accepted",
                      bad[i][0]);
        ck_assert_msg(strstr(err, bad[i][1]) != NULL, "%s: error \"%s\" does not name %s", bad[i][0], err,
                      bad[i][1]);
    }
}
END_TEST

/* --- evaluator over the fake resolver ------------------------------------------- */

static const struct fake_row ZONE[] = {
    {"example.com", DNS_T_TXT, DNS_OK, "v=spf1 ip4:192.0.2.0/28 include:inc.example.com mx:mx.example.com -all"
                                       " exp=exp.example.com|some other text"},
    {"example.com", DNS_T_A, DNS_OK, "192.0.2.200"},
    {"inc.example.com", DNS_T_TXT, DNS_OK, "v=spf1 ip6:2001:db8::/32 a:host.example.com ~all"},
    {"host.example.com", DNS_T_A, DNS_OK, "198.51.100.1|198.51.100.2"},
    {"mx.example.com", DNS_T_MX, DNS_OK, "10 m1.example.com|20 m2.example.com."},
    {"m1.example.com", DNS_T_A, DNS_OK, "203.0.113.1"},
    {"m2.example.com", DNS_T_A, DNS_OK, "203.0.113.2"},
    {"exp.example.com", DNS_T_TXT, DNS_OK, "%{i} is not allowed to send for %{d}, try %{h}"},
    {"two.example", DNS_T_TXT, DNS_OK, "v=spf1 +all|v=spf1 -all"},
    {"many.example", DNS_T_TXT, DNS_OK, "v=spf1 mx -all"},
    {"many.example", DNS_T_MX, DNS_OK, "1 a.many.example|2 b.many.example|3 c.many.example|4 d.many.example|"
                                       "5 e.many.example|6 f.many.example|7 g.many.example|8 h.many.example|"
                                       "9 i.many.example|10 j.many.example|11 k.many.example"},
    {"void.example", DNS_T_TXT, DNS_OK, "v=spf1 a:n1.void.example mx:n2.void.example exists:n3.void.example +all"},
    {"void2.example", DNS_T_TXT, DNS_OK, "v=spf1 a:n1.void.example exists:n3.void.example +all"},
    {"loop.example", DNS_T_TXT, DNS_OK, "v=spf1 include:loop.example -all"},
    {"temp.example", DNS_T_TXT, DNS_OK, "v=spf1 a:down.example -all"},
    {"down.example", DNS_T_A, DNS_SERVFAIL, NULL},
    {"tempptr.example", DNS_T_TXT, DNS_OK, "v=spf1 ptr -all"},
    {"red.example", DNS_T_TXT, DNS_OK, "v=spf1 redirect=example.com"},
    {"rednone.example", DNS_T_TXT, DNS_OK, "v=spf1 redirect=nothing.example"},
    {"incnone.example", DNS_T_TXT, DNS_OK, "v=spf1 include:nothing.example +all"},
    {"ptr.example", DNS_T_TXT, DNS_OK, "v=spf1 ptr exists:%{p}.ok.example -all"},
    {"3.2.0.192.in-addr.arpa", DNS_T_PTR, DNS_OK, "mail.ptr.example.|forged.ptr.example"},
    {"mail.ptr.example", DNS_T_A, DNS_OK, "192.0.2.3"},
    {"forged.ptr.example", DNS_T_A, DNS_OK, "192.0.2.99"},
    {"pmacro.example", DNS_T_TXT, DNS_OK, "v=spf1 exists:%{p}.ok.example -all"},
    {"mail.ptr.example.ok.example", DNS_T_A, DNS_OK, "127.0.0.2"},
    {"helo.example", DNS_T_TXT, DNS_OK, "v=spf1 a -all"},
    {"helo.example", DNS_T_A, DNS_OK, "192.0.2.50"},
    {"local.example", DNS_T_TXT, DNS_OK, "v=spf1 exists:%{l}.users.local.example -all"},
    {"postmaster.users.local.example", DNS_T_A, DNS_OK, "127.0.0.2"},
    {"syntax.example", DNS_T_TXT, DNS_OK, "v=spf1 ip4:1.2.3.4 ipv4:5.6.7.8 +all"},
    {"terms.example", DNS_T_TXT, DNS_OK, "v=spf1 a a a a a a a a a a a +all"},
    {"terms.example", DNS_T_A, DNS_OK, "10.0.0.1"},
    {"emptylabel.example", DNS_T_TXT, DNS_OK, "v=spf1 a:foo..bar.example mx:x..example ip4:192.0.2.9 -all"},
    {"emptymacro.example", DNS_T_TXT, DNS_OK, "v=spf1 exists:%{d2}..%{d} ip4:192.0.2.9 -all"},
    {"longlabel.example", DNS_T_TXT, DNS_OK, "v=spf1 a:%{l}.x.example ip4:192.0.2.9 -all"},
    {"toolong.example", DNS_T_TXT, DNS_OK, "v=spf1 exists:%{l}%{l}%{l}%{l}.x.example ip4:192.0.2.9 -all"},
    {"incbad.example", DNS_T_TXT, DNS_OK, "v=spf1 include:a..b.example +all"},
    {"redbad.example", DNS_T_TXT, DNS_OK, "v=spf1 redirect=%{l}%{l}%{l}%{l}.x.example"},
    {"spacey.example", DNS_T_TXT, DNS_OK, "v=spf1 exists:%{l}%_x%%.sp.example -all"},
    {"u x%.sp.example", DNS_T_A, DNS_OK, "127.0.0.2"},
    {NULL, 0, 0, NULL},
};

struct result_box {
    int calls;
    struct spf_outcome o;
};

static void done(const struct spf_outcome *o, void *arg)
{
    struct result_box *b = arg;
    b->calls++;
    b->o = *o;
}

static struct spf_outcome run_check(const char *ip, const char *sender, const char *helo, enum spf_identity id,
                                    unsigned *queries)
{
    struct fake_dns f;
    struct auth_resolver r;
    fake_dns_resolver(&f, ZONE, &r);
    struct spf_query q = {.sender = sender, .helo = helo, .identity = id, .now = 1};
    ck_assert_int_eq(netaddr_text_bytes(ip, &q.family, q.ip), 0);
    struct result_box b = {0};
    struct spf_check *c = spf_check_start(&r, &q, done, &b);
    if (c)
        ck_assert_int_eq(b.calls, 0);   /* asynchronous: nothing before the answers */
    fake_dns_run(&f);
    ck_assert_int_eq(b.calls, 1);
    if (queries)
        *queries = f.queries;
    return b.o;
}

#define CHECK(ip, sender, want) do { \
        struct spf_outcome o_ = run_check(ip, sender, "helo.example", SPF_ID_MAILFROM, NULL); \
        ck_assert_msg(o_.result == (want), "%s %s: got %s (%s)", ip, sender, spf_result_name(o_.result), o_.reason); \
    } while (0)

START_TEST(eval_mechanisms)
{
    struct spf_outcome o = run_check("192.0.2.5", "u@example.com", "h.example", SPF_ID_MAILFROM, NULL);
    ck_assert_int_eq(o.result, SPF_PASS);
    ck_assert_str_eq(o.mechanism, "ip4:192.0.2.0/28");
    ck_assert(strstr(o.record, "include:inc.example.com") != NULL);
    CHECK("2001:db8::1", "u@example.com", SPF_PASS);          /* through include */
    CHECK("198.51.100.2", "u@example.com", SPF_PASS);         /* a: in the include */
    CHECK("203.0.113.2", "u@example.com", SPF_PASS);          /* second MX host */
    CHECK("::ffff:192.0.2.5", "u@example.com", SPF_PASS);     /* mapped IPv4 */
    CHECK("192.0.2.3", "u@ptr.example", SPF_PASS);            /* ptr validated */
    CHECK("192.0.2.99", "u@ptr.example", SPF_FAIL);           /* forged PTR name not validated */
    CHECK("192.0.2.3", "u@pmacro.example", SPF_PASS);         /* %{p} */
    CHECK("192.0.2.7", "", SPF_FAIL);                         /* null sender: helo.example */
    CHECK("192.0.2.50", "", SPF_PASS);
    CHECK("192.0.2.50", "local.example", SPF_PASS);           /* no local-part: postmaster */
    CHECK("192.0.2.1", "u@nothing.example", SPF_NONE);
    CHECK("192.0.2.1", "u@[192.0.2.1]", SPF_NONE);            /* not a domain */
    CHECK("192.0.2.1", "u@localhost", SPF_NONE);              /* single label */
    CHECK("192.0.2.100", "u@red.example", SPF_FAIL);
    CHECK("192.0.2.5", "u@RED.EXAMPLE.", SPF_PASS);           /* case, trailing dot */
}
END_TEST

START_TEST(eval_explanation)
{
    struct spf_outcome o = run_check("192.0.2.100", "u@example.com", "h.example", SPF_ID_MAILFROM, NULL);
    ck_assert_int_eq(o.result, SPF_FAIL);
    ck_assert_str_eq(o.mechanism, "-all");
    ck_assert_str_eq(o.explanation, "192.0.2.100 is not allowed to send for example.com, try h.example");
    o = run_check("192.0.2.100", "u@two.example", "h.example", SPF_ID_MAILFROM, NULL);
    ck_assert_str_eq(o.explanation, "");
    o = run_check("192.0.2.2", "u@ptr.example", "h.example", SPF_ID_MAILFROM, NULL);
    ck_assert_str_eq(o.explanation, "192.0.2.2 is not a designated sender for ptr.example");
}
END_TEST

START_TEST(eval_errors_and_limits)
{
    CHECK("192.0.2.1", "u@two.example", SPF_PERMERROR);
    CHECK("192.0.2.1", "u@many.example", SPF_PERMERROR);
    CHECK("192.0.2.1", "u@void.example", SPF_PERMERROR);
    CHECK("192.0.2.1", "u@void2.example", SPF_PASS);
    CHECK("192.0.2.1", "u@loop.example", SPF_PERMERROR);
    CHECK("192.0.2.1", "u@temp.example", SPF_TEMPERROR);
    CHECK("192.0.2.1", "u@rednone.example", SPF_PERMERROR);
    CHECK("192.0.2.1", "u@incnone.example", SPF_PERMERROR);
    CHECK("1.2.3.4", "u@syntax.example", SPF_PERMERROR);     /* checked before evaluation */
    CHECK("10.0.0.1", "u@terms.example", SPF_PASS);          /* the first a matches */
    CHECK("10.0.0.2", "u@terms.example", SPF_PERMERROR);     /* the 11th a */
    struct spf_outcome o = run_check("10.0.0.2", "u@terms.example", "h.example", SPF_ID_MAILFROM, NULL);
    ck_assert(strstr(o.reason, "more than 10") != NULL);
    o = run_check("192.0.2.1", "u@void.example", "h.example", SPF_ID_MAILFROM, NULL);
    ck_assert(strstr(o.reason, "void") != NULL);
    o = run_check("192.0.2.1", "u@temp.example", "h.example", SPF_ID_MAILFROM, NULL);
    ck_assert(strstr(o.reason, "down.example") != NULL);
}
END_TEST

/* RFC 7208 §4.3, §4.8, §5: a target that cannot be a DNS name does not exist. */
static struct spf_outcome run_checked(const char *ip, const char *sender, enum spf_result want)
{
    struct fake_dns f;
    struct auth_resolver r;
    fake_dns_resolver(&f, ZONE, &r);
    struct spf_query q = {.sender = sender, .helo = "h.example", .identity = SPF_ID_MAILFROM, .now = 1};
    ck_assert_int_eq(netaddr_text_bytes(ip, &q.family, q.ip), 0);
    struct result_box b = {0};
    spf_check_start(&r, &q, done, &b);
    fake_dns_run(&f);
    ck_assert_int_eq(b.calls, 1);
    ck_assert_msg(b.o.result == want, "%s %s: got %s (%s)", ip, sender, spf_result_name(b.o.result), b.o.reason);
    ck_assert_msg(f.bad_names == 0, "%s: %u unqueryable names sent to DNS", sender, f.bad_names);
    return b.o;
}

START_TEST(eval_unqueryable_targets)
{
    char long_local[65], sender[128];
    memset(long_local, 'u', 64);
    long_local[64] = '\0';
    /* empty label, literal and after expansion: a, mx and exists match nothing */
    run_checked("192.0.2.9", "u@emptylabel.example", SPF_PASS);
    run_checked("192.0.2.10", "u@emptylabel.example", SPF_FAIL);
    run_checked("192.0.2.9", "u@emptymacro.example", SPF_PASS);
    run_checked("192.0.2.10", "u@emptymacro.example", SPF_FAIL);
    /* a 64-octet label */
    snprintf(sender, sizeof sender, "%s@longlabel.example", long_local);
    run_checked("192.0.2.9", sender, SPF_PASS);
    run_checked("192.0.2.10", sender, SPF_FAIL);
    /* one label of 256 octets: no left label to drop (§7.3), so no name at all */
    snprintf(sender, sizeof sender, "%s@toolong.example", long_local);
    run_checked("192.0.2.9", sender, SPF_PASS);
    struct spf_outcome o = run_checked("192.0.2.10", sender, SPF_FAIL);
    ck_assert_str_eq(o.mechanism, "-all");
    /* include and redirect of a name that does not exist: permerror (§5.2, §6.1) */
    run_checked("192.0.2.9", "u@incbad.example", SPF_PERMERROR);
    snprintf(sender, sizeof sender, "%s@redbad.example", long_local);
    run_checked("192.0.2.9", sender, SPF_PERMERROR);
    /* a space and a '%' in a label are label octets: queried as they are */
    run_checked("192.0.2.10", "u@spacey.example", SPF_PASS);
    run_checked("192.0.2.10", "v@spacey.example", SPF_FAIL);
}
END_TEST

START_TEST(eval_helo_identity_and_format)
{
    struct spf_outcome o = run_check("192.0.2.50", "someone@example.com", "Helo.Example", SPF_ID_HELO, NULL);
    ck_assert_int_eq(o.result, SPF_PASS);
    ck_assert_str_eq(o.domain, "helo.example");
    char buf[1024];
    ck_assert_int_gt(spf_format_auth_results(&o, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "spf=pass smtp.helo=Helo.Example");
    o = run_check("192.0.2.100", "a\"b@example.com", "h.example", SPF_ID_MAILFROM, NULL);
    ck_assert_int_gt(spf_format_auth_results(&o, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "spf=fail smtp.mailfrom=\"a\\\"b@example.com\"");
    o = run_check("192.0.2.5", "user@example.com", "h.example", SPF_ID_MAILFROM, NULL);
    ck_assert_int_gt(spf_format_received_spf(&o, "mx.receiver.example", buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "pass (mx.receiver.example: domain of user@example.com designates 192.0.2.5 as "
                          "permitted sender) client-ip=192.0.2.5; envelope-from=\"user@example.com\"; helo=h.example; "
                          "identity=mailfrom; receiver=mx.receiver.example; mechanism=\"ip4:192.0.2.0/28\";");
    ck_assert_int_eq(spf_format_received_spf(&o, "r", buf, 20), -1);
    o = run_check("192.0.2.5", "user@two.example", "h.example", SPF_ID_MAILFROM, NULL);
    ck_assert_int_gt(spf_format_received_spf(&o, NULL, buf, sizeof buf), 0);
    ck_assert(strstr(buf, "permerror (unknown: permanent error in the SPF record of two.example)") == buf);
    ck_assert(strstr(buf, "problem=\"two.example publishes more than one") != NULL);
}
END_TEST

START_TEST(eval_cancel)
{
    struct fake_dns f;
    struct auth_resolver r;
    fake_dns_resolver(&f, ZONE, &r);
    struct spf_query q = {.sender = "u@example.com", .helo = "h.example"};
    netaddr_text_bytes("192.0.2.100", &q.family, q.ip);
    struct result_box b = {0};
    struct spf_check *c = spf_check_start(&r, &q, done, &b);
    ck_assert_ptr_nonnull(c);
    spf_check_cancel(c);
    fake_dns_run(&f);
    ck_assert_int_eq(b.calls, 0);
}
END_TEST

Suite *spf_suite(void)
{
    Suite *s = suite_create("spf");
    TCase *t = tcase_create("spf");
    tcase_add_test(t, macro_rfc_examples);
    tcase_add_test(t, macro_letters_escapes_and_contexts);
    tcase_add_test(t, macro_253_truncation);
    tcase_add_test(t, record_parse_valid);
    tcase_add_test(t, record_parse_errors_name_the_term);
    tcase_add_test(t, eval_mechanisms);
    tcase_add_test(t, eval_explanation);
    tcase_add_test(t, eval_errors_and_limits);
    tcase_add_test(t, eval_unqueryable_targets);
    tcase_add_test(t, eval_helo_identity_and_format);
    tcase_add_test(t, eval_cancel);
    suite_add_tcase(s, t);
    return s;
}

UNIT_MAIN(spf_suite)

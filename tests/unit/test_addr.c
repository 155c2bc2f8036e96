/*
 * test_addr.c — lib/addr.h, fed raw bytes.
 *
 * Covers: RFC 5321 Mailbox and Path grammar (dot-strings, quoted local parts and
 * unquoting, address literals of every kind, source routes, <> and <Postmaster>),
 * the 64/255/256-octet limits exactly at and one over, domain label rules, RFC 6531
 * UTF-8 (only when allowed; malformed sequences refused), bytes after '>', the
 * consumed count, and that every refusal comes with a reason.
 */
#include "lib/addr.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

static void mb_ok_n(const char *s, size_t len, bool utf8, const char *local, const char *domain,
                    enum addr_domain_kind kind)
{
    struct mailbox m;
    const char *err = NULL;
    ck_assert_msg(addr_parse_mailbox(s, len, utf8, &m, &err) == 0, "\"%.*s\" rejected: %s", (int)len, s,
                  err ? err : "?");
    ck_assert_str_eq(m.local, local);
    ck_assert_str_eq(m.domain, domain);
    ck_assert_int_eq(m.domain_kind, kind);
}

static void mb_ok(const char *s, bool utf8, const char *local, const char *domain, enum addr_domain_kind kind)
{
    mb_ok_n(s, strlen(s), utf8, local, domain, kind);
}

static void mb_bad_n(const char *s, size_t len, bool utf8)
{
    struct mailbox m;
    const char *err = NULL;
    ck_assert_msg(addr_parse_mailbox(s, len, utf8, &m, &err) < 0, "\"%.*s\" accepted", (int)len, s);
    ck_assert_msg(err != NULL && err[0] != '\0', "no reason for \"%.*s\"", (int)len, s);
}

static void mb_bad(const char *s, bool utf8)
{
    mb_bad_n(s, strlen(s), utf8);
}

static void lit_ok(const char *lit, enum addr_domain_kind kind)
{
    char s[300];
    snprintf(s, sizeof s, "u@%s", lit);
    mb_ok(s, false, "u", lit, kind);
    ck_assert_msg(addr_is_address_literal(lit, strlen(lit)), "%s not a literal", lit);
}

static void lit_bad(const char *lit)
{
    char s[300];
    snprintf(s, sizeof s, "u@%s", lit);
    mb_bad(s, false);
    mb_bad(s, true);
    ck_assert_msg(!addr_is_address_literal(lit, strlen(lit)), "%s is a literal", lit);
}

/* A string of n copies of c. */
static char *rep(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

START_TEST(dot_strings)
{
    mb_ok("user@example.com", false, "user", "example.com", ADDR_DOMAIN_NAME);
    mb_ok("first.last@example.com", false, "first.last", "example.com", ADDR_DOMAIN_NAME);
    mb_ok("a.b.c.d@x", false, "a.b.c.d", "x", ADDR_DOMAIN_NAME);
    mb_ok("!#$%&'*+-/=?^_`{|}~@example.com", false, "!#$%&'*+-/=?^_`{|}~", "example.com", ADDR_DOMAIN_NAME);
    mb_ok("UPPER.lower@Example.COM", false, "UPPER.lower", "Example.COM", ADDR_DOMAIN_NAME);
    mb_bad(".user@example.com", false);
    mb_bad("user.@example.com", false);
    mb_bad("us..er@example.com", false);
    mb_bad(".@example.com", false);
    mb_bad("@example.com", false);
    mb_bad("us er@example.com", false);
    mb_bad("us(er@example.com", false);
    mb_bad("us\"er@example.com", false);
    mb_bad("us\\er@example.com", false);
    mb_bad("us,er@example.com", false);
    mb_bad("us[er@example.com", false);
    mb_bad("us\ter@example.com", false);
    mb_bad("us\x7f" "er@example.com", false);
    mb_bad("user", false);
    mb_bad("user@", false);
    mb_bad("a@b@example.com", false);
    mb_bad("", false);
    mb_bad_n("us\0er@example.com", 14, false);
    mb_bad_n("user@exa\0mple.com", 17, false);
}
END_TEST

START_TEST(quoted_local_parts)
{
    struct mailbox m;
    const char *err;
    char out[80];
    mb_ok("\"john doe\"@example.com", false, "\"john doe\"", "example.com", ADDR_DOMAIN_NAME);
    ck_assert_int_eq(addr_parse_mailbox("\"john doe\"@x", 12, false, &m, &err), 0);
    ck_assert(m.quoted);
    ck_assert_int_eq(addr_local_unquoted(&m, out, sizeof out), 0);
    ck_assert_str_eq(out, "john doe");

    /* quoted-pairs: \" and \\ and an escaped ordinary character */
    const char *s = "\"a\\\"b\\\\c\\d@e\"@example.com";
    ck_assert_int_eq(addr_parse_mailbox(s, strlen(s), false, &m, &err), 0);
    ck_assert_str_eq(m.local, "\"a\\\"b\\\\c\\d@e\"");
    ck_assert_str_eq(m.domain, "example.com");
    ck_assert_int_eq(addr_local_unquoted(&m, out, sizeof out), 0);
    ck_assert_str_eq(out, "a\"b\\cd@e");

    /* empty quoted string is a valid Quoted-string */
    mb_ok("\"\"@example.com", false, "\"\"", "example.com", ADDR_DOMAIN_NAME);
    ck_assert_int_eq(addr_parse_mailbox("\"\"@x", 4, false, &m, &err), 0);
    ck_assert_int_eq(addr_local_unquoted(&m, out, sizeof out), 0);
    ck_assert_str_eq(out, "");
    /* a quoted dot-string is fine too */
    mb_ok("\"..\"@x", false, "\"..\"", "x", ADDR_DOMAIN_NAME);
    /* unquoting of an unquoted local part is a copy; too small a buffer fails */
    ck_assert_int_eq(addr_parse_mailbox("plain@x", 7, false, &m, &err), 0);
    ck_assert(!m.quoted);
    ck_assert_int_eq(addr_local_unquoted(&m, out, sizeof out), 0);
    ck_assert_str_eq(out, "plain");
    ck_assert_int_eq(addr_local_unquoted(&m, out, 5), -1);
    ck_assert_int_eq(addr_parse_mailbox("\"abc\"@x", 7, false, &m, &err), 0);
    ck_assert_int_eq(addr_local_unquoted(&m, out, 3), -1);
    ck_assert_int_eq(addr_local_unquoted(&m, out, 4), 0);
    ck_assert_str_eq(out, "abc");

    mb_bad("\"unterminated@example.com", false);
    mb_bad("\"a\"b@example.com", false);
    mb_bad("\"a\"\"b\"@example.com", false);
    mb_bad("a\"b\"@example.com", false);
    mb_bad("\"a\\\"@example.com", false);        /* the closing quote is escaped */
    mb_bad("\"a\\\x01\"@example.com", false);    /* quoted-pair of a control */
    mb_bad("\"a\tb\"@example.com", false);       /* HTAB is not qtextSMTP */
    mb_bad("\"a\x7f" "b\"@example.com", false);
    mb_bad("\"a\rb\"@example.com", false);
    mb_bad("\"ab\"", false);
    mb_bad("\"ab\"@", false);
    mb_bad_n("\"a\0b\"@example.com", 17, false);
    mb_bad("\"caf\xc3\xa9\"@example.com", false);
    mb_ok("\"caf\xc3\xa9\"@example.com", true, "\"caf\xc3\xa9\"", "example.com", ADDR_DOMAIN_NAME);
    mb_bad("\"caf\xc3\"@example.com", true);
}
END_TEST

START_TEST(ipv4_literals)
{
    lit_ok("[192.0.2.1]", ADDR_DOMAIN_IPV4);
    lit_ok("[0.0.0.0]", ADDR_DOMAIN_IPV4);
    lit_ok("[255.255.255.255]", ADDR_DOMAIN_IPV4);
    lit_ok("[1.2.3.4]", ADDR_DOMAIN_IPV4);
    lit_bad("[256.1.1.1]");
    lit_bad("[1.2.3.256]");
    lit_bad("[1.2.3.1000]");
    lit_bad("[1.2.3]");
    lit_bad("[1.2.3.4.5]");
    lit_bad("[1.2.3.4.]");
    lit_bad("[.1.2.3]");
    lit_bad("[1..2.3]");
    lit_bad("[1.2.3.-4]");
    lit_bad("[1.2.3.4 ]");
    lit_bad("[ 1.2.3.4]");
    lit_bad("[1.2.3.a]");
    lit_bad("[0x1.2.3.4]");
    lit_bad("[01.2.3.4]");   /* leading zeros refused (octal ambiguity), see RFC-NOTES */
    lit_bad("[1.2.3.4");
    lit_bad("1.2.3.4]");
    lit_bad("[]");
    lit_bad("[");
    /* an unbracketed dotted quad is a (numeric) domain name, not a literal */
    mb_ok("u@1.2.3.4", false, "u", "1.2.3.4", ADDR_DOMAIN_NAME);
}
END_TEST

START_TEST(ipv6_literals)
{
    lit_ok("[IPv6:2001:db8:0:0:0:0:0:1]", ADDR_DOMAIN_IPV6);       /* IPv6-full */
    lit_ok("[IPv6:2001:DB8:ffff:0:0:0:0:1]", ADDR_DOMAIN_IPV6);
    lit_ok("[ipv6:2001:db8::1]", ADDR_DOMAIN_IPV6);               /* tag is case-insensitive */
    lit_ok("[IPv6:::]", ADDR_DOMAIN_IPV6);                         /* IPv6-comp, no groups */
    lit_ok("[IPv6:::1]", ADDR_DOMAIN_IPV6);
    lit_ok("[IPv6:1::]", ADDR_DOMAIN_IPV6);
    lit_ok("[IPv6:1:2:3::6:7:8]", ADDR_DOMAIN_IPV6);               /* 6 groups + "::" */
    lit_ok("[IPv6:1:2:3:4:5:6::]", ADDR_DOMAIN_IPV6);
    lit_ok("[IPv6:::3:4:5:6:7:8]", ADDR_DOMAIN_IPV6);
    lit_ok("[IPv6:1:2:3:4:5:6:192.0.2.1]", ADDR_DOMAIN_IPV6);      /* IPv6v4-full */
    lit_ok("[IPv6:::192.0.2.1]", ADDR_DOMAIN_IPV6);                /* IPv6v4-comp */
    lit_ok("[IPv6:::ffff:192.0.2.1]", ADDR_DOMAIN_IPV6);
    lit_ok("[IPv6:1:2::3:4:192.0.2.1]", ADDR_DOMAIN_IPV6);         /* 4 groups + "::" + IPv4 */
    lit_ok("[IPv6:1:2:3:4::192.0.2.1]", ADDR_DOMAIN_IPV6);
    lit_ok("[IPv6:abcd:ef01:2345:6789:ABCD:EF01:2345:6789]", ADDR_DOMAIN_IPV6);

    lit_bad("[IPv6:1:2:3:4:5:6:7]");            /* 7 groups, no "::" */
    lit_bad("[IPv6:1:2:3:4:5:6:7:8:9]");
    lit_bad("[IPv6:1:2:3:4:5:6:7::]");        /* "::" must stand for at least 2 groups */
    lit_bad("[IPv6:::2:3:4:5:6:7:8]");
    lit_bad("[IPv6:1:2:3::5:6:7:8]");
    lit_bad("[IPv6:1::2::3]");                  /* two "::" */
    lit_bad("[IPv6::::1]");
    lit_bad("[IPv6:1:::2]");
    lit_bad("[IPv6::1:2:3:4:5:6:7]");           /* single leading colon */
    lit_bad("[IPv6:1:2:3:4:5:6:7:]");
    lit_bad("[IPv6:12345::1]");                 /* group of 5 digits */
    lit_bad("[IPv6:g::1]");
    lit_bad("[IPv6:]");
    lit_bad("[IPv6:1:2:3:4:5:192.0.2.1]");      /* IPv6v4-full needs 6 groups */
    lit_bad("[IPv6:1:2:3:4:5:6:7:192.0.2.1]");
    lit_bad("[IPv6:1:2:3::4:5:192.0.2.1]");     /* 5 groups + "::" + IPv4 */
    lit_bad("[IPv6:::256.0.0.1]");
    lit_bad("[IPv6:::1.2.3]");
    lit_bad("[IPv6:192.0.2.1::]");              /* IPv4 must come last */
    lit_bad("[IPv6:::192.0.2.1:1]");
    lit_bad("[IPv6:2001:db8::1%eth0]");
    lit_bad("[IPv6:2001:db8::1 ]");
    lit_bad("[2001:db8::1]");                   /* no tag: a General literal with a bad tag */
}
END_TEST

START_TEST(general_literals)
{
    lit_ok("[x-tag:some-content]", ADDR_DOMAIN_GENERAL);
    lit_ok("[tag:!\"#$%&'()*+,-./09;<=>?@AZ^_`az{|}~]", ADDR_DOMAIN_GENERAL);
    lit_ok("[IPv7:1:2]", ADDR_DOMAIN_GENERAL);
    lit_bad("[tag:]");
    lit_bad("[:content]");
    lit_bad("[tag:a b]");
    lit_bad("[tag:a[b]");
    lit_bad("[tag:a\\b]");
    lit_bad("[tag:a]b]");
    lit_bad("[ta.g:x]");
    lit_bad("[-tag:x]");
    lit_bad("[tag-:x]");
    lit_bad("[tag]");
    lit_bad("[tag:\x01]");
    lit_bad("[tag:caf\xc3\xa9]");
}
END_TEST

START_TEST(domains)
{
    char label63[64], label64[65], s[400];
    rep(label63, 'a', 63);
    rep(label64, 'a', 64);
    snprintf(s, sizeof s, "u@%s.com", label63);
    mb_ok(s, false, "u", s + 2, ADDR_DOMAIN_NAME);
    snprintf(s, sizeof s, "u@%s.com", label64);
    mb_bad(s, false);
    snprintf(s, sizeof s, "u@%s", label64);
    mb_bad(s, false);
    mb_ok("u@a-b.example", false, "u", "a-b.example", ADDR_DOMAIN_NAME);
    mb_ok("u@a--b.example", false, "u", "a--b.example", ADDR_DOMAIN_NAME);
    mb_ok("u@localhost", false, "u", "localhost", ADDR_DOMAIN_NAME);
    mb_ok("u@123.example", false, "u", "123.example", ADDR_DOMAIN_NAME);
    /* RFC 5321's sub-domain does not forbid a numeric top-level label */
    mb_ok("u@example.123", false, "u", "example.123", ADDR_DOMAIN_NAME);
    mb_bad("u@-ab.example", false);
    mb_bad("u@ab-.example", false);
    mb_bad("u@example.com-", false);
    mb_bad("u@example.com.", false);
    mb_bad("u@.example.com", false);
    mb_bad("u@example..com", false);
    mb_bad("u@exa_mple.com", false);
    mb_bad("u@exa mple.com", false);
    mb_bad("u@example.com ", false);
    mb_bad("u@example.com>", false);
    mb_bad("u@.", false);
    mb_bad("u@-", false);
    ck_assert(addr_is_domain("example.com", 11, false));
    ck_assert(!addr_is_domain("", 0, false));
    ck_assert(!addr_is_domain("a..b", 4, false));
    ck_assert(!addr_is_domain("b\xc3\xbc" "cher.de", 9, false));
    ck_assert(addr_is_domain("b\xc3\xbc" "cher.de", 9, true));
}
END_TEST

START_TEST(length_limits)
{
    char local[70], dom[300], s[400], out[400];
    struct mailbox m;
    const char *err;
    size_t used;
    bool is_null;

    /* local part: 64 ok, 65 not (quotes count) */
    rep(local, 'l', 64);
    snprintf(s, sizeof s, "%s@x", local);
    mb_ok(s, false, local, "x", ADDR_DOMAIN_NAME);
    rep(local, 'l', 65);
    snprintf(s, sizeof s, "%s@x", local);
    mb_bad(s, false);
    snprintf(s, sizeof s, "\"%s\"@x", rep(local, 'q', 62));
    ck_assert_int_eq(addr_parse_mailbox(s, strlen(s), false, &m, &err), 0);
    snprintf(s, sizeof s, "\"%s\"@x", rep(local, 'q', 63));
    mb_bad(s, false);

    /* domain: 255 ok (labels of 63), 256 not */
    char a63[64], b[64];
    rep(a63, 'a', 63);
    snprintf(dom, sizeof dom, "%s.%s.%s.%s", a63, a63, a63, rep(b, 'b', 63));
    ck_assert_uint_eq(strlen(dom), 255);
    snprintf(s, sizeof s, "u@%s", dom);
    mb_ok(s, false, "u", dom, ADDR_DOMAIN_NAME);
    ck_assert(addr_is_domain(dom, 255, false));
    snprintf(dom, sizeof dom, "%s.%s.%s.%s.c", a63, a63, a63, rep(b, 'b', 62));
    ck_assert_uint_eq(strlen(dom), 256);
    snprintf(s, sizeof s, "u@%s", dom);
    mb_bad(s, false);
    ck_assert(!addr_is_domain(dom, 256, false));
    /* a general literal of 256 octets is also too long */
    dom[0] = '[';
    memcpy(dom + 1, "t:", 2);
    memset(dom + 3, 'x', 252);
    dom[255] = ']';
    dom[256] = '\0';
    snprintf(s, sizeof s, "u@%s", dom);
    mb_bad(s, false);
    dom[254] = ']';
    dom[255] = '\0';
    snprintf(s, sizeof s, "u@%s", dom);
    mb_ok(s, false, "u", dom, ADDR_DOMAIN_GENERAL);

    /* path: 256 octets with the brackets ok, 257 not */
    snprintf(s, sizeof s, "<%s@%s.%s.%s>", rep(local, 'l', 64), a63, a63, rep(b, 'b', 61));
    ck_assert_uint_eq(strlen(s), 256);
    ck_assert_int_eq(addr_parse_path(s, strlen(s), false, false, false, &used, &is_null, &m, &err), 0);
    ck_assert_uint_eq(used, 256);
    ck_assert_int_eq(addr_format(&m, out, sizeof out), 0);
    ck_assert_uint_eq(strlen(out), 254);
    ck_assert_int_eq(addr_format(&m, out, 254), -1);
    ck_assert_int_eq(addr_format(&m, out, 255), 0);
    snprintf(s, sizeof s, "<%s@%s.%s.%s>", local, a63, a63, rep(b, 'b', 62));
    ck_assert_uint_eq(strlen(s), 257);
    err = NULL;
    ck_assert_int_eq(addr_parse_path(s, strlen(s), false, false, false, &used, &is_null, &m, &err), -1);
    ck_assert_ptr_nonnull(err);
    /* a source route counts towards the path length */
    snprintf(s, sizeof s, "<@%s.%s.%s.%s:%s@x>", a63, a63, a63, rep(b, 'r', 56), rep(local, 'l', 2));
    ck_assert_uint_eq(strlen(s), 256);
    ck_assert_int_eq(addr_parse_path(s, strlen(s), false, false, false, &used, &is_null, &m, &err), 0);
    ck_assert_str_eq(m.domain, "x");
    snprintf(s, sizeof s, "<@%s.%s.%s.%s:%s@x>", a63, a63, a63, b, rep(local, 'l', 3));
    ck_assert_uint_eq(strlen(s), 257);
    ck_assert_int_eq(addr_parse_path(s, strlen(s), false, false, false, &used, &is_null, &m, &err), -1);
}
END_TEST

static void path_ok(const char *s, size_t len, bool utf8, bool allow_null, bool allow_pm, size_t consumed,
                    const char *local, const char *domain)
{
    struct mailbox m;
    const char *err = NULL;
    size_t used = 12345;
    bool is_null = true;
    ck_assert_msg(addr_parse_path(s, len, utf8, allow_null, allow_pm, &used, &is_null, &m, &err) == 0,
                  "path \"%s\" rejected: %s", s, err ? err : "?");
    ck_assert_uint_eq(used, consumed);
    ck_assert(!is_null);
    ck_assert_str_eq(m.local, local);
    ck_assert_str_eq(m.domain, domain);
}

static void path_bad(const char *s, bool utf8, bool allow_null, bool allow_pm)
{
    struct mailbox m;
    const char *err = NULL;
    size_t used;
    bool is_null;
    ck_assert_msg(addr_parse_path(s, strlen(s), utf8, allow_null, allow_pm, &used, &is_null, &m, &err) < 0,
                  "path \"%s\" accepted", s);
    ck_assert_msg(err != NULL && *err, "no reason for path \"%s\"", s);
}

START_TEST(paths)
{
    path_ok("<a@b.c>", 7, false, false, false, 7, "a", "b.c");
    /* bytes after '>' are not consumed (they are parameters for the caller) */
    const char *s = "<a@b.c> SIZE=10";
    path_ok(s, strlen(s), false, false, false, 7, "a", "b.c");
    s = "<a@b.c>junk";
    path_ok(s, strlen(s), false, false, false, 7, "a", "b.c");
    /* '>' inside a quoted local part does not end the path */
    s = "<\"a>b\"@c.d> X";
    path_ok(s, strlen(s), false, false, false, 11, "\"a>b\"", "c.d");
    s = "<\"a\\\">b\"@c.d>";
    path_ok(s, strlen(s), false, false, false, strlen(s), "\"a\\\">b\"", "c.d");
    /* len limits what is looked at */
    path_ok("<a@b.c>", 7, false, false, false, 7, "a", "b.c");
    path_bad("<a@b.c", false, true, true);
    {
        struct mailbox m;
        const char *err = NULL;
        size_t used;
        bool is_null;
        ck_assert_int_eq(addr_parse_path("<a@b.c>", 6, false, false, false, &used, &is_null, &m, &err), -1);
        ck_assert_ptr_nonnull(err);
        ck_assert_int_eq(addr_parse_path("", 0, false, true, true, &used, &is_null, &m, &err), -1);
    }
    path_bad("a@b.c", false, true, true);
    path_bad(" <a@b.c>", false, true, true);
    path_bad("<a@b.c >", false, true, true);
    path_bad("< a@b.c>", false, true, true);
    path_bad("<<a@b.c>>", false, true, true);
    path_bad("<a@b.c", false, true, true);
    path_bad("<\"a@b.c>", false, true, true);
}
END_TEST

START_TEST(null_and_postmaster)
{
    struct mailbox m;
    const char *err = NULL;
    size_t used = 0;
    bool is_null = false;
    ck_assert_int_eq(addr_parse_path("<> X", 4, false, true, false, &used, &is_null, &m, &err), 0);
    ck_assert(is_null);
    ck_assert_uint_eq(used, 2);
    ck_assert_str_eq(m.local, "");
    path_bad("<>", false, false, true);
    path_bad("< >", false, true, true);

    const char *pms[] = { "<Postmaster>", "<postmaster>", "<POSTMASTER>", "<PoStMaStEr>" };
    for (size_t i = 0; i < 4; i++) {
        is_null = true;
        ck_assert_int_eq(addr_parse_path(pms[i], 12, false, false, true, &used, &is_null, &m, &err), 0);
        ck_assert(!is_null);
        ck_assert_uint_eq(used, 12);
        ck_assert_int_eq(m.domain_kind, ADDR_DOMAIN_NONE);
        ck_assert_uint_eq(strlen(m.local), 10);
        ck_assert(strncmp(m.local, pms[i] + 1, 10) == 0);
        char out[32];
        ck_assert_int_eq(addr_format(&m, out, sizeof out), 0);
        ck_assert(strncmp(out, pms[i] + 1, 10) == 0 && out[10] == '\0');
        path_bad(pms[i], false, true, false);
    }
    path_bad("<postmasters>", false, true, true);
    path_bad("<postmaste>", false, true, true);
    path_bad("<\"postmaster\">", false, true, true);
    /* with a domain it is an ordinary mailbox, whatever allow_postmaster says */
    path_ok("<postmaster@example.com>", 24, false, false, false, 24, "postmaster", "example.com");
}
END_TEST

START_TEST(source_routes)
{
    const char *s = "<@a.example,@b.example:user@c.example>";
    path_ok(s, strlen(s), false, false, false, strlen(s), "user", "c.example");
    s = "<@a:u@d>";
    path_ok(s, strlen(s), false, false, false, strlen(s), "u", "d");
    path_bad("<@a.example:>", false, true, true);
    path_bad("<@:u@d>", false, false, false);
    path_bad("<@a,:u@d>", false, false, false);
    path_bad("<@a,b:u@d>", false, false, false);
    path_bad("<@a,@b,:u@d>", false, false, false);
    path_bad("<@a..b:u@d>", false, false, false);
    path_bad("<@a u@d>", false, false, false);
    path_bad("<@[1.2.3.4]:u@d>", false, false, false);
    path_bad("<a@b:u@d>", false, false, false);
    path_bad("<@a:postmaster>", false, false, true);
}
END_TEST

START_TEST(utf8_addresses)
{
    const char *s = "j\xc3\xb6rg@b\xc3\xbc" "cher.example";
    struct mailbox m;
    const char *err;
    mb_bad(s, false);
    mb_ok(s, true, "j\xc3\xb6rg", "b\xc3\xbc" "cher.example", ADDR_DOMAIN_NAME);
    ck_assert_int_eq(addr_parse_mailbox(s, strlen(s), true, &m, &err), 0);
    ck_assert(m.utf8);
    ck_assert_int_eq(addr_parse_mailbox("a@b", 3, true, &m, &err), 0);
    ck_assert(!m.utf8);
    /* 3- and 4-octet sequences, at the limits */
    mb_ok("\xe2\x82\xac@x", true, "\xe2\x82\xac", "x", ADDR_DOMAIN_NAME);            /* U+20AC */
    mb_ok("\xf0\x9f\x98\x80@x", true, "\xf0\x9f\x98\x80", "x", ADDR_DOMAIN_NAME);   /* U+1F600 */
    mb_ok("\xc2\x80@x", true, "\xc2\x80", "x", ADDR_DOMAIN_NAME);                    /* U+0080 */
    mb_ok("\xef\xbf\xbf@x", true, "\xef\xbf\xbf", "x", ADDR_DOMAIN_NAME);            /* U+FFFF */
    mb_ok("\xf4\x8f\xbf\xbf@x", true, "\xf4\x8f\xbf\xbf", "x", ADDR_DOMAIN_NAME);    /* U+10FFFF */
    mb_ok("u@\xe4\xbe\x8b.\xe6\xb5\x8b\xe8\xaf\x95", true, "u", "\xe4\xbe\x8b.\xe6\xb5\x8b\xe8\xaf\x95",
          ADDR_DOMAIN_NAME);
    /* malformed: overlongs, surrogates, beyond U+10FFFF, truncated, stray bytes */
    const char *bad[] = {
        "\xc0\xaf@x", "\xc1\xbf@x", "\xe0\x80\xaf@x", "\xe0\x9f\xbf@x", "\xf0\x80\x80\xaf@x",
        "\xf0\x8f\xbf\xbf@x", "\xed\xa0\x80@x", "\xed\xbf\xbf@x", "\xf4\x90\x80\x80@x",
        "\xf5\x80\x80\x80@x", "\xf8\x88\x80\x80\x80@x", "\xff@x", "\xfe@x", "\x80@x", "\xbf@x",
        "\xc3@x", "\xe2\x82@x", "\xf0\x9f\x98@x", "a\xc3", "u@x\xc3", "u@x\xe2\x82",
        "u@\xed\xa0\x80.x", "\"\xc0\xaf\"@x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        mb_bad(bad[i], true);
    ck_assert(addr_utf8_valid("", 0));
    ck_assert(addr_utf8_valid("abc\xc3\xa9", 5));
    ck_assert(!addr_utf8_valid("abc\xc3", 4));
    ck_assert(!addr_utf8_valid("\xed\xa0\x80", 3));
    /* the U-label's octets count towards the 63-octet label limit */
    char dom[80], buf[100];
    memset(dom, 'a', 61);
    memcpy(dom + 61, "\xc3\xa9", 2);
    dom[63] = '\0';
    snprintf(buf, sizeof buf, "u@%s", dom);
    mb_ok(buf, true, "u", dom, ADDR_DOMAIN_NAME);
    memcpy(dom + 61, "\xe2\x82\xac", 3);
    dom[64] = '\0';
    snprintf(buf, sizeof buf, "u@%s", dom);
    mb_bad(buf, true);
    /* UTF-8 is never allowed in an address literal */
    mb_bad("u@[tag:\xc3\xa9]", true);
    /* paths honour the flag too */
    path_bad("<j\xc3\xb6rg@x>", false, true, true);
    path_ok("<j\xc3\xb6rg@x>", 9, true, false, false, 9, "j\xc3\xb6rg", "x");
}
END_TEST

START_TEST(format_round_trip)
{
    const char *in[] = {
        "a@b.c", "\"a b\"@c", "\"a\\\"b\"@c", "x@[192.0.2.1]", "x@[IPv6:2001:db8::1]", "x@[t:y]",
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        struct mailbox m, m2;
        const char *err;
        char out[300];
        ck_assert_int_eq(addr_parse_mailbox(in[i], strlen(in[i]), false, &m, &err), 0);
        ck_assert_int_eq(addr_format(&m, out, sizeof out), 0);
        ck_assert_str_eq(out, in[i]);
        ck_assert_int_eq(addr_parse_mailbox(out, strlen(out), false, &m2, &err), 0);
        ck_assert(memcmp(&m, &m2, sizeof m) == 0);
    }
}
END_TEST

Suite *addr_suite(void)
{
    Suite *s = suite_create("addr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, dot_strings);
    tcase_add_test(tc, quoted_local_parts);
    tcase_add_test(tc, ipv4_literals);
    tcase_add_test(tc, ipv6_literals);
    tcase_add_test(tc, general_literals);
    tcase_add_test(tc, domains);
    tcase_add_test(tc, length_limits);
    tcase_add_test(tc, paths);
    tcase_add_test(tc, null_and_postmaster);
    tcase_add_test(tc, source_routes);
    tcase_add_test(tc, utf8_addresses);
    tcase_add_test(tc, format_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(addr_suite)

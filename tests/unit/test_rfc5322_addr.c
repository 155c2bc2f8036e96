/*
 * test_rfc5322_addr.c — lib/rfc5322_addr.h.
 *
 * Covers: the address fields of RFC 5322 Appendix A (A.1.1-A.1.3, A.2 Reply-To,
 * A.5 comments and folding, A.6.1 and A.6.3 obsolete forms); obs-local-part and
 * obs-domain with CFWS, quoted local parts, source routes, domain literals, groups
 * (empty, several, nested refused, refused in a mailbox-list), empty list
 * elements, comment nesting limit, RFC 6532 UTF-8 with and without the flag,
 * encoded-words kept, the size limits, more mailboxes than the caller stores;
 * every error kind with its position; rfc5322_from_domain's five results.
 */
#include "lib/rfc5322_addr.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

#define CAP 8
static struct rfc5322_mailbox box[CAP];
static struct rfc5322_list list;

static void ok(const char *v, unsigned flags, size_t count, size_t groups)
{
    struct rfc5322_error err;
    int r = rfc5322_parse_address_list(v, strlen(v), flags, box, CAP, &list, &err);
    ck_assert_msg(r == 0, "\"%s\" rejected at %zu: %s", v, err.pos, err.reason);
    ck_assert_msg(list.count == count, "\"%s\": %zu mailboxes, expected %zu", v, list.count,
                  count);
    ck_assert_uint_eq(list.groups, groups);
}

static void is(size_t i, const char *display, const char *local, const char *local_raw,
               const char *domain, bool member)
{
    ck_assert_str_eq(box[i].display, display);
    ck_assert_str_eq(box[i].local, local);
    ck_assert_str_eq(box[i].local_raw, local_raw);
    ck_assert_str_eq(box[i].domain, domain);
    ck_assert_int_eq(box[i].is_group_member, member);
}

static void bad(const char *v, size_t len, unsigned flags, size_t pos, const char *reason_part)
{
    struct rfc5322_error err;
    int r = rfc5322_parse_address_list(v, len, flags, box, CAP, &list, &err);
    ck_assert_msg(r == -1, "\"%s\" accepted", v);
    ck_assert_ptr_nonnull(err.reason);
    ck_assert_msg(strstr(err.reason, reason_part), "\"%s\": reason \"%s\" lacks \"%s\"", v,
                  err.reason, reason_part);
    ck_assert_msg(err.pos == pos, "\"%s\": error at %zu, expected %zu (%s)", v, err.pos, pos,
                  err.reason);
}

#define BAD(v, pos, why) bad(v, sizeof(v) - 1, 0, pos, why)

START_TEST(appendix_a_1)
{
    ok("John Doe <jdoe@machine.example>", 0, 1, 0);
    is(0, "John Doe", "jdoe", "jdoe", "machine.example", false);
    ok("Michael Jones <mjones@machine.example>", 0, 1, 0);
    ok("\"Joe Q. Public\" <john.q.public@example.com>", 0, 1, 0);
    is(0, "\"Joe Q. Public\"", "john.q.public", "john.q.public", "example.com", false);
    ok("Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>", 0, 3, 0);
    is(0, "Mary Smith", "mary", "mary", "x.test", false);
    is(1, "", "jdoe", "jdoe", "example.org", false);
    is(2, "Who?", "one", "one", "y.test", false);
    ck_assert_uint_eq(box[1].pos, 26);
    ok("<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>", 0, 2, 0);
    is(0, "", "boss", "boss", "nil.test", false);
    is(1, "\"Giant; \\\"Big\\\" Box\"", "sysservices", "sysservices", "example.net", false);
    ok("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;", 0, 3, 1);
    is(0, "Ed Jones", "c", "c", "a.test", true);
    is(1, "", "joe", "joe", "where.test", true);
    is(2, "John", "jdoe", "jdoe", "one.test", true);
    ck_assert_uint_eq(box[2].group, 0);
    ok("Undisclosed recipients:;", 0, 0, 1);
    /* A.2: a quoted display name with ':' is not a group */
    ok("\"Mary Smith: Personal Account\" <smith@home.example>", 0, 1, 0);
    is(0, "\"Mary Smith: Personal Account\"", "smith", "smith", "home.example", false);
}
END_TEST

START_TEST(appendix_a_5_comments)
{
    ok("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", 0, 1, 0);
    is(0, "Pete", "pete", "pete", "silly.test", false);
    ok("A Group(Some people)     :Chris Jones <c@(Chris's host.)public.example>,"
       "         joe@example.org,  John <jdoe@one.test> (my dear friend); (the end of the group)",
       0, 3, 1);
    is(0, "Chris Jones", "c", "c", "public.example", true);
    is(1, "", "joe", "joe", "example.org", true);
    is(2, "John", "jdoe", "jdoe", "one.test", true);
    ok("(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;", 0, 0, 1);
    /* inner comments of a display name stay in it, outer ones do not */
    ok("(c0) Jo (c1) Bo (c2) <jb@x.test>", 0, 1, 0);
    is(0, "Jo (c1) Bo", "jb", "jb", "x.test", false);
}
END_TEST

START_TEST(appendix_a_6_obsolete)
{
    ok("Joe Q. Public <john.q.public@example.com>", 0, 1, 0);
    is(0, "Joe Q. Public", "john.q.public", "john.q.public", "example.com", false);
    ok("Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example", 0, 2, 0);
    is(0, "Mary Smith", "mary", "mary", "example.net", false);
    is(1, "", "jdoe", "jdoe", "test.example", false);
    ok("John Doe <jdoe@machine(comment).  example>", 0, 1, 0);
    is(0, "John Doe", "jdoe", "jdoe", "machine.example", false);
    ok("Mary Smith            <mary@example.net>", 0, 1, 0);
    ok("Mary Smith\r\n  \r\n          <mary@example.net>", 0, 1, 0);    /* still folded */
    is(0, "Mary Smith", "mary", "mary", "example.net", false);
    /* obs-local-part: CFWS around the dots, quoted words */
    ok("john . q (middle) . \"public\"@Example.COM", 0, 1, 0);
    is(0, "", "john.q.public", "john.q.\"public\"", "Example.COM", false);
    ck_assert_str_eq(box[0].domain_lower, "example.com");
    /* routes with several hops and leading commas */
    ok("<@r1.test,@r2.test:u@x.test>, <,@r1.test,,@r2.test:v@x.test>", 0, 2, 0);
    is(0, "", "u", "u", "x.test", false);
    is(1, "", "v", "v", "x.test", false);
    /* empty list elements anywhere */
    ok(",a@b.test,, ,c@d.test,", 0, 2, 0);
    ok("G: , a@b.test,, ;", 0, 1, 1);
}
END_TEST

START_TEST(local_parts_and_domains)
{
    ok("\"a\\\"b c\"@x.test", 0, 1, 0);
    is(0, "", "a\"b c", "\"a\\\"b c\"", "x.test", false);
    ok("\"\"@x.test", 0, 1, 0);
    is(0, "", "", "\"\"", "x.test", false);
    ok("first.last+tag@Sub.Example.ORG", 0, 1, 0);
    ck_assert_str_eq(box[0].domain_lower, "sub.example.org");
    ok("u@[192.0.2.1], v@[IPv6:2001:db8::1], w@[ a \\] ]", 0, 3, 0);
    is(0, "", "u", "u", "[192.0.2.1]", false);
    ck_assert(box[0].domain_literal);
    ck_assert_str_eq(box[1].domain, "[IPv6:2001:db8::1]");
    ck_assert_str_eq(box[2].domain, "[ a \\] ]");
    ck_assert(!box[1].is_group_member && box[1].domain_literal);
}
END_TEST

START_TEST(groups)
{
    ok("G1: a@b.test;, c@d.test, G2: e@f.test, g@h.test; (end)", 0, 4, 2);
    is(0, "", "a", "a", "b.test", true);
    ck_assert_uint_eq(box[0].group, 0);
    is(1, "", "c", "c", "d.test", false);
    is(2, "", "e", "e", "f.test", true);
    ck_assert_uint_eq(box[2].group, 1);
    ck_assert_uint_eq(box[3].group, 1);
    ok("undisclosed-recipients:;", 0, 0, 1);
    ok("Team: a@b.test, Jo <c@d.test>;", 0, 2, 1);
    is(1, "Jo", "c", "c", "d.test", true);
    BAD("G: a@b.test", 0, "not closed with ';'");
    BAD("G: a@b.test c@d.test;", 12, "separated by ','");
    BAD("G: H: a@b.test;;", 4, "inside another group");
    bad("G:;", 3, RFC5322_NO_GROUPS, 1, "not allowed");
    ok("a@b.test, c@d.test", RFC5322_NO_GROUPS, 2, 0);
}
END_TEST

START_TEST(utf8_and_encoded_words)
{
    static const char v[] = "J\xc3\xb6" "e <j\xc3\xb6" "e@ex\xc3\xa4mple.test>";
    ok(v, RFC5322_UTF8, 1, 0);
    is(0, "J\xc3\xb6" "e", "j\xc3\xb6" "e", "j\xc3\xb6" "e", "ex\xc3\xa4mple.test", false);
    bad(v, sizeof v - 1, 0, 1, "8-bit");
    ok("\"J\xc3\xb6" "e (\xc3\xa9)\" (\xc3\xa9t\xc3\xa9) <u@[\xc3\xa9]>", RFC5322_UTF8, 1, 0);
    bad("\"J\xc3\xb6" "e\" <u@x.test>", 13, 0, 2, "8-bit");
    /* not well-formed UTF-8: overlong, surrogate, truncated, lone continuation */
    bad("\xc0\xafu@x.test", 9, RFC5322_UTF8, 0, "8-bit");
    bad("u@\xed\xa0\x80.test", 10, RFC5322_UTF8, 2, "8-bit");
    bad("Jo\xc3 <u@x.test>", 14, RFC5322_UTF8, 2, "8-bit");
    bad("(\x80) u@x.test", 12, RFC5322_UTF8, 1, "8-bit");
    ok("=?utf-8?q?J=C3=B6e?= =?utf-8?b?w7Y=?= <j@x.test>", 0, 1, 0);
    is(0, "=?utf-8?q?J=C3=B6e?= =?utf-8?b?w7Y=?=", "j", "j", "x.test", false);
    ck_assert_str_eq(box[0].domain_lower, "x.test");
    static const char up[] = "u@\xc3\x89X.Test";
    ok(up, RFC5322_UTF8, 1, 0);
    ck_assert_str_eq(box[0].domain_lower, "\xc3\x89x.test");
}
END_TEST

START_TEST(comments_nesting)
{
    char v[128];
    size_t n = 0;
    for (int i = 0; i < RFC5322_COMMENT_DEPTH_MAX; i++)
        v[n++] = '(';
    for (int i = 0; i < RFC5322_COMMENT_DEPTH_MAX; i++)
        v[n++] = ')';
    memcpy(v + n, "u@x.test", 9);
    ok(v, 0, 1, 0);
    n = 0;
    for (int i = 0; i <= RFC5322_COMMENT_DEPTH_MAX; i++)
        v[n++] = '(';
    for (int i = 0; i <= RFC5322_COMMENT_DEPTH_MAX; i++)
        v[n++] = ')';
    memcpy(v + n, "u@x.test", 9);
    bad(v, strlen(v), 0, RFC5322_COMMENT_DEPTH_MAX, "too deeply");
    ok("u@x.test (a \\( b (c \\) d) \\\\)", 0, 1, 0);
    ok("a@b.test,\r\n c@d.test", 0, 2, 0);
}
END_TEST

START_TEST(errors_name_the_position)
{
    BAD("", 0, "empty");
    BAD(" , ,(x) ", 8, "empty");
    BAD("john", 0, "no '@'");
    BAD("Undisclosed recipients", 0, "no '@'");
    BAD("a@b.test c@d.test", 9, "separated by ','");
    BAD("<a@b.test", 0, "not closed with '>'");
    BAD("<a@b.test x", 10, "not closed with '>'");
    BAD("<>", 1, "empty");
    BAD("Jo <>", 4, "empty");
    BAD("a@", 2, "domain is missing");
    BAD("a@b.", 4, "ends with '.'");
    BAD("a@b..c", 4, "ends with '.'");
    BAD("a..b@c", 2, "empty word");
    BAD(".a@b", 0, "empty word");
    BAD("a.@b", 2, "ends with '.'");
    BAD("@b", 0, "empty local part");
    BAD("john doe@x.test", 5, "separated by '.'");
    BAD(". Jo <a@b>", 0, "starts with '.'");
    BAD("(unclosed u@x", 0, "comment is not closed");
    BAD("\"unclosed@x", 0, "quoted string is not closed");
    BAD("u@[1.2.3.4", 2, "not closed with ']'");
    BAD("a@b)", 3, "')' without");
    BAD("a@b]", 3, "']' without");
    BAD("a\\b@c", 1, "backslash outside");
    BAD("\"a\\", 2, "backslash ends");
    BAD("a@b\rc", 3, "not allowed in an address");
    BAD("a@b\r\nc", 3, "not allowed in an address");
    BAD("\"a\r\nb\"@c", 2, "CR or LF");
    BAD("u@x\0", 3, "not allowed");
    BAD("\"a\\\0\"@x", 3, "NUL");    /* found by fuzzing: a quoted NUL cut the C strings */
    BAD("<@r.test u@x>", 9, "source route");
    BAD("<@:u@x>", 2, "domain is missing");
    BAD(": a@b;", 0, "address is expected");
    BAD("a@b, <", 6, "ends before");
    BAD("<@r.test:>", 9, "empty local part");
    BAD("Jo <a.>", 6, "ends with '.'");
    BAD("<a:b@c>", 2, "must be followed");    /* found by fuzzing: ':' taken for '.' */
    BAD("<@r.test:de.test:u@x>", 16, "must be followed");
    BAD("a@b;", 3, "separated by ','");
}
END_TEST

START_TEST(limits)
{
    char v[1200];
    memset(v, 'l', 256);
    memcpy(v + 256, "@x.test", 8);
    ok(v, 0, 1, 0);
    ck_assert_uint_eq(strlen(box[0].local), 256);
    memset(v, 'l', 257);
    memcpy(v + 257, "@x.test", 8);
    bad(v, strlen(v), 0, 0, "longer than 256");
    memcpy(v, "u@", 2);
    for (size_t i = 2; i < 2 + 255; i++)
        v[i] = (i % 10 == 0) ? '.' : 'd';
    v[2 + 255] = '\0';
    ok(v, 0, 1, 0);
    ck_assert_uint_eq(strlen(box[0].domain), 255);
    v[2 + 255] = 'd';
    v[2 + 256] = '\0';
    bad(v, strlen(v), 0, 251, "longer than 255");   /* the label that overflows */
    memset(v, 'n', 600);
    memcpy(v + 600, " <u@x.test>", 12);
    ok(v, 0, 1, 0);
    ck_assert_uint_eq(strlen(box[0].display), RFC5322_DISPLAY_MAX);
    ck_assert(box[0].display_truncated);

    /* more mailboxes than the caller stores: counted, the first CAP kept */
    size_t n = 0;
    for (int i = 0; i < 20; i++)
        n += (size_t)snprintf(v + n, sizeof v - n, "u%d@x.test, ", i);
    ok(v, 0, 20, 0);
    ck_assert_str_eq(box[CAP - 1].local, "u7");
    struct rfc5322_error err;
    ck_assert_int_eq(rfc5322_parse_address_list(v, n, 0, NULL, 0, &list, &err), 0);
    ck_assert_uint_eq(list.count, 20);
}
END_TEST

static void from(const char *v, unsigned flags, enum rfc5322_from_result want, const char *dom)
{
    char out[RFC5322_DOMAIN_MAX + 1];
    struct rfc5322_error err = {0, NULL};
    enum rfc5322_from_result r = rfc5322_from_domain(v, strlen(v), flags, out, sizeof out, &err);
    ck_assert_msg(r == want, "\"%s\": result %d, expected %d (%s)", v, r, want,
                  err.reason ? err.reason : "");
    if (want == RFC5322_FROM_OK)
        ck_assert_str_eq(out, dom);
    else
        ck_assert_ptr_nonnull(err.reason);
}

START_TEST(from_domain)
{
    from("John Doe <jdoe@Machine.Example>", 0, RFC5322_FROM_OK, "machine.example");
    from("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", 0, RFC5322_FROM_OK,
         "silly.test");
    from("jdoe@test  . EXAMPLE", 0, RFC5322_FROM_OK, "test.example");
    from("G: a@x.test;", RFC5322_NO_GROUPS, RFC5322_FROM_OK, "x.test");    /* RFC 6854 */
    from("u@\xc3\x89X.test", RFC5322_UTF8, RFC5322_FROM_OK, "\xc3\x89x.test");
    from("a@x.test, b@x.test", 0, RFC5322_FROM_SEVERAL, NULL);
    from("a@x.test, b@y.test", 0, RFC5322_FROM_SEVERAL, NULL);
    from("G: a@x.test, b@x.test;", 0, RFC5322_FROM_SEVERAL, NULL);
    from("Undisclosed recipients:;", 0, RFC5322_FROM_NONE, NULL);
    from("u@[192.0.2.1]", 0, RFC5322_FROM_LITERAL, NULL);
    from("John Doe", 0, RFC5322_FROM_SYNTAX, NULL);
    from("", 0, RFC5322_FROM_SYNTAX, NULL);
    from("u@\xc3\x89X.test", 0, RFC5322_FROM_SYNTAX, NULL);
    char small[4];
    struct rfc5322_error err;
    ck_assert_int_eq(rfc5322_from_domain("u@x.test", 8, 0, small, sizeof small, &err),
                     RFC5322_FROM_SYNTAX);
    ck_assert_str_eq(small, "");
}
END_TEST

Suite *rfc5322_addr_suite(void)
{
    Suite *s = suite_create("rfc5322_addr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, appendix_a_1);
    tcase_add_test(tc, appendix_a_5_comments);
    tcase_add_test(tc, appendix_a_6_obsolete);
    tcase_add_test(tc, local_parts_and_domains);
    tcase_add_test(tc, groups);
    tcase_add_test(tc, utf8_and_encoded_words);
    tcase_add_test(tc, comments_nesting);
    tcase_add_test(tc, errors_name_the_position);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, from_domain);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(rfc5322_addr_suite)

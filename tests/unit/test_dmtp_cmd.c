/* Unit tests for pull/dmtp_cmd: DMTP command lines, MAIL parameter, subject text,
   formatters and replies, fed raw bytes. */
#include "pull/dmtp_cmd.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

static struct dmtp_cmd c;
static struct dmtp_reply e;

static int parse(const char *s)
{
    return dmtp_cmd_parse(s, strlen(s), false, &c, &e);
}

START_TEST(msid_forms)
{
    ck_assert_int_eq(parse("MSID abc123 Hello  world"), 0);
    ck_assert_int_eq(c.verb, DMTP_VERB_MSID);
    ck_assert(!c.draft00);
    ck_assert_str_eq(c.msid, "abc123");
    ck_assert_str_eq(c.subject, "Hello world");
    ck_assert_int_eq(parse("msid X-1"), 0);                 /* case-insensitive, no subject */
    ck_assert_str_eq(c.msid, "X-1");
    ck_assert_str_eq(c.subject, "");
    ck_assert_int_eq(parse("MSID:abc Sub"), 0);             /* -00 */
    ck_assert(c.draft00);
    ck_assert_str_eq(c.msid, "abc");
    ck_assert_str_eq(c.subject, "Sub");
    ck_assert_int_eq(parse("MSID: abc"), 0);                /* -00 with a blank after the colon */
    ck_assert_str_eq(c.msid, "abc");
}
END_TEST

START_TEST(msid_errors)
{
    ck_assert_int_eq(parse("MSID"), -1);
    ck_assert_int_eq(parse("MSID "), -1);
    ck_assert_int_eq(e.code, 501);
    ck_assert_int_eq(parse("MSIDabc"), -1);
    ck_assert_int_eq(parse("MSID a<b"), -1);
    ck_assert_str_eq(e.enhanced, "5.5.4");
    char id[DMTP_MSID_MAX + 2];
    memset(id, 'a', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    char line[300];
    snprintf(line, sizeof line, "MSID %s", id);
    ck_assert_int_eq(parse(line), -1);                      /* 129 octets */
    line[strlen(line) - 1] = '\0';
    ck_assert_int_eq(parse(line), 0);                       /* 128 */
    ck_assert_int_eq(dmtp_cmd_parse("MSID a\rb", 8, false, &c, &e), -1);
    ck_assert_int_eq(dmtp_cmd_parse("MSID a\0b", 8, false, &c, &e), -1);
    char big[600];
    memset(big, 'x', sizeof big);
    memcpy(big, "MSID a ", 7);
    ck_assert_int_eq(dmtp_cmd_parse(big, sizeof big, false, &c, &e), -1);
    ck_assert_int_eq(e.code, 500);
}
END_TEST

START_TEST(gtml_forms)
{
    ck_assert_int_eq(parse("GTML id1 bob@example.org"), 0);
    ck_assert_int_eq(c.verb, DMTP_VERB_GTML);
    ck_assert_str_eq(c.receiver_text, "bob@example.org");
    ck_assert_int_eq(parse("gtml id1 <Bob@Example.org>  "), 0);
    ck_assert_str_eq(c.receiver_text, "Bob@Example.org");
    ck_assert_int_eq(parse("GTML:id1 bob@example.org"), 0);
    ck_assert(c.draft00);
    ck_assert_int_eq(parse("GTML id1"), -1);
    ck_assert_int_eq(parse("GTML id1 bob"), -1);
    ck_assert_int_eq(parse("GTML id1 <bob@example.org> extra"), -1);
    ck_assert_int_eq(parse("GTML id1 b\xc3\xa9@example.org"), -1);  /* UTF-8 needs SMTPUTF8 */
    const char *u = "GTML id1 b\xc3\xa9@example.org";
    ck_assert_int_eq(dmtp_cmd_parse(u, strlen(u), true, &c, &e), 0);
}
END_TEST

START_TEST(verb_detect)
{
    ck_assert_int_eq(dmtp_cmd_verb("MSID x", 6), DMTP_VERB_MSID);
    ck_assert_int_eq(dmtp_cmd_verb("GTML:x", 6), DMTP_VERB_GTML);
    ck_assert_int_eq(dmtp_cmd_verb("MAIL FROM:<>", 12), DMTP_VERB_NONE);
    ck_assert_int_eq(dmtp_cmd_verb("MSIDX", 5), DMTP_VERB_NONE);
    ck_assert_int_eq(dmtp_cmd_verb("MSI", 3), DMTP_VERB_NONE);
}
END_TEST

START_TEST(mail_param)
{
    ck_assert_int_eq(dmtp_mail_param("DMTP", NULL, &e), 1);
    ck_assert_int_eq(dmtp_mail_param("dmtp", NULL, &e), 1);
    ck_assert_int_eq(dmtp_mail_param("SIZE", "10", &e), 0);
    ck_assert_int_eq(dmtp_mail_param("DMTP", "yes", &e), -1);
    ck_assert_int_eq(e.code, 501);
}
END_TEST

START_TEST(subject_clean)
{
    char out[DMTP_SUBJECT_MAX + 1];
    ck_assert_uint_eq(dmtp_subject_clean("  a\r\nb\tc\x01  ", 11, false, out, sizeof out), 5);
    ck_assert_str_eq(out, "a b c");
    /* valid UTF-8 kept, invalid octets become '?' */
    dmtp_subject_clean("caf\xc3\xa9 \xff\xc0\xaf", 9, false, out, sizeof out);
    ck_assert_str_eq(out, "caf\xc3\xa9 ???");
    dmtp_subject_clean("caf\xc3\xa9", 5, true, out, sizeof out);
    ck_assert_str_eq(out, "caf?");
    /* cap at 200 octets, never splitting a character */
    char in[600];
    memset(in, 'x', 199);
    memcpy(in + 199, "\xc3\xa9\xc3\xa9", 4);
    ck_assert_uint_eq(dmtp_subject_clean(in, 203, false, out, sizeof out), 199);
    char small[5];
    ck_assert_uint_eq(dmtp_subject_clean("abcdefgh", 8, false, small, sizeof small), 4);
    ck_assert_str_eq(small, "abcd");
}
END_TEST

START_TEST(formatters)
{
    char out[DMTP_LINE_MAX + 1];
    ck_assert_int_gt(dmtp_format_msid(out, sizeof out, "ID-1", "Hi\r\nthere", false), 0);
    ck_assert_str_eq(out, "MSID ID-1 Hi there\r\n");
    ck_assert_int_gt(dmtp_format_msid(out, sizeof out, "ID-1", "", false), 0);
    ck_assert_str_eq(out, "MSID ID-1\r\n");
    ck_assert_int_gt(dmtp_format_msid(out, sizeof out, "ID-1", "\xc3\xa9t\xc3\xa9", true), 0);
    ck_assert_str_eq(out, "MSID ID-1 ?t?\r\n");
    ck_assert_int_eq(dmtp_format_msid(out, sizeof out, "bad id", NULL, false), -1);
    ck_assert_int_gt(dmtp_format_gtml(out, sizeof out, "ID-1", "bob@example.org"), 0);
    ck_assert_str_eq(out, "GTML ID-1 bob@example.org\r\n");
    ck_assert_int_eq(dmtp_format_gtml(out, sizeof out, "ID-1", "bob"), -1);
    ck_assert_int_eq(dmtp_format_gtml(out, 10, "ID-1", "bob@example.org"), -1);
    /* what we format, we parse back */
    ck_assert_int_gt(dmtp_format_msid(out, sizeof out, "ID-1", "Hello", false), 0);
    ck_assert_int_eq(dmtp_cmd_parse(out, strlen(out) - 2, false, &c, &e), 0);
    ck_assert_str_eq(c.subject, "Hello");
}
END_TEST

START_TEST(ehlo_and_replies)
{
    ck_assert_str_eq(dmtp_ehlo_keywords[0], "MSID");
    ck_assert_str_eq(dmtp_ehlo_keywords[1], "GTML");
    ck_assert_ptr_null(dmtp_ehlo_keywords[2]);
    ck_assert(dmtp_ehlo_line_offers_msid("MSID", 4));
    ck_assert(dmtp_ehlo_line_offers_msid("msid x", 6));
    ck_assert(!dmtp_ehlo_line_offers_msid("MSIDX", 5));
    ck_assert(!dmtp_ehlo_line_offers_msid("SIZE 100", 8));
    ck_assert(dmtp_reply_wants_msid(253));
    ck_assert(!dmtp_reply_wants_msid(250));
    char out[128];
    ck_assert_int_gt(dmtp_reply_format(dmtp_reply(DMTP_R_DENIED), out, sizeof out), 0);
    ck_assert_str_eq(out, "550 5.7.1 DENIED: no mail from this host; only GTML is served to it\r\n");
    ck_assert_int_gt(dmtp_reply_format(dmtp_reply(DMTP_R_DATA_REFUSED), out, sizeof out), 0);
    ck_assert_str_eq(out, "503 5.5.1 DATA not accepted from this sender, use MSID\r\n");
    for (int i = 0; i < DMTP_R_COUNT; i++) {
        const struct dmtp_reply *r = dmtp_reply((enum dmtp_reply_id)i);
        ck_assert_int_ge(r->code, 250);
        ck_assert_int_eq(r->enhanced[0] - '0', r->code / 100);
    }
    ck_assert_int_eq(dmtp_reply_format(dmtp_reply(DMTP_R_DENIED), out, 5), -1);
}
END_TEST

static Suite *dmtp_cmd_suite(void)
{
    Suite *s = suite_create("dmtp_cmd");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, msid_forms);
    tcase_add_test(tc, msid_errors);
    tcase_add_test(tc, gtml_forms);
    tcase_add_test(tc, verb_detect);
    tcase_add_test(tc, mail_param);
    tcase_add_test(tc, subject_clean);
    tcase_add_test(tc, formatters);
    tcase_add_test(tc, ehlo_and_replies);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(dmtp_cmd_suite)

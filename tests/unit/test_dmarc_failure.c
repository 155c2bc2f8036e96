/*
 * test_dmarc_failure.c — auth/dmarc_failure.h: fo= parsing; the send decision for
 * every fo option against SPF/DKIM outcomes, and never for psd=y; the ARF report's
 * required fields, the header copy without the body, redaction (no local part
 * left, one tag per local part), and the per-destination hourly limit.
 */
#include "auth/dmarc_failure.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

static struct dmarc_failure_outcome oc(bool spf_al, bool dkim_al, bool spf_failed, bool dkim_failed)
{
    struct dmarc_failure_outcome o = { .spf_aligned_pass = spf_al, .dkim_aligned_pass = dkim_al,
                                       .spf_failed = spf_failed, .dkim_failed = dkim_failed };
    return o;
}

START_TEST(fo_decisions)
{
    struct dmarc_fo fo;
    struct dmarc_failure_outcome both_fail = oc(false, false, true, true), spf_only = oc(true, false, false, true),
                                 all_pass = oc(true, true, false, false), dkim_bad_unaligned = oc(true, true, false, true),
                                 spf_bad_unaligned = oc(false, true, true, false);
    dmarc_fo_parse(NULL, &fo);                   /* absent: 0 */
    ck_assert(fo.any_fail && !fo.one_fail && !fo.dkim && !fo.spf);
    ck_assert(dmarc_failure_wanted(&fo, &both_fail));
    ck_assert(!dmarc_failure_wanted(&fo, &spf_only));
    ck_assert(!dmarc_failure_wanted(&fo, &all_pass));
    dmarc_fo_parse("1", &fo);
    ck_assert(dmarc_failure_wanted(&fo, &both_fail));
    ck_assert(dmarc_failure_wanted(&fo, &spf_only));
    ck_assert(!dmarc_failure_wanted(&fo, &all_pass));
    ck_assert(!dmarc_failure_wanted(&fo, &dkim_bad_unaligned));
    dmarc_fo_parse("d", &fo);
    ck_assert(!fo.any_fail);
    ck_assert(dmarc_failure_wanted(&fo, &dkim_bad_unaligned));
    ck_assert(!dmarc_failure_wanted(&fo, &spf_bad_unaligned));
    dmarc_fo_parse("s", &fo);
    ck_assert(dmarc_failure_wanted(&fo, &spf_bad_unaligned));
    ck_assert(!dmarc_failure_wanted(&fo, &dkim_bad_unaligned));
    dmarc_fo_parse(" d : s ", &fo);
    ck_assert(fo.dkim && fo.spf && !fo.any_fail);
    dmarc_fo_parse("x:y", &fo);                  /* nothing known: the default */
    ck_assert(fo.any_fail);
    dmarc_fo_parse("0:1:d:s", &fo);
    struct dmarc_failure_outcome psd = both_fail;
    psd.psd = true;
    ck_assert(!dmarc_failure_wanted(&fo, &psd));
}
END_TEST

static const char msg[] = "Received: from x\r\nFrom: Alice Smith <alice.smith@example.com>\r\n"
                          "To: bob@ferry.test, alice.smith@example.com\r\nSubject: hi\r\n\r\nSECRET BODY\r\n";

static void build(bool redact, struct buf *b)
{
    struct dmarc_failure_report r = {
        .reporter = "mx.ferry.test", .from = "dmarc-noreply@ferry.test", .to = "ruf@example.com",
        .authserv_id = "mx.ferry.test", .policy_domain = "example.com", .header_from = "example.com",
        .source_ip = "192.0.2.66", .mail_from = "alice.smith@example.com", .dkim_domain = "example.com",
        .dkim_selector = "s1", .delivery = "reject", .outcome = oc(false, false, true, true),
        .arrival = 1700000000, .now = 1700000100, .msg_id_seed = "seed1", .redact = redact, .salt = "fixed",
    };
    char err[256];
    buf_init(b, 1 << 20);
    ck_assert_msg(dmarc_failure_build(&r, msg, strlen(msg), b, err, sizeof err) == 0, "%s", err);
}

START_TEST(report_fields_and_redaction)
{
    struct buf b;
    build(false, &b);
    const char *need[] = { "Content-Type: multipart/report; report-type=feedback-report;",
                           "Content-Type: message/feedback-report\r\n", "Feedback-Type: auth-failure\r\n",
                           "Auth-Failure: dmarc\r\n", "Identity-Alignment: dkim, spf\r\n", "DKIM-Domain: example.com\r\n",
                           "DKIM-Selector: s1\r\n", "Source-IP: 192.0.2.66\r\n", "Reported-Domain: example.com\r\n",
                           "Delivery-Result: reject\r\n", "Content-Type: text/rfc822-headers\r\n",
                           "Original-Mail-From: <alice.smith@example.com>\r\n", "Subject: hi\r\n" };
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        ck_assert_msg(strstr(b.data, need[i]), "missing %s", need[i]);
    ck_assert_ptr_null(strstr(b.data, "SECRET BODY"));
    buf_free(&b);

    build(true, &b);
    ck_assert_ptr_null(strstr(b.data, "alice"));
    ck_assert_ptr_null(strstr(b.data, "bob@"));
    ck_assert_ptr_nonnull(strstr(b.data, "@example.com"));       /* domains stay */
    /* one local part, one tag, wherever it appears */
    const char *from = strstr(b.data, "Original-Mail-From: <");
    ck_assert_ptr_nonnull(from);
    char tag[9];
    memcpy(tag, from + 21, 8);
    tag[8] = '\0';
    char want[64];
    snprintf(want, sizeof want, "<%s@example.com>\r\nTo:", tag);
    ck_assert_msg(strstr(b.data, want), "tag %s not used in From:", tag);
    snprintf(want, sizeof want, ", %s@example.com\r\n", tag);
    ck_assert_msg(strstr(b.data, want), "tag %s not used in To:", tag);
    ck_assert_ptr_null(strstr(b.data, "SECRET BODY"));
    buf_free(&b);
}
END_TEST

START_TEST(rate_limit_per_destination)
{
    struct ratelimit *rl = dmarc_failure_limiter(3);
    for (int i = 0; i < 3; i++)
        ck_assert(dmarc_failure_allow(rl, "ruf@example.com", 1000.0));
    ck_assert(!dmarc_failure_allow(rl, "RUF@example.com", 1000.0));   /* same destination, any case */
    ck_assert(dmarc_failure_allow(rl, "other@example.com", 1000.0));
    ck_assert(dmarc_failure_allow(rl, "ruf@example.com", 1000.0 + 1200.0 + 1));   /* a third of an hour drained one */
    ratelimit_free(rl);
}
END_TEST

Suite *dmarc_failure_suite(void)
{
    Suite *s = suite_create("dmarc_failure");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, fo_decisions);
    tcase_add_test(tc, report_fields_and_redaction);
    tcase_add_test(tc, rate_limit_per_destination);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(dmarc_failure_suite)

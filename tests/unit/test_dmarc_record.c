/*
 * Unit tests of auth/dmarc_record: RFC 9989 §4.7/§4.8 records fed as raw bytes,
 * every malformed case and the §4.10.1 fallback for bad policies.
 */
#include "auth/dmarc_record.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

static enum dmarc_record_status parse(const char *s, struct dmarc_record *r)
{
    return dmarc_record_parse(s, strlen(s), r);
}

START_TEST(version_must_be_first)
{
    struct dmarc_record r;
    ck_assert_int_eq(parse("v=DMARC1", &r), DMARC_REC_OK);
    ck_assert_int_eq(parse("v=DMARC1;", &r), DMARC_REC_OK);
    ck_assert_int_eq(parse("v = DMARC1 ; p=reject", &r), DMARC_REC_OK);
    ck_assert_int_eq(r.p, DMARC_P_REJECT);
    ck_assert_int_eq(parse("p=reject; v=DMARC1", &r), DMARC_REC_NOT_DMARC);
    ck_assert_int_eq(parse("v=dmarc1; p=reject", &r), DMARC_REC_NOT_DMARC);   /* case sensitive */
    ck_assert_int_eq(parse("V=DMARC1; p=reject", &r), DMARC_REC_NOT_DMARC);
    ck_assert_int_eq(parse("v=DMARC10; p=reject", &r), DMARC_REC_NOT_DMARC);
    ck_assert_int_eq(parse("v=DMARC1x", &r), DMARC_REC_NOT_DMARC);
    ck_assert_int_eq(parse("v=DMARC2; p=reject", &r), DMARC_REC_NOT_DMARC);
    ck_assert_int_eq(parse("v=spf1 -all", &r), DMARC_REC_NOT_DMARC);
    ck_assert_int_eq(parse("", &r), DMARC_REC_NOT_DMARC);
    ck_assert_int_eq(parse("v=", &r), DMARC_REC_NOT_DMARC);
    ck_assert(dmarc_record_is_dmarc("v=DMARC1; p=none", 16));
    ck_assert(!dmarc_record_is_dmarc("v=DMARC1p=none", 14));
    /* NUL inside the version */
    ck_assert_int_eq(dmarc_record_parse("v=DMA\0RC1", 9, &r), DMARC_REC_NOT_DMARC);
}
END_TEST

START_TEST(defaults)
{
    struct dmarc_record r;
    ck_assert_int_eq(parse("v=DMARC1", &r), DMARC_REC_OK);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_OK);
    ck_assert_int_eq(r.p, DMARC_P_NONE);          /* no p: treated as p=none (§4.7) */
    ck_assert(!r.has_p);
    ck_assert_int_eq(r.sp, DMARC_P_NONE);
    ck_assert_int_eq(r.adkim, DMARC_ALIGN_RELAXED);
    ck_assert_int_eq(r.aspf, DMARC_ALIGN_RELAXED);
    ck_assert_int_eq(r.psd, DMARC_PSD_U);
    ck_assert(!r.testing);
    ck_assert_uint_eq(r.fo, DMARC_FO_0);
    ck_assert_uint_eq(r.nrua, 0);
    ck_assert_str_eq(r.notes, "");
}
END_TEST

START_TEST(all_tags)
{
    struct dmarc_record r;
    ck_assert_int_eq(parse("v=DMARC1; p=quarantine; sp=reject; np=none; psd=n; t=y; adkim=s; aspf=s; "
                           "rua=mailto:agg@example.com,mailto:agg2@example.net!10m; "
                           "ruf=mailto:f@example.com!20; fo=d:1:s", &r), DMARC_REC_OK);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_OK);
    ck_assert_int_eq(r.p, DMARC_P_QUARANTINE);
    ck_assert_int_eq(r.sp, DMARC_P_REJECT);
    ck_assert_int_eq(r.np, DMARC_P_NONE);
    ck_assert(r.has_p && r.has_sp && r.has_np);
    ck_assert_int_eq(r.psd, DMARC_PSD_N);
    ck_assert(r.testing);
    ck_assert_int_eq(r.adkim, DMARC_ALIGN_STRICT);
    ck_assert_int_eq(r.aspf, DMARC_ALIGN_STRICT);
    ck_assert_uint_eq(r.nrua, 2);
    ck_assert_str_eq(r.rua[0].uri, "mailto:agg@example.com");
    ck_assert_uint_eq(r.rua[0].limit, 0);
    ck_assert_str_eq(r.rua[1].uri, "mailto:agg2@example.net");
    ck_assert_uint_eq(r.rua[1].limit, 10u << 20);
    ck_assert_uint_eq(r.nruf, 1);
    ck_assert_uint_eq(r.ruf[0].limit, 20);
    ck_assert_uint_eq(r.fo, DMARC_FO_1 | DMARC_FO_D | DMARC_FO_S);
    char fo[16];
    dmarc_fo_text(r.fo, fo, sizeof fo);
    ck_assert_str_eq(fo, "1:d:s");
    ck_assert_str_eq(r.notes, "");
}
END_TEST

START_TEST(sp_np_inherit)
{
    struct dmarc_record r;
    parse("v=DMARC1; p=reject", &r);
    ck_assert_int_eq(r.sp, DMARC_P_REJECT);
    ck_assert_int_eq(r.np, DMARC_P_REJECT);
    parse("v=DMARC1; p=reject; sp=quarantine", &r);
    ck_assert_int_eq(r.sp, DMARC_P_QUARANTINE);
    ck_assert_int_eq(r.np, DMARC_P_QUARANTINE);   /* np absent: sp (§4.7 np) */
    parse("v=DMARC1; p=none; np=reject", &r);
    ck_assert_int_eq(r.sp, DMARC_P_NONE);
    ck_assert_int_eq(r.np, DMARC_P_REJECT);
}
END_TEST

START_TEST(case_and_spacing)
{
    struct dmarc_record r;
    ck_assert_int_eq(parse("v=DMARC1;P=Reject;ADKIM=S;  aspf =\ts ;", &r), DMARC_REC_OK);
    ck_assert_int_eq(r.p, DMARC_P_REJECT);
    ck_assert_int_eq(r.adkim, DMARC_ALIGN_STRICT);
    ck_assert_int_eq(r.aspf, DMARC_ALIGN_STRICT);
    ck_assert_str_eq(r.notes, "");
    ck_assert_int_eq(parse("v=DMARC1;;; p=reject;;", &r), DMARC_REC_OK);
    ck_assert_int_eq(r.p, DMARC_P_REJECT);
}
END_TEST

START_TEST(bad_policy_with_rua_is_none)
{
    struct dmarc_record r;
    parse("v=DMARC1; p=rejekt; rua=mailto:a@example.com", &r);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_FORCED_NONE);
    ck_assert_int_eq(r.p, DMARC_P_NONE);
    ck_assert_int_eq(r.sp, DMARC_P_NONE);
    ck_assert_int_eq(r.np, DMARC_P_NONE);
    ck_assert_ptr_nonnull(strstr(r.notes, "p=rejekt"));
    /* a valid p with an invalid sp: the same rule (§4.10.1) */
    parse("v=DMARC1; p=reject; sp=never; rua=mailto:a@example.com", &r);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_FORCED_NONE);
    ck_assert_int_eq(r.p, DMARC_P_NONE);
    parse("v=DMARC1; p=reject; np=; rua=mailto:a@example.com", &r);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_FORCED_NONE);
}
END_TEST

START_TEST(bad_policy_without_rua_is_unusable)
{
    struct dmarc_record r;
    parse("v=DMARC1; p=rejekt", &r);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_UNUSABLE);
    /* rua present but with no valid URI */
    parse("v=DMARC1; p=bogus; rua=agg@example.com", &r);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_UNUSABLE);
    ck_assert_uint_eq(r.nrua, 0);
    parse("v=DMARC1; p=reject; sp=x", &r);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_UNUSABLE);
    /* p with a non-printable octet */
    ck_assert_int_eq(dmarc_record_parse("v=DMARC1; p=re\x01ject", 18, &r), DMARC_REC_OK);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_UNUSABLE);
}
END_TEST

START_TEST(bad_other_values_fall_back)
{
    struct dmarc_record r;
    parse("v=DMARC1; p=reject; adkim=x; aspf=; t=maybe; psd=q; fo=2", &r);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_OK);
    ck_assert_int_eq(r.p, DMARC_P_REJECT);
    ck_assert_int_eq(r.adkim, DMARC_ALIGN_RELAXED);
    ck_assert_int_eq(r.aspf, DMARC_ALIGN_RELAXED);
    ck_assert(!r.testing);
    ck_assert_int_eq(r.psd, DMARC_PSD_U);
    ck_assert_uint_eq(r.fo, DMARC_FO_0);
    ck_assert_ptr_nonnull(strstr(r.notes, "adkim=x"));
    ck_assert_ptr_nonnull(strstr(r.notes, "t=maybe"));
}
END_TEST

START_TEST(unknown_historic_and_garbage_ignored)
{
    struct dmarc_record r;
    parse("v=DMARC1; pct=50; rf=afrf; ri=86400; xfuture=1; x-y=2; p=quarantine; garbage; =x; p2=reject", &r);
    ck_assert_int_eq(r.policy_state, DMARC_POLICY_OK);
    ck_assert_int_eq(r.p, DMARC_P_QUARANTINE);
    ck_assert_ptr_nonnull(strstr(r.notes, "pct= is historic"));
    ck_assert_ptr_nonnull(strstr(r.notes, "unknown tag xfuture="));
    ck_assert_ptr_nonnull(strstr(r.notes, "\"garbage\" is not a tag=value pair"));
    ck_assert_ptr_nonnull(strstr(r.notes, "\"x-y=2\" is not"));
    ck_assert_ptr_nonnull(strstr(r.notes, "\"p2=reject\" is not"));
    /* RFC 7489 record with pct=0 still parses to its p */
    parse("v=DMARC1; p=reject; pct=0; rua=mailto:d@example.org", &r);
    ck_assert_int_eq(r.p, DMARC_P_REJECT);
    ck_assert(!r.testing);
}
END_TEST

START_TEST(repeated_tag_first_wins)
{
    struct dmarc_record r;
    parse("v=DMARC1; p=reject; p=none", &r);
    ck_assert_int_eq(r.p, DMARC_P_REJECT);
    ck_assert_ptr_nonnull(strstr(r.notes, "p= repeated"));
    /* a second v= is a repeated unknown... no: "v" is not a tag past the version */
    parse("v=DMARC1; v=DMARC1; p=reject", &r);
    ck_assert_int_eq(r.p, DMARC_P_REJECT);
}
END_TEST

START_TEST(uri_lists)
{
    struct dmarc_record r;
    parse("v=DMARC1; rua = mailto:a@example.com , bad uri, mailto:b@example.com!1k ,https://r.example/x?y=1%2C2,"
          "mailto:c@example.com!, mailto:d@example.com!5x, mailto:e@example.com!7G, :nothing, mailto:", &r);
    ck_assert_uint_eq(r.nrua, 4);
    ck_assert_str_eq(r.rua[0].uri, "mailto:a@example.com");
    ck_assert_str_eq(r.rua[1].uri, "mailto:b@example.com");
    ck_assert_uint_eq(r.rua[1].limit, 1024);
    ck_assert_str_eq(r.rua[2].uri, "https://r.example/x?y=1%2C2");
    ck_assert_str_eq(r.rua[3].uri, "mailto:e@example.com");
    ck_assert_uint_eq(r.rua[3].limit, 7ull << 30);
    ck_assert_ptr_nonnull(strstr(r.notes, "\"bad uri\""));
    /* size saturates instead of overflowing */
    parse("v=DMARC1; rua=mailto:a@example.com!99999999999999999999999t", &r);
    ck_assert_uint_eq(r.nrua, 1);
    ck_assert_uint_eq(r.rua[0].limit, UINT64_MAX);
    /* bad percent-encoding */
    parse("v=DMARC1; rua=mailto:a%zz@example.com", &r);
    ck_assert_uint_eq(r.nrua, 0);
}
END_TEST

START_TEST(uri_count_bounded)
{
    struct dmarc_record r;
    char rec[2048] = "v=DMARC1; ruf=";
    for (int i = 0; i < 12; i++) {
        char one[64];
        snprintf(one, sizeof one, "%smailto:r%d@example.com", i ? "," : "", i);
        strcat(rec, one);
    }
    strcat(rec, "; fo=1");
    parse(rec, &r);
    ck_assert_uint_eq(r.nruf, DMARC_URI_MAX);
    ck_assert_str_eq(r.ruf[7].uri, "mailto:r7@example.com");
    ck_assert_uint_eq(r.fo, DMARC_FO_1);
    ck_assert_ptr_nonnull(strstr(r.notes, "beyond the first 8"));
    /* an over-long URI is refused alone */
    char big[DMARC_URI_LEN + 64] = "v=DMARC1; rua=mailto:";
    memset(big + strlen(big), 'a', DMARC_URI_LEN);
    big[sizeof big - 1] = '\0';
    parse(big, &r);
    ck_assert_uint_eq(r.nrua, 0);
}
END_TEST

START_TEST(fo_rules)
{
    struct dmarc_record r;
    static const struct { const char *fo; unsigned want; } cases[] = {
        {"0", DMARC_FO_0}, {"1", DMARC_FO_1}, {"d", DMARC_FO_D}, {"s:d", DMARC_FO_S | DMARC_FO_D},
        {"0:d:s", DMARC_FO_0 | DMARC_FO_D | DMARC_FO_S}, {"0:1", DMARC_FO_0 /* invalid: default */},
        {"d:d", DMARC_FO_0}, {"", DMARC_FO_0}, {"1:", DMARC_FO_0}, {"x", DMARC_FO_0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char rec[128];
        snprintf(rec, sizeof rec, "v=DMARC1; ruf=mailto:f@example.com; fo=%s", cases[i].fo);
        parse(rec, &r);
        ck_assert_msg(r.fo == cases[i].want, "fo=%s gave %u", cases[i].fo, r.fo);
    }
    /* without ruf= fo is ignored */
    parse("v=DMARC1; fo=1", &r);
    ck_assert_uint_eq(r.fo, DMARC_FO_0);
    ck_assert_ptr_nonnull(strstr(r.notes, "fo= without ruf="));
}
END_TEST

START_TEST(too_long_and_notes_bounded)
{
    struct dmarc_record r;
    static char rec[DMARC_RECORD_MAX + 10];
    memset(rec, ' ', sizeof rec - 1);
    memcpy(rec, "v=DMARC1;", 9);
    rec[sizeof rec - 1] = '\0';
    ck_assert_int_eq(parse(rec, &r), DMARC_REC_NOT_DMARC);
    /* many unknown tags: notes stay bounded and terminated */
    char many[DMARC_RECORD_MAX] = "v=DMARC1";
    while (strlen(many) + 20 < sizeof many)
        strcat(many, "; xyzzy=1");
    ck_assert_int_eq(parse(many, &r), DMARC_REC_OK);
    ck_assert_uint_lt(strlen(r.notes), DMARC_NOTES_MAX);
}
END_TEST

static Suite *dmarc_record_suite(void)
{
    Suite *s = suite_create("dmarc_record");
    TCase *t = tcase_create("parse");
    tcase_add_test(t, version_must_be_first);
    tcase_add_test(t, defaults);
    tcase_add_test(t, all_tags);
    tcase_add_test(t, sp_np_inherit);
    tcase_add_test(t, case_and_spacing);
    tcase_add_test(t, bad_policy_with_rua_is_none);
    tcase_add_test(t, bad_policy_without_rua_is_unusable);
    tcase_add_test(t, bad_other_values_fall_back);
    tcase_add_test(t, unknown_historic_and_garbage_ignored);
    tcase_add_test(t, repeated_tag_first_wins);
    tcase_add_test(t, uri_lists);
    tcase_add_test(t, uri_count_bounded);
    tcase_add_test(t, fo_rules);
    tcase_add_test(t, too_long_and_notes_bounded);
    suite_add_tcase(s, t);
    return s;
}

UNIT_MAIN(dmarc_record_suite)

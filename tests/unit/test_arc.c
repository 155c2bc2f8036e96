/* Unit tests for auth/arc_*: the structural checks of RFC 8617 §5.2 steps 1-3 over
   raw header blocks (instances, the 50-set limit, cv= rules, duplicates, h= in a
   seal), the AAR instance prefix, seal-then-verify round trips over a table
   resolver (ed25519 and rsa keys made here), the streaming sealer against the
   whole-message one, and the sealer's refusals (§5.1 steps 2 and 3). */
#include "auth/arc.h"
#include "auth/arc_seal.h"
#include "auth/dkim_key.h"
#include "lib/buf.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

static void add_set(struct buf *m, unsigned i, const char *cv, const char *as_extra)
{
    buf_printf(m, "ARC-Seal: i=%u; a=rsa-sha256; cv=%s; d=x.test; s=s;%s b=AAAA\r\n", i, cv, as_extra);
    buf_printf(m, "ARC-Message-Signature: i=%u; a=rsa-sha256; d=x.test; s=s; h=from; bh=AAAA; b=AAAA\r\n", i);
    buf_printf(m, "ARC-Authentication-Results: i=%u; mx.x.test; spf=pass\r\n", i);
}

static enum arc_cv collect(const struct buf *m, char *why)
{
    static struct dkim_header h;
    static struct arc_chain c;
    char err[128];
    ck_assert_int_eq(dkim_split_header(m->data, m->len, &h, err, sizeof err), 0);
    return arc_collect(&h, &c, why, ARC_REASON_MAX);
}

START_TEST(structure)
{
    struct buf m;
    char why[ARC_REASON_MAX];
    buf_init(&m, 1 << 20);
    buf_puts(&m, "From: a@b.test\r\n\r\n");
    ck_assert_int_eq(collect(&m, why), ARC_CV_NONE);

    buf_reset(&m);
    add_set(&m, 1, "none", "");
    buf_puts(&m, "From: a@b.test\r\n\r\n");
    ck_assert_int_eq(collect(&m, why), ARC_CV_PASS);

    buf_reset(&m);
    add_set(&m, 1, "pass", "");
    ck_assert_int_eq(collect(&m, why), ARC_CV_FAIL);
    ck_assert_str_eq(why, "ARC-Seal i=1 has cv=pass; RFC 8617 requires none");

    buf_reset(&m);
    add_set(&m, 2, "none", "");
    add_set(&m, 1, "none", "");
    ck_assert_int_eq(collect(&m, why), ARC_CV_FAIL);
    ck_assert_str_eq(why, "ARC-Seal i=2 has cv=none; RFC 8617 requires pass");

    buf_reset(&m);
    add_set(&m, 3, "pass", "");
    add_set(&m, 1, "none", "");
    ck_assert_int_eq(collect(&m, why), ARC_CV_FAIL);
    ck_assert_str_eq(why, "ARC set i=2 is missing");

    buf_reset(&m);
    add_set(&m, 1, "none", "");
    buf_puts(&m, "ARC-Message-Signature: i=1; a=rsa-sha256; d=y.test; s=s; h=from; bh=AAAA; b=AAAA\r\n");
    ck_assert_int_eq(collect(&m, why), ARC_CV_FAIL);
    ck_assert_str_eq(why, "ARC set i=1 has two ARC-Message-Signature fields");

    buf_reset(&m);
    add_set(&m, 1, "none", " h=from;");
    ck_assert_int_eq(collect(&m, why), ARC_CV_FAIL);
    ck_assert_str_eq(why, "ARC-Seal i=1 has an h= tag");

    buf_reset(&m);
    add_set(&m, 2, "fail", "");
    add_set(&m, 1, "none", "");
    ck_assert_int_eq(collect(&m, why), ARC_CV_FAIL);
    ck_assert_str_eq(why, "ARC-Seal i=2 says cv=fail");
    buf_free(&m);
}
END_TEST

START_TEST(fifty_sets)
{
    struct buf m;
    char why[ARC_REASON_MAX];
    buf_init(&m, 1 << 20);
    for (unsigned i = 50; i >= 1; i--)
        add_set(&m, i, i == 1 ? "none" : "pass", "");
    ck_assert_int_eq(collect(&m, why), ARC_CV_PASS);
    add_set(&m, 51, "pass", "");
    ck_assert_int_eq(collect(&m, why), ARC_CV_FAIL);
    ck_assert_str_eq(why, "more than 50 ARC sets");
    buf_free(&m);
}
END_TEST

START_TEST(aar_instance)
{
    size_t rest;
    ck_assert_uint_eq(arc_aar_instance("i=1; mx", 7, &rest), 1);
    ck_assert_uint_eq(rest, 4);
    ck_assert_uint_eq(arc_aar_instance(" i = 12 ;x", 10, &rest), 12);
    ck_assert_uint_eq(arc_aar_instance("i=51;", 5, NULL), 51);
    ck_assert_uint_eq(arc_aar_instance("i=52;", 5, NULL), 0);
    ck_assert_uint_eq(arc_aar_instance("i=0;", 4, NULL), 0);
    ck_assert_uint_eq(arc_aar_instance("i=1", 3, NULL), 0);
    ck_assert_uint_eq(arc_aar_instance("x=1;", 4, NULL), 0);
    ck_assert_uint_eq(arc_aar_instance("i=1000;", 7, NULL), 0);
}
END_TEST

/* A resolver answering every lookup with one record. */
static char record[4096];
static void *lookup(void *ctx, const char *name, dkim_txt_done done, void *arg)
{
    const char *t[1] = { record };
    size_t l[1] = { strlen(record) };
    done(arg, strstr(name, "s._domainkey.x.test") == name ? DKIM_DNS_OK : DKIM_DNS_NOTFOUND, t, l, 1);
    return NULL;
}

static void round_trip(enum dkim_algo algo)
{
    char err[256];
    EVP_PKEY *k = dkim_keygen(algo, 1024, err, sizeof err);
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(dkim_record_text(k, record, sizeof record), 0);
    struct dkim_sign_key key = { .pkey = k, .algo = algo, .domain = "x.test", .selector = "s" };
    struct dkim_resolver r = { lookup, NULL, NULL };
    struct buf msg, set;
    buf_init(&msg, 1 << 20);
    buf_init(&set, 1 << 20);
    buf_puts(&msg, "From: a@b.test\r\nSubject: hi\r\n\r\nbody\r\n");
    for (int hop = 1; hop <= 2; hop++) {
        buf_reset(&set);
        ck_assert_int_eq(arc_seal_message(&key, "mx.x.test; spf=pass", hop == 1 ? ARC_CV_NONE : ARC_CV_PASS,
                                          1700000000, msg.data, msg.len, &set, err, sizeof err), 0);
        buf_append(&set, msg.data, msg.len);
        buf_reset(&msg);
        buf_append(&msg, set.data, set.len);
    }
    struct arc_result res;
    ck_assert_int_eq(arc_verify_message(&r, msg.data, msg.len, &res), 0);
    ck_assert_msg(res.status == ARC_CV_PASS, "%s", res.reason);
    ck_assert_uint_eq(res.n, 2);
    ck_assert_str_eq(res.newest_domain, "x.test");
    ck_assert_str_eq(res.newest_aar, " mx.x.test; spf=pass");
    char line[512];
    ck_assert_int_eq(arc_result_format(&res, "192.0.2.7", line, sizeof line), 0);
    ck_assert_str_eq(line, "arc=pass (2 sets, sealed last by x.test) header.oldest-pass=0 smtp.remote-ip=192.0.2.7");
    /* one octet of the first seal's signature changed: the newest seal covers it, so
       the newest fails first and validation stops there (step 6) */
    char *b = strstr(strstr(msg.data, "ARC-Seal: i=1"), " b=") + 3;
    *b = *b == 'A' ? 'B' : 'A';
    ck_assert_int_eq(arc_verify_message(&r, msg.data, msg.len, &res), 0);
    ck_assert_int_eq(res.status, ARC_CV_FAIL);
    ck_assert_int_eq(res.sets[1].as, DKIM_RES_FAIL);
    ck_assert_int_eq(res.sets[0].as, DKIM_RES_NONE);
    ck_assert_str_eq(res.reason, "AS i=2: signature did not verify");
    buf_free(&msg);
    buf_free(&set);
    EVP_PKEY_free(k);
}

START_TEST(seal_verify_ed25519) { round_trip(DKIM_ALGO_ED25519_SHA256); }
END_TEST
START_TEST(seal_verify_rsa) { round_trip(DKIM_ALGO_RSA_SHA256); }
END_TEST

/* What the newest AAR says passed: dmarc before spf before dkim, results in
   comments or quoted strings ignored, the authserv-id never taken for a result. */
START_TEST(aar_pass)
{
    ck_assert_str_eq(arc_aar_pass("mx.fwd.test; spf=pass smtp.mailfrom=a.test; dmarc=pass header.from=a.test"),
                     "dmarc");
    ck_assert_str_eq(arc_aar_pass("mx.fwd.test; dkim=pass header.d=a.test; spf=pass smtp.mailfrom=a.test"), "spf");
    ck_assert_str_eq(arc_aar_pass("mx.fwd.test 1; dkim/1 = (c) pass header.d=a.test"), "dkim");
    ck_assert_str_eq(arc_aar_pass(" mx.fwd.test;\r\n\tDMARC=Pass"), "dmarc");
    ck_assert_ptr_null(arc_aar_pass("mx.fwd.test; dmarc=fail (dmarc=pass; spf=pass) header.from=a.test"));
    ck_assert_ptr_null(arc_aar_pass("mx.fwd.test; spf=fail reason=\"dkim=pass; dmarc=pass\""));
    ck_assert_ptr_null(arc_aar_pass("dmarc=pass"));        /* only an authserv-id */
    ck_assert_ptr_null(arc_aar_pass("mx.fwd.test; dmarc=passed; arc=pass; none"));
    ck_assert_ptr_null(arc_aar_pass(""));
}
END_TEST

/* The smtp process seals as the body streams to the spool: fed in chunks of any size
   and given the header section alone, the sealer makes the very fields the
   whole-message call makes (ed25519 signs deterministically; same t=). */
START_TEST(seal_streaming_equals_whole)
{
    char err[256];
    EVP_PKEY *k = dkim_keygen(DKIM_ALGO_ED25519_SHA256, 0, err, sizeof err);
    ck_assert_ptr_nonnull(k);
    struct dkim_sign_key key = { .pkey = k, .algo = DKIM_ALGO_ED25519_SHA256, .domain = "x.test", .selector = "s" };
    const char *hdr = "From: a@b.test\r\nSubject: hi\r\n\r\n";
    struct buf msg, whole, streamed;
    buf_init(&msg, 1 << 20);
    buf_init(&whole, 1 << 20);
    buf_init(&streamed, 1 << 20);
    buf_puts(&msg, hdr);
    for (int i = 0; i < 500; i++)
        buf_printf(&msg, "line %d  with  spaces \t\r\n", i);
    buf_puts(&msg, "\r\n\r\n");
    ck_assert_int_eq(arc_seal_message(&key, "mx.x.test; spf=pass", ARC_CV_NONE, 1700000000, msg.data, msg.len,
                                      &whole, err, sizeof err), 0);
    struct arc_sealer *sl = arc_sealer_new();
    ck_assert_ptr_nonnull(sl);
    size_t body = strlen(hdr);
    for (size_t off = body, n = 1; off < msg.len; off += n, n = n * 3 + 1)
        arc_sealer_body(sl, msg.data + off, off + n > msg.len ? msg.len - off : n);
    ck_assert_int_eq(arc_sealer_finish(sl, &key, "mx.x.test; spf=pass", ARC_CV_NONE, 1700000000, hdr,
                                       body - 2, &streamed, err, sizeof err), 0);
    ck_assert_uint_eq(streamed.len, whole.len);
    ck_assert(memcmp(streamed.data, whole.data, whole.len) == 0);
    /* finish is once only */
    ck_assert_int_lt(arc_sealer_finish(sl, &key, "x", ARC_CV_NONE, 1, hdr, body, &streamed, err, sizeof err), 0);
    arc_sealer_free(sl);
    buf_free(&msg);
    buf_free(&whole);
    buf_free(&streamed);
    EVP_PKEY_free(k);
}
END_TEST

/* §5.1 step 2: a newest seal saying cv=fail is left alone (1, nothing added). A
   chain broken before its seals can be read (an unreadable AMS i=) is continued
   at one more than the highest instance seen, with cv=fail. */
START_TEST(seal_newest_fail_and_broken_chain)
{
    char err[256];
    EVP_PKEY *k = dkim_keygen(DKIM_ALGO_ED25519_SHA256, 0, err, sizeof err);
    struct dkim_sign_key key = { .pkey = k, .algo = DKIM_ALGO_ED25519_SHA256, .domain = "x.test", .selector = "s" };
    struct buf m, out;
    buf_init(&m, 1 << 16);
    buf_init(&out, 1 << 16);
    add_set(&m, 2, "fail", "");
    add_set(&m, 1, "none", "");
    buf_puts(&m, "From: a@b.test\r\n\r\nbody\r\n");
    ck_assert_int_eq(arc_seal_message(&key, "mx.x.test; arc=fail", ARC_CV_FAIL, 1, m.data, m.len, &out, err,
                                      sizeof err), 1);
    ck_assert_uint_eq(out.len, 0);
    buf_reset(&m);
    add_set(&m, 3, "pass", "");
    buf_puts(&m, "ARC-Message-Signature: i=x; a=rsa-sha256; d=x.test; s=s; h=from; bh=AAAA; b=AAAA\r\n");
    buf_puts(&m, "From: a@b.test\r\n\r\nbody\r\n");
    static struct dkim_header h;
    ck_assert_int_eq(dkim_split_header(m.data, m.len, &h, err, sizeof err), 0);
    ck_assert_uint_eq(arc_max_instance(&h), 3);
    ck_assert_int_eq(arc_seal_message(&key, "mx.x.test; arc=fail", ARC_CV_PASS, 1, m.data, m.len, &out, err,
                                      sizeof err), 0);
    ck_assert_msg(strncmp(out.data, "ARC-Seal: i=4; a=ed25519-sha256; cv=fail;", 41) == 0, "%.60s", out.data);
    buf_free(&m);
    buf_free(&out);
    EVP_PKEY_free(k);
}
END_TEST

Suite *arc_suite(void)
{
    Suite *s = suite_create("arc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, structure);
    tcase_add_test(tc, fifty_sets);
    tcase_add_test(tc, aar_instance);
    tcase_add_test(tc, aar_pass);
    tcase_add_test(tc, seal_verify_ed25519);
    tcase_add_test(tc, seal_verify_rsa);
    tcase_add_test(tc, seal_streaming_equals_whole);
    tcase_add_test(tc, seal_newest_fail_and_broken_chain);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(arc_suite)

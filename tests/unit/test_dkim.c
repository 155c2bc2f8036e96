/* Unit tests for auth/dkim_*: tag lists, canonicalisation (RFC 6376 §3.4.6), the
   RFC 8463 Appendix A example, signing and verifier edge cases over a table resolver. */
#include "auth/dkim_canon.h"
#include "auth/dkim_key.h"
#include "auth/dkim_sign.h"
#include "auth/dkim_tags.h"
#include "auth/dkim_verify.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>

#include <openssl/pem.h>

/* ---- tag lists ---- */

START_TEST(tags_basic)
{
    struct dkim_taglist tl;
    char err[128];
    const char *s = "v=1; a=rsa-sha256;\r\n\td = example.com ; e=; b=ab cd\r\n ef;";
    ck_assert_int_eq(dkim_tags_parse(s, strlen(s), &tl, err, sizeof err), 0);
    ck_assert_int_eq(tl.n, 5);
    const struct dkim_tag *t = dkim_tags_get(&tl, "d");
    ck_assert_int_eq(t->value_len, 11);
    ck_assert(!memcmp(t->value, "example.com", 11));
    ck_assert_int_eq(dkim_tags_get(&tl, "e")->value_len, 0);
    char v[32];
    ck_assert_int_eq(dkim_tag_copy(dkim_tags_get(&tl, "b"), v, sizeof v, true), 0);
    ck_assert_str_eq(v, "abcdef");
    ck_assert_ptr_null(dkim_tags_get(&tl, "D"));   /* names are case-sensitive */
}
END_TEST

START_TEST(tags_errors)
{
    struct dkim_taglist tl;
    char err[128];
    const char *bad[] = {
        "a=1; a=2",          /* duplicate */
        "1a=x",              /* name starts with a digit */
        "a",                 /* no '=' */
        "a=x\r\nb=y",        /* CRLF not followed by WSP */
        "a=x\x01y",          /* control character */
        "a=x;;b=y",          /* empty tag spec */
        "a=\xc3\xa9",        /* 8-bit */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(dkim_tags_parse(bad[i], strlen(bad[i]), &tl, err, sizeof err) < 0, "accepted %s", bad[i]);
    ck_assert_int_eq(dkim_tags_parse("", 0, &tl, err, sizeof err), 0);
    ck_assert_int_eq(tl.n, 0);
}
END_TEST

START_TEST(base64_fws)
{
    unsigned char out[16];
    size_t n;
    ck_assert_int_eq(dkim_base64_decode("aGVs\r\n bG8=", 11, out, sizeof out, &n), 0);
    ck_assert_int_eq(n, 5);
    ck_assert(!memcmp(out, "hello", 5));
    ck_assert_int_eq(dkim_base64_decode("aGVsbG8", 7, out, sizeof out, &n), -1);   /* no padding */
    ck_assert_int_eq(dkim_base64_decode("aG=Vs", 5, out, sizeof out, &n), -1);
    ck_assert_int_eq(dkim_base64_decode("a*==", 4, out, sizeof out, &n), -1);
}
END_TEST

/* ---- canonicalisation ---- */

static void sink(void *arg, const unsigned char *p, size_t n) { buf_append(arg, p, n); }

static void body_canon(enum dkim_canon c, const char *in, size_t chunk, struct buf *out)
{
    struct dkim_body_canon b;
    buf_reset(out);
    dkim_body_init(&b, c, -1, sink, out);
    size_t len = strlen(in);
    for (size_t i = 0; i < len; i += chunk)
        dkim_body_feed(&b, in + i, len - i < chunk ? len - i : chunk);
    dkim_body_finish(&b);
}

static const char rfc_example[] =
    "A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";

START_TEST(canon_rfc6376_example)
{
    struct dkim_header h;
    char err[128];
    ck_assert_int_eq(dkim_split_header(rfc_example, strlen(rfc_example), &h, err, sizeof err), 0);
    ck_assert_int_eq(h.n, 2);
    struct buf out;
    buf_init(&out, 4096);
    for (size_t i = 0; i < h.n; i++)
        dkim_canon_header(DKIM_CANON_RELAXED, h.fields[i].start, h.fields[i].len, true, &out);
    ck_assert_str_eq(out.data, "a:X\r\nb:Y Z\r\n");
    buf_reset(&out);
    for (size_t i = 0; i < h.n; i++)
        dkim_canon_header(DKIM_CANON_SIMPLE, h.fields[i].start, h.fields[i].len, true, &out);
    ck_assert_str_eq(out.data, "A: X\r\nB : Y\t\r\n\tZ  \r\n");
    const char *body = rfc_example + h.body_offset;
    /* every chunk size, so CRLFs split between chunks are covered */
    for (size_t chunk = 1; chunk < 20; chunk++) {
        body_canon(DKIM_CANON_RELAXED, body, chunk, &out);
        ck_assert_str_eq(out.data, " C\r\nD E\r\n");
        body_canon(DKIM_CANON_SIMPLE, body, chunk, &out);
        ck_assert_str_eq(out.data, " C \r\nD \t E\r\n");
    }
    buf_free(&out);
}
END_TEST

START_TEST(canon_body_edges)
{
    struct buf out;
    buf_init(&out, 4096);
    body_canon(DKIM_CANON_SIMPLE, "", 4, &out);
    ck_assert_str_eq(out.data, "\r\n");
    body_canon(DKIM_CANON_RELAXED, "", 4, &out);
    ck_assert_str_eq(out.data, "");
    body_canon(DKIM_CANON_RELAXED, "\r\n \r\n\t\r\n", 4, &out);
    ck_assert_str_eq(out.data, "");
    body_canon(DKIM_CANON_SIMPLE, "\r\n\r\n", 4, &out);
    ck_assert_str_eq(out.data, "\r\n");
    body_canon(DKIM_CANON_SIMPLE, "x", 4, &out);          /* no CRLF at the end */
    ck_assert_str_eq(out.data, "x\r\n");
    body_canon(DKIM_CANON_RELAXED, "a  b \r\n\r\nc", 1, &out);
    ck_assert_str_eq(out.data, "a b\r\n\r\nc\r\n");
    body_canon(DKIM_CANON_SIMPLE, "a\nb\n\n", 1, &out);    /* bare LF as line end */
    ck_assert_str_eq(out.data, "a\r\nb\r\n");
    body_canon(DKIM_CANON_SIMPLE, "a\rb\r", 1, &out);     /* lone CR is content */
    ck_assert_str_eq(out.data, "a\rb\r\r\n");
    /* l= counts the whole body but hands on only the first l octets */
    struct dkim_body_canon b;
    buf_reset(&out);
    dkim_body_init(&b, DKIM_CANON_SIMPLE, 3, sink, &out);
    dkim_body_feed(&b, "hello\r\n", 7);
    dkim_body_finish(&b);
    ck_assert_str_eq(out.data, "hel");
    ck_assert_int_eq(b.total, 7);
    buf_free(&out);
}
END_TEST

/* ---- RFC 8463 Appendix A ---- */

static const char rfc8463_msg[] =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    " date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    "\r\n"
    "Hi.\r\n"
    "\r\n"
    "We lost the game.  Are you hungry yet?\r\n"
    "\r\n"
    "Joe.\r\n";

/* A table resolver: name → TXT record, answered in line. */
struct table_entry { const char *name; const char *txt; enum dkim_dns_status st; };
static const struct table_entry *table;

static void *table_lookup(void *ctx, const char *name, dkim_txt_done done, void *arg)
{
    for (const struct table_entry *e = table; e && e->name; e++) {
        if (strcmp(e->name, name))
            continue;
        if (e->st != DKIM_DNS_OK) {
            done(arg, e->st, NULL, NULL, 0);
        } else {
            const char *t[1] = { e->txt };
            size_t l[1] = { strlen(e->txt) };
            done(arg, DKIM_DNS_OK, t, l, 1);
        }
        return NULL;
    }
    done(arg, DKIM_DNS_NOTFOUND, NULL, NULL, 0);
    return NULL;
}

static const struct dkim_resolver table_resolver = { table_lookup, NULL, NULL };

static const struct table_entry rfc8463_keys[] = {
    { "brisbane._domainkey.football.example.com", "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_DNS_OK },
    { "test._domainkey.football.example.com",
      "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
      "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
      "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
      "Ip3G+2kryOTIKT+l/K4w3QIDAQAB", DKIM_DNS_OK },
    { "revoked._domainkey.football.example.com", "v=DKIM1; k=ed25519; p=", DKIM_DNS_OK },
    { "tmp._domainkey.football.example.com", NULL, DKIM_DNS_TEMPFAIL },
    { "strict._domainkey.football.example.com", "v=DKIM1; k=ed25519; t=s; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_DNS_OK },
    { "noemail._domainkey.football.example.com", "v=DKIM1; k=ed25519; s=other; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_DNS_OK },
    { "testing._domainkey.football.example.com", "v=DKIM1; k=ed25519; t=y; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", DKIM_DNS_OK },
    { NULL, NULL, DKIM_DNS_OK }
};

static size_t verify(const char *msg, int64_t now, struct dkim_sig_result **res)
{
    struct dkim_verify_opts o;
    dkim_verify_opts_init(&o, now);
    size_t n;
    ck_assert_int_eq(dkim_verify_message(&o, &table_resolver, msg, strlen(msg), res, &n), 0);
    return n;
}

START_TEST(rfc8463_verifies)
{
    table = rfc8463_keys;
    struct dkim_sig_result *r;
    ck_assert_int_eq(verify(rfc8463_msg, 1528637909 + 60, &r), 2);
    ck_assert_msg(r[0].result == DKIM_RES_PASS, "ed25519: %s", r[0].reason);
    ck_assert_msg(r[1].result == DKIM_RES_PASS, "rsa: %s", r[1].reason);
    ck_assert_str_eq(r[0].selector, "brisbane");
    ck_assert_str_eq(r[0].b_prefix, "/gCrinpc");
    char line[512];
    ck_assert_int_eq(dkim_result_format(&r[0], true, line, sizeof line), 0);
    ck_assert_str_eq(line, "dkim=pass header.d=football.example.com header.s=brisbane "
                           "header.b=\"/gCrinpc\" (ed25519-sha256 256-bit key)");
    /* security review #9: the b= prefix is the signer's text; a quote in it
       must not end the value (it once gave header.b="AB"") */
    str_copy(r[0].b_prefix, "AB\"x\\y", sizeof r[0].b_prefix);
    str_copy(r[0].reason, "bad (key) \\", sizeof r[0].reason);
    ck_assert_int_eq(dkim_result_format(&r[0], true, line, sizeof line), 0);
    ck_assert_str_eq(line, "dkim=pass header.d=football.example.com header.s=brisbane "
                           "header.b=\"AB\\\"x\\\\y\" (bad \\(key\\) \\\\)");
    /* a long reason never leaves the comment open, whatever the room (review:
       a 253-octet d= once cut the field inside its comment) */
    memset(r[0].reason, 'x', sizeof r[0].reason - 1);
    r[0].reason[sizeof r[0].reason - 1] = '\0';
    r[0].reason[100] = '\\';
    for (size_t sz = 60; sz < 300; sz++) {
        char small[300];
        dkim_result_format(&r[0], true, small, sz);
        size_t len = strlen(small);
        /* either the whole comment, closed, or none; and no quoted-string left open */
        ck_assert_msg(!strchr(small, '(') || small[len - 1] == ')', "size %zu: %s", sz, small);
        size_t quotes = 0;
        for (size_t i = 0; i < len; i++)
            if (small[i] == '\\')
                i++;
            else if (small[i] == '"')
                quotes++;
        ck_assert_msg(quotes % 2 == 0, "size %zu: %s", sz, small);
        ck_assert_uint_lt(len, sz);
    }
    free(r);
    /* one byte changed in the body, then in a signed header */
    char *m = strdup(rfc8463_msg);
    *strstr(m, "hungry") = 'H';
    ck_assert_int_eq(verify(m, 1528637909, &r), 2);
    ck_assert_int_eq(r[0].result, DKIM_RES_FAIL);
    ck_assert_int_eq(r[1].result, DKIM_RES_FAIL);
    ck_assert_str_eq(r[0].reason, "body hash did not verify");
    free(r);
    strcpy(m, rfc8463_msg);
    *strstr(m, "dinner") = 'D';
    ck_assert_int_eq(verify(m, 1528637909, &r), 2);
    ck_assert_int_eq(r[0].result, DKIM_RES_FAIL);
    ck_assert_int_eq(r[1].result, DKIM_RES_FAIL);
    ck_assert_str_eq(r[1].reason, "signature did not verify");
    free(r);
    free(m);
}
END_TEST

START_TEST(rfc8463_sign_reproduces_b)
{
    static const unsigned char seed_b64[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    unsigned char seed[32];
    size_t n;
    ck_assert_int_eq(dkim_base64_decode((const char *)seed_b64, strlen((const char *)seed_b64), seed, sizeof seed, &n), 0);
    ck_assert_int_eq(n, 32);
    struct dkim_sign_key k = { EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32),
                               DKIM_ALGO_ED25519_SHA256, "football.example.com", "brisbane", NULL, NULL };
    ck_assert_ptr_nonnull(k.pkey);
    struct dkim_header h;
    char err[128];
    ck_assert_int_eq(dkim_split_header(rfc8463_msg, strlen(rfc8463_msg), &h, err, sizeof err), 0);
    const char *names[] = { "from", "to", "subject", "date", "message-id", "from", "subject", "date" };
    const char *field =
        "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
        " d=football.example.com; i=@football.example.com;\r\n"
        " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
        " subject : date : message-id : from : subject : date;\r\n"
        " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
        " b=";
    char b64[256];
    ck_assert_int_eq(dkim_sign_compute_b(&k, DKIM_CANON_RELAXED, &h, names, 8, field, strlen(field), b64, sizeof b64), 0);
    ck_assert_str_eq(b64, "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==");

    /* The full signer, same key and t=, over the same message: verifies, and its
       body hash equals the RFC's. */
    const char *body = strstr(rfc8463_msg, "From: ");
    struct dkim_sign_opts o;
    dkim_sign_opts_init(&o, 1528637909);
    struct buf out;
    buf_init(&out, 65536);
    ck_assert_int_eq(dkim_sign_message(&k, 1, &o, body, strlen(body), &out, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(out.data, "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;"));
    ck_assert_ptr_nonnull(strstr(out.data, "t=1528637909;"));
    /* over-signing: From present once → from:from; absent Cc signed once */
    char unfolded[4096];
    size_t u = 0;
    for (size_t i = 0; i < out.len && u + 1 < sizeof unfolded; i++)
        if (out.data[i] != '\r' && out.data[i] != '\n' && !(i && out.data[i - 1] == '\n'))
            unfolded[u++] = out.data[i];
    unfolded[u] = '\0';
    ck_assert_ptr_nonnull(strstr(unfolded, "h=from:from:to:to:cc:subject:subject:date:date:reply-to:"
                                           "message-id:message-id:mime-version:content-type:"
                                           "content-transfer-encoding;"));
    for (const char *l = out.data; *l;) {
        const char *e = strstr(l, "\r\n");
        ck_assert_ptr_nonnull(e);
        ck_assert_msg(e - l <= 78, "line of %d columns", (int)(e - l));
        l = e + 2;
    }
    buf_append(&out, body, strlen(body));
    table = rfc8463_keys;
    struct dkim_sig_result *r;
    ck_assert_int_eq(verify(out.data, 1528637909, &r), 1);
    ck_assert_msg(r[0].result == DKIM_RES_PASS, "%s", r[0].reason);
    free(r);
    buf_free(&out);
    EVP_PKEY_free(k.pkey);
}
END_TEST

/* ---- verifier edge cases: hand-built signatures with the RFC 8463 ed25519 key ---- */

static EVP_PKEY *rfc_ed_key(void)
{
    unsigned char seed[32];
    size_t n;
    const char *b64 = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    ck_assert_int_eq(dkim_base64_decode(b64, strlen(b64), seed, sizeof seed, &n), 0);
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
}

static const char edge_head[] = "From: joe@football.example.com\r\nTo: x@example.net\r\nSubject: s\r\n\r\n";
static const char edge_body[] = "line one\r\nline two\r\n";

/* "DKIM-Signature: <tags> bh=<hash of the body, l= honoured>; b=<signature>" + message. */
static char *edge_message(const char *tags, int64_t l, const char *extra_body)
{
    struct buf body;
    buf_init(&body, 4096);
    struct dkim_body_canon bc;
    dkim_body_init(&bc, DKIM_CANON_RELAXED, l, sink, &body);
    dkim_body_feed(&bc, edge_body, strlen(edge_body));
    dkim_body_finish(&bc);
    unsigned char md[32];
    unsigned int mdlen;
    EVP_Digest(body.data ? body.data : "", body.len, md, &mdlen, EVP_sha256(), NULL);
    char bh[48];
    dkim_base64_encode(md, 32, bh, sizeof bh);
    static char field[2048];
    snprintf(field, sizeof field, "DKIM-Signature: %s bh=%s; b=", tags, bh);
    struct dkim_header h;
    char err[128];
    ck_assert_int_eq(dkim_split_header(edge_head, strlen(edge_head), &h, err, sizeof err), 0);
    struct dkim_sign_key k = { rfc_ed_key(), DKIM_ALGO_ED25519_SHA256, "football.example.com", "brisbane", NULL, NULL };
    const char *names[] = { "from", "to", "subject" };
    char b64[256];
    ck_assert_int_eq(dkim_sign_compute_b(&k, DKIM_CANON_RELAXED, &h, names, 3, field, strlen(field), b64, sizeof b64), 0);
    EVP_PKEY_free(k.pkey);
    char *msg = malloc(8192);
    snprintf(msg, 8192, "%s%s\r\n%s%s%s", field, b64, edge_head, edge_body, extra_body ? extra_body : "");
    buf_free(&body);
    return msg;
}

#define ED_TAGS "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; s=brisbane; h=from:to:subject;"

static enum dkim_result edge_result(const char *tags, int64_t l, const char *extra, char *reason, size_t rsz,
                                    enum dkim_l_policy lp)
{
    table = rfc8463_keys;
    char *m = edge_message(tags, l, extra);
    struct dkim_verify_opts o;
    dkim_verify_opts_init(&o, 1600000000);
    o.l_policy = lp;
    struct dkim_sig_result *r;
    size_t n;
    ck_assert_int_eq(dkim_verify_message(&o, &table_resolver, m, strlen(m), &r, &n), 0);
    ck_assert_int_eq(n, 1);
    enum dkim_result res = r[0].result;
    snprintf(reason, rsz, "%s", r[0].reason);
    free(r);
    free(m);
    return res;
}

START_TEST(edge_cases)
{
    char why[DKIM_REASON_MAX];
    struct { const char *tags; int64_t l; const char *extra; enum dkim_result want; const char *reason; } cases[] = {
        { ED_TAGS, -1, NULL, DKIM_RES_PASS, "ed25519-sha256 256-bit key" },
        { ED_TAGS " i=@mail.football.example.com;", -1, NULL, DKIM_RES_PASS, NULL },
        { ED_TAGS " i=joe@example.com;", -1, NULL, DKIM_RES_PERMERROR, "identity i=joe@example.com is not within d=football.example.com" },
        { "v=1; a=ed25519-sha256; d=football.example.com; s=brisbane; h=to:subject;", -1, NULL, DKIM_RES_PERMERROR, "signature does not cover the From field" },
        { "v=1; a=rsa-sha1; d=football.example.com; s=brisbane; h=from;", -1, NULL, DKIM_RES_PERMERROR, "rsa-sha1 signatures are not accepted (RFC 8301)" },
        { "v=2; a=ed25519-sha256; d=football.example.com; s=brisbane; h=from;", -1, NULL, DKIM_RES_PERMERROR, "signature version v=2 is not 1" },
        { ED_TAGS " x=1500000000;", -1, NULL, DKIM_RES_PERMERROR, "signature expired at 1500000000" },
        { ED_TAGS " t=1600000100; x=1600000050;", -1, NULL, DKIM_RES_PERMERROR, "signature expires (x=) before it was made (t=)" },
        { ED_TAGS " t=1700000000;", -1, NULL, DKIM_RES_PERMERROR, "signature timestamp t= lies in the future" },
        { ED_TAGS " t=1600000200; x=1700000000;", -1, NULL, DKIM_RES_PASS, NULL },   /* within the skew */
        { ED_TAGS " q=dns/other;", -1, NULL, DKIM_RES_PERMERROR, "signature's q= does not offer dns/txt" },
        { ED_TAGS " d=x.example;", -1, NULL, DKIM_RES_PERMERROR, "signature is malformed: tag \"d\" appears twice" },
        { "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; s=nokey; h=from;", -1, NULL, DKIM_RES_PERMERROR, "no key record at nokey._domainkey.football.example.com" },
        { "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; s=revoked; h=from;", -1, NULL, DKIM_RES_PERMERROR, "key revoked (empty p=)" },
        { "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; s=tmp; h=from;", -1, NULL, DKIM_RES_TEMPERROR, "key lookup of tmp._domainkey.football.example.com failed temporarily" },
        { "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; s=test; h=from;", -1, NULL, DKIM_RES_PERMERROR, "key type does not match a=ed25519-sha256" },
        { "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; s=strict; h=from; i=@a.football.example.com;", -1, NULL, DKIM_RES_PERMERROR, "key requires i= domain to equal d= (t=s)" },
        { "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; s=noemail; h=from;", -1, NULL, DKIM_RES_PERMERROR, "key record's service types s= exclude email" },
        { "v=1; a=ed25519-sha256; c=relaxed/relaxed; d=football.example.com; s=testing; h=from:to:subject;", -1, NULL, DKIM_RES_PASS, "ed25519-sha256 256-bit key; key in testing mode (t=y)" },
        /* l=: body appended after signing still passes, flagged */
        { ED_TAGS " l=10;", 10, "appended text\r\n", DKIM_RES_PASS, "ed25519-sha256 256-bit key; l= covers only 10 of 35 body octets" },
        { ED_TAGS " l=99;", 99, NULL, DKIM_RES_FAIL, "l=99 is longer than the body (20 octets)" },
        /* without l= the same append breaks the body hash */
        { ED_TAGS, -1, "appended text\r\n", DKIM_RES_FAIL, "body hash did not verify" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum dkim_result r = edge_result(cases[i].tags, cases[i].l, cases[i].extra, why, sizeof why, DKIM_L_ACCEPT);
        ck_assert_msg(r == cases[i].want, "case %zu: got %s (%s)", i, dkim_result_name(r), why);
        if (cases[i].reason)
            ck_assert_msg(!strcmp(why, cases[i].reason), "case %zu: reason \"%s\"", i, why);
    }
    ck_assert_int_eq(edge_result(ED_TAGS " l=10;", 10, "more\r\n", why, sizeof why, DKIM_L_REFUSE), DKIM_RES_POLICY);
}
END_TEST

START_TEST(max_signatures)
{
    table = rfc8463_keys;
    char *one = edge_message(ED_TAGS, -1, NULL);
    char *end = strstr(one, "From:");
    struct buf m;
    buf_init(&m, 1 << 16);
    for (int i = 0; i < 3; i++)
        buf_append(&m, one, (size_t)(end - one));
    buf_puts(&m, end);
    struct dkim_verify_opts o;
    dkim_verify_opts_init(&o, 1600000000);
    o.max_signatures = 2;
    struct dkim_sig_result *r;
    size_t n;
    ck_assert_int_eq(dkim_verify_message(&o, &table_resolver, m.data, m.len, &r, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(r[0].result, DKIM_RES_PASS);
    ck_assert_int_eq(r[1].result, DKIM_RES_PASS);
    ck_assert_int_eq(r[2].result, DKIM_RES_POLICY);
    ck_assert_str_eq(r[2].reason, "not evaluated: more than 2 signatures");
    free(r);
    buf_free(&m);
    free(one);
}
END_TEST

/* A key held elsewhere (the key process) is asked only for a signature over the
   SHA-256 digest; the field it yields is the one the key itself would give, and
   the signature verifies over the whole hash input. */
static int digest_calls;
static int sign_elsewhere(void *ctx, const struct dkim_sign_key *k, const unsigned char md[32], unsigned char *sig,
                          size_t *siglen)
{
    digest_calls++;
    return dkim_crypto_sign_digest(ctx, k->algo, md, sig, siglen);
}

START_TEST(sign_by_digest_equals_sign_by_key)
{
    static const enum dkim_algo algos[] = { DKIM_ALGO_RSA_SHA256, DKIM_ALGO_ED25519_SHA256 };
    const char *msg = "From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n";
    for (size_t i = 0; i < 2; i++) {
        char err[200];
        EVP_PKEY *pk = dkim_keygen(algos[i], 2048, err, sizeof err);
        ck_assert_ptr_nonnull(pk);
        struct dkim_sign_key here = { pk, algos[i], "example.com", "s1", NULL, NULL };
        struct dkim_sign_key away = { NULL, algos[i], "example.com", "s1", sign_elsewhere, pk };
        struct dkim_sign_opts o;
        dkim_sign_opts_init(&o, 1700000000);
        struct buf a, b;
        buf_init(&a, 1 << 16);
        buf_init(&b, 1 << 16);
        digest_calls = 0;
        ck_assert_int_eq(dkim_sign_message(&here, 1, &o, msg, strlen(msg), &a, err, sizeof err), 0);
        ck_assert_int_eq(digest_calls, 0);
        ck_assert_int_eq(dkim_sign_message(&away, 1, &o, msg, strlen(msg), &b, err, sizeof err), 0);
        ck_assert_int_eq(digest_calls, 1);
        ck_assert_uint_eq(a.len, b.len);
        ck_assert_mem_eq(a.data, b.data, a.len);
        /* and the digest signature verifies over the data it stands for */
        unsigned char md[32], sig[1024];
        size_t siglen = sizeof sig;
        unsigned int mdlen;
        ck_assert_int_eq(EVP_Digest("data", 4, md, &mdlen, EVP_sha256(), NULL), 1);
        ck_assert_int_eq(dkim_crypto_sign_digest(pk, algos[i], md, sig, &siglen), 0);
        ck_assert_int_eq(dkim_crypto_verify(pk, algos[i], "data", 4, sig, siglen), 1);
        ck_assert_int_eq(dkim_crypto_verify(pk, algos[i], "datb", 4, sig, siglen), 0);
        /* a signer that fails fails the message, it is not signed half-way */
        struct dkim_sign_key broken = { NULL, algos[i], "example.com", "s1", NULL, NULL };
        buf_free(&b);
        buf_init(&b, 1 << 16);
        ck_assert_int_eq(dkim_sign_message(&broken, 1, &o, msg, strlen(msg), &b, err, sizeof err), -1);
        buf_free(&a);
        buf_free(&b);
        EVP_PKEY_free(pk);
    }
}
END_TEST

static void add_verify_edge_tests(TCase *tc)
{
    tcase_add_test(tc, edge_cases);
    tcase_add_test(tc, max_signatures);
    tcase_add_test(tc, sign_by_digest_equals_sign_by_key);
}

Suite *dkim_suite(void)
{
    Suite *s = suite_create("dkim");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, tags_basic);
    tcase_add_test(tc, tags_errors);
    tcase_add_test(tc, base64_fws);
    tcase_add_test(tc, canon_rfc6376_example);
    tcase_add_test(tc, canon_body_edges);
    tcase_add_test(tc, rfc8463_verifies);
    tcase_add_test(tc, rfc8463_sign_reproduces_b);
    add_verify_edge_tests(tc);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(dkim_suite)

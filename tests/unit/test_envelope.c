/*
 * test_envelope.c — lib/envelope.h and lib/qid.h.
 *
 * Covers: serialise -> parse round trips with awkward values (spaces, '%',
 * newlines, non-ASCII, the empty sender, "-" as a sender, values at their
 * maximum length, 1000 recipients); rejections: bad magic, every proper prefix
 * of a valid serialisation, every single changed byte, unknown keywords, a
 * missing required record, no recipients, bad escapes, NUL octets, data after
 * the end record. Queue IDs: valid, strictly increasing, qid_time, qid_valid.
 * DSN/REQUIRETLS records: round trips of every NOTIFY combination and both ORCPT
 * types; absent records mean "not given" and are not written; malformed,
 * repeated and misplaced records are refused.
 */
#include "lib/envelope.h"
#include "lib/qid.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <string.h>
#include <zlib.h>

static char err[256];

static void sample(struct envelope *e)
{
    env_init(e);
    qid_new(e->id);
    e->arrival = 1700000000;
    e->size = 12345;
    strcpy(e->sender, "alice@example.com");
    strcpy(e->client_addr, "192.0.2.1");
    strcpy(e->client_helo, "client.example.com");
    strcpy(e->protocol, "ESMTP");
    e->body_8bit = true;
    e->attempts = 2;
    e->next_attempt = 1700000600;
    ck_assert_int_eq(env_add_rcpt(e, "bob@example.org"), 0);
    ck_assert_int_eq(env_add_rcpt(e, "carol@example.net"), 0);
    e->rcpts[1].state = RCPT_FAILED;
    e->rcpts[1].attempts = 3;
    strcpy(e->rcpts[1].result, "550 5.1.1 no such user");
    e->ret = ENV_RET_HDRS;
    strcpy(e->envid, "QQ314159 x=y+z");
    e->requiretls = true;
    strcpy(e->quarantine, "dmarc=fail p=quarantine header.from=example.com");
    e->rcpts[1].notify = ENV_NOTIFY_FAILURE | ENV_NOTIFY_DELAY;
    e->rcpts[1].orcpt_type = ENV_ORCPT_RFC822;
    strcpy(e->rcpts[1].orcpt, "Carol@Example.NET");
}

static void serialize(const struct envelope *e, struct buf *b)
{
    buf_init(b, ENV_MAX_SIZE);
    ck_assert_int_eq(env_serialize(e, b), 0);
}

static void assert_same(const struct envelope *a, const struct envelope *b)
{
    ck_assert_str_eq(a->id, b->id);
    ck_assert_int_eq((long long)a->arrival, (long long)b->arrival);
    ck_assert_uint_eq(a->size, b->size);
    ck_assert_str_eq(a->sender, b->sender);
    ck_assert_str_eq(a->client_addr, b->client_addr);
    ck_assert_str_eq(a->client_helo, b->client_helo);
    ck_assert_int_eq(a->ret, b->ret);
    ck_assert_str_eq(a->envid, b->envid);
    ck_assert_int_eq(a->requiretls, b->requiretls);
    ck_assert_str_eq(a->quarantine, b->quarantine);
    ck_assert_str_eq(a->protocol, b->protocol);
    ck_assert_int_eq(a->body_8bit, b->body_8bit);
    ck_assert_int_eq(a->smtputf8, b->smtputf8);
    ck_assert_uint_eq(a->attempts, b->attempts);
    ck_assert_int_eq((long long)a->next_attempt, (long long)b->next_attempt);
    ck_assert_uint_eq(a->nrcpts, b->nrcpts);
    for (size_t i = 0; i < a->nrcpts; i++) {
        ck_assert_str_eq(a->rcpts[i].addr, b->rcpts[i].addr);
        ck_assert_int_eq(a->rcpts[i].state, b->rcpts[i].state);
        ck_assert_uint_eq(a->rcpts[i].attempts, b->rcpts[i].attempts);
        ck_assert_str_eq(a->rcpts[i].result, b->rcpts[i].result);
        ck_assert_uint_eq(a->rcpts[i].notify, b->rcpts[i].notify);
        ck_assert_int_eq(a->rcpts[i].orcpt_type, b->rcpts[i].orcpt_type);
        ck_assert_str_eq(a->rcpts[i].orcpt, b->rcpts[i].orcpt);
        ck_assert_int_eq((long long)a->rcpts[i].next_attempt, (long long)b->rcpts[i].next_attempt);
        ck_assert_int_eq((long long)a->rcpts[i].last_attempt, (long long)b->rcpts[i].last_attempt);
    }
    ck_assert_int_eq(a->hold, b->hold);
    ck_assert_int_eq(a->delay_warned, b->delay_warned);
    ck_assert_int_eq(a->kind, b->kind);
}

static void round_trip(const struct envelope *e)
{
    struct buf b;
    struct envelope got;
    serialize(e, &b);
    int r = env_parse(b.data, b.len, &got, err, sizeof err);
    ck_assert_msg(r == 0, "parse of own serialisation failed: %s", err);
    assert_same(e, &got);
    env_free(&got);
    buf_free(&b);
}

/* A file from body lines, with the magic line and a correct end record. */
static char *make_file(const char *body, size_t bodylen, size_t *len)
{
    static const char magic[] = "FERRY-ENV 1\n";
    size_t n = strlen(magic) + bodylen;
    char *p = malloc(n + 32);
    ck_assert_ptr_nonnull(p);
    memcpy(p, magic, strlen(magic));
    memcpy(p + strlen(magic), body, bodylen);
    unsigned long crc = crc32(0L, (const Bytef *)p, (uInt)n);
    *len = n + (size_t)sprintf(p + n, "end %08lx\n", crc);
    return p;
}

static int parse_body(const char *body, struct envelope *e)
{
    size_t len;
    char *p = make_file(body, strlen(body), &len);
    int r = env_parse(p, len, e, err, sizeof err);
    free(p);
    return r;
}

#define GOOD_HEAD "id 0123456789ABCDEF\narrival 1700000000\nsize 10\nsender a@b\n"
#define GOOD_RCPT "rcpt pending 0 c@d -\n"

START_TEST(round_trip_simple)
{
    struct envelope e;
    sample(&e);
    round_trip(&e);
    ck_assert_uint_eq(env_pending(&e), 1);
    ck_assert_str_eq(rcpt_state_name(RCPT_DELIVERED), "delivered");

    /* the hand-built reference also parses */
    struct envelope got;
    ck_assert_msg(parse_body(GOOD_HEAD GOOD_RCPT, &got) == 0, "%s", err);
    ck_assert_str_eq(got.id, "0123456789ABCDEF");
    ck_assert_str_eq(got.sender, "a@b");
    ck_assert_uint_eq(got.nrcpts, 1);
    ck_assert_str_eq(got.rcpts[0].addr, "c@d");
    ck_assert_str_eq(got.rcpts[0].result, "");
    env_free(&got);
    env_free(&e);
}
END_TEST

/* The scheduler's records: deferred state, per-recipient times, hold, the
   delay-warning flag and the message kind survive a round trip; a file written
   before they existed parses with every one of them unset. */
START_TEST(round_trip_sched_state)
{
    struct envelope e;
    sample(&e);
    e.rcpts[0].state = RCPT_DEFERRED;
    e.rcpts[0].attempts = 4;
    e.rcpts[0].next_attempt = 1700003600;
    e.rcpts[0].last_attempt = 1700000000;
    strcpy(e.rcpts[0].result, "4.4.3 no remote delivery configured for example.org");
    e.hold = true;
    e.delay_warned = true;
    e.kind = ENV_KIND_BOUNCE;
    round_trip(&e);
    ck_assert_uint_eq(env_pending(&e), 1);
    ck_assert_int_eq((long long)env_earliest_next(&e), 1700003600);
    ck_assert_str_eq(rcpt_state_name(RCPT_DEFERRED), "deferred");
    e.kind = ENV_KIND_DOUBLE_BOUNCE;
    round_trip(&e);
    env_free(&e);

    struct envelope old;
    ck_assert_msg(parse_body(GOOD_HEAD GOOD_RCPT, &old) == 0, "%s", err);
    ck_assert(!old.hold && !old.delay_warned && old.kind == ENV_KIND_NORMAL);
    ck_assert_int_eq((long long)old.rcpts[0].next_attempt, 0);
    ck_assert_int_eq((long long)env_earliest_next(&old), 0);
    env_free(&old);

    ck_assert_msg(parse_body(GOOD_HEAD GOOD_RCPT "rcpt deferred 2 e@f 4.0.0%20later\nrsched 1 5 6\nkind bounce\n",
                             &old) == 0, "%s", err);
    ck_assert_int_eq(old.rcpts[1].state, RCPT_DEFERRED);
    ck_assert_int_eq((long long)old.rcpts[1].next_attempt, 5);
    ck_assert_int_eq(old.kind, ENV_KIND_BOUNCE);
    env_free(&old);
}
END_TEST

START_TEST(round_trip_awkward)
{
    struct envelope e;
    sample(&e);
    strcpy(e.sender, "\"a b%20c\"@ex ample.com");
    strcpy(e.client_addr, "");
    strcpy(e.client_helo, "line1\nline2\r\n\tx\x7f%");
    strcpy(e.protocol, "-");
    strcpy(e.rcpts[0].addr, "j\xc3\xbcrgen@b\xc3\xbc" "cher.example");
    strcpy(e.rcpts[1].result, "451 4.3.0 100% full\r\nsecond line  ");
    e.smtputf8 = true;
    e.body_8bit = false;
    round_trip(&e);

    strcpy(e.sender, "");
    round_trip(&e);
    strcpy(e.sender, "-");
    round_trip(&e);
    strcpy(e.sender, "--");
    round_trip(&e);
    strcpy(e.sender, "%");
    round_trip(&e);
    strcpy(e.rcpts[0].addr, "-");
    strcpy(e.rcpts[0].result, "-");
    round_trip(&e);

    /* every octet 0x01..0xff in a value */
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    strcpy(e.client_helo, all + 1);
    strcpy(e.rcpts[1].result, all);
    round_trip(&e);
    env_free(&e);
}
END_TEST

/* Values at their longest, made entirely of octets that need escaping. */
START_TEST(round_trip_longest)
{
    struct envelope e;
    sample(&e);
    memset(e.sender, ' ', ADDR_PATH_MAX);
    e.sender[ADDR_PATH_MAX] = '\0';
    memset(e.client_helo, '%', sizeof e.client_helo - 1);
    e.client_helo[sizeof e.client_helo - 1] = '\0';
    memset(e.rcpts[0].addr, '\n', ADDR_PATH_MAX);
    e.rcpts[0].addr[ADDR_PATH_MAX] = '\0';
    memset(e.rcpts[0].result, ' ', ENV_RESULT_MAX - 1);
    e.rcpts[0].result[ENV_RESULT_MAX - 1] = '\0';
    e.rcpts[0].attempts = 1000000;
    e.rcpts[0].state = RCPT_DELIVERED;
    round_trip(&e);
    env_free(&e);
}
END_TEST

START_TEST(round_trip_many)
{
    struct envelope e;
    sample(&e);
    for (int i = 0; i < 998; i++) {
        char a[64];
        snprintf(a, sizeof a, "user%d@host%d.example", i, i % 7);
        ck_assert_int_eq(env_add_rcpt(&e, a), 0);
        struct env_rcpt *r = &e.rcpts[e.nrcpts - 1];
        r->state = (enum rcpt_state)(i % 3);
        r->attempts = (unsigned)i;
        snprintf(r->result, sizeof r->result, "%d reply %d%%", 250 + i % 300, i);
    }
    ck_assert_uint_eq(e.nrcpts, 1000);
    round_trip(&e);
    env_free(&e);
}
END_TEST

START_TEST(rcpt_limits)
{
    struct envelope e;
    env_init(&e);
    char a[ADDR_PATH_MAX + 2];
    memset(a, 'x', ADDR_PATH_MAX + 1);
    a[ADDR_PATH_MAX + 1] = '\0';
    ck_assert_int_lt(env_add_rcpt(&e, a), 0);
    a[ADDR_PATH_MAX] = '\0';
    ck_assert_int_eq(env_add_rcpt(&e, a), 0);
    ck_assert_uint_eq(e.nrcpts, 1);
    env_free(&e);
    ck_assert_uint_eq(e.nrcpts, 0);
    ck_assert_ptr_null(e.rcpts);
}
END_TEST

START_TEST(bad_magic)
{
    struct envelope e;
    static const char *const bad[] = {
        "", "FERRY-ENV 1", "FERRY-ENV 2\nid x\n", "ferry-env 1\n", "FERRY-ENV 1 \n",
        "XFERRY-ENV 1\n", "FERRY-ENV  1\n", "FERRY-ENV 1\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(env_parse(bad[i], strlen(bad[i]), &e, err, sizeof err) < 0,
                      "\"%s\" accepted", bad[i]);

    /* The right body under a wrong magic, even with a matching checksum. */
    struct buf b;
    struct envelope s;
    sample(&s);
    serialize(&s, &b);
    b.data[10] = '2';
    unsigned long crc = crc32(0L, (const Bytef *)b.data, (uInt)(b.len - 13));
    sprintf(b.data + b.len - 13, "end %08lx\n", crc);
    ck_assert_int_lt(env_parse(b.data, b.len, &e, err, sizeof err), 0);
    buf_free(&b);
    env_free(&s);
}
END_TEST

START_TEST(every_prefix_fails)
{
    struct envelope s, e;
    struct buf b;
    sample(&s);
    serialize(&s, &b);
    for (size_t n = 0; n < b.len; n++) {
        char *copy = malloc(n + 1);      /* exact size, so over-reads show up under ASan */
        ck_assert_ptr_nonnull(copy);
        memcpy(copy, b.data, n);
        ck_assert_msg(env_parse(copy, n, &e, err, sizeof err) < 0,
                      "prefix of %zu/%zu octets accepted", n, b.len);
        free(copy);
    }
    ck_assert_int_eq(env_parse(b.data, b.len, &e, err, sizeof err), 0);
    env_free(&e);
    buf_free(&b);
    env_free(&s);
}
END_TEST

START_TEST(every_changed_byte_fails)
{
    struct envelope s, e;
    struct buf b;
    sample(&s);
    s.rcpts[1].result[0] = '\0';
    serialize(&s, &b);
    char *copy = malloc(b.len);
    ck_assert_ptr_nonnull(copy);
    for (size_t i = 0; i < b.len; i++) {
        for (int x = 1; x < 256; x++) {
            memcpy(copy, b.data, b.len);
            copy[i] = (char)(copy[i] ^ x);
            ck_assert_msg(env_parse(copy, b.len, &e, err, sizeof err) < 0,
                          "octet %zu changed from 0x%02x to 0x%02x accepted", i,
                          (unsigned char)b.data[i], (unsigned char)copy[i]);
        }
    }
    free(copy);
    buf_free(&b);
    env_free(&s);
}
END_TEST

/* The end record is exactly "end " and eight lowercase hex digits. */
START_TEST(end_record_strict)
{
    struct envelope s, e;
    struct buf b;
    sample(&s);
    serialize(&s, &b);
    size_t crcpos = b.len - 9;          /* first hex digit */
    char *copy = malloc(b.len + 2);
    ck_assert_ptr_nonnull(copy);

    /* upper-case hex digits */
    memcpy(copy, b.data, b.len);
    bool any = false;
    for (size_t i = crcpos; i < b.len - 1; i++) {
        if (copy[i] >= 'a' && copy[i] <= 'f') {
            copy[i] = (char)(copy[i] - 'a' + 'A');
            any = true;
        }
    }
    if (any)
        ck_assert_int_lt(env_parse(copy, b.len, &e, err, sizeof err), 0);

    /* the CRC with a leading zero dropped and replaced by a space or a sign */
    char crc[9];
    memcpy(crc, b.data + crcpos, 8);
    crc[8] = '\0';
    unsigned long v = strtoul(crc, NULL, 16);
    static const char *const forms[] = { "end  %07lx\n", "end +%07lx\n", "end %07lx \n",
                                         "end 0x%06lx\n", "end %09lx\n", "end %lx\n", "end\t%08lx\n" };
    for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
        char tail[32];
        int tl = snprintf(tail, sizeof tail, forms[f], v);
        memcpy(copy, b.data, crcpos - 4);
        memcpy(copy + crcpos - 4, tail, (size_t)tl);
        size_t len = crcpos - 4 + (size_t)tl;
        if (len == b.len && memcmp(copy, b.data, len) == 0)
            continue;       /* this form happens to be the canonical one */
        ck_assert_msg(env_parse(copy, len, &e, err, sizeof err) < 0,
                      "end record \"%.*s\" accepted", tl - 1, tail);
    }
    free(copy);
    buf_free(&b);
    env_free(&s);
}
END_TEST

START_TEST(data_after_end)
{
    struct envelope s, e;
    struct buf b;
    sample(&s);
    serialize(&s, &b);
    buf_puts(&b, "rcpt pending 0 x@y -\n");
    ck_assert_int_lt(env_parse(b.data, b.len, &e, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "after the end"));
    buf_free(&b);
    env_free(&s);
}
END_TEST

START_TEST(unknown_and_malformed)
{
    struct envelope e;
    static const char *const bad[] = {
        GOOD_HEAD GOOD_RCPT "colour blue\n",
        "colour blue\n" GOOD_HEAD GOOD_RCPT,
        GOOD_HEAD "RCPT pending 0 c@d -\n",
        GOOD_HEAD "rcpt pending 0 c@d\n",
        GOOD_HEAD "rcpt pending 0 c@d - extra\n",
        GOOD_HEAD "rcpt waiting 0 c@d -\n",
        GOOD_HEAD "rcpt pending x c@d -\n",
        GOOD_HEAD "rcpt pending 1000001 c@d -\n",
        GOOD_HEAD "rcpt pending 0 - -\n",
        GOOD_HEAD GOOD_RCPT "body 9BIT\n",
        GOOD_HEAD GOOD_RCPT "smtputf8 2\n",
        GOOD_HEAD GOOD_RCPT "attempts -1\n",
        GOOD_HEAD GOOD_RCPT "next soon\n",
        GOOD_HEAD GOOD_RCPT "helo\n",
        GOOD_HEAD GOOD_RCPT "\n",
        GOOD_HEAD GOOD_RCPT "helo a b\n",
        "id 0123456789abcdef\narrival 1\nsize 1\nsender a\n" GOOD_RCPT,
        "id 0123456789ABCDE\narrival 1\nsize 1\nsender a\n" GOOD_RCPT,
        "id 0123456789ABCDEF\narrival -1\nsize 1\nsender a\n" GOOD_RCPT,
        "id 0123456789ABCDEF\narrival 1\nsize 1x\nsender a\n" GOOD_RCPT,
        GOOD_HEAD GOOD_RCPT "rsched 1 5 6\n",            /* names no recipient */
        GOOD_HEAD "rsched 0 5 6\n" GOOD_RCPT,            /* before its recipient */
        GOOD_HEAD GOOD_RCPT "rsched 0 5\n",
        GOOD_HEAD GOOD_RCPT "rsched 0 x 6\n",
        GOOD_HEAD GOOD_RCPT "hold 2\n",
        GOOD_HEAD GOOD_RCPT "delaywarned yes\n",
        GOOD_HEAD GOOD_RCPT "kind triple-bounce\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(parse_body(bad[i], &e) < 0, "case %zu accepted:\n%s", i, bad[i]);
    ck_assert_int_lt(parse_body(GOOD_HEAD GOOD_RCPT "colour blue\n", &e), 0);
    ck_assert_ptr_nonnull(strstr(err, "colour"));
}
END_TEST

START_TEST(missing_required)
{
    struct envelope e;
    static const char *const lines[] = { "id 0123456789ABCDEF\n", "arrival 1700000000\n", "size 10\n",
                                         "sender a@b\n" };
    for (int skip = 0; skip < 4; skip++) {
        char body[512] = "";
        for (int i = 0; i < 4; i++)
            if (i != skip)
                strcat(body, lines[i]);
        strcat(body, GOOD_RCPT);
        ck_assert_msg(parse_body(body, &e) < 0, "envelope without %s accepted", lines[skip]);
        ck_assert_ptr_nonnull(strstr(err, "required"));
    }
    ck_assert_int_lt(parse_body(GOOD_HEAD, &e), 0);
    ck_assert_ptr_nonnull(strstr(err, "no recipients"));
    /* the empty sender is written "-" and is present */
    ck_assert_int_eq(parse_body("id 0123456789ABCDEF\narrival 1\nsize 1\nsender -\n" GOOD_RCPT, &e), 0);
    ck_assert_str_eq(e.sender, "");
    env_free(&e);
}
END_TEST

START_TEST(bad_escapes)
{
    struct envelope e;
    static const char *const bad[] = { "%zz", "%00", "a%", "a%4", "%4g", "%g4", "%+4", "%-1", "% 4",
                                       "%0x", "x%%y" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "id 0123456789ABCDEF\narrival 1\nsize 1\nsender %s\n" GOOD_RCPT, bad[i]);
        ck_assert_msg(parse_body(body, &e) < 0, "sender \"%s\" accepted (as \"%s\")", bad[i], e.sender);
        snprintf(body, sizeof body, GOOD_HEAD "rcpt pending 0 c@d %s\n", bad[i]);
        ck_assert_msg(parse_body(body, &e) < 0, "result \"%s\" accepted", bad[i]);
    }
    /* good escapes, either case */
    ck_assert_int_eq(parse_body("id 0123456789ABCDEF\narrival 1\nsize 1\nsender %41%2a%7F\n" GOOD_RCPT, &e), 0);
    ck_assert_str_eq(e.sender, "A*\x7f");
    env_free(&e);
}
END_TEST

START_TEST(nul_octet)
{
    struct envelope e;
    static const char body[] = "id 0123456789ABCDEF\narrival 1\nsize 1\nsender a\0b\n" GOOD_RCPT;
    size_t len;
    char *p = make_file(body, sizeof body - 1, &len);
    ck_assert_int_lt(env_parse(p, len, &e, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "NUL"));
    free(p);
}
END_TEST

START_TEST(dsn_records)
{
    struct envelope e;
    sample(&e);
    /* every NOTIFY combination the session can store */
    for (unsigned n = 0; n <= ENV_NOTIFY_NEVER; n++) {
        if (n > 7 && n != ENV_NOTIFY_NEVER)
            continue;
        e.rcpts[0].notify = n;
        e.rcpts[0].orcpt_type = ENV_ORCPT_UTF8;
        strcpy(e.rcpts[0].orcpt, "j\xc3\xbcrgen@example.org");
        e.ret = (enum env_ret)(n % 3);
        e.requiretls = n & 1;
        round_trip(&e);
    }
    /* longest values, all escaped */
    memset(e.envid, ' ', ENV_ENVID_MAX);
    e.envid[ENV_ENVID_MAX] = '\0';
    memset(e.rcpts[0].orcpt, '%', ENV_ORCPT_MAX);
    e.rcpts[0].orcpt[ENV_ORCPT_MAX] = '\0';
    memset(e.rcpts[0].result, '\n', ENV_RESULT_MAX - 1);
    e.rcpts[0].result[ENV_RESULT_MAX - 1] = '\0';
    round_trip(&e);

    /* Unset values are not written at all, so such envelopes match the old format. */
    struct buf b;
    e.ret = ENV_RET_UNSET;
    e.envid[0] = '\0';
    e.requiretls = false;
    e.quarantine[0] = '\0';
    for (size_t i = 0; i < e.nrcpts; i++) {
        e.rcpts[i].notify = 0;
        e.rcpts[i].orcpt_type = ENV_ORCPT_NONE;
        e.rcpts[i].orcpt[0] = '\0';
    }
    serialize(&e, &b);
    ck_assert_ptr_null(strstr(b.data, "\nret "));
    ck_assert_ptr_null(strstr(b.data, "\nenvid "));
    ck_assert_ptr_null(strstr(b.data, "\nrequiretls "));
    ck_assert_ptr_null(strstr(b.data, "\nquarantine "));
    ck_assert_ptr_null(strstr(b.data, "\nnotify "));
    ck_assert_ptr_null(strstr(b.data, "\norcpt "));
    buf_free(&b);
    round_trip(&e);
    env_free(&e);

    /* hand-built: records apply to the rcpt line before them */
    struct envelope got;
    ck_assert_msg(parse_body(GOOD_HEAD "ret FULL\nenvid abc%20d\nrequiretls 1\n"
                             "rcpt pending 0 c@d -\nnotify SUCCESS,DELAY\norcpt rfc822 C@D\n"
                             "rcpt pending 0 e@f -\nnotify NEVER\n", &got) == 0, "%s", err);
    ck_assert_int_eq(got.ret, ENV_RET_FULL);
    ck_assert_str_eq(got.envid, "abc d");
    ck_assert_str_eq(got.quarantine, "");
    env_free(&got);
    ck_assert_msg(parse_body(GOOD_HEAD "quarantine dmarc%3dfail%20why\nrcpt pending 0 c@d -\n", &got) == 0, "%s", err);
    ck_assert_str_eq(got.quarantine, "dmarc=fail why");
    env_free(&got);
    ck_assert_int_eq(parse_body(GOOD_HEAD "quarantine a\nquarantine b\nrcpt pending 0 c@d -\n", &got), -1);
    ck_assert_int_eq(parse_body(GOOD_HEAD "quarantine -\nrcpt pending 0 c@d -\n", &got), -1);
    ck_assert_msg(parse_body(GOOD_HEAD "ret FULL\nenvid abc%20d\nrequiretls 1\n"
                             "rcpt pending 0 c@d -\nnotify SUCCESS,DELAY\norcpt rfc822 C@D\n"
                             "rcpt pending 0 e@f -\nnotify NEVER\n", &got) == 0, "%s", err);
    ck_assert(got.requiretls);
    ck_assert_uint_eq(got.rcpts[0].notify, ENV_NOTIFY_SUCCESS | ENV_NOTIFY_DELAY);
    ck_assert_int_eq(got.rcpts[0].orcpt_type, ENV_ORCPT_RFC822);
    ck_assert_str_eq(got.rcpts[0].orcpt, "C@D");
    ck_assert_uint_eq(got.rcpts[1].notify, ENV_NOTIFY_NEVER);
    ck_assert_int_eq(got.rcpts[1].orcpt_type, ENV_ORCPT_NONE);
    env_free(&got);
    /* an envelope from before these records: nothing given */
    ck_assert_msg(parse_body(GOOD_HEAD GOOD_RCPT, &got) == 0, "%s", err);
    ck_assert_int_eq(got.ret, ENV_RET_UNSET);
    ck_assert_str_eq(got.envid, "");
    ck_assert(!got.requiretls);
    ck_assert_uint_eq(got.rcpts[0].notify, 0);
    ck_assert_int_eq(got.rcpts[0].orcpt_type, ENV_ORCPT_NONE);
    env_free(&got);

    char list[32];
    env_notify_format(ENV_NOTIFY_DELAY | ENV_NOTIFY_SUCCESS, list, sizeof list);
    ck_assert_str_eq(list, "SUCCESS,DELAY");
    env_notify_format(0, list, sizeof list);
    ck_assert_str_eq(list, "");
}
END_TEST

START_TEST(dsn_records_bad)
{
    struct envelope e;
    static const char *const bad[] = {
        GOOD_HEAD GOOD_RCPT "ret full\n",
        GOOD_HEAD GOOD_RCPT "ret BOTH\n",
        GOOD_HEAD GOOD_RCPT "ret FULL\nret FULL\n",
        GOOD_HEAD GOOD_RCPT "ret\n",
        GOOD_HEAD GOOD_RCPT "envid -\n",
        GOOD_HEAD GOOD_RCPT "envid a\nenvid a\n",
        GOOD_HEAD GOOD_RCPT "envid %00\n",
        GOOD_HEAD GOOD_RCPT "envid " "12345678901234567890123456789012345678901234567890"
                                     "123456789012345678901234567890123456789012345678901\n",
        GOOD_HEAD GOOD_RCPT "requiretls 2\n",
        GOOD_HEAD GOOD_RCPT "requiretls 1\nrequiretls 1\n",
        GOOD_HEAD "notify NEVER\n" GOOD_RCPT,
        GOOD_HEAD "orcpt rfc822 a@b\n" GOOD_RCPT,
        GOOD_HEAD GOOD_RCPT "notify NEVER\nnotify NEVER\n",
        GOOD_HEAD GOOD_RCPT "notify NEVER,SUCCESS\n",
        GOOD_HEAD GOOD_RCPT "notify SUCCESS,SUCCESS\n",
        GOOD_HEAD GOOD_RCPT "notify success\n",
        GOOD_HEAD GOOD_RCPT "notify SUCCESS,\n",
        GOOD_HEAD GOOD_RCPT "notify ,SUCCESS\n",
        GOOD_HEAD GOOD_RCPT "notify SOMETIMES\n",
        GOOD_HEAD GOOD_RCPT "notify -\n",
        GOOD_HEAD GOOD_RCPT "orcpt rfc822 a@b\norcpt rfc822 a@b\n",
        GOOD_HEAD GOOD_RCPT "orcpt x400 a@b\n",
        GOOD_HEAD GOOD_RCPT "orcpt RFC822 a@b\n",
        GOOD_HEAD GOOD_RCPT "orcpt rfc822 -\n",
        GOOD_HEAD GOOD_RCPT "orcpt rfc822\n",
        GOOD_HEAD GOOD_RCPT "orcpt rfc822 a b\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(parse_body(bad[i], &e) < 0, "case %zu accepted:\n%s", i, bad[i]);
}
END_TEST

START_TEST(qid_basics)
{
    char prev[QID_LEN + 1], id[QID_LEN + 1];
    qid_new(prev);
    ck_assert(qid_valid(prev));
    ck_assert_uint_eq(strlen(prev), QID_LEN);
    for (int i = 0; i < 10000; i++) {
        qid_new(id);
        ck_assert_msg(qid_valid(id), "invalid ID %s", id);
        ck_assert_msg(strcmp(prev, id) < 0, "IDs not increasing: %s then %s", prev, id);
        strcpy(prev, id);
    }
    time_t now = time(NULL);
    time_t t = qid_time(id);
    ck_assert_msg(t >= now - 2 && t <= now + 2, "qid_time %lld, now %lld", (long long)t, (long long)now);
    ck_assert_int_eq((long long)qid_time("0000000000000000"), 0);
    ck_assert_int_eq((long long)qid_time("0000010000000000"), 32);
    ck_assert_int_eq((long long)qid_time("000000V000000000"), 31);
}
END_TEST

START_TEST(qid_validity)
{
    ck_assert(qid_valid("0123456789ABCDEF"));
    ck_assert(qid_valid("GHIJKLMNOPQRSTUV"));
    ck_assert(!qid_valid(""));
    ck_assert(!qid_valid("0123456789ABCDE"));
    ck_assert(!qid_valid("0123456789ABCDEF0"));
    ck_assert(!qid_valid("0123456789ABCDEW"));
    ck_assert(!qid_valid("0123456789abcdef"));
    ck_assert(!qid_valid("0123456789ABCDE/"));
    ck_assert(!qid_valid("0123456789ABCDE:"));
    ck_assert(!qid_valid("0123456789ABCDE@"));
    ck_assert(!qid_valid("0123456789ABCD E"));
    ck_assert(!qid_valid("../../etc/passwd"));
}
END_TEST

Suite *envelope_suite(void)
{
    Suite *s = suite_create("envelope");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip_simple);
    tcase_add_test(tc, round_trip_sched_state);
    tcase_add_test(tc, round_trip_awkward);
    tcase_add_test(tc, round_trip_longest);
    tcase_add_test(tc, round_trip_many);
    tcase_add_test(tc, rcpt_limits);
    tcase_add_test(tc, bad_magic);
    tcase_add_test(tc, every_prefix_fails);
    tcase_add_test(tc, every_changed_byte_fails);
    tcase_add_test(tc, end_record_strict);
    tcase_add_test(tc, data_after_end);
    tcase_add_test(tc, unknown_and_malformed);
    tcase_add_test(tc, missing_required);
    tcase_add_test(tc, bad_escapes);
    tcase_add_test(tc, nul_octet);
    tcase_add_test(tc, dsn_records);
    tcase_add_test(tc, dsn_records_bad);
    tcase_add_test(tc, qid_basics);
    tcase_add_test(tc, qid_validity);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(envelope_suite)

/* Unit tests for pull/intent: intent messages compared with golden files in
   tests/data/pull/ (NAME.in: the notice; NAME.out: the message. FERRY_REGEN=1
   rewrites the .out files; review the diff before committing), the message's
   structure, and finding the reply token. */
#include "pull/intent.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = malloc(1 << 16);
    *len = fread(data, 1, (1 << 16) - 1, f);
    data[*len] = '\0';
    fclose(f);
    return data;
}

/* NAME.in: "key value" lines (value may be empty) */
static void load_in(const char *name, struct pull_notice *n, char *host, size_t hostsz, time_t *now)
{
    char path[256], line[512];
    snprintf(path, sizeof path, "tests/data/pull/%s.in", name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "missing %s", path);
    memset(n, 0, sizeof *n);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *v = strchr(line, ' ');
        ck_assert_ptr_nonnull(v);
        *v++ = '\0';
        if (!strcmp(line, "hostname")) snprintf(host, hostsz, "%s", v);
        else if (!strcmp(line, "now")) *now = (time_t)atoll(v);
        else if (!strcmp(line, "user")) snprintf(n->user, sizeof n->user, "%s", v);
        else if (!strcmp(line, "recipient")) snprintf(n->recipient, sizeof n->recipient, "%s", v);
        else if (!strcmp(line, "sender")) snprintf(n->sender, sizeof n->sender, "%s", v);
        else if (!strcmp(line, "subject")) snprintf(n->subject, sizeof n->subject, "%s", v);
        else if (!strcmp(line, "peer_ip")) snprintf(n->peer_ip, sizeof n->peer_ip, "%s", v);
        else if (!strcmp(line, "peer_name")) snprintf(n->peer_name, sizeof n->peer_name, "%s", v);
        else if (!strcmp(line, "id")) snprintf(n->id, sizeof n->id, "%s", v);
        else if (!strcmp(line, "h")) snprintf(n->h, sizeof n->h, "%s", v);
        else if (!strcmp(line, "created")) n->created = (time_t)atoll(v);
        else if (!strcmp(line, "expires")) n->expires = (time_t)atoll(v);
        else ck_abort_msg("%s: unknown key %s", path, line);
    }
    fclose(f);
}

static void golden(const char *name)
{
    struct pull_notice n;
    char host[256], path[256];
    time_t now;
    load_in(name, &n, host, sizeof host, &now);
    struct buf b;
    buf_init(&b, 1 << 16);
    ck_assert_int_eq(intent_build(&n, host, now, &b), 0);
    snprintf(path, sizeof path, "tests/data/pull/%s.out", name);
    if (getenv("FERRY_REGEN")) {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(b.data, 1, b.len, f);
        fclose(f);
    }
    size_t len;
    char *want = slurp(path, &len);
    ck_assert_msg(want != NULL, "missing golden file %s", path);
    ck_assert_msg(len == b.len && memcmp(want, b.data, len) == 0, "%s differs from the golden file:\n%s", name,
                  b.data);
    /* every line CRLF-terminated and under 998 octets; header section ASCII */
    const char *body = strstr(b.data, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    for (const char *p = b.data; p < b.data + b.len;) {
        const char *e = strstr(p, "\r\n");
        ck_assert_ptr_nonnull(e);
        ck_assert_int_lt(e - p, 998);
        for (const char *q = p; q < e; q++) {
            ck_assert(*q != '\r' && *q != '\n');
            if (p < body && strncmp(p, "To: ", 4) != 0)   /* a UTF-8 address stays UTF-8 (RFC 6532) */
                ck_assert_msg((unsigned char)*q < 0x80, "%s: non-ASCII in the header section", name);
        }
        p = e + 2;
    }
    /* the reply token found in each place the message offers it */
    char id[NOTICE_ID_LEN + 1], h[NOTICE_H_LEN + 1], rt[64], mid[128];
    snprintf(rt, sizeof rt, INTENT_LOCAL_PART "+%s.%s", n.id, n.h);
    ck_assert_int_eq(intent_reply_token(rt, NULL, NULL, id, h), 0);
    ck_assert_str_eq(id, n.id);
    ck_assert_str_eq(h, n.h);
    snprintf(mid, sizeof mid, "<x@y> <dmtp.%s.%s@%s>", n.id, n.h, host);
    ck_assert_ptr_nonnull(strstr(b.data, mid + 6));
    ck_assert_int_eq(intent_reply_token(NULL, mid, NULL, id, h), 0);
    ck_assert_str_eq(h, n.h);
    /* and in the raw Subject field, whatever its encoding */
    char *subj = strstr(b.data, "\r\nSubject:");
    ck_assert_ptr_nonnull(subj);
    ck_assert_int_eq(intent_reply_token(NULL, NULL, subj, id, h), 0);
    ck_assert_str_eq(id, n.id);
    free(want);
    buf_free(&b);
}

START_TEST(golden_basic) { golden("basic"); }
END_TEST
START_TEST(golden_null_sender) { golden("null_sender"); }
END_TEST
START_TEST(golden_utf8) { golden("utf8"); }
END_TEST

START_TEST(reply_tokens)
{
    char id[NOTICE_ID_LEN + 1], h[NOTICE_H_LEN + 1];
    /* lower-cased by a client or MTA on the way: still found, normalised */
    ck_assert_int_eq(intent_reply_token("DMTP-Pull+0000000A0000000B.0123456789abcdef", NULL, NULL, id, h), 0);
    ck_assert_str_eq(id, "0000000a0000000b");
    ck_assert_str_eq(h, "0123456789ABCDEF");
    ck_assert_int_eq(intent_reply_token(NULL, NULL, "Re: Mail waiting from x [pull 0000000a0000000b.0123456789ABCDEF]",
                                        id, h), 0);
    /* precedence: envelope recipient, then references, then subject */
    ck_assert_int_eq(intent_reply_token("dmtp-pull+0000000a00000001.0000000000000001",
                                        "<dmtp.0000000a00000002.0000000000000002@h>",
                                        "[pull 0000000a00000003.0000000000000003]", id, h), 0);
    ck_assert_str_eq(id, "0000000a00000001");
    ck_assert_int_eq(intent_reply_token("alice", "<dmtp.0000000a00000002.0000000000000002@h>",
                                        "[pull 0000000a00000003.0000000000000003]", id, h), 0);
    ck_assert_str_eq(id, "0000000a00000002");
    /* a sender address imitating a token before ours: ours (the last) wins */
    ck_assert_int_eq(intent_reply_token(NULL, NULL, "Re: Mail waiting from \"[pull 0000000a00000009.0000000000000009]\"@x "
                                        "[pull 0000000a0000000b.0123456789ABCDEF]", id, h), 0);
    ck_assert_str_eq(id, "0000000a0000000b");
    /* malformed: none */
    ck_assert_int_eq(intent_reply_token("dmtp-pull+0000000a0000000b.0123456789ABCDE", NULL, NULL, id, h), -1);
    ck_assert_int_eq(intent_reply_token("dmtp-pullx0000000a0000000b.0123456789ABCDEF", NULL, NULL, id, h), -1);
    ck_assert_int_eq(intent_reply_token("dmtp-pull+0000000g0000000b.0123456789ABCDEF", NULL, NULL, id, h), -1);
    ck_assert_int_eq(intent_reply_token(NULL, "<dmtp.0000000a0000000b.0123456789ABCDEW@h>", NULL, id, h), -1);
    ck_assert_int_eq(intent_reply_token(NULL, NULL, "[pull 0000000a0000000b.0123456789ABCDEF", id, h), -1);
    ck_assert_int_eq(intent_reply_token(NULL, NULL, NULL, id, h), -1);
}
END_TEST

START_TEST(bad_hostname)
{
    struct pull_notice n;
    char host[256];
    time_t now;
    load_in("basic", &n, host, sizeof host, &now);
    struct buf b;
    buf_init(&b, 1 << 16);
    ck_assert_int_eq(intent_build(&n, "mx\r\nBcc: x", now, &b), -1);
    ck_assert_int_eq(intent_build(&n, "", now, &b), -1);
    buf_free(&b);
    buf_init(&b, 100);                                          /* too small: refused, not cut */
    ck_assert_int_eq(intent_build(&n, host, now, &b), -1);
    buf_free(&b);
}
END_TEST

static Suite *pull_intent_suite(void)
{
    setenv("TZ", "UTC", 1);
    Suite *s = suite_create("pull_intent");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, golden_basic);
    tcase_add_test(tc, golden_null_sender);
    tcase_add_test(tc, golden_utf8);
    tcase_add_test(tc, reply_tokens);
    tcase_add_test(tc, bad_hostname);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(pull_intent_suite)

/* delivery/local_job: the messages between the queue process and its delivery
   workers, fed raw bytes. */
#include "delivery/local_job.h"
#include "tests/unit/unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(request_round_trip)
{
    struct local_job_request *r = calloc(1, sizeof *r), *back = calloc(1, sizeof *back);
    r->nonce = 0x0123456789abcdefULL;
    strcpy(r->id, "1LG7ENTAE2J007PN");
    r->junk = true;
    strcpy(r->sender, "bob@example.net");
    r->n = 2;
    r->index[0] = 3;
    strcpy(r->rcpt[0], "alice@example.org");
    r->index[1] = 7;
    strcpy(r->rcpt[1], "::pipe list@example.org\t/usr/bin/archive --to x");    /* a tab in the last field */
    char line[LOCAL_JOB_REQUEST_MAX];
    int n = local_job_request_format(r, line, sizeof line);
    ck_assert_int_gt(n, 0);
    ck_assert_str_eq(line, "0123456789abcdef\t1LG7ENTAE2J007PN\t1\tbob@example.net\n"
                           "3\talice@example.org\n"
                           "7\t::pipe list@example.org\t/usr/bin/archive --to x\n");
    ck_assert_int_eq(local_job_request_parse(line, (size_t)n, back), 0);
    ck_assert(back->nonce == r->nonce);
    ck_assert_str_eq(back->id, r->id);
    ck_assert(back->junk);
    ck_assert_str_eq(back->sender, "bob@example.net");
    ck_assert_uint_eq(back->n, 2);
    ck_assert_uint_eq(back->index[1], 7);
    ck_assert_str_eq(back->rcpt[1], r->rcpt[1]);
    /* The null sender is an empty field. */
    const char *null = "0000000000000001\tID\t0\t\n0\tu@x\n";
    ck_assert_int_eq(local_job_request_parse(null, strlen(null), back), 0);
    ck_assert_str_eq(back->sender, "");
    ck_assert(!back->junk);
    /* A full job fits; one recipient more is refused both ways. */
    r->n = LOCAL_JOB_MAX_RCPTS;
    for (size_t i = 0; i < r->n; i++) {
        r->index[i] = (unsigned)i;
        memset(r->rcpt[i], 'a', ADDR_PATH_MAX);
        r->rcpt[i][ADDR_PATH_MAX] = '\0';
    }
    n = local_job_request_format(r, line, sizeof line);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(local_job_request_parse(line, (size_t)n, back), 0);
    ck_assert_uint_eq(back->n, LOCAL_JOB_MAX_RCPTS);
    r->n = LOCAL_JOB_MAX_RCPTS + 1;
    ck_assert_int_lt(local_job_request_format(r, line, sizeof line), 0);
    free(r);
    free(back);
}
END_TEST

START_TEST(request_malformed)
{
    struct local_job_request *r = malloc(sizeof *r);
    const char *bad[] = {
        "",
        "0000000000000001\tID\t0\ts\n",                   /* no recipient */
        "0000000000000001\tID\t0\ts",                     /* no line end */
        "0000000000000001\tID\t0\ts\n1\tu@x",             /* last line unterminated */
        "000000000000001\tID\t0\ts\n1\tu@x\n",            /* nonce too short */
        "000000000000000G\tID\t0\ts\n1\tu@x\n",           /* not hex */
        "000000000000000A\tID\t0\ts\n1\tu@x\n",           /* upper case */
        "0000000000000001\t\t0\ts\n1\tu@x\n",             /* empty ID */
        "0000000000000001\tID\t2\ts\n1\tu@x\n",           /* JUNK not 0 or 1 */
        "0000000000000001\tID\t0\ts\tx\n1\tu@x\n",        /* a tab in the sender */
        "0000000000000001\tID\t0\ts\n-1\tu@x\n",          /* negative index */
        "0000000000000001\tID\t0\ts\n99999999\tu@x\n",    /* index too large */
        "0000000000000001\tID\t0\ts\n1\t\n",              /* empty recipient */
        "0000000000000001\tID\t0\ts\n1u@x\n",             /* no tab */
        "0000000000000001\tID\t0\ts\n1\tu@x\n1\tv@x\n",   /* one index twice */
        "0000000000000001\tID\t0\ts\n1\tu@x\r\n",         /* CR */
        "0000000000000001\tID\t0\ts\n\n",                 /* an empty line */
        "0000000000000001\tID\t0\ts\n01\tu@x\n",          /* a leading zero */
        "0000000000000001\tIDIDIDIDIDIDIDIDIDIDIDIDIDIDIDIDIDIDIDIDID\t0\ts\n1\tu@x\n",   /* ID too long */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(local_job_request_parse(bad[i], strlen(bad[i]), r) < 0, "accepted: %s", bad[i]);
    const char nul[] = "0000000000000001\tID\t0\ts\n1\tu\0@x\n";
    ck_assert_int_lt(local_job_request_parse(nul, sizeof nul - 1, r), 0);
    /* A recipient longer than an SMTP path. */
    char longr[600];
    int n = snprintf(longr, sizeof longr, "0000000000000001\tID\t0\ts\n1\t%0*d\n", ADDR_PATH_MAX + 1, 0);
    ck_assert_int_lt(local_job_request_parse(longr, (size_t)n, r), 0);
    /* Format refuses a line end in a recipient (it would forge another line). */
    memset(r, 0, sizeof *r);
    r->n = 1;
    strcpy(r->id, "ID");
    strcpy(r->rcpt[0], "u@x\n2\tv@x");
    char line[LOCAL_JOB_REQUEST_MAX];
    ck_assert_int_lt(local_job_request_format(r, line, sizeof line), 0);
    free(r);
}
END_TEST

START_TEST(replies_round_trip)
{
    struct local_job_reply r, back;
    char line[LOCAL_JOB_REPLY_MAX];
    memset(&r, 0, sizeof r);
    r.nonce = 42;
    strcpy(r.id, "1LG7ENTAE2J007PN");
    r.index = 5;

    r.type = LJOB_RESULT;
    r.st.result = DELIVERY_DEFER;
    strcpy(r.st.text, "4.3.0 command exited\twith\nEX_TEMPFAIL");
    int n = local_job_reply_format(&r, line, sizeof line);
    ck_assert_str_eq(line, "000000000000002a\t1LG7ENTAE2J007PN\t5\t1\t4.3.0 command exited with EX_TEMPFAIL");
    ck_assert_int_eq(local_job_reply_parse(LJOB_RESULT, line, (size_t)n, &back), 0);
    ck_assert_int_eq(back.type, LJOB_RESULT);
    ck_assert(back.nonce == 42);
    ck_assert_uint_eq(back.index, 5);
    ck_assert_int_eq(back.st.result, DELIVERY_DEFER);
    ck_assert_str_eq(back.st.text, "4.3.0 command exited with EX_TEMPFAIL");

    r.type = LJOB_ADD;
    strcpy(r.target, "::maildir a@x\t/srv/a/");
    n = local_job_reply_format(&r, line, sizeof line);
    ck_assert_int_eq(local_job_reply_parse(LJOB_ADD, line, (size_t)n, &back), 0);
    ck_assert_str_eq(back.target, "::maildir a@x\t/srv/a/");

    r.type = LJOB_HOME;
    strcpy(r.user, "alice");
    strcpy(r.rcpt, "alice@example.org");
    n = local_job_reply_format(&r, line, sizeof line);
    ck_assert_str_eq(line, "000000000000002a\t1LG7ENTAE2J007PN\t5\talice\talice@example.org");
    ck_assert_int_eq(local_job_reply_parse(LJOB_HOME, line, (size_t)n, &back), 0);
    ck_assert_str_eq(back.user, "alice");
    ck_assert_str_eq(back.rcpt, "alice@example.org");

    r.type = LJOB_DONE;
    n = local_job_reply_format(&r, line, sizeof line);
    ck_assert_str_eq(line, "000000000000002a\t1LG7ENTAE2J007PN");
    ck_assert_int_eq(local_job_reply_parse(LJOB_DONE, line, (size_t)n, &back), 0);
    ck_assert_str_eq(back.id, "1LG7ENTAE2J007PN");
}
END_TEST

START_TEST(replies_malformed)
{
    struct local_job_reply r;
    static const struct {
        uint32_t type;
        const char *s;
    } bad[] = {
        { LJOB_REQUEST, "0000000000000001\tID" },        /* a request is no reply */
        { 0, "0000000000000001\tID" },
        { 99, "0000000000000001\tID" },
        { LJOB_DONE, "0000000000000001" },
        { LJOB_DONE, "0000000000000001\t" },
        { LJOB_DONE, "0000000000000001\tID\t3" },        /* a tab in the ID */
        { LJOB_RESULT, "0000000000000001\tID\t3\t3\t5.0.0 x" },   /* no such result */
        { LJOB_RESULT, "0000000000000001\tID\t3\t0" },
        { LJOB_RESULT, "0000000000000001\tID\tx\t0\t2.0.0 ok" },
        { LJOB_RESULT, "0000000000000001\tID\t3\t0\t2.0.0\tok" }, /* a tab in the text */
        { LJOB_RESULT, "0000000000000001\tID\t3\t0\t2.0.0 ok\n" },
        { LJOB_ADD, "0000000000000001\tID\t3\t" },                /* empty target */
        { LJOB_ADD, "0000000000000001\tID\t3" },
        { LJOB_HOME, "0000000000000001\tID\t3\t\tu@x" },          /* empty user */
        { LJOB_HOME, "0000000000000001\tID\t3\talice\t" },        /* empty rcpt */
        { LJOB_HOME, "0000000000000001\tID\t3\talice" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(local_job_reply_parse(bad[i].type, bad[i].s, strlen(bad[i].s), &r) < 0, "accepted: %s",
                      bad[i].s);
    /* The empty result text is allowed (nothing to say); a NUL is not. */
    ck_assert_int_eq(local_job_reply_parse(LJOB_RESULT, "0000000000000001\tID\t3\t0\t", 24, &r), 0);
    ck_assert_int_lt(local_job_reply_parse(LJOB_RESULT, "0000000000000001\tID\t3\t0\tx\0y", 27, &r), 0);
    /* Longer than any reply the worker can write. */
    char big[LOCAL_JOB_REPLY_MAX + 32];
    memset(big, 'a', sizeof big);
    memcpy(big, "0000000000000001\tID\t3\t", 22);
    ck_assert_int_lt(local_job_reply_parse(LJOB_ADD, big, sizeof big, &r), 0);
    /* Format refuses what would not parse. */
    memset(&r, 0, sizeof r);
    strcpy(r.id, "ID");
    r.type = LJOB_HOME;
    strcpy(r.user, "a\tb");
    strcpy(r.rcpt, "u@x");
    char line[LOCAL_JOB_REPLY_MAX];
    ck_assert_int_lt(local_job_reply_format(&r, line, sizeof line), 0);
    r.type = LJOB_ADD;
    ck_assert_int_lt(local_job_reply_format(&r, line, sizeof line), 0);     /* empty target */
}
END_TEST

Suite *local_job_suite(void)
{
    Suite *s = suite_create("local_job");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, request_round_trip);
    tcase_add_test(tc, request_malformed);
    tcase_add_test(tc, replies_round_trip);
    tcase_add_test(tc, replies_malformed);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(local_job_suite)

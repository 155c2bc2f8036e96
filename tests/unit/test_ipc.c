/* Unit tests for lib/ipc: blocking and event-driven channels over real socketpairs,
   partial writes, oversize lengths, peer close, and freeing inside callbacks. */
#include "lib/ipc.h"
#include "tests/unit/unit.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

START_TEST(blocking_round_trip)
{
    int sv[2];
    pair(sv);
    size_t sizes[] = { 0, 1, 100, 4096, 60000 };
    for (size_t i = 0; i < 5; i++) {
        char *buf = malloc(sizes[i] + 1);
        memset(buf, 'a' + (int)i, sizes[i]);
        /* send from a child so that large payloads do not fill the socket buffer */
        pid_t pid = fork();
        if (pid == 0) {
            _exit(ipc_send_blocking(sv[0], (uint32_t)(7 + i), buf, sizes[i]) == 0 ? 0 : 1);
        }
        uint32_t type;
        void *data;
        size_t len;
        ck_assert_int_eq(ipc_recv_blocking(sv[1], &type, &data, &len), 0);
        ck_assert_uint_eq(type, 7 + i);
        ck_assert_uint_eq(len, sizes[i]);
        ck_assert(memcmp(data, buf, len) == 0);
        ck_assert_int_eq(((char *)data)[len], '\0');
        free(data);
        free(buf);
        int st;
        waitpid(pid, &st, 0);
        ck_assert_int_eq(st, 0);
    }
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(oversize_refused)
{
    int sv[2];
    pair(sv);
    char *big = calloc(1, IPC_MAX_PAYLOAD + 1);
    ck_assert_int_eq(ipc_send_blocking(sv[0], 1, big, IPC_MAX_PAYLOAD + 1), -1);
    /* a forged header with a huge length is refused by the receiver */
    uint32_t hdr[2] = { 1, IPC_MAX_PAYLOAD + 1 };
    ck_assert_int_eq(write(sv[0], hdr, sizeof hdr), (ssize_t)sizeof hdr);
    uint32_t type;
    void *data;
    size_t len;
    ck_assert_int_eq(ipc_recv_blocking(sv[1], &type, &data, &len), -1);
    free(big);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

struct counter {
    struct event_base *base;
    int received;
    int closes;
    int expect;
    bool ordered;
    bool free_in_handler;
    struct ipc_chan *chan;
};

static void count_msg(struct ipc_chan *c, uint32_t type, const void *data, size_t len, void *arg)
{
    struct counter *k = arg;
    if ((int)type != k->received || len != (size_t)(type % 1000))
        k->ordered = false;
    for (size_t i = 0; i < len; i++)
        if (((const unsigned char *)data)[i] != (unsigned char)(type + i))
            k->ordered = false;
    k->received++;
    if (k->free_in_handler) {
        ipc_chan_free(c);
        k->chan = NULL;
        event_base_loopexit(k->base, NULL);
        return;
    }
    if (k->received == k->expect)
        event_base_loopexit(k->base, NULL);
}

static void count_close(struct ipc_chan *c, void *arg)
{
    struct counter *k = arg;
    k->closes++;
    ipc_chan_free(c);
    k->chan = NULL;
    event_base_loopexit(k->base, NULL);
}

START_TEST(many_messages_in_order)
{
    int sv[2];
    pair(sv);
    struct event_base *base = event_base_new();
    struct counter k = { .base = base, .expect = 1000, .ordered = true };
    struct counter dummy = { .base = base };
    struct ipc_chan *rx = ipc_chan_new(base, sv[1], count_msg, count_close, &k);
    struct ipc_chan *tx = ipc_chan_new(base, sv[0], count_msg, count_close, &dummy);
    k.chan = rx;
    for (int i = 0; i < 1000; i++) {
        unsigned char buf[1000];
        for (int j = 0; j < i % 1000; j++)
            buf[j] = (unsigned char)(i + j);
        ck_assert_int_eq(ipc_chan_send(tx, (uint32_t)i, buf, (size_t)(i % 1000)), 0);
    }
    event_base_dispatch(base);
    ck_assert_int_eq(k.received, 1000);
    ck_assert(k.ordered);
    ipc_chan_free(tx);
    if (k.chan)
        ipc_chan_free(k.chan);
    event_base_free(base);
}
END_TEST

START_TEST(split_writes_arrive_whole)
{
    int sv[2];
    pair(sv);
    pid_t pid = fork();
    if (pid == 0) {
        /* two messages (type 0, empty; type 1, one octet 0x01), one octet per write */
        close(sv[1]);
        unsigned char raw[8 + 8 + 1];
        uint32_t h0[2] = { 0, 0 }, h1[2] = { 1, 1 };
        memcpy(raw, h0, 8);
        memcpy(raw + 8, h1, 8);
        raw[16] = 1;
        for (size_t i = 0; i < sizeof raw; i++) {
            if (write(sv[0], raw + i, 1) != 1)
                _exit(1);
            usleep(2000);
        }
        _exit(0);
    }
    close(sv[0]);
    struct event_base *base = event_base_new();
    struct counter k = { .base = base, .expect = 2, .ordered = true };
    k.chan = ipc_chan_new(base, sv[1], count_msg, count_close, &k);
    event_base_dispatch(base);
    ck_assert_int_eq(k.received, 2);
    ck_assert(k.ordered);
    if (k.chan)
        ipc_chan_free(k.chan);
    event_base_free(base);
    waitpid(pid, NULL, 0);
}
END_TEST

START_TEST(peer_close_calls_on_close_once)
{
    int sv[2];
    pair(sv);
    struct event_base *base = event_base_new();
    struct counter k = { .base = base, .ordered = true };
    k.chan = ipc_chan_new(base, sv[1], count_msg, count_close, &k);
    close(sv[0]);
    event_base_dispatch(base);
    ck_assert_int_eq(k.closes, 1);
    ck_assert_ptr_null(k.chan);
    event_base_free(base);
}
END_TEST

START_TEST(forged_length_closes_channel)
{
    int sv[2];
    pair(sv);
    struct event_base *base = event_base_new();
    struct counter k = { .base = base, .ordered = true };
    k.chan = ipc_chan_new(base, sv[1], count_msg, count_close, &k);
    uint32_t hdr[2] = { 0, IPC_MAX_PAYLOAD + 1 };
    ck_assert_int_eq(write(sv[0], hdr, sizeof hdr), (ssize_t)sizeof hdr);
    event_base_dispatch(base);
    ck_assert_int_eq(k.closes, 1);
    ck_assert_int_eq(k.received, 0);
    close(sv[0]);
    event_base_free(base);
}
END_TEST

START_TEST(free_inside_handler_is_safe)
{
    int sv[2];
    pair(sv);
    /* two messages in one read: the handler frees the channel after the first */
    ck_assert_int_eq(ipc_send_blocking(sv[0], 0, NULL, 0), 0);
    ck_assert_int_eq(ipc_send_blocking(sv[0], 1, "\x01", 1), 0);
    struct event_base *base = event_base_new();
    struct counter k = { .base = base, .ordered = true, .free_in_handler = true };
    k.chan = ipc_chan_new(base, sv[1], count_msg, count_close, &k);
    event_base_dispatch(base);
    ck_assert_int_eq(k.received, 1);
    ck_assert_ptr_null(k.chan);
    close(sv[0]);
    event_base_free(base);
}
END_TEST

static Suite *ipc_suite(void)
{
    Suite *s = suite_create("ipc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, blocking_round_trip);
    tcase_add_test(tc, oversize_refused);
    tcase_add_test(tc, many_messages_in_order);
    tcase_add_test(tc, split_writes_arrive_whole);
    tcase_add_test(tc, peer_close_calls_on_close_once);
    tcase_add_test(tc, forged_length_closes_channel);
    tcase_add_test(tc, free_inside_handler_is_safe);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(ipc_suite)

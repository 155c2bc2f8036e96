/*
 * ctl_queue — `ferryctl queue ...`: the queue as the spool holds it.
 *
 * Reads the envelopes in queue/ directly, so it answers whether the daemon runs or not; it
 * never writes (changes go through the daemon in a later issue).
 */
#include "ctl/ctl.h"
#include "lib/buf.h"
#include "queue/spool.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct list_state {
    struct spool *sp;
    bool json;
    size_t count;
    unsigned long long bytes;
    size_t bad;
};

static void json_string(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void show_age(time_t secs, char *out, size_t sz)
{
    if (secs < 0)
        secs = 0;
    if (secs < 3600)
        snprintf(out, sz, "%lldm%02llds", (long long)secs / 60, (long long)secs % 60);
    else if (secs < 86400)
        snprintf(out, sz, "%lldh%02lldm", (long long)secs / 3600, (long long)secs % 3600 / 60);
    else
        snprintf(out, sz, "%lldd%02lldh", (long long)secs / 86400, (long long)secs % 86400 / 3600);
}

static void list_one(const char *id, void *arg)
{
    struct list_state *st = arg;
    struct envelope e;
    bool corrupt;
    char err[256];
    if (spool_env_read(st->sp, id, &e, &corrupt, err, sizeof err) < 0) {
        if (errno == ENOENT && !corrupt)
            return;     /* delivered while we looked */
        st->bad++;
        if (st->json) {
            printf("%s{\"id\":\"%s\",\"error\":", st->count + st->bad > 1 ? "," : "", id);
            json_string(err);
            printf("}\n");
        } else {
            printf("%-16s (unreadable: %s)\n", id, err);
        }
        return;
    }
    time_t now = time(NULL);
    st->bytes += e.size;
    if (st->json) {
        printf("%s{\"id\":\"%s\",\"arrival\":%lld,\"size\":%llu,\"sender\":", st->count + st->bad ? "," : "",
               e.id, (long long)e.arrival, e.size);
        json_string(e.sender);
        printf(",\"attempts\":%u,\"next_attempt\":%lld,\"recipients\":[", e.attempts, (long long)e.next_attempt);
        for (size_t i = 0; i < e.nrcpts; i++) {
            printf("%s{\"address\":", i ? "," : "");
            json_string(e.rcpts[i].addr);
            printf(",\"status\":\"%s\",\"attempts\":%u,\"result\":", rcpt_state_name(e.rcpts[i].state),
                   e.rcpts[i].attempts);
            json_string(e.rcpts[i].result);
            printf("}");
        }
        printf("]}\n");
    } else {
        char age[32], next[32] = "now";
        show_age(now - e.arrival, age, sizeof age);
        if (e.next_attempt > now)
            show_age(e.next_attempt - now, next, sizeof next), memmove(next + 3, next, strlen(next) + 1),
                memcpy(next, "in ", 3);
        printf("%-16s %8s %9llu  <%s>  next: %s\n", e.id, age, e.size, e.sender, next);
        for (size_t i = 0; i < e.nrcpts; i++) {
            const struct env_rcpt *r = &e.rcpts[i];
            printf("%28s <%s> %s%s%s%s\n", "", r->addr, rcpt_state_name(r->state),
                   r->result[0] ? " (" : "", r->result, r->result[0] ? ")" : "");
        }
    }
    st->count++;
    env_free(&e);
}

static int queue_list(const struct ferry_config *cfg, bool json)
{
    struct spool sp;
    char err[256];
    if (spool_open(&sp, cfg->spool_dir, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }
    struct list_state st = { .sp = &sp, .json = json };
    if (json)
        printf("[\n");
    else
        printf("%-16s %8s %9s  %s\n", "Queue ID", "Age", "Size", "Sender / Recipients");
    int r = spool_scan(&sp, false, list_one, &st);
    if (json)
        printf("]\n");
    else if (st.count == 0 && st.bad == 0)
        printf("Mail queue is empty\n");
    else
        printf("-- %llu Kbytes in %zu request%s.%s\n", (st.bytes + 1023) / 1024, st.count,
               st.count == 1 ? "" : "s", st.bad ? " Some envelopes could not be read." : "");
    spool_close(&sp);
    if (r < 0) {
        fprintf(stderr, "ferryctl: cannot read %s/queue: %s\n", cfg->spool_dir, strerror(errno));
        return 1;
    }
    return 0;
}

int ctl_queue(const struct ferry_config *cfg, int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "list")) {
        bool json = argc == 2 && !strcmp(argv[1], "--json");
        if (argc > 2 || (argc == 2 && !json)) {
            fprintf(stderr, "usage: ferryctl queue list [--json]\n");
            return 2;
        }
        return queue_list(cfg, json);
    }
    fprintf(stderr, "usage: ferryctl queue list [--json]\n"
                    "(show, flush, delete, hold, release and bounce arrive with the queue issue)\n");
    return 2;
}

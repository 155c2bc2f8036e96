/*
 * https_fetch — drive lib/https_fetch.h from the command line, for the
 * integration tests: fetch every URL given, all at once on one libevent loop,
 * and print per URL (in the order they finish) one line
 *   "URL status=S http=N len=L type=T ticks=K"
 * then, with --policy, the MTA-STS policy parse ("policy mode=M max_age=A mx=...",
 * or "policy invalid: why"). ticks counts a 20 ms timer on the same loop, so a
 * test sees the loop was not blocked while a slow server answered.
 *
 * usage: https_fetch [--ca FILE] [--resolve HOST:PORT:ADDR] [--max N]
 *                    [--timeout MS] [--policy] [--post FILE --type T] URL...
 */
#include "delivery/mta_sts_policy.h"
#include "lib/https_fetch.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned ticks, pending;
static int policy_mode;

struct one {
    const char *url;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    ticks++;
}

static void done(void *arg, const struct https_result *r)
{
    struct one *o = arg;
    printf("%s status=%s http=%ld len=%zu type=%s ticks=%u\n", o->url, https_status_name(r->status), r->http_code,
           r->len, r->content_type[0] ? r->content_type : "-", ticks);
    if (r->status != HTTPS_OK)
        printf("error %s\n", r->error);
    else if (policy_mode) {
        struct sts_policy p;
        char err[128];
        if (sts_policy_parse(r->body, r->len, &p, err, sizeof err) == 0) {
            printf("policy mode=%s max_age=%lu mx=", sts_mode_name(p.mode), p.max_age);
            for (unsigned i = 0; i < p.n_mx; i++)
                printf("%s%s", i ? "," : "", p.mx[i]);
            printf("\n");
        } else {
            printf("policy invalid: %s\n", err);
        }
    } else {
        fwrite(r->body, 1, r->len, stdout);
        printf("\n");
    }
    fflush(stdout);
    pending--;
}

int main(int argc, char **argv)
{
    struct https_request req = { .max_body = 65536, .timeout_ms = 10000 };
    char *post = NULL;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (i + 1 >= argc && strcmp(argv[i], "--policy") != 0)
            return 2;
        if (strcmp(argv[i], "--ca") == 0)
            req.ca_file = argv[++i];
        else if (strcmp(argv[i], "--resolve") == 0)
            req.resolve = argv[++i];
        else if (strcmp(argv[i], "--max") == 0)
            req.max_body = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--timeout") == 0)
            req.timeout_ms = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--type") == 0)
            req.post_type = argv[++i];
        else if (strcmp(argv[i], "--policy") == 0)
            policy_mode = 1;
        else if (strcmp(argv[i], "--post") == 0) {
            FILE *fp = fopen(argv[++i], "rb");
            if (!fp)
                return 2;
            post = malloc(1 << 20);
            req.post_len = post ? fread(post, 1, 1 << 20, fp) : 0;
            req.post = post;
            fclose(fp);
        } else
            return 2;
    }
    struct event_base *base = event_base_new();
    struct https_fetcher *f = base ? https_fetcher_new(base) : NULL;
    if (!f)
        return 1;
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = { 0, 20000 };
    event_add(tick, &tv);
    static struct one ones[64];
    for (int k = 0; i < argc && k < 64; i++, k++) {
        ones[k].url = argv[i];
        req.url = argv[i];
        if (https_fetch_start(f, &req, done, &ones[k]) < 0) {
            printf("%s refused\n", argv[i]);
            continue;
        }
        pending++;
    }
    while (pending > 0)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    https_fetcher_free(f);
    event_base_free(base);
    free(post);
    return 0;
}

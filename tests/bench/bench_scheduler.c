/*
 * bench_scheduler — how long one scheduling pass takes with a large queue.
 *
 * Loads 100 000 synthetic jobs (500 destinations) into the scheduler, makes 100 of
 * them due, and times the pass: pop the due jobs and re-arm each with its next
 * back-off, as the queue process does after an attempt. Repeats the pass and
 * prints the median, plus the load time. Run with `make bench`; not a test (timings
 * depend on the machine).
 */
#include "queue/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N      100000
#define DUE    100
#define ROUNDS 101

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    struct sched_params p = { .retry_min_ms = 300000, .retry_max_ms = 4020000, .dest_concurrency = 20 };
    struct sched *s = sched_new(&p);
    if (!s)
        return 1;
    char id[QID_LEN + 1], dest[64];
    double t0 = now_us();
    srand(1);
    for (long i = 0; i < N; i++) {
        snprintf(id, sizeof id, "%016lX", i);
        snprintf(dest, sizeof dest, "d%ld.example", i % 500);
        /* everything due in the future, spread over a day */
        if (sched_put(s, id, dest, 1000000000LL + (rand() % 86400000)) < 0)
            return 1;
    }
    double load = now_us() - t0;
    static struct sched_due out[DUE * 2];
    double times[ROUNDS];
    int64_t clock = 0;
    size_t got_total = 0;
    for (int r = 0; r < ROUNDS; r++) {
        /* make DUE random jobs due now */
        for (int k = 0; k < DUE; k++) {
            snprintf(id, sizeof id, "%016lX", (long)(rand() % N));
            snprintf(dest, sizeof dest, "d%ld.example", strtol(id, NULL, 16) % 500);
            sched_put(s, id, dest, clock);
        }
        double a = now_us();
        size_t n = sched_pop_due(s, clock, out, DUE * 2);
        for (size_t k = 0; k < n; k++)
            sched_put(s, out[k].id, out[k].dest, clock + 1000000000LL + sched_backoff(&p, 3, (uint32_t)rand()));
        times[r] = now_us() - a;
        got_total += n;
        clock += 1000;
    }
    qsort(times, ROUNDS, sizeof times[0], cmp_double);
    printf("scheduler: %d jobs loaded in %.1f ms (%.2f us/job)\n", N, load / 1000, load / N);
    printf("scheduler: pass with ~%d due of %zu queued: median %.1f us, max %.1f us (%zu popped over %d passes)\n",
           DUE, sched_job_count(s), times[ROUNDS / 2], times[ROUNDS - 1], got_total, ROUNDS);
    sched_free(s);
    return 0;
}

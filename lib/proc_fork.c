/* proc_fork — see proc_fork.h. */
#include "lib/proc_fork.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The signals Ferry's processes (through libevent) handle or ignore; others keep
   what they have (a sanitizer's SIGSEGV handler, say). */
static const int daemon_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM };

static void reset_handlers(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof daemon_signals / sizeof daemon_signals[0]; i++)
        sigaction(daemon_signals[i], &dfl, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void proc_signals_default(void)
{
    reset_handlers();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

pid_t proc_fork(void)
{
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        proc_signals_default();
        return 0;
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return pid;
}

static struct rlimit nofile_before;
static int nofile_raised;

int proc_nofile_raise(unsigned long long *cur, unsigned long long *max)
{
    struct rlimit rl;
    *cur = *max = 1024;         /* what to say should even the question fail */
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    *cur = rl.rlim_cur == RLIM_INFINITY ? 1ull << 20 : (unsigned long long)rl.rlim_cur;
    *max = rl.rlim_max == RLIM_INFINITY ? 1ull << 20 : (unsigned long long)rl.rlim_max;
    if (rl.rlim_cur >= rl.rlim_max)
        return 0;
    struct rlimit up = { rl.rlim_max, rl.rlim_max };
    if (setrlimit(RLIMIT_NOFILE, &up) < 0)
        return -1;
    nofile_before = rl;
    nofile_raised = 1;
    *cur = *max;
    return 0;
}

void proc_nofile_restore(void)
{
    if (nofile_raised)
        setrlimit(RLIMIT_NOFILE, &nofile_before);
}

/* close_range(lo, hi) or, without it, close() each one up to the soft limit. */
static void close_span(unsigned lo, unsigned hi)
{
    if (lo > hi || close_range(lo, hi, 0) == 0)
        return;
    struct rlimit rl;
    unsigned top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 22) ? (unsigned)rl.rlim_cur : 1u << 22;
    if (hi >= top)
        hi = top - 1;
    for (unsigned fd = lo; fd <= hi && fd < top; fd++)
        close((int)fd);
}

void proc_close_from(int from, const int *keep, size_t nkeep)
{
    unsigned lo = (unsigned)from;
    for (;;) {
        /* the lowest kept descriptor at or above lo */
        int next = -1;
        for (size_t i = 0; i < nkeep; i++)
            if (keep[i] >= (int)lo && (next < 0 || keep[i] < next))
                next = keep[i];
        if (next < 0) {
            close_span(lo, ~0U);
            return;
        }
        if ((unsigned)next > lo)
            close_span(lo, (unsigned)next - 1);
        lo = (unsigned)next + 1;
    }
}

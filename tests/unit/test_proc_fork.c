/* Unit tests for lib/proc_fork: a SIGTERM sent the instant after fork() kills the
   child, although the parent (like every daemon process, through libevent) has a
   handler for it that the child inherits; a plain fork() loses it. */
#include "lib/proc_fork.h"
#include "tests/unit/unit.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t handled;

static void on_term(int sig)
{
    (void)sig;
    handled = 1;        /* what libevent's handler amounts to: note it, carry on */
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
}

/* Fork with f, SIGTERM at once; how the child ended. The child would otherwise
   live two seconds and exit 0. */
static int term_at_once(pid_t (*f)(void))
{
    pid_t pid = f();
    if (pid == 0) {
        sleep(2);
        _exit(0);
    }
    ck_assert_int_gt(pid, 0);
    kill(pid, SIGTERM);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

START_TEST(sigterm_right_after_fork_kills_the_child)
{
    install();
    for (int i = 0; i < 20; i++) {
        int status = term_at_once(proc_fork);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM, "round %d: status %d", i, status);
    }
    ck_assert_int_eq(handled, 0);           /* the parent's handler never ran */
    /* The parent keeps its own handler and mask. */
    struct sigaction cur;
    sigaction(SIGTERM, NULL, &cur);
    ck_assert_ptr_eq((void *)cur.sa_handler, (void *)on_term);
    sigset_t mask;
    sigprocmask(SIG_SETMASK, NULL, &mask);
    ck_assert(!sigismember(&mask, SIGTERM));
}
END_TEST

/* In the child: defaults for the daemon's signals, SIGPIPE ignored, nothing blocked. */
START_TEST(child_starts_with_defaults)
{
    install();
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = proc_fork();
    if (pid == 0) {
        struct sigaction term, pipe_;
        sigset_t mask;
        sigaction(SIGTERM, NULL, &term);
        sigaction(SIGPIPE, NULL, &pipe_);
        sigprocmask(SIG_SETMASK, NULL, &mask);
        char ok = term.sa_handler == SIG_DFL && pipe_.sa_handler == SIG_IGN && !sigismember(&mask, SIGTERM);
        (void)!write(p[1], &ok, 1);
        _exit(0);
    }
    char ok = 0;
    ck_assert_int_eq(read(p[0], &ok, 1), 1);
    ck_assert(ok);
    waitpid(pid, NULL, 0);
    close(p[0]);
    close(p[1]);
}
END_TEST

/* Descriptors 3.. of a child: closed but for the kept ones, whatever their
   order and gaps; the answer comes back as the child's exit status. */
START_TEST(close_from_keeps_only_what_is_asked)
{
    int fds[6];
    for (int i = 0; i < 6; i++) {
        fds[i] = open("/dev/null", O_RDONLY);
        ck_assert_int_ge(fds[i], 3);
    }
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const int keep[3] = { fds[4], fds[1], fds[3] };
        proc_close_from(3, keep, 3);
        int bad = 0;            /* bit i: fds[i] wrong; bit 6: stdin closed (an exit status has 8 bits) */
        for (int i = 0; i < 6; i++) {
            bool kept = i == 1 || i == 3 || i == 4;
            if ((fcntl(fds[i], F_GETFD) >= 0) != kept)
                bad |= 1 << i;
        }
        if (fcntl(0, F_GETFD) < 0)          /* below `from`: untouched */
            bad |= 1 << 6;
        _exit(bad);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    for (int i = 0; i < 6; i++)
        close(fds[i]);
}
END_TEST

Suite *proc_fork_suite(void)
{
    Suite *s = suite_create("proc_fork");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, sigterm_right_after_fork_kills_the_child);
    tcase_add_test(tc, child_starts_with_defaults);
    tcase_add_test(tc, close_from_keeps_only_what_is_asked);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(proc_fork_suite)

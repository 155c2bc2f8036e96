/* pipe — see pipe.h. */
#include "delivery/pipe.h"
#include "lib/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void pipe_status(int wstatus, bool timed_out, const char *cmd, const char *err_line,
                 struct delivery_status *st)
{
    const char *sep = *err_line ? ": " : "";
    if (timed_out) {
        delivery_set(st, DELIVERY_DEFER, "4.4.7 command timed out and was killed: %.200s%s%s", cmd, sep, err_line);
        return;
    }
    if (WIFSIGNALED(wstatus)) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 command killed by signal %d: %.200s%s%s",
                     WTERMSIG(wstatus), cmd, sep, err_line);
        return;
    }
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 1;
    switch (code) {
    case 0:
        delivery_set(st, DELIVERY_OK, "2.0.0 delivered to command %.200s", cmd);
        return;
    case 75:
        delivery_set(st, DELIVERY_DEFER, "4.3.0 command exited with EX_TEMPFAIL%s%s", sep, err_line);
        return;
    case 67:
        delivery_set(st, DELIVERY_FAIL, "5.1.1 command exited with EX_NOUSER%s%s", sep, err_line);
        return;
    case 77:
        delivery_set(st, DELIVERY_FAIL, "5.7.1 command exited with EX_NOPERM%s%s", sep, err_line);
        return;
    default:
        delivery_set(st, DELIVERY_FAIL, "5.3.0 command exited with status %d%s%s", code, sep, err_line);
        return;
    }
}

/* The child: become the user, wire stdin/stderr, exec the shell. */
static void child(const char *cmd, const struct passwd *pw, const char *sender, const char *rcpt,
                  int in, int err)
{
    setsid();
    if (pw && getuid() == 0) {
        if (setgid(pw->pw_gid) < 0 || initgroups(pw->pw_name, pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
            _exit(75);
    }
    int devnull = open("/dev/null", O_WRONLY);
    if (dup2(in, 0) < 0 || dup2(devnull, 1) < 0 || dup2(err, 2) < 0)
        _exit(75);
    signal(SIGPIPE, SIG_DFL);
    char *envp[] = { "PATH=/usr/bin:/bin", "HOME=/", "SHELL=/bin/sh", NULL, NULL, NULL };
    char s[ADDR_PATH_MAX + 16], r[ADDR_PATH_MAX + 16];
    snprintf(s, sizeof s, "SENDER=%s", sender);
    snprintf(r, sizeof r, "RECIPIENT=%s", rcpt);
    envp[3] = s;
    envp[4] = r;
    execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, envp);
    _exit(75);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pipe_deliver(const char *cmd, const char *user, unsigned timeout, const char *sender,
                  const char *rcpt, const char *prefix, int msg_fd, struct delivery_status *st)
{
    struct passwd *pw = NULL;
    if (user && *user) {
        pw = getpwnam(user);
        if (!pw) {
            delivery_set(st, DELIVERY_DEFER, "4.3.5 pipe_user %s does not exist", user);
            return;
        }
        if (getuid() != 0 && getuid() != pw->pw_uid) {
            delivery_set(st, DELIVERY_DEFER, "4.3.0 cannot run commands as %s without root", user);
            return;
        }
    }
    int in[2], er[2];
    if (pipe2(in, O_CLOEXEC) < 0) {
        delivery_set_errno(st, errno, "cannot make a pipe");
        return;
    }
    if (pipe2(er, O_CLOEXEC) < 0) {
        delivery_set_errno(st, errno, "cannot make a pipe");
        close(in[0]);
        close(in[1]);
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        delivery_set_errno(st, errno, "cannot fork for %.200s", cmd);
        close(in[0]); close(in[1]); close(er[0]); close(er[1]);
        return;
    }
    if (pid == 0)
        child(cmd, pw, sender, rcpt, in[0], er[1]);
    close(in[0]);
    close(er[1]);
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    /* Feed stdin and drain stderr together, so neither side can block the other. */
    struct buf out;
    buf_init(&out, 1 << 20);
    buf_puts(&out, prefix);
    size_t out_off = 0;
    bool msg_eof = false, pending_cr = false, timed_out = false;
    char errbuf[PIPE_STDERR_MAX + 1];
    size_t errlen = 0;
    int wfd = in[1], efd = er[0];
    long long deadline = now_ms() + (long long)timeout * 1000;
    while (efd >= 0 || wfd >= 0) {
        if (wfd >= 0 && out_off == out.len && !msg_eof) {
            char ib[16384];
            ssize_t r = read(msg_fd, ib, sizeof ib);
            buf_reset(&out);
            out_off = 0;
            if (r <= 0) {
                msg_eof = true;
                if (pending_cr)
                    buf_append(&out, "\r", 1);
            }
            for (ssize_t i = 0; i < r; i++) {
                if (pending_cr && ib[i] != '\n')
                    buf_append(&out, "\r", 1);
                pending_cr = ib[i] == '\r';
                if (!pending_cr)
                    buf_append(&out, &ib[i], 1);
            }
        }
        if (wfd >= 0 && out_off == out.len && msg_eof) {
            close(wfd);
            wfd = -1;
            continue;
        }
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        struct pollfd p[2];
        int np = 0, wi = -1, ei = -1;
        if (wfd >= 0 && out_off < out.len) {
            p[np] = (struct pollfd){ .fd = wfd, .events = POLLOUT };
            wi = np++;
        }
        if (efd >= 0) {
            p[np] = (struct pollfd){ .fd = efd, .events = POLLIN };
            ei = np++;
        }
        if (np == 0)
            continue;
        if (poll(p, (nfds_t)np, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
            break;
        if (wi >= 0 && p[wi].revents) {
            ssize_t w = write(wfd, out.data + out_off, out.len - out_off);
            if (w > 0) {
                out_off += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                /* The command stopped reading (EPIPE): its exit status decides. */
                close(wfd);
                wfd = -1;
            }
        }
        if (ei >= 0 && p[ei].revents) {
            char tmp[1024];
            ssize_t r = read(efd, tmp, sizeof tmp);
            if (r <= 0) {
                close(efd);
                efd = -1;
            } else {
                size_t take = (size_t)r < PIPE_STDERR_MAX - errlen ? (size_t)r : PIPE_STDERR_MAX - errlen;
                memcpy(errbuf + errlen, tmp, take);
                errlen += take;
            }
        }
    }
    buf_free(&out);
    if (wfd >= 0)
        close(wfd);
    if (efd >= 0)
        close(efd);
    int ws = 0;
    if (timed_out) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
        waitpid(pid, &ws, 0);
    } else {
        /* stderr closed: the command is done or about to be; wait within the deadline. */
        for (;;) {
            pid_t w = waitpid(pid, &ws, WNOHANG);
            if (w == pid)
                break;
            if (w < 0 && errno != EINTR)
                break;
            if (now_ms() >= deadline) {
                timed_out = true;
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
                waitpid(pid, &ws, 0);
                break;
            }
            struct timespec ts = { 0, 20 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        /* Whatever the command left running in its group goes with it. */
        kill(-pid, SIGKILL);
    }
    errbuf[errlen] = '\0';
    errbuf[strcspn(errbuf, "\r\n")] = '\0';
    for (char *q = errbuf; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = ' ';
    pipe_status(ws, timed_out, cmd, errbuf, st);
}

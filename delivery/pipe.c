/* pipe — see pipe.h. */
#include "delivery/pipe.h"
#include "lib/proc_fork.h"
#include "lib/buf.h"
#include "lib/crlf.h"

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
    proc_nofile_restore();      /* the daemon's raised limit is not the command's */
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

/* The user the command runs as: NULL for the process's own; false (st set) when
   it cannot be had. */
static bool pipe_user(const char *user, struct passwd **pw, struct delivery_status *st)
{
    *pw = NULL;
    if (!user || !*user)
        return true;
    *pw = getpwnam(user);
    if (!*pw) {
        delivery_set(st, DELIVERY_DEFER, "4.3.5 pipe_user %s does not exist", user);
        return false;
    }
    if (getuid() != 0 && getuid() != (*pw)->pw_uid) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 cannot run commands as %s without root", user);
        return false;
    }
    return true;
}

/* Forks the command with a pipe on its stdin (*wfd, non-blocking) and one on
   its stderr (*efd). False (st set) when it cannot be started. */
static bool start_command(const char *cmd, const struct passwd *pw, const char *sender, const char *rcpt,
                          pid_t *pid, int *wfd, int *efd, struct delivery_status *st)
{
    int in[2], er[2];
    if (pipe2(in, O_CLOEXEC) < 0) {
        delivery_set_errno(st, errno, "cannot make a pipe");
        return false;
    }
    if (pipe2(er, O_CLOEXEC) < 0) {
        delivery_set_errno(st, errno, "cannot make a pipe");
        close(in[0]);
        close(in[1]);
        return false;
    }
    *pid = fork();
    if (*pid < 0) {
        delivery_set_errno(st, errno, "cannot fork for %.200s", cmd);
        close(in[0]); close(in[1]); close(er[0]); close(er[1]);
        return false;
    }
    if (*pid == 0)
        child(cmd, pw, sender, rcpt, in[0], er[1]);
    close(in[0]);
    close(er[1]);
    fcntl(in[1], F_SETFL, O_NONBLOCK);
    *wfd = in[1];
    *efd = er[0];
    return true;
}

/* The parent's side of one command: the message going to its stdin (with LF
   line ends), the first PIPE_STDERR_MAX octets of its stderr coming back. */
struct pipe_io {
    int msg_fd;
    int wfd, efd;                   /* -1 once closed */
    struct buf out;                 /* converted message octets waiting to be written */
    size_t out_off;
    bool msg_eof;
    struct crlf_reader lf;
    char errbuf[PIPE_STDERR_MAX + 1];
    size_t errlen;
};

/* The next piece of the message into io->out, with LF line ends (lib/crlf.h). */
static void refill(struct pipe_io *io)
{
    char ob[16384 + 1];
    ssize_t r = crlf_read(io->msg_fd, &io->lf, ob, sizeof ob);
    buf_reset(&io->out);
    io->out_off = 0;
    if (r <= 0)
        io->msg_eof = true;
    else
        buf_append(&io->out, ob, (size_t)r);
}

static void drain_stderr(struct pipe_io *io)
{
    char tmp[1024];
    ssize_t r = read(io->efd, tmp, sizeof tmp);
    if (r <= 0) {
        close(io->efd);
        io->efd = -1;
        return;
    }
    size_t take = (size_t)r < PIPE_STDERR_MAX - io->errlen ? (size_t)r : PIPE_STDERR_MAX - io->errlen;
    memcpy(io->errbuf + io->errlen, tmp, take);
    io->errlen += take;
}

/* Feeds stdin and drains stderr together, so neither side can block the other,
   until both are closed or the deadline passes (true: timed out). */
static bool pump(struct pipe_io *io, long long deadline)
{
    while (io->efd >= 0 || io->wfd >= 0) {
        if (io->wfd >= 0 && io->out_off == io->out.len && !io->msg_eof)
            refill(io);
        if (io->wfd >= 0 && io->out_off == io->out.len && io->msg_eof) {
            close(io->wfd);
            io->wfd = -1;
            continue;
        }
        long long left = deadline - now_ms();
        if (left <= 0)
            return true;
        struct pollfd p[2];
        int np = 0, wi = -1, ei = -1;
        if (io->wfd >= 0 && io->out_off < io->out.len) {
            p[np] = (struct pollfd){ .fd = io->wfd, .events = POLLOUT };
            wi = np++;
        }
        if (io->efd >= 0) {
            p[np] = (struct pollfd){ .fd = io->efd, .events = POLLIN };
            ei = np++;
        }
        if (np == 0)
            continue;
        if (poll(p, (nfds_t)np, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
            return false;
        if (wi >= 0 && p[wi].revents) {
            ssize_t w = write(io->wfd, io->out.data + io->out_off, io->out.len - io->out_off);
            if (w > 0) {
                io->out_off += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                /* The command stopped reading (EPIPE): its exit status decides. */
                close(io->wfd);
                io->wfd = -1;
            }
        }
        if (ei >= 0 && p[ei].revents)
            drain_stderr(io);
    }
    return false;
}

static void kill_command(pid_t pid, int *ws)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, ws, 0);
}

/* The command's wait status; past the deadline it is killed (*timed_out). */
static int reap(pid_t pid, long long deadline, bool *timed_out)
{
    int ws = 0;
    if (*timed_out) {
        kill_command(pid, &ws);
        return ws;
    }
    /* stderr closed: the command is done or about to be; wait within the deadline. */
    for (;;) {
        pid_t w = waitpid(pid, &ws, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            break;
        if (now_ms() >= deadline) {
            *timed_out = true;
            kill_command(pid, &ws);
            break;
        }
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    /* Whatever the command left running in its group goes with it. */
    kill(-pid, SIGKILL);
    return ws;
}

/* The first line of stderr, control characters blanked, for the status text. */
static void first_line(char *s, size_t len)
{
    s[len] = '\0';
    s[strcspn(s, "\r\n")] = '\0';
    for (char *q = s; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = ' ';
}

void pipe_deliver(const char *cmd, const char *user, unsigned timeout, const char *sender,
                  const char *rcpt, const char *prefix, struct msg_src msg, struct delivery_status *st)
{
    struct passwd *pw;
    pid_t pid;
    struct pipe_io io = { .msg_fd = msg.fd, .lf = CRLF_READER(msg.size) };
    if (!pipe_user(user, &pw, st) || !start_command(cmd, pw, sender, rcpt, &pid, &io.wfd, &io.efd, st))
        return;
    buf_init(&io.out, 1 << 20);
    buf_puts(&io.out, prefix);
    long long deadline = now_ms() + (long long)timeout * 1000;
    bool timed_out = pump(&io, deadline);
    buf_free(&io.out);
    if (io.wfd >= 0)
        close(io.wfd);
    if (io.efd >= 0)
        close(io.efd);
    int ws = reap(pid, deadline, &timed_out);
    first_line(io.errbuf, io.errlen);
    pipe_status(ws, timed_out, cmd, io.errbuf, st);
}

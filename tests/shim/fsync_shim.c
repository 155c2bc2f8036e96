/*
 * fsync_shim.so — an LD_PRELOAD library for the integration tests: it stands
 * between ferryd and fsync(2) for the files of the spool's incoming/ directory,
 * so that a test can see what Ferry does while a commit's fsync has not returned
 * yet, and when it fails (test_group_commit.py). Every other fsync goes straight
 * to the C library.
 *
 * Controlled by flag files in the directory named by FERRY_FSYNC_SHIM_DIR (the
 * test creates and removes them while ferryd runs):
 *   fsync-hold  an fsync of an incoming/ file waits until the flag is gone
 *               (at most 120 s), then fsyncs;
 *   fsync-fail  an fsync of an incoming/ file fails with ENOSPC, as fsync does
 *               when delayed allocation finds the disk full.
 * Each intercepted call says so on stderr (ferryd's log in the tests), so a test
 * can wait for it and knows the path it tests was taken.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int flag(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static void say(const char *what, const char *path)
{
    char line[4200];
    int n = snprintf(line, sizeof line, "fsync-shim: %s %s\n", what, path);
    if (n > 0 && write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
        return;
}

int fsync(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    const char *dir = getenv("FERRY_FSYNC_SHIM_DIR");
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = dir ? readlink(link, path, sizeof path - 1) : -1;
    if (n <= 0)
        return real(fd);
    path[n] = '\0';
    if (!strstr(path, "/incoming/"))
        return real(fd);
    if (flag(dir, "fsync-fail")) {
        say("failing", path);
        errno = ENOSPC;
        return -1;
    }
    if (flag(dir, "fsync-hold")) {
        say("holding", path);
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        for (int i = 0; i < 6000 && flag(dir, "fsync-hold"); i++)
            nanosleep(&ts, NULL);
        say("released", path);
    }
    return real(fd);
}

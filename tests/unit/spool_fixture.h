/*
 * spool_fixture — what the spool's unit tests share (test_spool.c,
 * test_spool_flusher.c): a temporary tree removed afterwards, and the number of
 * entries in one of the spool's subdirectories.
 */
#ifndef FERRY_SPOOL_FIXTURE_H
#define FERRY_SPOOL_FIXTURE_H

#include <check.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Remove path and everything beneath it (a test's own temporary tree). */
static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char sub[PATH_MAX];
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Entries in spool_dir/sub ("incoming", "queue"...). */
static int spool_count_files(const char *spool_dir, const char *sub)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", spool_dir, sub);
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

#endif

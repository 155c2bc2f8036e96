/*
 * ctl_map — `ferryctl map build [--type aliases|virtual] FILE`: compile an alias
 * file or a virtual map into FILE.db (delivery/local_map.h: local_map_build),
 * which the daemon then reads instead of the text. The syntax is detected from
 * the first entry unless --type names it. The text is checked completely first;
 * on any error the previous FILE.db stays in place.
 */
#include "ctl/ctl.h"
#include "delivery/local_map.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DETECT_MAX 65536

static int map_usage(void)
{
    fprintf(stderr, "usage: ferryctl map build [--type aliases|virtual] FILE\n");
    return 2;
}

static int detect(const char *path, enum local_map_syntax *syn)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "ferryctl: %s: %s\n", path, strerror(errno));
        return -1;
    }
    static char head[DETECT_MAX];
    ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n < 0 || local_map_detect(head, (size_t)n, syn) < 0) {
        fprintf(stderr, "ferryctl: %s: cannot tell whether it is an alias file or a virtual map; "
                "give --type\n", path);
        return -1;
    }
    return 0;
}

int ctl_map(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "build"))
        return map_usage();
    const char *type = NULL, *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--type") && i + 1 < argc)
            type = argv[++i];
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else
            return map_usage();
    }
    if (!path)
        return map_usage();
    enum local_map_syntax syn;
    if (type && !strcmp(type, "aliases"))
        syn = LOCAL_MAP_ALIASES;
    else if (type && !strcmp(type, "virtual"))
        syn = LOCAL_MAP_VIRTUAL;
    else if (type)
        return map_usage();
    else if (detect(path, &syn) < 0)
        return 1;
    char err[1024];
    size_t n;
    if (local_map_build(path, syn, &n, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }
    printf("%s.db: %zu entries (%s)\n", path, n, syn == LOCAL_MAP_ALIASES ? "aliases" : "virtual");
    return 0;
}

/*
 * ctl_io — reading a message from stdin for the commands that check one (dkim, dmarc).
 */
#include "ctl/ctl.h"
#include "lib/buf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ctl_read_stdin(struct buf *b, const char *who)
{
    buf_init(b, CTL_MSG_MAX);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (buf_append(b, chunk, n) < 0) {
            fprintf(stderr, "ferryctl %s: message on stdin is larger than %u octets\n", who, CTL_MSG_MAX);
            return -1;
        }
    }
    if (ferror(stdin)) {
        fprintf(stderr, "ferryctl %s: cannot read the message: %s\n", who, strerror(errno));
        return -1;
    }
    return 0;
}

int ctl_read_input(const char *path, struct buf *b, size_t max)
{
    buf_init(b, max);
    FILE *in = path ? fopen(path, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "ferryctl: cannot open %s\n", path);
        return -1;
    }
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, in)) > 0)
        if (buf_append(b, chunk, n) < 0) {
            fprintf(stderr, "ferryctl: the input is larger than %zu octets\n", max);
            rc = -1;
        }
    if (rc == 0 && ferror(in)) {
        fprintf(stderr, "ferryctl: cannot read %s: %s\n", path ? path : "standard input", strerror(errno));
        rc = -1;
    }
    if (in != stdin)
        fclose(in);
    return rc;
}

/* dmarc_rua_mime — dmarc_rua_from_message of dmarc_rua_parse.h: find the report
   attachments of a received message (the MIME walk is lib/mime_walk.h). */
#include "auth/dmarc_rua_parse.h"
#include "lib/buf.h"
#include "lib/mime_walk.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX   4

struct found {
    struct dmarc_rua_report *reports;
    size_t n;
    char *err;
    size_t errlen;
    bool failed;
};

static bool is_report(const struct mime_part *ph)
{
    static const char *const types[] = { "application/gzip", "application/x-gzip", "application/zip",
                                         "application/x-zip-compressed", "application/x-zip", "text/xml",
                                         "application/xml", NULL };
    for (size_t i = 0; types[i]; i++)
        if (!strcmp(ph->type, types[i]))
            return true;
    size_t n = strlen(ph->name);
    return !strcmp(ph->type, "application/octet-stream") &&
           ((n > 4 && str_iendswith(ph->name, ".xml")) || (n > 3 && str_iendswith(ph->name, ".gz")) ||
            (n > 4 && str_iendswith(ph->name, ".zip")));
}

static int take_part(void *arg, const struct mime_part *ph, const char *body, size_t len)
{
    struct found *f = arg;
    if (!is_report(ph))
        return 0;
    if (f->n == DMARC_RUA_MAX_PARTS) {
        snprintf(f->err, f->errlen, "the message has more than %d report attachments", DMARC_RUA_MAX_PARTS);
        f->failed = true;
        return 1;
    }
    struct buf dec;
    buf_init(&dec, DMARC_RUA_PACKED_MAX + 3);
    int d = mime_part_decode(ph, body, len, &dec);
    char why[256];
    if (d == -1)
        snprintf(f->err, f->errlen, "the attachment %s is not valid base64 (or too large)",
                 ph->name[0] ? ph->name : ph->type);
    else if (d == -2)
        snprintf(f->err, f->errlen, "the attachment's transfer encoding %s is not supported", ph->cte);
    else if (dmarc_rua_parse_blob(dec.data ? dec.data : "", dec.len, &f->reports[f->n], why, sizeof why) < 0)
        snprintf(f->err, f->errlen, "%s: %s", ph->name[0] ? ph->name : ph->type, why);
    else
        f->n++;
    buf_free(&dec);
    f->failed = f->err[0] != '\0';
    return f->failed;
}

int dmarc_rua_from_message(const char *msg, size_t len, struct dmarc_rua_report **out, size_t *n, char *err,
                           size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (len > DMARC_RUA_MSG_MAX) {
        snprintf(err, errlen, "the message is larger than %u octets", DMARC_RUA_MSG_MAX);
        return -1;
    }
    struct found f = { .err = err, .errlen = errlen };
    err[0] = '\0';
    f.reports = calloc(DMARC_RUA_MAX_PARTS, sizeof *f.reports);
    if (!f.reports) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    mime_walk(msg, len, DEPTH_MAX, take_part, &f);
    if (!f.failed && f.n == 0) {
        snprintf(err, errlen, "the message has no DMARC report attachment (gzip, zip or XML)");
        f.failed = true;
    }
    if (f.failed) {
        for (size_t i = 0; i < f.n; i++)
            dmarc_rua_report_free(&f.reports[i]);
        free(f.reports);
        return -1;
    }
    *out = f.reports;
    *n = f.n;
    return 0;
}

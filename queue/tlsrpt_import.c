/* tlsrpt_import — see tlsrpt_import.h. */
#include "queue/tlsrpt_import.h"
#include "delivery/local_rcpt.h"
#include "delivery/tlsrpt_received.h"
#include "lib/db.h"
#include "lib/log.h"
#include "queue/report_maildir.h"

#include <time.h>

struct import {
    const struct ferry_config *cfg;
    struct fdb_env *env;
    struct tlsrpt_received *st;
};

static bool ours(void *arg, const char *domain)
{
    return settings_tlsrpt_our_domain(arg, domain);
}

static int import_open(void *arg, char *err, size_t errlen)
{
    struct import *im = arg;
    if (fdb_env_open(im->cfg->data_dir, &im->env, err, errlen) < 0)
        return -1;
    return tlsrpt_received_open(im->env, &im->st, err, errlen);
}

static int import_one(void *arg, const char *name, const char *data, size_t len, char *why, size_t whylen)
{
    struct import *im = arg;
    size_t stored = 0, dups = 0;
    if (tlsrpt_received_import(im->st, data, len, ours, (void *)im->cfg, (long long)time(NULL), &stored, &dups,
                               why, whylen) < 0)
        return -1;
    log_info("tls-rpt reports received: %s: %zu stored, %zu already known", name, stored, dups);
    return 0;
}

int tlsrpt_import_run(const struct ferry_config *cfg, char *err, size_t errlen)
{
    struct import im = {.cfg = cfg};
    struct report_maildir_reader rd = {
        .box = LOCAL_TLSRPT_MAILDIR, .label = "tls-rpt reports received", .max = TLSRPT_RX_MSG_MAX,
        .open = import_open, .take = import_one, .arg = &im,
    };
    int rc = report_maildir_read(cfg, &rd, err, errlen);
    size_t gone = 0;
    if (im.st && tlsrpt_received_sweep(im.st, (long long)time(NULL), &gone) == 0 && gone)
        log_info("tls-rpt reports received: %zu older than %d days dropped", gone, TLSRPT_RX_KEEP_DAYS);
    tlsrpt_received_close(im.st);
    if (im.env)
        fdb_env_close(im.env);
    return rc;
}

/* dmarc_job — see dmarc_job.h. */
#include "queue/dmarc_job.h"
#include "lib/fdio.h"
#include "auth/auth_dns.h"
#include "auth/dmarc_agg.h"
#include "auth/dmarc_discover.h"
#include "auth/dmarc_record.h"
#include "auth/dmarc_report_mail.h"
#include "auth/dmarc_rua_parse.h"
#include "auth/dmarc_rua_store.h"
#include "delivery/local_rcpt.h"
#include "lib/buf.h"
#include "lib/db.h"
#include "lib/dns.h"
#include "lib/log.h"
#include "queue/maildrop.h"
#include "queue/report_maildir.h"
#include "queue/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AUTH_CACHE_MAX 64

struct walk_wait {
    bool done;
    int status;                         /* 0 ok, -1 temporary failure */
    char org[DMARC_DOMAIN_MAX + 1];
};

static void walk_done(const struct dmarc_walk *w, void *arg)
{
    struct walk_wait *ww = arg;
    ww->done = true;
    if (w->status == DMARC_WALK_OK) {
        str_copy(ww->org, w->org_domain, sizeof ww->org);
        ww->status = 0;
    } else if (w->status == DMARC_WALK_BAD_NAME) {
        str_copy(ww->org, w->start, sizeof ww->org);    /* not a name: only itself */
        ww->status = 0;
    } else {
        ww->status = -1;
    }
}

/* The organizational domain of domain (RFC 9989 4.10.2), by the tree walk. */
static int org_domain(struct auth_sync *s, const char *domain, char *out, size_t outsz)
{
    struct walk_wait ww = { false, -1, "" };
    struct dmarc_discover *d = dmarc_discover_start(&s->resolver, domain, walk_done, &ww);
    if (d)
        auth_sync_run(s, &ww.done);
    if (!ww.done) {
        if (d)
            dmarc_discover_cancel(d);
        return -1;
    }
    if (ww.status < 0)
        return -1;
    str_copy(out, ww.org, outsz);
    return 0;
}

int dmarc_job_authorize(const struct dns_config *dns, const char *policy_domain, const char *addr, char *why,
                        size_t whylen)
{
    if (whylen)
        why[0] = '\0';
    const char *at = strrchr(addr, '@');
    if (!at || !at[1]) {
        snprintf(why, whylen, "%s has no domain", addr);
        return 0;
    }
    const char *rdom = at + 1;
    if (str_ieq(rdom, policy_domain))
        return 1;
    struct auth_sync s;
    if (auth_sync_open(&s, dns) < 0) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    char org_p[DMARC_DOMAIN_MAX + 1], org_r[DMARC_DOMAIN_MAX + 1];
    int rc;
    if (org_domain(&s, policy_domain, org_p, sizeof org_p) < 0 || org_domain(&s, rdom, org_r, sizeof org_r) < 0) {
        snprintf(why, whylen, "the organizational domains of %s and %s could not be looked up", policy_domain,
                 rdom);
        rc = -1;
    } else if (str_ieq(org_p, org_r)) {
        rc = 1;             /* the same organization: not an external destination */
    } else {
        /* RFC 9990 4: the destination's owner agrees to take reports about us. */
        char name[2 * DMARC_DOMAIN_MAX + 32];
        snprintf(name, sizeof name, "%s._report._dmarc.%s", policy_domain, rdom);
        struct dns_answer ans;
        memset(&ans, 0, sizeof ans);
        if (dns_lookup_sync(dns, name, 16 /* TXT */, &ans) < 0) {
            snprintf(why, whylen, "the lookup of %s could not be made", name);
            rc = -1;
        } else if (ans.status == DNS_OK) {
            rc = 0;
            for (size_t i = 0; i < ans.count && rc == 0; i++) {
                const struct dns_record *t = &ans.records[i];
                struct dmarc_record rec;
                if (!dmarc_record_is_dmarc((const char *)t->data, t->len))
                    continue;
                /* RFC 9990 4 step 5: the confirming record may name other
                   addresses; if it names one on another host, send to neither. */
                dmarc_record_parse((const char *)t->data, t->len, &rec);
                rc = 1;
                for (size_t k = 0; k < rec.nrua && rc == 1; k++) {
                    const char *ra = strrchr(rec.rua[k].uri, '@');
                    if (ra && !str_ieq(ra + 1, rdom)) {
                        snprintf(why, whylen, "external destination not verified: %s names another host (%s)",
                                 name, ra + 1);
                        rc = 0;
                    }
                }
            }
            if (!rc && !why[0])
                snprintf(why, whylen, "external destination not verified: %s has no v=DMARC1 record", name);
        } else if (ans.status == DNS_NXDOMAIN || ans.status == DNS_NODATA || ans.status == DNS_ERROR) {
            /* An error answer (REFUSED, a name that cannot be asked) will not
               change by retrying: not verified, rather than pending for ever. */
            snprintf(why, whylen, "external destination not verified: %s at %s", ans.status == DNS_ERROR ?
                     (ans.error[0] ? ans.error : "a DNS error") : "no TXT record", name);
            rc = 0;
        } else {
            snprintf(why, whylen, "the lookup of %s failed (%s)", name, dns_status_name(ans.status));
            rc = -1;
        }
        dns_answer_free(&ans);
    }
    auth_sync_close(&s);
    return rc;
}

struct job {
    const struct ferry_config *cfg;
    struct dns_config dns;
    struct { char key[600]; int verdict; char why[256]; } cache[AUTH_CACHE_MAX];
    size_t ncache;
};

static int authorize_cached(void *arg, const char *policy_domain, const char *addr, char *why, size_t whylen)
{
    struct job *j = arg;
    char key[600];
    snprintf(key, sizeof key, "%s %s", policy_domain, addr);
    for (size_t i = 0; i < j->ncache; i++)
        if (str_ieq(j->cache[i].key, key)) {
            str_copy(why, j->cache[i].why, whylen);
            return j->cache[i].verdict;
        }
    int v = dmarc_job_authorize(&j->dns, policy_domain, addr, why, whylen);
    if (v >= 0 && j->ncache < AUTH_CACHE_MAX) {
        str_copy(j->cache[j->ncache].key, key, sizeof j->cache[j->ncache].key);
        j->cache[j->ncache].verdict = v;
        str_copy(j->cache[j->ncache].why, why, sizeof j->cache[j->ncache].why);
        j->ncache++;
    }
    return v;
}

/* Into the maildrop, as the daemon's user: durable once maildrop_submit returns. */
static int submit_drop(void *arg, const char *from, const char *to, const char *msg, size_t len)
{
    struct job *j = arg;
    struct buf drop;
    char err[300];
    buf_init(&drop, len + 4096);
    char *rcpt = (char *)to;
    int rc = -1;
    if (maildrop_check_message(msg, len, j->cfg->message_size_limit, err, sizeof err) < 0 ||
        maildrop_write_envelope(&drop, from, &rcpt, 1, err, sizeof err) < 0)
        ;           /* what the pickup would refuse is never handed to it */
    else if (buf_append(&drop, msg, len) < 0)
        snprintf(err, sizeof err, "out of memory");
    else
        rc = maildrop_submit(j->cfg->spool_dir, drop.data, drop.len, err, sizeof err);
    if (rc < 0)
        log_error("dmarc report to %s could not be submitted: %s", to, err);
    buf_free(&drop);
    return rc;
}

static void log_line(void *arg, const char *line)
{
    log_info("%s", line);
}

int dmarc_job_run(const struct ferry_config *cfg, bool dry_run, const char *only_domain,
                  struct dmarc_job_result *res, char *err, size_t errlen)
{
    memset(res, 0, sizeof *res);
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    j->cfg = cfg;
    settings_dns_config(cfg, &j->dns);
    struct fdb_env *env;
    struct dmarc_agg *a;
    if (fdb_env_open(cfg->data_dir, &env, err, errlen) < 0) {
        free(j);
        return -1;
    }
    if (dmarc_agg_open(env, &a, err, errlen) < 0) {
        fdb_env_close(env);
        free(j);
        return -1;
    }
    struct dmarc_report_sender s = {
        .receiver = cfg->hostname,
        .from = cfg->dmarc_report_email,
        .now = time(NULL),
        .meta = { .org_name = cfg->dmarc_report_org_name, .email = cfg->dmarc_report_email, .generator = "Ferry" },
        .only_domain = only_domain,
        .authorize = authorize_cached,
        .authorize_arg = j,
        .deadline = time(NULL) + DMARC_JOB_SECONDS,
    };
    struct buf xml;
    buf_init(&xml, 256u << 20);
    struct dmarc_send_stats st;
    int rc = dmarc_report_send_due(a, &s, dry_run ? NULL : submit_drop, j, log_line, dry_run ? &xml : NULL, &st);
    if (rc < 0)
        snprintf(err, errlen, "%s", dmarc_agg_error(a));
    else if (!dry_run)
        dmarc_agg_purge(a, s.now, 7 * 86400);
    if (dry_run && xml.len)
        fwrite(xml.data, 1, xml.len, stdout);
    res->reports = st.reports;
    res->sent = st.sent;
    res->too_big = st.too_big;
    res->failed = st.failed;
    res->skipped = st.skipped;
    buf_free(&xml);
    dmarc_agg_close(a);
    fdb_env_close(env);
    free(j);
    return rc;
}

/* A report about this domain is ours to keep: one of local_domains (or below
   one), or of dmarc_report_domains. */
static bool our_domain(void *arg, const char *domain)
{
    const struct ferry_config *cfg = arg;
    size_t dl = strlen(domain);
    for (size_t i = 0; i < cfg->local_domains.n; i++) {
        const char *ld = cfg->local_domains.items[i];
        size_t ll = strlen(ld);
        if (str_ieq(domain, ld) || (dl > ll && domain[dl - ll - 1] == '.' && str_iendswith(domain, ld)))
            return true;
    }
    return cfg->dmarc_report_domains.n && settings_dmarc_report_domain(cfg, domain);
}

struct import {
    const struct ferry_config *cfg;
    struct fdb_env *env;
    struct dmarc_rua_store *st;
};

static int import_open(void *arg, char *err, size_t errlen)
{
    struct import *im = arg;
    if (fdb_env_open(im->cfg->data_dir, &im->env, err, errlen) < 0)
        return -1;
    return dmarc_rua_store_open(im->env, &im->st, err, errlen);
}

static int import_one(void *arg, const char *name, const char *data, size_t len, char *why, size_t whylen)
{
    struct import *im = arg;
    size_t stored = 0, dups = 0;
    if (dmarc_rua_import_for(im->st, data, len, our_domain, (void *)im->cfg, &stored, &dups, why, whylen) < 0)
        return -1;
    log_info("dmarc reports received: %s: %zu stored, %zu already known", name, stored, dups);
    return 0;
}

int dmarc_job_import(const struct ferry_config *cfg, char *err, size_t errlen)
{
    struct import im = {.cfg = cfg};
    struct report_maildir_reader rd = {
        .box = LOCAL_REPORTS_MAILDIR, .label = "dmarc reports received", .max = DMARC_RUA_MSG_MAX,
        .open = import_open, .take = import_one, .arg = &im,
    };
    int rc = report_maildir_read(cfg, &rd, err, errlen);
    if (im.st)
        dmarc_rua_store_close(im.st);
    if (im.env)
        fdb_env_close(im.env);
    return rc;
}

/* One waiting failure report: 1 sent or settled (removed), 0 left for later. */
static int failure_one(struct job *j, int dfd, const char *name)
{
    struct stat sb;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && time(NULL) - sb.st_mtime > DMARC_FAILURE_MAX_AGE) {
        log_info("dmarc failure report %s expired unsent; removed", name);
        unlinkat(dfd, name, 0);
        return 0;
    }
    char *data = NULL;
    size_t len = 0;
    if (fd_read_file(dfd, name, DMARC_RUA_MSG_MAX, &data, &len) < 0) {
        log_warn("dmarc failure report %s unreadable; removed", name);
        unlinkat(dfd, name, 0);
        return 1;
    }
    char policy[DMARC_DOMAIN_MAX + 1] = "", to[320] = "";
    const char *end = len > 4 ? memmem(data, len, "\n\n", 2) : NULL;
    size_t ml = strlen(DMARC_FAILURE_MAGIC);
    if (!end || len < ml || memcmp(data, DMARC_FAILURE_MAGIC, ml) != 0 ||
        sscanf(data + ml, "policy %253s\nto %319s\n", policy, to) != 2) {
        log_warn("dmarc failure report %s malformed; removed", name);
        free(data);
        unlinkat(dfd, name, 0);
        return 1;
    }
    const char *msg = end + 2;
    size_t mlen = len - (size_t)(msg - data);
    char why[256] = "";
    int ok = authorize_cached(j, policy, to, why, sizeof why);
    int done = 1;
    if (ok < 0) {
        log_info("dmarc failure report about %s to %s waits: %s", policy, to, why);
        done = 0;
    } else if (ok == 0) {
        log_info("dmarc failure report about %s to %s not sent: %s", policy, to, why);
    } else if (submit_drop(j, j->cfg->dmarc_report_email, to, msg, mlen) == 0) {
        log_info("dmarc failure report about %s to %s queued", policy, to);
    } else {
        done = 0;
    }
    free(data);
    if (done)
        unlinkat(dfd, name, 0);
    return done && ok > 0;
}

int dmarc_job_failures(const struct ferry_config *cfg, char *err, size_t errlen)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", cfg->data_dir, DMARC_FAILURE_DIR);
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    DIR *d = fdopendir(dup(dfd));
    if (!d) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        close(dfd);
        return -1;
    }
    char (*names)[NAME_MAX + 1] = malloc(1000 * sizeof *names);
    size_t n = 0;
    struct dirent *de;
    while (names && n < 1000 && (de = readdir(d)) != NULL)
        if (de->d_name[0] == 'f' && de->d_name[1] == '.')
            str_copy(names[n++], de->d_name, sizeof names[0]);
    closedir(d);
    struct job *j = calloc(1, sizeof *j);
    int sent = 0;
    if (j) {
        j->cfg = cfg;
        settings_dns_config(cfg, &j->dns);
        for (size_t i = 0; i < n; i++)
            sent += failure_one(j, dfd, names[i]);
    }
    free(j);
    free(names);
    close(dfd);
    return sent;
}

int dmarc_job_lock(const struct ferry_config *cfg)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/dmarc-run.lock", cfg->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0660);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* smtp_dmarc_failure — see smtp_dmarc_failure.h. */
#include "smtpd/smtp_dmarc_failure.h"
#include "lib/fdio.h"
#include "auth/dkim_verify.h"
#include "auth/dmarc.h"
#include "auth/dmarc_failure.h"
#include "auth/dmarc_report_mail.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/settings.h"
#include "queue/dmarc_job.h"
#include "smtpd/smtp_dmarc_agg.h"
#include "smtpd/smtp_server.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* t.NAME written whole, then renamed to f.NAME: the report run never sees half. */
static int leave_for_runner(const struct ferry_config *cfg, const char *policy, const char *to, const struct buf *msg,
                            const char *log_id)
{
    static unsigned counter;
    char dir[PATH_MAX], tmp[PATH_MAX + 64], final[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/%s", cfg->data_dir, DMARC_FAILURE_DIR);
    if (mkdir(dir, 0770) < 0 && errno != EEXIST)      /* the queue's report run reads it (umask) */
        return -1;
    /* The destinations come from strangers' DNS: however many there are, the
       reports waiting for the run stay a bounded pile. */
    DIR *d = opendir(dir);
    size_t waiting = 0;
    for (struct dirent *de; d && (de = readdir(d)) != NULL && waiting <= DMARC_FAILURE_MAX_WAITING;)
        waiting += de->d_name[0] != '.';
    if (d)
        closedir(d);
    if (waiting > DMARC_FAILURE_MAX_WAITING) {
        errno = ENOSPC;
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s/t.%s.%u", dir, log_id, ++counter);
    snprintf(final, sizeof final, "%s/f.%s.%u", dir, log_id, counter);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0660);
    if (fd < 0)
        return -1;
    char head[700];
    int n = snprintf(head, sizeof head, "%spolicy %s\nto %s\n\n", DMARC_FAILURE_MAGIC, policy, to);
    int r = n > 0 && (size_t)n < sizeof head && fd_write_all(fd, head, (size_t)n) == 0 &&
            fd_write_all(fd, msg->data, msg->len) == 0 ? 0 : -1;
    if (close(fd) < 0)
        r = -1;
    if (r == 0 && rename(tmp, final) < 0)
        r = -1;
    if (r < 0)
        unlink(tmp);
    return r;
}

void smtp_dmarc_failure_report(struct smtp_server *srv, const struct smtp_dmarc_seen *m, const char *hdr,
                               size_t hlen, const char *delivery)
{
    const struct ferry_config *cfg = srv->cfg;
    const struct dmarc_outcome *o = m->outcome;
    /* A pass can still be a failure fo= asks about (fo=1: one mechanism did not
       pass aligned; d and s: a signature or SPF failed): fo decides, below. */
    if (!cfg->dmarc_failure_reports || !srv->failure_limiter || !o ||
        (o->result != DMARC_RES_FAIL && o->result != DMARC_RES_PASS) ||
        !o->has_record || o->record.nruf == 0 || hlen == 0)
        return;
    /* No report about reports (RFC 9991 section 2): a failure report (ARF) or an
       aggregate report that failed DMARC gets none, so two reporters can never
       answer each other forever. */
    char head[8192];
    str_copyn(head, hdr, hlen < sizeof head - 1 ? hlen : sizeof head - 1, sizeof head);
    if (strcasestr(head, "report-type=feedback-report") || strcasestr(head, "report-type=\"feedback-report\"") ||
        strcasestr(head, "\nSubject: Report Domain:") || !strncasecmp(head, "Subject: Report Domain:", 23)) {
        log_msg(LOG_LVL_INFO, m->log_id, "dmarc: no failure report about a DMARC report");
        return;
    }
    char fo_text[16];
    dmarc_fo_text(o->record.fo, fo_text, sizeof fo_text);
    struct dmarc_fo fo;
    dmarc_fo_parse(fo_text, &fo);
    struct dmarc_failure_report r = {
        .reporter = cfg->hostname,
        .from = cfg->dmarc_report_email,
        .authserv_id = cfg->authserv_id,
        .policy_domain = o->policy_domain,
        .header_from = o->header_from,
        .source_ip = m->client_ip,
        .mail_from = m->envelope_from,
        .delivery = delivery,
        .outcome = {
            .psd = o->record.psd == DMARC_PSD_Y,
            .spf_aligned_pass = o->spf_aligned,
            .dkim_aligned_pass = o->dkim_aligned,
            .spf_failed = m->spf == SPF_FAIL,
        },
        .arrival = time(NULL),
        .now = time(NULL),
        .msg_id_seed = m->log_id,
        .redact = cfg->dmarc_failure_redact,
    };
    for (size_t i = 0; i < m->ndkim; i++) {
        const struct dkim_sig_result *d = &m->dkim[i];
        if (d->result == DKIM_RES_FAIL) {
            r.outcome.dkim_failed = true;
            size_t hl = strlen(o->header_from), dl = strlen(d->domain);
            bool within = str_ieq(d->domain, o->header_from) ||
                          (hl > dl && o->header_from[hl - dl - 1] == '.' && str_iendswith(o->header_from, d->domain));
            if (!r.dkim_domain && dl && within) {
                r.dkim_domain = d->domain;
                r.dkim_selector = d->selector;
            }
        }
    }
    if (!dmarc_failure_wanted(&fo, &r.outcome))
        return;
    double now = smtp_server_now(srv);
    for (size_t i = 0; i < o->record.nruf; i++) {
        struct dmarc_rua dest;
        const char *why;
        if (dmarc_rua_parse(o->record.ruf[i].uri, &dest, &why) < 0)
            continue;                   /* only mailto: destinations */
        if (!dmarc_failure_allow(srv->failure_limiter, dest.addr, now)) {
            log_msg(LOG_LVL_INFO, m->log_id, "dmarc: no failure report to %s: over %llu an hour", dest.addr,
                    cfg->dmarc_failure_rate);
            continue;
        }
        r.to = dest.addr;
        struct buf msg;
        char err[256];
        buf_init(&msg, 2u << 20);
        if (dmarc_failure_build(&r, hdr, hlen, &msg, err, sizeof err) < 0 ||
            (dest.max_size && msg.len > dest.max_size))
            log_msg(LOG_LVL_INFO, m->log_id, "dmarc: no failure report to %s: %s", dest.addr,
                    msg.len ? "over the URI's size limit" : err);
        else if (leave_for_runner(cfg, o->policy_domain, dest.addr, &msg, m->log_id) < 0)
            log_msg(LOG_LVL_WARN, m->log_id, "dmarc: failure report to %s not kept: %s", dest.addr, strerror(errno));
        else
            log_msg(LOG_LVL_INFO, m->log_id, "dmarc: failure report about %s to %s waits for the report run",
                    o->policy_domain, dest.addr);
        buf_free(&msg);
    }
}

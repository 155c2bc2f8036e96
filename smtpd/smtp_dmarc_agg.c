/* smtp_dmarc_agg — see smtp_dmarc_agg.h. */
#include "smtpd/smtp_dmarc_agg.h"
#include "auth/dkim_verify.h"
#include "auth/dmarc.h"
#include "auth/dmarc_agg.h"
#include "auth/spf_record.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/settings.h"
#include "smtpd/smtp_dkim_dmarc.h"
#include "smtpd/smtp_server.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

static void fill_policy(const struct dmarc_record *rec, struct dmarc_agg_policy *pol)
{
    memset(pol, 0, sizeof *pol);
    str_copy(pol->p, dmarc_policy_name(rec->p), sizeof pol->p);
    if (rec->has_sp)
        str_copy(pol->sp, dmarc_policy_name(rec->sp), sizeof pol->sp);
    if (rec->has_np)
        str_copy(pol->np, dmarc_policy_name(rec->np), sizeof pol->np);
    str_copy(pol->adkim, rec->adkim == DMARC_ALIGN_STRICT ? "s" : "r", sizeof pol->adkim);
    str_copy(pol->aspf, rec->aspf == DMARC_ALIGN_STRICT ? "s" : "r", sizeof pol->aspf);
    str_copy(pol->testing, rec->testing ? "y" : "n", sizeof pol->testing);
    str_copy(pol->psd, rec->psd == DMARC_PSD_Y ? "y" : rec->psd == DMARC_PSD_N ? "n" : "u", sizeof pol->psd);
    str_copy(pol->discovery, "treewalk", sizeof pol->discovery);
    if (rec->nruf)
        dmarc_fo_text(rec->fo, pol->fo, sizeof pol->fo);
    /* Every rua URI as published; whether an external one may have the report
       is asked when it is sent (queue/dmarc_job.h). */
    for (size_t i = 0; i < rec->nrua && pol->nrua < DMARC_AGG_MAX_RUA; i++) {
        if (rec->rua[i].limit)
            snprintf(pol->rua[pol->nrua++], DMARC_AGG_URI_MAX, "%s!%llu", rec->rua[i].uri,
                     (unsigned long long)rec->rua[i].limit);
        else
            str_copy(pol->rua[pol->nrua++], rec->rua[i].uri, DMARC_AGG_URI_MAX);
    }
}

void smtp_dmarc_agg_record(struct smtp_server *srv, const struct smtp_dmarc_seen *m)
{
    const struct ferry_config *cfg = srv->cfg;
    const struct dmarc_outcome *o = m->outcome;
    if (!srv->dmarc_agg || !o || !o->has_record || o->record.nrua == 0 || !o->policy_domain[0] ||
        !settings_dmarc_report_domain(cfg, o->policy_domain))
        return;
    struct dmarc_agg_policy pol;
    fill_policy(&o->record, &pol);
    struct dmarc_agg_row row;
    memset(&row, 0, sizeof row);
    str_copy(row.source_ip, m->client_ip, sizeof row.source_ip);
    str_copy(row.disposition, dmarc_policy_name((enum dmarc_policy)m->verdict->applied), sizeof row.disposition);
    str_copy(row.dkim_aligned, o->dkim_aligned ? "pass" : "fail", sizeof row.dkim_aligned);
    str_copy(row.spf_aligned, o->spf_aligned ? "pass" : "fail", sizeof row.spf_aligned);
    /* RFC 9990 3.1.6: why the disposition differs from the policy. */
    if (m->verdict->override[0]) {
        str_copy(row.reason, m->verdict->override, sizeof row.reason);
        str_copy(row.reason_comment, m->verdict->override_comment, sizeof row.reason_comment);
    } else if (o->record.testing && o->result == DMARC_RES_FAIL && o->disposition != o->policy)
        str_copy(row.reason, "policy_test_mode", sizeof row.reason);
    for (size_t i = 0; i < m->ndkim && row.ndkim < DMARC_AGG_MAX_DKIM; i++) {
        const struct dkim_sig_result *d = &m->dkim[i];
        if (d->result == DKIM_RES_NONE || !d->domain[0])
            continue;
        struct dmarc_agg_dkim *k = &row.dkim[row.ndkim++];
        str_copy(k->domain, d->domain, sizeof k->domain);
        str_copy(k->selector, d->selector, sizeof k->selector);
        str_copy(k->result, dkim_result_name(d->result), sizeof k->result);
    }
    if (m->spf_domain[0]) {
        str_copy(row.spf_domain, m->spf_domain, sizeof row.spf_domain);
        str_copy(row.spf_scope, "mfrom", sizeof row.spf_scope);
        str_copy(row.spf_result, spf_result_name((enum spf_result)m->spf), sizeof row.spf_result);
    }
    str_copy(row.header_from, o->header_from, sizeof row.header_from);
    str_copy(row.envelope_from, domain_of(m->envelope_from), sizeof row.envelope_from);
    str_copy(row.envelope_to, domain_of(m->envelope_to), sizeof row.envelope_to);
    int r = dmarc_agg_add(srv->dmarc_agg, o->policy_domain, &pol, &row, time(NULL),
                          (unsigned)cfg->dmarc_report_interval);
    if (r < 0)
        log_msg(LOG_LVL_WARN, m->log_id, "dmarc: not counted for the report of %s: %s", o->policy_domain,
                dmarc_agg_error(srv->dmarc_agg));
}

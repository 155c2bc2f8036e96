/* dmarc_report_xml — see dmarc_report_xml.h. */
#include "auth/dmarc_report_xml.h"
#include "lib/addr.h"

#include <stdio.h>
#include <string.h>

int dmarc_xml_escape(struct buf *out, const char *s)
{
    bool utf8 = addr_utf8_valid(s, strlen(s));
    int r = 0;
    for (; *s && r == 0; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '&': r = buf_puts(out, "&amp;"); break;
        case '<': r = buf_puts(out, "&lt;"); break;
        case '>': r = buf_puts(out, "&gt;"); break;
        case '"': r = buf_puts(out, "&quot;"); break;
        case '\'': r = buf_puts(out, "&apos;"); break;
        default:
            /* XML 1.0 allows no C0 control but TAB, LF, CR; make every other one a space */
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                c = ' ';
            else if (c >= 0x80 && !utf8)
                c = '?';
            r = buf_append(out, &c, 1);
        }
    }
    return r;
}

/* <name>escaped value</name> at an indent. */
static int elem(struct buf *b, int indent, const char *name, const char *value)
{
    int r = buf_printf(b, "%*s<%s>", indent, "", name);
    r |= dmarc_xml_escape(b, value);
    r |= buf_printf(b, "</%s>\n", name);
    return r;
}

static int put_metadata(struct buf *b, const struct dmarc_agg_report *r, const struct dmarc_report_meta *m)
{
    int rc = buf_puts(b, "  <report_metadata>\n");
    rc |= elem(b, 4, "org_name", m->org_name);
    rc |= elem(b, 4, "email", m->email);
    if (m->extra_contact && *m->extra_contact)
        rc |= elem(b, 4, "extra_contact_info", m->extra_contact);
    rc |= elem(b, 4, "report_id", r->report_id);
    /* end is the period's last second: consecutive reports never overlap (3.1.1.4) */
    rc |= buf_printf(b, "    <date_range>\n      <begin>%lld</begin>\n      <end>%lld</end>\n    </date_range>\n",
                     r->begin, r->end - 1);
    if (r->unitemised) {
        char msg[160];
        snprintf(msg, sizeof msg, "%llu messages were evaluated but not itemised: the reporter's row limit "
                 "for one period was reached", r->unitemised);
        rc |= elem(b, 4, "error", msg);
    }
    if (m->generator && *m->generator)
        rc |= elem(b, 4, "generator", m->generator);
    rc |= buf_puts(b, "  </report_metadata>\n");
    return rc;
}

/* Unspecified tags carry their defaults (3.1.1.5): sp defaults to p, np to sp,
   fo to 0. psd has no element in the schema and is not reported. */
static int put_policy(struct buf *b, const struct dmarc_agg_report *r)
{
    const struct dmarc_agg_policy *p = &r->policy;
    const char *sp = p->sp[0] ? p->sp : p->p;
    const char *np = p->np[0] ? p->np : sp;
    int rc = buf_puts(b, "  <policy_published>\n");
    rc |= elem(b, 4, "domain", r->domain);
    if (p->discovery[0])
        rc |= elem(b, 4, "discovery_method", p->discovery);
    rc |= elem(b, 4, "p", p->p);
    rc |= elem(b, 4, "sp", sp);
    rc |= elem(b, 4, "np", np);
    rc |= elem(b, 4, "fo", p->fo[0] ? p->fo : "0");
    rc |= elem(b, 4, "adkim", p->adkim);
    rc |= elem(b, 4, "aspf", p->aspf);
    rc |= elem(b, 4, "testing", p->testing);
    rc |= buf_puts(b, "  </policy_published>\n");
    return rc;
}

static int put_record(struct buf *b, const struct dmarc_agg_row *w)
{
    int rc = buf_puts(b, "  <record>\n    <row>\n");
    rc |= elem(b, 6, "source_ip", w->source_ip);
    rc |= buf_printf(b, "      <count>%llu</count>\n      <policy_evaluated>\n", w->count);
    rc |= elem(b, 8, "disposition", w->disposition);
    rc |= elem(b, 8, "dkim", w->dkim_aligned);
    rc |= elem(b, 8, "spf", w->spf_aligned);
    if (w->reason[0]) {
        rc |= buf_puts(b, "        <reason>\n");
        rc |= elem(b, 10, "type", w->reason);
        if (w->reason_comment[0])
            rc |= elem(b, 10, "comment", w->reason_comment);
        rc |= buf_puts(b, "        </reason>\n");
    }
    rc |= buf_puts(b, "      </policy_evaluated>\n    </row>\n    <identifiers>\n");
    rc |= elem(b, 6, "header_from", w->header_from);
    rc |= elem(b, 6, "envelope_from", w->envelope_from);   /* empty: null reverse-path (3.1.1.10) */
    if (w->envelope_to[0])
        rc |= elem(b, 6, "envelope_to", w->envelope_to);
    rc |= buf_puts(b, "    </identifiers>\n    <auth_results>\n");
    for (size_t i = 0; i < w->ndkim; i++) {
        rc |= buf_puts(b, "      <dkim>\n");
        rc |= elem(b, 8, "domain", w->dkim[i].domain);
        rc |= elem(b, 8, "selector", w->dkim[i].selector);
        rc |= elem(b, 8, "result", w->dkim[i].result);
        rc |= buf_puts(b, "      </dkim>\n");
    }
    if (w->spf_domain[0]) {
        rc |= buf_puts(b, "      <spf>\n");
        rc |= elem(b, 8, "domain", w->spf_domain);
        if (w->spf_scope[0])
            rc |= elem(b, 8, "scope", w->spf_scope);
        rc |= elem(b, 8, "result", w->spf_result);
        rc |= buf_puts(b, "      </spf>\n");
    }
    rc |= buf_puts(b, "    </auth_results>\n  </record>\n");
    return rc;
}

int dmarc_report_xml(const struct dmarc_agg_report *r, const struct dmarc_report_meta *m, struct buf *out)
{
    if (r->nrows == 0 || !r->report_id[0])
        return -1;
    size_t start = out->len;
    int rc = buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                           "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\">\n  <version>1.0</version>\n");
    rc |= put_metadata(out, r, m);
    rc |= put_policy(out, r);
    for (size_t i = 0; i < r->nrows && rc == 0; i++)
        rc |= put_record(out, &r->rows[i]);
    rc |= buf_puts(out, "</feedback>\n");
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        return -1;
    }
    return 0;
}

/* dmarc_report_mail — see dmarc_report_mail.h. */
#include "auth/dmarc_report_mail.h"
#include "lib/addr.h"
#include "lib/gzip.h"
#include "lib/mail_date.h"
#include "lib/mime.h"

#include <stdio.h>
#include <string.h>

#define XML_MAX (256u << 20)        /* uncompressed report, before gzip */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int dmarc_rua_parse(const char *uri, struct dmarc_rua *out, const char **why)
{
    memset(out, 0, sizeof *out);
    while (*uri == ' ' || *uri == '\t')
        uri++;
    if (strncasecmp(uri, "mailto:", 7) != 0) {
        *why = "only mailto: report URIs are supported";
        return -1;
    }
    const char *p = uri + 7;
    size_t n = 0;
    for (; *p && *p != '!' && *p != '?'; p++) {
        char c = *p;
        if (c == '%') {
            int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);
            if (l < 0) {
                *why = "bad %-escape in the URI";
                return -1;
            }
            c = (char)(h * 16 + l);
            p += 2;
        }
        if (n + 1 >= sizeof out->addr || c == ',' || (unsigned char)c <= ' ') {
            *why = "the URI holds no single address";
            return -1;
        }
        out->addr[n++] = c;
    }
    out->addr[n] = '\0';
    if (*p == '?')                  /* hfields: we send our own header */
        p += strcspn(p, "!");
    if (*p == '!') {
        unsigned long long v = 0;
        const char *d = ++p;
        while (*p >= '0' && *p <= '9' && v < (1ULL << 40))
            v = v * 10 + (unsigned long long)(*p++ - '0');
        int shift = 0;
        switch (*p) {
        case 'k': case 'K': shift = 10; p++; break;
        case 'm': case 'M': shift = 20; p++; break;
        case 'g': case 'G': shift = 30; p++; break;
        case 't': case 'T': shift = 40; p++; break;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (p == d || *p || v >= (1ULL << 40)) {
            *why = "bad size limit after '!'";
            return -1;
        }
        out->max_size = v << shift;
        if (out->max_size == 0)
            out->max_size = 1;      /* "!0": nothing fits */
    }
    struct mailbox m;
    const char *e;
    if (addr_parse_mailbox(out->addr, strlen(out->addr), false, &m, &e) < 0 || m.domain_kind != ADDR_DOMAIN_NAME) {
        *why = "the URI's address is not local@domain";
        return -1;
    }
    return 0;
}

int dmarc_report_gzip(const void *data, size_t len, struct buf *out)
{
    return gzip_compress(data, len, XML_MAX, out);
}

void dmarc_report_filename(const struct dmarc_report_sender *s, const struct dmarc_agg_report *r, char *out,
                           size_t outsz)
{
    snprintf(out, outsz, "%s!%s!%lld!%lld!%s.xml.gz", s->receiver, r->domain, r->begin, r->end - 1, r->report_id);
}

static void utc_time(long long t, char *out, size_t outsz)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, outsz, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

int dmarc_report_mail(const struct dmarc_report_sender *s, const struct dmarc_agg_report *r, const void *gz,
                      size_t gzlen, const char *to, struct buf *out, char *err, size_t errlen)
{
    char file[DMARC_AGG_DOMAIN_MAX * 2 + DMARC_AGG_RID_MAX + 64], field[1024], date[MAIL_DATE_MAX];
    char boundary[96], b0[40], b1[40];
    dmarc_report_filename(s, r, file, sizeof file);
    /* base64 never holds '=' followed by '_', so this boundary cannot occur in a part */
    snprintf(boundary, sizeof boundary, "=_ferry_dmarc_%s", r->report_id);
    size_t start = out->len;
    int rc = 0;
    mail_date(s->now, date, sizeof date);
    snprintf(field, sizeof field, "<%s>", s->from);
    rc |= mime_put_field(out, "From", field);
    snprintf(field, sizeof field, "<%s>", to);
    rc |= mime_put_field(out, "To", field);
    snprintf(field, sizeof field, "Report Domain: %s Submitter: %s Report-ID: <%s>", r->domain, s->receiver,
             r->report_id);
    rc |= mime_put_field(out, "Subject", field);
    rc |= mime_put_field(out, "Date", date);
    snprintf(field, sizeof field, "<%s@%s>", r->report_id, s->receiver);
    rc |= mime_put_field(out, "Message-ID", field);
    rc |= buf_puts(out, "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
    rc |= buf_printf(out, "Content-Type: multipart/mixed;\r\n\tboundary=\"%s\"\r\n\r\n", boundary);
    rc |= buf_puts(out, "This is a MIME-formatted DMARC aggregate report.\r\n");
    rc |= buf_printf(out, "\r\n--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
    utc_time(r->begin, b0, sizeof b0);
    utc_time(r->end - 1, b1, sizeof b1);
    char org[256];
    mime_sanitize(s->meta.org_name, org, sizeof org);
    for (char *p = org; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    rc |= buf_printf(out, "This is a DMARC aggregate report (RFC 9990) from %s\r\n"
                          "for the domain %s, covering %s to %s.\r\n"
                          "Report-ID: %s\r\n", org, r->domain, b0, b1, r->report_id);
    rc |= buf_printf(out, "\r\n--%s\r\nContent-Type: application/gzip;\r\n\tname=\"%s\"\r\n", boundary, file);
    rc |= buf_printf(out, "Content-Disposition: attachment;\r\n\tfilename=\"%s\"\r\n", file);
    rc |= buf_puts(out, "Content-Transfer-Encoding: base64\r\n\r\n");
    rc |= mime_put_base64(out, gz, gzlen);
    rc |= buf_printf(out, "\r\n--%s--\r\n", boundary);
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        snprintf(err, errlen, "the DMARC report for %s does not fit in %zu octets", r->domain, out->max);
        return -1;
    }
    return 0;
}

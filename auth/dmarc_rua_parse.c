/* dmarc_rua_parse — see dmarc_rua_parse.h: the XML, gzip and zip readers. */
#include "auth/dmarc_rua_parse.h"
#include "lib/buf.h"
#include "lib/gzip.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#define ZIP_ENTRIES_MAX 16

static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static bool named(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name);
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
    for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (named(c, name))
            return c;
    return NULL;
}

/* The text of path (child names separated by '/') under n, trimmed, into out.
   Absent: "" (0). Longer than out: -1. */
static int text_at(const xmlNode *n, const char *path, char *out, size_t outsz)
{
    char part[64];
    out[0] = '\0';
    while (n && *path) {
        size_t k = strcspn(path, "/");
        if (k >= sizeof part)
            return -1;
        memcpy(part, path, k);
        part[k] = '\0';
        n = child(n, part);
        path += k + (path[k] == '/');
    }
    if (!n)
        return 0;
    /* Only direct text children: no entity references are followed. */
    size_t o = 0;
    for (const xmlNode *c = n->children; c; c = c->next) {
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
            continue;
        size_t l = c->content ? strlen((const char *)c->content) : 0;
        if (o + l >= outsz)
            return -1;
        memcpy(out + o, c->content, l);
        o += l;
    }
    out[o] = '\0';
    str_trim(out);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    return 0;
}

#define TEXT(node, path, field, name)                                                         \
    do {                                                                                      \
        if (text_at(node, path, field, sizeof(field)) < 0)                                    \
            return refuse(err, errlen, "the report's %s is too long", name);                  \
    } while (0)

static int number(const char *s, long long *out)
{
    unsigned long long v;
    if (str_to_u64(s, 1ULL << 48, &v) < 0)
        return -1;
    *out = (long long)v;
    return 0;
}

static int parse_record(const xmlNode *rec, struct dmarc_rua_record *r, char *err, size_t errlen)
{
    char cnt[32];
    memset(r, 0, sizeof *r);
    TEXT(rec, "row/source_ip", r->source_ip, "source_ip");
    TEXT(rec, "row/count", cnt, "count");
    TEXT(rec, "row/policy_evaluated/disposition", r->disposition, "disposition");
    TEXT(rec, "row/policy_evaluated/dkim", r->dkim, "policy_evaluated/dkim");
    TEXT(rec, "row/policy_evaluated/spf", r->spf, "policy_evaluated/spf");
    TEXT(rec, "identifiers/header_from", r->header_from, "header_from");
    TEXT(rec, "identifiers/envelope_from", r->envelope_from, "envelope_from");
    TEXT(rec, "auth_results/spf/domain", r->spf_domain, "spf domain");
    TEXT(rec, "auth_results/spf/result", r->spf_result, "spf result");
    long long c;
    if (!r->source_ip[0] || number(cnt, &c) < 0)
        return refuse(err, errlen, "a record has no source_ip or no valid count");
    r->count = (unsigned long long)c;
    const xmlNode *ar = child(rec, "auth_results");
    for (const xmlNode *d = ar ? ar->children : NULL; d; d = d->next) {
        if (!named(d, "dkim"))
            continue;
        char dom[256], res[16];
        TEXT(d, "domain", dom, "dkim domain");
        TEXT(d, "result", res, "dkim result");
        if (!r->dkim_domain[0] || (strcmp(r->dkim_result, "pass") && !strcmp(res, "pass"))) {
            str_copy(r->dkim_domain, dom, sizeof r->dkim_domain);
            str_copy(r->dkim_result, res, sizeof r->dkim_result);
        }
    }
    return 0;
}

static int walk(const xmlNode *root, struct dmarc_rua_report *out, char *err, size_t errlen)
{
    char b[32], e[32];
    if (!named(root, "feedback"))
        return refuse(err, errlen, "the XML is not a DMARC report (its root is not <feedback>)");
    if (root->ns && root->ns->href && strncmp((const char *)root->ns->href, "urn:ietf:params:xml:ns:dmarc-", 29))
        return refuse(err, errlen, "the report's namespace is not DMARC's");
    TEXT(root, "report_metadata/org_name", out->org_name, "org_name");
    TEXT(root, "report_metadata/email", out->email, "email");
    TEXT(root, "report_metadata/report_id", out->report_id, "report_id");
    TEXT(root, "report_metadata/date_range/begin", b, "begin");
    TEXT(root, "report_metadata/date_range/end", e, "end");
    TEXT(root, "policy_published/domain", out->domain, "policy domain");
    TEXT(root, "policy_published/p", out->p, "p");
    if (!out->org_name[0] || !out->report_id[0] || !out->domain[0])
        return refuse(err, errlen, "the report lacks org_name, report_id or policy_published/domain");
    if (number(b, &out->begin) < 0 || number(e, &out->end) < 0 || out->end < out->begin)
        return refuse(err, errlen, "the report's date_range is not two ordered numbers");
    size_t n = 0;
    for (const xmlNode *c = root->children; c; c = c->next)
        n += named(c, "record");
    if (n > DMARC_RUA_RECORDS_MAX)
        return refuse(err, errlen, "the report has more than %d records", DMARC_RUA_RECORDS_MAX);
    out->records = calloc(n ? n : 1, sizeof *out->records);
    if (!out->records)
        return refuse(err, errlen, "out of memory");
    for (const xmlNode *c = root->children; c; c = c->next)
        if (named(c, "record") && parse_record(c, &out->records[out->nrecords++], err, errlen) < 0)
            return -1;
    return 0;
}

static bool has(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (s[i] == needle[0] && !memcmp(s + i, needle, k))
            return true;
    return false;
}

static void quiet(void *ctx, const char *msg, ...)
{
}

int dmarc_rua_parse_xml(const char *xml, size_t len, struct dmarc_rua_report *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > DMARC_RUA_XML_MAX)
        return refuse(err, errlen, "the report XML is larger than %u octets", DMARC_RUA_XML_MAX);
    if (has(xml, len, "<!DOCTYPE") || has(xml, len, "<!ENTITY"))
        return refuse(err, errlen, "the report XML has a DOCTYPE or entity declaration, which is refused");
    xmlSetGenericErrorFunc(NULL, quiet);
    /* NONET: no network; no NOENT (entities are not substituted), no DTDLOAD/DTDATTR,
       no HUGE: libxml2's own depth and size limits stay on. */
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, "report.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
    if (!doc) {
        const xmlError *e = xmlGetLastError();
        char why[160];
        str_copy(why, e && e->message ? e->message : "parse error", sizeof why);
        why[strcspn(why, "\n")] = '\0';
        return refuse(err, errlen, "the report is not well-formed XML (line %d: %s)", e ? e->line : 0, why);
    }
    int r = doc->intSubset || doc->extSubset
                ? refuse(err, errlen, "the report XML has a DOCTYPE, which is refused")
                : walk(xmlDocGetRootElement(doc), out, err, errlen);
    xmlFreeDoc(doc);
    if (r < 0)
        dmarc_rua_report_free(out);
    return r;
}

void dmarc_rua_report_free(struct dmarc_rua_report *r)
{
    free(r->records);
    r->records = NULL;
    r->nrecords = 0;
}

static int gunzip(const unsigned char *in, size_t len, struct buf *out, char *err, size_t errlen)
{
    switch (gzip_inflate(in, len, out)) {
    case GZIP_OK: return 0;
    case GZIP_TOO_BIG: return refuse(err, errlen, "the report inflates to more than %u octets", DMARC_RUA_XML_MAX);
    case GZIP_CORRUPT: return refuse(err, errlen, "the gzip data is corrupt");
    case GZIP_TRUNCATED: return refuse(err, errlen, "the gzip data is truncated");
    default: return refuse(err, errlen, "out of memory");
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && str_nieq(s + n - k, suffix, k);
}

static int unzip(const void *in, size_t len, struct buf *out, char *err, size_t errlen)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(in, len, 0, &ze);
    zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
    if (!z) {
        if (src)
            zip_source_free(src);
        zip_error_fini(&ze);
        return refuse(err, errlen, "the zip archive is corrupt or truncated");
    }
    zip_error_fini(&ze);
    zip_int64_t n = zip_get_num_entries(z, 0);
    zip_int64_t pick = -1;
    for (zip_int64_t i = 0; i < n && i < ZIP_ENTRIES_MAX; i++) {
        const char *name = zip_get_name(z, (zip_uint64_t)i, 0);
        if (name && ends_with(name, ".xml")) {
            pick = i;
            break;
        }
    }
    int rc = 0;
    zip_file_t *f = NULL;
    if (n < 1 || n > ZIP_ENTRIES_MAX || pick < 0) {
        rc = refuse(err, errlen, "the zip archive holds no single .xml report");
    } else if (!(f = zip_fopen_index(z, (zip_uint64_t)pick, 0))) {
        rc = refuse(err, errlen, "the zip entry cannot be read (encrypted or unsupported)");
    } else {
        /* read in chunks against the limit: the declared size may lie */
        unsigned char chunk[16384];
        zip_int64_t got;
        while ((got = zip_fread(f, chunk, sizeof chunk)) > 0)
            if (buf_append(out, chunk, (size_t)got) < 0) {
                rc = refuse(err, errlen, "the report inflates to more than %u octets", DMARC_RUA_XML_MAX);
                break;
            }
        if (rc == 0 && got < 0)
            rc = refuse(err, errlen, "the zip entry is corrupt");
        zip_fclose(f);
    }
    zip_discard(z);
    return rc;
}

int dmarc_rua_parse_blob(const void *data, size_t len, struct dmarc_rua_report *out, char *err, size_t errlen)
{
    const unsigned char *p = data;
    memset(out, 0, sizeof *out);
    if (len > DMARC_RUA_PACKED_MAX)
        return refuse(err, errlen, "the report is larger than %u octets", DMARC_RUA_PACKED_MAX);
    bool gz = len >= 2 && p[0] == 0x1f && p[1] == 0x8b;
    bool zip = len >= 4 && !memcmp(p, "PK\3\4", 4);
    if (!gz && !zip)
        return dmarc_rua_parse_xml(data, len, out, err, errlen);
    struct buf xml;
    buf_init(&xml, DMARC_RUA_XML_MAX);
    int r = gz ? gunzip(p, len, &xml, err, errlen) : unzip(data, len, &xml, err, errlen);
    if (r == 0)
        r = dmarc_rua_parse_xml(xml.data ? xml.data : "", xml.len, out, err, errlen);
    buf_free(&xml);
    return r;
}

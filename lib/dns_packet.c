/*
 * dns_packet — the pure half of the DNS client: build a query, parse a response,
 * copy and free answers, parse resolver configuration. No sockets here.
 *
 * Parsing is done with ldns (wire format, name compression, RR type layouts);
 * this file decides what an answer means for Ferry: which records answer the
 * question (following CNAMEs inside the answer), NXDOMAIN versus NODATA, the TTL
 * to cache for (RFC 2308 §5 for negative answers), and the AD bit.
 */
#include "lib/dns.h"
#include "lib/dns_internal.h"
#include "lib/buf.h"
#include "lib/netaddr.h"

#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_MAX_RECORDS  256
#define DNS_MAX_CNAMES   8

static const struct {
    const char *name;
    uint16_t type;
} type_names[] = {
    { "A", DNS_T_A }, { "MX", DNS_T_MX }, { "TXT", DNS_T_TXT },
    { "PTR", DNS_T_PTR }, { "AAAA", DNS_T_AAAA }, { "TLSA", DNS_T_TLSA },
};

const char *dns_type_name(uint16_t type)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (type_names[i].type == type)
            return type_names[i].name;
    return "?";
}

uint16_t dns_type_parse(const char *s)
{
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (str_ieq(s, type_names[i].name))
            return type_names[i].type;
    return 0;
}

const char *dns_status_name(enum dns_status s)
{
    static const char *const names[] = { "ok", "nxdomain", "nodata", "servfail", "timeout", "error" };
    return (unsigned)s < 6 ? names[s] : "?";
}

void dns_config_init(struct dns_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->timeout_ms = 3000;
    cfg->rounds = 2;
    cfg->cache_max = 10000;
    cfg->max_ttl = 86400;
}

int dns_config_add_server(struct dns_config *cfg, const char *spec)
{
    if (cfg->nservers >= DNS_MAX_SERVERS)
        return -1;
    struct sockaddr_storage sa;
    socklen_t len;
    if (netaddr_parse_hostport(spec, 53, &sa, &len) < 0)
        return -1;
    cfg->servers[cfg->nservers] = sa;
    cfg->server_len[cfg->nservers] = len;
    cfg->nservers++;
    return 0;
}

int dns_config_from_resolv_conf(struct dns_config *cfg, const char *path)
{
    FILE *f = fopen(path ? path : "/etc/resolv.conf", "r");
    int rc = 0;
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            char word[32], addr[128];
            if (line[0] == '#' || line[0] == ';')
                continue;
            if (sscanf(line, "%31s %127s", word, addr) == 2 && strcmp(word, "nameserver") == 0) {
                char *pct = strchr(addr, '%');      /* fe80::1%eth0: scope not supported */
                if (pct)
                    continue;
                dns_config_add_server(cfg, addr);
            }
        }
        fclose(f);
    } else {
        rc = -1;
    }
    if (cfg->nservers == 0)
        dns_config_add_server(cfg, "127.0.0.1");
    return rc;
}

/* "example.com" or "example.com." → a checked absolute name with the final dot. */
int dns_normalize_name(const char *name, char *out, size_t outsz)
{
    size_t n = strlen(name);
    if (n && name[n - 1] == '.')
        n--;
    if (n == 0 || n > 253 || n + 2 > outsz)
        return -1;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
            continue;
        }
        /* Any printable octet is fine in a DNS label (SPF macros and DMP names
           build odd ones: '%', a space, '\\'); dname_rdf escapes them for ldns.
           Control octets are refused: no valid input produces them, and the
           names go into logs. */
        if (c < ' ' || c == 0x7f)
            return -1;
        if (++label > 63)
            return -1;
    }
    memcpy(out, name, n);
    out[n] = '.';
    out[n + 1] = '\0';
    return 0;
}

/* The ldns name for a normalized name: ldns reads presentation format, so every
   octet it could take for syntax (a space, '\\', quotes, parentheses, ';', '@', '$')
   goes in as \DDD. */
static ldns_rdf *dname_rdf(const char *fq)
{
    char esc[4 * (DNS_NAME_MAX + 2) + 1];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)fq; *p && o + 5 < sizeof esc; p++) {
        if (*p == '.' || (*p > ' ' && *p < 0x7f && !strchr("\\\"();@$", *p)))
            esc[o++] = (char)*p;
        else
            o += (size_t)snprintf(esc + o, sizeof esc - o, "\\%03u", *p);
    }
    esc[o] = '\0';
    return ldns_dname_new_frm_str(esc);
}

int dns_build_query(const char *name, uint16_t type, uint16_t id, bool dnssec_ok, uint8_t *out, size_t outsz)
{
    char fq[DNS_NAME_MAX + 2];
    if (dns_normalize_name(name, fq, sizeof fq) < 0)
        return -1;
    ldns_rdf *dname = dname_rdf(fq);
    if (!dname)
        return -1;
    ldns_pkt *pkt = ldns_pkt_query_new(dname, (ldns_rr_type)type, LDNS_RR_CLASS_IN, LDNS_RD);
    if (!pkt) {
        ldns_rdf_deep_free(dname);
        return -1;
    }
    ldns_pkt_set_id(pkt, id);
    ldns_pkt_set_edns_udp_size(pkt, DNS_EDNS_PAYLOAD);
    ldns_pkt_set_edns_do(pkt, dnssec_ok);
    uint8_t *wire = NULL;
    size_t size = 0;
    int rc = -1;
    if (ldns_pkt2wire(&wire, pkt, &size) == LDNS_STATUS_OK && size <= outsz) {
        memcpy(out, wire, size);
        rc = (int)size;
    }
    free(wire);
    ldns_pkt_free(pkt);
    return rc;
}

void dns_answer_free(struct dns_answer *a)
{
    for (size_t i = 0; i < a->count; i++)
        free(a->records[i].data);
    free(a->records);
    a->records = NULL;
    a->count = 0;
}

int dns_answer_copy(struct dns_answer *dst, const struct dns_answer *src)
{
    *dst = *src;
    dst->records = NULL;
    dst->count = 0;
    if (src->count == 0)
        return 0;
    dst->records = calloc(src->count, sizeof *dst->records);
    if (!dst->records)
        return -1;
    for (size_t i = 0; i < src->count; i++) {
        dst->records[i] = src->records[i];
        dst->records[i].data = NULL;
        if (src->records[i].data) {
            dst->records[i].data = malloc(src->records[i].len + 1);
            if (!dst->records[i].data) {
                dst->count = i;
                dns_answer_free(dst);
                return -1;
            }
            memcpy(dst->records[i].data, src->records[i].data, src->records[i].len + 1);
        }
        dst->count = i + 1;
    }
    return 0;
}

/* A domain name as text, without the final dot (the root stays "."). -1 when out
   of memory. */
static int name_text(const ldns_rdf *rdf, char *out, size_t outsz)
{
    char *s = ldns_rdf2str(rdf);
    if (!s)
        return -1;
    size_t n = strlen(s);
    if (n > 1 && s[n - 1] == '.')
        s[n - 1] = '\0';
    str_copy(out, s, outsz);
    free(s);
    return 0;
}

/* RFC 2181 §8: a TTL with the most significant bit set is treated as zero, so a
   broken or hostile server cannot make Ferry cache for up to 136 years (or, after
   the max_ttl cap, for the longest time allowed). */
static uint32_t ttl_value(uint32_t ttl)
{
    return ttl & 0x80000000u ? 0 : ttl;
}

#define TAKE_MALFORMED  (-1)
#define TAKE_NOMEM      (-2)

/* Fill one record from an RR of the asked type: 0, TAKE_MALFORMED (the record is
   skipped) or TAKE_NOMEM (the whole answer is unusable: a record may be missing). */
static int take_record(const ldns_rr *rr, struct dns_record *r)
{
    memset(r, 0, sizeof *r);
    r->type = (uint16_t)ldns_rr_get_type(rr);
    r->ttl = ttl_value(ldns_rr_ttl(rr));
    const ldns_rdf *f0 = ldns_rr_rdf(rr, 0);
    switch (r->type) {
    case DNS_T_A:
        if (!f0 || ldns_rdf_size(f0) != 4)
            return -1;
        memcpy(&r->u.a, ldns_rdf_data(f0), 4);
        return 0;
    case DNS_T_AAAA:
        if (!f0 || ldns_rdf_size(f0) != 16)
            return -1;
        memcpy(&r->u.aaaa, ldns_rdf_data(f0), 16);
        return 0;
    case DNS_T_MX: {
        const ldns_rdf *f1 = ldns_rr_rdf(rr, 1);
        if (!f0 || !f1 || ldns_rdf_size(f0) != 2)
            return -1;
        r->u.mx.preference = ldns_rdf2native_int16(f0);
        return name_text(f1, r->u.mx.exchange, sizeof r->u.mx.exchange) < 0 ? TAKE_NOMEM : 0;
    }
    case DNS_T_PTR:
        if (!f0)
            return -1;
        return name_text(f0, r->u.ptr, sizeof r->u.ptr) < 0 ? TAKE_NOMEM : 0;
    case DNS_T_TXT: {
        struct buf b;
        buf_init(&b, 65535);
        for (size_t i = 0; i < ldns_rr_rd_count(rr); i++) {
            const ldns_rdf *f = ldns_rr_rdf(rr, i);
            const uint8_t *d = ldns_rdf_data(f);
            size_t sz = ldns_rdf_size(f);
            /* a character-string: one length octet, then that many octets */
            if (sz < 1 || (size_t)d[0] + 1 != sz) {
                buf_free(&b);
                return TAKE_MALFORMED;
            }
            /* the limit cannot be reached (RDLENGTH is 16 bits): a failure is memory */
            if (buf_append(&b, d + 1, d[0]) < 0) {
                buf_free(&b);
                return TAKE_NOMEM;
            }
        }
        r->data = (unsigned char *)b.data;
        r->len = b.len;
        if (!r->data) {
            r->data = calloc(1, 1);
            if (!r->data)
                return TAKE_NOMEM;
        }
        return 0;
    }
    case DNS_T_TLSA: {
        const ldns_rdf *f1 = ldns_rr_rdf(rr, 1), *f2 = ldns_rr_rdf(rr, 2), *f3 = ldns_rr_rdf(rr, 3);
        if (!f0 || !f1 || !f2 || !f3 || ldns_rdf_size(f0) != 1 || ldns_rdf_size(f1) != 1 || ldns_rdf_size(f2) != 1)
            return -1;
        r->u.tlsa.usage = ldns_rdf2native_int8(f0);
        r->u.tlsa.selector = ldns_rdf2native_int8(f1);
        r->u.tlsa.matching = ldns_rdf2native_int8(f2);
        r->len = ldns_rdf_size(f3);
        r->data = malloc(r->len + 1);
        if (!r->data)
            return TAKE_NOMEM;
        memcpy(r->data, ldns_rdf_data(f3), r->len);
        r->data[r->len] = 0;
        return 0;
    }
    default:
        return -1;
    }
}

/* RFC 2308 §5: a negative answer lives for min(SOA TTL, SOA MINIMUM). */
static uint32_t negative_ttl(const ldns_pkt *pkt)
{
    ldns_rr_list *auth = ldns_pkt_authority(pkt);
    for (size_t i = 0; auth && i < ldns_rr_list_rr_count(auth); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(auth, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_SOA || ldns_rr_rd_count(rr) < 7)
            continue;
        uint32_t ttl = ttl_value(ldns_rr_ttl(rr));
        uint32_t minimum = ttl_value(ldns_rdf2native_int32(ldns_rr_rdf(rr, 6)));
        return ttl < minimum ? ttl : minimum;
    }
    return 0;
}

int dns_parse_packet(const uint8_t *pkt_data, size_t len, const char *qname, uint16_t qtype, uint16_t id,
                     struct dns_answer *out, uint32_t *min_ttl, bool *truncated)
{
    memset(out, 0, sizeof *out);
    out->rcode = -1;
    out->qtype = qtype;
    *min_ttl = 0;
    *truncated = false;
    char fq[DNS_NAME_MAX + 2];
    if (dns_normalize_name(qname, fq, sizeof fq) < 0)
        return -1;
    str_copy(out->qname, fq, sizeof out->qname);
    /* Refuse garbage before ldns sees it: a header and one question at least. */
    if (len < 12 || len > 65535)
        return -1;
    ldns_pkt *pkt = NULL;
    if (ldns_wire2pkt(&pkt, pkt_data, len) != LDNS_STATUS_OK)
        return -1;
    ldns_rdf *want = dname_rdf(fq);
    int rc = -1;
    ldns_rr_list *q = ldns_pkt_question(pkt);
    if (!want || !ldns_pkt_qr(pkt) || ldns_pkt_id(pkt) != id || !q || ldns_rr_list_rr_count(q) != 1)
        goto done;
    const ldns_rr *qr = ldns_rr_list_rr(q, 0);
    if (ldns_rr_get_type(qr) != (ldns_rr_type)qtype || ldns_rr_get_class(qr) != LDNS_RR_CLASS_IN ||
        ldns_dname_compare(ldns_rr_owner(qr), want) != 0)
        goto done;
    rc = 0;
    *truncated = ldns_pkt_tc(pkt);
    out->rcode = (int)ldns_pkt_get_rcode(pkt);
    out->authenticated = ldns_pkt_ad(pkt);
    switch (ldns_pkt_get_rcode(pkt)) {
    case LDNS_RCODE_NOERROR:
        break;
    case LDNS_RCODE_NXDOMAIN:
        out->status = DNS_NXDOMAIN;
        snprintf(out->error, sizeof out->error, "%s does not exist", fq);
        *min_ttl = negative_ttl(pkt);
        goto done;
    case LDNS_RCODE_SERVFAIL:
        out->status = DNS_SERVFAIL;
        snprintf(out->error, sizeof out->error, "server failure (SERVFAIL)");
        goto done;
    case LDNS_RCODE_REFUSED:
        out->status = DNS_ERROR;
        snprintf(out->error, sizeof out->error, "the server refused the query (REFUSED)");
        goto done;
    default:
        out->status = DNS_ERROR;
        snprintf(out->error, sizeof out->error, "the server answered with rcode %d", out->rcode);
        goto done;
    }

    /* Walk the CNAME chain inside the answer section, collecting the records of
       the asked type owned by the current name. */
    ldns_rr_list *ans = ldns_pkt_answer(pkt);
    size_t nans = ans ? ldns_rr_list_rr_count(ans) : 0;
    ldns_rdf *cur = ldns_rdf_clone(want);
    uint32_t ttl = UINT32_MAX;
    bool nomem = !cur;
    for (int hop = 0; cur && !nomem && hop <= DNS_MAX_CNAMES; hop++) {
        const ldns_rr *cname = NULL;
        for (size_t i = 0; i < nans; i++) {
            const ldns_rr *rr = ldns_rr_list_rr(ans, i);
            if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN || ldns_dname_compare(ldns_rr_owner(rr), cur) != 0)
                continue;
            if (ldns_rr_get_type(rr) == (ldns_rr_type)qtype) {
                if (out->count >= DNS_MAX_RECORDS)
                    continue;
                if (!out->records) {
                    out->records = calloc(DNS_MAX_RECORDS, sizeof *out->records);
                    if (!out->records) {
                        nomem = true;
                        break;
                    }
                }
                int took = take_record(rr, &out->records[out->count]);
                if (took == TAKE_NOMEM) {
                    nomem = true;
                    break;
                }
                if (took == 0) {
                    if (out->records[out->count].ttl < ttl)
                        ttl = out->records[out->count].ttl;
                    out->count++;
                }
            } else if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME && qtype != LDNS_RR_TYPE_CNAME) {
                cname = rr;
            }
        }
        if (nomem || out->count || !cname)
            break;
        if (ttl_value(ldns_rr_ttl(cname)) < ttl)
            ttl = ttl_value(ldns_rr_ttl(cname));
        ldns_rdf_deep_free(cur);
        if (!ldns_rr_rdf(cname, 0)) {
            cur = NULL;
            break;
        }
        cur = ldns_rdf_clone(ldns_rr_rdf(cname, 0));
        nomem = !cur;
    }
    ldns_rdf_deep_free(cur);
    if (nomem) {
        /* Not NODATA: an answer missing records for want of memory must not be
           cached or believed. The caller treats it like any unusable packet. */
        rc = -1;
    } else if (out->count) {
        out->status = DNS_OK;
        *min_ttl = ttl;
    } else {
        out->status = DNS_NODATA;
        snprintf(out->error, sizeof out->error, "%s has no %s record", fq, dns_type_name(qtype));
        *min_ttl = negative_ttl(pkt);
        free(out->records);
        out->records = NULL;
    }
done:
    ldns_rdf_deep_free(want);
    ldns_pkt_free(pkt);
    if (rc < 0)
        dns_answer_free(out);
    return rc;
}

int dns_parse_response(const uint8_t *pkt, size_t len, const char *qname, uint16_t qtype, uint16_t id,
                       struct dns_answer *out, uint32_t *min_ttl)
{
    bool truncated;
    return dns_parse_packet(pkt, len, qname, qtype, id, out, min_ttl, &truncated);
}

/*
 * dmarc_from — see dmarc_from.h. The header section is scanned with msg_header (all
 * From: fields kept, up to MSG_HEADER_KEEP_MAX), each value parsed with
 * rfc5322_addr, and the distinct canonical domains counted.
 */
#include "auth/dmarc_from.h"
#include "lib/msg_header.h"
#include "lib/rfc5322_addr.h"

#include <idn2.h>
#include <stdio.h>
#include <string.h>

#define FROM_BOXES_MAX 32   /* mailboxes looked at per From: field */

const char *dmarc_from_status_name(enum dmarc_from_status s)
{
    switch (s) {
    case DMARC_FROM_OK: return "ok";
    case DMARC_FROM_ABSENT: return "no From: field";
    case DMARC_FROM_EMPTY: return "no mailbox in From:";
    case DMARC_FROM_MULTI_DOMAIN: return "several author domains";
    case DMARC_FROM_SYNTAX: return "From: does not parse";
    case DMARC_FROM_BAD_NAME: return "From: domain is not a valid name";
    case DMARC_FROM_LITERAL: return "From: domain is an address literal";
    case DMARC_FROM_NOMEM: return "out of memory";
    }
    return "?";
}

/* LDH labels of 1..63 octets, no leading or trailing hyphen, 253 octets in all. */
static bool ldh_ok(const char *d)
{
    size_t len = strlen(d), run = 0;
    if (len == 0 || len > DMARC_DOMAIN_MAX)
        return false;
    for (size_t i = 0; i <= len; i++) {
        char c = d[i];
        if (i == len || c == '.') {
            if (run == 0 || run > 63 || d[i - 1] == '-' || d[i - run] == '-')
                return false;
            run = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
            run++;
        } else {
            return false;
        }
    }
    return true;
}

int dmarc_domain_canon(const char *in, char *out, size_t outsz)
{
    char tmp[DMARC_DOMAIN_MAX + 2];
    size_t n = strlen(in);
    if (outsz)
        out[0] = '\0';
    if (n && in[n - 1] == '.')
        n--;
    if (n == 0 || n > 255)
        return -1;
    bool ascii = true;
    for (size_t i = 0; i < n; i++)
        ascii = ascii && (unsigned char)in[i] < 0x80;
    if (ascii) {
        if (n >= sizeof tmp)
            return -1;
        for (size_t i = 0; i < n; i++)
            tmp[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
        tmp[n] = '\0';
    } else {
        char u[260];
        memcpy(u, in, n);
        u[n] = '\0';
        uint8_t *a = NULL;
        if (idn2_lookup_u8((const uint8_t *)u, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK || !a)
            return -1;
        int fits = snprintf(tmp, sizeof tmp, "%s", (const char *)a) < (int)sizeof tmp;
        idn2_free(a);
        if (!fits)
            return -1;
    }
    if (!ldh_ok(tmp) || strlen(tmp) >= outsz)
        return -1;
    memcpy(out, tmp, strlen(tmp) + 1);
    return 0;
}

/* Adds one mailbox's domain; false when the outcome is already decided. */
static bool add_domain(struct dmarc_from *o, const struct rfc5322_mailbox *m)
{
    if (m->domain_literal) {
        o->status = DMARC_FROM_LITERAL;
        snprintf(o->written, sizeof o->written, "%s", m->domain);
        snprintf(o->reason, sizeof o->reason, "the From: domain %s is an address literal", m->domain);
        return false;
    }
    char canon[DMARC_DOMAIN_MAX + 1];
    if (dmarc_domain_canon(m->domain, canon, sizeof canon) < 0) {
        o->status = DMARC_FROM_BAD_NAME;
        snprintf(o->written, sizeof o->written, "%s", m->domain);
        snprintf(o->reason, sizeof o->reason, "the From: domain \"%.150s\" is not a valid DNS name", m->domain);
        return false;
    }
    if (!o->domain[0]) {
        snprintf(o->domain, sizeof o->domain, "%s", canon);
        snprintf(o->written, sizeof o->written, "%s", m->domain);
    } else if (strcmp(o->domain, canon)) {
        o->status = DMARC_FROM_MULTI_DOMAIN;
        snprintf(o->written, sizeof o->written, "%s", canon);
        snprintf(o->reason, sizeof o->reason, "From: names several author domains (%s and %s)", o->domain, canon);
        return false;
    }
    return true;
}

static void decide(struct dmarc_from *o, const struct msg_header *h)
{
    o->fields = msg_header_count(h, "From");
    if (o->fields == 0) {
        o->status = DMARC_FROM_ABSENT;
        snprintf(o->reason, sizeof o->reason, "the message has no From: field");
        return;
    }
    if (o->fields > MSG_HEADER_KEEP_MAX) {
        o->status = DMARC_FROM_MULTI_DOMAIN;
        snprintf(o->reason, sizeof o->reason, "the message has %zu From: fields", o->fields);
        return;
    }
    for (size_t i = 0; i < o->fields; i++) {
        const struct msg_header_value *v = msg_header_value(h, "From", i);
        static const char empty[] = "";
        const char *s = v && v->data ? v->data : empty;
        size_t n = v && v->data ? v->len : 0;
        struct rfc5322_mailbox box[FROM_BOXES_MAX];
        struct rfc5322_list list;
        struct rfc5322_error err;
        if (n == 0)
            continue;       /* "From:" with nothing in it: no mailbox */
        if (v && v->truncated) {
            o->status = DMARC_FROM_SYNTAX;
            snprintf(o->reason, sizeof o->reason, "From: field %zu is too long to read", i + 1);
            return;
        }
        if (rfc5322_parse_address_list(s, n, RFC5322_UTF8, box, FROM_BOXES_MAX, &list, &err) < 0) {
            /* an empty group alone still parses; an empty value does not */
            o->status = DMARC_FROM_SYNTAX;
            snprintf(o->reason, sizeof o->reason, "From: field %zu does not parse at octet %zu: %s", i + 1,
                     err.pos, err.reason);
            return;
        }
        o->mailboxes += list.count;
        if (list.count > FROM_BOXES_MAX) {
            o->status = DMARC_FROM_MULTI_DOMAIN;
            snprintf(o->reason, sizeof o->reason, "From: field %zu holds %zu mailboxes", i + 1, list.count);
            return;
        }
        for (size_t k = 0; k < list.count; k++)
            if (!add_domain(o, &box[k]))
                return;
    }
    if (o->mailboxes == 0) {
        o->status = DMARC_FROM_EMPTY;
        snprintf(o->reason, sizeof o->reason, "From: holds no mailbox (an empty group)");
        return;
    }
    o->status = DMARC_FROM_OK;
    if (o->fields > 1 || o->mailboxes > 1)
        snprintf(o->reason, sizeof o->reason, "%zu From: field(s) with %zu mailboxes, all in %s", o->fields,
                 o->mailboxes, o->domain);
    else
        snprintf(o->reason, sizeof o->reason, "one From: mailbox in %s", o->domain);
}

void dmarc_from_extract(const char *hdr, size_t len, struct dmarc_from *o)
{
    memset(o, 0, sizeof *o);
    struct msg_header h;
    msg_header_init(&h, NULL);
    if (msg_header_watch(&h, "From", MSG_HEADER_KEEP_MAX) < 0 ||
        msg_header_feed(&h, hdr, len, NULL) == MSG_HEADER_ERROR || msg_header_finish(&h) == MSG_HEADER_ERROR) {
        o->status = DMARC_FROM_NOMEM;
        snprintf(o->reason, sizeof o->reason, "out of memory reading the header section");
    } else {
        decide(o, &h);
    }
    if (o->status != DMARC_FROM_OK)
        o->domain[0] = '\0';
    msg_header_free(&h);
}

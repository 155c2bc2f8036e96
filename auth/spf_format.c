/*
 * spf_format — the SPF result as header text: the RFC 8601 "spf=" method result
 * and the RFC 7208 §9.1 Received-SPF field body. Pure.
 */
#include "auth/spf.h"
#include "lib/buf.h"
#include "lib/hdr_value.h"

#include <stdio.h>
#include <string.h>

/* The formatters below build into a bounded buf and copy it out whole, so a
   value that does not fit fails the call rather than leaving half a field. */
static int finish(struct buf *b, int r, char *out, size_t outsz)
{
    int n = r == 0 && b->len < outsz ? (int)b->len : -1;
    if (n >= 0)
        memcpy(out, b->data ? b->data : "", b->len + 1);
    buf_free(b);
    return n;
}

int spf_format_auth_results(const struct spf_outcome *o, char *out, size_t outsz)
{
    struct buf b;
    int r = 0;
    if (outsz == 0)
        return -1;
    out[0] = '\0';
    buf_init(&b, outsz - 1);
    r |= buf_printf(&b, "spf=%s ", spf_result_name(o->result));
    if (o->identity == SPF_ID_HELO) {
        r |= buf_printf(&b, "smtp.helo=");
        r |= hdr_pvalue_append(&b, o->helo[0] ? o->helo : o->domain);
    } else {
        r |= buf_printf(&b, "smtp.mailfrom=");
        r |= hdr_pvalue_append(&b, o->sender);
    }
    return finish(&b, r, out, outsz);
}

int spf_format_received_spf(const struct spf_outcome *o, const char *receiver, char *out, size_t outsz)
{
    struct buf b;
    int r = 0;
    if (outsz == 0)
        return -1;
    out[0] = '\0';
    buf_init(&b, outsz - 1);
    const char *who = o->identity == SPF_ID_HELO ? o->domain : o->sender;
    const char *rcv = receiver && *receiver ? receiver : "unknown";
    r |= buf_printf(&b, "%s (", spf_result_name(o->result));
    r |= hdr_ctext_append(&b, rcv);
    r |= buf_printf(&b, ": ");
    switch (o->result) {
    case SPF_PASS:
        r |= buf_printf(&b, "domain of ");
        r |= hdr_ctext_append(&b, who);
        r |= buf_printf(&b, " designates %s as permitted sender", o->client_ip);
        break;
    case SPF_FAIL:
    case SPF_SOFTFAIL:
        r |= buf_printf(&b, "domain of ");
        r |= hdr_ctext_append(&b, who);
        r |= buf_printf(&b, " does not designate %s as permitted sender", o->client_ip);
        break;
    case SPF_NEUTRAL:
        r |= buf_printf(&b, "%s is neither permitted nor denied by domain of ", o->client_ip);
        r |= hdr_ctext_append(&b, who);
        break;
    case SPF_NONE:
        r |= buf_printf(&b, "domain of ");
        r |= hdr_ctext_append(&b, who);
        r |= buf_printf(&b, " does not provide an SPF record");
        break;
    case SPF_TEMPERROR:
        r |= buf_printf(&b, "temporary error checking ");
        r |= hdr_ctext_append(&b, who);
        break;
    case SPF_PERMERROR:
        r |= buf_printf(&b, "permanent error in the SPF record of ");
        r |= hdr_ctext_append(&b, o->domain);
        break;
    }
    r |= buf_printf(&b, ") client-ip=%s; envelope-from=", o->client_ip);
    r |= hdr_dot_atom_append(&b, o->sender);
    r |= buf_printf(&b, "; helo=");
    r |= hdr_dot_atom_append(&b, o->helo[0] ? o->helo : "unknown");
    r |= buf_printf(&b, "; identity=%s; receiver=", o->identity == SPF_ID_HELO ? "helo" : "mailfrom");
    r |= hdr_dot_atom_append(&b, rcv);
    r |= buf_printf(&b, ";");
    if (o->mechanism[0]) {
        r |= buf_printf(&b, " mechanism=");
        r |= hdr_dot_atom_append(&b, o->mechanism);
        r |= buf_printf(&b, ";");
    }
    if ((o->result == SPF_PERMERROR || o->result == SPF_TEMPERROR) && o->reason[0]) {
        r |= buf_printf(&b, " problem=");
        r |= hdr_dot_atom_append(&b, o->reason);
        r |= buf_printf(&b, ";");
    }
    return finish(&b, r, out, outsz);
}

/*
 * spf_format — the SPF result as header text: the RFC 8601 "spf=" method result
 * and the RFC 7208 §9.1 Received-SPF field body. Pure.
 */
#include "auth/spf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct sb {
    char *p;
    size_t sz, n;
    bool overflow;
};

static void add(struct sb *b, const char *fmt, ...)
{
    if (b->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + b->n, b->sz - b->n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= b->sz - b->n) {
        b->overflow = true;
        return;
    }
    b->n += (size_t)w;
}

/* RFC 5322 atext plus '.', '@' (dot-atom-ish): safe to write bare. */
static bool bare_ok(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || strchr("()<>[]:;\\\",", *p))
            return false;
    }
    return true;
}

/* A value bare when possible, else as a quoted-string. */
static void add_value(struct sb *b, const char *v)
{
    if (bare_ok(v)) {
        add(b, "%s", v);
        return;
    }
    add(b, "\"");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            add(b, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            add(b, "?");
        else
            add(b, "%c", *p);
    }
    add(b, "\"");
}

/* Text inside a comment: parentheses and backslashes quoted. */
static void add_ctext(struct sb *b, const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '(' || *p == ')' || *p == '\\')
            add(b, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            add(b, "?");
        else
            add(b, "%c", *p);
    }
}

int spf_format_auth_results(const struct spf_outcome *o, char *out, size_t outsz)
{
    struct sb b = {out, outsz, 0, false};
    if (outsz == 0)
        return -1;
    out[0] = '\0';
    add(&b, "spf=%s ", spf_result_name(o->result));
    if (o->identity == SPF_ID_HELO) {
        add(&b, "smtp.helo=");
        add_value(&b, o->helo[0] ? o->helo : o->domain);
    } else {
        add(&b, "smtp.mailfrom=");
        add_value(&b, o->sender);
    }
    return b.overflow ? -1 : (int)b.n;
}

int spf_format_received_spf(const struct spf_outcome *o, const char *receiver, char *out, size_t outsz)
{
    struct sb b = {out, outsz, 0, false};
    if (outsz == 0)
        return -1;
    out[0] = '\0';
    const char *who = o->identity == SPF_ID_HELO ? o->domain : o->sender;
    const char *rcv = receiver && *receiver ? receiver : "unknown";
    add(&b, "%s (", spf_result_name(o->result));
    add_ctext(&b, rcv);
    add(&b, ": ");
    switch (o->result) {
    case SPF_PASS:
        add(&b, "domain of ");
        add_ctext(&b, who);
        add(&b, " designates %s as permitted sender", o->client_ip);
        break;
    case SPF_FAIL:
    case SPF_SOFTFAIL:
        add(&b, "domain of ");
        add_ctext(&b, who);
        add(&b, " does not designate %s as permitted sender", o->client_ip);
        break;
    case SPF_NEUTRAL:
        add(&b, "%s is neither permitted nor denied by domain of ", o->client_ip);
        add_ctext(&b, who);
        break;
    case SPF_NONE:
        add(&b, "domain of ");
        add_ctext(&b, who);
        add(&b, " does not provide an SPF record");
        break;
    case SPF_TEMPERROR:
        add(&b, "temporary error checking ");
        add_ctext(&b, who);
        break;
    case SPF_PERMERROR:
        add(&b, "permanent error in the SPF record of ");
        add_ctext(&b, o->domain);
        break;
    }
    add(&b, ") client-ip=%s; envelope-from=", o->client_ip);
    add_value(&b, o->sender);
    add(&b, "; helo=");
    add_value(&b, o->helo[0] ? o->helo : "unknown");
    add(&b, "; identity=%s; receiver=", o->identity == SPF_ID_HELO ? "helo" : "mailfrom");
    add_value(&b, rcv);
    add(&b, ";");
    if (o->mechanism[0]) {
        add(&b, " mechanism=");
        add_value(&b, o->mechanism);
        add(&b, ";");
    }
    if ((o->result == SPF_PERMERROR || o->result == SPF_TEMPERROR) && o->reason[0]) {
        add(&b, " problem=");
        add_value(&b, o->reason);
        add(&b, ";");
    }
    return b.overflow ? -1 : (int)b.n;
}

/* smtp_cmds — see smtp_cmds.h. */
#include "delivery/smtp_cmds.h"
#include "lib/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char hex[] = "0123456789ABCDEF";

int smtp_xtext_encode(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        bool plain = *p >= 33 && *p <= 126 && *p != '+' && *p != '=';
        size_t need = plain ? 1 : 3;
        if (o + need >= outsz)
            return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '+';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (outsz == 0)
        return -1;
    out[o] = '\0';
    return 0;
}

/* One UTF-8 sequence at s (at most n octets): the code point and its length,
   or 0 when malformed (overlong forms, surrogates and values past U+10FFFF too). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t min;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, min = 0x80, *cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, min = 0x800, *cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, *cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = *cp << 6 | (s[i] & 0x3F);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0;
    return len;
}

int smtp_utf8_xtext_encode(const char *in, char *out, size_t outsz)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_next(s + i, n - i, &cp);
        if (l == 0 || cp < 0x20 || cp == 0x7f)
            return -1;
        char tmp[16];
        size_t tl;
        if (cp >= 0x21 && cp <= 0x7e && cp != '+' && cp != '=' && cp != '\\') {
            tmp[0] = (char)cp;
            tl = 1;
        } else {
            /* \x{HEXPOINT}: upper-case hex, two digits at least, no leading zero beyond. */
            tl = (size_t)snprintf(tmp, sizeof tmp, "\\x{%02X}", (unsigned)cp);
        }
        if (o + tl >= outsz)
            return -1;
        memcpy(out + o, tmp, tl);
        o += tl;
        i += l;
    }
    if (outsz == 0)
        return -1;
    out[o] = '\0';
    return 0;
}

/* Appends to out at *o; -1 once it no longer fits (and from then on). */
__attribute__((format(printf, 4, 5)))
static int put(char *out, size_t outsz, size_t *o, const char *fmt, ...)
{
    if (*o >= outsz)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *o, outsz - *o, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= outsz - *o) {
        *o = outsz;
        return -1;
    }
    *o += (size_t)n;
    return 0;
}

int smtp_build_mail(const struct envelope *e, const struct smtp_ehlo *peer, char *out, size_t outsz)
{
    size_t o = 0;
    int rc = put(out, outsz, &o, "MAIL FROM:<%s>", e->sender);
    if (peer->size)
        rc |= put(out, outsz, &o, " SIZE=%llu", e->size);
    if (e->body_8bit && peer->eightbitmime)
        rc |= put(out, outsz, &o, " BODY=8BITMIME");
    if (e->smtputf8 && peer->smtputf8)
        rc |= put(out, outsz, &o, " SMTPUTF8");
    if (e->requiretls && peer->requiretls)
        rc |= put(out, outsz, &o, " REQUIRETLS");
    if (peer->dsn) {
        if (e->ret != ENV_RET_UNSET)
            rc |= put(out, outsz, &o, " RET=%s", e->ret == ENV_RET_FULL ? "FULL" : "HDRS");
        char x[ENV_ENVID_MAX * 3 + 1];
        if (e->envid[0] && smtp_xtext_encode(e->envid, x, sizeof x) == 0)
            rc |= put(out, outsz, &o, " ENVID=%s", x);
    }
    if (peer->msid)
        rc |= put(out, outsz, &o, " DMTP");     /* draft -03 §3.5: MSID will replace DATA */
    rc |= put(out, outsz, &o, "\r\n");
    return rc ? -1 : (int)o;
}

int smtp_build_rcpt(const struct env_rcpt *r, const struct smtp_ehlo *peer, char *out, size_t outsz)
{
    size_t o = 0;
    int rc = put(out, outsz, &o, "RCPT TO:<%s>", r->addr);
    if (peer->dsn) {
        if (r->notify) {
            char list[64];
            env_notify_format(r->notify, list, sizeof list);
            rc |= put(out, outsz, &o, " NOTIFY=%s", list);
        }
        /* \x{10FFFF} is 10 octets for a 4-octet character: 3 per octet is enough
           for xtext, 10 per code point covers utf-8-addr-xtext. */
        char x[ENV_ORCPT_MAX * 10 + 1];
        if (r->orcpt_type == ENV_ORCPT_RFC822 && r->orcpt[0] && smtp_xtext_encode(r->orcpt, x, sizeof x) == 0)
            rc |= put(out, outsz, &o, " ORCPT=rfc822;%s", x);
        else if (r->orcpt_type == ENV_ORCPT_UTF8 && r->orcpt[0] &&
                 smtp_utf8_xtext_encode(r->orcpt, x, sizeof x) == 0)
            rc |= put(out, outsz, &o, " ORCPT=utf-8;%s", x);
    }
    rc |= put(out, outsz, &o, "\r\n");
    return rc ? -1 : (int)o;
}

void smtp_body_init(struct smtp_body *b)
{
    b->state = SMTP_BODY_LINE_START;
}

/* Octet by octet this loop cost about 18 instructions per octet of every relayed
   message (issue 16's profile: ~178 000 of a 10 KB message). Only CR, LF and a
   dot at a line's start need a decision, so the rest of a line is found with
   memchr (vectorised) and copied as one span. The next CR and the next LF are
   remembered across spans, so a chunk of many short lines is still scanned once
   (looking for CR afresh after every bare LF would be quadratic). */
size_t smtp_body_encode(struct smtp_body *b, const char *in, size_t n, char *out)
{
    const char *p = in, *end = in + n, *next_cr = NULL, *next_lf = NULL;
    size_t o = 0;
    while (p < end) {
        char c = *p;
        if (b->state == SMTP_BODY_AFTER_CR) {
            out[o++] = '\n';
            b->state = SMTP_BODY_LINE_START;
            if (c == '\n') {
                p++;                    /* the CR's own LF: already written */
                continue;
            }
        }
        if (c == '\r') {
            out[o++] = '\r';
            b->state = SMTP_BODY_AFTER_CR;
            p++;
            continue;
        }
        if (c == '\n') {
            out[o++] = '\r';            /* a bare LF */
            out[o++] = '\n';
            b->state = SMTP_BODY_LINE_START;
            p++;
            continue;
        }
        if (c == '.' && b->state == SMTP_BODY_LINE_START)
            out[o++] = '.';
        if (!next_cr || next_cr < p) {
            next_cr = memchr(p, '\r', (size_t)(end - p));
            if (!next_cr)
                next_cr = end;
        }
        if (!next_lf || next_lf < p) {
            next_lf = memchr(p, '\n', (size_t)(end - p));
            if (!next_lf)
                next_lf = end;
        }
        const char *stop = next_cr < next_lf ? next_cr : next_lf;
        size_t len = (size_t)(stop - p);   /* at least 1: *p is neither CR nor LF */
        memcpy(out + o, p, len);
        o += len;
        p = stop;
        b->state = SMTP_BODY_MID_LINE;
    }
    return o;
}

size_t smtp_body_finish(struct smtp_body *b, char *out)
{
    size_t o = 0;
    if (b->state == SMTP_BODY_AFTER_CR) {
        out[o++] = '\n';
    } else if (b->state == SMTP_BODY_MID_LINE) {
        out[o++] = '\r';
        out[o++] = '\n';
    }
    memcpy(out + o, ".\r\n", 3);
    b->state = SMTP_BODY_LINE_START;
    return o + 3;
}

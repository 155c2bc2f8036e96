/* smtp_params — see smtp_params.h. */
#include "smtpd/smtp_params.h"
#include "lib/buf.h"
#include "pull/dmtp_cmd.h"

#include <string.h>

static int fail(struct smtp_error *err, int code, const char *enhanced, const char *text)
{
    err->code = code;
    err->enhanced = enhanced;
    err->text = text;
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int xtext_decode(const char *in, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '+') {
            /* RFC 3461 §4: "+" and two upper-case hex digits, nothing else. */
            if (i + 2 >= n)
                return -1;
            char h = in[i + 1], l = in[i + 2];
            bool uh = (h >= '0' && h <= '9') || (h >= 'A' && h <= 'F');
            bool ul = (l >= '0' && l <= '9') || (l >= 'A' && l <= 'F');
            if (!uh || !ul)
                return -1;
            c = (unsigned char)(hexval(h) << 4 | hexval(l));
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return -1;
        }
        if (c < 32 || c > 126)
            return -1;      /* the decoded text must be printable US-ASCII */
        if (o + 1 >= outsz)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

int smtp_notify_parse(const char *v, unsigned *flags)
{
    static const struct {
        const char *name;
        unsigned bit;
    } names[] = {
        { "SUCCESS", ENV_NOTIFY_SUCCESS }, { "FAILURE", ENV_NOTIFY_FAILURE },
        { "DELAY", ENV_NOTIFY_DELAY }, { "NEVER", ENV_NOTIFY_NEVER },
    };
    unsigned f = 0;
    const char *p = v;
    for (unsigned items = 0; items < 8; items++) {
        size_t n = strcspn(p, ",");
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (strlen(names[i].name) == n && str_nieq(p, names[i].name, n))
                bit = names[i].bit;
        if (!bit || (f & bit))
            return -1;
        f |= bit;
        if (!p[n]) {
            if ((f & ENV_NOTIFY_NEVER) && f != ENV_NOTIFY_NEVER)
                return -1;      /* RFC 3461 §4.1: NEVER appears by itself */
            *flags = f;
            return 0;
        }
        p += n + 1;
    }
    return -1;
}

static int put_utf8(unsigned long cp, char *out, size_t outsz, size_t *o)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | cp >> 6);
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | cp >> 12);
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | cp >> 18);
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*o + n >= outsz)
        return -1;
    memcpy(out + *o, b, n);
    *o += n;
    return 0;
}

/* RFC 6533 §3: utf-8-addr-xtext / utf-8-addr-unitext, decoded to UTF-8. */
static int utf8_addr_decode(const char *in, bool utf8, char *out, size_t outsz, const char **why)
{
    size_t o = 0, n = strlen(in);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '\\') {
            /* EmbeddedUnicodeChar: \x{HEXPOINT}, 2 to 6 hex digits, no leading
               zero beyond two digits, only for what cannot appear as itself. */
            if (i + 3 >= n || in[i + 1] != 'x' || in[i + 2] != '{') {
                *why = "ORCPT: a backslash must start \\x{HEXPOINT}";
                return -1;
            }
            size_t j = i + 3, digits = 0;
            unsigned long cp = 0;
            while (j < n && hexval(in[j]) >= 0 && digits < 7) {
                cp = cp << 4 | (unsigned long)hexval(in[j]);
                j++;
                digits++;
            }
            bool ok = j < n && in[j] == '}' && digits >= 2 && digits <= 6 &&
                      (digits == 2 || in[i + 3] != '0') && cp <= 0x10FFFF &&
                      !(cp >= 0xD800 && cp <= 0xDFFF) &&
                      (cp >= 0x80 || cp == ' ' || cp == '+' || cp == '=' || cp == '\\');
            if (!ok) {
                *why = "ORCPT: bad \\x{HEXPOINT} escape";
                return -1;
            }
            if (put_utf8(cp, out, outsz, &o) < 0) {
                *why = "ORCPT address too long";
                return -1;
            }
            i = j;
            continue;
        }
        if (c >= 0x80 && !utf8) {
            *why = "ORCPT: raw UTF-8 needs SMTPUTF8 (use \\x{HEXPOINT})";
            return -1;
        }
        if (c < 0x21 || c == 0x7f || c == '+' || c == '=') {
            *why = "ORCPT: character not allowed in a utf-8 address";
            return -1;
        }
        /* Raw UTF-8 was validated by smtp_cmd_parse (SMTPUTF8 values). */
        if (o + 1 >= outsz) {
            *why = "ORCPT address too long";
            return -1;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (o == 0) {
        *why = "ORCPT address is empty";
        return -1;
    }
    return 0;
}

int smtp_orcpt_parse(const char *v, bool utf8, enum env_orcpt_type *type, char *out, size_t outsz,
                     const char **why)
{
    const char *semi = strchr(v, ';');
    if (!semi) {
        *why = "ORCPT must be addr-type;address";
        return -1;
    }
    size_t tlen = (size_t)(semi - v);
    const char *addr = semi + 1;
    if (tlen == 6 && str_nieq(v, "rfc822", 6)) {
        if (xtext_decode(addr, strlen(addr), out, outsz) < 0 || !*out) {
            *why = "ORCPT address is not valid xtext of printable US-ASCII";
            return -1;
        }
        *type = ENV_ORCPT_RFC822;
        return 0;
    }
    if (tlen == 5 && str_nieq(v, "utf-8", 5)) {
        if (utf8_addr_decode(addr, utf8, out, outsz, why) < 0)
            return -1;
        *type = ENV_ORCPT_UTF8;
        return 0;
    }
    *why = "ORCPT address type must be rfc822 or utf-8";
    return -1;
}

int smtp_mail_params(const struct smtp_cmd *cmd, bool esmtp, bool tls, struct smtp_mail_params *mp,
                     struct smtp_error *err)
{
    return smtp_mail_params_dmtp(cmd, esmtp, tls, false, mp, err);
}

int smtp_mail_params_dmtp(const struct smtp_cmd *cmd, bool esmtp, bool tls, bool dmtp,
                          struct smtp_mail_params *mp, struct smtp_error *err)
{
    struct dmtp_reply derr;
    int dr;
    memset(mp, 0, sizeof *mp);
    for (size_t i = 0; i < cmd->nparams; i++) {
        const struct smtp_param *p = &cmd->params[i];
        if (!esmtp)
            return fail(err, 555, "5.5.4", "MAIL parameters need EHLO");
        if (str_ieq(p->key, "SIZE")) {
            if (!p->value || str_to_u64(p->value, 99999999999999999ULL, &mp->size) < 0)
                return fail(err, 501, "5.5.4", "SIZE needs a decimal number");
        } else if (str_ieq(p->key, "BODY")) {
            if (p->value && str_ieq(p->value, "8BITMIME"))
                mp->body_8bit = true;
            else if (p->value && str_ieq(p->value, "BINARYMIME"))
                return fail(err, 504, "5.5.4", "BODY=BINARYMIME is not supported (BINARYMIME is not offered)");
            else if (!p->value || !str_ieq(p->value, "7BIT"))
                return fail(err, 501, "5.5.4", "BODY must be 7BIT or 8BITMIME");
        } else if (str_ieq(p->key, "SMTPUTF8")) {
            if (p->value)
                return fail(err, 501, "5.5.4", "SMTPUTF8 takes no value");
            mp->smtputf8 = true;
        } else if (str_ieq(p->key, "RET")) {
            if (p->value && str_ieq(p->value, "FULL"))
                mp->ret = ENV_RET_FULL;
            else if (p->value && str_ieq(p->value, "HDRS"))
                mp->ret = ENV_RET_HDRS;
            else
                return fail(err, 501, "5.5.4", "RET must be FULL or HDRS");
        } else if (str_ieq(p->key, "ENVID")) {
            if (!p->value || xtext_decode(p->value, strlen(p->value), mp->envid, sizeof mp->envid) < 0)
                return fail(err, 501, "5.5.4", "ENVID must be xtext of at most 100 printable US-ASCII characters");
        } else if (str_ieq(p->key, "REQUIRETLS")) {
            if (p->value)
                return fail(err, 501, "5.5.4", "REQUIRETLS takes no value");
            if (!tls)
                return fail(err, 530, "5.7.10", "REQUIRETLS needs a TLS session (STARTTLS first)");
            mp->requiretls = true;
        } else if (dmtp && (dr = dmtp_mail_param(p->key, p->value, &derr)) != 0) {
            if (dr < 0)
                return fail(err, derr.code, derr.enhanced, derr.text);
            mp->dmtp = true;
        } else {
            return fail(err, 555, "5.5.4", "Unsupported MAIL parameter");
        }
    }
    return 0;
}

int smtp_rcpt_params(const struct smtp_cmd *cmd, bool esmtp, bool utf8, struct smtp_rcpt_params *rp,
                     struct smtp_error *err)
{
    memset(rp, 0, sizeof *rp);
    for (size_t i = 0; i < cmd->nparams; i++) {
        const struct smtp_param *p = &cmd->params[i];
        if (!esmtp)
            return fail(err, 555, "5.5.4", "RCPT parameters need EHLO");
        if (str_ieq(p->key, "NOTIFY")) {
            if (!p->value || smtp_notify_parse(p->value, &rp->notify) < 0)
                return fail(err, 501, "5.5.4", "NOTIFY must be NEVER or a list of SUCCESS, FAILURE, DELAY");
        } else if (str_ieq(p->key, "ORCPT")) {
            const char *why = "ORCPT needs a value";
            if (!p->value || smtp_orcpt_parse(p->value, utf8, &rp->orcpt_type, rp->orcpt, sizeof rp->orcpt, &why) < 0)
                return fail(err, 501, "5.5.4", why);
        } else {
            return fail(err, 555, "5.5.4", "Unsupported RCPT parameter");
        }
    }
    return 0;
}

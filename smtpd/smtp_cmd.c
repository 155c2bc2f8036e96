/* smtp_cmd — see smtp_cmd.h. */
#include "smtpd/smtp_cmd.h"
#include "lib/buf.h"

#include <string.h>

static const struct {
    const char *name;
    enum smtp_verb verb;
} verbs[] = {
    { "HELO", SMTP_VERB_HELO }, { "EHLO", SMTP_VERB_EHLO }, { "MAIL", SMTP_VERB_MAIL },
    { "RCPT", SMTP_VERB_RCPT }, { "DATA", SMTP_VERB_DATA }, { "RSET", SMTP_VERB_RSET },
    { "NOOP", SMTP_VERB_NOOP }, { "QUIT", SMTP_VERB_QUIT }, { "VRFY", SMTP_VERB_VRFY },
    { "EXPN", SMTP_VERB_EXPN }, { "HELP", SMTP_VERB_HELP }, { "STARTTLS", SMTP_VERB_STARTTLS },
    { "AUTH", SMTP_VERB_AUTH }, { "BDAT", SMTP_VERB_BDAT },
};

const char *smtp_verb_name(enum smtp_verb verb)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (verbs[i].verb == verb)
            return verbs[i].name;
    return "?";
}

static int fail(struct smtp_error *err, int code, const char *enhanced, const char *text)
{
    err->code = code;
    err->enhanced = enhanced;
    err->text = text;
    return -1;
}

const struct smtp_param *smtp_cmd_param(const struct smtp_cmd *cmd, const char *key)
{
    for (size_t i = 0; i < cmd->nparams; i++)
        if (str_ieq(cmd->params[i].key, key))
            return &cmd->params[i];
    return NULL;
}

static bool keyword_ok(const char *k)
{
    if (!*k)
        return false;
    for (const char *p = k; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (p == k || c != '-'))
            return false;
    }
    return true;
}

static bool value_ok(const char *v, bool utf8)
{
    if (!*v)
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p == '=' || *p < 33 || *p == 127 || (*p >= 128 && !utf8))
            return false;
    return !utf8 || addr_utf8_valid(v, strlen(v));
}

/* esmtp-param *(SP esmtp-param); we tolerate runs of spaces between parameters. */
static int parse_params(struct smtp_cmd *cmd, char *p, bool utf8, struct smtp_error *err)
{
    cmd->nparams = 0;
    for (;;) {
        while (*p == ' ')
            p++;
        if (!*p)
            return 0;
        if (cmd->nparams == SMTP_MAX_PARAMS)
            return fail(err, 501, "5.5.4", "Too many parameters");
        char *key = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = '\0';
        char *eq = strchr(key, '=');
        char *value = NULL;
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (!keyword_ok(key) || (value && !value_ok(value, utf8)))
            return fail(err, 501, "5.5.4", "Syntax error in parameters");
        for (size_t i = 0; i < cmd->nparams; i++)
            if (str_ieq(cmd->params[i].key, key))
                return fail(err, 501, "5.5.4", "Duplicate parameter");
        cmd->params[cmd->nparams].key = key;
        cmd->params[cmd->nparams].value = value;
        cmd->nparams++;
    }
}

/* Does the raw parameter text carry SMTPUTF8 (decides whether the MAIL path may be UTF-8)? */
static bool mentions_smtputf8(const char *p)
{
    while (*p) {
        while (*p == ' ')
            p++;
        const char *start = p;
        while (*p && *p != ' ')
            p++;
        if (p - start == 8 && str_nieq(start, "SMTPUTF8", 8))
            return true;
    }
    return false;
}

/*
 * A path written without angle brackets ("MAIL FROM:user@domain"), as printers,
 * cron scripts and old devices send it. The address is the text up to the first
 * space; everything after is parameters, parsed as usual. To keep the reading
 * unambiguous, the bare form takes only a plain Mailbox: no quoted local part
 * (it could hold a space and so end elsewhere), no "<", ">" (half a Path), no
 * source route, no null path (bare "MAIL FROM:" is empty, not "<>"). It is then
 * judged by the same Path grammar, so nothing is accepted bare that would be
 * refused in brackets. The session decides whether to accept it (strict_envelopes).
 */
static int parse_bare_path(struct smtp_cmd *cmd, char *p, bool is_mail, bool utf8_ok, const char *bad,
                           struct smtp_error *err)
{
    size_t n = strcspn(p, " ");
    if (n == 0)
        return fail(err, 501, bad, is_mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
    if (memchr(p, '<', n) || memchr(p, '>', n) || memchr(p, '"', n) || p[0] == '@')
        return fail(err, 501, bad, "Put this address in angle brackets");
    if (n > ADDR_PATH_MAX)
        return fail(err, 501, bad, "Address too long");
    char *after = p + n;
    bool utf8 = is_mail ? mentions_smtputf8(after) : utf8_ok;
    char path[ADDR_PATH_MAX + 3];
    path[0] = '<';
    memcpy(path + 1, p, n);
    path[n + 1] = '>';
    size_t used = 0;
    bool is_null = false;
    const char *why = NULL;
    if (addr_parse_path(path, n + 2, utf8, false, !is_mail, &used, &is_null, &cmd->path, &why) < 0 ||
        used != n + 2)
        return fail(err, 501, bad, why ? why : "Syntax error in the address");
    cmd->bare_path = true;
    return parse_params(cmd, after, utf8, err);
}

static int parse_path_cmd(struct smtp_cmd *cmd, char *rest, const char *prefix, bool is_mail, bool utf8_ok,
                          struct smtp_error *err)
{
    size_t plen = strlen(prefix);
    if (!str_nieq(rest, prefix, plen))
        return fail(err, 501, "5.5.2", is_mail ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>");
    char *p = rest + plen;
    while (*p == ' ')        /* tolerated: "MAIL FROM: <a@b>" */
        p++;
    const char *bad = is_mail ? "5.1.7" : "5.1.3";
    if (*p != '<')
        return parse_bare_path(cmd, p, is_mail, utf8_ok, bad, err);
    size_t len = strlen(p), used = 0;
    /* The path ends at the first '>' outside quotes; the parameters after it decide
       whether UTF-8 is allowed in a MAIL path, so look at them first. */
    const char *after = NULL;
    bool quoted = false;
    for (size_t i = 0; i < len; i++) {
        if (quoted && p[i] == '\\' && i + 1 < len) {
            i++;
            continue;
        }
        if (p[i] == '"')
            quoted = !quoted;
        else if (p[i] == '>' && !quoted) {
            after = p + i + 1;
            break;
        }
    }
    bool utf8 = is_mail ? (after && mentions_smtputf8(after)) : utf8_ok;
    const char *why = NULL;
    if (addr_parse_path(p, len, utf8, is_mail, !is_mail, &used, &cmd->null_path, &cmd->path, &why) < 0) {
        if (!is_mail && len >= 2 && p[0] == '<' && p[1] == '>')
            why = "Empty recipient address";
        return fail(err, 501, bad, why);
    }
    p += used;
    if (*p && *p != ' ')
        return fail(err, 501, "5.5.4", "Syntax error after the address");
    return parse_params(cmd, p, utf8, err);
}

int smtp_cmd_parse(const char *line, size_t len, bool utf8_ok, struct smtp_cmd *cmd, struct smtp_error *err)
{
    memset(cmd, 0, sizeof *cmd);
    cmd->arg = "";
    if (len >= SMTP_CMD_LINE_MAX - 1)
        return fail(err, 500, "5.5.2", "Line too long");
    if (memchr(line, '\0', len) || memchr(line, '\r', len) || memchr(line, '\n', len))
        return fail(err, 500, "5.5.2", "NUL, CR or LF inside a command line");
    memcpy(cmd->text, line, len);
    cmd->text[len] = '\0';
    char *t = cmd->text;
    size_t vlen = strcspn(t, " ");
    bool found = false;
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strlen(verbs[i].name) == vlen && str_nieq(t, verbs[i].name, vlen)) {
            cmd->verb = verbs[i].verb;
            found = true;
            break;
        }
    }
    if (!found)
        return fail(err, 500, "5.5.2", "Command not recognized");
    char *rest = t + vlen;
    if (*rest == ' ')
        rest++;
    bool has_arg = *rest != '\0';

    switch (cmd->verb) {
    case SMTP_VERB_HELO:
    case SMTP_VERB_EHLO: {
        if (!has_arg)
            return fail(err, 501, "5.5.4", cmd->verb == SMTP_VERB_EHLO ? "EHLO requires a domain name or address literal"
                                                                       : "HELO requires a domain name");
        size_t n = strlen(rest);
        while (n && rest[n - 1] == ' ')      /* trailing spaces: tolerated */
            rest[--n] = '\0';
        if (strchr(rest, ' ') || !(addr_is_domain(rest, n, false) || addr_is_address_literal(rest, n)))
            return fail(err, 501, "5.5.2", "Invalid domain name or address literal");
        cmd->arg = rest;
        return 0;
    }
    case SMTP_VERB_MAIL:
        return parse_path_cmd(cmd, rest, "FROM:", true, utf8_ok, err);
    case SMTP_VERB_RCPT:
        return parse_path_cmd(cmd, rest, "TO:", false, utf8_ok, err);
    case SMTP_VERB_DATA:
    case SMTP_VERB_RSET:
    case SMTP_VERB_QUIT:
    case SMTP_VERB_STARTTLS:
        if (has_arg)
            return fail(err, 501, "5.5.4", "This command takes no arguments");
        return 0;
    case SMTP_VERB_VRFY:
    case SMTP_VERB_EXPN:
    case SMTP_VERB_AUTH:
        if (!has_arg)
            return fail(err, 501, "5.5.4", "Argument required");
        cmd->arg = rest;
        return 0;
    case SMTP_VERB_BDAT: {
        size_t digits = strspn(rest, "0123456789");
        const char *after = rest + digits;
        if (digits == 0 || digits > 20 || (*after && !str_ieq(after, " LAST")))
            return fail(err, 501, "5.5.4", "Syntax: BDAT size [LAST]");
        cmd->arg = rest;
        return 0;
    }
    case SMTP_VERB_NOOP:
    case SMTP_VERB_HELP:
        cmd->arg = rest;
        return 0;
    }
    return fail(err, 500, "5.5.2", "Command not recognized");
}

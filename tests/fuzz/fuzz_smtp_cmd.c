/* libFuzzer target: smtpd/smtp_cmd.c. The first octet sets utf8_ok; the rest is one
   command line. A success must leave every pointer inside the command's own copy
   and an address that formats; a failure must carry a complete reply. */
#include "smtpd/smtp_cmd.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void inside(const struct smtp_cmd *c, const char *p)
{
    if (p && *p && (p < c->text || p >= c->text + sizeof c->text))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static struct smtp_cmd cmd;
    struct smtp_error err = { 0, NULL, NULL };
    const char *line = (const char *)data + 1;
    size_t len = size - 1;
    if (smtp_cmd_parse(line, len, data[0] & 1, &cmd, &err) < 0) {
        if (err.code < 500 || err.code > 555 || !err.enhanced || !err.text || !*err.text)
            abort();
        return 0;
    }
    if (!cmd.arg || cmd.nparams > SMTP_MAX_PARAMS || len >= SMTP_CMD_LINE_MAX - 1)
        abort();
    inside(&cmd, cmd.arg);
    for (size_t i = 0; i < cmd.nparams; i++) {
        const struct smtp_param *p = &cmd.params[i];
        if (!p->key || !*p->key || (p->value && !*p->value))
            abort();
        inside(&cmd, p->key);
        inside(&cmd, p->value);
        if (smtp_cmd_param(&cmd, p->key) != p)
            abort();
    }
    if ((cmd.verb == SMTP_VERB_MAIL || cmd.verb == SMTP_VERB_RCPT) && !cmd.null_path) {
        char text[ADDR_PATH_MAX + 1];
        if (addr_format(&cmd.path, text, sizeof text) < 0)
            abort();
    }
    if (cmd.null_path && cmd.verb != SMTP_VERB_MAIL)
        abort();
    /* A bare path is a plain Mailbox: never null, never quoted (quotes could hide the
       space that ends it), and the same address in brackets parses the same. */
    if (cmd.bare_path) {
        if ((cmd.verb != SMTP_VERB_MAIL && cmd.verb != SMTP_VERB_RCPT) || cmd.null_path || cmd.path.quoted)
            abort();
        char text[ADDR_PATH_MAX + 1], again[ADDR_PATH_MAX + 3];
        if (addr_format(&cmd.path, text, sizeof text) < 0)
            abort();
        int n = snprintf(again, sizeof again, "<%s>", text);
        struct mailbox m;
        size_t used = 0;
        bool is_null = false;
        const char *why = NULL;
        if (n < 0 || (size_t)n >= sizeof again ||
            addr_parse_path(again, (size_t)n, true, false, true, &used, &is_null, &m, &why) < 0 ||
            used != (size_t)n || strcmp(m.local, cmd.path.local) != 0 || strcmp(m.domain, cmd.path.domain) != 0)
            abort();
    }
    return 0;
}

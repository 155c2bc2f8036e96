/* libFuzzer target: smtpd/smtp_params.c over any command line that smtp_cmd_parse
   accepts. Whatever is accepted must respect the stored forms' bounds: ENVID
   and rfc822 ORCPT printable US-ASCII, NOTIFY never NEVER with others. */
#include "smtpd/smtp_cmd.h"
#include "smtpd/smtp_params.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 32 || (unsigned char)s[i] > 126)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct smtp_cmd cmd;
    struct smtp_error err;
    for (int utf8 = 0; utf8 < 2; utf8++) {
        if (smtp_cmd_parse((const char *)data, size, utf8, &cmd, &err) < 0)
            continue;
        struct smtp_mail_params mp;
        if (smtp_mail_params_dmtp(&cmd, true, utf8, utf8, &mp, &err) == 0)   /* DMTP on in one pass */
            printable(mp.envid, ENV_ENVID_MAX);
        struct smtp_rcpt_params rp;
        if (smtp_rcpt_params(&cmd, true, utf8, &rp, &err) == 0) {
            if ((rp.notify & ENV_NOTIFY_NEVER) && rp.notify != ENV_NOTIFY_NEVER)
                abort();
            if (rp.orcpt_type == ENV_ORCPT_RFC822)
                printable(rp.orcpt, ENV_ORCPT_MAX);
            if (rp.orcpt_type != ENV_ORCPT_NONE && !rp.orcpt[0])
                abort();
            if (strlen(rp.orcpt) > ENV_ORCPT_MAX)
                abort();
        }
    }
    return 0;
}

/* libFuzzer target: pull/dmtp_cmd.c. Whatever the line, a parsed MSID formats back
   into a line that parses to the same msid and subject; subject text never holds a
   control character and is valid UTF-8; the cleaner never passes its cap. */
#include "pull/dmtp_cmd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dmtp_cmd c, back;
    struct dmtp_reply e;
    const char *line = (const char *)data;
    for (int utf8 = 0; utf8 < 2; utf8++) {
        if (dmtp_cmd_parse(line, size, utf8, &c, &e) < 0) {
            if (e.code < 500 || !e.enhanced || !e.text)
                abort();
            continue;
        }
        if (!dmtp_msid_valid(c.msid, strlen(c.msid)))
            abort();
        for (const char *p = c.subject; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                abort();
        if (!addr_utf8_valid(c.subject, strlen(c.subject)))
            abort();
        if (c.verb == DMTP_VERB_MSID) {
            char out[DMTP_LINE_MAX + 1];
            int n = dmtp_format_msid(out, sizeof out, c.msid, c.subject, false);
            if (n < 2 || dmtp_cmd_parse(out, (size_t)n - 2, false, &back, &e) < 0)
                abort();
            if (strcmp(back.msid, c.msid) || strcmp(back.subject, c.subject))
                abort();
        }
    }
    char sub[DMTP_SUBJECT_MAX + 1];
    size_t n = dmtp_subject_clean(line, size, size & 1, sub, sizeof sub);
    if (n > DMTP_SUBJECT_MAX || strlen(sub) != n || !addr_utf8_valid(sub, n))
        abort();
    return 0;
}

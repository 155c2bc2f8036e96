/* libFuzzer target: pull/intent.c. The reply-token finder never reads past its
   input and returns only well-formed tokens; an intent message built with fuzzed
   subject and sender text keeps every header line ASCII (To: aside), CRLF-ended,
   and carries a token the finder reads back. */
#include "pull/intent.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[1024];
    size_t n = size < sizeof in - 1 ? size : sizeof in - 1;
    memcpy(in, data, n);
    in[n] = '\0';
    char id[NOTICE_ID_LEN + 1], h[NOTICE_H_LEN + 1];
    if (intent_reply_token(in, in, in, id, h) == 0 &&
        (strlen(id) != NOTICE_ID_LEN || strspn(id, "0123456789abcdef") != NOTICE_ID_LEN ||
         strspn(h, "0123456789ABCDEFGHIJKLMNOPQRSTUV") != NOTICE_H_LEN))
        abort();
    struct pull_notice nt;
    memset(&nt, 0, sizeof nt);
    strcpy(nt.id, "0000000a0000000b");
    strcpy(nt.h, "0123456789ABCDEF");
    strcpy(nt.user, "u");
    strcpy(nt.recipient, "u@h.example");
    strcpy(nt.peer_ip, "192.0.2.1");
    dmtp_subject_clean(in, n, false, nt.subject, sizeof nt.subject);
    dmtp_subject_clean(in, n, false, nt.sender, 200);
    struct buf b;
    buf_init(&b, 1 << 16);
    if (intent_build(&nt, "mx.h.example", 1000, &b) == 0) {
        const char *body = strstr(b.data, "\r\n\r\n");
        if (!body)
            abort();
        for (const char *p = b.data; p < body; p++)
            if ((*p == '\n' && p[-1] != '\r') || (*p == '\r' && p[1] != '\n'))
                abort();
        const char *subj = strstr(b.data, "\r\nSubject:");
        if (!subj || subj > body)
            abort();
        for (const char *p = subj + 2; p < body && strncmp(p, "\r\nMessage-ID", 12); p++)
            if ((unsigned char)*p >= 0x80)
                abort();
        if (intent_reply_token(NULL, NULL, subj, id, h) < 0 || strcmp(id, nt.id))
            abort();
    }
    buf_free(&b);
    return 0;
}

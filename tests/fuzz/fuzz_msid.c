/* libFuzzer target: pull/msid.c's checker. No input is accepted unless it is the
   msid made for its queue ID, expiry and IP; a made msid always checks OK. */
#include "pull/msid.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct msid_key key;
    memset(key.k, 7, sizeof key.k);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000201) };
    char in[MSID_TEXT_MAX + 16];
    size_t n = size < sizeof in - 1 ? size : sizeof in - 1;
    memcpy(in, data, n);
    in[n] = '\0';
    char qid[MSID_QID_MAX + 1];
    time_t exp;
    enum msid_status st = msid_check(&key, in, (const struct sockaddr *)&a, 1, qid, &exp);
    if (st == MSID_OK) {
        char again[MSID_TEXT_MAX + 1];
        if (msid_make(&key, qid, (const struct sockaddr *)&a, exp, again, sizeof again) < 0 || strcmp(again, in))
            abort();
    }
    /* the input's qid-like prefix, made and checked */
    size_t q = strspn(in, "0123456789ABCDEFabcdef");
    if (q > 0 && q <= MSID_QID_MAX) {
        char qq[MSID_QID_MAX + 1], m[MSID_TEXT_MAX + 1];
        memcpy(qq, in, q);
        qq[q] = '\0';
        if (msid_make(&key, qq, (const struct sockaddr *)&a, 1000 + (time_t)size, m, sizeof m) < 0 ||
            msid_check(&key, m, (const struct sockaddr *)&a, 999, qid, &exp) != MSID_OK || strcmp(qid, qq))
            abort();
    }
    return 0;
}

/* qid — see qid.h. */
#include "lib/qid.h"

#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

static void put_base32(char *out, unsigned long long v, int digits)
{
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = alphabet[v & 31];
        v >>= 5;
    }
}

void qid_new(char out[QID_LEN + 1])
{
    /* Per-process: the last time handed out, in microseconds. */
    static unsigned long long last_us;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned long long us = (unsigned long long)tv.tv_sec * 1000000ULL + (unsigned long long)tv.tv_usec;
    if (us <= last_us)
        us = last_us + 1;
    last_us = us;
    put_base32(out, us / 1000000ULL, 7);
    put_base32(out + 7, us % 1000000ULL, 4);
    put_base32(out + 11, (unsigned long long)getpid() & 0x1ffffffULL, 5);
    out[QID_LEN] = '\0';
}

bool qid_valid(const char *s)
{
    if (strlen(s) != QID_LEN)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'V')))
            return false;
    return true;
}

time_t qid_time(const char *qid)
{
    unsigned long long v = 0;
    for (int i = 0; i < 7 && qid[i]; i++) {
        const char *p = strchr(alphabet, qid[i]);
        v = (v << 5) | (unsigned long long)(p ? p - alphabet : 0);
    }
    return (time_t)v;
}

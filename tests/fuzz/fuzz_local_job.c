/* libFuzzer target: delivery/local_job.c's parsers (what a delivery worker and
   the queue process read from each other). The first octet picks the message
   type; whatever parses must format back to the same bytes. */
#include "delivery/local_job.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint32_t type = data[0] % 6;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    static struct local_job_request req;
    static char out[LOCAL_JOB_REQUEST_MAX + 1];
    if (type == LJOB_REQUEST) {
        if (local_job_request_parse(p, len, &req) == 0) {
            if (req.n == 0 || req.n > LOCAL_JOB_MAX_RCPTS)
                abort();
            int n = local_job_request_format(&req, out, sizeof out);
            if (n < 0 || (size_t)n != len || memcmp(out, p, len))
                abort();
        }
        return 0;
    }
    struct local_job_reply r;
    if (local_job_reply_parse(type, p, len, &r) == 0) {
        if (r.type != (enum local_job_msg)type)
            abort();
        int n = local_job_reply_format(&r, out, sizeof out);
        if (n < 0 || (size_t)n != len || memcmp(out, p, len))
            abort();
    }
    return 0;
}

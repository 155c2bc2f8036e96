/* crlf — see crlf.h. */
#include "lib/crlf.h"
#include "lib/msgfile.h"

ssize_t crlf_read(int fd, struct crlf_reader *s, char *out, size_t outsz)
{
    char in[65536];
    size_t want = outsz - 1 < sizeof in ? outsz - 1 : sizeof in;
    for (;;) {
        ssize_t r = msg_read(fd, &s->left, in, want);
        if (r < 0)
            return -1;
        if (r == 0) {
            if (!s->pending_cr)
                return 0;
            s->pending_cr = false;
            out[0] = '\r';
            return 1;
        }
        /* At most r + 1 octets: a CR held from the last read may come out
           before this read's first octet. */
        size_t o = 0;
        for (ssize_t i = 0; i < r; i++) {
            char c = in[i];
            if (s->pending_cr) {
                s->pending_cr = false;
                if (c != '\n')
                    out[o++] = '\r';
            }
            if (c == '\r') {
                s->pending_cr = true;
                continue;
            }
            out[o++] = c;
        }
        if (o > 0)
            return (ssize_t)o;
        /* A read of a lone CR: nothing to give yet. */
    }
}

/* msgfile — see msgfile.h. */
#include "lib/msgfile.h"
#include "lib/envelope.h"
#include "lib/qid.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "FERRY-ENV-AT "

int msgfile_trailer_format(char *out, size_t outsz, const char *id, unsigned long long off, unsigned long len)
{
    if (!qid_valid(id) || outsz < MSGFILE_TRAILER_LEN + 1)
        return -1;
    int n = snprintf(out, outsz, MAGIC "%016llx %08lx %s\n", off, len, id);
    return n == MSGFILE_TRAILER_LEN ? 0 : -1;
}

/* n lower-case hex digits at s (what msgfile_trailer_format writes, nothing else). */
static bool hex_field(const char *s, size_t n, unsigned long long *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;
        if (d == 16)
            return false;
        *v = *v << 4 | d;
    }
    return true;
}

bool msgfile_trailer_parse(const char *t, size_t tlen, const char *id, unsigned long long file_size,
                           unsigned long long *off, unsigned long *len)
{
    static const size_t m = sizeof MAGIC - 1;
    unsigned long long o, l;
    if (tlen != MSGFILE_TRAILER_LEN || memcmp(t, MAGIC, m) != 0 || !hex_field(t + m, 16, &o) ||
        t[m + 16] != ' ' || !hex_field(t + m + 17, 8, &l) || t[m + 25] != ' ' ||
        strlen(id) != QID_LEN || memcmp(t + m + 26, id, QID_LEN) != 0 || t[tlen - 1] != '\n')
        return false;
    /* The envelope must fill exactly the room between message and trailer. */
    if (l == 0 || l > ENV_MAX_SIZE || file_size < MSGFILE_TRAILER_LEN + l ||
        o != file_size - MSGFILE_TRAILER_LEN - l)
        return false;
    *off = o;
    *len = (unsigned long)l;
    return true;
}

int msgfile_trailer_read(int fd, const char *id, unsigned long long *file_size, unsigned long long *off,
                         unsigned long *len)
{
    /* A second look when the file shrank between fstat and pread: the queue cut
       it back to the message alone (format 1), which the next fstat shows. */
    for (int tries = 0; tries < 3; tries++) {
        struct stat st;
        if (fstat(fd, &st) < 0)
            return -1;
        *file_size = (unsigned long long)st.st_size;
        if (st.st_size < MSGFILE_TRAILER_LEN)
            return 0;
        char t[MSGFILE_TRAILER_LEN];
        ssize_t n;
        do
            n = pread(fd, t, sizeof t, st.st_size - MSGFILE_TRAILER_LEN);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return -1;
        if (n == (ssize_t)sizeof t) {
            if (msgfile_trailer_parse(t, sizeof t, id, *file_size, off, len))
                return 1;
            return memcmp(t, MAGIC, sizeof MAGIC - 1) == 0 ? 2 : 0;
        }
    }
    errno = EAGAIN;
    return -1;
}

int msgfile_msg_size(int fd, const char *id, unsigned long long *size)
{
    unsigned long long fsize, off;
    unsigned long len;
    int r = msgfile_trailer_read(fd, id, &fsize, &off, &len);
    if (r < 0)
        return -1;
    *size = r == 1 ? off : fsize;
    return 0;
}

ssize_t msg_read(int fd, unsigned long long *left, void *buf, size_t n)
{
    if (*left == 0)
        return 0;
    if (n > *left)
        n = (size_t)*left;
    for (;;) {
        ssize_t r = read(fd, buf, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            errno = EIO;        /* shorter than its envelope says: never pass it on as whole */
            return -1;
        }
        if (r > 0)
            *left -= (unsigned long long)r;
        return r;
    }
}

ssize_t msg_pread(struct msg_src m, void *buf, size_t n, unsigned long long off)
{
    if (off >= m.size)
        return 0;
    if (n > m.size - off)
        n = (size_t)(m.size - off);
    for (;;) {
        ssize_t r = pread(m.fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            errno = EIO;
            return -1;
        }
        return r;
    }
}

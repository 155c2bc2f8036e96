/* gzip — whole-buffer RFC 1952 compression; see gzip.h. */
#include "lib/gzip.h"

#include <stdint.h>
#include <string.h>
#include <zlib.h>

int gzip_compress(const void *data, size_t len, size_t max_in, struct buf *out)
{
    if (len > max_in || len > (size_t)UINT32_MAX)
        return -1;
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip wrapper with a zero time stamp, so output is stable */
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    unsigned char chunk[16384];
    int r;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        r = deflate(&z, Z_FINISH);
        if (r == Z_STREAM_ERROR || buf_append(out, chunk, sizeof chunk - z.avail_out) < 0) {
            deflateEnd(&z);
            return -1;
        }
    } while (r != Z_STREAM_END);
    deflateEnd(&z);
    return 0;
}

enum gzip_inflate_result gzip_inflate(const void *data, size_t len, struct buf *out)
{
    if (len > (size_t)UINT32_MAX)
        return GZIP_TOO_BIG;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)       /* gzip wrapper only */
        return GZIP_NOMEM;
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    unsigned char chunk[16384];
    int r;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        r = inflate(&z, Z_NO_FLUSH);
        if (r != Z_OK && r != Z_STREAM_END)
            break;
        if (buf_append(out, chunk, sizeof chunk - z.avail_out) < 0) {
            inflateEnd(&z);
            return GZIP_TOO_BIG;
        }
    } while (r != Z_STREAM_END && (z.avail_in > 0 || z.avail_out == 0));
    inflateEnd(&z);
    if (r == Z_STREAM_END)
        return GZIP_OK;
    return r == Z_DATA_ERROR ? GZIP_CORRUPT : r == Z_MEM_ERROR ? GZIP_NOMEM : GZIP_TRUNCATED;
}

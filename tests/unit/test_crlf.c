/* Unit tests for lib/crlf: CRLF to LF across read boundaries, through a real
   pipe written in pieces, so a CR that ends one read meets its LF in the next. */
#include "lib/crlf.h"
#include "tests/unit/unit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes each piece of parts (NULL-terminated) separately into a pipe, reading
   once after each, then the rest after the end of file, through crlf_read with
   an output buffer of outsz. */
static void convert(const char *const *parts, size_t outsz, char *got, size_t gotsz)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    size_t total = 0;
    for (size_t k = 0; parts[k]; k++)
        total += strlen(parts[k]);
    struct crlf_reader rd = CRLF_READER(total);
    size_t len = 0;
    char out[64];
    ck_assert_uint_le(outsz, sizeof out);
    for (size_t k = 0; parts[k]; k++) {
        ck_assert_int_eq(write(p[1], parts[k], strlen(parts[k])), (ssize_t)strlen(parts[k]));
        /* One read now, so a CR that ends this piece is held across reads
           (no piece is a lone CR: that read would wait for more). */
        ssize_t n = crlf_read(p[0], &rd, out, outsz);
        ck_assert_int_gt(n, 0);
        memcpy(got + len, out, (size_t)n);
        len += (size_t)n;
    }
    close(p[1]);
    ssize_t n;
    while ((n = crlf_read(p[0], &rd, out, outsz)) > 0) {
        ck_assert_uint_lt(len + (size_t)n, gotsz);
        memcpy(got + len, out, (size_t)n);
        len += (size_t)n;
    }
    ck_assert_int_eq(n, 0);
    close(p[0]);
    got[len] = '\0';
}

START_TEST(crlf_becomes_lf)
{
    const char *parts[] = { "a\r\nb\r\n", NULL };
    char got[64];
    convert(parts, 64, got, sizeof got);
    ck_assert_str_eq(got, "a\nb\n");
}
END_TEST

START_TEST(cr_split_from_its_lf)
{
    const char *parts[] = { "a\r", "\nb", NULL };
    char got[64];
    convert(parts, 64, got, sizeof got);
    ck_assert_str_eq(got, "a\nb");
}
END_TEST

START_TEST(lone_cr_kept)
{
    const char *parts[] = { "a\r", "b\r\rc\r", NULL };
    char got[64];
    convert(parts, 64, got, sizeof got);
    ck_assert_str_eq(got, "a\rb\r\rc\r");
}
END_TEST

START_TEST(small_output_buffer)
{
    const char *parts[] = { "x\r\ny\rz\r\n", NULL };
    char got[64];
    convert(parts, 2, got, sizeof got);
    ck_assert_str_eq(got, "x\ny\rz\n");
}
END_TEST

/* A queue file holds its envelope after the message: the reader stops at the
   message's size, and a file shorter than that is an error, not a short message. */
START_TEST(stops_at_the_size)
{
    char path[] = "/tmp/ferry-crlf-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    const char text[] = "a\r\nb\r\nFERRY-ENV 1\n";
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    struct crlf_reader rd = CRLF_READER(6);
    char out[64];
    size_t len = 0;
    ssize_t n;
    while ((n = crlf_read(fd, &rd, out + len, sizeof out - len)) > 0)
        len += (size_t)n;
    ck_assert_int_eq(n, 0);
    ck_assert_uint_eq(len, 4);
    ck_assert(!memcmp(out, "a\nb\n", 4));

    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    rd = CRLF_READER(sizeof text + 10);     /* the file is shorter than the message */
    while ((n = crlf_read(fd, &rd, out, sizeof out)) > 0)
        ;
    ck_assert_int_eq(n, -1);
    ck_assert_int_eq(errno, EIO);
    close(fd);
}
END_TEST

static Suite *crlf_suite(void)
{
    Suite *s = suite_create("crlf");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, crlf_becomes_lf);
    tcase_add_test(tc, cr_split_from_its_lf);
    tcase_add_test(tc, lone_cr_kept);
    tcase_add_test(tc, small_output_buffer);
    tcase_add_test(tc, stops_at_the_size);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(crlf_suite)

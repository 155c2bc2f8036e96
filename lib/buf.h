/*
 * buf — bounded byte buffers and string helpers.
 *
 * A struct buf grows on demand up to a hard limit fixed at init; every append
 * that would pass the limit fails (returns -1) and leaves the buffer unchanged,
 * so a caller fed by the network can never be made to allocate without bound.
 * The data is always NUL-terminated after len bytes, so text can be read as a C
 * string. The str_* helpers never write past the size they are given.
 */
#ifndef FERRY_BUF_H
#define FERRY_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
    char  *data;
    size_t len;
    size_t cap;
    size_t max;   /* hard limit on len */
};

void  buf_init(struct buf *b, size_t max);
void  buf_free(struct buf *b);
void  buf_reset(struct buf *b);
int   buf_append(struct buf *b, const void *p, size_t n);
int   buf_puts(struct buf *b, const char *s);
int   buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int   buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Remove the first n bytes. */
void  buf_consume(struct buf *b, size_t n);

/* Copy src into dst (size bytes); returns strlen(src); truncation when >= size. */
size_t str_copy(char *dst, const char *src, size_t size);
/* Like str_copy, but src is n bytes (no NUL needed). Returns n. */
size_t str_copyn(char *dst, const char *src, size_t n, size_t size);
/* ASCII-only case-insensitive comparisons (locale-independent). */
bool   str_ieq(const char *a, const char *b);
bool   str_nieq(const char *a, const char *b, size_t n);
bool   str_iendswith(const char *s, const char *suffix);
void   str_lower(char *s);
/* Strip ASCII blanks (space, tab, CR, LF) from both ends, in place; returns s. */
char  *str_trim(char *s);
/* Parse a decimal unsigned number filling the whole string; -1 on junk or overflow. */
int    str_to_u64(const char *s, unsigned long long max, unsigned long long *out);

#endif

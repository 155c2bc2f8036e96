/* hdr_value — see hdr_value.h. */
#include "lib/hdr_value.h"

#include <string.h>

#define COMMENT_DEPTH_MAX 32

static bool is_tspecial(unsigned char c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

bool hdr_is_token(const char *s)
{
    if (!*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || is_tspecial(*p))
            return false;
    return true;
}

/* Every writer appends all of its value or nothing: half a quoted-string or a
   comment cut before its end would take over what follows it in the field. */
static int all_or_nothing(struct buf *b, size_t before, int r)
{
    if (r < 0 && b->len > before) {
        b->len = before;
        b->data[before] = '\0';
    }
    return r < 0 ? -1 : 0;
}

static int append_quoted(struct buf *b, const char *v)
{
    size_t before = b->len;
    int r = buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)v; *p && r == 0; p++) {
        if (*p == '"' || *p == '\\')
            r = buf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            r = buf_puts(b, "?");
        else
            r = buf_append(b, p, 1);
    }
    if (r == 0)
        r = buf_puts(b, "\"");
    return all_or_nothing(b, before, r);
}

int hdr_value_append(struct buf *b, const char *v)
{
    return hdr_is_token(v) ? buf_puts(b, v) : append_quoted(b, v);
}

static bool is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* A domain name: labels of letters, digits, '-' and '_', separated by single dots. */
static bool is_domain(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || (c == '.' && s[i + 1] != '.');
        if (!ok)
            return false;
    }
    return true;
}

static bool is_dot_atom(const char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(is_atext((unsigned char)s[i]) || (s[i] == '.' && s[i + 1] != '.')))
            return false;
    return true;
}

int hdr_pvalue_append(struct buf *b, const char *v)
{
    size_t n = strlen(v);
    const char *at = strrchr(v, '@');
    bool bare = hdr_is_token(v) || is_domain(v, n) ||
                (at && is_dot_atom(v, (size_t)(at - v)) && is_domain(at + 1, strlen(at + 1)));
    return bare ? buf_puts(b, v) : append_quoted(b, v);
}

int hdr_dot_atom_append(struct buf *b, const char *v)
{
    return is_dot_atom(v, strlen(v)) ? buf_puts(b, v) : append_quoted(b, v);
}

int hdr_ctext_append(struct buf *b, const char *v)
{
    size_t before = b->len;
    int r = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p && r == 0; p++) {
        if (*p == '(' || *p == ')' || *p == '\\')
            r = buf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p >= 0x7f)
            r = buf_puts(b, "?");
        else
            r = buf_append(b, p, 1);
    }
    return all_or_nothing(b, before, r);
}

size_t hdr_skip_cfws(const char *s, size_t i, size_t n)
{
    int depth = 0;
    while (i < n) {
        char c = s[i];
        if (depth == 0 && (c == ' ' || c == '\t' || c == '\r' || c == '\n')) {
            i++;
        } else if (c == '(') {
            if (depth == COMMENT_DEPTH_MAX)
                return n;           /* deeper than anyone writes: nothing usable follows */
            depth++;
            i++;
        } else if (depth > 0) {
            if (c == '\\' && i + 1 < n)
                i++;
            else if (c == ')')
                depth--;
            i++;
        } else {
            break;
        }
    }
    return i;
}

size_t hdr_value_read(const char *s, size_t i, size_t n, char *out, size_t outsz)
{
    size_t k = 0;
    if (outsz == 0 || i >= n)
        return 0;
    if (s[i] != '"') {
        while (i < n) {
            unsigned char c = (unsigned char)s[i];
            if (c <= 0x20 || c >= 0x7f || is_tspecial(c))
                break;
            if (k + 1 >= outsz)
                return 0;
            out[k++] = (char)c;
            i++;
        }
        out[k] = '\0';
        return k ? i : 0;
    }
    for (i++; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            out[k] = '\0';
            return i + 1;
        }
        if (c == '\\') {
            if (++i >= n)
                return 0;
            c = s[i];
        } else if (c == '\r' || c == '\n') {
            continue;               /* folding inside the quotes is not part of the value */
        }
        if (k + 1 >= outsz)
            return 0;
        out[k++] = c;
    }
    return 0;
}

bool hdr_field_is(const char *f, size_t flen, const char *name, size_t *value)
{
    size_t n = strlen(name);
    if (flen <= n || !str_nieq(f, name, n))
        return false;
    size_t i = n;
    while (i < flen && (f[i] == ' ' || f[i] == '\t'))
        i++;
    if (i >= flen || f[i] != ':')
        return false;
    if (value)
        *value = i + 1;
    return true;
}

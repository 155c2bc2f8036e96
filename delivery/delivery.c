/* delivery — see delivery.h. */
#include "delivery/delivery.h"
#include "lib/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void delivery_set(struct delivery_status *st, enum delivery_result r, const char *fmt, ...)
{
    st->result = r;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->text, sizeof st->text, fmt, ap);
    va_end(ap);
}

bool errno_is_temporary(int err)
{
    switch (err) {
    case ENOSPC: case EDQUOT: case EIO: case EROFS: case EAGAIN: case EMFILE:
    case ENFILE: case ENOMEM: case EINTR: case EBUSY: case ETIMEDOUT: case ESTALE:
    case ENOBUFS:
        return true;
    default:
        return false;
    }
}

const char *delivery_errno_class(int err, enum delivery_result *r)
{
    *r = DELIVERY_DEFER;
    switch (err) {
    case ENOSPC:
        return "4.3.1";
    case EDQUOT: case EFBIG:
        return "4.2.2";
    case ENOENT: case ENOTDIR:
        return "4.3.5";
    case EISDIR: case ELOOP: case ENAMETOOLONG: case EINVAL:
        *r = DELIVERY_FAIL;
        return "5.3.5";
    default:
        return "4.3.0";
    }
}

void delivery_set_errno(struct delivery_status *st, int err, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    enum delivery_result r;
    const char *code = delivery_errno_class(err, &r);
    delivery_set(st, r, "%s %s: %s", code, what, strerror(err));
}

static bool ends_with_nocase(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && str_nieq(s + n - k, suffix, k);
}

enum mailbox_name_verdict mailbox_name_check(const char *name, const char **why)
{
    size_t n = strlen(name);
    if (n == 0) {
        *why = "empty local part";
        return MAILBOX_NAME_BAD;
    }
    if (n > ADDR_LOCAL_MAX) {
        *why = "local part too long";
        return MAILBOX_NAME_BAD;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '/') {
            *why = "local part contains a character not allowed in a mailbox name";
            return MAILBOX_NAME_BAD;
        }
    }
    if (name[0] == '.') {
        *why = "no such mailbox: a local part starting with a dot would name a hidden or control file";
        return MAILBOX_NAME_RESERVED;
    }
    if (name[n - 1] == '.' || name[n - 1] == ' ') {
        *why = "no such mailbox: a local part ending with a dot or space is not a mailbox name";
        return MAILBOX_NAME_RESERVED;
    }
    if (ends_with_nocase(name, n, ".lock")) {
        *why = "no such mailbox: a local part ending in .lock would name a mailbox lock file";
        return MAILBOX_NAME_RESERVED;
    }
    return MAILBOX_NAME_OK;
}

enum mailbox_name_verdict local_mailbox_name(const struct mailbox *m, const char *delimiters, char *out,
                                             size_t outsz, const char **why)
{
    char local[ADDR_LOCAL_MAX + 1];
    if (addr_local_unquoted(m, local, sizeof local) < 0) {
        *why = "local part too long";
        return MAILBOX_NAME_BAD;
    }
    enum mailbox_name_verdict v = mailbox_name_check(local, why);
    if (v != MAILBOX_NAME_OK)
        return v;
    /* user+tag is delivered to user: that name must be safe as well. */
    size_t k = delimiters && *delimiters ? strcspn(local, delimiters) : 0;
    if (k > 0 && local[k]) {
        char base[ADDR_LOCAL_MAX + 1];
        str_copyn(base, local, k, sizeof base);
        if ((v = mailbox_name_check(base, why)) != MAILBOX_NAME_OK)
            return v;
    }
    size_t n = strlen(local);
    if (n + 1 > outsz) {
        *why = "local part too long";
        return MAILBOX_NAME_BAD;
    }
    memcpy(out, local, n + 1);
    str_lower(out);
    return MAILBOX_NAME_OK;
}

/*
 * delivery — what every delivery agent reports, and the local-recipient rules.
 *
 * A result is OK, DEFER (temporary: try again later) or FAIL (permanent: bounce),
 * with text that begins with an RFC 3463 enhanced status code, e.g.
 * "4.3.1 cannot write /var/mail/alice/tmp: No space left on device". Agents classify
 * their own errors where they happen (errno_is_temporary).
 *
 * Local mailbox names: the local part with quoting removed, ASCII letters folded to
 * lower case (local parts are case-sensitive in principle, but mail administrators
 * and every common MTA treat them as case-insensitive), at most 64 octets, and safe
 * as one directory name: no "/", no NUL or control octet. And a mailbox name never
 * names a file the delivery code or a mail reader uses for control (SECURITY.md,
 * "Local parts as file names"): it may not start with "." (".", "..", hidden
 * files, Maildir++ folders), end with "." or a space (names some filesystems
 * strip, making them another name), or end with ".lock" in any case (the mbox
 * dotlock of the mailbox without that suffix: "dave.lock" would lock dave out).
 */
#ifndef FERRY_DELIVERY_H
#define FERRY_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/addr.h"

enum delivery_result { DELIVERY_OK, DELIVERY_DEFER, DELIVERY_FAIL };

struct delivery_status {
    enum delivery_result result;
    char text[512];
};

void delivery_set(struct delivery_status *st, enum delivery_result r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ENOSPC, EDQUOT, EIO, EROFS, EAGAIN, EMFILE, ENFILE, ENOMEM, EINTR, EBUSY... */
bool errno_is_temporary(int err);

/*
 * The result and RFC 3463 code for a local delivery that failed with errno err.
 * Temporary (DEFER) unless retrying cannot help:
 *   ENOSPC 4.3.1; EDQUOT, EFBIG 4.2.2 (the filesystem's own limits);
 *   EACCES, EPERM 4.3.0 (a fixable misconfiguration, not the sender's fault);
 *   ENOENT, ENOTDIR 4.3.5 (a configured path that does not exist yet);
 *   EISDIR, ELOOP (a symbolic link where a mailbox file belongs), ENAMETOOLONG,
 *   EINVAL 5.3.5 FAIL (the path can never be a mailbox);
 *   anything else 4.3.0 DEFER.
 * Returns the code ("4.3.1"...) and sets *r.
 */
const char *delivery_errno_class(int err, enum delivery_result *r);
/* delivery_set with the class of err: "<code> <what>: <strerror(err)>". */
void delivery_set_errno(struct delivery_status *st, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

enum mailbox_name_verdict {
    MAILBOX_NAME_OK,
    MAILBOX_NAME_BAD,         /* cannot be a file name at all: 5.1.3 */
    MAILBOX_NAME_RESERVED,    /* would name a lock or control file: 5.1.1 */
};

/* Judge a mailbox name (unquoted; case does not matter) by the rules above;
   *why says what is wrong when it is not OK. */
enum mailbox_name_verdict mailbox_name_check(const char *name, const char **why);

/* The mailbox name for a local part as written in the address (quotes allowed),
   folded to lower case. With delimiters (recipient_delimiter; NULL or "" for
   none), the part before the first delimiter, which is what sub-addressed mail
   is delivered to, must pass too. *why is set when the verdict is not OK. */
enum mailbox_name_verdict local_mailbox_name(const struct mailbox *m, const char *delimiters, char *out,
                                             size_t outsz, const char **why);

#endif

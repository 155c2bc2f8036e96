/* home_delivery — see home_delivery.h. */
#include "delivery/home_delivery.h"
#include "delivery/mailbox_quota.h"
#include "delivery/maildir.h"
#include "lib/buf.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool home_user_ok(const char *name)
{
    if (!name[0] || strlen(name) >= HOME_USER_MAX || strchr(name, '/'))
        return false;
    struct passwd *pw = getpwnam(name);
    return pw && pw->pw_uid != 0 && pw->pw_dir && pw->pw_dir[0] == '/';
}

static bool field_ok(const char *s)
{
    return !strpbrk(s, "\t\r\n");
}

int home_request_format(const struct home_request *r, char *out, size_t outsz)
{
    if (!field_ok(r->id) || !field_ok(r->user) || !field_ok(r->sender) || !field_ok(r->rcpt))
        return -1;
    int n = snprintf(out, outsz, "%s\t%u\t%d\t%s\t%s\t%s", r->id, r->index, r->junk ? 1 : 0, r->user, r->sender,
                     r->rcpt);
    return n < 0 || (size_t)n >= outsz ? -1 : n;
}

int home_result_format(const struct home_result *r, char *out, size_t outsz)
{
    char text[sizeof r->st.text];
    str_copy(text, r->st.text, sizeof text);
    for (char *p = text; *p; p++)
        if (*p == '\t' || *p == '\r' || *p == '\n')
            *p = ' ';
    if (!field_ok(r->id))
        return -1;
    int n = snprintf(out, outsz, "%s\t%u\t%d\t%s", r->id, r->index, (int)r->st.result, text);
    return n < 0 || (size_t)n >= outsz ? -1 : n;
}

/* Splits data into exactly nf tab-separated fields (the last takes the rest). */
static int split(const char *data, size_t len, char *buf, size_t bufsz, char **f, int nf)
{
    if (len >= bufsz || memchr(data, '\0', len) || memchr(data, '\n', len) || memchr(data, '\r', len))
        return -1;
    memcpy(buf, data, len);
    buf[len] = '\0';
    char *p = buf;
    for (int i = 0; i < nf - 1; i++) {
        f[i] = p;
        char *t = strchr(p, '\t');
        if (!t)
            return -1;
        *t = '\0';
        p = t + 1;
    }
    f[nf - 1] = p;
    return 0;
}

static int parse_index(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v > 1000000)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int home_request_parse(const char *data, size_t len, struct home_request *r)
{
    char buf[64 + 16 + 4 + HOME_USER_MAX + 2 * (ADDR_PATH_MAX + 1) + 8];
    char *f[6];
    memset(r, 0, sizeof *r);
    if (split(data, len, buf, sizeof buf, f, 6) < 0 || strchr(f[5], '\t') || parse_index(f[1], &r->index) < 0 ||
        (strcmp(f[2], "0") && strcmp(f[2], "1")) || !f[0][0] || strlen(f[0]) >= sizeof r->id || !f[3][0] ||
        strlen(f[3]) >= sizeof r->user || strlen(f[4]) >= sizeof r->sender || !f[5][0] ||
        strlen(f[5]) >= sizeof r->rcpt)
        return -1;
    str_copy(r->id, f[0], sizeof r->id);
    r->junk = f[2][0] == '1';
    str_copy(r->user, f[3], sizeof r->user);
    str_copy(r->sender, f[4], sizeof r->sender);
    str_copy(r->rcpt, f[5], sizeof r->rcpt);
    return 0;
}

int home_result_parse(const char *data, size_t len, struct home_result *r)
{
    char buf[32 + 16 + 8 + sizeof r->st.text + 8];
    char *f[4];
    memset(r, 0, sizeof *r);
    unsigned res;
    if (split(data, len, buf, sizeof buf, f, 4) < 0 || parse_index(f[1], &r->index) < 0 ||
        parse_index(f[2], &res) < 0 || res > DELIVERY_FAIL || !f[0][0] || strlen(f[0]) >= sizeof r->id ||
        strlen(f[3]) >= sizeof r->st.text)
        return -1;
    str_copy(r->id, f[0], sizeof r->id);
    r->st.result = (enum delivery_result)res;
    str_copy(r->st.text, f[3], sizeof r->st.text);
    return 0;
}

void home_deliver(const char *home, const char *sender, const char *rcpt, bool junk, struct msg_src msg,
                  unsigned long long quota, struct delivery_status *st)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/Maildir", home);
    if (quota) {
        unsigned long long usage;
        if (mailbox_usage(path, true, &usage) < 0) {
            delivery_set(st, errno_is_temporary(errno) ? DELIVERY_DEFER : DELIVERY_FAIL,
                         "%s cannot measure mailbox %s: %s", errno_is_temporary(errno) ? "4.2.0" : "5.2.0", path,
                         strerror(errno));
            return;
        }
        if (mailbox_quota_exceeded(usage, msg.size, quota, path, st))
            return;
    }
    if (lseek(msg.fd, 0, SEEK_SET) < 0) {
        delivery_set(st, DELIVERY_DEFER, "4.3.0 cannot rewind the queued message: %s", strerror(errno));
        return;
    }
    char prefix[2 * ADDR_PATH_MAX + 64];
    snprintf(prefix, sizeof prefix, "Return-Path: <%s>\nDelivered-To: %s\n", sender, rcpt);
    maildir_deliver(home, "Maildir", junk ? MAILDIR_JUNK_FOLDER : NULL, prefix, msg, st, NULL, 0);
}

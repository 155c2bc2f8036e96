/* relayhost_creds — see relayhost_creds.h. */
#include "delivery/relayhost_creds.h"
#include "lib/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CREDS_FILE_MAX 4096

int relayhost_creds_parse(const char *text, size_t len, struct relayhost_creds *creds, const char **why)
{
    memset(creds, 0, sizeof *creds);
    size_t i = 0;
    while (i < len) {
        const char *line = text + i;
        const char *nl = memchr(line, '\n', len - i);
        size_t ll = nl ? (size_t)(nl - line) : len - i;
        i += ll + (nl ? 1 : 0);
        if (ll && line[ll - 1] == '\r')
            ll--;
        size_t s = 0;
        while (s < ll && (line[s] == ' ' || line[s] == '\t'))
            s++;
        if (s == ll || line[s] == '#')
            continue;
        if (creds->set) {
            *why = "more than one credentials line";
            return -1;
        }
        size_t u = s;
        while (u < ll && line[u] != ' ' && line[u] != '\t')
            u++;
        size_t p = u;
        while (p < ll && (line[p] == ' ' || line[p] == '\t'))
            p++;
        if (u == s || p == ll) {
            *why = "expected \"user password\"";
            return -1;
        }
        if (u - s >= sizeof creds->user || ll - p >= sizeof creds->pass) {
            *why = "user name or password too long";
            return -1;
        }
        for (size_t k = s; k < ll; k++) {
            if ((unsigned char)line[k] < 0x20 && line[k] != '\t') {
                *why = "control character in the credentials";
                return -1;
            }
        }
        str_copyn(creds->user, line + s, u - s, sizeof creds->user);
        str_copyn(creds->pass, line + p, ll - p, sizeof creds->pass);
        creds->set = true;
    }
    if (!creds->set) {
        *why = "no credentials line";
        return -1;
    }
    return 0;
}

int relayhost_creds_load(const char *path, struct relayhost_creds *creds, char *err, size_t errsz)
{
    memset(creds, 0, sizeof *creds);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        snprintf(err, errsz, "relayhost_auth_file %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    const char *why = NULL;
    if (!S_ISREG(sb.st_mode))
        why = "not a regular file";
    else if (sb.st_mode & (S_IRWXG | S_IRWXO))
        why = "readable or writable by group or others (chmod 600 it)";
    else if (sb.st_uid != 0 && sb.st_uid != geteuid())
        why = "owned by another user";
    else if (sb.st_size > CREDS_FILE_MAX)
        why = "too large";
    if (why) {
        snprintf(err, errsz, "relayhost_auth_file %s: %s", path, why);
        close(fd);
        return -1;
    }
    char text[CREDS_FILE_MAX];
    ssize_t n = read(fd, text, sizeof text);
    int e = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, errsz, "relayhost_auth_file %s: %s", path, strerror(e));
        return -1;
    }
    int rc = relayhost_creds_parse(text, (size_t)n, creds, &why);
    OPENSSL_cleanse(text, sizeof text);
    if (rc < 0) {
        relayhost_creds_wipe(creds);        /* a first line may have been taken before the fault */
        snprintf(err, errsz, "relayhost_auth_file %s: %s", path, why);
    }
    return rc;
}

void relayhost_creds_wipe(struct relayhost_creds *creds)
{
    OPENSSL_cleanse(creds, sizeof *creds);
}

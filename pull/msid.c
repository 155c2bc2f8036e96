/* msid — see msid.h. */
#include "pull/msid.h"
#include "lib/buf.h"
#include "lib/netaddr.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char b32[] = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

static void b32_encode(const unsigned char *in, size_t inlen, char *out, size_t nchars)
{
    for (size_t i = 0; i < nchars; i++) {
        size_t bit = i * 5;
        unsigned v = 0;
        for (size_t b = 0; b < 5; b++, bit++) {
            unsigned x = bit / 8 < inlen ? (in[bit / 8] >> (7 - bit % 8)) & 1 : 0;
            v = v << 1 | x;
        }
        out[i] = b32[v];
    }
    out[nchars] = '\0';
}

void msid_token(const struct msid_key *key, const char *label, const char *const *parts, size_t nparts, char *out,
                size_t nchars)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    struct buf m;
    if (nchars > 51)
        nchars = 51;
    buf_init(&m, 8192);
    int rc = buf_append(&m, label, strlen(label) + 1);
    for (size_t i = 0; i < nparts; i++) {
        size_t n = strlen(parts[i]);
        unsigned char len[4] = { (unsigned char)(n >> 24), (unsigned char)(n >> 16), (unsigned char)(n >> 8),
                                 (unsigned char)n };
        rc |= buf_append(&m, len, sizeof len);
        rc |= buf_append(&m, parts[i], n);
    }
    if (rc < 0 || !HMAC(EVP_sha256(), key->k, MSID_KEY_LEN, (const unsigned char *)m.data, m.len, mac, &maclen)) {
        /* input too long or no MAC: a token no real one can equal */
        memset(out, '-', nchars);
        out[nchars] = '\0';
    } else {
        b32_encode(mac, maclen, out, nchars);
    }
    buf_free(&m);
}

bool msid_text_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* The RMTA's address as text, IPv4-mapped IPv6 as IPv4, so one host binds one way. */
static int ip_text(const struct sockaddr *sa, char *out, size_t outsz)
{
    if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
        return -1;
    netaddr_ntop(sa, out, outsz);
    return out[0] ? 0 : -1;
}

static bool qid_ok(const char *q, size_t n)
{
    if (n == 0 || n > MSID_QID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((q[i] >= '0' && q[i] <= '9') || (q[i] >= 'A' && q[i] <= 'Z') || (q[i] >= 'a' && q[i] <= 'z')))
            return false;
    return true;
}

static void mac_for(const struct msid_key *key, const char *qid, const char *exp, const char *ip,
                    char out[MSID_MAC_CHARS + 1])
{
    const char *parts[] = { qid, exp, ip };
    msid_token(key, "ferry-msid-1", parts, 3, out, MSID_MAC_CHARS);
}

int msid_make(const struct msid_key *key, const char *qid, const struct sockaddr *rmta, time_t expiry, char *out,
              size_t outsz)
{
    char ip[64], exp[16], mac[MSID_MAC_CHARS + 1];
    if (!qid_ok(qid, strlen(qid)) || expiry <= 0 || (long long)expiry > 0xFFFFFFFFFFLL || outsz < MSID_TEXT_MAX + 1 ||
        ip_text(rmta, ip, sizeof ip) < 0)
        return -1;
    snprintf(exp, sizeof exp, "%010llX", (long long)expiry);
    mac_for(key, qid, exp, ip, mac);
    return snprintf(out, outsz, "%s-%s-%s", qid, exp, mac);
}

enum msid_status msid_check(const struct msid_key *key, const char *msid, const struct sockaddr *bound, time_t now,
                            char qid[MSID_QID_MAX + 1], time_t *expiry)
{
    char ip[64], exp[11], mac[MSID_MAC_CHARS + 1];
    qid[0] = '\0';
    *expiry = 0;
    size_t n = strnlen(msid, MSID_TEXT_MAX + 1);
    if (n > MSID_TEXT_MAX || n < 1 + 1 + 10 + 1 + MSID_MAC_CHARS)
        return MSID_MALFORMED;
    const char *m = msid + n - MSID_MAC_CHARS, *e = m - 11;
    size_t qlen = (size_t)(e - 1 - msid);
    if (m[-1] != '-' || e[-1] != '-' || !qid_ok(msid, qlen))
        return MSID_MALFORMED;
    for (size_t i = 0; i < 10; i++)
        if (!strchr("0123456789ABCDEF", e[i]) || !e[i])
            return MSID_MALFORMED;
    for (size_t i = 0; i < MSID_MAC_CHARS; i++)
        if (!strchr(b32, m[i]) || !m[i])
            return MSID_MALFORMED;
    if (ip_text(bound, ip, sizeof ip) < 0)
        return MSID_BAD_MAC;
    memcpy(exp, e, 10);
    exp[10] = '\0';
    char q[MSID_QID_MAX + 1];
    memcpy(q, msid, qlen);
    q[qlen] = '\0';
    mac_for(key, q, exp, ip, mac);
    if (!msid_text_equal(mac, m))
        return MSID_BAD_MAC;
    memcpy(qid, q, qlen + 1);
    *expiry = (time_t)strtoll(exp, NULL, 16);
    return now >= *expiry ? MSID_EXPIRED : MSID_OK;
}

const char *msid_status_name(enum msid_status s)
{
    switch (s) {
    case MSID_OK: return "ok";
    case MSID_MALFORMED: return "malformed";
    case MSID_BAD_MAC: return "bad-mac";
    case MSID_EXPIRED: return "expired";
    }
    return "?";
}

static bool in_our_groups(gid_t g)
{
    if (g == getegid())
        return true;
    gid_t groups[64];
    int n = getgroups(64, groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == g)
            return true;
    return false;
}

/* shared_gid: the group data_dir is shared through (set-group-id), or -1. */
static int read_key(const char *path, gid_t shared_gid, struct msid_key *key, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open the DMTP key %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    ssize_t got = -1;
    unsigned char k[MSID_KEY_LEN + 1];
    /* Ours and no one else's; or, in a shared data_dir, readable by the sharing
       group too (the smtp and queue users, lib/privsep.h). Never group-writable,
       never readable by others. */
    bool ours = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 027) == 0;
    bool group_ok = shared_gid != (gid_t)-1 && st.st_gid == shared_gid && in_our_groups(shared_gid);
    ours = ours && (!(st.st_mode & 040) || group_ok) && (st.st_uid == geteuid() || ((st.st_mode & 040) && group_ok));
    if (ours)
        got = read(fd, k, sizeof k);
    else
        snprintf(err, errlen, "the DMTP key %s must be a regular file of ours (or our group's) that no one else "
                 "can read", path);
    close(fd);
    if (got == MSID_KEY_LEN)
        memcpy(key->k, k, MSID_KEY_LEN);
    OPENSSL_cleanse(k, sizeof k);
    if (got == MSID_KEY_LEN)
        return 0;
    if (got >= 0)
        snprintf(err, errlen, "the DMTP key %s is damaged (not %d octets)", path, MSID_KEY_LEN);
    return -1;
}

int msid_key_load(const char *data_dir, struct msid_key *key, char *err, size_t errlen)
{
    char path[4096], tmp[4096 + 32];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", data_dir, MSID_KEY_FILE) >= sizeof path) {
        snprintf(err, errlen, "the data_dir name is too long");
        return -1;
    }
    struct stat dst;
    gid_t shared_gid = stat(data_dir, &dst) == 0 && (dst.st_mode & S_ISGID) ? dst.st_gid : (gid_t)-1;
    if (access(path, F_OK) == 0)
        return read_key(path, shared_gid, key, err, errlen);
    /* Written whole under a private name, then linked into place: a crash leaves no
       short key, and of two racing creators the first link wins, the other reads it. */
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    unsigned char k[MSID_KEY_LEN];
    if (RAND_bytes(k, sizeof k) != 1) {
        snprintf(err, errlen, "no random bytes for the DMTP key");
        return -1;
    }
    /* Owner-only, unless data_dir is shared with the queue user through its group
       (set-group-id, lib/privsep.h): then that group may read it too. */
    mode_t mode = shared_gid != (gid_t)-1 ? 0640 : 0600;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    bool ok = write(fd, k, sizeof k) == (ssize_t)sizeof k && fsync(fd) == 0;
    ok &= close(fd) == 0;
    OPENSSL_cleanse(k, sizeof k);
    if (ok && link(tmp, path) < 0 && errno != EEXIST)
        ok = false;
    int saved = errno;
    unlink(tmp);
    if (!ok) {
        snprintf(err, errlen, "cannot write the DMTP key %s: %s", path, strerror(saved));
        return -1;
    }
    int dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return read_key(path, shared_gid, key, err, errlen);
}

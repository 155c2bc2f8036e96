/* tlsrpt_store — see tlsrpt_store.h. */
#include "delivery/tlsrpt_store.h"
#include "delivery/tlsrpt_report.h"
#include "lib/db.h"

#include <ctype.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int field_ok(const char *s, size_t max)
{
    return s && strlen(s) <= max && !strpbrk(s, "\t\r\n");
}

static int key_prefix(const struct tlsrpt_event *ev, const char *tag, char *out, size_t outsz)
{
    if (!field_ok(ev->domain, TLSRPT_FIELD_MAX) || !ev->domain[0] || !field_ok(ev->ptype, 32) || ev->when < 0)
        return -1;
    int n = snprintf(out, outsz, "%s\t%lld\t%s\t%s", tag, ev->when / 86400, ev->domain, ev->ptype);
    if (n < 0 || (size_t)n >= outsz)
        return -1;
    /* the domain lower case, without a trailing dot */
    char *d = out + strlen(tag) + 1;
    d = strchr(d, '\t') + 1;
    size_t dl = strlen(ev->domain);
    for (size_t i = 0; i < dl; i++)
        d[i] = (char)tolower((unsigned char)d[i]);
    if (dl > 1 && d[dl - 1] == '.') {
        memmove(d + dl - 1, d + dl, strlen(d + dl) + 1);
        n--;
    }
    return n;
}

int tlsrpt_store_key(const struct tlsrpt_event *ev, char *out, size_t outsz)
{
    int n = key_prefix(ev, "C1", out, outsz);
    if (n < 0)
        return -1;
    const char *res = ev->result ? ev->result : "ok";
    const char *mx = ev->result ? ev->mx : "", *ip = ev->result ? ev->ip : "";
    if (ev->result && !tlsrpt_result_type_ok(ev->result))
        return -1;
    if (!field_ok(mx, TLSRPT_FIELD_MAX) || !field_ok(ip, 64))
        return -1;
    int m;
    if (ev->result) {
        const char *sip = ev->sip ? ev->sip : "", *why = ev->reason ? ev->reason : "";
        if (!field_ok(sip, 64) || !field_ok(why, 128))
            return -1;
        m = snprintf(out + n, outsz - (size_t)n, "\t%s\t%s\t%s\t%s\t%s", res, mx, ip, sip, why);
    } else {
        m = snprintf(out + n, outsz - (size_t)n, "\t%s\t%s\t%s", res, mx, ip);
    }
    if (m < 0 || (size_t)m >= outsz - (size_t)n)
        return -1;
    return n + m;
}

long long tlsrpt_store_get(struct fdb *db, const struct tlsrpt_event *ev)
{
    char key[TLSRPT_KEY_MAX];
    int klen = tlsrpt_store_key(ev, key, sizeof key);
    if (klen < 0)
        return -1;
    void *val;
    size_t vlen;
    int rc = fdb_get(db, NULL, key, (size_t)klen, &val, &vlen);
    if (rc != 0)
        return rc == 1 ? 0 : -1;
    char num[24] = "";
    if (vlen < sizeof num)
        memcpy(num, val, vlen);
    free(val);
    return strtoll(num, NULL, 10);
}

/* The stored count plus one, within txn. */
static int bump(struct fdb *db, struct fdb_txn *txn, const char *key, size_t klen)
{
    void *val;
    size_t vlen;
    unsigned long long count = 0;
    int rc = fdb_get_for_update(db, txn, key, klen, &val, &vlen);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        char num[24] = "";
        if (vlen < sizeof num)
            memcpy(num, val, vlen);
        free(val);
        count = strtoull(num, NULL, 10);    /* a damaged value restarts at 0 */
    }
    char out[24];
    int n = snprintf(out, sizeof out, "%llu", count + 1);
    return fdb_put(db, txn, key, klen, out, (size_t)n);
}

static int store_policy(struct fdb *db, struct fdb_txn *txn, const struct tlsrpt_event *ev)
{
    char key[TLSRPT_KEY_MAX];
    int klen = key_prefix(ev, "S1", key, sizeof key);
    size_t plen = strlen(ev->policy);
    if (klen < 0 || plen > TLSRPT_POLICY_MAX)
        return -1;
    void *val;
    size_t vlen;
    int rc = fdb_get(db, txn, key, (size_t)klen, &val, &vlen);
    if (rc == 0) {
        free(val);
        return 0;
    }
    return rc < 0 ? -1 : fdb_put(db, txn, key, (size_t)klen, ev->policy, plen);
}

int tlsrpt_store_count(struct fdb_env *env, struct fdb *db, const struct tlsrpt_event *ev, char *err,
                       size_t errlen)
{
    char key[TLSRPT_KEY_MAX];
    int klen = tlsrpt_store_key(ev, key, sizeof key);
    if (klen < 0) {
        snprintf(err, errlen, "a TLS-RPT event with a missing, too long or unknown field");
        return -1;
    }
    struct fdb_txn *txn;
    if (fdb_txn_begin(env, &txn) < 0) {
        snprintf(err, errlen, "cannot begin a transaction: %s", fdb_last_error(env));
        return -1;
    }
    if (bump(db, txn, key, (size_t)klen) < 0 || (ev->policy && store_policy(db, txn, ev) < 0)) {
        snprintf(err, errlen, "cannot count: %s", fdb_last_error(env));
        fdb_txn_abort(txn);
        return -1;
    }
    /* Written, not fsync'd: see the header. */
    if (fdb_txn_commit_written(txn) < 0) {
        snprintf(err, errlen, "cannot commit: %s", fdb_last_error(env));
        return -1;
    }
    return 0;
}

const char *tlsrpt_result_of_verify(int established, long vr, int dane)
{
    switch (vr) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return "certificate-expired";
    case X509_V_ERR_HOSTNAME_MISMATCH:
        return "certificate-host-mismatch";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
        return dane ? "validation-failure" : "certificate-not-trusted";
    default:
        /* No TLSA record matched, a handshake that broke off, anything else. */
        return "validation-failure";
    }
    (void)established;
}

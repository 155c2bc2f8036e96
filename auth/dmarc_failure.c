/* dmarc_failure — see dmarc_failure.h. */
#include "auth/dmarc_failure.h"
#include "lib/mail_date.h"
#include "lib/mime.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define HEADERS_MAX (64u << 10)     /* header octets copied into a report */
#define LIMITER_KEYS 4096

void dmarc_fo_parse(const char *fo, struct dmarc_fo *out)
{
    memset(out, 0, sizeof *out);
    char opt[8];
    while (fo && *fo) {
        size_t n = strcspn(fo, ":");
        str_copyn(opt, fo, n < sizeof opt ? n : sizeof opt - 1, sizeof opt);
        str_trim(opt);
        out->any_fail |= !strcmp(opt, "0");
        out->one_fail |= !strcmp(opt, "1");
        out->dkim |= !strcmp(opt, "d");
        out->spf |= !strcmp(opt, "s");
        fo += n + (fo[n] == ':');
    }
    if (!out->any_fail && !out->one_fail && !out->dkim && !out->spf)
        out->any_fail = true;
}

bool dmarc_failure_wanted(const struct dmarc_fo *fo, const struct dmarc_failure_outcome *o)
{
    if (o->psd)
        return false;
    if (fo->any_fail && !o->spf_aligned_pass && !o->dkim_aligned_pass)
        return true;
    if (fo->one_fail && (!o->spf_aligned_pass || !o->dkim_aligned_pass))
        return true;
    return (fo->dkim && o->dkim_failed) || (fo->spf && o->spf_failed);
}

static bool local_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80 ||
           strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

/* An 8-character tag for a local part: SHA-256(salt || local), hex. */
static void tag_for(const char *salt, const char *local, size_t n, char out[9])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(c, salt, strlen(salt)) == 1 &&
        EVP_DigestUpdate(c, local, n) == 1 && EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen >= 4) {
        snprintf(out, 9, "%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
    } else {
        memcpy(out, "redacted", 9);
    }
    EVP_MD_CTX_free(c);
}

/* Copy s[0..n) into b with every local part before an '@' replaced by its tag. */
static int put_redacted(struct buf *b, const char *salt, const char *s, size_t n)
{
    int rc = 0;
    size_t done = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (s[i] != '@')
            continue;
        size_t start = i;
        while (start > done && local_char((unsigned char)s[start - 1]))
            start--;
        if (start == i)
            continue;
        char tag[9];
        tag_for(salt, s + start, i - start, tag);
        rc |= buf_append(b, s + done, start - done);
        rc |= buf_puts(b, tag);
        done = i;
    }
    rc |= buf_append(b, s + done, n - done);
    return rc;
}

static size_t header_len(const char *msg, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (msg[i] == '\n' && msg[i + 1] == '\n')
            return i + 1;
        if (i + 3 < len && !memcmp(msg + i, "\r\n\r\n", 4))
            return i + 2;
    }
    return len;
}

int dmarc_failure_build(const struct dmarc_failure_report *r, const char *msg, size_t len, struct buf *out,
                        char *err, size_t errlen)
{
    char salt[33], date[MAIL_DATE_MAX], arrival[MAIL_DATE_MAX], field[1024], boundary[128];
    if (r->salt) {
        str_copy(salt, r->salt, sizeof salt);
    } else {
        unsigned char rnd[16];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            snprintf(err, errlen, "no random salt for redaction");
            return -1;
        }
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(salt + 2 * i, 3, "%02x", rnd[i]);
    }
    mail_date(r->now, date, sizeof date);
    mail_date(r->arrival, arrival, sizeof arrival);
    size_t hlen = header_len(msg, len);
    if (hlen > HEADERS_MAX)
        hlen = HEADERS_MAX;
    snprintf(boundary, sizeof boundary, "=_ferry_ruf_%s", r->msg_id_seed);
    unsigned n = 0;
    while (mime_contains(msg, hlen, boundary) && n < 1000)
        snprintf(boundary, sizeof boundary, "=_ferry_ruf_%s_%u", r->msg_id_seed, n++);

    size_t start = out->len;
    int rc = 0;
    snprintf(field, sizeof field, "<%s>", r->from);
    rc |= mime_put_field(out, "From", field);
    snprintf(field, sizeof field, "<%s>", r->to);
    rc |= mime_put_field(out, "To", field);
    snprintf(field, sizeof field, "DMARC failure report for %s from %s", r->policy_domain, r->source_ip);
    rc |= mime_put_field(out, "Subject", field);
    rc |= mime_put_field(out, "Date", date);
    snprintf(field, sizeof field, "<%s.ruf@%s>", r->msg_id_seed, r->reporter);
    rc |= mime_put_field(out, "Message-ID", field);
    rc |= buf_puts(out, "Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
    rc |= buf_printf(out, "Content-Type: multipart/report; report-type=feedback-report;\r\n\tboundary=\"%s\"\r\n\r\n"
                          "This is a MIME-formatted message.\r\n", boundary);
    rc |= buf_printf(out, "\r\n--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
    mime_sanitize(r->source_ip, field, 64);
    rc |= buf_printf(out, "This is an authentication failure report for an email message\r\n"
                          "received from IP %s on %s.\r\n", field, arrival);

    rc |= buf_printf(out, "\r\n--%s\r\nContent-Type: message/feedback-report\r\n\r\n", boundary);
    rc |= buf_puts(out, "Feedback-Type: auth-failure\r\nVersion: 1\r\nUser-Agent: Ferry\r\nAuth-Failure: dmarc\r\n");
    snprintf(field, sizeof field, "%s; dmarc=fail header.from=%s", r->authserv_id, r->header_from);
    rc |= mime_put_field(out, "Authentication-Results", field);
    const struct dmarc_failure_outcome *o = &r->outcome;
    rc |= mime_put_field(out, "Identity-Alignment", !o->dkim_aligned_pass && !o->spf_aligned_pass ? "dkim, spf"
                                                    : !o->dkim_aligned_pass                       ? "dkim"
                                                    : !o->spf_aligned_pass                        ? "spf"
                                                                                                  : "none");
    if (r->dkim_domain && *r->dkim_domain) {
        rc |= mime_put_field(out, "DKIM-Domain", r->dkim_domain);
        snprintf(field, sizeof field, "@%s", r->dkim_domain);
        rc |= mime_put_field(out, "DKIM-Identity", field);
        rc |= mime_put_field(out, "DKIM-Selector", r->dkim_selector ? r->dkim_selector : "");
    }
    if (r->delivery)
        rc |= mime_put_field(out, "Delivery-Result", r->delivery);
    rc |= buf_puts(out, "Original-Mail-From: <");
    char mf[512];
    mime_sanitize(r->mail_from, mf, sizeof mf);
    rc |= r->redact ? put_redacted(out, salt, mf, strlen(mf)) : buf_puts(out, mf);
    rc |= buf_puts(out, ">\r\n");
    rc |= mime_put_field(out, "Arrival-Date", arrival);
    rc |= mime_put_field(out, "Source-IP", r->source_ip);
    rc |= mime_put_field(out, "Reported-Domain", r->policy_domain);

    rc |= buf_printf(out, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n", boundary);
    bool eight = false;
    for (size_t i = 0; i < hlen; i++)
        eight |= (unsigned char)msg[i] >= 0x80;
    if (eight)
        rc |= buf_puts(out, "Content-Transfer-Encoding: 8bit\r\n");
    rc |= buf_puts(out, "\r\n");
    rc |= r->redact ? put_redacted(out, salt, msg, hlen) : buf_append(out, msg, hlen);
    if (hlen && msg[hlen - 1] != '\n')
        rc |= buf_puts(out, "\r\n");
    rc |= buf_printf(out, "\r\n--%s--\r\n", boundary);
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
        snprintf(err, errlen, "the failure report does not fit in %zu octets", out->max);
        return -1;
    }
    return 0;
}

struct ratelimit *dmarc_failure_limiter(unsigned long long per_hour)
{
    return ratelimit_new(LIMITER_KEYS, (double)(per_hour ? per_hour : 1), 3600.0);
}

bool dmarc_failure_allow(struct ratelimit *rl, const char *dest, double now)
{
    char key[RATELIMIT_KEY_MAX + 1];
    str_copy(key, dest, sizeof key);
    str_lower(key);
    return ratelimit_hit(rl, key, now);
}

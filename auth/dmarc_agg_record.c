/* dmarc_agg_record — see dmarc_agg_record.h. */
#include "auth/dmarc_agg_record.h"
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const agg_period_states[3] = { "open", "frozen", "done" };
const char *const agg_dest_states[5] = { "pending", "claimed", "sent", "too-big", "failed" };

size_t agg_period_key(char *out, size_t outsz, const char *domain, long long begin, bool rows_prefix)
{
    int n = snprintf(out, outsz, "%s%c%016llx", domain, 0, (unsigned long long)begin);
    if (n < 0 || (size_t)n >= outsz)
        return 0;
    if (rows_prefix) {
        if ((size_t)n + 1 >= outsz)
            return 0;
        out[n++] = '\0';
    }
    return (size_t)n;
}

static int put_field(struct buf *b, const char *s)
{
    return buf_puts(b, s) < 0 || buf_append(b, (char[]){ AGG_FS }, 1) < 0 ? -1 : 0;
}

/* The row's identity after the period prefix. Signatures are kept passes first
   (RFC 9990 3.1.3's preference), in the order given otherwise, at most MAX_DKIM. */
int agg_row_key(struct buf *b, const struct dmarc_agg_row *r)
{
    size_t order[DMARC_AGG_MAX_DKIM], n = 0, total = r->ndkim < DMARC_AGG_MAX_DKIM ? r->ndkim : DMARC_AGG_MAX_DKIM;
    for (int pass = 1; pass >= 0; pass--)
        for (size_t i = 0; i < total && n < DMARC_AGG_MAX_DKIM; i++)
            if ((strcmp(r->dkim[i].result, "pass") == 0) == (pass == 1))
                order[n++] = i;
    char num[8];
    snprintf(num, sizeof num, "%zu", n);
    if (put_field(b, r->source_ip) || put_field(b, r->disposition) || put_field(b, r->dkim_aligned) ||
        put_field(b, r->spf_aligned) || put_field(b, r->reason) || put_field(b, r->reason_comment) ||
        put_field(b, r->header_from) || put_field(b, r->envelope_from) || put_field(b, r->envelope_to) ||
        put_field(b, r->spf_domain) || put_field(b, r->spf_scope) || put_field(b, r->spf_domain[0] ? r->spf_result : "") ||
        put_field(b, num))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct dmarc_agg_dkim *d = &r->dkim[order[i]];
        if (put_field(b, d->domain) || put_field(b, d->selector) || put_field(b, d->result))
            return -1;
    }
    return 0;
}

/* Next field of a row key into out; false when missing or too long. */
static bool take(const char **p, const char *end, char *out, size_t outsz)
{
    const char *sep = memchr(*p, AGG_FS, (size_t)(end - *p));
    if (!sep || (size_t)(sep - *p) >= outsz)
        return false;
    str_copyn(out, *p, (size_t)(sep - *p), outsz);
    *p = sep + 1;
    return true;
}

bool agg_row_decode(const char *k, size_t klen, size_t prefix, const void *val, size_t vlen,
                       struct dmarc_agg_row *r)
{
    memset(r, 0, sizeof *r);
    const char *p = k + prefix, *end = k + klen;
    char num[8], cnt[24];
    unsigned long long nd;
    if (!take(&p, end, r->source_ip, sizeof r->source_ip) || !take(&p, end, r->disposition, sizeof r->disposition) ||
        !take(&p, end, r->dkim_aligned, sizeof r->dkim_aligned) ||
        !take(&p, end, r->spf_aligned, sizeof r->spf_aligned) || !take(&p, end, r->reason, sizeof r->reason) ||
        !take(&p, end, r->reason_comment, sizeof r->reason_comment) ||
        !take(&p, end, r->header_from, sizeof r->header_from) ||
        !take(&p, end, r->envelope_from, sizeof r->envelope_from) ||
        !take(&p, end, r->envelope_to, sizeof r->envelope_to) ||
        !take(&p, end, r->spf_domain, sizeof r->spf_domain) || !take(&p, end, r->spf_scope, sizeof r->spf_scope) ||
        !take(&p, end, r->spf_result, sizeof r->spf_result) || !take(&p, end, num, sizeof num) ||
        str_to_u64(num, DMARC_AGG_MAX_DKIM, &nd) < 0)
        return false;
    for (r->ndkim = 0; r->ndkim < nd; r->ndkim++) {
        struct dmarc_agg_dkim *d = &r->dkim[r->ndkim];
        if (!take(&p, end, d->domain, sizeof d->domain) || !take(&p, end, d->selector, sizeof d->selector) ||
            !take(&p, end, d->result, sizeof d->result))
            return false;
    }
    if (p != end || vlen == 0 || vlen >= sizeof cnt)
        return false;
    str_copyn(cnt, val, vlen, sizeof cnt);
    return str_to_u64(cnt, ~0ULL, &r->count) == 0;
}

int agg_period_encode(const struct period *pd, struct buf *b)
{
    const struct dmarc_agg_policy *p = &pd->pol;
    buf_printf(b, "interval %llu\nstate %s\nrid %s\nrows %llu\nunitemised %llu\n", pd->interval,
               agg_period_states[pd->state], pd->rid, pd->nrows, pd->unitemised);
    buf_printf(b, "p %s\nsp %s\nnp %s\nadkim %s\naspf %s\ntesting %s\npsd %s\ndiscovery %s\nfo %s\n", p->p,
               p->sp, p->np, p->adkim, p->aspf, p->testing, p->psd, p->discovery, p->fo);
    for (size_t i = 0; i < p->nrua; i++)
        buf_printf(b, "rua %s\ndest %s %lld\n", p->rua[i], agg_dest_states[pd->dest[i]], pd->claimed_at[i]);
    return b->len >= b->max ? -1 : 0;
}

#define SETSTR(field) (strcmp(key, #field) == 0 && str_copy(p->field, val, sizeof p->field) < sizeof p->field)

bool agg_period_decode(const char *data, size_t len, struct period *pd)
{
    memset(pd, 0, sizeof *pd);
    struct dmarc_agg_policy *p = &pd->pol;
    char line[DMARC_AGG_URI_MAX + 32];
    const char *s = data, *end = data + len;
    size_t ndest = 0;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl || (size_t)(nl - s) >= sizeof line)
            return false;
        str_copyn(line, s, (size_t)(nl - s), sizeof line);
        s = nl + 1;
        char *sp = strchr(line, ' ');
        if (!sp)
            return false;
        *sp = '\0';
        const char *key = line, *val = sp + 1;
        unsigned long long u;
        if (!strcmp(key, "interval") || !strcmp(key, "rows") || !strcmp(key, "unitemised")) {
            if (str_to_u64(val, ~0ULL, &u) < 0)
                return false;
            *(key[0] == 'i' ? &pd->interval : key[0] == 'r' ? &pd->nrows : &pd->unitemised) = u;
        } else if (!strcmp(key, "state")) {
            int i = 0;
            while (i < 3 && strcmp(val, agg_period_states[i]))
                i++;
            if (i == 3)
                return false;
            pd->state = (enum dmarc_period_state)i;
        } else if (!strcmp(key, "rua")) {
            if (p->nrua >= DMARC_AGG_MAX_RUA || str_copy(p->rua[p->nrua], val, DMARC_AGG_URI_MAX) >= DMARC_AGG_URI_MAX)
                return false;
            p->nrua++;
        } else if (!strcmp(key, "dest")) {
            char st[16];
            long long at;
            int i = 0;
            if (ndest >= DMARC_AGG_MAX_RUA || sscanf(val, "%15s %lld", st, &at) != 2)
                return false;
            while (i < 5 && strcmp(st, agg_dest_states[i]))
                i++;
            if (i == 5)
                return false;
            pd->dest[ndest] = (enum dmarc_dest_state)i;
            pd->claimed_at[ndest++] = at;
        } else if (!(strcmp(key, "rid") == 0 && str_copy(pd->rid, val, sizeof pd->rid) < sizeof pd->rid) &&
                   !SETSTR(p) && !SETSTR(sp) && !SETSTR(np) && !SETSTR(adkim) && !SETSTR(aspf) &&
                   !SETSTR(testing) && !SETSTR(psd) && !SETSTR(discovery) && !SETSTR(fo)) {
            return false;
        }
    }
    return ndest == p->nrua && pd->interval > 0;
}

bool agg_split_period_key(const char *k, size_t klen, char *domain, long long *begin)
{
    const char *nul = memchr(k, '\0', klen);
    if (!nul || nul == k || (size_t)(nul - k) >= DMARC_AGG_DOMAIN_MAX || klen - (size_t)(nul - k) - 1 != 16)
        return false;
    char hex[17];
    str_copyn(hex, nul + 1, 16, sizeof hex);
    char *e;
    unsigned long long b = strtoull(hex, &e, 16);
    if (*e)
        return false;
    str_copyn(domain, k, (size_t)(nul - k), DMARC_AGG_DOMAIN_MAX);
    *begin = (long long)b;
    return true;
}
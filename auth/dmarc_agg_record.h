/*
 * dmarc_agg_record — the stored form of the DMARC aggregate store's keys and
 * values (internal to auth/dmarc_agg*.c; dmarc_agg.h is the public contract).
 *
 * A row key is the period prefix (domain NUL begin-in-hex NUL) followed by every
 * reported field, each ended by AGG_FS; its value is the count in decimal. A
 * period record is "key value" lines. Decoders refuse anything they did not
 * write (missing fields, over-long values, unknown keys) so a corrupt record is
 * reported, never half-read.
 */
#ifndef FERRY_AUTH_DMARC_AGG_RECORD_H
#define FERRY_AUTH_DMARC_AGG_RECORD_H

#include "auth/dmarc_agg.h"
#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>

#define AGG_FS '\x1f' /* field separator inside a row key; refused inside fields */

struct period {
    unsigned long long interval;
    enum dmarc_period_state state;
    char rid[DMARC_AGG_RID_MAX];
    unsigned long long nrows, unitemised;
    struct dmarc_agg_policy pol;
    enum dmarc_dest_state dest[DMARC_AGG_MAX_RUA];
    long long claimed_at[DMARC_AGG_MAX_RUA];
};

extern const char *const agg_period_states[3];
extern const char *const agg_dest_states[5];

/* "domain NUL begin" (plus a NUL when rows_prefix: the prefix of its rows). 0 when it does not fit. */
size_t agg_period_key(char *out, size_t outsz, const char *domain, long long begin, bool rows_prefix);
/* Split a period key back; false when it is not one. */
bool agg_split_period_key(const char *k, size_t klen, char *domain, long long *begin);
int agg_row_key(struct buf *b, const struct dmarc_agg_row *r);
bool agg_row_decode(const char *k, size_t klen, size_t prefix, const void *val, size_t vlen, struct dmarc_agg_row *r);
int agg_period_encode(const struct period *pd, struct buf *b);
bool agg_period_decode(const char *data, size_t len, struct period *pd);

#endif

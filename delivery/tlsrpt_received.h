/*
 * tlsrpt_received — TLS reports others sent about our domains (tlsrpt_parse.h),
 * kept in the data_dir Berkeley DB environment as tlsrpt_received.db: one value
 * per (organization-name in lower case, report-id), so a report delivered twice
 * (§5.3: the Report-ID is there to drop duplicates) is stored once, the first.
 *
 * Who calls: the queue process's report run, for each message delivered to a
 * TLS report address (queue/tlsrpt_import.c); `ferryctl tlsrpt import` for a file;
 * the smtp process only calls tlsrpt_received_acceptable, at the end of DATA, so
 * it refuses exactly what the import would (it never opens this store).
 *
 * What is kept: a report whose date range ended at most TLSRPT_RX_KEEP_DAYS ago
 * and does not start more than a day ahead, and of its policies only those
 * about our domains (ours()); a report with none is refused. Older reports are
 * swept by tlsrpt_received_sweep, once per report run. Values are text: a line for the report, one per policy,
 * one per failure detail, tab-separated (the parser leaves no tab or line end
 * in any field).
 */
#ifndef FERRY_TLSRPT_RECEIVED_H
#define FERRY_TLSRPT_RECEIVED_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/tlsrpt_parse.h"

#define TLSRPT_RECEIVED_DB  "tlsrpt_received.db"
#define TLSRPT_RX_KEEP_DAYS 400
#define TLSRPT_RX_SWEEP_MAX 10000       /* reports dropped per sweep; the rest next time */

struct fdb_env;
struct tlsrpt_received;

typedef bool (*tlsrpt_ours_fn)(void *arg, const char *domain);

/* May r be kept (see above)? 0 yes; -1 with err ("it is about example.net,
   not a domain of this server", ...). ours NULL: every domain is ours. */
int  tlsrpt_received_acceptable(const struct tlsrpt_rx_report *r, tlsrpt_ours_fn ours, void *arg, long long now,
                                char *err, size_t errlen);

int  tlsrpt_received_open(struct fdb_env *env, struct tlsrpt_received **out, char *err, size_t errlen);
void tlsrpt_received_close(struct tlsrpt_received *s);

/* A whole message or a bare report file (tlsrpt_rx_from_bytes), checked, then
   its reports stored in one transaction: all or nothing. 0 (*stored new ones,
   *dups already present) or -1 with err. */
int  tlsrpt_received_import(struct tlsrpt_received *s, const char *data, size_t len, tlsrpt_ours_fn ours,
                            void *arg, long long now, size_t *stored, size_t *dups, char *err, size_t errlen);

/* Drop the reports whose range ended more than TLSRPT_RX_KEEP_DAYS before now
   (at most TLSRPT_RX_SWEEP_MAX; *gone counts them). 0 ok, -1 error. */
int  tlsrpt_received_sweep(struct tlsrpt_received *s, long long now, size_t *gone);

/* Each stored report, in key order, with only the policies that were kept and
   the time it was stored; fn returning non-zero stops (returned). */
typedef int (*tlsrpt_received_fn)(const struct tlsrpt_rx_report *r, long long received, void *arg);
int  tlsrpt_received_foreach(struct tlsrpt_received *s, tlsrpt_received_fn fn, void *arg);

#endif

/*
 * dmarc_agg — the DMARC aggregate-report store (RFC 9990), in Berkeley DB.
 *
 * smtpd calls dmarc_agg_add once per DMARC-evaluated message after the commit;
 * the queue process (or `ferryctl dmarc report`) walks dmarc_agg_due, freezes each
 * finished period, sends it and marks each destination. Two B-trees in the
 * caller's environment (lib/db.h):
 *
 *   dmarc_rows.db     (policy domain, period start, every reported field) -> count.
 *                     Messages that agree on every field share one row.
 *   dmarc_periods.db  (policy domain, period start) -> the period: its length, the
 *                     policy as last published in it (RFC 9990 3.1: "note only the
 *                     final configuration"), the rua URIs, the number of rows, and
 *                     its state: open -> frozen (report ID fixed) -> done.
 *
 * Crash safety, and why each order is safe:
 *  - add: the period record is read with a write lock and the row incremented in
 *    one transaction, committed with a synchronous log flush. A crash before the
 *    commit loses that one message's count (as if it had not been recorded); never
 *    half a row. A period that is already frozen takes no more rows: the message
 *    is counted in the next open period instead, so a report never changes after
 *    its ID was chosen, and no counted row is dropped.
 *  - freeze: one transaction turns open into frozen and stores the random report
 *    ID. A crash before: still open, frozen again later (same rows). After: the ID
 *    is fixed, so a report that is rebuilt is byte-for-byte the same report.
 *  - send, per rua destination: (1) dmarc_agg_claim commits pending -> claimed;
 *    (2) the caller builds the mail and commits it into the queue; (3)
 *    dmarc_agg_mark records sent (or too-big/failed). Only a pending destination
 *    can be claimed, so a crash anywhere after (1) - between (1) and (2), or
 *    between (2) and (3) - never leads to a second copy: at-most-once. The price
 *    is that a crash between (1) and (2) loses that one report, which RFC 9990 3.5
 *    allows ("MAY discard data that could not be sent"); a claimed destination
 *    stays "claimed" so the operator can see it.
 *  - when no destination is pending or claimed any more, the period's rows are
 *    deleted and the period becomes done (kept as a tombstone for
 *    dmarc_agg_purge's keep time, so the period can never be reopened).
 *
 * Every string stored is bounded and has control characters replaced by '?';
 * enumerated values are checked against RFC 9990's schema so a report built from
 * the store always validates. A period holds at most DMARC_AGG_MAX_ROWS rows;
 * messages beyond are counted as "unitemised" and said so in the report.
 * Errors: -1 with a one-sentence reason in err (or the handle's last error).
 */
#ifndef FERRY_DMARC_AGG_H
#define FERRY_DMARC_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "lib/db.h"

#define DMARC_AGG_DOMAIN_MAX 256     /* a domain name, NUL included */
#define DMARC_AGG_MAX_DKIM   16      /* signatures kept per row (RFC 9990 3.1.3 says <= 100) */
#define DMARC_AGG_MAX_RUA    8       /* rua URIs kept per policy */
#define DMARC_AGG_URI_MAX    512
#define DMARC_AGG_MAX_ROWS   50000   /* distinct rows per period */
#define DMARC_AGG_RID_MAX    64

/* The policy as published (RFC 9989 tags), with RFC defaults filled in by the
   evaluator. Strings, so they map one-to-one onto the XML. */
struct dmarc_agg_policy {
    char p[12];          /* none | quarantine | reject */
    char sp[12];         /* "" when the record had none */
    char np[12];         /* "" when the record had none */
    char adkim[2];       /* r | s */
    char aspf[2];        /* r | s */
    char testing[2];     /* n | y */
    char psd[2];         /* n | y | u */
    char discovery[10];  /* psl | treewalk | "" */
    char fo[16];         /* as published ("0", "1:d", ...); "" when absent */
    char rua[DMARC_AGG_MAX_RUA][DMARC_AGG_URI_MAX];   /* verified URIs only */
    size_t nrua;
};

struct dmarc_agg_dkim {
    char domain[DMARC_AGG_DOMAIN_MAX];
    char selector[DMARC_AGG_DOMAIN_MAX];
    char result[12];     /* RFC 8601 2.7.1: none pass fail policy neutral temperror permerror */
};

/* One evaluated message (or, read back, one row with its count). */
struct dmarc_agg_row {
    char source_ip[64];                 /* textual IPv4 or IPv6 */
    char disposition[12];               /* none | pass | quarantine | reject */
    char dkim_aligned[8];               /* pass | fail (policy_evaluated/dkim) */
    char spf_aligned[8];                /* pass | fail (policy_evaluated/spf) */
    char reason[20];                    /* override type or "" (RFC 9990 3.1.6) */
    char reason_comment[128];
    struct dmarc_agg_dkim dkim[DMARC_AGG_MAX_DKIM];
    size_t ndkim;                       /* more given are dropped after sorting passes first */
    char spf_domain[DMARC_AGG_DOMAIN_MAX];  /* "" when SPF was not evaluated */
    char spf_scope[8];                  /* mfrom | "" */
    char spf_result[12];                /* RFC 8601 2.7.2 */
    char header_from[DMARC_AGG_DOMAIN_MAX];
    char envelope_from[DMARC_AGG_DOMAIN_MAX];   /* "" for the null reverse-path */
    char envelope_to[DMARC_AGG_DOMAIN_MAX];     /* "" to leave it out */
    unsigned long long count;           /* read back only */
};

enum dmarc_dest_state { DMARC_DEST_PENDING, DMARC_DEST_CLAIMED, DMARC_DEST_SENT, DMARC_DEST_TOO_BIG,
                        DMARC_DEST_FAILED };
enum dmarc_period_state { DMARC_PERIOD_OPEN, DMARC_PERIOD_FROZEN, DMARC_PERIOD_DONE };

/* One period, as loaded for building its report. */
struct dmarc_agg_report {
    char domain[DMARC_AGG_DOMAIN_MAX];
    long long begin, end;
    enum dmarc_period_state state;
    char report_id[DMARC_AGG_RID_MAX];  /* "" while open */
    struct dmarc_agg_policy policy;
    enum dmarc_dest_state dest[DMARC_AGG_MAX_RUA];      /* one per policy.rua */
    unsigned long long unitemised;      /* messages not itemised (row limit) */
    struct dmarc_agg_row *rows;         /* sorted by key: source IP first */
    size_t nrows;
};

struct dmarc_agg_period_id {
    char domain[DMARC_AGG_DOMAIN_MAX];
    long long begin;
};

struct dmarc_agg;

int  dmarc_agg_open(struct fdb_env *env, struct dmarc_agg **out, char *err, size_t errlen);
void dmarc_agg_close(struct dmarc_agg *a);
const char *dmarc_agg_error(const struct dmarc_agg *a);

/* Count one message for policy domain at time now; interval (seconds, divides a
   day) fixes the period. 0 counted; 1 not recorded (policy has no rua, or the row
   limit was reached and it was counted as unitemised); -1 error (invalid value:
   the field is named). Retries deadlocks itself. */
int  dmarc_agg_add(struct dmarc_agg *a, const char *domain, const struct dmarc_agg_policy *pol,
                   const struct dmarc_agg_row *row, time_t now, unsigned interval);

/* Periods that ended by now and are not done, oldest first. *out malloc'd. */
int  dmarc_agg_due(struct dmarc_agg *a, time_t now, struct dmarc_agg_period_id **out, size_t *n);

/* Fix the report ID of a finished period (idempotent: a frozen period keeps its
   ID) and load it. A period that has no destination becomes done at once.
   0 ok, 1 no such period or not finished by now, -1 error. Free with _report_free. */
int  dmarc_agg_freeze(struct dmarc_agg *a, const char *domain, long long begin, time_t now,
                      struct dmarc_agg_report *out);
/* Load without changing anything (ferryctl, tests). 0, 1 absent, -1. */
int  dmarc_agg_load(struct dmarc_agg *a, const char *domain, long long begin, struct dmarc_agg_report *out);
void dmarc_agg_report_free(struct dmarc_agg_report *r);

/* pending -> claimed for destination i. 0 claimed (go and queue it), 1 not
   pending (someone already did: skip), -1 error. */
int  dmarc_agg_claim(struct dmarc_agg *a, const char *domain, long long begin, size_t i);
/* claimed -> sent, too-big or failed. The period is done (rows deleted) when no
   destination is pending or claimed. 0, 1 not claimed, -1. */
int  dmarc_agg_mark(struct dmarc_agg *a, const char *domain, long long begin, size_t i,
                    enum dmarc_dest_state st);

/* Forget done periods that ended more than keep seconds before now. Returns how
   many, or -1. */
long dmarc_agg_purge(struct dmarc_agg *a, time_t now, long long keep);

const char *dmarc_dest_state_name(enum dmarc_dest_state st);

#endif

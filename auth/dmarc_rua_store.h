/*
 * dmarc_rua_store — received aggregate reports (dmarc_rua_parse.h), kept in the
 * Berkeley DB environment as dmarc_received.db: one value per (reporter org,
 * report ID), so a report delivered twice is stored once (RFC 9990 3.5.4 leaves
 * duplicates to the receiver; we keep the first and skip the rest).
 *
 * dmarc_rua_import is what the daemon calls for a message that arrived at
 * dmarc_reports_address, and `ferryctl dmarc import` for a file: every report of
 * the message is parsed first and stored in one transaction, so a message with
 * one bad attachment stores nothing. `ferryctl dmarc summary` reads with
 * dmarc_rua_store_foreach.
 */
#ifndef FERRY_DMARC_RUA_STORE_H
#define FERRY_DMARC_RUA_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/dmarc_rua_parse.h"
#include "lib/db.h"

struct dmarc_rua_store;

int  dmarc_rua_store_open(struct fdb_env *env, struct dmarc_rua_store **out, char *err, size_t errlen);
void dmarc_rua_store_close(struct dmarc_rua_store *s);

/* Store reports in one transaction. *stored and *dups count them. 0 or -1. */
int  dmarc_rua_store_put(struct dmarc_rua_store *s, const struct dmarc_rua_report *r, size_t n, size_t *stored,
                         size_t *dups, char *err, size_t errlen);

/* A whole message, or a bare report file (XML, gzip or zip), parsed then stored.
   0 (see *stored, *dups) or -1 with err: nothing was stored. */
int  dmarc_rua_import(struct dmarc_rua_store *s, const char *data, size_t len, size_t *stored, size_t *dups,
                      char *err, size_t errlen);
/* The same, keeping only the reports whose policy domain ours() accepts (the
   daemon: mail to the reports address can come from anyone, about anything).
   Reports about other domains are dropped; -1 (err) when none is left. */
int  dmarc_rua_import_for(struct dmarc_rua_store *s, const char *data, size_t len,
                          bool (*ours)(void *arg, const char *domain), void *arg, size_t *stored, size_t *dups,
                          char *err, size_t errlen);

/* Each stored report in key order; fn returning non-zero stops (returned). */
typedef int (*dmarc_rua_visit_fn)(const struct dmarc_rua_report *r, void *arg);
int  dmarc_rua_store_foreach(struct dmarc_rua_store *s, dmarc_rua_visit_fn fn, void *arg);

#endif

/*
 * smtp_policy — what the smtp process does with a message's content between the
 * first octet of DATA/BDAT and the commit: DKIM verification (RFC 6376) with its
 * Authentication-Results field (RFC 8601), DKIM signing for mail from our own
 * users, and the removal of forged Authentication-Results fields.
 *
 * The session feeds every content octet (after dot-unstuffing, without the
 * Received: field it wrote itself) through smtp_policy_content, which hands back,
 * through the write callback, the octets to spool: the header section is held
 * back (at most POLICY_HEADER_MAX octets) until its end is seen, then written
 * without any Authentication-Results field that claims our authserv-id (RFC 8601
 * §5: a receiver must not trust, and should remove, results it did not make);
 * the body passes straight through. The verifier sees the header section as it
 * arrived, so a signature is judged on what its signer signed.
 *
 * smtp_policy_finish completes the work — key lookups are asynchronous, over the
 * smtp process's DNS client — and calls done exactly once, possibly before it
 * returns, with the fields to prepend to the spooled message (DKIM-Signature
 * fields first, then Authentication-Results; CRLF line ends). Freeing the policy
 * before then cancels the lookups and done is never called.
 */
#ifndef FERRY_SMTP_POLICY_H
#define FERRY_SMTP_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

#define POLICY_HEADER_MAX (1024 * 1024)

struct smtp_server;
struct smtp_policy;

struct smtp_policy_ctx {
    bool verify;                  /* verify DKIM and write Authentication-Results */
    bool sign;                    /* sign with the keys of the From: domain (or dkim_signing_domain) */
    bool add_missing;             /* submission (RFC 6409 8.2, 8.3): add Date: and Message-ID: if absent */
    const char *hostname;         /* for a Message-ID we make */
    const char *authserv_id;      /* our name in Authentication-Results */
    const char *other_results;    /* further method results for A-R, e.g. "spf=pass smtp.mailfrom=..."; NULL */
    const char *extra_fields;     /* whole fields to prepend after A-R (Received-SPF), CRLF-ended; NULL */
    const char *log_id;           /* the queue ID, for log lines */
};

typedef void (*smtp_policy_write_fn)(void *arg, const char *p, size_t n);
typedef void (*smtp_policy_done_fn)(void *arg, const char *prepend, size_t len);

struct smtp_policy *smtp_policy_new(struct smtp_server *srv, const struct smtp_policy_ctx *ctx);
void smtp_policy_content(struct smtp_policy *p, const char *in, size_t n, smtp_policy_write_fn w, void *arg);
/* The content is complete: a message that is all header is written out now. */
void smtp_policy_content_end(struct smtp_policy *p, smtp_policy_write_fn w, void *arg);
/* Why the message must be refused ("552 5.3.4 ..."), or NULL. Valid after
   smtp_policy_content_end. */
const char *smtp_policy_refusal(const struct smtp_policy *p);
void smtp_policy_finish(struct smtp_policy *p, smtp_policy_done_fn done, void *arg);
void smtp_policy_free(struct smtp_policy *p);

/* Sign a whole message held in memory (local submissions) with the keys of its
   From: domain (or dkim_signing_domain); the DKIM-Signature fields are appended to
   fields. Returns the number of signatures (0: no keys, or signing failed, logged). */
int smtp_policy_sign_whole(struct smtp_server *srv, const char *msg, size_t len, struct buf *fields,
                           const char *log_id);

/* Pure helpers, exposed for unit tests. */
/* The domain of the single From: field's address in a header block; -1 when there
   is none, several From fields, or no usable address. */
int  policy_from_domain(const char *hdr, size_t len, char *out, size_t outsz);
/* The whole address (local@domain) of that From: field. */
int  policy_from_address(const char *hdr, size_t len, char *out, size_t outsz);
/* After the header section was seen: its single From: address, or "". */
const char *smtp_policy_header_from(const struct smtp_policy *p);
/* Copy hdr to out without Authentication-Results fields whose authserv-id is
   authserv_id (ASCII case-insensitive). Returns how many were removed, -1 when out
   is full. */
int  policy_strip_forged_ar(const char *hdr, size_t len, const char *authserv_id, struct buf *out);

#endif

/*
 * smtp_dkim_dmarc (functions smtp_policy_*) — what the smtp process does with a
 * message's content between the first octet of DATA/BDAT and the commit: DKIM
 * verification (RFC 6376) and then DMARC (RFC 9989) with their Authentication-Results field (RFC 8601), DKIM
 * signing for mail from our own users, and the removal of forged
 * Authentication-Results fields.
 *
 * For strangers on port 25 the ARC chain (RFC 8617) is verified too, streaming
 * beside DKIM; its arc= result goes into the same Authentication-Results field.
 * A message that will be forwarded (ctx.seal) is then sealed with the next ARC set,
 * whose AAR is that field's value; the set goes on top of the fields prepended.
 * DMARC runs after the DKIM results are in, with the SPF result the session got
 * at MAIL FROM; the Domain Owner's disposition is then limited by local policy
 * (dmarc_trusted_forwarders, arc_trusted_sealers, dmarc_enforce), and every such
 * override is kept with its RFC 9990 reason. A quarantined message gets an X-Ferry-Quarantine field; the
 * session refuses a rejected one and marks a quarantined one in its envelope.
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
struct dmarc_outcome;
struct dkim_sig_result;

struct smtp_policy_ctx {
    bool verify;                  /* verify DKIM and write Authentication-Results */
    bool sign;                    /* sign with the keys of the From: domain (or dkim_signing_domain) */
    bool add_missing;             /* submission (RFC 6409 8.2, 8.3): add Date: and Message-ID: if absent */
    const char *hostname;         /* for a Message-ID we make */
    const char *authserv_id;      /* our name in Authentication-Results */
    const char *other_results;    /* further method results for A-R, e.g. "spf=pass smtp.mailfrom=..."; NULL */
    const char *extra_fields;     /* whole fields to prepend after A-R (Received-SPF), CRLF-ended; NULL */
    const char *log_id;           /* the queue ID, for log lines */
    /* DMARC (RFC 9989), for strangers on smtp listeners; needs verify. */
    bool dmarc;
    int spf;                      /* enum spf_result of the MAIL FROM identity */
    const char *spf_domain;       /* the domain SPF checked ("" when SPF did not run) */
    bool trusted_forwarder;       /* evaluated and recorded, never enforced */
    bool keep_header;             /* keep the header section as it arrived (failure reports) */
    bool arc;                     /* verify the ARC chain (RFC 8617) too; needs verify */
    const char *remote_ip;        /* the client's address, for arc= smtp.remote-ip; NULL */
    bool seal;                    /* forwarded: add the next ARC set (smtpd/smtp_arc_seal.h); needs arc */
};

/* What DMARC said and what Ferry did about it (valid once done was called). */
struct policy_dmarc {
    bool evaluated;
    int result;                   /* enum dmarc_result */
    int requested;                /* enum dmarc_policy: the Domain Owner's, after t=y */
    int applied;                  /* enum dmarc_policy: what Ferry does */
    char override[24];            /* "" or an RFC 9990 reason: trusted_forwarder, local_policy */
    char override_comment[128];   /* "" or why, e.g. "arc sealer fwd.example (dmarc=pass)" */
    char arc_vouch[128];          /* "" or "arc sealer D (M=pass)": a trusted sealer's passing
                                     chain says the message authenticated there (whatever p=) */
    char header_from[254];
    char summary[400];            /* "dmarc=fail header.from=D policy=reject disposition=..." */
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
/* "arc=pass arc.oldest-pass=N arc.sealer=D", "arc=fail", "arc=none" for the
   message's log line; "" when ARC did not run. */
const char *smtp_policy_arc_summary(const struct smtp_policy *p);
void smtp_policy_finish(struct smtp_policy *p, smtp_policy_done_fn done, void *arg);
/* Why the message must wait ("451 ..."): it is to be DKIM-signed and the key
   process could not sign it. Valid once done was called. */
const char *smtp_policy_deferral(const struct smtp_policy *p);
/* Will DMARC be evaluated for this message (asked for, and DKIM is verified)? */
bool smtp_policy_runs_dmarc(const struct smtp_policy *p);
/* The DMARC verdict; ->evaluated is false when DMARC did not run. */
const struct policy_dmarc *smtp_policy_dmarc(const struct smtp_policy *p);
/* The header section as it arrived (keep_header), len 0 when not kept. */
const char *smtp_policy_arrived_header(const struct smtp_policy *p, size_t *len);
/* The DKIM results DMARC saw (n 0 when none or DMARC did not run). */
const struct dkim_sig_result *smtp_policy_dkim_results(const struct smtp_policy *p, size_t *n);
/* The whole evaluation, for reports; NULL when DMARC did not run. */
const struct dmarc_outcome *smtp_policy_dmarc_outcome(const struct smtp_policy *p);
void smtp_policy_free(struct smtp_policy *p);

/* Sign a whole message held in memory (local submissions) with the keys of its
   From: domain (or dkim_signing_domain); the DKIM-Signature fields are appended to
   fields. Returns the number of signatures: 0 no keys, -1 keys exist but signing
   failed (logged; the message should wait). */
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

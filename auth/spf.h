/*
 * spf — RFC 7208 check_host(): does this domain designate this client address?
 *
 * Asynchronous: spf_check_start() builds an evaluation (a state machine that owns
 * its record copies and at most one outstanding DNS query) and returns; each DNS
 * answer advances it; the completion callback gets the outcome exactly once. The
 * callback runs inside spf_check_start() (which then returns NULL) only when no
 * DNS is needed (a malformed identity: result none) or memory runs out
 * (temperror); otherwise it runs from a DNS callback and the evaluation frees
 * itself after it returns. spf_check_cancel() stops an evaluation silently.
 *
 * spf_check_sync() is the blocking form for ferryctl (private event loop).
 *
 * Limits (§4.6.4): 10 DNS-querying terms (include a mx ptr exists redirect), 2
 * void lookups, 10 MX names (more: permerror), first 10 PTR names, a total time
 * limit (temperror). Caller identities are copied; none of the callers' pointers
 * are kept.
 */
#ifndef FERRY_SPF_H
#define FERRY_SPF_H

#include "auth/auth_dns.h"
#include "auth/spf_record.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum spf_identity {
    SPF_ID_MAILFROM,    /* §2.4: <domain> from MAIL FROM (postmaster@HELO for <>) */
    SPF_ID_HELO         /* §2.3: <domain> is the HELO/EHLO name */
};

struct spf_query {
    int family;             /* AF_INET or AF_INET6 (IPv4-mapped IPv6 is checked as IPv4) */
    uint8_t ip[16];
    const char *sender;     /* MAIL FROM address without <>; "" or NULL for the null sender */
    const char *helo;       /* HELO/EHLO argument */
    const char *receiver;   /* %{r}; NULL means "unknown" */
    enum spf_identity identity;
    time_t now;             /* %{t}; 0 means time(NULL) */
    unsigned time_limit;    /* seconds for the whole evaluation; 0 means 20 */
};

#define SPF_TEXT_MAX 512

struct spf_outcome {
    enum spf_result result;
    enum spf_identity identity;
    char client_ip[48];                 /* text form of the address checked */
    char sender[SPF_TEXT_MAX];          /* the <sender> used (postmaster@ filled in) */
    char helo[256];
    char domain[256];                   /* the <domain> checked */
    char mechanism[SPF_TEXT_MAX];       /* the term that decided, "" for the default */
    char record[SPF_RECORD_MAX + 1];    /* the record that decided (after redirects) */
    char explanation[SPF_TEXT_MAX];     /* fail only: from exp=, or the default */
    char reason[SPF_TEXT_MAX];          /* permerror/temperror/none: why */
    unsigned dns_terms, void_lookups;
};

typedef void (*spf_done_cb)(const struct spf_outcome *out, void *arg);

struct spf_check;

struct spf_check *spf_check_start(const struct auth_resolver *r, const struct spf_query *q, spf_done_cb cb,
                                  void *arg);
void spf_check_cancel(struct spf_check *c);

/* Blocking. 0 with *out filled; -1 when the event loop could not be set up. */
int spf_check_sync(const struct dns_config *cfg, const struct spf_query *q, struct spf_outcome *out);

/* RFC 8601 method result, e.g. "spf=pass smtp.mailfrom=user@example.com"
   (smtp.helo=NAME for the HELO identity). Returns the length, or -1 if it did not fit. */
int spf_format_auth_results(const struct spf_outcome *o, char *out, size_t outsz);
/* RFC 7208 §9.1 Received-SPF field body (no field name, unfolded):
   result (comment) key=value; ... -1 if it did not fit. */
int spf_format_received_spf(const struct spf_outcome *o, const char *receiver, char *out, size_t outsz);

#endif

/*
 * dmp — Designated Mailers Protocol (draft-fecyk-dmp-02, clarified in
 * /work/shared/specs/DMP.md; our decisions in RFC-NOTES.md "DMP").
 *
 * Given the client address, the MAIL FROM domain and the HELO name, walks the
 * draft's RECOMMENDED flowchart (§5.1): the address lookup
 * TXT <rev-addr>.<in-addr|ip6>._smtp-client.<domain>, the participant lookup
 * TXT _smtp-client.<domain> when the first says nothing, then the same two for the
 * HELO name. Outcomes: pass (250 verified), none (250, not verified: the domain
 * does not take part and non-participants are accepted), deny (550), temperror (451).
 *
 * Asynchronous like spf: dmp_check_start() returns an evaluation that owns at most
 * one DNS query; the callback runs exactly once, inside start (which then returns
 * NULL) only when no lookup is needed or memory runs out. Temporary DNS answers are
 * retried (the draft: "SHOULD attempt the lookup more than once") before temperror.
 * Bypass (relay networks, AUTH) is the caller's decision: it simply does not call.
 */
#ifndef FERRY_DMP_H
#define FERRY_DMP_H

#include "auth/auth_dns.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dmp_result {
    DMP_PASS,        /* a dmp=allow record designates the client: 250 */
    DMP_NONE,        /* not verified, accepted (non-participant, option A): 250 */
    DMP_DENY,        /* 550 */
    DMP_TEMPERROR    /* SERVFAIL or timeout: 451 */
};

enum dmp_tier {
    DMP_TIER_LOCAL,     /* no lookup: no domain, or "localhost" */
    DMP_TIER_DOMAIN,    /* decided by the MAIL FROM domain */
    DMP_TIER_HELO       /* decided by the HELO/EHLO name */
};

struct dmp_query {
    int family;                  /* AF_INET / AF_INET6 (mapped IPv4 is IPv4) */
    uint8_t ip[16];
    const char *sender;          /* MAIL FROM address without <>; "" or NULL for <> */
    const char *helo;            /* HELO/EHLO name (NULL/"" when none was given) */
    bool accept_nonparticipant;  /* the draft's option A */
    bool allow_helo;             /* the draft's option H */
    unsigned tries;              /* attempts per lookup on a temporary answer; 0 means 2 */
};

struct dmp_outcome {
    enum dmp_result result;
    enum dmp_tier tier;
    int smtp_code;               /* 250, 451 or 550 */
    char client_ip[48];
    char name[256];              /* the domain or HELO name that decided */
    char reason[512];            /* one sentence, like the draft's reply texts */
    char trail[1024];            /* the lookups made and what each said */
};

typedef void (*dmp_done_cb)(const struct dmp_outcome *out, void *arg);
struct dmp_check;

struct dmp_check *dmp_check_start(const struct auth_resolver *r, const struct dmp_query *q, dmp_done_cb cb,
                                  void *arg);
void dmp_check_cancel(struct dmp_check *c);
/* Blocking form for ferryctl. 0 with *out filled; -1 when no event loop could be set up. */
int  dmp_check_sync(const struct dns_config *cfg, const struct dmp_query *q, struct dmp_outcome *out);

const char *dmp_result_name(enum dmp_result r);   /* "pass", "none", "deny", "temperror" */

/* <rev-addr>.<in-addr|ip6>._smtp-client.<domain> (no final dot). Pure. 0, or -1
   when the name would exceed 253 octets. */
int dmp_address_name(const char *domain, int family, const uint8_t ip[16], char *out, size_t outsz);
/* The zone-file line that designates ip for domain:
   "<name>. IN TXT \"dmp=allow\"". ip is text. 0, -1 on a bad address or name. */
int dmp_record_text(const char *domain, const char *ip, char *out, size_t outsz);

/* What one TXT RRset says (pure; the records' texts): */
enum dmp_txt { DMP_TXT_ALLOW, DMP_TXT_DENY, DMP_TXT_INVALID };
enum dmp_txt dmp_classify_address(const struct dns_answer *a);
bool dmp_is_participant(const struct dns_answer *a);

#endif

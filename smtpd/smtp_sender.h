/*
 * smtp_sender — "may this client send mail for this domain?", asked at MAIL FROM
 * of strangers on smtp listeners: SPF (RFC 7208) first, then DMP
 * (draft-fecyk-dmp-02) as configured, combined into one verdict.
 *
 * The session calls smtp_sender_check_start and pauses reading; done is called
 * exactly once (possibly before start returns) unless the check is cancelled
 * first. The verdict says what to answer now (accept, or a reply), what to answer
 * at the end of data instead (spf_fail_action = data, so DMARC can decide), and
 * carries the strings for the message: the spf= method result for
 * Authentication-Results and the Received-SPF field. Authenticated clients and
 * relay_networks are exempt: the caller does not call.
 *
 * Decisions (RFC 7208 §8, the policy, RFC-NOTES.md): fail → 550 5.7.23
 * (or at end of data), temperror → 451 4.7.24, permerror → 550 5.7.24 or accept,
 * softfail/neutral/none/pass → accept. DMP decides only when SPF said none (or
 * always, with dmp_precedence = dmp): deny → 550 5.7.1, temperror → 451 4.7.1.
 */
#ifndef FERRY_SMTP_SENDER_H
#define FERRY_SMTP_SENDER_H

#include <stdbool.h>
#include <sys/socket.h>

#include "auth/spf.h"

struct smtp_server;
struct smtp_sender_check;

struct sender_verdict {
    char reply[600];            /* "" to accept now; else the full reply line */
    char data_reply[600];       /* "" or the reply to give at the end of DATA */
    char auth_results[700];     /* "spf=... smtp.mailfrom=..." ("" when SPF was not run) */
    char received_spf[1400];    /* Received-SPF field body ("" when off) */
    /* The MAIL FROM identity's result, for DMARC (RFC 9989 4.4): spf_domain is the
       domain checked (the HELO name for the null reverse path); "" when SPF did not
       run for it, and spf is then SPF_NONE. */
    enum spf_result spf;
    char spf_domain[256];
};

typedef void (*sender_done_fn)(void *arg, const struct sender_verdict *v);

/* sender: the reverse-path without <> ("" for the null sender). */
struct smtp_sender_check *smtp_sender_check_start(struct smtp_server *srv, const struct sockaddr *client,
                                                  const char *helo, const char *sender, const char *log_id,
                                                  sender_done_fn done, void *arg);
void smtp_sender_check_cancel(struct smtp_sender_check *c);

#endif

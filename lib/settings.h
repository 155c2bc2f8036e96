/*
 * settings — Ferry's configuration: every key, its type, default and bounds.
 *
 * settings_load reads a file through config.c's schema machinery and then derives
 * what the processes use directly (listen addresses as sockaddrs, relay networks
 * as CIDR blocks, the hostname from the system when none is set). Every key here
 * is documented, with the same default, in etc/ferry.conf; tests/unit/test_config.c
 * checks the two agree. Errors read "FILE:LINE: message".
 */
#ifndef FERRY_SETTINGS_H
#define FERRY_SETTINGS_H

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

#include "lib/config.h"
#include "lib/dns.h"
#include "lib/netaddr.h"

#define SETTINGS_MAX_LISTEN 16

enum listen_kind { LISTEN_SMTP, LISTEN_SUBMISSION, LISTEN_SMTPS };
enum local_recipients_mode { RCPT_KNOWN, RCPT_ANY };
enum log_dest { LOGDEST_SYSLOG, LOGDEST_STDERR };
enum bare_newline_mode { BARE_NL_REJECT, BARE_NL_NORMALIZE };
enum spf_action { SPF_ACTION_REJECT, SPF_ACTION_DATA, SPF_ACTION_ACCEPT };
enum dmp_check_mode { DMP_CHECK_OFF, DMP_CHECK_FALLBACK, DMP_CHECK_ALWAYS };
enum dmp_precedence { DMP_PRECEDENCE_SPF, DMP_PRECEDENCE_DMP };
/* dmarc_enforce: act on reject and quarantine; on quarantine only (a reject is
   quarantined); or on neither (evaluate, record, report). */
enum dmarc_enforce_mode { DMARC_ENFORCE_YES, DMARC_ENFORCE_QUARANTINE_ONLY, DMARC_ENFORCE_NO };
/* arc_seal_algorithm: an ARC set has one signature per field, so one key seals. */
enum arc_seal_algo { ARC_SEAL_RSA, ARC_SEAL_ED25519 };
/* Orders match delivery/mx.h (enum mx_family) and delivery/tls_policy.h. */
enum smtp_family_setting { SMTP_FAMILY_ANY, SMTP_FAMILY_IPV4, SMTP_FAMILY_IPV6 };
enum relayhost_tls_setting { RELAYHOST_TLS_STARTTLS, RELAYHOST_TLS_IMPLICIT, RELAYHOST_TLS_NONE };
enum mailbox_format { MAILBOX_MAILDIR, MAILBOX_MBOX };
enum mailbox_owner { MAILBOX_OWNER_FERRY, MAILBOX_OWNER_SYSTEM };
enum pull_mode_setting { PULL_MODE_OFF, PULL_MODE_ON };
/* What an unclassified peer that did not declare DMTP gets (draft -03 §3.8). */
enum pull_legacy_setting { PULL_LEGACY_GREYLIST, PULL_LEGACY_ACCEPT, PULL_LEGACY_REJECT };

struct listen_addr {
    enum listen_kind kind;
    struct sockaddr_storage sa;
    socklen_t salen;
    char text[96];               /* as written, for logs */
    char trace_dir[PATH_MAX];    /* "trace=DIR": session transcripts go there; "" off */
};

struct ferry_config {
    char path[PATH_MAX];         /* the file it came from */

    /* as read (see etc/ferry.conf for each) */
    char hostname[256];
    struct conf_list listen;
    char spool_dir[PATH_MAX];
    char data_dir[PATH_MAX];
    char auth_dir[PATH_MAX];        /* "": <data_dir>-auth (lib/privsep.h) */
    char queue_data_dir[PATH_MAX];  /* "": <data_dir>-queue (lib/privsep.h) */
    char mail_dir[PATH_MAX];
    char pid_file[PATH_MAX];
    struct conf_list local_domains;
    int local_recipients;        /* enum local_recipients_mode */
    struct conf_list relay_networks;
    struct conf_list resolver;
    char user[64];               /* the smtp process's (lib/privsep.h) */
    char queue_user[64];         /* the queue process's; "" see privsep_queue_user */
    char tls_cert[PATH_MAX];
    char tls_key[PATH_MAX];
    int tls_min_version;         /* enum tls_min */
    char tls_ciphers[256];
    int log_level;               /* enum log_level */
    int log;                     /* enum log_dest */
    unsigned long long message_size_limit;
    unsigned long long max_recipients;
    unsigned long long smtp_max_sessions;          /* sessions on smtp listeners */
    unsigned long long submission_max_sessions;    /* sessions on submission and smtps listeners */
    unsigned long long max_connections_per_ip;     /* per client address, within each of those */
    unsigned long long smtp_junk_command_limit;    /* commands without a completed transaction */
    unsigned long long smtp_idle_session_limit;    /* seconds without a completed transaction */
    unsigned long long smtp_park_above;            /* active sessions before idle ones are parked; 0: auto */
    unsigned long long smtp_timeout;
    unsigned long long data_timeout;
    unsigned long long max_errors;
    unsigned long long dns_timeout;
    unsigned long long dns_rounds;
    unsigned long long queue_scan_interval;
    unsigned long long retry_min;
    unsigned long long retry_max;
    unsigned long long queue_lifetime;
    unsigned long long delay_warning_time;      /* 0: no delay warnings */
    /* remote delivery */
    char relayhost[320];
    int relayhost_tls;           /* enum relayhost_tls_setting */
    char relayhost_auth_file[PATH_MAX];
    int smtp_address_family;     /* enum smtp_family_setting */
    char smtp_source_ipv4[64];
    char smtp_source_ipv6[64];
    unsigned long long smtp_port;
    int smtp_tls_level;          /* enum tls_level (delivery/tls_policy.h) */
    char smtp_tls_policy[PATH_MAX];
    char smtp_tls_ca_file[PATH_MAX];
    bool mta_sts;                /* discover and apply MTA-STS policies (RFC 8461) */
    char mta_sts_test_policy_addr[64];   /* tests only: where every mta-sts.DOMAIN is */
    bool tlsrpt;                 /* count outbound TLS outcomes and send TLS-RPT reports (RFC 8460) */
    struct conf_list tlsrpt_exclude;     /* policy domains never counted nor reported */
    struct conf_list tlsrpt_reports_address;    /* derived: tlsrpt@ each local domain */
    unsigned long long smtp_dest_concurrency;
    unsigned long long smtp_total_concurrency;
    unsigned long long smtp_dest_rate;           /* messages per second per destination; 0: no limit */
    unsigned long long smtp_connect_timeout;
    struct conf_list relay_domains;
    int bare_newlines;           /* enum bare_newline_mode */
    unsigned long long max_connection_rate;     /* per client IP per minute; 0: no limit */
    bool relay_networks_limit_exempt;           /* relay_networks skip the two per-IP limits */
    unsigned long long greeting_delay;
    unsigned long long trace_max_data;
    bool auth_plaintext_loopback;
    unsigned long long auth_failure_delay;
    unsigned long long auth_max_failures;       /* within auth_lockout, then locked out */
    unsigned long long auth_lockout;
    bool dkim_verify;
    char dkim_key_dir[PATH_MAX];
    char dkim_signing_domain[256];
    struct conf_list trusted_users;  /* local users who may set any sender (with root and `user`) */
    unsigned long long dkim_max_signatures;
    int dkim_body_length;        /* l= leaving body octets unsigned: 0 accept (flagged), 1 policy */
    char authserv_id[256];       /* derived: the hostname when not set */
    bool strict_envelopes;       /* refuse MAIL FROM:a@b without angle brackets (501) */
    bool spf_check;
    int spf_fail_action;         /* enum spf_action */
    int spf_permerror_action;    /* enum spf_action (reject or accept) */
    bool spf_received_header;
    int dmp_check;               /* enum dmp_check_mode */
    int dmp_precedence;          /* enum dmp_precedence */
    bool dmarc_check;            /* evaluate DMARC for strangers on smtp listeners */
    int dmarc_enforce;           /* enum dmarc_enforce_mode */
    struct conf_list dmarc_trusted_forwarders;  /* CIDRs: evaluated and recorded, never enforced */
    struct conf_list arc_trusted_sealers;       /* domains whose passing ARC chain overrides a DMARC fail */
    bool arc_seal;               /* seal port-25 mail we forward to remote destinations (RFC 8617 5.1) */
    char arc_seal_domain[256];   /* derived: dkim_signing_domain, else the first local domain */
    int arc_seal_algorithm;      /* enum arc_seal_algo: which of the domain's active keys seals */
    int mailbox_format;          /* enum mailbox_format */
    struct conf_list mailbox_format_domains;    /* "DOMAIN:maildir|mbox" */
    char mbox_dir[PATH_MAX];     /* "": mail_dir */
    char recipient_delimiter[16];
    char alias_file[PATH_MAX];
    char virtual_map[PATH_MAX];
    char pipe_user[64];
    unsigned long long pipe_timeout;
    char mailbox_transport[PATH_MAX];   /* "" or lmtp:unix:/path, lmtp:inet:host:port */
    unsigned long long lmtp_timeout;
    unsigned long long mailbox_quota;   /* octets; 0: none */
    int mailbox_owner;                  /* enum mailbox_owner */
    /* DMARC reporting (auth/dmarc_agg.h, dmarc_report_*.h, dmarc_failure.h) */
    bool dmarc_reporting;
    struct conf_list dmarc_report_domains;      /* empty: every policy domain */
    char dmarc_report_org_name[256];            /* derived: the hostname when not set */
    char dmarc_report_email[320];               /* derived: noreply-dmarc@hostname when not set */
    unsigned long long dmarc_report_interval;   /* divides 86400: periods aligned to UTC days */
    bool dmarc_failure_reports;
    bool dmarc_failure_redact;
    unsigned long long dmarc_failure_rate;      /* per destination per hour */
    char dmarc_reports_address[320];            /* derived: dmarc-reports@<first local domain> */
    unsigned long long local_concurrency;   /* delivery worker processes (queue/delivery_pool.h) */
    /* DMTP receiver-pull (pull/; RFC-NOTES.md "DMTP") */
    int pull_mode;                      /* enum pull_mode_setting */
    int pull_legacy;                    /* enum pull_legacy_setting */
    unsigned long long pull_expiry;     /* held messages, msids and notices */
    unsigned long long pull_fcrdns_wait;   /* the greeting waits at most this for the peer's FCrDNS name */
    unsigned long long pull_max_pending;        /* pending notices per user */
    unsigned long long pull_max_pending_sender; /* of them from one sender address */
    unsigned long long pull_max_intent_rate;    /* intent messages per peer IP per hour */
    unsigned long long pull_deadline;           /* one whole pull (connect to QUIT) */
    unsigned long long pull_retry_min;          /* a failed pull's first back-off, doubled per failure */
    unsigned long long pull_retry_max;          /* ... up to this */
    bool pull_private_peers;            /* may pull from loopback/private addresses */
    bool pull_denied_greeting;          /* a denied peer is greeted 554 (-03 §3.5); else 220, GTML only */
    bool pull_hold;                     /* sending side: MSID to peers that offer it */
    bool pull_notify_unpulled;          /* sending side: tell the sender who never pulled */
    bool pull_auto_allow;               /* regular correspondents count as allowed */
    bool pull_allow_dmarc_pass;         /* an authenticated allowed domain counts as allowed */
    unsigned long long pull_greylist_delay;
    unsigned long long pull_greylist_window;
    unsigned long long pull_greylist_lifetime;

    /* derived by settings_load */
    struct listen_addr listeners[SETTINGS_MAX_LISTEN];
    size_t nlisteners;
    struct cidr *relay_cidrs;
    size_t nrelay_cidrs;
};

/* path NULL: built-in defaults only. 0 ok, -1 with err set. */
int  settings_load(const char *path, struct ferry_config *cfg, char *err, size_t errlen);
void settings_free(struct ferry_config *cfg);
void settings_print(FILE *out, const struct ferry_config *cfg);

const char *listen_kind_name(enum listen_kind kind);
/* Is domain (ASCII case-insensitive, trailing dot ignored) one of local_domains? */
bool settings_is_local_domain(const struct ferry_config *cfg, const char *domain);
bool settings_is_relay_domain(const struct ferry_config *cfg, const char *domain);
/* The mailbox format for a local domain (mailbox_format_domains, else mailbox_format). */
enum mailbox_format settings_mailbox_format(const struct ferry_config *cfg, const char *domain);
/* Is the client in dmarc_trusted_forwarders? */
bool settings_is_trusted_forwarder(const struct ferry_config *cfg, const struct sockaddr *sa);
bool settings_is_relay_client(const struct ferry_config *cfg, const struct sockaddr *sa);

/* Should aggregate reports be kept for this DMARC policy domain? (dmarc_reporting
   and dmarc_report_domains; case-insensitive, trailing dot ignored) */
bool settings_dmarc_report_domain(const struct ferry_config *cfg, const char *domain);
/* Are outbound TLS outcomes to this policy domain counted and reported? (tlsrpt
   and tlsrpt_exclude; as above) */
bool settings_tlsrpt_domain(const struct ferry_config *cfg, const char *domain);
/* Is addr one of tlsrpt_reports_address (case-insensitive)? */
bool settings_is_tlsrpt_address(const struct ferry_config *cfg, const char *addr);
/* Is this domain ours to take TLS reports about: a local or relay domain? */
bool settings_tlsrpt_our_domain(const struct ferry_config *cfg, const char *domain);

/* The DNS client settings: the resolver key's servers (else /etc/resolv.conf),
   dns_timeout and dns_rounds. */
void settings_dns_config(const struct ferry_config *cfg, struct dns_config *out);

/* The schema, for tests that compare it with etc/ferry.conf. */
const struct conf_setting *settings_schema(size_t *n);

#endif

/* settings — see settings.h. */
#include "lib/settings.h"
#include "lib/addr.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const recipients_choices[] = { "known", "any", NULL };
static const char *const level_choices[] = { "error", "warn", "info", "debug", NULL };
static const char *const log_choices[] = { "syslog", "stderr", NULL };
static const char *const bare_newline_choices[] = { "reject", "normalize", NULL };
static const char *const spf_fail_choices[] = { "reject", "data", "accept", NULL };
static const char *const spf_permerror_choices[] = { "reject", "data", "accept", NULL };
static const char *const dmp_check_choices[] = { "off", "fallback", "always", NULL };
static const char *const dmp_precedence_choices[] = { "spf", "dmp", NULL };
static const char *const dmarc_enforce_choices[] = { "yes", "quarantine-only", "no", NULL };
static const char *const tls_min_choices[] = { "1.2", "1.3", NULL };
static const char *const dkim_l_choices[] = { "accept", "policy", NULL };
static const char *const arc_seal_algo_choices[] = { "rsa-sha256", "ed25519-sha256", NULL };
static const char *const family_choices[] = { "any", "ipv4", "ipv6", NULL };
/* The order of enum tls_level (delivery/tls_policy.h): the config stores the index. */
static const char *const smtp_tls_choices[] = { "none", "may", "encrypt", "dane", "verify", NULL };
static const char *const relayhost_tls_choices[] = { "starttls", "implicit", "none", NULL };
static const char *const mailbox_format_choices[] = { "maildir", "mbox", NULL };
static const char *const mailbox_owner_choices[] = { "ferry", "system", NULL };
static const char *const pull_mode_choices[] = { "off", "on", NULL };
static const char *const pull_legacy_choices[] = { "greylist", "accept", "reject", NULL };

/* "DOMAIN:maildir" or "DOMAIN:mbox". */
static const char *check_domain_format(char *v)
{
    char *colon = strrchr(v, ':');
    if (!colon || (strcmp(colon + 1, "maildir") && strcmp(colon + 1, "mbox")))
        return "expected DOMAIN:maildir or DOMAIN:mbox";
    if (colon == v || colon - v > 253)
        return "expected DOMAIN:maildir or DOMAIN:mbox";
    for (char *p = v; p < colon; p++)
        if ((unsigned char)*p <= ' ' || *p == '@' || *p == '/')
            return "not a domain name";
    str_lower(v);
    return NULL;
}

static const char *check_transport(char *v)
{
    if (!*v)
        return NULL;
    if (!strncmp(v, "lmtp:unix:/", 11) && v[11])
        return NULL;
    if (!strncmp(v, "lmtp:inet:", 10) && strrchr(v + 10, ':'))
        return NULL;
    return "expected lmtp:unix:/path or lmtp:inet:HOST:PORT (or empty)";
}

static const char *check_delimiter(char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v <= ' ' || *v == '@' || *v == '"' || *v == '\\' || (unsigned char)*v >= 0x7f)
            return "delimiters must be printable ASCII other than @, quote and backslash";
    return NULL;
}

/*
 * "KIND ADDRESS:PORT [option ...]", options being "trace=DIR" (write each
 * session's transcript into DIR). One parser serves the check at load time and
 * the derivation after it, so they cannot disagree. NULL when fine, else why.
 */
static const char *parse_listen(const char *v, struct listen_addr *out)
{
    char kind[16], where[96], opt[PATH_MAX + 16];
    int used = 0;
    if (sscanf(v, "%15s %95s%n", kind, where, &used) != 2)
        return "expected \"KIND ADDRESS:PORT\" and options (KIND: smtp, submission or smtps)";
    if (!strcmp(kind, "smtp"))
        out->kind = LISTEN_SMTP;
    else if (!strcmp(kind, "submission"))
        out->kind = LISTEN_SUBMISSION;
    else if (!strcmp(kind, "smtps"))
        out->kind = LISTEN_SMTPS;
    else
        return "KIND must be smtp, submission or smtps";
    if (netaddr_parse_hostport(where, 0, &out->sa, &out->salen) < 0)
        return "address must be IP:PORT or [IPv6]:PORT";
    out->trace_dir[0] = '\0';
    const char *p = v + used;
    for (;;) {
        int n = 0;
        if (sscanf(p, "%271s%n", opt, &n) != 1)
            break;
        p += n;
        if (strncmp(opt, "trace=", 6) == 0) {
            if (opt[6] != '/')
                return "trace= needs an absolute directory";
            if (strlen(opt + 6) >= sizeof out->trace_dir)
                return "trace directory name too long";
            str_copy(out->trace_dir, opt + 6, sizeof out->trace_dir);
        } else {
            return "unknown listen option (known: trace=DIR)";
        }
    }
    str_copy(out->text, v, sizeof out->text);
    return NULL;
}

static const char *check_listen(char *v)
{
    struct listen_addr l;
    return parse_listen(v, &l);
}

static const char *check_cidr(char *v)
{
    struct cidr c;
    return netaddr_parse_cidr(v, &c) < 0 ? "not an address or CIDR block" : NULL;
}

static const char *check_resolver(char *v)
{
    struct sockaddr_storage sa;
    socklen_t len;
    return netaddr_parse_hostport(v, 53, &sa, &len) < 0 ? "expected IP or IP:PORT" : NULL;
}

static const char *check_relayhost(char *v)
{
    char host[256];
    uint16_t port;
    bool literal;
    if (!*v)
        return NULL;
    return netaddr_parse_nexthop(v, 25, host, sizeof host, &port, &literal) < 0 ?
        "expected host, host:port, [host] or [host]:port" : NULL;
}

static const char *check_source(int family, char *v)
{
    struct sockaddr_storage sa;
    socklen_t len;
    if (!*v)
        return NULL;
    if (netaddr_parse_hostport(v, 1, &sa, &len) < 0 || strchr(v, ']') || sa.ss_family != family)
        return family == AF_INET ? "not an IPv4 address" : "not an IPv6 address";
    return NULL;
}

static const char *check_source4(char *v)
{
    return strchr(v, ':') ? "not an IPv4 address" : check_source(AF_INET, v);
}

static const char *check_source6(char *v)
{
    return check_source(AF_INET6, v);
}

static const char *check_domain(char *v)
{
    size_t n = strlen(v);
    if (n && v[n - 1] == '.')
        v[--n] = '\0';
    if (n == 0 || n > 253)
        return "not a domain name";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c == '@' || c == '/' || c == 0x7f)
            return "not a domain name";
    }
    str_lower(v);
    return NULL;
}

static const char *check_domain_or_empty(char *v)
{
    return *v ? check_domain(v) : NULL;
}

/* local@domain, as written in a From: field or an rua mailto: (no display name). */
static const char *check_mailbox(char *v)
{
    struct mailbox m;
    const char *why;
    if (addr_parse_mailbox(v, strlen(v), false, &m, &why) < 0 || m.domain_kind != ADDR_DOMAIN_NAME)
        return "expected an address local@domain";
    return NULL;
}

/* Reporting periods must tile a UTC day so every period starts at a multiple of
   the interval since midnight (RFC 9990 3.1.1.4: periods do not overlap). */
static const char *check_report_interval(char *v)
{
    unsigned long long secs;
    if (conf_parse_duration(v, &secs) < 0)
        return NULL;            /* the duration parser names that error */
    if (secs < 3600 || secs > 86400 || 86400 % secs)
        return "must be between 1h and 1d and divide a day evenly (1h, 2h, 3h, 4h, 6h, 8h, 12h, 1d)";
    return NULL;
}

static const char *check_user(char *v)
{
    for (; *v; v++)
        if (*v <= ' ' || *v == ':' || *v == '/')
            return "not a user name";
    return NULL;
}

#define S(k, t, f, d) { .key = k, .type = t, .offset = offsetof(struct ferry_config, f), \
                        .size = sizeof(((struct ferry_config *)0)->f), .def = d }

static const struct conf_setting schema[] = {
    { .key = "hostname", .type = CONF_STRING, .offset = offsetof(struct ferry_config, hostname),
      .size = 256, .def = "", .check = check_domain },
    { .key = "listen", .type = CONF_LIST, .offset = offsetof(struct ferry_config, listen),
      .def = "smtp 0.0.0.0:25", .check = check_listen },
    S("spool_dir", CONF_PATH, spool_dir, "/var/spool/ferry"),
    S("data_dir", CONF_PATH, data_dir, "/var/lib/ferry"),
    S("auth_dir", CONF_PATH, auth_dir, ""),
    S("queue_data_dir", CONF_PATH, queue_data_dir, ""),
    S("mail_dir", CONF_PATH, mail_dir, "/var/mail/ferry"),
    S("pid_file", CONF_PATH, pid_file, ""),
    { .key = "local_domains", .type = CONF_LIST, .offset = offsetof(struct ferry_config, local_domains),
      .def = "", .check = check_domain, .comma_split = true },
    { .key = "local_recipients", .type = CONF_ENUM,
      .offset = offsetof(struct ferry_config, local_recipients), .def = "known",
      .choices = recipients_choices },
    { .key = "relay_networks", .type = CONF_LIST, .offset = offsetof(struct ferry_config, relay_networks),
      .def = "127.0.0.0/8, ::1/128", .check = check_cidr, .comma_split = true },
    { .key = "resolver", .type = CONF_LIST, .offset = offsetof(struct ferry_config, resolver),
      .def = "", .check = check_resolver, .comma_split = true },
    { .key = "user", .type = CONF_STRING, .offset = offsetof(struct ferry_config, user),
      .size = 64, .def = "ferry", .check = check_user },
    { .key = "queue_user", .type = CONF_STRING, .offset = offsetof(struct ferry_config, queue_user),
      .size = 64, .def = "", .check = check_user },
    S("tls_cert", CONF_PATH, tls_cert, ""),
    S("tls_key", CONF_PATH, tls_key, ""),
    { .key = "tls_min_version", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, tls_min_version),
      .def = "1.2", .choices = tls_min_choices },
    S("tls_ciphers", CONF_STRING, tls_ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!SHA1"),
    { .key = "log_level", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, log_level),
      .def = "info", .choices = level_choices },
    { .key = "log", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, log),
      .def = "syslog", .choices = log_choices },
    { .key = "message_size_limit", .type = CONF_SIZE,
      .offset = offsetof(struct ferry_config, message_size_limit), .def = "25M",
      .min = 1024, .max = 2147483647ULL },
    { .key = "max_recipients", .type = CONF_UINT, .offset = offsetof(struct ferry_config, max_recipients),
      .def = "1000", .min = 100, .max = 100000 },
    { .key = "smtp_max_sessions", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, smtp_max_sessions), .def = "200", .min = 1, .max = 100000 },
    { .key = "submission_max_sessions", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, submission_max_sessions), .def = "100", .min = 1, .max = 100000 },
    { .key = "max_connections_per_ip", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, max_connections_per_ip), .def = "20", .min = 1, .max = 100000 },
    { .key = "smtp_junk_command_limit", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, smtp_junk_command_limit), .def = "100", .min = 1, .max = 100000 },
    { .key = "smtp_park_above", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, smtp_park_above), .def = "0", .min = 0, .max = 4000000 },
    { .key = "smtp_idle_session_limit", .type = CONF_DURATION,
      .offset = offsetof(struct ferry_config, smtp_idle_session_limit), .def = "5m", .min = 1, .max = 86400 },
    { .key = "smtp_timeout", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, smtp_timeout),
      .def = "5m", .min = 1, .max = 3600 },
    { .key = "data_timeout", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, data_timeout),
      .def = "10m", .min = 1, .max = 3600 },
    { .key = "max_errors", .type = CONF_UINT, .offset = offsetof(struct ferry_config, max_errors),
      .def = "20", .min = 1, .max = 1000 },
    { .key = "dns_timeout", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, dns_timeout),
      .def = "3s", .min = 1, .max = 60 },
    { .key = "dns_rounds", .type = CONF_UINT, .offset = offsetof(struct ferry_config, dns_rounds),
      .def = "2", .min = 1, .max = 10 },
    { .key = "queue_scan_interval", .type = CONF_DURATION,
      .offset = offsetof(struct ferry_config, queue_scan_interval), .def = "1h", .min = 1, .max = 86400 },
    { .key = "retry_min", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, retry_min),
      .def = "5m", .min = 1, .max = 86400 },
    { .key = "retry_max", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, retry_max),
      .def = "67m", .min = 1, .max = 7 * 86400 },
    { .key = "queue_lifetime", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, queue_lifetime),
      .def = "5d", .min = 1, .max = 100 * 86400 },
    { .key = "delay_warning_time", .type = CONF_DURATION,
      .offset = offsetof(struct ferry_config, delay_warning_time), .def = "4h", .min = 0, .max = 100 * 86400 },
    { .key = "relayhost", .type = CONF_STRING, .offset = offsetof(struct ferry_config, relayhost),
      .size = 320, .def = "", .check = check_relayhost },
    { .key = "relayhost_tls", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, relayhost_tls),
      .def = "starttls", .choices = relayhost_tls_choices },
    S("relayhost_auth_file", CONF_PATH, relayhost_auth_file, ""),
    { .key = "smtp_address_family", .type = CONF_ENUM,
      .offset = offsetof(struct ferry_config, smtp_address_family), .def = "any", .choices = family_choices },
    { .key = "smtp_source_ipv4", .type = CONF_STRING, .offset = offsetof(struct ferry_config, smtp_source_ipv4),
      .size = 64, .def = "", .check = check_source4 },
    { .key = "smtp_source_ipv6", .type = CONF_STRING, .offset = offsetof(struct ferry_config, smtp_source_ipv6),
      .size = 64, .def = "", .check = check_source6 },
    { .key = "smtp_port", .type = CONF_UINT, .offset = offsetof(struct ferry_config, smtp_port),
      .def = "25", .min = 1, .max = 65535 },
    { .key = "smtp_tls_level", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, smtp_tls_level),
      .def = "dane", .choices = smtp_tls_choices },
    S("smtp_tls_policy", CONF_PATH, smtp_tls_policy, ""),
    S("smtp_tls_ca_file", CONF_PATH, smtp_tls_ca_file, ""),
    S("mta_sts", CONF_BOOL, mta_sts, "yes"),
    { .key = "mta_sts_test_policy_addr", .type = CONF_STRING,
      .offset = offsetof(struct ferry_config, mta_sts_test_policy_addr), .size = 64, .def = "" },
    S("tlsrpt", CONF_BOOL, tlsrpt, "yes"),
    { .key = "tlsrpt_exclude", .type = CONF_LIST, .offset = offsetof(struct ferry_config, tlsrpt_exclude),
      .def = "", .check = check_domain, .comma_split = true },
    { .key = "tlsrpt_reports_address", .type = CONF_LIST,
      .offset = offsetof(struct ferry_config, tlsrpt_reports_address), .def = "", .check = check_mailbox,
      .comma_split = true },
    { .key = "smtp_dest_concurrency", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, smtp_dest_concurrency), .def = "20", .min = 1, .max = 1000 },
    { .key = "smtp_total_concurrency", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, smtp_total_concurrency), .def = "100", .min = 1, .max = 10000 },
    { .key = "smtp_dest_rate", .type = CONF_UINT, .offset = offsetof(struct ferry_config, smtp_dest_rate),
      .def = "0", .min = 0, .max = 100000 },
    { .key = "smtp_connect_timeout", .type = CONF_DURATION,
      .offset = offsetof(struct ferry_config, smtp_connect_timeout), .def = "30s", .min = 1, .max = 600 },
    { .key = "relay_domains", .type = CONF_LIST, .offset = offsetof(struct ferry_config, relay_domains),
      .def = "", .check = check_domain, .comma_split = true },
    { .key = "bare_newlines", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, bare_newlines),
      .def = "reject", .choices = bare_newline_choices },
    { .key = "max_connection_rate", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, max_connection_rate), .def = "60", .min = 0, .max = 1000000 },
    { .key = "greeting_delay", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, greeting_delay),
      .def = "0s", .min = 0, .max = 60 },
    { .key = "trace_max_data", .type = CONF_SIZE, .offset = offsetof(struct ferry_config, trace_max_data),
      .def = "1M", .min = 0, .max = 2147483647ULL },
    S("relay_networks_limit_exempt", CONF_BOOL, relay_networks_limit_exempt, "yes"),
    S("auth_plaintext_loopback", CONF_BOOL, auth_plaintext_loopback, "no"),
    { .key = "auth_failure_delay", .type = CONF_DURATION,
      .offset = offsetof(struct ferry_config, auth_failure_delay), .def = "3s", .min = 0, .max = 60 },
    { .key = "auth_max_failures", .type = CONF_UINT, .offset = offsetof(struct ferry_config, auth_max_failures),
      .def = "5", .min = 1, .max = 1000 },
    S("dkim_verify", CONF_BOOL, dkim_verify, "yes"),
    S("dkim_key_dir", CONF_PATH, dkim_key_dir, ""),
    { .key = "trusted_users", .type = CONF_LIST, .offset = offsetof(struct ferry_config, trusted_users),
      .def = "", .check = check_user, .comma_split = true },
    { .key = "dkim_signing_domain", .type = CONF_STRING, .offset = offsetof(struct ferry_config, dkim_signing_domain),
      .size = 256, .def = "", .check = check_domain_or_empty },
    { .key = "dkim_max_signatures", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, dkim_max_signatures), .def = "8", .min = 1, .max = 50 },
    { .key = "dkim_body_length", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, dkim_body_length),
      .def = "accept", .choices = dkim_l_choices },
    { .key = "authserv_id", .type = CONF_STRING, .offset = offsetof(struct ferry_config, authserv_id),
      .size = 256, .def = "", .check = check_domain_or_empty },
    S("strict_envelopes", CONF_BOOL, strict_envelopes, "no"),
    S("spf_check", CONF_BOOL, spf_check, "yes"),
    { .key = "spf_fail_action", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, spf_fail_action),
      .def = "reject", .choices = spf_fail_choices },
    { .key = "spf_permerror_action", .type = CONF_ENUM,
      .offset = offsetof(struct ferry_config, spf_permerror_action), .def = "accept",
      .choices = spf_permerror_choices },
    S("spf_received_header", CONF_BOOL, spf_received_header, "yes"),
    { .key = "dmp_check", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, dmp_check),
      .def = "fallback", .choices = dmp_check_choices },
    { .key = "dmp_precedence", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, dmp_precedence),
      .def = "spf", .choices = dmp_precedence_choices },
    S("dmarc_check", CONF_BOOL, dmarc_check, "yes"),
    { .key = "dmarc_enforce", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, dmarc_enforce),
      .def = "yes", .choices = dmarc_enforce_choices },
    { .key = "dmarc_trusted_forwarders", .type = CONF_LIST,
      .offset = offsetof(struct ferry_config, dmarc_trusted_forwarders), .def = "", .check = check_cidr,
      .comma_split = true },
    { .key = "arc_trusted_sealers", .type = CONF_LIST,
      .offset = offsetof(struct ferry_config, arc_trusted_sealers), .def = "", .check = check_domain,
      .comma_split = true },
    S("arc_seal", CONF_BOOL, arc_seal, "yes"),
    { .key = "arc_seal_domain", .type = CONF_STRING, .offset = offsetof(struct ferry_config, arc_seal_domain),
      .size = 256, .def = "", .check = check_domain_or_empty },
    { .key = "arc_seal_algorithm", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, arc_seal_algorithm),
      .def = "rsa-sha256", .choices = arc_seal_algo_choices },
    { .key = "auth_lockout", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, auth_lockout),
      .def = "15m", .min = 1, .max = 86400 },
    { .key = "mailbox_format", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, mailbox_format),
      .def = "maildir", .choices = mailbox_format_choices },
    { .key = "mailbox_format_domains", .type = CONF_LIST,
      .offset = offsetof(struct ferry_config, mailbox_format_domains), .def = "",
      .check = check_domain_format, .comma_split = true },
    S("mbox_dir", CONF_PATH, mbox_dir, ""),
    { .key = "recipient_delimiter", .type = CONF_STRING,
      .offset = offsetof(struct ferry_config, recipient_delimiter), .size = 16, .def = "+",
      .check = check_delimiter },
    S("alias_file", CONF_PATH, alias_file, ""),
    S("virtual_map", CONF_PATH, virtual_map, ""),
    { .key = "pipe_user", .type = CONF_STRING, .offset = offsetof(struct ferry_config, pipe_user),
      .size = 64, .def = "", .check = check_user },
    { .key = "pipe_timeout", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, pipe_timeout),
      .def = "10m", .min = 1, .max = 86400 },
    { .key = "mailbox_transport", .type = CONF_STRING,
      .offset = offsetof(struct ferry_config, mailbox_transport), .size = PATH_MAX, .def = "",
      .check = check_transport },
    { .key = "lmtp_timeout", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, lmtp_timeout),
      .def = "5m", .min = 1, .max = 3600 },
    { .key = "mailbox_owner", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, mailbox_owner),
      .def = "ferry", .choices = mailbox_owner_choices },
    { .key = "local_concurrency", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, local_concurrency), .def = "32", .min = 1, .max = 256 },
    { .key = "mailbox_quota", .type = CONF_SIZE, .offset = offsetof(struct ferry_config, mailbox_quota),
      .def = "0", .min = 0, .max = 1ULL << 50 },
    S("dmarc_reporting", CONF_BOOL, dmarc_reporting, "yes"),
    { .key = "dmarc_report_domains", .type = CONF_LIST,
      .offset = offsetof(struct ferry_config, dmarc_report_domains), .def = "", .check = check_domain,
      .comma_split = true },
    S("dmarc_report_org_name", CONF_STRING, dmarc_report_org_name, ""),
    { .key = "dmarc_report_email", .type = CONF_STRING, .offset = offsetof(struct ferry_config, dmarc_report_email),
      .size = 320, .def = "", .check = check_mailbox },
    { .key = "dmarc_report_interval", .type = CONF_DURATION,
      .offset = offsetof(struct ferry_config, dmarc_report_interval), .def = "86400", .min = 3600, .max = 86400,
      .check = check_report_interval },
    S("dmarc_failure_reports", CONF_BOOL, dmarc_failure_reports, "no"),
    S("dmarc_failure_redact", CONF_BOOL, dmarc_failure_redact, "yes"),
    { .key = "dmarc_failure_rate", .type = CONF_UINT, .offset = offsetof(struct ferry_config, dmarc_failure_rate),
      .def = "10", .min = 1, .max = 100000 },
    { .key = "dmarc_reports_address", .type = CONF_STRING,
      .offset = offsetof(struct ferry_config, dmarc_reports_address), .size = 320, .def = "",
      .check = check_mailbox },
    { .key = "pull_mode", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, pull_mode),
      .def = "off", .choices = pull_mode_choices },
    { .key = "pull_legacy", .type = CONF_ENUM, .offset = offsetof(struct ferry_config, pull_legacy),
      .def = "greylist", .choices = pull_legacy_choices },
    { .key = "pull_expiry", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, pull_expiry),
      .def = "14d", .min = 1, .max = 100 * 86400 },
    { .key = "pull_fcrdns_wait", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, pull_fcrdns_wait),
      .def = "3s", .min = 1, .max = 60 },
    { .key = "pull_max_pending", .type = CONF_UINT, .offset = offsetof(struct ferry_config, pull_max_pending),
      .def = "100", .min = 1, .max = 100000 },
    { .key = "pull_max_pending_sender", .type = CONF_UINT,
      .offset = offsetof(struct ferry_config, pull_max_pending_sender), .def = "5", .min = 1, .max = 100000 },
    { .key = "pull_max_intent_rate", .type = CONF_UINT, .offset = offsetof(struct ferry_config, pull_max_intent_rate),
      .def = "60", .min = 1, .max = 1000000 },
    { .key = "pull_deadline", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, pull_deadline),
      .def = "10m", .min = 1, .max = 86400 },
    { .key = "pull_retry_min", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, pull_retry_min),
      .def = "1m", .min = 1, .max = 86400 },
    { .key = "pull_retry_max", .type = CONF_DURATION, .offset = offsetof(struct ferry_config, pull_retry_max),
      .def = "1h", .min = 1, .max = 7 * 86400 },
    S("pull_private_peers", CONF_BOOL, pull_private_peers, "no"),
    S("pull_denied_greeting", CONF_BOOL, pull_denied_greeting, "yes"),
    S("pull_hold", CONF_BOOL, pull_hold, "yes"),
    S("pull_notify_unpulled", CONF_BOOL, pull_notify_unpulled, "no"),
    S("pull_auto_allow", CONF_BOOL, pull_auto_allow, "yes"),
    S("pull_allow_dmarc_pass", CONF_BOOL, pull_allow_dmarc_pass, "yes"),
    { .key = "pull_greylist_delay", .type = CONF_DURATION,
      .offset = offsetof(struct ferry_config, pull_greylist_delay), .def = "5m", .min = 0, .max = 86400 },
    { .key = "pull_greylist_window", .type = CONF_DURATION,
      .offset = offsetof(struct ferry_config, pull_greylist_window), .def = "1d", .min = 60, .max = 30 * 86400 },
    { .key = "pull_greylist_lifetime", .type = CONF_DURATION,
      .offset = offsetof(struct ferry_config, pull_greylist_lifetime), .def = "36d", .min = 3600,
      .max = 400 * 86400 },
};

const struct conf_setting *settings_schema(size_t *n)
{
    *n = sizeof schema / sizeof schema[0];
    return schema;
}

const char *listen_kind_name(enum listen_kind kind)
{
    static const char *const names[] = { "smtp", "submission", "smtps" };
    return (unsigned)kind < 3 ? names[kind] : "?";
}

static int derive(struct ferry_config *cfg, char *err, size_t errlen)
{
    const char *file = cfg->path[0] ? cfg->path : "built-in defaults";
    if (!cfg->hostname[0]) {
        if (gethostname(cfg->hostname, sizeof cfg->hostname - 1) < 0 || !cfg->hostname[0])
            str_copy(cfg->hostname, "localhost", sizeof cfg->hostname);
        cfg->hostname[sizeof cfg->hostname - 1] = '\0';
        str_lower(cfg->hostname);
    }
    if (cfg->local_domains.n == 0) {
        if (conf_list_add(&cfg->local_domains, cfg->hostname) < 0 ||
            (!str_ieq(cfg->hostname, "localhost") && conf_list_add(&cfg->local_domains, "localhost") < 0))
            goto nomem;
    }
    if (cfg->listen.n > SETTINGS_MAX_LISTEN) {
        snprintf(err, errlen, "%s: at most %d listen addresses", file, SETTINGS_MAX_LISTEN);
        return -1;
    }
    cfg->nlisteners = 0;
    for (size_t i = 0; i < cfg->listen.n; i++) {
        struct listen_addr *l = &cfg->listeners[cfg->nlisteners++];
        const char *why = parse_listen(cfg->listen.items[i], l);
        if (why) {      /* only the built-in default escapes the check at load */
            snprintf(err, errlen, "%s: listen %s: %s", file, cfg->listen.items[i], why);
            return -1;
        }
        for (size_t k = 0; k + 1 < cfg->nlisteners; k++) {
            if (cfg->listeners[k].salen == l->salen && !memcmp(&cfg->listeners[k].sa, &l->sa, l->salen)) {
                snprintf(err, errlen, "%s: listen address %s given twice", file, cfg->listen.items[i]);
                return -1;
            }
        }
    }
    if (!cfg->authserv_id[0])
        str_copy(cfg->authserv_id, cfg->hostname, sizeof cfg->authserv_id);
    if (!cfg->dmarc_report_org_name[0])
        str_copy(cfg->dmarc_report_org_name, cfg->hostname, sizeof cfg->dmarc_report_org_name);
    if (!cfg->dmarc_report_email[0])
        snprintf(cfg->dmarc_report_email, sizeof cfg->dmarc_report_email, "noreply-dmarc@%s", cfg->hostname);
    if (!cfg->arc_seal_domain[0])
        str_copy(cfg->arc_seal_domain, cfg->dkim_signing_domain[0] ? cfg->dkim_signing_domain
                                                                   : cfg->local_domains.items[0],
                 sizeof cfg->arc_seal_domain);
    if (!cfg->dmarc_reports_address[0])
        snprintf(cfg->dmarc_reports_address, sizeof cfg->dmarc_reports_address, "dmarc-reports@%s",
                 cfg->local_domains.items[0]);
    bool derive_tlsrpt = cfg->tlsrpt_reports_address.n == 0;
    for (size_t i = 0; derive_tlsrpt && i < cfg->local_domains.n; i++) {
        char a[320];
        snprintf(a, sizeof a, "tlsrpt@%s", cfg->local_domains.items[i]);
        if (conf_list_add(&cfg->tlsrpt_reports_address, a) < 0)
            goto nomem;
    }
    if (cfg->pull_greylist_delay >= cfg->pull_greylist_window) {
        snprintf(err, errlen, "%s: pull_greylist_delay must be shorter than pull_greylist_window", file);
        return -1;
    }
    if (cfg->pull_retry_min > cfg->pull_retry_max) {
        snprintf(err, errlen, "%s: pull_retry_min is larger than pull_retry_max", file);
        return -1;
    }
    if (cfg->retry_min > cfg->retry_max) {
        snprintf(err, errlen, "%s: retry_min is larger than retry_max", file);
        return -1;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (cfg->listeners[i].kind == LISTEN_SMTPS && !cfg->tls_cert[0]) {
            snprintf(err, errlen, "%s: listen %s: smtps needs tls_cert and tls_key", file, cfg->listeners[i].text);
            return -1;
        }
    }
    if ((cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0')) {
        snprintf(err, errlen, "%s: tls_cert and tls_key must be set together", file);
        return -1;
    }
    cfg->relay_cidrs = calloc(cfg->relay_networks.n + 1, sizeof *cfg->relay_cidrs);
    if (!cfg->relay_cidrs)
        goto nomem;
    for (size_t i = 0; i < cfg->relay_networks.n; i++)
        netaddr_parse_cidr(cfg->relay_networks.items[i], &cfg->relay_cidrs[i]);
    cfg->nrelay_cidrs = cfg->relay_networks.n;
    return 0;
nomem:
    snprintf(err, errlen, "%s: out of memory", file);
    return -1;
}

int settings_load(const char *path, struct ferry_config *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    int r;
    if (path) {
        str_copy(cfg->path, path, sizeof cfg->path);
        r = conf_load(path, schema, sizeof schema / sizeof schema[0], cfg, err, errlen);
    } else {
        r = conf_defaults(schema, sizeof schema / sizeof schema[0], cfg, err, errlen);
    }
    if (r < 0)
        return -1;
    if (derive(cfg, err, errlen) < 0) {
        settings_free(cfg);
        return -1;
    }
    return 0;
}

void settings_free(struct ferry_config *cfg)
{
    conf_release(schema, sizeof schema / sizeof schema[0], cfg);
    free(cfg->relay_cidrs);
    cfg->relay_cidrs = NULL;
    cfg->nrelay_cidrs = 0;
}

void settings_print(FILE *out, const struct ferry_config *cfg)
{
    fprintf(out, "# effective configuration%s%s\n", cfg->path[0] ? " from " : "", cfg->path);
    conf_print(out, schema, sizeof schema / sizeof schema[0], cfg);
}

/* ASCII case-insensitive, a trailing dot on domain ignored (the list has none). */
static bool domain_in_list(const struct conf_list *l, const char *domain)
{
    size_t n = strlen(domain);
    if (n && domain[n - 1] == '.')
        n--;
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->items[i]) == n && str_nieq(l->items[i], domain, n))
            return true;
    return false;
}

bool settings_is_local_domain(const struct ferry_config *cfg, const char *domain)
{
    return domain_in_list(&cfg->local_domains, domain);
}

bool settings_dmarc_report_domain(const struct ferry_config *cfg, const char *domain)
{
    if (!cfg->dmarc_reporting)
        return false;
    return cfg->dmarc_report_domains.n == 0 || domain_in_list(&cfg->dmarc_report_domains, domain);
}

bool settings_tlsrpt_domain(const struct ferry_config *cfg, const char *domain)
{
    return cfg->tlsrpt && !domain_in_list(&cfg->tlsrpt_exclude, domain);
}

bool settings_is_tlsrpt_address(const struct ferry_config *cfg, const char *addr)
{
    for (size_t i = 0; i < cfg->tlsrpt_reports_address.n; i++)
        if (str_ieq(cfg->tlsrpt_reports_address.items[i], addr))
            return true;
    return false;
}

bool settings_tlsrpt_our_domain(const struct ferry_config *cfg, const char *domain)
{
    return domain_in_list(&cfg->local_domains, domain) || domain_in_list(&cfg->relay_domains, domain);
}

bool settings_is_relay_domain(const struct ferry_config *cfg, const char *domain)
{
    return domain_in_list(&cfg->relay_domains, domain);
}

enum mailbox_format settings_mailbox_format(const struct ferry_config *cfg, const char *domain)
{
    size_t n = strlen(domain);
    if (n && domain[n - 1] == '.')
        n--;
    for (size_t i = 0; i < cfg->mailbox_format_domains.n; i++) {
        const char *item = cfg->mailbox_format_domains.items[i];
        const char *colon = strrchr(item, ':');
        if ((size_t)(colon - item) == n && str_nieq(item, domain, n))
            return strcmp(colon + 1, "mbox") ? MAILBOX_MAILDIR : MAILBOX_MBOX;
    }
    return (enum mailbox_format)cfg->mailbox_format;
}

bool settings_is_relay_client(const struct ferry_config *cfg, const struct sockaddr *sa)
{
    for (size_t i = 0; i < cfg->nrelay_cidrs; i++)
        if (netaddr_cidr_match(&cfg->relay_cidrs[i], sa))
            return true;
    return false;
}

bool settings_is_trusted_forwarder(const struct ferry_config *cfg, const struct sockaddr *sa)
{
    /* A short list, parsed on use: each entry was checked at load. */
    for (size_t i = 0; i < cfg->dmarc_trusted_forwarders.n; i++) {
        struct cidr c;
        if (netaddr_parse_cidr(cfg->dmarc_trusted_forwarders.items[i], &c) == 0 && netaddr_cidr_match(&c, sa))
            return true;
    }
    return false;
}

void settings_dns_config(const struct ferry_config *cfg, struct dns_config *out)
{
    dns_config_init(out);
    out->timeout_ms = (unsigned)cfg->dns_timeout * 1000;
    out->rounds = (unsigned)cfg->dns_rounds;
    for (size_t k = 0; k < cfg->resolver.n; k++)
        dns_config_add_server(out, cfg->resolver.items[k]);     /* checked at load */
    if (out->nservers == 0)
        dns_config_from_resolv_conf(out, NULL);
}

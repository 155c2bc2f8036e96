/*
 * ctl — the subcommands of ferryctl. Each takes the words after its name and
 * returns the exit status: 0 ok, 1 operational failure, 2 usage.
 */
#ifndef FERRY_CTL_H
#define FERRY_CTL_H

#include "lib/dns.h"
#include "lib/settings.h"

int ctl_queue(const struct ferry_config *cfg, int argc, char **argv);
/* `ferryctl user add|del|passwd|list|addr` (SMTP AUTH users). */
int ctl_user(const struct ferry_config *cfg, int argc, char **argv);
/* Run as root: become the daemon's user (creating data_dir as its own), so files
   ferryctl creates in the database environment stay the daemon's. 0 or -1. */
int ctl_become_daemon_user(const struct ferry_config *cfg);
/* `ferryctl dmarc import|summary|report` (ctl_dmarc.c). */
int ctl_dmarc(const struct ferry_config *cfg, int argc, char **argv);
/* `ferryctl dns TYPE NAME`: one blocking lookup, printed like dig's short form. */
int ctl_dns(const struct dns_config *dns, int argc, char **argv);
/* `ferryctl dkim keygen|sign|verify|rotate` (see ctl_dkim.c for the key directory). */
int ctl_dkim(const struct dns_config *dns, int argc, char **argv);
/* `ferryctl arc verify < msg` (ctl_arc.c). */
int ctl_arc(const struct dns_config *dns, int argc, char **argv);

/* `ferryctl spf check ...`: RFC 7208 check_host(); result word first. */
int ctl_spf(const struct dns_config *dns, int argc, char **argv);
/* `ferryctl dmp check ...` and `ferryctl dmp record ...` (draft-fecyk-dmp-02). */
int ctl_dmp(const struct dns_config *dns, int argc, char **argv);
/* `ferryctl dmarc check ...`: SPF, DKIM and DMARC of a message on stdin (ctl_dmarc_check.c). */
int ctl_dmarc_check(const struct dns_config *dns, int argc, char **argv);

/* A message on stdin into b (at most CTL_MSG_MAX octets). 0 ok; -1 with one sentence
   on stderr, prefixed "ferryctl WHO:". */
#define CTL_MSG_MAX (64u << 20)
struct buf;
int ctl_read_stdin(struct buf *b, const char *who);
/* The file at path (NULL: standard input) into b, at most max octets. 0 ok;
   -1 after one sentence on stderr ("ferryctl: cannot open FILE"). */
int ctl_read_input(const char *path, struct buf *b, size_t max);

/* The data_dir Berkeley DB environment, as the daemon's user when run as root.
   0 ok; -1 after one sentence on stderr. */
struct fdb_env;
int ctl_open_env(const struct ferry_config *cfg, struct fdb_env **env);

/* `ferryctl pull ...`: DMTP lists and pending notices (see ctl_pull.c). */
int ctl_pull(const struct ferry_config *cfg, int argc, char **argv);

/* `ferryctl mta-sts policy ...`: the policy file and DNS records a domain
   publishes for MTA-STS and TLS-RPT (ctl_mta_sts.c). */
int ctl_mta_sts(const struct dns_config *dns, int argc, char **argv);

/* `ferryctl tlsrpt import|summary`: TLS reports received (ctl_tlsrpt.c). */
int ctl_tlsrpt(const struct ferry_config *cfg, int argc, char **argv);

/* `ferryctl map build [--type aliases|virtual] FILE`: FILE.db for local delivery. */
int ctl_map(int argc, char **argv);

#endif

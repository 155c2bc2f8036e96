/*
 * local_resolve — turn one local recipient into the deliveries it stands for.
 *
 * Pure apart from the callbacks in struct local_resolver (user exists? read an
 * include file?), so the unit tests drive it without a filesystem. Called by
 * delivery/local.c.
 *
 * A virtual domain is a local domain named in the virtual map: its addresses are
 * only what the map lists, looked up as user+tag@dom, then user@dom
 * (sub-addressing), then @dom (the catch-all); nothing found is 5.1.1. An address
 * in another local domain is looked up in the aliases as user+tag, then user;
 * without an alias the mailbox "user" receives it if it exists, else 5.1.1.
 * A catch-all for a domain is therefore an "@dom target" line in the virtual map
 * (which makes the domain virtual: list its users there too).
 *
 * Targets (in both maps and in include files):
 *   name            a local name: aliases again, then the mailbox
 *   \name           the mailbox "name", no alias lookup (to keep a copy: "a: \a, b")
 *   user@domain     a local domain: resolved again; any other: a remote recipient
 *   /path/          a Maildir at that absolute path
 *   /path           an mbox file at that absolute path
 *   |command        a pipe (run by /bin/sh -c)
 *   :include:/path  every target listed in that file (commas or lines; # comments)
 *   lmtp:unix:/socket, lmtp:inet:host:port
 *                   the LMTP server receives the message for the address being
 *                   resolved
 * An address met again while it is being expanded is a loop, and a chain deeper
 * than LOCAL_RESOLVE_DEPTH is refused: both fail with 5.4.6. At most
 * LOCAL_RESOLVE_MAX_TARGETS deliveries come out of one recipient (5.3.4 beyond).
 */
#ifndef FERRY_LOCAL_RESOLVE_H
#define FERRY_LOCAL_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

#include "delivery/delivery.h"
#include "delivery/local_map.h"

#define LOCAL_RESOLVE_DEPTH        20
#define LOCAL_RESOLVE_MAX_TARGETS  1000

enum local_target_kind {
    LT_MAILBOX,     /* arg: mailbox name under mail_dir / mbox_dir */
    LT_MAILDIR,     /* arg: absolute directory path ending in "/" */
    LT_MBOX,        /* arg: absolute file path */
    LT_PIPE,        /* arg: shell command */
    LT_LMTP,        /* arg: "unix:/path" or "inet:host:port" */
    LT_REMOTE,      /* arg: an address in a non-local domain */
};

struct local_target {
    enum local_target_kind kind;
    char arg[LOCAL_TARGET_MAX];
    char rcpt[ADDR_PATH_MAX + 1];   /* the address delivered for (Delivered-To, LMTP RCPT) */
    char domain[ADDR_DOMAIN_MAX + 1];   /* LT_MAILBOX: the domain, for per-domain format */
};

struct local_targets {
    struct local_target *v;
    size_t n, cap;
    bool unread_include;        /* check_only met an include file (its targets unknown) */
};

struct local_resolver {
    const struct local_map *aliases;    /* may be NULL */
    const struct local_map *virtual;    /* may be NULL */
    const char *delimiters;             /* recipient_delimiter: "" = no sub-addressing */
    bool (*is_local_domain)(void *arg, const char *domain);
    bool (*user_exists)(void *arg, const char *name);
    /* The contents of an include file, NUL-terminated and malloc'd, or NULL with *why. */
    char *(*read_include)(void *arg, const char *path, const char **why);
    void *arg;
    /* RCPT checks: an include file counts as one delivery, unread (the smtp
       process may not read it, and its contents are the owner's business). */
    bool check_only;
    /* The addresses whose mail Ferry itself reads (dmarc_reports_address,
       tlsrpt_reports_address): the Maildir ("/path/") each is delivered to,
       before any map is asked (the address always exists), or NULL for any
       other address. NULL: none. */
    const char *(*report_maildir)(void *arg, const char *addr);
};

/* 0 with targets appended to out; -1 with st set (FAIL or DEFER). */
int  local_resolve(const struct local_resolver *r, const char *addr, struct local_targets *out,
                   struct delivery_status *st);
void local_targets_free(struct local_targets *t);

/* The queued form of one target ("::KIND RCPT\tARG"): a recipient string no SMTP
   address can look like. -1 when it does not fit in ADDR_PATH_MAX octets. */
int  local_target_encode(const struct local_target *t, char *out, size_t outsz);
/* Is addr such a queued target? Then parse it. 0 ok, -1 malformed. */
bool local_target_is_encoded(const char *addr);
int  local_target_decode(const char *addr, struct local_target *t);

#endif

/*
 * classify — DMTP sender classification (draft -03 §3.1; RFC-NOTES.md "DMTP").
 *
 * A connecting MTA is allowed, denied or unclassified (the default). The decision
 * functions are pure: they take the stored entries and the facts the caller
 * established (peer IP, its verified FCrDNS name or "", authenticated, relay client,
 * a domain some check authenticated for this mail) and return the class with a
 * reason for the log. The most specific matching entry wins (any IP/CIDR entry
 * before any domain entry; longer prefix, longer domain first); deny wins a tie.
 * A domain entry matches the name and its subdomains.
 *
 * Per-user sender lists ("a@b" or "@b"; exact address before @domain, deny wins a
 * tie) and regular correspondents (addresses the user sent mail to, or pulled from)
 * classify a sender for one recipient; explicit entries beat the automatic allow.
 *
 * Stored in the data_dir Berkeley DB environment, one database per kind:
 * pull_peers.db (entry → allow|deny), pull_users.db ("user pattern" → allow|deny),
 * pull_correspondents.db ("user address" → last time and why). Every write is one
 * transaction. Loads are bounded (PULL_MAX_ENTRIES); no sockets. A lookup that
 * hits a database error says so (-1): it never passes for "not on the list".
 */
#ifndef FERRY_PULL_CLASSIFY_H
#define FERRY_PULL_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "lib/addr.h"
#include "lib/db.h"
#include "lib/netaddr.h"

#define PULL_MAX_ENTRIES 10000      /* per list loaded at once */
#define PULL_USER_MAX    64
#define PULL_REASON_MAX  320

enum pull_class { PULL_UNCLASSIFIED, PULL_ALLOWED, PULL_DENIED };

struct pull_peer_entry {
    bool deny;
    bool is_net;
    struct cidr net;
    char domain[ADDR_DOMAIN_MAX + 1];   /* lower case, no trailing dot */
    char text[ADDR_DOMAIN_MAX + 1];     /* canonical: "192.0.2.0/24", "example.org" */
};

struct pull_user_entry {
    bool deny;
    char pattern[ADDR_PATH_MAX + 1];    /* "a@b" or "@b", lower case */
};

struct pull_verdict {
    enum pull_class cls;
    char reason[PULL_REASON_MAX];
};

struct pull_peer_facts {
    const struct sockaddr *ip;
    const char *fcrdns;             /* verified forward-confirmed name, or "" */
    bool authenticated;             /* SMTP AUTH */
    bool relay_client;              /* in relay_networks */
    const char *verified_domain;    /* SPF pass (MAIL FROM) or DMARC pass domain, or NULL */
    bool allow_verified_domain;     /* pull_allow_dmarc_pass */
};

const char *pull_class_name(enum pull_class c);

/* "192.0.2.1", "192.0.2.0/24", "2001:db8::/32" or a domain name into e (canonical
   text in e->text). 0 ok; -1 with *why. */
int pull_peer_parse(const char *text, struct pull_peer_entry *e, const char **why);
/* "a@b" or "@b" (lower-cased into out). 0 ok; -1 with *why. */
int pull_pattern_parse(const char *text, char *out, size_t outsz, const char **why);
/* A local user (mailbox) name: 1..64 printable ASCII octets, no blank or '/';
   lower-cased into out. 0 ok; -1 with *why. */
int pull_user_name(const char *text, char *out, size_t outsz, const char **why);

void pull_classify_peer(const struct pull_peer_entry *e, size_t n, const struct pull_peer_facts *f,
                        struct pull_verdict *out);
/* sender: "local@domain" or "" (null sender: matches nothing). correspondent: the
   store said the user corresponds with sender. */
void pull_classify_sender(const struct pull_user_entry *e, size_t n, const char *sender, bool correspondent,
                          struct pull_verdict *out);

/* Is sa an address we never pull from unless pull_private_peers (loopback, RFC 1918,
   link-local, CGNAT, unique-local, unspecified, multicast, documentation)? */
bool pull_addr_is_private(const struct sockaddr *sa);

/* ---- the store ---- */
struct pull_lists;

/* lazy false (ferryctl): every database opens now, else NULL with err. lazy true
   (the daemon's processes): a database that cannot be opened now (unreadable,
   corrupt) is tried again at its next use, at most every few seconds, and every
   use meanwhile fails as a database error does; err then names the first failure
   ("" when all opened). NULL only when out of memory. */
struct pull_lists *pull_lists_open(struct fdb_env *env, bool lazy, char *err, size_t errlen);
void pull_lists_close(struct pull_lists *l);

/* cls PULL_UNCLASSIFIED removes the entry. 0 ok; 1 removing an absent entry;
   -1 with err (bad entry or database error). */
int pull_peer_set(struct pull_lists *l, const char *peer, enum pull_class cls, char *err, size_t errlen);
int pull_user_set(struct pull_lists *l, const char *user, const char *pattern, enum pull_class cls, char *err,
                  size_t errlen);

/* Classify against the store by keyed lookups (O(log n) each, whatever the lists'
   size): the peer's exact address and each enclosing network, longest prefix first
   (33 lookups for IPv4, 129 for IPv6), then the FCrDNS name and each parent domain
   (and the same for f->verified_domain); the entries found go to
   pull_classify_peer. 0 ok; -1 on a database error (out: unclassified, reason says
   so; the caller decides what an unreadable list means: the smtp process defers
   with 451 4.3.0 rather than treat the peer as unclassified). */
int pull_classify_peer_db(struct pull_lists *l, const struct pull_peer_facts *f, struct pull_verdict *out);
/* The same for one user's sender lists: "user a@b", then "user @b". */
int pull_classify_sender_db(struct pull_lists *l, const char *user, const char *sender, bool correspondent,
                            struct pull_verdict *out);

/* Every peer entry / one user's entries, malloc'd into *out (caller frees), for
   listing (ferryctl). 0 ok; -1 on a database error or more than PULL_MAX_ENTRIES. */
int pull_peer_load(struct pull_lists *l, struct pull_peer_entry **out, size_t *n);
int pull_user_load(struct pull_lists *l, const char *user, struct pull_user_entry **out, size_t *n);

enum pull_corr_kind { PULL_CORR_SENT, PULL_CORR_PULLED };
/* Remember "user sent mail to address" / "user pulled mail from address". 0 / -1. */
int pull_correspondent_note(struct pull_lists *l, const char *user, const char *address, enum pull_corr_kind kind,
                            time_t now);
/* 1 a correspondent, 0 not, -1 error. */
int pull_correspondent_is(struct pull_lists *l, const char *user, const char *address);

#endif

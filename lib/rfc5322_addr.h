/*
 * rfc5322_addr — the address lists of From:, Sender:, Reply-To:, To:, Cc: (RFC 5322
 * §3.4, obsolete forms of §4.4, RFC 6854 groups in From:/Sender:, RFC 6532 UTF-8).
 * Pure: bytes in, a bounded array out; no allocation, no I/O, no policy.
 *
 * Who calls it: the submission path (does the authenticated user own the From:
 * address?), DKIM and DMARC (the author domain). Input is one field value, normally
 * unfolded by msg_header; a CRLF followed by WSP is still accepted as folding.
 *
 * Accepted: display names made of atoms, quoted strings (quoted-pairs inside) and, from
 * obs-phrase, dots ("Joe Q. Public <jqp@x>"); angle addresses, bare addr-specs; comments
 * anywhere CFWS may be, nested up to RFC5322_COMMENT_DEPTH_MAX with quoted-pairs;
 * groups ("undisclosed-recipients:;", "Team: a@b, c@d;") unless RFC5322_NO_GROUPS;
 * obs-local-part and obs-domain (CFWS around the dots, "john . q@x . y"), a source route
 * in the angle address ("<@relay1,@relay2:user@x>", parsed and dropped), empty list
 * elements (", ,"), domain literals ("[192.0.2.1]", kept with brackets, contents not
 * checked). RFC 2047 encoded-words are atoms and stay as written in display names.
 * With RFC5322_UTF8, well-formed UTF-8 may appear in atoms, quoted strings, comments
 * and domain literals (RFC 6532 §3.2); without it any octet >= 0x80 is an error.
 * Not accepted: nested groups, "<>", an address without '@', a trailing dot, NUL
 * anywhere (obs-qp allows a quoted NUL; the results are C strings, so it is refused).
 *
 * Limits: display name RFC5322_DISPLAY_MAX octets (longer ones are cut and marked),
 * local part RFC5322_LOCAL_MAX and domain RFC5322_DOMAIN_MAX octets (longer is an error).
 *
 * Errors: -1 with err->pos (offset in the value) and err->reason (a sentence fragment
 * that says what is wrong, e.g. "an angle address is not closed with '>'").
 */
#ifndef FERRY_RFC5322_ADDR_H
#define FERRY_RFC5322_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define RFC5322_DISPLAY_MAX        512
#define RFC5322_LOCAL_MAX          256
#define RFC5322_DOMAIN_MAX         255
#define RFC5322_COMMENT_DEPTH_MAX  16

enum rfc5322_flags {
    RFC5322_UTF8      = 1 << 0,   /* RFC 6532: UTF-8 allowed */
    RFC5322_NO_GROUPS = 1 << 1    /* a mailbox-list: groups are an error */
};

struct rfc5322_mailbox {
    char   display[RFC5322_DISPLAY_MAX + 1];  /* as written (quotes, encoded-words and
                                                 inner comments kept), "" when none */
    bool   display_truncated;
    char   local[RFC5322_LOCAL_MAX + 1];      /* quotes, quoted-pairs and CFWS removed */
    char   local_raw[RFC5322_LOCAL_MAX + 1];  /* as written, only CFWS removed */
    char   domain[RFC5322_DOMAIN_MAX + 1];    /* as written, CFWS removed; a literal
                                                 keeps its brackets */
    char   domain_lower[RFC5322_DOMAIN_MAX + 1];   /* ASCII letters lower-cased */
    bool   domain_literal;
    bool   is_group_member;
    size_t group;                             /* which group (0, 1, ...) if a member */
    size_t pos;                               /* offset of the mailbox in the value */
};

struct rfc5322_list {
    size_t count;    /* mailboxes found; only the first `cap` are stored */
    size_t groups;   /* groups found, empty ones included */
};

struct rfc5322_error {
    size_t      pos;
    const char *reason;
};

/*
 * Parse an address-list (or a mailbox-list with RFC5322_NO_GROUPS) from s[0..len).
 * Stores up to cap mailboxes in out (out may be NULL when cap is 0).
 * 0 ok; -1 on a syntax error (*err set; list and out hold what came before it).
 * A list with no address at all (empty, or only commas and CFWS) is an error.
 */
int rfc5322_parse_address_list(const char *s, size_t len, unsigned flags,
                               struct rfc5322_mailbox *out, size_t cap,
                               struct rfc5322_list *list, struct rfc5322_error *err);

enum rfc5322_from_result {
    RFC5322_FROM_OK,        /* exactly one mailbox: its domain is in out */
    RFC5322_FROM_SYNTAX,    /* the value does not parse (*err says where) */
    RFC5322_FROM_NONE,      /* no mailbox, e.g. only an empty group */
    RFC5322_FROM_SEVERAL,   /* more than one mailbox, even if all share the domain */
    RFC5322_FROM_LITERAL    /* the one mailbox has a domain literal, not a name */
};

/*
 * The author domain of a From: value, as DMARC needs it (RFC 7489 §6.6.1): the value
 * must hold exactly one mailbox (group members count, an empty group counts none), and
 * its domain must be a name. out gets that domain with ASCII letters lower-cased (UTF-8
 * labels stay UTF-8: converting to A-labels is the caller's business). Zero mailboxes
 * and several mailboxes are distinct results so the caller can choose (DMARC ignores
 * the first kind and rejects the second). Whether the message has exactly one From:
 * field is not visible here: msg_header_count() tells that. err is set for every
 * result other than OK. RFC5322_NO_GROUPS in flags is ignored (RFC 6854 allows groups).
 */
enum rfc5322_from_result rfc5322_from_domain(const char *value, size_t len, unsigned flags,
                                             char *out, size_t outsz,
                                             struct rfc5322_error *err);

#endif

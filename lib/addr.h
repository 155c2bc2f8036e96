/*
 * addr — RFC 5321 mail addresses, parsed from bytes. Pure: no I/O, no allocation.
 *
 * Grammar (RFC 5321 §4.1.2, §4.1.3; RFC 6531 §3.3 for UTF-8):
 *   Path     = "<" [ A-d-l ":" ] Mailbox ">"       (source route accepted, then ignored)
 *   Mailbox  = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string
 *   address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General-address-literal ) "]"
 * With utf8 allowed, atext and qtext also take well-formed UTF-8 sequences
 * (no overlongs, no surrogates) and domain labels may be U-labels.
 * Limits: local part 64 octets, domain 255 octets, path 256 octets (§4.5.3.1).
 *
 * Errors are reported with a short English reason naming what is wrong.
 */
#ifndef FERRY_ADDR_H
#define FERRY_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#define ADDR_LOCAL_MAX   64
#define ADDR_DOMAIN_MAX  255
#define ADDR_PATH_MAX    256

enum addr_domain_kind {
    ADDR_DOMAIN_NAME,       /* a DNS name (possibly UTF-8) */
    ADDR_DOMAIN_IPV4,       /* [192.0.2.1] */
    ADDR_DOMAIN_IPV6,       /* [IPv6:2001:db8::1] */
    ADDR_DOMAIN_GENERAL,    /* [tag:content] */
    ADDR_DOMAIN_NONE        /* only for RCPT TO:<Postmaster> */
};

struct mailbox {
    char local[ADDR_LOCAL_MAX + 1];     /* exactly as written, quotes kept */
    char domain[ADDR_DOMAIN_MAX + 1];   /* as written; literals keep their brackets */
    enum addr_domain_kind domain_kind;
    bool quoted;                         /* local part was a Quoted-string */
    bool utf8;                           /* contains octets >= 0x80 (needs SMTPUTF8) */
};

/* Parse a whole Mailbox (no angle brackets) from s[0..len). 0 ok, -1 error (*err set). */
int addr_parse_mailbox(const char *s, size_t len, bool allow_utf8,
                       struct mailbox *out, const char **err);

/*
 * Parse a Path beginning at s[0] ("<...>"), stopping after the ">".
 * *consumed gets the number of bytes used. "<>" is accepted only when allow_null,
 * and then *is_null is set and out is zeroed. "<Postmaster>" (any case, no domain)
 * is accepted only when allow_postmaster, with domain_kind ADDR_DOMAIN_NONE.
 */
int addr_parse_path(const char *s, size_t len, bool allow_utf8, bool allow_null,
                    bool allow_postmaster, size_t *consumed, bool *is_null,
                    struct mailbox *out, const char **err);

/* The local part with quoting removed (quoted-pairs resolved). -1 if it does not fit. */
int addr_local_unquoted(const struct mailbox *m, char *out, size_t outsz);

/* "local@domain" (or "local" for ADDR_DOMAIN_NONE). -1 if it does not fit. */
int addr_format(const struct mailbox *m, char *out, size_t outsz);

/* true when s[0..len) is a valid Domain (or, with utf8, a UTF-8 domain). */
bool addr_is_domain(const char *s, size_t len, bool allow_utf8);

/* true when s[0..len) is an address literal, brackets included. */
bool addr_is_address_literal(const char *s, size_t len);

/* true when s[0..len) is well-formed UTF-8 (RFC 3629). */
bool addr_utf8_valid(const char *s, size_t len);

#endif

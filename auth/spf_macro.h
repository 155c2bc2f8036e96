/*
 * spf_macro — SPF macro syntax and expansion (RFC 7208 §7). Pure.
 *
 * Two contexts: a domain-spec (letters s l o d i p v h; the result names a DNS
 * query, so it is cut to 253 octets by dropping labels from the left and loses a
 * trailing dot), and an explain-string (the exp TXT text: c r t allowed too,
 * spaces allowed). An upper-case letter URL-escapes its value (§7.3).
 *
 * %{p} needs DNS; the caller resolves it first (spf_macro_uses_p says when) and
 * passes the name in vars, or "unknown".
 */
#ifndef FERRY_SPF_MACRO_H
#define FERRY_SPF_MACRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum spf_macro_ctx {
    SPF_MACRO_DOMAIN,       /* domain-spec, unknown-modifier value */
    SPF_MACRO_EXPLAIN       /* explanation text from the exp record */
};

struct spf_macro_vars {
    const char *local;      /* local-part of the sender ("postmaster" for <>) */
    const char *sender_domain;
    const char *domain;     /* <domain> of the current check_host() */
    int family;             /* AF_INET or AF_INET6 */
    uint8_t ip[16];         /* 4 octets used for AF_INET */
    const char *helo;
    const char *validated;  /* %{p}: a validated name, or "unknown" */
    const char *receiver;   /* %{r}: receiving host's name, or "unknown" */
    time_t now;             /* %{t} */
};

#define SPF_EXPANSION_MAX 2048

/* Syntax only. 0 valid, -1 with the reason in err. */
int  spf_macro_check(const char *s, size_t len, enum spf_macro_ctx ctx, char *err, size_t errsz);
/* True when the string has a %{p} (or %{P}) macro. */
bool spf_macro_uses_p(const char *s, size_t len);
/* Expand into out (NUL-terminated). 0 ok, -1 syntax error or result too long (reason
   in err). Domain context applies the 253-octet rule and drops a trailing dot; there
   a result that can be no DNS name (one label longer than 253 octets, or an expansion
   past SPF_EXPANSION_MAX) is -2, which the caller treats as a name that does not
   exist (RFC 7208 §4.8), not as an error in the record. */
int  spf_macro_expand(const char *s, size_t len, enum spf_macro_ctx ctx, const struct spf_macro_vars *v,
                      char *out, size_t outsz, char *err, size_t errsz);

#endif

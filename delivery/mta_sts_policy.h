/*
 * mta_sts_policy — the MTA-STS policy file (RFC 8461 §3.2) and MX host matching
 * (§4.1). Pure: bytes in, struct or error out; called by the policy cache (on
 * every fetched or cached body) and by remote delivery (which MX hosts a policy
 * allows).
 *
 * The file: "key: value" lines ended by LF or CRLF (a last line may lack its
 * end), at most STS_POLICY_MAX octets. version (STSv1), mode (enforce, testing,
 * none) and max_age (1 to 10 digits) are required once each (a repeat is ignored:
 * the first counts), mx at least once unless mode is none; unknown keys are
 * ignored. Blank lines are skipped (RFC-NOTES.md). max_age above
 * STS_MAX_AGE_MAX is read as STS_MAX_AGE_MAX. An mx value is "*." or nothing
 * followed by an LDH domain name (A-labels, no final dot), kept in lower case; at
 * most STS_MX_MAX of them. Anything else makes the policy invalid, with one
 * sentence in err (TLS-RPT's sts-policy-invalid).
 *
 * Matching (§4.1): an MX host name (a final dot ignored, case ignored) matches a
 * pattern equal to it, or "*.D" when it is one label followed by ".D" — so
 * "*.example.com" matches "mx.example.com" but neither "example.com" nor
 * "a.b.example.com".
 */
#ifndef FERRY_MTA_STS_POLICY_H
#define FERRY_MTA_STS_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#define STS_POLICY_MAX   (64u * 1024)
#define STS_MAX_AGE_MAX  31557600UL
#define STS_MX_MAX       32
#define STS_MX_LEN       256         /* "*." + a 253-octet name + NUL */

enum sts_mode { STS_MODE_NONE, STS_MODE_TESTING, STS_MODE_ENFORCE };

struct sts_policy {
    enum sts_mode mode;
    unsigned long max_age;
    unsigned n_mx;
    char mx[STS_MX_MAX][STS_MX_LEN];
};

/* 0 ok; -1 invalid (err says why, out unspecified). */
int sts_policy_parse(const char *text, size_t len, struct sts_policy *out, char *err, size_t errlen);

/* The policy file for mode, max_age and the n patterns mx (CRLF lines, in
   §3.2's order), appended to out. -1 when a pattern is not one the parser would
   accept, max_age is above STS_MAX_AGE_MAX, or out is full. */
struct buf;
int sts_policy_format(enum sts_mode mode, unsigned long max_age, const char *const *mx, size_t n, struct buf *out);

/* "enforce", "testing", "none". */
const char *sts_mode_name(enum sts_mode m);

/* Whether MX host name host matches one pattern, or any of p's patterns. */
bool sts_mx_pattern_match(const char *pattern, const char *host);
bool sts_policy_mx_ok(const struct sts_policy *p, const char *host);

#endif

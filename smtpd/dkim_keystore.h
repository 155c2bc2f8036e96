/*
 * dkim_keystore — the signing keys the smtp process uses, read from dkim_key_dir
 * in the layout `ferryctl dkim keygen|rotate` writes (ctl/ctl_dkim.c):
 *
 *   DIR/<domain>/<selector>.key   PEM private key
 *   DIR/<domain>/active           the selectors that sign now, one per line (two
 *                                 lines, an rsa and an ed25519 selector, sign twice:
 *                                 RFC 8463 §4 dual signing)
 *
 * Keys are loaded on first use for a domain and kept; a domain is read again when
 * its `active` file changes (its mtime), so a rotation needs no restart. The store
 * reads `active` and `next` (readable by the smtp user); the key files themselves
 * only the key process opens (smtpd/keyproc.h), which signs on request.
 *
 * Rotation: `ferryctl dkim rotate` leaves DIR/<domain>/next naming a new selector.
 * While it is there, the store looks up <next>._domainkey.<domain> (at most once a
 * minute, asynchronously, through the resolver given to dkim_keystore_set_dns) and,
 * once the published key equals the new key, switches: the new selector replaces
 * the active one of the same algorithm in `active` (written atomically; the
 * directory must then be writable by the daemon's user) and `next` is removed. Until
 * the record is visible, mail goes on being signed with the old key, so no message is
 * signed with a key nobody can look up. A domain without a directory
 * or `active` file simply has no keys; a broken key is logged once per change and
 * signs nothing (mail is never held back for want of a signature).
 */
#ifndef FERRY_DKIM_KEYSTORE_H
#define FERRY_DKIM_KEYSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "auth/dkim_sign.h"

#define DKIM_KEYSTORE_MAX_KEYS 4

struct dkim_keystore;

struct dns_client;

struct keyclient;
/* Keys are used through kc (the key process, smtpd/keyproc.h); the store itself
   reads only the `active` and `next` files. */
struct dkim_keystore *dkim_keystore_new(const char *dir, struct keyclient *kc);
/* A domain or selector usable as a file name: no slash, no leading dot, no space. */
bool dkim_keystore_name_ok(const char *s);
/* Enable the rotation check (without it, `next` is ignored). */
void dkim_keystore_set_dns(struct dkim_keystore *ks, struct dns_client *dns);
void dkim_keystore_free(struct dkim_keystore *ks);
/* The keys for domain (ASCII case-insensitive); 0 when none; -1 when the key
   process cannot be asked now (the message must wait: it would leave unsigned).
   The array and keys stay valid until the next call for the same domain or the
   store is freed. */
ssize_t dkim_keystore_get(struct dkim_keystore *ks, const char *domain, const struct dkim_sign_key **keys);

#endif

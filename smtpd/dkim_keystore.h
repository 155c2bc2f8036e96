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
 * its `active` file changes (its mtime), so a rotation needs no restart. The files
 * must be readable by the daemon's unprivileged user. A domain without a directory
 * or `active` file simply has no keys; a broken key is logged once per change and
 * signs nothing (mail is never held back for want of a signature).
 */
#ifndef FERRY_DKIM_KEYSTORE_H
#define FERRY_DKIM_KEYSTORE_H

#include <stddef.h>

#include "auth/dkim_sign.h"

#define DKIM_KEYSTORE_MAX_KEYS 4

struct dkim_keystore;

struct dkim_keystore *dkim_keystore_new(const char *dir);
void dkim_keystore_free(struct dkim_keystore *ks);
/* The keys for domain (ASCII case-insensitive); 0 when none. The array and keys stay
   valid until the next call for the same domain or the store is freed. */
size_t dkim_keystore_get(struct dkim_keystore *ks, const char *domain, const struct dkim_sign_key **keys);

#endif

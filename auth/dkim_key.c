/* dkim_key — key records, PEM keys and the signature primitives. */
#include "auth/dkim_key.h"
#include "auth/dkim_tags.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

const char *dkim_algo_name(enum dkim_algo a)
{
    switch (a) {
    case DKIM_ALGO_RSA_SHA256:     return "rsa-sha256";
    case DKIM_ALGO_ED25519_SHA256: return "ed25519-sha256";
    case DKIM_ALGO_RSA_SHA1:       return "rsa-sha1";
    }
    return "?";
}

int dkim_algo_parse(const char *s, enum dkim_algo *out)
{
    if (!strcmp(s, "rsa-sha256")) *out = DKIM_ALGO_RSA_SHA256;
    else if (!strcmp(s, "ed25519-sha256")) *out = DKIM_ALGO_ED25519_SHA256;
    else if (!strcmp(s, "rsa-sha1")) *out = DKIM_ALGO_RSA_SHA1;
    else return -1;
    return 0;
}

/* Does the colon-separated list v contain word (case-insensitive, FWS around items)? */
static bool list_has(const char *v, size_t len, const char *word)
{
    size_t wl = strlen(word), i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && v[j] != ':')
            j++;
        size_t a = i, b = j;
        while (a < b && (v[a] == ' ' || v[a] == '\t' || v[a] == '\r' || v[a] == '\n')) a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t' || v[b - 1] == '\r' || v[b - 1] == '\n')) b--;
        if (b - a == wl && !strncasecmp(v + a, word, wl))
            return true;
        i = j + 1;
    }
    return false;
}

enum dkim_keyerr dkim_pubkey_parse(const char *rec, size_t len, struct dkim_pubkey *key, char *err, size_t errsz)
{
    memset(key, 0, sizeof *key);
    struct dkim_taglist tl;
    char why[128];
    if (dkim_tags_parse(rec, len, &tl, why, sizeof why) < 0) {
        snprintf(err, errsz, "key record is malformed: %s", why);
        return DKIM_KEY_SYNTAX;
    }
    /* v= is optional, but when present it must be first and exactly DKIM1 (§3.6.1). */
    const struct dkim_tag *v = dkim_tags_get(&tl, "v");
    if (v && (v != &tl.tags[0] || v->value_len != 5 || memcmp(v->value, "DKIM1", 5))) {
        snprintf(err, errsz, "key record has a v= that is not DKIM1 in first place");
        return DKIM_KEY_SYNTAX;
    }
    const struct dkim_tag *k = dkim_tags_get(&tl, "k");
    if (!k || (k->value_len == 3 && !memcmp(k->value, "rsa", 3))) {
        key->rsa = true;
    } else if (k->value_len == 7 && !memcmp(k->value, "ed25519", 7)) {
        key->rsa = false;
    } else {
        snprintf(err, errsz, "key record has an unknown key type k=%.*s", (int)(k->value_len > 20 ? 20 : k->value_len), k->value);
        return DKIM_KEY_UNUSABLE;
    }
    const struct dkim_tag *h = dkim_tags_get(&tl, "h");
    key->sha256_ok = !h || list_has(h->value, h->value_len, "sha256");
    key->sha1_listed = !h || list_has(h->value, h->value_len, "sha1");
    const struct dkim_tag *s = dkim_tags_get(&tl, "s");
    if (s && !list_has(s->value, s->value_len, "email") && !list_has(s->value, s->value_len, "*")) {
        snprintf(err, errsz, "key record's service types s= exclude email");
        return DKIM_KEY_UNUSABLE;
    }
    const struct dkim_tag *t = dkim_tags_get(&tl, "t");
    if (t) {
        key->testing = list_has(t->value, t->value_len, "y");
        key->strict = list_has(t->value, t->value_len, "s");
    }
    const struct dkim_tag *p = dkim_tags_get(&tl, "p");
    if (!p) {
        snprintf(err, errsz, "key record has no p= tag");
        return DKIM_KEY_SYNTAX;
    }
    unsigned char der[DKIM_RSA_MAX_BITS / 8 + 256];
    size_t dlen;
    if (dkim_base64_decode(p->value, p->value_len, der, sizeof der, &dlen) < 0) {
        snprintf(err, errsz, "key record's p= is not valid base64 or is too long");
        return DKIM_KEY_SYNTAX;
    }
    if (dlen == 0) {
        snprintf(err, errsz, "key revoked (empty p=)");
        return DKIM_KEY_REVOKED;
    }
    if (!key->rsa) {
        if (dlen != 32) {
            snprintf(err, errsz, "ed25519 key in p= is %zu octets, not 32", dlen);
            return DKIM_KEY_SYNTAX;
        }
        key->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, dlen);
        key->bits = 256;
    } else {
        /* SubjectPublicKeyInfo is what every signer publishes; a bare RSAPublicKey
           (the RFC's literal wording) is accepted as well. */
        const unsigned char *q = der;
        key->pkey = d2i_PUBKEY(NULL, &q, (long)dlen);
        if (!key->pkey || q != der + dlen) {
            EVP_PKEY_free(key->pkey);
            q = der;
            key->pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)dlen);
        }
        if (key->pkey && EVP_PKEY_get_base_id(key->pkey) != EVP_PKEY_RSA) {
            EVP_PKEY_free(key->pkey);
            key->pkey = NULL;
        }
        if (key->pkey)
            key->bits = EVP_PKEY_get_bits(key->pkey);
    }
    if (!key->pkey) {
        snprintf(err, errsz, "key record's p= is not a valid %s public key", key->rsa ? "RSA" : "ed25519");
        return DKIM_KEY_SYNTAX;
    }
    if (key->rsa && (key->bits < DKIM_RSA_MIN_BITS || key->bits > DKIM_RSA_MAX_BITS)) {
        snprintf(err, errsz, "RSA key of %d bits is outside %d..%d (RFC 8301)", key->bits,
                 DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
        dkim_pubkey_free(key);
        return DKIM_KEY_UNUSABLE;
    }
    return DKIM_KEY_OK;
}

void dkim_pubkey_free(struct dkim_pubkey *key)
{
    EVP_PKEY_free(key->pkey);
    key->pkey = NULL;
}

EVP_PKEY *dkim_privkey_load(const char *path, enum dkim_algo *algo, char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errsz, "cannot open key file %s: %s", path, strerror(errno));
        return NULL;
    }
    return dkim_privkey_load_fd(fd, path, algo, err, errsz);
}

/* An encrypted key must fail, not make OpenSSL prompt on a terminal for its
   passphrase (the key process would hang in the foreground). */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* A PEM private key is a few KB; anything much larger is not one. */
#define DKIM_KEY_FILE_MAX (64 * 1024)

EVP_PKEY *dkim_privkey_load_fd(int fd, const char *path, enum dkim_algo *algo, char *err, size_t errsz)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > DKIM_KEY_FILE_MAX) {
        snprintf(err, errsz, "key file %s is %lld bytes, larger than any key (%d)", path, (long long)st.st_size,
                 DKIM_KEY_FILE_MAX);
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        snprintf(err, errsz, "cannot read key file %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
    fclose(f);
    if (!k) {
        snprintf(err, errsz, "key file %s holds no PEM private key", path);
        return NULL;
    }
    int id = EVP_PKEY_get_base_id(k);
    if (id == EVP_PKEY_RSA) {
        int bits = EVP_PKEY_get_bits(k);
        if (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS) {
            snprintf(err, errsz, "key file %s holds a %d-bit RSA key (need %d..%d)", path, bits,
                     DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
            EVP_PKEY_free(k);
            return NULL;
        }
        *algo = DKIM_ALGO_RSA_SHA256;
    } else if (id == EVP_PKEY_ED25519) {
        *algo = DKIM_ALGO_ED25519_SHA256;
    } else {
        snprintf(err, errsz, "key file %s holds neither an RSA nor an ed25519 key", path);
        EVP_PKEY_free(k);
        return NULL;
    }
    return k;
}

EVP_PKEY *dkim_keygen(enum dkim_algo algo, int bits, char *err, size_t errsz)
{
    EVP_PKEY *k;
    if (algo == DKIM_ALGO_ED25519_SHA256) {
        k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    } else {
        if (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS) {
            snprintf(err, errsz, "RSA key size %d is outside %d..%d", bits, DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
            return NULL;
        }
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    }
    if (!k)
        snprintf(err, errsz, "key generation failed in OpenSSL");
    return k;
}

int dkim_privkey_write(EVP_PKEY *k, const char *path, char *err, size_t errsz)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errsz, "cannot create key file %s: %s", path, strerror(errno));
        return -1;
    }
    /* An existing file keeps its mode through O_CREAT: force 0600 before writing. */
    FILE *f = fchmod(fd, 0600) == 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        snprintf(err, errsz, "cannot write key file %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int ok = PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        ok = 0;
    if (fclose(f) != 0)
        ok = 0;
    if (!ok) {
        snprintf(err, errsz, "cannot write key file %s", path);
        return -1;
    }
    return 0;
}

int dkim_record_text(EVP_PKEY *k, char *out, size_t outsz)
{
    unsigned char raw[DKIM_RSA_MAX_BITS / 8 + 256];
    size_t rlen = sizeof raw;
    const char *type;
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519) {
        if (EVP_PKEY_get_raw_public_key(k, raw, &rlen) != 1)
            return -1;
        type = "ed25519";
    } else {
        int n = i2d_PUBKEY(k, NULL);
        if (n <= 0 || (size_t)n > sizeof raw)
            return -1;
        unsigned char *q = raw;
        i2d_PUBKEY(k, &q);
        rlen = (size_t)n;
        type = "rsa";
    }
    int n = snprintf(out, outsz, "v=DKIM1; k=%s; p=", type);
    if (n < 0 || (size_t)n >= outsz)
        return -1;
    return dkim_base64_encode(raw, rlen, out + n, outsz - (size_t)n);
}

int dkim_record_zone_line(const char *selector, const char *domain, const char *text, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s._domainkey.%s IN TXT", selector, domain);
    if (n < 0 || (size_t)n >= outsz)
        return -1;
    size_t o = (size_t)n, len = strlen(text);
    for (size_t i = 0; i < len; i += 255) {
        size_t chunk = len - i > 255 ? 255 : len - i;
        if (o + chunk + 4 >= outsz)
            return -1;
        out[o++] = ' ';
        out[o++] = '"';
        memcpy(out + o, text + i, chunk);
        o += chunk;
        out[o++] = '"';
    }
    out[o] = '\0';
    return 0;
}

static int sha256(const void *data, size_t len, unsigned char md[32])
{
    unsigned int mdlen = 0;
    return EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) == 1 && mdlen == 32 ? 0 : -1;
}

int dkim_crypto_sign(EVP_PKEY *k, enum dkim_algo a, const void *data, size_t len,
                     unsigned char *sig, size_t *siglen)
{
    unsigned char md[32];
    if (sha256(data, len, md) < 0)
        return -1;
    return dkim_crypto_sign_digest(k, a, md, sig, siglen);
}

int dkim_crypto_sign_digest(EVP_PKEY *k, enum dkim_algo a, const unsigned char md[32], unsigned char *sig,
                            size_t *siglen)
{
    int ok = 0;
    if (a == DKIM_ALGO_ED25519_SHA256) {
        /* RFC 8463 §3: PureEd25519 over the SHA-256 digest itself. */
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestSign(ctx, sig, siglen, md, 32) == 1;
        EVP_MD_CTX_free(ctx);
    } else if (a == DKIM_ALGO_RSA_SHA256) {
        /* RSASSA-PKCS1-v1_5 over a digest computed elsewhere: the same octets as
           signing the data with SHA-256. */
        EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(k, NULL);
        size_t need = 0;
        ok = pc && EVP_PKEY_sign_init(pc) == 1 && EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 && EVP_PKEY_sign(pc, NULL, &need, md, 32) == 1 &&
             need <= *siglen && EVP_PKEY_sign(pc, sig, siglen, md, 32) == 1;
        EVP_PKEY_CTX_free(pc);
    }
    return ok ? 0 : -1;
}

int dkim_crypto_verify(EVP_PKEY *k, enum dkim_algo a, const void *data, size_t len,
                       const unsigned char *sig, size_t siglen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -1;
    int rc = -1;
    if (a == DKIM_ALGO_ED25519_SHA256) {
        unsigned char md[32];
        if (sha256(data, len, md) == 0 && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1)
            rc = EVP_DigestVerify(ctx, sig, siglen, md, sizeof md) == 1 ? 1 : 0;
    } else if (a == DKIM_ALGO_RSA_SHA256) {
        if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, k) == 1)
            rc = EVP_DigestVerify(ctx, sig, siglen, data, len) == 1 ? 1 : 0;
    }
    EVP_MD_CTX_free(ctx);
    return rc;
}

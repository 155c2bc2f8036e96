/* credentials — see credentials.h. */
#include "auth/credentials.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

/* Length of the UTF-8 sequence at s (1-4), 0 when malformed. */
static size_t utf8_len(const unsigned char *s, size_t n, unsigned *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (!len || len > n)
        return 0;
    unsigned v = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
        return 0;
    *cp = v;
    return len;
}

/* The non-ASCII space characters of RFC 3454 C.1.2. */
static bool is_space_cp(unsigned cp)
{
    return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200B) || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

int cred_prepare_password(const char *pw, size_t len, char *out, size_t outsz, const char **why)
{
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)pw;
    if (len == 0) {
        *why = "the password is empty";
        return -1;
    }
    if (len > CRED_PASSWORD_MAX) {
        *why = "the password is too long";
        return -1;
    }
    for (size_t i = 0; i < len;) {
        unsigned cp;
        size_t k = utf8_len(s + i, len - i, &cp);
        if (!k) {
            *why = "the password is not valid UTF-8";
            return -1;
        }
        if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
            *why = "the password contains a control character";
            return -1;
        }
        if (o + k + 1 > outsz) {
            *why = "the password is too long";
            return -1;
        }
        if (is_space_cp(cp)) {
            out[o++] = ' ';
        } else {
            memcpy(out + o, s + i, k);
            o += k;
        }
        i += k;
    }
    out[o] = '\0';
    return 0;
}

void cred_hmac(const unsigned char *key, size_t klen, const void *data, size_t dlen, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)klen, data, dlen, out, &n);
}

void cred_sha256(const void *data, size_t len, unsigned char out[32])
{
    EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL);
}

int cred_derive(const char *pw, size_t len, const unsigned char *salt, size_t salt_len, unsigned iterations,
                struct credentials *c)
{
    char prepared[CRED_PASSWORD_MAX * 2 + 1];
    const char *why;
    if (cred_prepare_password(pw, len, prepared, sizeof prepared, &why) < 0 || salt_len > CRED_SALT_LEN * 4 ||
        salt_len > sizeof c->salt || iterations == 0)
        return -1;
    unsigned char salted[32], client_key[32];
    if (PKCS5_PBKDF2_HMAC(prepared, (int)strlen(prepared), salt, (int)salt_len, (int)iterations, EVP_sha256(), 32,
                          salted) != 1)
        return -1;
    memcpy(c->salt, salt, salt_len);
    c->salt_len = salt_len;
    c->iterations = iterations;
    cred_hmac(salted, 32, "Client Key", 10, client_key);
    cred_sha256(client_key, 32, c->stored_key);
    cred_hmac(salted, 32, "Server Key", 10, c->server_key);
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(prepared, sizeof prepared);
    return 0;
}

int cred_make(const char *pw, size_t len, unsigned iterations, struct credentials *c, const char **why)
{
    char prepared[CRED_PASSWORD_MAX * 2 + 1];
    if (cred_prepare_password(pw, len, prepared, sizeof prepared, why) < 0)
        return -1;
    unsigned char salt[CRED_SALT_LEN];
    if (RAND_bytes(salt, sizeof salt) != 1) {
        *why = "no random numbers for the salt";
        return -1;
    }
    if (cred_derive(pw, len, salt, sizeof salt, iterations, c) < 0) {
        *why = "cannot derive the keys";
        return -1;
    }
    return 0;
}

bool cred_check_password(const struct credentials *c, const char *pw, size_t len)
{
    struct credentials try;
    if (cred_derive(pw, len, c->salt, c->salt_len, c->iterations, &try) < 0)
        return false;
    return CRYPTO_memcmp(try.stored_key, c->stored_key, CRED_KEY_LEN) == 0;
}

int cred_b64_encode(const unsigned char *in, size_t len, char *out, size_t outsz)
{
    if (outsz < 4 * ((len + 2) / 3) + 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return 0;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int cred_b64_decode(const char *in, size_t len, unsigned char *out, size_t outsz, size_t *outlen)
{
    if (len % 4 != 0)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=') {
                /* padding only at the very end, at most two */
                if (i + 4 != len || k < 2)
                    return -1;
                v[k] = 0;
                pad++;
            } else {
                if (pad)
                    return -1;
                v[k] = b64val(in[i + k]);
                if (v[k] < 0)
                    return -1;
            }
        }
        unsigned triple = (unsigned)(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
        size_t n = 3 - (size_t)pad;
        if (o + n > outsz)
            return -1;
        unsigned char b[3] = { (unsigned char)(triple >> 16), (unsigned char)(triple >> 8), (unsigned char)triple };
        memcpy(out + o, b, n);
        o += n;
    }
    *outlen = o;
    return 0;
}

/* sasl_verify — see sasl_verify.h. */
#include "auth/sasl_verify.h"
#include "lib/buf.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

struct sasl_verifier {
    sasl_lookup_fn lookup;
    void *arg;
    unsigned char secret[32];   /* keys the made-up salts of unknown users */
};

struct sasl_verifier *sasl_verifier_new(sasl_lookup_fn lookup, void *arg)
{
    struct sasl_verifier *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    if (RAND_bytes(v->secret, sizeof v->secret) != 1) {
        free(v);
        return NULL;
    }
    v->lookup = lookup;
    v->arg = arg;
    return v;
}

void sasl_verifier_free(struct sasl_verifier *v)
{
    if (!v)
        return;
    OPENSSL_cleanse(v, sizeof *v);
    free(v);
}

/* The user's credentials; an unknown user gets keys derived from nothing, so the
   work and the answer look the same until the very end. */
static bool load(struct sasl_verifier *v, const char *user, struct credentials *c)
{
    if (v->lookup(v->arg, user, c) == 0)
        return true;
    unsigned char salt[32];
    cred_hmac(v->secret, sizeof v->secret, user, strlen(user), salt);
    cred_derive("not a password", 14, salt, CRED_SALT_LEN, CRED_DEFAULT_ITERATIONS, c);
    return false;
}

static void no(struct sasl_verdict *out, const char *why)
{
    out->ok = 0;
    str_copy(out->reason, why, sizeof out->reason);
}

void sasl_verify(struct sasl_verifier *v, const struct sasl_request *q, struct sasl_verdict *out)
{
    memset(out, 0, sizeof *out);
    struct credentials c;
    bool known = load(v, q->user, &c);
    switch (q->q) {
    case SASL_Q_PASSWORD: {
        bool ok = cred_check_password(&c, (const char *)q->data, q->len);
        if (!known)
            no(out, "unknown user");
        else if (!ok)
            no(out, "wrong password");
        else
            out->ok = 1;
        break;
    }
    case SASL_Q_SCRAM_PARAMS:
        memcpy(out->salt, c.salt, c.salt_len);
        out->salt_len = c.salt_len;
        out->iterations = c.iterations;
        out->ok = 1;
        break;
    case SASL_Q_SCRAM_PROOF: {
        unsigned char client_sig[32], client_key[32], stored[32];
        cred_hmac(c.stored_key, CRED_KEY_LEN, q->data, q->len, client_sig);
        for (int i = 0; i < 32; i++)
            client_key[i] = q->proof[i] ^ client_sig[i];
        cred_sha256(client_key, 32, stored);
        bool ok = CRYPTO_memcmp(stored, c.stored_key, 32) == 0;
        if (!known)
            no(out, "unknown user");
        else if (!ok)
            no(out, "wrong password (SCRAM proof)");
        else {
            cred_hmac(c.server_key, CRED_KEY_LEN, q->data, q->len, out->server_sig);
            out->ok = 1;
        }
        OPENSSL_cleanse(client_key, sizeof client_key);
        break;
    }
    default:
        no(out, "an unknown question");
    }
    OPENSSL_cleanse(&c, sizeof c);
}

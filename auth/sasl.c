/* sasl — see sasl.h. */
#include "auth/sasl.h"
#include "lib/buf.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mech { M_PLAIN, M_LOGIN, M_SCRAM };
enum step { S_START, S_LOGIN_USER, S_LOGIN_PASS, S_WAIT, S_SCRAM_FINAL, S_SCRAM_ACK, S_DONE };

struct sasl_server {
    enum mech mech;
    enum step step;
    enum sasl_question q;       /* pending while step == S_WAIT */
    char user[SASL_USER_MAX + 1];
    const char *reason;
    char reason_buf[96];        /* the verifier's reason */
    unsigned char *password;    /* PASSWORD: the copy asked about, wiped after */
    size_t password_len;
    unsigned char proof[CRED_KEY_LEN];
    /* SCRAM */
    char nonce[128];            /* server part, set by tests or random */
    char gs2[8];                /* "n,," or "y,," */
    char client_nonce[128];     /* until the server-first message is made */
    char combined_nonce[256];   /* client nonce + ours, as sent in server-first */
    struct buf auth_message;    /* client-first-bare "," server-first "," client-final-without-proof */
};

const char *sasl_mechanisms(void)
{
    return "PLAIN LOGIN SCRAM-SHA-256";
}

struct sasl_server *sasl_start(const char *mech)
{
    enum mech m;
    if (str_ieq(mech, "PLAIN"))
        m = M_PLAIN;
    else if (str_ieq(mech, "LOGIN"))
        m = M_LOGIN;
    else if (str_ieq(mech, "SCRAM-SHA-256"))
        m = M_SCRAM;
    else
        return NULL;
    struct sasl_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->mech = m;
    buf_init(&s->auth_message, SASL_AUTH_MESSAGE_MAX);
    return s;
}

void sasl_free(struct sasl_server *s)
{
    if (!s)
        return;
    buf_free(&s->auth_message);
    if (s->password) {
        OPENSSL_cleanse(s->password, s->password_len);
        free(s->password);
    }
    free(s);
}

const char *sasl_user(const struct sasl_server *s)
{
    return s->user;
}

const char *sasl_reason(const struct sasl_server *s)
{
    return s->reason ? s->reason : "";
}

const char *sasl_mech_name(const struct sasl_server *s)
{
    return s->mech == M_PLAIN ? "PLAIN" : s->mech == M_LOGIN ? "LOGIN" : "SCRAM-SHA-256";
}

void sasl_set_nonce(struct sasl_server *s, const char *nonce)
{
    str_copy(s->nonce, nonce, sizeof s->nonce);
}

static enum sasl_status fail(struct sasl_server *s, enum sasl_status st, const char *why)
{
    s->reason = why;
    s->step = S_DONE;
    return st;
}

static void challenge_b64(const char *text, size_t len, char *out, size_t outsz)
{
    if (cred_b64_encode((const unsigned char *)text, len, out, outsz) < 0)
        out[0] = '\0';
}

/* Stop and ask the verifier whether pw is the user's password. */
static enum sasl_status ask_password(struct sasl_server *s, const char *pw, size_t len)
{
    s->password = malloc(len ? len : 1);
    if (!s->password)
        return fail(s, SASL_FAIL, "out of memory");
    memcpy(s->password, pw, len);
    s->password_len = len;
    s->q = SASL_Q_PASSWORD;
    s->step = S_WAIT;
    return SASL_VERIFY;
}

static bool set_user(struct sasl_server *s, const char *u, size_t len)
{
    if (len == 0 || len > SASL_USER_MAX || memchr(u, '\0', len))
        return false;
    memcpy(s->user, u, len);
    s->user[len] = '\0';
    str_lower(s->user);
    return true;
}

/* PLAIN: [authzid] NUL authcid NUL passwd (RFC 4616 §2). */
static enum sasl_status plain(struct sasl_server *s, const unsigned char *m, size_t n)
{
    const unsigned char *z1 = memchr(m, 0, n);
    const unsigned char *z2 = z1 ? memchr(z1 + 1, 0, n - (size_t)(z1 + 1 - m)) : NULL;
    if (!z1 || !z2)
        return fail(s, SASL_MALFORMED, "PLAIN message without its two NULs");
    size_t zlen = (size_t)(z1 - m), ulen = (size_t)(z2 - z1 - 1), plen = n - (size_t)(z2 + 1 - m);
    if (!set_user(s, (const char *)z1 + 1, ulen))
        return fail(s, SASL_MALFORMED, "PLAIN message without a user name");
    if (zlen && (zlen != ulen || !str_nieq((const char *)m, s->user, zlen)))
        return fail(s, SASL_FAIL, "PLAIN authorization identity differs from the user");
    return ask_password(s, (const char *)z2 + 1, plen);
}

/* A SCRAM attribute "x=value" at *p in msg; advances past the following ','. */
static bool scram_attr(const char *msg, size_t n, size_t *p, char name, const char **v, size_t *vlen)
{
    if (*p + 2 > n || msg[*p] != name || msg[*p + 1] != '=')
        return false;
    size_t start = *p + 2, end = start;
    while (end < n && msg[end] != ',')
        end++;
    *v = msg + start;
    *vlen = end - start;
    *p = end < n ? end + 1 : end;
    return true;
}

/* saslname: "=2C" → ',', "=3D" → '='; any other '=' is malformed (RFC 5802 §5.1). */
static bool decode_saslname(const char *v, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '=') {
            if (i + 3 <= n && v[i + 1] == '2' && v[i + 2] == 'C')
                c = ',';
            else if (i + 3 <= n && v[i + 1] == '3' && v[i + 2] == 'D')
                c = '=';
            else
                return false;
            i += 2;
        }
        if (c == '\0' || o + 1 >= outsz)
            return false;
        out[o++] = c;
    }
    out[o] = '\0';
    return o > 0;
}

static enum sasl_status scram_first(struct sasl_server *s, const char *m, size_t n, char *ch, size_t chsz)
{
    /* gs2-header: ("n" / "y" / "p=...") "," [ "a=" saslname ] "," */
    if (n >= 2 && m[0] == 'p' && m[1] == '=')
        return fail(s, SASL_FAIL, "channel binding requested, not supported");
    if (n < 3 || (m[0] != 'n' && m[0] != 'y') || m[1] != ',')
        return fail(s, SASL_MALFORMED, "SCRAM client-first without a valid GS2 header");
    size_t p = 2;
    char authzid[SASL_USER_MAX + 1] = "";
    if (m[p] == 'a') {
        const char *v;
        size_t vl;
        if (!scram_attr(m, n, &p, 'a', &v, &vl) || !decode_saslname(v, vl, authzid, sizeof authzid))
            return fail(s, SASL_MALFORMED, "SCRAM bad authzid");
    } else if (m[p] == ',') {
        p++;
    } else {
        return fail(s, SASL_MALFORMED, "SCRAM client-first without a valid GS2 header");
    }
    snprintf(s->gs2, sizeof s->gs2, "%c,,", m[0]);
    if (authzid[0])
        return fail(s, SASL_FAIL, "SCRAM authorization identities are not supported");
    size_t bare = p;
    const char *v, *nonce;
    size_t vl, nl;
    if (p < n && m[p] == 'm')
        return fail(s, SASL_FAIL, "SCRAM mandatory extension not supported");
    char user[SASL_USER_MAX + 1];
    if (!scram_attr(m, n, &p, 'n', &v, &vl) || !decode_saslname(v, vl, user, sizeof user))
        return fail(s, SASL_MALFORMED, "SCRAM client-first without a user name");
    if (!scram_attr(m, n, &p, 'r', &nonce, &nl) || nl == 0)
        return fail(s, SASL_MALFORMED, "SCRAM client-first without a nonce");
    for (size_t i = 0; i < nl; i++)
        if (nonce[i] < 0x21 || nonce[i] > 0x7E)
            return fail(s, SASL_MALFORMED, "SCRAM nonce with an unprintable character");
    if (!set_user(s, user, strlen(user)))
        return fail(s, SASL_MALFORMED, "SCRAM bad user name");
    if (nl >= sizeof s->client_nonce)
        return fail(s, SASL_MALFORMED, "SCRAM nonce too long");
    memcpy(s->client_nonce, nonce, nl);
    s->client_nonce[nl] = '\0';
    /* AuthMessage = client-first-message-bare "," server-first-message "," ... */
    if (buf_append(&s->auth_message, m + bare, n - bare) < 0)
        return fail(s, SASL_MALFORMED, "SCRAM message too long");
    s->q = SASL_Q_SCRAM_PARAMS;
    s->step = S_WAIT;
    return SASL_VERIFY;
}

/* The salt and iteration count are known: the server-first message. */
static enum sasl_status scram_server_first(struct sasl_server *s, const struct sasl_verdict *v, char *ch,
                                           size_t chsz)
{
    if (v->ok < 0)
        return fail(s, SASL_TEMPFAIL, "the user database cannot be asked");
    if (v->ok == 0 || v->salt_len == 0 || v->salt_len > CRED_SALT_LEN || v->iterations == 0)
        return fail(s, SASL_FAIL, "no SCRAM parameters for the user");
    if (!s->nonce[0]) {
        unsigned char r[18];
        if (RAND_bytes(r, sizeof r) != 1)
            return fail(s, SASL_FAIL, "no random numbers");
        cred_b64_encode(r, sizeof r, s->nonce, sizeof s->nonce);
    }
    char salt64[64], first[512];
    cred_b64_encode(v->salt, v->salt_len, salt64, sizeof salt64);
    int fl = snprintf(first, sizeof first, "r=%s%s,s=%s,i=%u", s->client_nonce, s->nonce, salt64, v->iterations);
    if (fl < 0 || (size_t)fl >= sizeof first)
        return fail(s, SASL_MALFORMED, "SCRAM nonce too long");
    if (buf_puts(&s->auth_message, ",") < 0 || buf_puts(&s->auth_message, first) < 0 ||
        buf_puts(&s->auth_message, ",") < 0)
        return fail(s, SASL_MALFORMED, "SCRAM message too long");
    snprintf(s->combined_nonce, sizeof s->combined_nonce, "%s%s", s->client_nonce, s->nonce);
    challenge_b64(first, (size_t)fl, ch, chsz);
    s->step = S_SCRAM_FINAL;
    return SASL_CONTINUE;
}

static enum sasl_status scram_final(struct sasl_server *s, const char *m, size_t n, char *ch, size_t chsz)
{
    /* client-final: c=<b64 gs2 header>,r=<nonce>[,ext],p=<proof> */
    size_t p = 0;
    const char *c, *r, *proof;
    size_t cl, rl, pl;
    if (!scram_attr(m, n, &p, 'c', &c, &cl) || !scram_attr(m, n, &p, 'r', &r, &rl))
        return fail(s, SASL_MALFORMED, "SCRAM client-final without c= and r=");
    char want_c[16];
    cred_b64_encode((const unsigned char *)s->gs2, strlen(s->gs2), want_c, sizeof want_c);
    if (cl != strlen(want_c) || memcmp(c, want_c, cl) != 0)
        return fail(s, SASL_FAIL, "SCRAM channel binding data does not match the GS2 header");
    /* the nonce must be the one we sent: client part + ours */
    if (rl != strlen(s->combined_nonce) || memcmp(r, s->combined_nonce, rl) != 0)
        return fail(s, SASL_FAIL, "SCRAM nonce does not match");
    size_t without_proof;
    while (p < n && m[p] != 'p') {       /* skip extensions */
        while (p < n && m[p] != ',')
            p++;
        p++;
    }
    if (!scram_attr(m, n, &p, 'p', &proof, &pl) || p != n)
        return fail(s, SASL_MALFORMED, "SCRAM client-final without the proof last");
    without_proof = (size_t)(proof - m) - 3;     /* before ",p=" */
    unsigned char client_proof[64];
    size_t cpl;
    if (cred_b64_decode(proof, pl, client_proof, sizeof client_proof, &cpl) < 0 || cpl != CRED_KEY_LEN)
        return fail(s, SASL_MALFORMED, "SCRAM proof is not 32 octets of base64");
    if (buf_append(&s->auth_message, m, without_proof) < 0)
        return fail(s, SASL_MALFORMED, "SCRAM message too long");
    memcpy(s->proof, client_proof, CRED_KEY_LEN);
    s->q = SASL_Q_SCRAM_PROOF;
    s->step = S_WAIT;
    return SASL_VERIFY;
}

/* One decoded client message. */
static enum sasl_status feed(struct sasl_server *s, const unsigned char *m, size_t n, char *ch, size_t chsz)
{
    switch (s->step) {
    case S_START:
        if (s->mech == M_PLAIN)
            return plain(s, m, n);
        if (s->mech == M_SCRAM)
            return scram_first(s, (const char *)m, n, ch, chsz);
        /* LOGIN with an initial response: it is the user name */
        if (!set_user(s, (const char *)m, n))
            return fail(s, SASL_MALFORMED, "LOGIN without a user name");
        challenge_b64("Password:", 9, ch, chsz);
        s->step = S_LOGIN_PASS;
        return SASL_CONTINUE;
    case S_LOGIN_USER:
        if (!set_user(s, (const char *)m, n))
            return fail(s, SASL_MALFORMED, "LOGIN without a user name");
        challenge_b64("Password:", 9, ch, chsz);
        s->step = S_LOGIN_PASS;
        return SASL_CONTINUE;
    case S_LOGIN_PASS:
        return ask_password(s, (const char *)m, n);
    case S_SCRAM_FINAL:
        return scram_final(s, (const char *)m, n, ch, chsz);
    case S_SCRAM_ACK:
        if (n != 0)
            return fail(s, SASL_MALFORMED, "SCRAM: expected an empty response after the server signature");
        s->step = S_DONE;
        return SASL_SUCCESS;
    case S_WAIT:
    case S_DONE:
        break;
    }
    return fail(s, SASL_MALFORMED, "the exchange is over");
}

enum sasl_status sasl_step(struct sasl_server *s, const char *line, size_t len, char *ch, size_t chsz)
{
    ch[0] = '\0';
    if (len == 1 && line[0] == '*')
        return fail(s, SASL_CANCELLED, "cancelled by the client");
    if (len > SASL_LINE_MAX)
        return fail(s, SASL_MALFORMED, "response longer than 12288 octets");
    unsigned char *m = malloc(len / 4 * 3 + 4);
    size_t n = 0;
    if (!m)
        return fail(s, SASL_FAIL, "out of memory");
    if (cred_b64_decode(line, len, m, len / 4 * 3 + 3, &n) < 0) {
        free(m);
        return fail(s, SASL_MALFORMED, "response is not base64");
    }
    enum sasl_status st = feed(s, m, n, ch, chsz);
    OPENSSL_cleanse(m, n);
    free(m);
    return st;
}

enum sasl_status sasl_initial(struct sasl_server *s, const char *ir, char *ch, size_t chsz)
{
    ch[0] = '\0';
    if (!ir || !*ir) {
        /* No initial response: ask for it ("334 " empty, or LOGIN's "Username:"). */
        if (s->mech == M_LOGIN) {
            challenge_b64("Username:", 9, ch, chsz);
            s->step = S_LOGIN_USER;
        }
        return SASL_CONTINUE;
    }
    if (strcmp(ir, "=") == 0)
        return feed(s, (const unsigned char *)"", 0, ch, chsz);     /* an empty initial response */
    return sasl_step(s, ir, strlen(ir), ch, chsz);
}

void sasl_get_request(const struct sasl_server *s, struct sasl_request *out)
{
    memset(out, 0, sizeof *out);
    out->q = s->q;
    out->user = s->user;
    if (s->q == SASL_Q_PASSWORD) {
        out->data = s->password;
        out->len = s->password_len;
    } else if (s->q == SASL_Q_SCRAM_PROOF) {
        out->data = (const unsigned char *)s->auth_message.data;
        out->len = s->auth_message.len;
        memcpy(out->proof, s->proof, sizeof out->proof);
    }
}

static enum sasl_status verdict_fail(struct sasl_server *s, const struct sasl_verdict *v, const char *dflt)
{
    if (v->ok < 0)
        return fail(s, SASL_TEMPFAIL, "the user database cannot be asked");
    str_copy(s->reason_buf, v->reason[0] ? v->reason : dflt, sizeof s->reason_buf);
    return fail(s, SASL_FAIL, s->reason_buf);
}

enum sasl_status sasl_answer(struct sasl_server *s, const struct sasl_verdict *v, char *ch, size_t chsz)
{
    ch[0] = '\0';
    if (s->step != S_WAIT)
        return fail(s, SASL_MALFORMED, "an answer without a question");
    switch (s->q) {
    case SASL_Q_PASSWORD:
        OPENSSL_cleanse(s->password, s->password_len);
        free(s->password);
        s->password = NULL;
        if (v->ok != 1)
            return verdict_fail(s, v, "wrong password");
        s->step = S_DONE;
        return SASL_SUCCESS;
    case SASL_Q_SCRAM_PARAMS:
        return scram_server_first(s, v, ch, chsz);
    case SASL_Q_SCRAM_PROOF: {
        if (v->ok != 1)
            return verdict_fail(s, v, "wrong password (SCRAM proof)");
        char sig64[64], final[80];
        cred_b64_encode(v->server_sig, CRED_KEY_LEN, sig64, sizeof sig64);
        int fl = snprintf(final, sizeof final, "v=%s", sig64);
        challenge_b64(final, (size_t)fl, ch, chsz);
        s->step = S_SCRAM_ACK;
        return SASL_CONTINUE;
    }
    }
    return fail(s, SASL_MALFORMED, "an unknown question");
}

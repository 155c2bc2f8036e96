/* smtp_arc_seal — see smtp_arc_seal.h. */
#include "smtpd/smtp_arc_seal.h"
#include "auth/arc_seal.h"
#include "delivery/local_rcpt.h"
#include "lib/log.h"
#include "lib/settings.h"
#include "smtpd/dkim_keystore.h"
#include "smtpd/smtp_dkim_dmarc.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct smtp_arc_seal {
    struct smtp_server *srv;
    char log_id[64];
    struct arc_sealer *sealer;
    struct buf hdr;
    bool hdr_lost;              /* the header copy did not fit: not sealed */
};

bool smtp_arc_seal_session(const struct smtp_session *s)
{
    const struct ferry_config *cfg = s->srv->cfg;
    bool own_user = s->authenticated || settings_is_relay_client(cfg, (const struct sockaddr *)&s->peer);
    return cfg->arc_seal && cfg->dkim_verify && s->srv->dkim_keys && s->kind == LISTEN_SMTP && !own_user;
}

bool smtp_arc_seal_rcpt(struct smtp_session *s, bool relayed, const char *addr)
{
    if (!smtp_arc_seal_session(s))
        return false;
    if (relayed)
        return true;
    /* The check RCPT makes for local_recipients = known, again when it did not run
       (any): only the forwarding matters here, and a map that cannot be read
       forwards nothing we can know of. */
    char why[300];
    bool forwards = false;
    local_rcpt_route(s->srv->cfg, &s->srv->local_maps, addr, why, sizeof why, &forwards);
    return forwards;
}

struct smtp_arc_seal *smtp_arc_seal_new(struct smtp_server *srv, const char *log_id)
{
    struct smtp_arc_seal *a = calloc(1, sizeof *a);
    if (a && !(a->sealer = arc_sealer_new())) {
        free(a);
        a = NULL;
    }
    if (!a) {
        log_msg(LOG_LVL_WARN, log_id, "arc: out of memory; the message will not be sealed");
        return NULL;
    }
    a->srv = srv;
    str_copy(a->log_id, log_id ? log_id : "", sizeof a->log_id);
    buf_init(&a->hdr, POLICY_HEADER_MAX);
    return a;
}

void smtp_arc_seal_free(struct smtp_arc_seal *a)
{
    if (!a)
        return;
    arc_sealer_free(a->sealer);
    buf_free(&a->hdr);
    free(a);
}

void smtp_arc_seal_header(struct smtp_arc_seal *a, const char *hdr, size_t len)
{
    if (buf_append(&a->hdr, hdr, len) < 0)
        a->hdr_lost = true;
}

void smtp_arc_seal_body(struct smtp_arc_seal *a, const char *p, size_t n)
{
    arc_sealer_body(a->sealer, p, n);
}

/* The key of arc_seal_algorithm among arc_seal_domain's active keys: 1 found,
   0 none, -1 the key process cannot be asked now. */
static int seal_key(struct smtp_arc_seal *a, struct dkim_sign_key *out)
{
    const struct ferry_config *cfg = a->srv->cfg;
    const struct dkim_sign_key *keys;
    ssize_t n = dkim_keystore_get(a->srv->dkim_keys, cfg->arc_seal_domain, &keys);
    if (n < 0)
        return -1;
    enum dkim_algo want = cfg->arc_seal_algorithm == ARC_SEAL_ED25519 ? DKIM_ALGO_ED25519_SHA256
                                                                      : DKIM_ALGO_RSA_SHA256;
    for (ssize_t i = 0; i < n; i++)
        if (keys[i].algo == want) {
            *out = keys[i];
            return 1;
        }
    return 0;
}

int smtp_arc_seal_finish(struct smtp_arc_seal *a, const char *ar, enum arc_cv cv, struct buf *out)
{
    const struct ferry_config *cfg = a->srv->cfg;
    if (a->hdr_lost) {
        log_msg(LOG_LVL_WARN, a->log_id, "arc: not sealed: out of memory keeping the header section");
        return 0;
    }
    struct dkim_sign_key k;
    int found = seal_key(a, &k);
    if (found < 0) {
        log_msg(LOG_LVL_WARN, a->log_id, "arc: not sealed: the key process cannot sign now");
        return -1;
    }
    if (found == 0) {
        log_msg(LOG_LVL_WARN, a->log_id, "arc: not sealed: %s has no active %s key in dkim_key_dir",
                cfg->arc_seal_domain, cfg->arc_seal_algorithm == ARC_SEAL_ED25519 ? "ed25519-sha256" : "rsa-sha256");
        return 0;
    }
    char err[256];
    size_t before = out->len;
    int r = arc_sealer_finish(a->sealer, &k, ar, cv, (int64_t)time(NULL), a->hdr.data ? a->hdr.data : "",
                              a->hdr.len, out, err, sizeof err);
    if (r != 0) {
        out->len = before;
        /* A signature the key process did not give is the one failure worth a retry;
           the rest (two From fields, 50 sets, a newest cv=fail) would fail again. */
        log_msg(r > 0 ? LOG_LVL_INFO : LOG_LVL_WARN, a->log_id, "arc: not sealed: %s", err);
        return r == ARC_SEAL_SIGN_FAILED ? -1 : 0;
    }
    log_msg(LOG_LVL_INFO, a->log_id, "arc: sealed for forwarding d=%s s=%s cv=%s", k.domain, k.selector,
            arc_cv_name(cv));
    return 0;
}

/* authproc — the auth process's side; see authproc.h. */
#include "smtpd/authproc.h"
#include "auth/sasl_verify.h"
#include "auth/userdb.h"
#include "lib/buf.h"
#include "lib/caps.h"
#include "lib/db.h"
#include "lib/log.h"
#include "lib/svc_loop.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int lookup(void *arg, const char *user, struct credentials *out)
{
    struct userdb *u = arg;
    struct user_record *r = malloc(sizeof *r);
    char err[256];
    int rc = r && userdb_get(u, user, r, err, sizeof err) == 0 ? 0 : -1;
    if (rc == 0)
        *out = r->cred;
    if (r) {
        OPENSSL_cleanse(&r->cred, sizeof r->cred);
        free(r);
    }
    return rc;
}

/* One question in, one answer out. A malformed question gets no answer: only
   the smtp process can send here, and it never sends one; its timeout covers it. */
static void serve_one(struct sasl_verifier *v, int fd, struct authproc_req *req)
{
    ssize_t n = recv(fd, req, sizeof *req, MSG_DONTWAIT);
    if (n < 0)
        return;
    if ((size_t)n < AUTHPROC_REQ_HDR || req->len > AUTHPROC_DATA_MAX || (size_t)n != AUTHPROC_REQ_HDR + req->len ||
        !memchr(req->user, '\0', sizeof req->user) || !req->user[0] ||
        (req->q != SASL_Q_PASSWORD && req->q != SASL_Q_SCRAM_PARAMS && req->q != SASL_Q_SCRAM_PROOF)) {
        log_warn("a malformed question (%zd octets) was ignored", n);
        return;
    }
    struct sasl_request q = { .q = (enum sasl_question)req->q, .user = req->user, .data = req->data,
                              .len = req->len };
    memcpy(q.proof, req->proof, sizeof q.proof);
    struct sasl_verdict vd;
    sasl_verify(v, &q, &vd);
    struct authproc_rep rep = { .id = req->id, .ok = vd.ok, .iterations = vd.iterations,
                                .salt_len = (uint32_t)vd.salt_len };
    memcpy(rep.salt, vd.salt, sizeof rep.salt);
    memcpy(rep.server_sig, vd.server_sig, sizeof rep.server_sig);
    str_copy(rep.reason, vd.reason, sizeof rep.reason);
    if (send(fd, &rep, sizeof rep, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof rep)
        log_warn("cannot answer the smtp process: %s", strerror(errno));
    OPENSSL_cleanse(req, (size_t)n);
    OPENSSL_cleanse(&vd, sizeof vd);
    OPENSSL_cleanse(&rep, sizeof rep);
}

struct serve_ctx {
    struct sasl_verifier *v;
    struct authproc_req *req;
};

static void serve(int fd, void *arg)
{
    struct serve_ctx *c = arg;
    serve_one(c->v, fd, c->req);
}

int authproc_main(const char *auth_dir, int parent_fd, int fd)
{
    char err[512];
    umask(077);
    /* Inside auth_dir, the only directory it needs, before anything is read; then
       the environment is opened by the name it has from here on. */
    if (chdir(auth_dir) < 0) {
        log_error("cannot enter the auth directory %s: %s", auth_dir, strerror(errno));
        return 1;
    }
    if (geteuid() == 0 && chroot(".") < 0) {
        log_error("cannot chroot into %s: %s", auth_dir, strerror(errno));
        return 1;
    }
    struct fdb_env *env;
    struct userdb *u = NULL;
    if (fdb_env_open(".", &env, err, sizeof err) < 0 || !(u = userdb_open_secrets(env, err, sizeof err))) {
        log_error("AUTH users unavailable: %s", err);
        return 1;
    }
    if (caps_drop_all(err, sizeof err) < 0) {
        log_error("%s", err);
        return 1;
    }
    struct sasl_verifier *v = sasl_verifier_new(lookup, u);
    struct authproc_req *req = malloc(sizeof *req);
    if (!v || !req) {
        log_error("out of memory");
        return 1;
    }
    log_info("auth process ready (users in %s)", auth_dir);
    struct serve_ctx ctx = { v, req };
    int rc = svc_loop(parent_fd, fd, serve, &ctx);
    sasl_verifier_free(v);
    free(req);
    userdb_close(u);
    fdb_env_close(env);
    log_info("auth process stopped");
    return rc;
}

/* bounce — see bounce.h. */
#include "queue/bounce.h"
#include "lib/buf.h"
#include "lib/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool rcpt_wants_dsn(const struct env_rcpt *r, enum dsn_action kind)
{
    /* RFC 3461 4.1: without NOTIFY, failures and (at the MTA's choice) delays are
       reported and successes are not; NEVER silences everything. */
    if (r->notify == 0)
        return kind == DSN_FAILED || kind == DSN_DELAYED;
    if (r->notify & ENV_NOTIFY_NEVER)
        return false;
    switch (kind) {
    case DSN_FAILED:
        return r->notify & ENV_NOTIFY_FAILURE;
    case DSN_DELAYED:
        return r->notify & ENV_NOTIFY_DELAY;
    case DSN_DELIVERED:
    case DSN_RELAYED:
    case DSN_EXPANDED:
        return r->notify & ENV_NOTIFY_SUCCESS;
    }
    return false;
}

static bool is_status_code(const char *p, size_t *len)
{
    /* class "." subject "." detail: 2,4,5 . 1-3 digits . 1-3 digits (RFC 3463 2) */
    const char *s = p;
    if (*s != '2' && *s != '4' && *s != '5')
        return false;
    s++;
    for (int part = 0; part < 2; part++) {
        if (*s++ != '.')
            return false;
        int d = 0;
        while (isdigit((unsigned char)*s) && d < 3)
            s++, d++;
        if (d == 0)
            return false;
    }
    if (*s && *s != ' ')
        return false;
    *len = (size_t)(s - p);
    return true;
}

void bounce_result_status(const char *result, char status[16], bool *is_smtp)
{
    size_t len;
    *is_smtp = false;
    if (is_status_code(result, &len)) {
        str_copyn(status, result, len, 16);
        return;
    }
    if (isdigit((unsigned char)result[0]) && isdigit((unsigned char)result[1]) &&
        isdigit((unsigned char)result[2]) && (result[3] == ' ' || result[3] == '-')) {
        *is_smtp = true;
        if (is_status_code(result + 4, &len)) {
            str_copyn(status, result + 4, len, 16);
            return;
        }
        snprintf(status, 16, "%c.0.0", result[0] == '2' ? '2' : result[0] == '4' ? '4' : '5');
        return;
    }
    str_copy(status, "5.0.0", 16);      /* a failure we cannot classify further */
}

/* A remote server's verdict as the SMTP client words it: "5.1.1 host
   mx.example[192.0.2.1] said: 550 5.1.1 no such user (in reply to RCPT TO)".
   host gets "mx.example", reply "550 5.1.1 no such user". False for any other
   text (local results, timeouts). */
static bool split_remote(const char *result, char *host, size_t hostsz, char *reply, size_t replysz)
{
    size_t len;
    if (!is_status_code(result, &len) || strncmp(result + len, " host ", 6) != 0)
        return false;
    const char *h = result + len + 6;
    const char *br = strchr(h, '[');
    const char *said = br ? strstr(br, "] said: ") : NULL;
    if (!br || !said || br == h || (size_t)(br - h) >= hostsz)
        return false;
    const char *r = said + 8;
    const char *end = strstr(r, " (in reply to ");
    size_t rl = end ? (size_t)(end - r) : strlen(r);
    if (rl < 3 || rl >= replysz || !isdigit((unsigned char)r[0]))
        return false;
    str_copyn(host, h, (size_t)(br - h), hostsz);
    str_copyn(reply, r, rl, replysz);
    return true;
}

/* A queued local delivery target ("::kind rcpt<TAB>arg", delivery/local_resolve.h)
   is reported as the address it was delivered for, never in its encoded form
   (which would also reveal file paths and commands). */
static void display_rcpt(const char *addr, char *out, size_t outsz)
{
    const char *sp = addr[0] == ':' && addr[1] == ':' ? strchr(addr, ' ') : NULL;
    const char *tab = sp ? strchr(sp, '\t') : NULL;
    if (sp && tab && tab > sp + 1)
        str_copyn(out, sp + 1, (size_t)(tab - sp - 1), outsz);
    else
        str_copy(out, addr, outsz);
}

int bounce_inject(struct spool *sp, const char *rcpt, enum env_kind kind, const char *data, size_t len,
                  bool body_8bit, bool smtputf8, char new_id[QID_LEN + 1])
{
    struct spool_draft d;
    if (spool_draft_new(sp, &d) < 0)
        return -1;
    struct envelope e;
    env_init(&e);
    str_copy(e.id, d.id, sizeof e.id);
    e.arrival = time(NULL);
    e.size = len;
    e.sender[0] = '\0';
    str_copy(e.client_addr, "127.0.0.1", sizeof e.client_addr);
    str_copy(e.client_helo, "localhost", sizeof e.client_helo);
    str_copy(e.protocol, "LOCAL", sizeof e.protocol);
    e.body_8bit = body_8bit;
    e.smtputf8 = smtputf8;
    e.kind = kind;
    int r = -1, saved = 0;
    if (env_add_rcpt(&e, rcpt) < 0) {
        saved = EINVAL;
        goto out;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(d.msg_fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            saved = w < 0 ? errno : EIO;
            goto out;
        }
        off += (size_t)w;
    }
    if (spool_draft_put_env(sp, &d, &e) < 0) {
        saved = errno;
        goto out;
    }
    struct spool_draft *one = &d;
    if (spool_commit(sp, &one, 1) < 0) {    /* aborts the draft itself on failure */
        saved = errno;
        env_free(&e);
        errno = saved;
        return -1;
    }
    str_copy(new_id, e.id, QID_LEN + 1);
    r = 0;
out:
    if (r < 0)
        spool_draft_abort(sp, &d);
    env_free(&e);
    errno = saved;
    return r;
}

/* The original, for the returned part: the whole message up to one octet past
   DSN_RETURN_FULL_MAX (dsn_build then returns the header section only). */
static int read_original(int fd, unsigned long long size, char **out, size_t *outlen)
{
    size_t want = size > DSN_RETURN_FULL_MAX ? DSN_RETURN_FULL_MAX + 1 : (size_t)size;
    char *p = malloc(want + 1);
    if (!p)
        return -1;
    size_t got = 0;
    while (got < want) {
        ssize_t n = pread(fd, p + got, want - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    p[got] = '\0';
    *out = p;
    *outlen = got;
    return 0;
}

int bounce_queue(struct spool *sp, const struct ferry_config *cfg, const struct envelope *e, int msg_fd,
                 enum dsn_action action, const size_t *idx, size_t n, time_t now,
                 char new_id[QID_LEN + 1], char *err, size_t errlen)
{
    new_id[0] = '\0';
    char to[ADDR_PATH_MAX + 1];
    enum env_kind kind = ENV_KIND_BOUNCE;
    if (e->sender[0]) {
        str_copy(to, e->sender, sizeof to);
    } else if (e->kind == ENV_KIND_DOUBLE_BOUNCE || action != DSN_FAILED ||
               cfg->local_domains.n == 0) {
        /* Nothing is ever sent about a failed double bounce, and delay or
           success notices about a bounce would only add noise. */
        if (action == DSN_FAILED)
            log_msg(LOG_LVL_WARN, e->id, "double bounce dropped: %zu recipient%s failed (first: <%s> %s)", n,
                    n == 1 ? "" : "s", n ? e->rcpts[idx[0]].addr : "", n ? e->rcpts[idx[0]].result : "");
        return 0;
    } else {
        snprintf(to, sizeof to, "postmaster@%s", cfg->local_domains.items[0]);
        kind = ENV_KIND_DOUBLE_BOUNCE;
    }
    if (n == 0)
        return 0;

    struct dsn_rcpt *rc = calloc(n, sizeof *rc);
    char (*status)[16] = calloc(n, sizeof *status);
    char (*rhost)[256] = calloc(n, sizeof *rhost);
    char (*rreply)[ENV_RESULT_MAX] = calloc(n, sizeof *rreply);
    char (*raddr)[ADDR_PATH_MAX + 1] = calloc(n, sizeof *raddr);
    char *orig = NULL;
    size_t origlen = 0;
    struct buf out;
    buf_init(&out, DSN_RETURN_FULL_MAX + 1024 * 1024);
    int r = -1;
    if (!rc || !status || !rhost || !rreply || !raddr || read_original(msg_fd, e->size, &orig, &origlen) < 0) {
        snprintf(err, errlen, "out of memory building the notification for %s", e->id);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const struct env_rcpt *er = &e->rcpts[idx[i]];
        bool smtp;
        if (action == DSN_DELIVERED || action == DSN_RELAYED || action == DSN_EXPANDED) {
            str_copy(status[i], "2.0.0", 16);
            smtp = false;
        } else {
            bounce_result_status(er->result, status[i], &smtp);
        }
        display_rcpt(er->addr, raddr[i], sizeof raddr[i]);
        rc[i].final_recipient = raddr[i];
        rc[i].action = action;
        rc[i].status = status[i];
        rc[i].diagnostic = er->result[0] ? er->result : NULL;
        rc[i].diagnostic_is_smtp = smtp;
        if (split_remote(er->result, rhost[i], sizeof rhost[i], rreply[i], sizeof rreply[i])) {
            /* RFC 3464 §2.3.5-6: the server that answered, and its reply as sent. */
            rc[i].remote_mta = rhost[i];
            rc[i].diagnostic = rreply[i];
            rc[i].diagnostic_is_smtp = true;
        }
        rc[i].last_attempt = er->last_attempt;
        if (action == DSN_DELAYED)
            rc[i].will_retry_until = e->arrival + (time_t)cfg->queue_lifetime;
        if (er->orcpt_type != ENV_ORCPT_NONE && er->orcpt[0]) {
            rc[i].orcpt_type = env_orcpt_type_name(er->orcpt_type);
            rc[i].orcpt = er->orcpt;
        }
    }
    struct dsn_report rep = {
        .reporting_mta = cfg->hostname,
        .queue_id = e->id,
        .envid = e->envid[0] ? e->envid : NULL,
        .original_sender = to,
        .received_from_mta = e->client_helo[0] ? e->client_helo : NULL,
        .arrival = e->arrival,
        .now = now,
        .ret_headers_only = e->ret == ENV_RET_HDRS,
        .smtputf8 = e->smtputf8,
        .rcpts = rc,
        .nrcpts = n,
    };
    char seed[QID_LEN + 16];
    qid_new(seed);      /* unique per DSN, also across restarts */
    bool needs_8bit;
    if (dsn_build(&rep, orig, origlen, seed, &out, &needs_8bit, err, errlen) < 0)
        goto done;
    if (bounce_inject(sp, to, kind, out.data, out.len, needs_8bit, e->smtputf8, new_id) < 0) {
        snprintf(err, errlen, "cannot queue the notification for %s: %s", e->id, strerror(errno));
        goto done;
    }
    log_msg(LOG_LVL_INFO, e->id, "%s notification for %zu recipient%s queued as %s to <%s>",
            dsn_action_name(action), n, n == 1 ? "" : "s", new_id, to);
    r = 0;
done:
    free(rc);
    free(status);
    free(rhost);
    free(rreply);
    free(raddr);
    free(orig);
    buf_free(&out);
    return r;
}

/* queue_admin — see queue_admin.h. */
#include "queue/queue_admin.h"
#include "lib/log.h"
#include "queue/bounce.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const op_names[] = { "flush", "hold", "release", "delete", "bounce" };

int qadmin_op_parse(const char *word, enum qadmin_op *op)
{
    for (int i = 0; i < 5; i++) {
        if (!strcmp(word, op_names[i])) {
            *op = (enum qadmin_op)i;
            return 0;
        }
    }
    return -1;
}

const char *qadmin_op_name(enum qadmin_op op)
{
    return (unsigned)op < 5 ? op_names[op] : "?";
}

static int do_bounce(struct spool *sp, const struct ferry_config *cfg, struct envelope *e,
                     char bounce_id[QID_LEN + 1], char *msg, size_t msglen)
{
    size_t *idx = calloc(e->nrcpts ? e->nrcpts : 1, sizeof *idx);
    if (!idx) {
        snprintf(msg, msglen, "out of memory bouncing %s", e->id);
        return -1;
    }
    size_t n = 0;
    time_t now = time(NULL);
    for (size_t i = 0; i < e->nrcpts; i++) {
        struct env_rcpt *r = &e->rcpts[i];
        if (!rcpt_todo(r))
            continue;
        r->state = RCPT_FAILED;
        r->last_attempt = now;
        str_copy(r->result, "5.0.0 returned by the administrator", sizeof r->result);
        if (rcpt_wants_dsn(r, DSN_FAILED))
            idx[n++] = i;
    }
    int fd = spool_msg_open(sp, e->id);
    if (fd < 0) {
        snprintf(msg, msglen, "cannot open the message %s: %s", e->id, strerror(errno));
        free(idx);
        return -1;
    }
    char err[256];
    /* The DSN is committed first; only then is the original removed. */
    int r = n ? bounce_queue(sp, cfg, e, fd, DSN_FAILED, idx, n, now, bounce_id, err, sizeof err) : 0;
    close(fd);
    free(idx);
    if (r < 0) {
        snprintf(msg, msglen, "%s", err);
        return -1;
    }
    if (spool_remove(sp, e->id) < 0) {
        snprintf(msg, msglen, "bounced as %s, but cannot remove %s: %s", bounce_id, e->id, strerror(errno));
        return -1;
    }
    log_msg(LOG_LVL_INFO, e->id, "returned to the sender by the administrator%s%s", bounce_id[0] ? "; DSN " : "",
            bounce_id);
    snprintf(msg, msglen, "%s returned to the sender%s%s", e->id, bounce_id[0] ? ", DSN queued as " : "",
             bounce_id);
    return 0;
}

int qadmin_apply(struct spool *sp, const struct ferry_config *cfg, enum qadmin_op op, const char *id,
                 char bounce_id[QID_LEN + 1], char *msg, size_t msglen)
{
    bounce_id[0] = '\0';
    if (!qid_valid(id)) {
        snprintf(msg, msglen, "\"%.32s\" is not a queue ID", id);
        return -1;
    }
    if (op == QADMIN_DELETE) {
        if (!spool_queued(sp, id)) {
            snprintf(msg, msglen, "%s is not in the queue", id);
            return -1;
        }
        if (spool_remove(sp, id) < 0) {
            snprintf(msg, msglen, "cannot delete %s: %s", id, strerror(errno));
            return -1;
        }
        log_msg(LOG_LVL_INFO, id, "deleted by the administrator (no bounce)");
        snprintf(msg, msglen, "%s deleted", id);
        return 0;
    }
    struct envelope e;
    bool corrupt;
    char err[256];
    if (spool_env_read(sp, id, &e, &corrupt, err, sizeof err) < 0) {
        if (!corrupt && errno == ENOENT)
            snprintf(msg, msglen, "%s is not in the queue", id);
        else
            snprintf(msg, msglen, "%s", err);
        return -1;
    }
    int r = 0;
    switch (op) {
    case QADMIN_BOUNCE:
        r = do_bounce(sp, cfg, &e, bounce_id, msg, msglen);
        env_free(&e);
        return r;
    case QADMIN_FLUSH:
        if (e.hold) {
            snprintf(msg, msglen, "%s is on hold; release it first", id);
            env_free(&e);
            return -1;
        }
        for (size_t i = 0; i < e.nrcpts; i++)
            e.rcpts[i].next_attempt = 0;
        e.next_attempt = 0;
        break;
    case QADMIN_HOLD:
        e.hold = true;
        break;
    case QADMIN_RELEASE:
        e.hold = false;
        break;
    case QADMIN_DELETE:
        break;
    }
    if (spool_env_write(sp, &e) < 0) {
        snprintf(msg, msglen, "cannot update %s: %s", id, strerror(errno));
        r = -1;
    } else {
        log_msg(LOG_LVL_INFO, id, "%s by the administrator", op == QADMIN_FLUSH ? "flushed" :
                op == QADMIN_HOLD ? "held" : "released");
        snprintf(msg, msglen, "%s %s", id, op == QADMIN_FLUSH ? "is due now" : op == QADMIN_HOLD ? "held" : "released");
    }
    env_free(&e);
    return r;
}

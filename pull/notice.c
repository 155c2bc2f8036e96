/* notice — see notice.h. */
#include "pull/notice.h"
#include "lib/buf.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define RECORD_MAX 4096
#define KEY_MAX (PULL_USER_MAX + 1 + NOTICE_ID_LEN + 1)
#define ADD_RETRIES 5

struct notice_store {
    struct fdb_env *env;
    struct fdb *db;
    struct msid_key key;
};

static const char *const state_names[] = { "pending", "fetch-requested", "auto" };

const char *notice_state_name(enum notice_state st)
{
    return (unsigned)st < 3 ? state_names[st] : "?";
}

struct notice_store *notice_open(struct fdb_env *env, const struct msid_key *key, char *err, size_t errlen)
{
    struct notice_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->env = env;
    s->key = *key;
    if (fdb_open(env, "pull_notices.db", &s->db, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    return s;
}

void notice_close(struct notice_store *s)
{
    if (!s)
        return;
    fdb_close(s->db);
    memset(&s->key, 0, sizeof s->key);
    free(s);
}

static void compute_h(const struct msid_key *key, const struct pull_notice *n, char out[NOTICE_H_LEN + 1])
{
    char rcpt[ADDR_PATH_MAX + 1];
    str_copy(rcpt, n->recipient, sizeof rcpt);
    str_lower(rcpt);
    const char *parts[] = { n->id, rcpt };
    msid_token(key, "ferry-dmtp-h1", parts, 2, out, NOTICE_H_LEN);
}

bool notice_h_ok(const struct notice_store *s, const struct pull_notice *n, const char *h)
{
    char want[NOTICE_H_LEN + 1];
    compute_h(&s->key, n, want);
    return h && msid_text_equal(want, h);
}

/* A value that can sit on a record line: no control characters, bounded. */
static bool line_safe(const char *v, size_t max)
{
    size_t n = strnlen(v, max + 1);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return false;
    return true;
}

static bool hex_id(const char *v)
{
    return strlen(v) == NOTICE_ID_LEN && strspn(v, "0123456789abcdef") == NOTICE_ID_LEN;
}

static bool notice_valid(const struct pull_notice *n)
{
    char u[PULL_USER_MAX + 1];
    const char *why;
    return hex_id(n->id) && pull_user_name(n->user, u, sizeof u, &why) == 0 && !strcmp(u, n->user) &&
           dmtp_msid_valid(n->msid, strlen(n->msid)) && line_safe(n->sender, ADDR_PATH_MAX) &&
           n->recipient[0] && line_safe(n->recipient, ADDR_PATH_MAX) && line_safe(n->subject, DMTP_SUBJECT_MAX) &&
           n->peer_ip[0] && line_safe(n->peer_ip, 63) && line_safe(n->peer_name, ADDR_DOMAIN_MAX) &&
           (unsigned)n->state < 3;
}

int notice_serialize(const struct pull_notice *n, char *out, size_t outsz)
{
    if (!notice_valid(n) || strlen(n->h) != NOTICE_H_LEN)
        return -1;
    struct buf b;
    buf_init(&b, RECORD_MAX - 16);
    int rc = buf_printf(&b,
                        "FERRY-NOTICE 1\nid %s\nuser %s\nmsid %s\nsender %s\nrecipient %s\nsubject %s\n"
                        "peer_ip %s\npeer_name %s\nh %s\nstate %s\ncreated %lld\nexpires %lld\nrequested %lld\n"
                        "attempts %u\n",
                        n->id, n->user, n->msid, n->sender, n->recipient, n->subject, n->peer_ip, n->peer_name,
                        n->h, state_names[n->state], (long long)n->created, (long long)n->expires,
                        (long long)n->requested, n->attempts);
    if (rc < 0) {
        buf_free(&b);
        return -1;
    }
    int len = snprintf(out, outsz, "%send %08lx\n", b.data, (unsigned long)crc32(0, (const Bytef *)b.data, (uInt)b.len));
    buf_free(&b);
    return len < 0 || (size_t)len >= outsz ? -1 : len;
}

static int num(const char *v, unsigned long long max, long long *out)
{
    unsigned long long x;
    if ((v[0] == '0' && v[1]) || str_to_u64(v, max, &x) < 0)     /* canonical: no leading zeros */
        return -1;
    *out = (long long)x;
    return 0;
}

/* One "name value" line into n; the bit it sets in *have, or -1. */
static int field(struct pull_notice *n, const char *name, const char *v)
{
    static const struct {
        const char *name;
        size_t off, size;
    } text[] = {
        { "id", offsetof(struct pull_notice, id), NOTICE_ID_LEN + 1 },
        { "user", offsetof(struct pull_notice, user), PULL_USER_MAX + 1 },
        { "msid", offsetof(struct pull_notice, msid), DMTP_MSID_MAX + 1 },
        { "sender", offsetof(struct pull_notice, sender), ADDR_PATH_MAX + 1 },
        { "recipient", offsetof(struct pull_notice, recipient), ADDR_PATH_MAX + 1 },
        { "subject", offsetof(struct pull_notice, subject), DMTP_SUBJECT_MAX + 1 },
        { "peer_ip", offsetof(struct pull_notice, peer_ip), 64 },
        { "peer_name", offsetof(struct pull_notice, peer_name), ADDR_DOMAIN_MAX + 1 },
        { "h", offsetof(struct pull_notice, h), NOTICE_H_LEN + 1 },
    };
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
        if (strcmp(name, text[i].name))
            continue;
        if (strlen(v) >= text[i].size)
            return -1;
        memcpy((char *)n + text[i].off, v, strlen(v) + 1);
        return (int)i;
    }
    long long x;
    if (!strcmp(name, "state")) {
        for (int s = 0; s < 3; s++)
            if (!strcmp(v, state_names[s])) {
                n->state = (enum notice_state)s;
                return 9;
            }
        return -1;
    }
    if (!strcmp(name, "created") && num(v, 1ULL << 40, &x) == 0) {
        n->created = (time_t)x;
        return 10;
    }
    if (!strcmp(name, "expires") && num(v, 1ULL << 40, &x) == 0) {
        n->expires = (time_t)x;
        return 11;
    }
    if (!strcmp(name, "requested") && num(v, 1ULL << 40, &x) == 0) {
        n->requested = (time_t)x;
        return 12;
    }
    if (!strcmp(name, "attempts") && num(v, 1000000, &x) == 0) {
        n->attempts = (unsigned)x;
        return 13;
    }
    return -1;
}

int notice_parse(const char *data, size_t len, struct pull_notice *n, char *err, size_t errlen)
{
    memset(n, 0, sizeof *n);
    if (len < 13 || len > RECORD_MAX || data[len - 1] != '\n' || memcmp(data + len - 13, "end ", 4) != 0) {
        snprintf(err, errlen, "notice record without its end line");
        return -1;
    }
    const char *endrec = data + len - 13;
    if (endrec == data || endrec[-1] != '\n') {
        snprintf(err, errlen, "notice record without its end line");
        return -1;
    }
    char crc[9];
    memcpy(crc, endrec + 4, 8);
    crc[8] = '\0';
    if (strspn(crc, "0123456789abcdef") != 8 ||
        strtoul(crc, NULL, 16) != crc32(0, (const Bytef *)data, (uInt)(endrec - data))) {
        snprintf(err, errlen, "notice record fails its checksum");
        return -1;
    }
    char line[512];
    const char *p = data;
    unsigned have = 0;
    bool magic = false;
    while (p < endrec) {
        const char *nl = memchr(p, '\n', (size_t)(endrec - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(endrec - p);
        if (l >= sizeof line || memchr(p, '\0', l)) {
            snprintf(err, errlen, "notice record has a bad line");
            return -1;
        }
        memcpy(line, p, l);
        line[l] = '\0';
        p += l + 1;
        char *v = strchr(line, ' ');
        if (!v) {
            snprintf(err, errlen, "notice record line without a value");
            return -1;
        }
        *v++ = '\0';
        if (!magic) {
            if (strcmp(line, "FERRY-NOTICE") || strcmp(v, "1")) {
                snprintf(err, errlen, "not a version 1 notice record");
                return -1;
            }
            magic = true;
            continue;
        }
        int bit = field(n, line, v);
        if (bit < 0 || (have & (1u << bit))) {
            snprintf(err, errlen, "notice record has a bad or repeated \"%s\" line", line);
            return -1;
        }
        have |= 1u << bit;
    }
    if (have != (1u << 14) - 1 || !notice_valid(n) || strlen(n->h) != NOTICE_H_LEN ||
        strspn(n->h, "0123456789ABCDEFGHIJKLMNOPQRSTUV") != NOTICE_H_LEN) {
        snprintf(err, errlen, "notice record is missing or has invalid fields");
        return -1;
    }
    return 0;
}

static int make_key(const char *user, const char *id, char *key, size_t keysz)
{
    char u[PULL_USER_MAX + 1];
    const char *why;
    if (pull_user_name(user, u, sizeof u, &why) < 0 || !hex_id(id))
        return -1;
    return snprintf(key, keysz, "%s %s", u, id);
}

static void new_id(time_t now, char out[NOTICE_ID_LEN + 1])
{
    unsigned char r[4] = { 0 };
    if (RAND_bytes(r, sizeof r) != 1) {
        /* still unique: notice_add checks the id is free before using it */
        unsigned x = (unsigned)rand();
        memcpy(r, &x, sizeof r);
    }
    snprintf(out, NOTICE_ID_LEN + 1, "%08llx%02x%02x%02x%02x", (unsigned long long)now & 0xffffffffULL, r[0], r[1],
             r[2], r[3]);
}

/* One attempt at the whole batch in one transaction. 0 ok, -1 failed (aborted). */
static int add_once(struct notice_store *s, struct pull_notice *n, size_t count, char *rec)
{
    struct fdb_txn *t;
    if (fdb_txn_begin(s->env, &t) < 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        char key[KEY_MAX + 1];
        for (int tries = 0;; tries++) {
            void *v;
            size_t vl;
            int k = make_key(n[i].user, n[i].id, key, sizeof key);
            int r = k < 0 ? -1 : fdb_get(s->db, t, key, (size_t)k, &v, &vl);
            if (r == 1)
                break;
            if (r == 0)
                free(v);
            if (r < 0 || tries == 8) {
                fdb_txn_abort(t);
                return -1;
            }
            new_id(n[i].created + tries + 1, n[i].id);
            compute_h(&s->key, &n[i], n[i].h);
        }
        int len = notice_serialize(&n[i], rec, RECORD_MAX);
        if (len < 0 || fdb_put(s->db, t, key, strlen(key), rec, (size_t)len) < 0) {
            fdb_txn_abort(t);
            return -1;
        }
    }
    return fdb_txn_commit(t);
}

int notice_add(struct notice_store *s, struct pull_notice *n, size_t count, time_t now, time_t lifetime, char *err,
               size_t errlen)
{
    if (count == 0 || count > NOTICE_MAX_BATCH) {
        snprintf(err, errlen, "between 1 and %d notices at once", NOTICE_MAX_BATCH);
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        char u[PULL_USER_MAX + 1];
        const char *why;
        if (pull_user_name(n[i].user, u, sizeof u, &why) < 0) {
            snprintf(err, errlen, "notice for user \"%s\": %s", n[i].user, why);
            return -1;
        }
        str_copy(n[i].user, u, sizeof n[i].user);
        /* the subject came from the network: cleaned again whatever the caller did */
        char subj[DMTP_SUBJECT_MAX + 1];
        dmtp_subject_clean(n[i].subject, strlen(n[i].subject), false, subj, sizeof subj);
        memcpy(n[i].subject, subj, sizeof subj);
        n[i].created = now;
        n[i].expires = now + lifetime;
        n[i].requested = 0;
        n[i].attempts = 0;
        new_id(now, n[i].id);
        compute_h(&s->key, &n[i], n[i].h);
        if (!notice_valid(&n[i])) {
            snprintf(err, errlen, "notice for %s has an invalid field", n[i].recipient);
            return -1;
        }
    }
    char *rec = malloc(RECORD_MAX);
    int rc = -1;
    /* a deadlock with another writer aborts the whole batch; it is then retried */
    for (int attempt = 0; rec && rc < 0 && attempt < ADD_RETRIES; attempt++)
        rc = add_once(s, n, count, rec);
    free(rec);
    if (rc < 0)
        snprintf(err, errlen, "cannot store the notices: %s", fdb_last_error(s->env));
    return rc;
}

int notice_get(struct notice_store *s, const char *user, const char *id, struct pull_notice *out, char *err,
               size_t errlen)
{
    char key[KEY_MAX + 1];
    int k = make_key(user, id, key, sizeof key);
    if (k < 0)
        return 1;
    void *v;
    size_t vl;
    int r = fdb_get(s->db, NULL, key, (size_t)k, &v, &vl);
    if (r != 0) {
        if (r < 0)
            snprintf(err, errlen, "cannot read the notices: %s", fdb_last_error(s->env));
        return r;
    }
    r = notice_parse(v, vl, out, err, errlen);
    free(v);
    return r;
}

int notice_drop(struct notice_store *s, const char *user, const char *id, char *err, size_t errlen)
{
    char key[KEY_MAX + 1];
    int k = make_key(user, id, key, sizeof key);
    int r = k < 0 ? 1 : fdb_del(s->db, NULL, key, (size_t)k);
    if (r < 0)
        snprintf(err, errlen, "cannot delete the notice: %s", fdb_last_error(s->env));
    return r;
}

int notice_update(struct notice_store *s, const char *user, const char *id, enum notice_state state,
                  unsigned attempts_add, time_t now, char *err, size_t errlen)
{
    struct pull_notice n;
    char key[KEY_MAX + 1], rec[RECORD_MAX];
    if (make_key(user, id, key, sizeof key) < 0)
        return 1;
    /* read and write in one transaction, so a concurrent update is not lost */
    for (int attempt = 0; attempt < ADD_RETRIES; attempt++) {
        struct fdb_txn *t;
        if (fdb_txn_begin(s->env, &t) < 0)
            break;
        void *v;
        size_t vl;
        int r = fdb_get(s->db, t, key, strlen(key), &v, &vl);
        if (r == 1) {
            fdb_txn_abort(t);
            return 1;
        }
        if (r == 0) {
            r = notice_parse(v, vl, &n, err, errlen);
            free(v);
            if (r < 0) {
                fdb_txn_abort(t);
                return -1;
            }
            n.state = state;
            if (state == NOTICE_FETCH_REQUESTED)
                n.requested = now;
            n.attempts = n.attempts + attempts_add > 1000000 ? 1000000 : n.attempts + attempts_add;
            int len = notice_serialize(&n, rec, sizeof rec);
            r = len < 0 ? -1 : fdb_put(s->db, t, key, strlen(key), rec, (size_t)len);
        }
        if (r == 0 && fdb_txn_commit(t) == 0)
            return 0;
        if (r != 0)
            fdb_txn_abort(t);
    }
    snprintf(err, errlen, "cannot update the notice: %s", fdb_last_error(s->env));
    return -1;
}

struct list_ctx {
    int (*fn)(const struct pull_notice *, void *);
    void *arg;
    size_t damaged;
    struct pull_notice n;
};

static int visit(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct list_ctx *c = arg;
    char err[128];
    if (notice_parse(v, vl, &c->n, err, sizeof err) < 0) {
        c->damaged++;
        return 0;
    }
    return c->fn(&c->n, c->arg);
}

int notice_list(struct notice_store *s, const char *user, int (*fn)(const struct pull_notice *n, void *arg),
                void *arg, size_t *damaged)
{
    char prefix[PULL_USER_MAX + 2] = "";
    if (user) {
        const char *why;
        char u[PULL_USER_MAX + 1];
        if (pull_user_name(user, u, sizeof u, &why) < 0)
            return 0;
        snprintf(prefix, sizeof prefix, "%s ", u);
    }
    struct list_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->fn = fn;
    c->arg = arg;
    int r = fdb_foreach_prefix(s->db, NULL, prefix, strlen(prefix), visit, c);
    if (damaged)
        *damaged = c->damaged;
    free(c);
    return r;
}

struct from_ctx {
    struct list_ctx l;
    size_t max, seen;
    char *next;
    size_t nextsz, *nextlen;
};

static int visit_from(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    struct from_ctx *c = arg;
    /* The next window starts just after this key: the key and one NUL octet, the
       least key above it. */
    if (kl + 1 <= c->nextsz) {
        memcpy(c->next, k, kl);
        c->next[kl] = '\0';
        *c->nextlen = kl + 1;
    }
    c->seen++;
    int r = visit(k, kl, v, vl, &c->l);
    if (r)
        return r;
    return c->seen >= c->max ? 2 : 0;
}

int notice_list_from(struct notice_store *s, const char *from, size_t fromlen, size_t max,
                     int (*fn)(const struct pull_notice *n, void *arg), void *arg, char *next, size_t nextsz,
                     size_t *nextlen)
{
    struct from_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->l.fn = fn;
    c->l.arg = arg;
    c->max = max ? max : 1;
    c->next = next;
    c->nextsz = nextsz;
    c->nextlen = nextlen;
    *nextlen = 0;
    int r = fdb_foreach_from(s->db, from, fromlen, visit_from, c);
    free(c);
    if (r < 0)
        return -1;
    if (r == 0)
        *nextlen = 0;           /* the end: the next window starts at the beginning */
    return r == 0 ? 0 : 1;
}

/* Expired, or not a record at all. */
static int expired(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    const time_t *now = arg;
    struct pull_notice n;
    char err[128];
    return notice_parse(v, vl, &n, err, sizeof err) < 0 || n.expires <= *now;
}

int notice_expire(struct notice_store *s, time_t now, size_t max, size_t *dropped)
{
    return fdb_sweep(s->db, expired, &now, max, dropped);
}

struct pending_count {
    const char *sender;
    time_t now;
    size_t stop_at, total, from_sender;
};

static int count_one(const struct pull_notice *n, void *arg)
{
    struct pending_count *c = arg;
    if (n->state != NOTICE_PENDING || n->expires <= c->now)
        return 0;
    c->total++;
    if (strlen(n->sender) == strlen(c->sender) && str_nieq(n->sender, c->sender, strlen(c->sender)))
        c->from_sender++;
    return c->total >= c->stop_at;
}

int notice_count_pending(struct notice_store *s, const char *user, const char *sender, time_t now, size_t stop_at,
                         size_t *total, size_t *from_sender)
{
    struct pending_count c = { sender, now, stop_at ? stop_at : 1, 0, 0 };
    int r = notice_list(s, user, count_one, &c, NULL);
    *total = c.total;
    *from_sender = c.from_sender;
    return r < 0 ? -1 : 0;
}

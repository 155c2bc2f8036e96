/* envelope — see envelope.h. */
#include "lib/envelope.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define ENV_MAGIC "FERRY-ENV 1\n"

#define NSTATES 4
static const char *const state_names[NSTATES] = { "pending", "delivered", "failed", "deferred" };
static const char *const kind_names[] = { "normal", "bounce", "double-bounce" };

const char *rcpt_state_name(enum rcpt_state s)
{
    return (unsigned)s < NSTATES ? state_names[s] : "?";
}

const char *env_kind_name(enum env_kind k)
{
    return (unsigned)k < 3 ? kind_names[k] : "?";
}

static const char *const notify_names[] = { "SUCCESS", "FAILURE", "DELAY", "NEVER" };

const char *env_orcpt_type_name(enum env_orcpt_type t)
{
    return t == ENV_ORCPT_RFC822 ? "rfc822" : t == ENV_ORCPT_UTF8 ? "utf-8" : NULL;
}

void env_notify_format(unsigned notify, char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < 4; i++) {
        if (!(notify & (1u << i)))
            continue;
        int n = snprintf(out + o, outsz - o, "%s%s", o ? "," : "", notify_names[i]);
        if (n < 0 || (size_t)n >= outsz - o)
            return;
        o += (size_t)n;
    }
}

/* The canonical list env_notify_format writes: known names, upper case, each at
   most once, NEVER alone. 0 ok with *notify set, -1 otherwise. */
static int notify_parse(const char *v, unsigned *notify)
{
    unsigned flags = 0;
    const char *p = v;
    for (;;) {
        size_t n = strcspn(p, ",");
        unsigned bit = 0;
        for (unsigned i = 0; i < 4; i++)
            if (strlen(notify_names[i]) == n && !memcmp(p, notify_names[i], n))
                bit = 1u << i;
        if (!bit || (flags & bit))
            return -1;
        flags |= bit;
        if (!p[n])
            break;
        p += n + 1;
    }
    if ((flags & ENV_NOTIFY_NEVER) && flags != ENV_NOTIFY_NEVER)
        return -1;
    *notify = flags;
    return 0;
}

void env_init(struct envelope *e)
{
    memset(e, 0, sizeof *e);
}

void env_free(struct envelope *e)
{
    free(e->rcpts);
    env_init(e);
}

int env_add_rcpt(struct envelope *e, const char *addr)
{
    if (e->nrcpts >= ENV_MAX_RCPTS || strlen(addr) > ADDR_PATH_MAX)
        return -1;
    struct env_rcpt *r = realloc(e->rcpts, (e->nrcpts + 1) * sizeof *r);
    if (!r)
        return -1;
    e->rcpts = r;
    r = &e->rcpts[e->nrcpts++];
    memset(r, 0, sizeof *r);
    strcpy(r->addr, addr);
    r->state = RCPT_PENDING;
    return 0;
}

size_t env_pending(const struct envelope *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->nrcpts; i++)
        n += rcpt_todo(&e->rcpts[i]);
    return n;
}

time_t env_earliest_next(const struct envelope *e)
{
    time_t best = 0;
    for (size_t i = 0; i < e->nrcpts; i++)
        if (rcpt_todo(&e->rcpts[i]) && e->rcpts[i].next_attempt &&
            (!best || e->rcpts[i].next_attempt < best))
            best = e->rcpts[i].next_attempt;
    return best;
}

static int put_value(struct buf *out, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!*v || (v[0] == '-' && !v[1]))
        return buf_puts(out, *v ? "%2D" : "-");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || *p == '%') {
            char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };
            if (buf_append(out, esc, 3) < 0)
                return -1;
        } else if (buf_append(out, p, 1) < 0) {
            return -1;
        }
    }
    return 0;
}

static int put_field(struct buf *out, const char *key, const char *v)
{
    if (buf_printf(out, "%s ", key) < 0 || put_value(out, v) < 0 || buf_puts(out, "\n") < 0)
        return -1;
    return 0;
}

int env_serialize(const struct envelope *e, struct buf *out)
{
    size_t start = out->len;
    int r = 0;
    r |= buf_puts(out, ENV_MAGIC);
    r |= put_field(out, "id", e->id);
    r |= buf_printf(out, "arrival %lld\n", (long long)e->arrival);
    r |= buf_printf(out, "size %llu\n", e->size);
    r |= put_field(out, "sender", e->sender);
    r |= put_field(out, "client", e->client_addr);
    r |= put_field(out, "helo", e->client_helo);
    r |= put_field(out, "protocol", e->protocol);
    r |= buf_printf(out, "body %s\n", e->body_8bit ? "8BITMIME" : "7BIT");
    r |= buf_printf(out, "smtputf8 %d\n", e->smtputf8 ? 1 : 0);
    /* Written only when set: see envelope.h. */
    if (e->ret != ENV_RET_UNSET)
        r |= buf_printf(out, "ret %s\n", e->ret == ENV_RET_FULL ? "FULL" : "HDRS");
    if (e->envid[0])
        r |= put_field(out, "envid", e->envid);
    if (e->requiretls)
        r |= buf_puts(out, "requiretls 1\n");
    if (e->quarantine[0])
        r |= put_field(out, "quarantine", e->quarantine);
    r |= buf_printf(out, "attempts %u\n", e->attempts);
    r |= buf_printf(out, "next %lld\n", (long long)e->next_attempt);
    for (size_t i = 0; i < e->nrcpts && r == 0; i++) {
        const struct env_rcpt *rc = &e->rcpts[i];
        r |= buf_printf(out, "rcpt %s %u ", rcpt_state_name(rc->state), rc->attempts);
        r |= put_value(out, rc->addr);
        r |= buf_puts(out, " ");
        r |= put_value(out, rc->result);
        r |= buf_puts(out, "\n");
        if (rc->notify) {
            char list[32];
            env_notify_format(rc->notify, list, sizeof list);
            r |= buf_printf(out, "notify %s\n", list);
        }
        if (rc->orcpt_type != ENV_ORCPT_NONE) {
            r |= buf_printf(out, "orcpt %s ", env_orcpt_type_name(rc->orcpt_type));
            r |= put_value(out, rc->orcpt);
            r |= buf_puts(out, "\n");
        }
    }
    /* Scheduler records come after every rcpt line (an rsched names a recipient
       by its position), and only when set, so files stay as they were for
       messages that never needed them. */
    for (size_t i = 0; i < e->nrcpts && r == 0; i++) {
        const struct env_rcpt *rc = &e->rcpts[i];
        if (rc->next_attempt || rc->last_attempt)
            r |= buf_printf(out, "rsched %zu %lld %lld\n", i, (long long)rc->next_attempt,
                            (long long)rc->last_attempt);
    }
    if (e->hold)
        r |= buf_puts(out, "hold 1\n");
    if (e->delay_warned)
        r |= buf_puts(out, "delaywarned 1\n");
    if (e->kind != ENV_KIND_NORMAL)
        r |= buf_printf(out, "kind %s\n", env_kind_name(e->kind));
    if (e->pull_msid[0]) {
        r |= buf_puts(out, "pull ");
        r |= put_value(out, e->pull_msid);
        r |= buf_puts(out, " ");
        r |= put_value(out, e->pull_rmta);
        r |= buf_printf(out, " %lld\n", (long long)e->pull_expires);
    }
    if (r)
        return -1;
    unsigned long crc = crc32(0L, (const Bytef *)out->data + start, (uInt)(out->len - start));
    return buf_printf(out, "end %08lx\n", crc);
}

/* Decode one percent-encoded token into out (size outsz). */
static int get_value(const char *tok, char *out, size_t outsz)
{
    if (strcmp(tok, "-") == 0) {
        out[0] = '\0';
        return 0;
    }
    size_t o = 0;
    for (const char *p = tok; *p; p++) {
        char c = *p;
        if (c == '%') {
            unsigned v;
            /* exactly two hex digits: sscanf alone takes "%4g", "%+4", "%-1" */
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]) ||
                sscanf(p + 1, "%2x", &v) != 1)
                return -1;
            c = (char)v;
            p += 2;
            if (c == '\0')
                return -1;
        }
        if (o + 1 >= outsz)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int get_number(const char *tok, unsigned long long max, unsigned long long *v)
{
    return str_to_u64(tok, max, v);
}

/* ---- parsing: one small parser per record keyword, found in a table ---- */

enum { HAVE_ID = 1, HAVE_ARRIVAL = 2, HAVE_SIZE = 4, HAVE_SENDER = 8,
       HAVE_RET = 16, HAVE_ENVID = 32, HAVE_REQUIRETLS = 64, HAVE_QUARANTINE = 128 };

struct env_parse_state {
    struct envelope *e;
    unsigned have;                  /* HAVE_* of the records seen */
    /* notify/orcpt belong to the rcpt line just before them, at most once each. */
    bool rcpt_notify, rcpt_orcpt;
};

/* One record's parser (tok[0] is the keyword): NULL when the record is good,
   else what is wrong with it. */
typedef const char *(*env_rec_fn)(struct env_parse_state *s, char *const *tok);

#define TIME_MAX_V (1ULL << 40)

static const char *rec_text(const char *tok, char *out, size_t outsz, const char *bad)
{
    return get_value(tok, out, outsz) < 0 ? bad : NULL;
}

/* A 0/1 flag. */
static const char *rec_flag(const char *tok, bool *out, const char *bad)
{
    unsigned long long v;
    if (get_number(tok, 1, &v) < 0)
        return bad;
    *out = v;
    return NULL;
}

static const char *rec_time(const char *tok, time_t *out, const char *bad)
{
    unsigned long long v;
    if (get_number(tok, TIME_MAX_V, &v) < 0)
        return bad;
    *out = (time_t)v;
    return NULL;
}

static const char *rec_id(struct env_parse_state *s, char *const *tok)
{
    if (get_value(tok[1], s->e->id, sizeof s->e->id) < 0 || !qid_valid(s->e->id))
        return "bad queue ID";
    s->have |= HAVE_ID;
    return NULL;
}

static const char *rec_arrival(struct env_parse_state *s, char *const *tok)
{
    s->have |= HAVE_ARRIVAL;
    return rec_time(tok[1], &s->e->arrival, "bad arrival time");
}

static const char *rec_size(struct env_parse_state *s, char *const *tok)
{
    s->have |= HAVE_SIZE;
    return get_number(tok[1], TIME_MAX_V, &s->e->size) < 0 ? "bad size" : NULL;
}

static const char *rec_sender(struct env_parse_state *s, char *const *tok)
{
    s->have |= HAVE_SENDER;
    return rec_text(tok[1], s->e->sender, sizeof s->e->sender, "bad sender");
}

static const char *rec_client(struct env_parse_state *s, char *const *tok)
{
    return rec_text(tok[1], s->e->client_addr, sizeof s->e->client_addr, "bad client");
}

static const char *rec_helo(struct env_parse_state *s, char *const *tok)
{
    return rec_text(tok[1], s->e->client_helo, sizeof s->e->client_helo, "bad helo");
}

static const char *rec_protocol(struct env_parse_state *s, char *const *tok)
{
    return rec_text(tok[1], s->e->protocol, sizeof s->e->protocol, "bad protocol");
}

static const char *rec_body(struct env_parse_state *s, char *const *tok)
{
    if (strcmp(tok[1], "7BIT") && strcmp(tok[1], "8BITMIME"))
        return "bad body type";
    s->e->body_8bit = !strcmp(tok[1], "8BITMIME");
    return NULL;
}

static const char *rec_smtputf8(struct env_parse_state *s, char *const *tok)
{
    return rec_flag(tok[1], &s->e->smtputf8, "bad smtputf8 flag");
}

static const char *rec_ret(struct env_parse_state *s, char *const *tok)
{
    if ((s->have & HAVE_RET) || (strcmp(tok[1], "FULL") && strcmp(tok[1], "HDRS")))
        return "bad or repeated ret record";
    s->e->ret = !strcmp(tok[1], "FULL") ? ENV_RET_FULL : ENV_RET_HDRS;
    s->have |= HAVE_RET;
    return NULL;
}

static const char *rec_envid(struct env_parse_state *s, char *const *tok)
{
    struct envelope *e = s->e;
    if ((s->have & HAVE_ENVID) || get_value(tok[1], e->envid, sizeof e->envid) < 0 || !e->envid[0])
        return "bad or repeated envid record";
    s->have |= HAVE_ENVID;
    return NULL;
}

static const char *rec_requiretls(struct env_parse_state *s, char *const *tok)
{
    if ((s->have & HAVE_REQUIRETLS) || rec_flag(tok[1], &s->e->requiretls, "") != NULL)
        return "bad or repeated requiretls record";
    s->have |= HAVE_REQUIRETLS;
    return NULL;
}

static const char *rec_quarantine(struct env_parse_state *s, char *const *tok)
{
    struct envelope *e = s->e;
    if ((s->have & HAVE_QUARANTINE) || get_value(tok[1], e->quarantine, sizeof e->quarantine) < 0 ||
        !e->quarantine[0])
        return "bad or repeated quarantine record";
    s->have |= HAVE_QUARANTINE;
    return NULL;
}

static const char *rec_notify(struct env_parse_state *s, char *const *tok)
{
    struct envelope *e = s->e;
    if (e->nrcpts == 0 || s->rcpt_notify || notify_parse(tok[1], &e->rcpts[e->nrcpts - 1].notify) < 0)
        return "bad, misplaced or repeated notify record";
    s->rcpt_notify = true;
    return NULL;
}

static const char *rec_orcpt(struct env_parse_state *s, char *const *tok)
{
    struct envelope *e = s->e;
    if (e->nrcpts == 0 || s->rcpt_orcpt)
        return "misplaced or repeated orcpt record";
    struct env_rcpt *r = &e->rcpts[e->nrcpts - 1];
    if (!strcmp(tok[1], "rfc822"))
        r->orcpt_type = ENV_ORCPT_RFC822;
    else if (!strcmp(tok[1], "utf-8"))
        r->orcpt_type = ENV_ORCPT_UTF8;
    else
        return "bad orcpt address type";
    if (get_value(tok[2], r->orcpt, sizeof r->orcpt) < 0 || !r->orcpt[0])
        return "bad orcpt address";
    s->rcpt_orcpt = true;
    return NULL;
}

static const char *rec_attempts(struct env_parse_state *s, char *const *tok)
{
    unsigned long long v;
    if (get_number(tok[1], 1000000, &v) < 0)
        return "bad attempts";
    s->e->attempts = (unsigned)v;
    return NULL;
}

static const char *rec_next(struct env_parse_state *s, char *const *tok)
{
    return rec_time(tok[1], &s->e->next_attempt, "bad next attempt");
}

static const char *rec_rcpt(struct env_parse_state *s, char *const *tok)
{
    struct envelope *e = s->e;
    char value[2048];
    unsigned long long v;
    int st = -1;
    for (int i = 0; i < NSTATES; i++)
        if (!strcmp(tok[1], state_names[i]))
            st = i;
    if (st < 0)
        return "bad recipient state";
    if (get_number(tok[2], 1000000, &v) < 0)
        return "bad recipient attempts";
    if (get_value(tok[3], value, sizeof value) < 0 || !*value || env_add_rcpt(e, value) < 0)
        return "bad recipient address";
    struct env_rcpt *r = &e->rcpts[e->nrcpts - 1];
    r->state = (enum rcpt_state)st;
    r->attempts = (unsigned)v;
    if (get_value(tok[4], r->result, sizeof r->result) < 0)
        return "bad recipient result";
    s->rcpt_notify = s->rcpt_orcpt = false;
    return NULL;
}

static const char *rec_rsched(struct env_parse_state *s, char *const *tok)
{
    struct envelope *e = s->e;
    unsigned long long v, next, last;
    if (get_number(tok[1], ENV_MAX_RCPTS, &v) < 0 || v >= e->nrcpts)
        return "rsched names no recipient";
    if (get_number(tok[2], TIME_MAX_V, &next) < 0 || get_number(tok[3], TIME_MAX_V, &last) < 0)
        return "bad rsched times";
    e->rcpts[v].next_attempt = (time_t)next;
    e->rcpts[v].last_attempt = (time_t)last;
    return NULL;
}

static const char *rec_hold(struct env_parse_state *s, char *const *tok)
{
    return rec_flag(tok[1], &s->e->hold, "bad hold flag");
}

static const char *rec_delaywarned(struct env_parse_state *s, char *const *tok)
{
    return rec_flag(tok[1], &s->e->delay_warned, "bad delaywarned flag");
}

static const char *rec_kind(struct env_parse_state *s, char *const *tok)
{
    for (int i = 0; i < 3; i++) {
        if (!strcmp(tok[1], kind_names[i])) {
            s->e->kind = (enum env_kind)i;
            return NULL;
        }
    }
    return "bad message kind";
}

static const char *rec_pull(struct env_parse_state *s, char *const *tok)
{
    struct envelope *e = s->e;
    if (e->pull_msid[0] || get_value(tok[1], e->pull_msid, sizeof e->pull_msid) < 0 || !e->pull_msid[0] ||
        get_value(tok[2], e->pull_rmta, sizeof e->pull_rmta) < 0 || !e->pull_rmta[0] ||
        rec_time(tok[3], &e->pull_expires, "") != NULL)
        return "bad or repeated pull record";
    return NULL;
}

/* Every record but "end", with its number of tokens (the keyword included); a
   known keyword with another count is malformed. */
static const struct {
    const char *name;
    int ntok;
    env_rec_fn parse;
} env_records[] = {
    {"id", 2, rec_id},               {"arrival", 2, rec_arrival},   {"size", 2, rec_size},
    {"sender", 2, rec_sender},       {"client", 2, rec_client},     {"helo", 2, rec_helo},
    {"protocol", 2, rec_protocol},   {"body", 2, rec_body},         {"smtputf8", 2, rec_smtputf8},
    {"ret", 2, rec_ret},             {"envid", 2, rec_envid},       {"requiretls", 2, rec_requiretls},
    {"quarantine", 2, rec_quarantine}, {"notify", 2, rec_notify},   {"orcpt", 3, rec_orcpt},
    {"attempts", 2, rec_attempts},   {"next", 2, rec_next},         {"rcpt", 5, rec_rcpt},
    {"rsched", 4, rec_rsched},       {"hold", 2, rec_hold},         {"delaywarned", 2, rec_delaywarned},
    {"kind", 2, rec_kind},           {"pull", 4, rec_pull},
};

/* The end record: exactly "end " and the eight lower-case hex digits
   env_serialize writes (sscanf alone would also take "A-F", a sign, a leading
   blank or fewer digits, letting a changed octet pass the check), the CRC of
   everything before it, and nothing after it. */
static int check_end(const char *data, size_t line_start, const char *line, size_t ll, char *const *tok, int nt,
                     bool at_eof, int lineno, char *err, size_t errlen)
{
    unsigned long want = 0;
    if (nt != 2 || ll != 12 || tok[1] != line + 4 || strspn(tok[1], "0123456789abcdef") != 8) {
        snprintf(err, errlen, "line %d: bad end record", lineno);
        return -1;
    }
    for (int i = 0; i < 8; i++)
        want = want << 4 | (unsigned long)(tok[1][i] <= '9' ? tok[1][i] - '0' : tok[1][i] - 'a' + 10);
    unsigned long crc = crc32(0L, (const Bytef *)data, (uInt)line_start);
    const char *why = crc != want ? "checksum mismatch (file altered or torn)"
                    : !at_eof ? "data after the end record" : NULL;
    if (why)
        snprintf(err, errlen, "%s", why);
    return why ? -1 : 0;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

int env_parse(const char *data, size_t len, struct envelope *e, char *err, size_t errlen)
{
    env_init(e);
    if (len > ENV_MAX_SIZE)
        FAIL("envelope larger than %d octets", ENV_MAX_SIZE);
    if (len < sizeof ENV_MAGIC - 1 || memcmp(data, ENV_MAGIC, sizeof ENV_MAGIC - 1) != 0)
        FAIL("not a Ferry envelope (bad first line)");
    if (memchr(data, '\0', len))
        FAIL("NUL octet in envelope");

    struct env_parse_state s = { .e = e };
    bool ended = false;
    size_t pos = sizeof ENV_MAGIC - 1;
    int lineno = 1;
    /* Longest line env_serialize writes: "rcpt delivered 1000000 ", then an address
       and a result with every octet escaped (3 each). */
    char line[32 + 3 * ADDR_PATH_MAX + 3 * ENV_RESULT_MAX];
    while (pos < len) {
        lineno++;
        const char *nl = memchr(data + pos, '\n', len - pos);
        if (!nl)
            FAIL("line %d: truncated (no end of line)", lineno);
        size_t ll = (size_t)(nl - (data + pos));
        if (ll >= sizeof line)
            FAIL("line %d: too long", lineno);
        memcpy(line, data + pos, ll);
        line[ll] = '\0';
        size_t line_start = pos;
        pos += ll + 1;

        char *tok[6];
        int nt = 0;
        char *save = NULL;
        for (char *t = strtok_r(line, " ", &save); t && nt < 6; t = strtok_r(NULL, " ", &save))
            tok[nt++] = t;
        if (nt < 2)
            FAIL("line %d: expected a keyword and a value", lineno);
        const char *why;
        if (!strcmp(tok[0], "end")) {
            if (check_end(data, line_start, line, ll, tok, nt, pos == len, lineno, err, errlen) < 0)
                goto fail;
            ended = true;
            break;
        }
        size_t k = 0;
        while (k < sizeof env_records / sizeof env_records[0] &&
               (strcmp(tok[0], env_records[k].name) || nt != env_records[k].ntok))
            k++;
        if (k == sizeof env_records / sizeof env_records[0])
            FAIL("line %d: unknown or malformed record \"%.32s\"", lineno, tok[0]);
        if ((why = env_records[k].parse(&s, tok)) != NULL)
            FAIL("line %d: %s", lineno, why);
    }
    if (!ended)
        FAIL("no end record (file truncated)");
    if ((s.have & (HAVE_ID | HAVE_ARRIVAL | HAVE_SIZE | HAVE_SENDER)) != (HAVE_ID | HAVE_ARRIVAL | HAVE_SIZE | HAVE_SENDER))
        FAIL("a required record (id, arrival, size, sender) is missing");
    if (e->nrcpts == 0)
        FAIL("no recipients");
    return 0;
fail:
    env_free(e);
    return -1;
}

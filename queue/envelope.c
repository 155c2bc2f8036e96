/* envelope — see envelope.h. */
#include "queue/envelope.h"

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

    enum { HAVE_ID = 1, HAVE_ARRIVAL = 2, HAVE_SIZE = 4, HAVE_SENDER = 8,
           HAVE_RET = 16, HAVE_ENVID = 32, HAVE_REQUIRETLS = 64, HAVE_QUARANTINE = 128 };
    unsigned have = 0;
    /* notify/orcpt belong to the rcpt line just before them, at most once each. */
    bool rcpt_notify = false, rcpt_orcpt = false;
    bool ended = false;
    size_t pos = sizeof ENV_MAGIC - 1;
    int lineno = 1;
    /* Longest line env_serialize writes: "rcpt delivered 1000000 ", then an address
       and a result with every octet escaped (3 each). */
    char line[32 + 3 * ADDR_PATH_MAX + 3 * ENV_RESULT_MAX], value[2048];
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
        const char *k = tok[0];
        unsigned long long v;
        if (!strcmp(k, "end")) {
            /* Exactly "end " and the eight lower-case hex digits env_serialize
               writes: sscanf alone would also take "A-F", a sign, a leading
               blank or fewer digits, letting a changed octet pass the check. */
            unsigned long want = 0;
            if (nt != 2 || ll != 12 || tok[1] != line + 4 ||
                strspn(tok[1], "0123456789abcdef") != 8)
                FAIL("line %d: bad end record", lineno);
            for (int i = 0; i < 8; i++)
                want = want << 4 | (unsigned long)(tok[1][i] <= '9' ? tok[1][i] - '0' : tok[1][i] - 'a' + 10);
            unsigned long crc = crc32(0L, (const Bytef *)data, (uInt)line_start);
            if (crc != want)
                FAIL("checksum mismatch (file altered or torn)");
            if (pos != len)
                FAIL("data after the end record");
            ended = true;
            break;
        } else if (!strcmp(k, "id") && nt == 2) {
            if (get_value(tok[1], e->id, sizeof e->id) < 0 || !qid_valid(e->id))
                FAIL("line %d: bad queue ID", lineno);
            have |= HAVE_ID;
        } else if (!strcmp(k, "arrival") && nt == 2) {
            if (get_number(tok[1], 1ULL << 40, &v) < 0)
                FAIL("line %d: bad arrival time", lineno);
            e->arrival = (time_t)v;
            have |= HAVE_ARRIVAL;
        } else if (!strcmp(k, "size") && nt == 2) {
            if (get_number(tok[1], 1ULL << 40, &e->size) < 0)
                FAIL("line %d: bad size", lineno);
            have |= HAVE_SIZE;
        } else if (!strcmp(k, "sender") && nt == 2) {
            if (get_value(tok[1], e->sender, sizeof e->sender) < 0)
                FAIL("line %d: bad sender", lineno);
            have |= HAVE_SENDER;
        } else if (!strcmp(k, "client") && nt == 2) {
            if (get_value(tok[1], e->client_addr, sizeof e->client_addr) < 0)
                FAIL("line %d: bad client", lineno);
        } else if (!strcmp(k, "helo") && nt == 2) {
            if (get_value(tok[1], e->client_helo, sizeof e->client_helo) < 0)
                FAIL("line %d: bad helo", lineno);
        } else if (!strcmp(k, "protocol") && nt == 2) {
            if (get_value(tok[1], e->protocol, sizeof e->protocol) < 0)
                FAIL("line %d: bad protocol", lineno);
        } else if (!strcmp(k, "body") && nt == 2) {
            if (strcmp(tok[1], "7BIT") && strcmp(tok[1], "8BITMIME"))
                FAIL("line %d: bad body type", lineno);
            e->body_8bit = !strcmp(tok[1], "8BITMIME");
        } else if (!strcmp(k, "smtputf8") && nt == 2) {
            if (get_number(tok[1], 1, &v) < 0)
                FAIL("line %d: bad smtputf8 flag", lineno);
            e->smtputf8 = v;
        } else if (!strcmp(k, "ret") && nt == 2) {
            if ((have & HAVE_RET) || (strcmp(tok[1], "FULL") && strcmp(tok[1], "HDRS")))
                FAIL("line %d: bad or repeated ret record", lineno);
            e->ret = !strcmp(tok[1], "FULL") ? ENV_RET_FULL : ENV_RET_HDRS;
            have |= HAVE_RET;
        } else if (!strcmp(k, "envid") && nt == 2) {
            if ((have & HAVE_ENVID) || get_value(tok[1], e->envid, sizeof e->envid) < 0 || !e->envid[0])
                FAIL("line %d: bad or repeated envid record", lineno);
            have |= HAVE_ENVID;
        } else if (!strcmp(k, "requiretls") && nt == 2) {
            if ((have & HAVE_REQUIRETLS) || get_number(tok[1], 1, &v) < 0)
                FAIL("line %d: bad or repeated requiretls record", lineno);
            e->requiretls = v;
            have |= HAVE_REQUIRETLS;
        } else if (!strcmp(k, "quarantine") && nt == 2) {
            if ((have & HAVE_QUARANTINE) || get_value(tok[1], e->quarantine, sizeof e->quarantine) < 0 ||
                !e->quarantine[0])
                FAIL("line %d: bad or repeated quarantine record", lineno);
            have |= HAVE_QUARANTINE;
        } else if (!strcmp(k, "notify") && nt == 2) {
            if (e->nrcpts == 0 || rcpt_notify || notify_parse(tok[1], &e->rcpts[e->nrcpts - 1].notify) < 0)
                FAIL("line %d: bad, misplaced or repeated notify record", lineno);
            rcpt_notify = true;
        } else if (!strcmp(k, "orcpt") && nt == 3) {
            if (e->nrcpts == 0 || rcpt_orcpt)
                FAIL("line %d: misplaced or repeated orcpt record", lineno);
            struct env_rcpt *r = &e->rcpts[e->nrcpts - 1];
            if (!strcmp(tok[1], "rfc822"))
                r->orcpt_type = ENV_ORCPT_RFC822;
            else if (!strcmp(tok[1], "utf-8"))
                r->orcpt_type = ENV_ORCPT_UTF8;
            else
                FAIL("line %d: bad orcpt address type", lineno);
            if (get_value(tok[2], r->orcpt, sizeof r->orcpt) < 0 || !r->orcpt[0])
                FAIL("line %d: bad orcpt address", lineno);
            rcpt_orcpt = true;
        } else if (!strcmp(k, "attempts") && nt == 2) {
            if (get_number(tok[1], 1000000, &v) < 0)
                FAIL("line %d: bad attempts", lineno);
            e->attempts = (unsigned)v;
        } else if (!strcmp(k, "next") && nt == 2) {
            if (get_number(tok[1], 1ULL << 40, &v) < 0)
                FAIL("line %d: bad next attempt", lineno);
            e->next_attempt = (time_t)v;
        } else if (!strcmp(k, "rcpt") && nt == 5) {
            int st = -1;
            for (int i = 0; i < NSTATES; i++)
                if (!strcmp(tok[1], state_names[i]))
                    st = i;
            if (st < 0)
                FAIL("line %d: bad recipient state", lineno);
            if (get_number(tok[2], 1000000, &v) < 0)
                FAIL("line %d: bad recipient attempts", lineno);
            if (get_value(tok[3], value, sizeof value) < 0 || !*value || env_add_rcpt(e, value) < 0)
                FAIL("line %d: bad recipient address", lineno);
            struct env_rcpt *r = &e->rcpts[e->nrcpts - 1];
            r->state = (enum rcpt_state)st;
            r->attempts = (unsigned)v;
            if (get_value(tok[4], r->result, sizeof r->result) < 0)
                FAIL("line %d: bad recipient result", lineno);
            rcpt_notify = rcpt_orcpt = false;
        } else if (!strcmp(k, "rsched") && nt == 4) {
            unsigned long long next, last;
            if (get_number(tok[1], ENV_MAX_RCPTS, &v) < 0 || v >= e->nrcpts)
                FAIL("line %d: rsched names no recipient", lineno);
            if (get_number(tok[2], 1ULL << 40, &next) < 0 || get_number(tok[3], 1ULL << 40, &last) < 0)
                FAIL("line %d: bad rsched times", lineno);
            e->rcpts[v].next_attempt = (time_t)next;
            e->rcpts[v].last_attempt = (time_t)last;
        } else if (!strcmp(k, "hold") && nt == 2) {
            if (get_number(tok[1], 1, &v) < 0)
                FAIL("line %d: bad hold flag", lineno);
            e->hold = v;
        } else if (!strcmp(k, "delaywarned") && nt == 2) {
            if (get_number(tok[1], 1, &v) < 0)
                FAIL("line %d: bad delaywarned flag", lineno);
            e->delay_warned = v;
        } else if (!strcmp(k, "kind") && nt == 2) {
            int kd = -1;
            for (int i = 0; i < 3; i++)
                if (!strcmp(tok[1], kind_names[i]))
                    kd = i;
            if (kd < 0)
                FAIL("line %d: bad message kind", lineno);
            e->kind = (enum env_kind)kd;
        } else if (!strcmp(k, "pull") && nt == 4) {
            if (e->pull_msid[0] || get_value(tok[1], e->pull_msid, sizeof e->pull_msid) < 0 || !e->pull_msid[0] ||
                get_value(tok[2], e->pull_rmta, sizeof e->pull_rmta) < 0 || !e->pull_rmta[0] ||
                get_number(tok[3], 1ULL << 40, &v) < 0)
                FAIL("line %d: bad or repeated pull record", lineno);
            e->pull_expires = (time_t)v;
        } else {
            FAIL("line %d: unknown or malformed record \"%.32s\"", lineno, k);
        }
    }
    if (!ended)
        FAIL("no end record (file truncated)");
    if ((have & (HAVE_ID | HAVE_ARRIVAL | HAVE_SIZE | HAVE_SENDER)) != (HAVE_ID | HAVE_ARRIVAL | HAVE_SIZE | HAVE_SENDER))
        FAIL("a required record (id, arrival, size, sender) is missing");
    if (e->nrcpts == 0)
        FAIL("no recipients");
    return 0;
fail:
    env_free(e);
    return -1;
}

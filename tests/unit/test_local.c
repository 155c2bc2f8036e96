/* Local delivery: alias and virtual parsers, resolution, queued targets, failure mapping. */
#include "delivery/local.h"
#include "delivery/mailbox_quota.h"
#include "delivery/local_resolve.h"
#include "delivery/pipe.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

static struct local_map aliases, virt;
static char err[256];

static void parse_ok(const char *text, enum local_map_syntax syn, struct local_map *m)
{
    int r = local_map_parse(text, strlen(text), syn, m, err, sizeof err);
    ck_assert_msg(r == 0, "%s", err);
}

static const char *get(const struct local_map *m, const char *key)
{
    static char v[LOCAL_MAP_VALUE_MAX];
    return local_map_lookup(m, key, v, sizeof v) == 0 ? v : NULL;
}

START_TEST(alias_syntax)
{
    parse_ok("# comment\n"
             "postmaster: root\n"
             "\n"
             "Team: alice, bob,\n"
             "\tcarol\n"
             "  # not a continuation: a comment\n"
             "\"odd name\": \"|/usr/bin/x a,b\"\r\n"
             "root:alice\n", LOCAL_MAP_ALIASES, &aliases);
    ck_assert_str_eq(get(&aliases, "postmaster"), "root");
    ck_assert_str_eq(get(&aliases, "team"), "alice, bob, carol");
    ck_assert_str_eq(get(&aliases, "odd name"), "\"|/usr/bin/x a,b\"");
    ck_assert_str_eq(get(&aliases, "root"), "alice");
    ck_assert_ptr_null(get(&aliases, "alice"));
    local_map_free(&aliases);
}
END_TEST

START_TEST(alias_errors)
{
    const char *bad[][2] = {
        { "a: b\na: c\n", "given twice" },
        { "  b\n", "1: continuation" },
        { "a b c\n", "1: expected" },
        { "x: y\nz:\n", "2: no target" },
        { "\"a: b\n", "1: unclosed quote" },
        { ": b\n", "1: empty key" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct local_map m;
        ck_assert_int_eq(local_map_parse(bad[i][0], strlen(bad[i][0]), LOCAL_MAP_ALIASES, &m, err, sizeof err), -1);
        ck_assert_msg(strstr(err, bad[i][1]) != NULL, "%s: %s", bad[i][0], err);
    }
    struct local_map m;
    ck_assert_int_eq(local_map_parse("a: b\0c\n", 7, LOCAL_MAP_ALIASES, &m, err, sizeof err), -1);
}
END_TEST

START_TEST(virtual_syntax)
{
    parse_ok("Info@Virt.Test  alice\n@virt.test catch\nsales@virt.test lmtp:unix:/run/lmtp, bob@remote.test\n",
             LOCAL_MAP_VIRTUAL, &virt);
    ck_assert_str_eq(get(&virt, "info@virt.test"), "alice");
    ck_assert_str_eq(get(&virt, "@virt.test"), "catch");
    ck_assert_str_eq(get(&virt, "virt.test"), "");     /* the domain marker */
    ck_assert_ptr_null(get(&virt, "other.test"));
    local_map_free(&virt);
    struct local_map m;
    ck_assert_int_eq(local_map_parse("nodomain alice\n", 15, LOCAL_MAP_VIRTUAL, &m, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "user@domain"));
}
END_TEST

START_TEST(target_lists)
{
    const char *p = " a , \"|cmd x, y\" ,, /var/mail/x ,b", *why;
    char t[64];
    const char *want[] = { "a", "|cmd x, y", "/var/mail/x", "b" };
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(local_target_next(&p, t, sizeof t, &why), 1);
        ck_assert_str_eq(t, want[i]);
    }
    ck_assert_int_eq(local_target_next(&p, t, sizeof t, &why), 0);
    p = "\"open";
    ck_assert_int_eq(local_target_next(&p, t, sizeof t, &why), -1);
    p = "0123456789012345678901234567890123456789012345678901234567890123456789";
    ck_assert_int_eq(local_target_next(&p, t, sizeof t, &why), -1);
}
END_TEST

/* The resolver's view of the world in these tests. */
static bool t_local(void *arg, const char *d)
{
    return !strcasecmp(d, "example.test") || !strcasecmp(d, "virt.test") || !strcasecmp(d, "other.test");
}

static bool t_user(void *arg, const char *n)
{
    return !strcmp(n, "alice") || !strcmp(n, "bob") || !strcmp(n, "postmaster");
}

static char *t_include(void *arg, const char *path, const char **why)
{
    if (!strcmp(path, "/inc/list"))
        return strdup("# members\nbob\n\ncarol@remote.test, /var/mail/list.mbox\n");
    if (!strcmp(path, "/inc/self"))
        return strdup(":include:/inc/self\n");
    *why = "No such file or directory";
    return NULL;
}

static struct local_resolver res = {
    .aliases = &aliases, .virtual = &virt, .delimiters = "+",
    .is_local_domain = t_local, .user_exists = t_user, .read_include = t_include,
};

static void setup(void)
{
    parse_ok("team: alice, bob\n"
             "keep: \\keep, bob\n"
             "loop1: loop2\nloop2: loop1\n"
             "self: self\n"
             "fwd: carol@remote.test\n"
             "list: :include:/inc/list\n"
             "incloop: :include:/inc/self\n"
             "noinc: :include:/inc/none\n"
             "prog: \"|/bin/cat >/dev/null\"\n"
             "bob+lists: /var/mail/lists.mbox\n"
             "d0: d1\nd1: d2\nd2: d3\nd3: d4\nd4: d5\nd5: d6\nd6: d7\nd7: d8\nd8: d9\nd9: d10\n"
             "d10: d11\nd11: d12\nd12: d13\nd13: d14\nd14: d15\nd15: d16\nd16: d17\nd17: d18\n"
             "d18: d19\nd19: d20\nd20: d21\nd21: alice\n"
             "c0: c1\nc1: c2\nc2: c3\nc3: c4\nc4: c5\nc5: c6\nc6: c7\nc7: c8\nc8: c9\nc9: c10\n"
             "c10: c11\nc11: c12\nc12: c13\nc13: c14\nc14: c15\nc15: c16\nc16: c17\nc17: c18\n"
             "c18: alice\n",
             LOCAL_MAP_ALIASES, &aliases);
    parse_ok("info@virt.test alice@example.test\n"
             "box@virt.test /srv/mail/box/\n"
             "store@virt.test lmtp:unix:/run/lmtp.sock\n"
             "@virt.test /srv/mail/catchall\n"
             "@other.test postmaster\n",
             LOCAL_MAP_VIRTUAL, &virt);
}

static void teardown(void)
{
    local_map_free(&aliases);
    local_map_free(&virt);
}

/* Resolve addr; return "kind:arg|kind:arg..." or "ERR code" for comparison. */
static const char *resolve(const char *addr)
{
    static char out[4096];
    static const char *const kinds[] = { "mailbox", "maildir", "mbox", "pipe", "lmtp", "remote" };
    struct local_targets ts = { 0 };
    struct delivery_status st;
    if (local_resolve(&res, addr, &ts, &st) < 0) {
        snprintf(out, sizeof out, "%s %.5s", st.result == DELIVERY_FAIL ? "FAIL" : "DEFER", st.text);
        local_targets_free(&ts);
        return out;
    }
    out[0] = '\0';
    for (size_t i = 0; i < ts.n; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s:%s", i ? "|" : "", kinds[ts.v[i].kind],
                 ts.v[i].arg);
    local_targets_free(&ts);
    return out;
}

START_TEST(resolve_plain_and_subaddress)
{
    ck_assert_str_eq(resolve("alice@example.test"), "mailbox:alice");
    ck_assert_str_eq(resolve("Alice@EXAMPLE.test"), "mailbox:alice");
    ck_assert_str_eq(resolve("alice+news@example.test"), "mailbox:alice");
    ck_assert_str_eq(resolve("bob+lists@example.test"), "mbox:/var/mail/lists.mbox");   /* full key first */
    ck_assert_str_eq(resolve("team+x@example.test"), "mailbox:alice|mailbox:bob");
    ck_assert_str_eq(resolve("nobody@example.test"), "FAIL 5.1.1");
    ck_assert_str_eq(resolve("+x@example.test"), "FAIL 5.1.1");
    ck_assert_str_eq(resolve("someone@remote.test"), "remote:someone@remote.test");
    res.delimiters = "";
    ck_assert_str_eq(resolve("alice+news@example.test"), "FAIL 5.1.1");
    res.delimiters = "+-";
    ck_assert_str_eq(resolve("alice-news@example.test"), "mailbox:alice");
    res.delimiters = "+";
}
END_TEST

START_TEST(resolve_aliases)
{
    ck_assert_str_eq(resolve("keep@example.test"), "mailbox:keep|mailbox:bob");
    ck_assert_str_eq(resolve("fwd@example.test"), "remote:carol@remote.test");
    ck_assert_str_eq(resolve("list@example.test"),
                     "mailbox:bob|remote:carol@remote.test|mbox:/var/mail/list.mbox");
    ck_assert_str_eq(resolve("prog@example.test"), "pipe:/bin/cat >/dev/null");
    ck_assert_str_eq(resolve("noinc@example.test"), "DEFER 4.3.5");
}
END_TEST

START_TEST(resolve_loops_and_depth)
{
    ck_assert_str_eq(resolve("self@example.test"), "FAIL 5.4.6");
    ck_assert_str_eq(resolve("loop1@example.test"), "FAIL 5.4.6");
    ck_assert_str_eq(resolve("incloop@example.test"), "FAIL 5.4.6");
    ck_assert_str_eq(resolve("d0@example.test"), "FAIL 5.4.6");    /* 23 levels */
    ck_assert_str_eq(resolve("c0@example.test"), "mailbox:alice");  /* 20 levels */
}
END_TEST

START_TEST(resolve_virtual)
{
    ck_assert_str_eq(resolve("info@virt.test"), "mailbox:alice");
    ck_assert_str_eq(resolve("info+tag@virt.test"), "mailbox:alice");
    ck_assert_str_eq(resolve("box@virt.test"), "maildir:/srv/mail/box/");
    ck_assert_str_eq(resolve("store@virt.test"), "lmtp:unix:/run/lmtp.sock");
    ck_assert_str_eq(resolve("anything@virt.test"), "mbox:/srv/mail/catchall");
    /* a domain with only a catch-all: every address goes there, users too */
    ck_assert_str_eq(resolve("alice@other.test"), "mailbox:postmaster");
    ck_assert_str_eq(resolve("info@virt.test"), "mailbox:alice");
    ck_assert_str_eq(resolve("whoever@other.test"), "mailbox:postmaster");
    res.virtual = NULL;
    ck_assert_str_eq(resolve("whoever@other.test"), "FAIL 5.1.1");
    res.virtual = &virt;
}
END_TEST

/* local_recipients = any: every name is a user. */
static bool t_any_user(void *arg, const char *n)
{
    return true;
}

/* Security review #6: no local part may become a lock or control file's name
   (RCPT TO:<"dave.lock"@...> used to create dave's mbox dotlock). */
START_TEST(mailbox_names)
{
    static const struct { const char *name; enum mailbox_name_verdict v; } t[] = {
        { "dave", MAILBOX_NAME_OK }, { "dave.locked", MAILBOX_NAME_OK }, { "dave-lock", MAILBOX_NAME_OK },
        { "davelock", MAILBOX_NAME_OK }, { "lock", MAILBOX_NAME_OK }, { "a.b", MAILBOX_NAME_OK },
        { "dave.lockx", MAILBOX_NAME_OK }, { "lock.dave", MAILBOX_NAME_OK }, { "x y", MAILBOX_NAME_OK },
        { "dave.lock", MAILBOX_NAME_RESERVED }, { "DAVE.LOCK", MAILBOX_NAME_RESERVED },
        { "Dave.LoCk", MAILBOX_NAME_RESERVED }, { ".lock", MAILBOX_NAME_RESERVED },
        { "a.lock.lock", MAILBOX_NAME_RESERVED }, { ".x", MAILBOX_NAME_RESERVED }, { ".", MAILBOX_NAME_RESERVED },
        { "..", MAILBOX_NAME_RESERVED }, { "a.lock.", MAILBOX_NAME_RESERVED }, { "dave.", MAILBOX_NAME_RESERVED },
        { "a.lock ", MAILBOX_NAME_RESERVED },
        { "", MAILBOX_NAME_BAD }, { "a/b", MAILBOX_NAME_BAD }, { "../dave.lock", MAILBOX_NAME_BAD },
        { "dave.lock\n", MAILBOX_NAME_BAD }, { "a\x7f", MAILBOX_NAME_BAD },
        { "0123456789012345678901234567890123456789012345678901234567890123x", MAILBOX_NAME_BAD },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *why = NULL;
        ck_assert_msg(mailbox_name_check(t[i].name, &why) == t[i].v, "\"%s\"", t[i].name);
        ck_assert_msg(t[i].v == MAILBOX_NAME_OK || (why && *why), "\"%s\": no reason", t[i].name);
    }

    /* As written in an address: quoting removed, case folded, the part before
       the delimiter (what user+tag is delivered to) judged too. */
    static const struct { const char *addr, *delims; enum mailbox_name_verdict v; const char *name; } a[] = {
        { "dave@localhost", "+", MAILBOX_NAME_OK, "dave" },
        { "Dave@localhost", "+", MAILBOX_NAME_OK, "dave" },
        { "\"dave\"@localhost", "+", MAILBOX_NAME_OK, "dave" },
        { "dave+x@localhost", "+", MAILBOX_NAME_OK, "dave+x" },
        { "dave.lock@localhost", "+", MAILBOX_NAME_RESERVED, NULL },
        { "\"dave.lock\"@localhost", "+", MAILBOX_NAME_RESERVED, NULL },
        { "\"DAVE.LOCK\"@localhost", "+", MAILBOX_NAME_RESERVED, NULL },
        { "\"dave\\.lock\"@localhost", "+", MAILBOX_NAME_RESERVED, NULL },
        { "\"a.lock.\"@localhost", "+", MAILBOX_NAME_RESERVED, NULL },
        { "\".x\"@localhost", "+", MAILBOX_NAME_RESERVED, NULL },
        { "dave+x.lock@localhost", "+", MAILBOX_NAME_RESERVED, NULL },
        { "dave.lock+x@localhost", "+", MAILBOX_NAME_RESERVED, NULL },
        { "dave.lock+x@localhost", "", MAILBOX_NAME_OK, "dave.lock+x" },
        { "dave.lock-x@localhost", "+-", MAILBOX_NAME_RESERVED, NULL },
        { "\"a/b\"@localhost", "+", MAILBOX_NAME_BAD, NULL },
    };
    for (size_t i = 0; i < sizeof a / sizeof a[0]; i++) {
        struct mailbox m;
        const char *why = NULL;
        char name[ADDR_LOCAL_MAX + 1];
        ck_assert_msg(addr_parse_mailbox(a[i].addr, strlen(a[i].addr), false, &m, &why) == 0, "%s", a[i].addr);
        enum mailbox_name_verdict v = local_mailbox_name(&m, a[i].delims, name, sizeof name, &why);
        ck_assert_msg(v == a[i].v, "%s: verdict %d", a[i].addr, (int)v);
        if (a[i].name)
            ck_assert_str_eq(name, a[i].name);
    }
}
END_TEST

/* The same rule at delivery, for mail queued before the RCPT check refused it:
   a permanent failure (a bounce), never a file. */
START_TEST(resolve_refuses_control_names)
{
    res.user_exists = t_any_user;
    ck_assert_str_eq(resolve("dave@example.test"), "mailbox:dave");
    ck_assert_str_eq(resolve("dave.lock@example.test"), "FAIL 5.1.1");
    ck_assert_str_eq(resolve("\"DAVE.LOCK\"@example.test"), "FAIL 5.1.1");
    ck_assert_str_eq(resolve("dave.lock+tag@example.test"), "FAIL 5.1.1");
    ck_assert_str_eq(resolve("dave+tag.lock@example.test"), "mailbox:dave");
    ck_assert_str_eq(resolve("\".profile\"@example.test"), "FAIL 5.1.1");
    ck_assert_str_eq(resolve("\"dave.\"@example.test"), "FAIL 5.1.1");
    res.user_exists = t_user;
    /* a queued target naming one cannot be decoded, so it fails too */
    struct local_target u;
    ck_assert_int_eq(local_target_decode("::mailbox dave.lock@example.test\tdave.lock", &u), -1);
    ck_assert_int_eq(local_target_decode("::mailbox dave@example.test\tdave", &u), 0);
}
END_TEST

START_TEST(queued_targets_round_trip)
{
    struct local_target t = { .kind = LT_PIPE, .arg = "/usr/bin/procmail -a x", .rcpt = "prog@example.test" }, u;
    char s[ADDR_PATH_MAX + 1];
    ck_assert_int_eq(local_target_encode(&t, s, sizeof s), 0);
    ck_assert_str_eq(s, "::pipe prog@example.test\t/usr/bin/procmail -a x");
    ck_assert(local_is_target(s));
    ck_assert_int_eq(local_target_decode(s, &u), 0);
    ck_assert_int_eq(u.kind, LT_PIPE);
    ck_assert_str_eq(u.arg, t.arg);
    ck_assert_str_eq(u.rcpt, t.rcpt);
    ck_assert_str_eq(u.domain, "example.test");
    ck_assert(!local_is_target("alice@example.test"));
    ck_assert_int_eq(local_target_decode("::mailbox a@b\t../x", &u), -1);
    ck_assert_int_eq(local_target_decode("::mbox a@b\trelative", &u), -1);
    ck_assert_int_eq(local_target_decode("::nosuch a@b\tx", &u), -1);
    ck_assert_int_eq(local_target_decode("::pipe a@b", &u), -1);
    memset(t.arg, 'x', 300);
    t.arg[300] = '\0';
    ck_assert_int_eq(local_target_encode(&t, s, sizeof s), -1);
}
END_TEST

/* Every local failure mode and the result it must give. */
START_TEST(failure_mapping)
{
    struct { int err; enum delivery_result r; const char *code; } m[] = {
        { ENOSPC, DELIVERY_DEFER, "4.3.1" }, { EDQUOT, DELIVERY_DEFER, "4.2.2" },
        { EFBIG, DELIVERY_DEFER, "4.2.2" }, { EACCES, DELIVERY_DEFER, "4.3.0" },
        { EPERM, DELIVERY_DEFER, "4.3.0" }, { EIO, DELIVERY_DEFER, "4.3.0" },
        { EROFS, DELIVERY_DEFER, "4.3.0" }, { ENOENT, DELIVERY_DEFER, "4.3.5" },
        { ENOTDIR, DELIVERY_DEFER, "4.3.5" }, { EISDIR, DELIVERY_FAIL, "5.3.5" },
        { ELOOP, DELIVERY_FAIL, "5.3.5" }, { ENAMETOOLONG, DELIVERY_FAIL, "5.3.5" },
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        enum delivery_result r;
        ck_assert_str_eq(delivery_errno_class(m[i].err, &r), m[i].code);
        ck_assert_int_eq(r, m[i].r);
    }
    struct delivery_status st;
    delivery_set_errno(&st, ENOSPC, "cannot write %s", "/x");
    ck_assert_str_eq(st.text, "4.3.1 cannot write /x: No space left on device");
    /* quota: permanent 5.2.2 */
    ck_assert(!mailbox_quota_exceeded(100, 50, 0, "/m", &st));
    ck_assert(!mailbox_quota_exceeded(100, 50, 150, "/m", &st));
    ck_assert(mailbox_quota_exceeded(100, 51, 150, "/m", &st));
    ck_assert_int_eq(st.result, DELIVERY_FAIL);
    ck_assert_int_eq(strncmp(st.text, "5.2.2 mailbox full", 18), 0);
    /* no such user: permanent 5.1.1 */
    ck_assert_str_eq(resolve("ghost@example.test"), "FAIL 5.1.1");
    /* pipe exits (sysexits) */
    struct { int ws; bool to; enum delivery_result r; const char *code; } p[] = {
        { 0, false, DELIVERY_OK, "2.0.0" }, { 75 << 8, false, DELIVERY_DEFER, "4.3.0" },
        { 67 << 8, false, DELIVERY_FAIL, "5.1.1" }, { 77 << 8, false, DELIVERY_FAIL, "5.7.1" },
        { 1 << 8, false, DELIVERY_FAIL, "5.3.0" }, { 9, false, DELIVERY_DEFER, "4.3.0" },
        { 9, true, DELIVERY_DEFER, "4.4.7" },
    };
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        pipe_status(p[i].ws, p[i].to, "cmd", "why", &st);
        ck_assert_int_eq(st.result, p[i].r);
        ck_assert_msg(strncmp(st.text, p[i].code, 5) == 0, "%d: %s", p[i].ws, st.text);
    }
    pipe_status(1 << 8, false, "cmd", "disk on fire", &st);
    ck_assert_str_eq(st.text, "5.3.0 command exited with status 1: disk on fire");
}
END_TEST

START_TEST(check_only_counts_includes_unread)
{
    ck_assert_str_eq(resolve("noinc@example.test"), "DEFER 4.3.5");     /* delivery reads it */
    res.check_only = true;
    ck_assert_str_eq(resolve("noinc@example.test"), "mbox:/inc/none"); /* a RCPT check does not */
    ck_assert_str_eq(resolve("ghost@example.test"), "FAIL 5.1.1");
    res.check_only = false;
}
END_TEST

/* What ARC sealing at intake asks of a RCPT check (smtpd/smtp_arc_seal.h): does the
   expansion leave this host? A remote target says so; an include file, unread at
   RCPT, is flagged; local targets are neither. */
static bool forwards(const char *addr)
{
    struct local_targets ts = { 0 };
    struct delivery_status st;
    bool remote = false;
    ck_assert_int_eq(local_resolve(&res, addr, &ts, &st), 0);
    for (size_t i = 0; i < ts.n; i++)
        remote |= ts.v[i].kind == LT_REMOTE;
    remote |= ts.unread_include;
    local_targets_free(&ts);
    return remote;
}

START_TEST(check_only_tells_forwarding)
{
    res.check_only = true;
    ck_assert(forwards("fwd@example.test"));
    ck_assert(forwards("list@example.test"));
    ck_assert(forwards("info@other.test") == false);
    ck_assert(forwards("team@example.test") == false);
    ck_assert(forwards("keep@example.test") == false);
    ck_assert(forwards("box@virt.test") == false);
    res.check_only = false;
    ck_assert(forwards("list@example.test"));  /* read at delivery: carol@remote.test */
}
END_TEST

START_TEST(detect_syntax)
{
    enum local_map_syntax syn;
    const char *a = "# aliases\n\nroot: alice\n";
    ck_assert_int_eq(local_map_detect(a, strlen(a), &syn), 0);
    ck_assert_int_eq(syn, LOCAL_MAP_ALIASES);
    const char *q = "\"odd name\": x\n";
    ck_assert_int_eq(local_map_detect(q, strlen(q), &syn), 0);
    ck_assert_int_eq(syn, LOCAL_MAP_ALIASES);
    const char *v = "# virtual\n@dom.test alice\n";
    ck_assert_int_eq(local_map_detect(v, strlen(v), &syn), 0);
    ck_assert_int_eq(syn, LOCAL_MAP_VIRTUAL);
    const char *v2 = "a@dom.test lmtp:unix:/x\n";
    ck_assert_int_eq(local_map_detect(v2, strlen(v2), &syn), 0);
    ck_assert_int_eq(syn, LOCAL_MAP_VIRTUAL);
    const char *none = "# only comments\n\n", *junk = "hello world\n";
    ck_assert_int_eq(local_map_detect(none, strlen(none), &syn), -1);
    ck_assert_int_eq(local_map_detect(junk, strlen(junk), &syn), -1);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(build_and_open_db)
{
    char dir[] = "/tmp/ferry-map-XXXXXX", path[256], dbpath[300];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/virtual", dir);
    snprintf(dbpath, sizeof dbpath, "%s.db", path);
    write_file(path, "a@v.test alice\n@v.test bob, \"|x y\"\n");
    size_t n;
    ck_assert_msg(local_map_build(path, LOCAL_MAP_VIRTUAL, &n, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(n, 3);        /* two entries and the domain marker */
    struct local_map m;
    bool from_db, stale;
    ck_assert_msg(local_map_open(path, LOCAL_MAP_VIRTUAL, &m, &from_db, &stale, err, sizeof err) == 0, "%s", err);
    ck_assert(from_db);
    ck_assert_uint_eq(m.n, 3);
    ck_assert_str_eq(get(&m, "a@v.test"), "alice");
    ck_assert_str_eq(get(&m, "@v.test"), "bob, \"|x y\"");
    ck_assert_str_eq(get(&m, "v.test"), "");
    ck_assert_ptr_null(get(&m, "b@v.test"));
    char small[4];
    ck_assert_int_eq(local_map_lookup(&m, "a@v.test", small, sizeof small), -1);   /* too long: an error */
    local_map_free(&m);
    /* A compiled virtual map is never read as aliases. */
    ck_assert_int_eq(local_map_open(path, LOCAL_MAP_ALIASES, &m, &from_db, &stale, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "not a compiled aliases map") != NULL, "%s", err);
    /* A text error keeps the old .db in place. */
    write_file(path, "a@v.test alice\nbroken\n");
    ck_assert_int_eq(local_map_build(path, LOCAL_MAP_VIRTUAL, &n, err, sizeof err), -1);
    ck_assert_msg(strstr(err, ":2: ") != NULL, "%s", err);
    ck_assert_int_eq(local_map_open(path, LOCAL_MAP_VIRTUAL, &m, &from_db, &stale, err, sizeof err), 0);
    ck_assert_str_eq(get(&m, "a@v.test"), "alice");
    local_map_free(&m);
    /* Without the .db the text is read. */
    unlink(dbpath);
    write_file(path, "c@v.test carol\n");
    ck_assert_int_eq(local_map_open(path, LOCAL_MAP_VIRTUAL, &m, &from_db, &stale, err, sizeof err), 0);
    ck_assert(!from_db);
    ck_assert_str_eq(get(&m, "c@v.test"), "carol");
    local_map_free(&m);
    unlink(path);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.db.tmp", path);
    ck_assert_int_eq(access(tmp, F_OK), -1);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

Suite *local_suite(void)
{
    Suite *s = suite_create("local");
    TCase *tc = tcase_create("maps");
    tcase_add_test(tc, alias_syntax);
    tcase_add_test(tc, alias_errors);
    tcase_add_test(tc, virtual_syntax);
    tcase_add_test(tc, target_lists);
    tcase_add_test(tc, detect_syntax);
    tcase_add_test(tc, build_and_open_db);
    tcase_add_test(tc, mailbox_names);
    suite_add_tcase(s, tc);
    tc = tcase_create("resolve");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, resolve_plain_and_subaddress);
    tcase_add_test(tc, resolve_aliases);
    tcase_add_test(tc, resolve_loops_and_depth);
    tcase_add_test(tc, resolve_virtual);
    tcase_add_test(tc, check_only_counts_includes_unread);
    tcase_add_test(tc, check_only_tells_forwarding);
    tcase_add_test(tc, queued_targets_round_trip);
    tcase_add_test(tc, failure_mapping);
    tcase_add_test(tc, resolve_refuses_control_names);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(local_suite)

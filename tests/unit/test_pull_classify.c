/* Unit tests for pull/classify: entry parsing, the pure decisions (specificity, deny
   on ties, FCrDNS names, authenticated domains, per-user lists, correspondents), the
   private-address rule, and the Berkeley DB store on real files. */
#include "pull/classify.h"
#include "tests/unit/unit.h"
#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_storage ip(const char *s)
{
    struct sockaddr_storage sa;
    socklen_t len;
    ck_assert_int_eq(netaddr_parse_hostport(s, 25, &sa, &len), 0);
    return sa;
}

static struct pull_peer_entry peer(const char *text, bool deny)
{
    struct pull_peer_entry e;
    const char *why;
    ck_assert_msg(pull_peer_parse(text, &e, &why) == 0, "%s: %s", text, why);
    e.deny = deny;
    return e;
}

START_TEST(peer_parse)
{
    struct pull_peer_entry e;
    const char *why;
    ck_assert_int_eq(pull_peer_parse("192.0.2.9/24", &e, &why), 0);
    ck_assert_str_eq(e.text, "192.0.2.0/24");
    ck_assert_int_eq(pull_peer_parse("192.0.2.9", &e, &why), 0);
    ck_assert_str_eq(e.text, "192.0.2.9/32");
    ck_assert_int_eq(pull_peer_parse("2001:DB8::1/32", &e, &why), 0);
    ck_assert_str_eq(e.text, "2001:db8::/32");
    ck_assert_int_eq(pull_peer_parse("Mail.Example.ORG.", &e, &why), 0);
    ck_assert_str_eq(e.text, "mail.example.org");
    ck_assert(!e.is_net);
    ck_assert_int_eq(pull_peer_parse("localhost", &e, &why), -1);
    ck_assert_int_eq(pull_peer_parse("192.0.2.0/33", &e, &why), -1);
    ck_assert_int_eq(pull_peer_parse("1.2.3", &e, &why), -1);
    ck_assert_int_eq(pull_peer_parse("a b.org", &e, &why), -1);
    ck_assert_int_eq(pull_peer_parse("", &e, &why), -1);
    char p[300];
    ck_assert_int_eq(pull_pattern_parse("Bob@Example.org", p, sizeof p, &why), 0);
    ck_assert_str_eq(p, "bob@example.org");
    ck_assert_int_eq(pull_pattern_parse("@Example.org", p, sizeof p, &why), 0);
    ck_assert_str_eq(p, "@example.org");
    ck_assert_int_eq(pull_pattern_parse("bob", p, sizeof p, &why), -1);
    ck_assert_int_eq(pull_pattern_parse("@", p, sizeof p, &why), -1);
    ck_assert_int_eq(pull_pattern_parse("bob@[192.0.2.1]", p, sizeof p, &why), -1);
    ck_assert_int_eq(pull_user_name("Alice", p, sizeof p, &why), 0);
    ck_assert_str_eq(p, "alice");
    ck_assert_int_eq(pull_user_name("a b", p, sizeof p, &why), -1);
    ck_assert_int_eq(pull_user_name("../x", p, sizeof p, &why), -1);
}
END_TEST

START_TEST(peer_decisions)
{
    struct pull_peer_entry e[] = {
        peer("192.0.2.0/24", true), peer("192.0.2.7", false), peer("example.org", false),
        peer("bad.example.org", true), peer("198.51.100.0/24", false), peer("198.51.100.0/24", true),
    };
    size_t n = sizeof e / sizeof e[0];
    struct sockaddr_storage a7 = ip("192.0.2.7"), a8 = ip("192.0.2.8"), other = ip("203.0.113.1"),
                            mapped = ip("::ffff:192.0.2.7"), tie = ip("198.51.100.5");
    struct pull_verdict v;
    struct pull_peer_facts f = { .ip = (struct sockaddr *)&a7, .fcrdns = "" };
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);                 /* /32 beats the /24 deny */
    ck_assert_ptr_nonnull(strstr(v.reason, "192.0.2.7/32"));
    f.ip = (struct sockaddr *)&mapped;
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);
    f.ip = (struct sockaddr *)&a8;
    f.fcrdns = "mx.example.org";                           /* an IP entry beats a domain entry */
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_DENIED);
    f.ip = (struct sockaddr *)&other;
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);
    ck_assert_ptr_nonnull(strstr(v.reason, "mx.example.org"));
    f.fcrdns = "MX.Bad.Example.org.";                       /* the longer domain wins */
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_DENIED);
    f.fcrdns = "notexample.org";                           /* not a subdomain */
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_UNCLASSIFIED);
    f.fcrdns = "";
    f.ip = (struct sockaddr *)&tie;                        /* same entry twice: deny wins */
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_DENIED);
    /* authenticated and relay clients come first */
    f.ip = (struct sockaddr *)&a8;
    f.authenticated = true;
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);
    f.authenticated = false;
    f.relay_client = true;
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);
    f.relay_client = false;
    /* an authenticated domain on the allow list, only when configured */
    f.ip = (struct sockaddr *)&other;
    f.verified_domain = "news.example.org";
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_UNCLASSIFIED);
    f.allow_verified_domain = true;
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);
    f.verified_domain = "bad.example.org";
    pull_classify_peer(e, n, &f, &v);
    ck_assert_int_eq(v.cls, PULL_UNCLASSIFIED);
    /* no entries at all */
    pull_classify_peer(NULL, 0, &f, &v);
    ck_assert_int_eq(v.cls, PULL_UNCLASSIFIED);
}
END_TEST

START_TEST(sender_decisions)
{
    struct pull_user_entry e[] = { { false, "@example.org" }, { true, "spam@example.org" }, { true, "@x.test" },
                                   { false, "@x.test" } };
    struct pull_verdict v;
    pull_classify_sender(e, 4, "friend@Example.org", false, &v);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);
    pull_classify_sender(e, 4, "SPAM@example.org", false, &v);
    ck_assert_int_eq(v.cls, PULL_DENIED);                  /* exact beats @domain */
    pull_classify_sender(e, 4, "a@x.test", false, &v);
    ck_assert_int_eq(v.cls, PULL_DENIED);                  /* tie: deny */
    pull_classify_sender(e, 4, "a@sub.example.org", false, &v);
    ck_assert_int_eq(v.cls, PULL_UNCLASSIFIED);
    pull_classify_sender(e, 4, "a@sub.example.org", true, &v);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);
    ck_assert_str_eq(v.reason, "regular correspondent");
    pull_classify_sender(e, 4, "spam@example.org", true, &v);
    ck_assert_int_eq(v.cls, PULL_DENIED);                  /* an explicit deny beats auto-allow */
    pull_classify_sender(e, 4, "", true, &v);
    ck_assert_int_eq(v.cls, PULL_UNCLASSIFIED);            /* null sender */
}
END_TEST

START_TEST(private_addresses)
{
    const char *priv[] = { "127.0.0.1", "10.1.2.3", "172.31.0.1", "192.168.1.1", "169.254.0.1", "::1",
                           "fd00::1", "fe80::1", "::ffff:127.0.0.2", "100.64.0.1", "0.0.0.0", "::" };
    const char *pub[] = { "8.8.8.8", "172.32.0.1", "2a00:1450::1", "::ffff:8.8.4.4" };
    for (size_t i = 0; i < sizeof priv / sizeof priv[0]; i++) {
        struct sockaddr_storage a = ip(priv[i]);
        ck_assert_msg(pull_addr_is_private((struct sockaddr *)&a), "%s", priv[i]);
    }
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++) {
        struct sockaddr_storage a = ip(pub[i]);
        ck_assert_msg(!pull_addr_is_private((struct sockaddr *)&a), "%s", pub[i]);
    }
}
END_TEST

/* A fresh store in dir (a mkdtemp template). */
static struct pull_lists *store_open(char *dir, struct fdb_env **env)
{
    char err[512];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_msg(fdb_env_open(dir, env, err, sizeof err) == 0, "%s", err);
    struct pull_lists *l = pull_lists_open(*env, false, err, sizeof err);
    ck_assert_msg(l != NULL, "%s", err);
    return l;
}

static void store_remove(const char *dir, struct pull_lists *l, struct fdb_env *env)
{
    char cmd[64];
    pull_lists_close(l);
    fdb_env_close(env);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(store_round_trip)
{
    char dir[] = "/tmp/ferry-pcl-XXXXXX", err[512];
    struct fdb_env *env;
    struct pull_lists *l = store_open(dir, &env);
    ck_assert_int_eq(pull_peer_set(l, "192.0.2.9/24", PULL_DENIED, err, sizeof err), 0);
    ck_assert_int_eq(pull_peer_set(l, "Example.ORG", PULL_ALLOWED, err, sizeof err), 0);
    ck_assert_int_eq(pull_peer_set(l, "example.org", PULL_DENIED, err, sizeof err), 0);   /* replaces */
    ck_assert_int_eq(pull_peer_set(l, "not a peer", PULL_DENIED, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a peer"));
    struct pull_peer_entry *pe;
    size_t n;
    ck_assert_int_eq(pull_peer_load(l, &pe, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(pe[0].text, "192.0.2.0/24");
    ck_assert(pe[0].deny);
    ck_assert_str_eq(pe[1].text, "example.org");
    ck_assert(pe[1].deny);
    free(pe);
    ck_assert_int_eq(pull_peer_set(l, "192.0.2.0/24", PULL_UNCLASSIFIED, err, sizeof err), 0);
    ck_assert_int_eq(pull_peer_set(l, "192.0.2.0/24", PULL_UNCLASSIFIED, err, sizeof err), 1);
    ck_assert_int_eq(pull_peer_load(l, &pe, &n), 0);
    ck_assert_uint_eq(n, 1);
    free(pe);

    ck_assert_int_eq(pull_user_set(l, "alice", "@Example.org", PULL_ALLOWED, err, sizeof err), 0);
    ck_assert_int_eq(pull_user_set(l, "alice", "spam@example.org", PULL_DENIED, err, sizeof err), 0);
    ck_assert_int_eq(pull_user_set(l, "alicex", "a@b.org", PULL_ALLOWED, err, sizeof err), 0);
    ck_assert_int_eq(pull_user_set(l, "al", "c@d.org", PULL_ALLOWED, err, sizeof err), 0);
    ck_assert_int_eq(pull_user_set(l, "alice", "nonsense", PULL_ALLOWED, err, sizeof err), -1);
    struct pull_user_entry *ue;
    ck_assert_int_eq(pull_user_load(l, "Alice", &ue, &n), 0);
    ck_assert_uint_eq(n, 2);                                 /* only alice's, not alicex's or al's */
    ck_assert_str_eq(ue[0].pattern, "@example.org");
    ck_assert(!ue[0].deny);
    ck_assert_str_eq(ue[1].pattern, "spam@example.org");
    ck_assert(ue[1].deny);
    free(ue);
    ck_assert_int_eq(pull_user_load(l, "nobody", &ue, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(ue);

    ck_assert_int_eq(pull_correspondent_is(l, "alice", "Friend@Far.test"), 0);
    ck_assert_int_eq(pull_correspondent_note(l, "alice", "friend@far.test", PULL_CORR_SENT, 1000), 0);
    ck_assert_int_eq(pull_correspondent_is(l, "alice", "Friend@Far.test"), 1);
    ck_assert_int_eq(pull_correspondent_is(l, "bob", "friend@far.test"), 0);
    ck_assert_int_eq(pull_correspondent_note(l, "alice", "not an address", PULL_CORR_PULLED, 1), -1);
    pull_lists_close(l);

    /* durable: a fresh environment sees the same */
    fdb_env_close(env);
    ck_assert_int_eq(fdb_env_open(dir, &env, err, sizeof err), 0);
    l = pull_lists_open(env, false, err, sizeof err);
    ck_assert_int_eq(pull_correspondent_is(l, "alice", "friend@far.test"), 1);
    ck_assert_int_eq(pull_peer_load(l, &pe, &n), 0);
    ck_assert_uint_eq(n, 1);
    free(pe);
    store_remove(dir, l, env);
}
END_TEST

/* 50 000 peer entries: nothing fails open (the deny entries still deny), and a
   lookup costs keyed gets, not a load of the list (which refuses past 10 000). */
START_TEST(store_large_lists)
{
    char dir[] = "/tmp/ferry-pcl-XXXXXX", err[512];
    struct fdb_env *env;
    struct pull_lists *l = store_open(dir, &env);
    struct fdb *raw;
    ck_assert_int_eq(fdb_open(env, "pull_peers.db", &raw, err, sizeof err), 0);
    for (int chunk = 0; chunk < 10; chunk++) {          /* bulk, 5000 to a transaction */
        struct fdb_txn *txn;
        ck_assert_int_eq(fdb_txn_begin(env, &txn), 0);
        for (int i = chunk * 5000; i < (chunk + 1) * 5000; i++) {
            char k[64];
            int kl = i % 2 ? snprintf(k, sizeof k, "198.18.%d.%d/32", i / 256 % 256, i % 256)
                           : snprintf(k, sizeof k, "host%d.allowed.example", i);
            ck_assert_int_eq(fdb_put(raw, txn, k, (size_t)kl, "allow 0", 7), 0);
        }
        ck_assert_int_eq(fdb_txn_commit(txn), 0);
    }
    fdb_close(raw);
    ck_assert_int_eq(pull_peer_set(l, "203.0.113.0/24", PULL_DENIED, err, sizeof err), 0);
    ck_assert_int_eq(pull_peer_set(l, "bad.example", PULL_DENIED, err, sizeof err), 0);
    ck_assert_int_eq(pull_peer_set(l, "2001:db8:1::/48", PULL_DENIED, err, sizeof err), 0);
    ck_assert_int_eq(pull_user_set(l, "alice", "@friends.example", PULL_ALLOWED, err, sizeof err), 0);
    ck_assert_int_eq(pull_user_set(l, "alice", "pest@friends.example", PULL_DENIED, err, sizeof err), 0);
    /* the old way (load the whole list) cannot cope */
    struct pull_peer_entry *pe;
    size_t n;
    ck_assert_int_eq(pull_peer_load(l, &pe, &n), -1);

    struct pull_verdict v;
    struct sockaddr_storage a = ip("203.0.113.7"), b = ip("198.18.0.1"), c = ip("192.0.2.1"), d = ip("2001:db8:1::5");
    struct pull_peer_facts f = { .ip = (const struct sockaddr *)&a, .fcrdns = "" };
    ck_assert_int_eq(pull_classify_peer_db(l, &f, &v), 0);
    ck_assert_int_eq(v.cls, PULL_DENIED);
    ck_assert_str_eq(v.reason, "peer address in deny list entry 203.0.113.0/24");
    f.ip = (const struct sockaddr *)&d;
    ck_assert_int_eq(pull_classify_peer_db(l, &f, &v), 0);
    ck_assert_int_eq(v.cls, PULL_DENIED);
    f.ip = (const struct sockaddr *)&b;
    ck_assert_int_eq(pull_classify_peer_db(l, &f, &v), 0);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);
    f.ip = (const struct sockaddr *)&c;
    f.fcrdns = "mx1.Bad.Example.";
    ck_assert_int_eq(pull_classify_peer_db(l, &f, &v), 0);
    ck_assert_int_eq(v.cls, PULL_DENIED);
    f.fcrdns = "host4.allowed.example";
    ck_assert_int_eq(pull_classify_peer_db(l, &f, &v), 0);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);
    f.fcrdns = "host4.allowed.example.evil.test";
    ck_assert_int_eq(pull_classify_peer_db(l, &f, &v), 0);
    ck_assert_int_eq(v.cls, PULL_UNCLASSIFIED);
    /* an authenticated domain on the allow list */
    f.fcrdns = "";
    f.verified_domain = "host8.allowed.example";
    f.allow_verified_domain = true;
    ck_assert_int_eq(pull_classify_peer_db(l, &f, &v), 0);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);

    ck_assert_int_eq(pull_classify_sender_db(l, "Alice", "Pal@Friends.example", false, &v), 0);
    ck_assert_int_eq(v.cls, PULL_ALLOWED);
    ck_assert_int_eq(pull_classify_sender_db(l, "alice", "pest@friends.example", false, &v), 0);
    ck_assert_int_eq(v.cls, PULL_DENIED);
    ck_assert_int_eq(pull_classify_sender_db(l, "bob", "pal@friends.example", false, &v), 0);
    ck_assert_int_eq(v.cls, PULL_UNCLASSIFIED);

    /* cost: 1000 IPv4 classifications (33 keyed gets each) */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    f.ip = (const struct sockaddr *)&c;
    f.fcrdns = "mx.some.where.example";
    f.verified_domain = NULL;
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(pull_classify_peer_db(l, &f, &v), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "store_large_lists: 1000 classifications against 50003 entries in %.1f ms\n", ms);
    ck_assert(ms < 5000);

    store_remove(dir, l, env);
}
END_TEST

/* A list database that cannot be opened (here: not a database at all) is an
   error for every lookup, never "not on the list"; a lazy store opens it once it
   is usable again, a strict one refuses to open. */
START_TEST(store_unreadable_list)
{
    char dir[] = "/tmp/ferry-pcl-XXXXXX", err[512], path[64];
    struct fdb_env *env;
    struct pull_lists *l = store_open(dir, &env);
    ck_assert_int_eq(pull_peer_set(l, "192.0.2.0/24", PULL_DENIED, err, sizeof err), 0);
    ck_assert_int_eq(pull_user_set(l, "alice", "pest@friends.example", PULL_DENIED, err, sizeof err), 0);
    pull_lists_close(l);
    fdb_env_close(env);
    const char *files[] = { "pull_peers.db", "pull_users.db", "pull_correspondents.db" };
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *fh = fopen(path, "w");
        ck_assert_ptr_nonnull(fh);
        for (int k = 0; k < 1024; k++)
            fputs("junk", fh);
        fclose(fh);
    }
    ck_assert_int_eq(fdb_env_open(dir, &env, err, sizeof err), 0);
    ck_assert_ptr_null(pull_lists_open(env, false, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "pull_peers.db"));
    l = pull_lists_open(env, true, err, sizeof err);
    ck_assert_ptr_nonnull(l);
    ck_assert_ptr_nonnull(strstr(err, "pull_peers.db"));

    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "192.0.2.7", &a.sin_addr);
    struct pull_peer_facts f = { .ip = (const struct sockaddr *)&a, .fcrdns = "" };
    struct pull_verdict v;
    ck_assert_int_eq(pull_classify_peer_db(l, &f, &v), -1);
    ck_assert_int_eq(v.cls, PULL_UNCLASSIFIED);
    ck_assert_ptr_nonnull(strstr(v.reason, "cannot be read"));
    ck_assert_int_eq(pull_classify_sender_db(l, "alice", "pest@friends.example", false, &v), -1);
    ck_assert_int_eq(pull_correspondent_is(l, "alice", "pest@friends.example"), -1);
    ck_assert_int_eq(pull_peer_set(l, "192.0.2.1", PULL_ALLOWED, err, sizeof err), -1);
    struct pull_peer_entry *pe;
    size_t n;
    ck_assert_int_eq(pull_peer_load(l, &pe, &n), -1);

    /* usable again (the junk removed: Berkeley DB creates an empty list): after
       the reopen interval the lazy store opens it */
    snprintf(path, sizeof path, "%s/pull_peers.db", dir);
    ck_assert_int_eq(unlink(path), 0);
    sleep(6);
    ck_assert_int_eq(pull_classify_peer_db(l, &f, &v), 0);
    ck_assert_int_eq(v.cls, PULL_UNCLASSIFIED);
    ck_assert_int_eq(pull_classify_sender_db(l, "alice", "pest@friends.example", false, &v), -1);  /* still junk */
    store_remove(dir, l, env);
}
END_TEST

static Suite *pull_classify_suite(void)
{
    Suite *s = suite_create("pull_classify");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, peer_parse);
    tcase_add_test(tc, peer_decisions);
    tcase_add_test(tc, sender_decisions);
    tcase_add_test(tc, private_addresses);
    tcase_add_test(tc, store_round_trip);
    tcase_add_test(tc, store_large_lists);
    tcase_add_test(tc, store_unreadable_list);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(pull_classify_suite)

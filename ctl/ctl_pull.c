/*
 * ctl_pull — `ferryctl pull ...`: DMTP receiver-pull lists and pending notices in
 * the data_dir Berkeley DB environment (pull/classify.h, pull/notice.h).
 *
 *   pull allow|deny|unlist PEER            peer list: IP, CIDR block or domain
 *   pull allow|deny|unlist USER PATTERN    a user's sender list: user@domain or @domain
 *   pull lists [USER]                      the peer list (or USER's sender list), one
 *                                          "allow|deny ENTRY" per line
 *   pull list [USER]                       pending notices, one per line:
 *                                          ID SENDER RECIPIENT PEER AGE STATE SUBJECT
 *                                          (STATE: pending, fetch-requested or auto; it
 *                                          goes before SUBJECT, the one field with spaces)
 *   pull drop USER ID                      forget a notice (the sender is not told)
 *   pull fetch USER ID                     ask for the message: the notice is marked
 *                                          "fetch requested" and the running queue
 *                                          process is nudged (control socket "pull")
 *
 * Exit codes: 0 ok, 1 operational failure (including "no such notice"), 2 usage.
 */
#include "ctl/ctl.h"
#include "lib/buf.h"
#include "pull/classify.h"
#include "pull/msid.h"
#include "pull/notice.h"
#include "queue/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "usage: ferryctl pull allow|deny|unlist PEER | allow|deny|unlist USER PATTERN |\n"
                    "       lists [USER] | list [USER] | drop USER ID | fetch USER ID\n"
                    "       (PEER: IP, CIDR or domain; PATTERN: user@domain or @domain)\n");
    return 2;
}

/* "45s", "12m", "3h", "2d" */
static void age_text(time_t secs, char *out, size_t outsz)
{
    if (secs < 0)
        secs = 0;
    if (secs < 60)
        snprintf(out, outsz, "%llds", (long long)secs);
    else if (secs < 3600)
        snprintf(out, outsz, "%lldm", (long long)secs / 60);
    else if (secs < 86400)
        snprintf(out, outsz, "%lldh", (long long)secs / 3600);
    else
        snprintf(out, outsz, "%lldd", (long long)secs / 86400);
}

static int print_notice(const struct pull_notice *n, void *arg)
{
    const time_t *now = arg;
    char age[32], peer[sizeof n->peer_ip + sizeof n->peer_name + 2];
    age_text(*now - n->created, age, sizeof age);
    if (n->peer_name[0])
        snprintf(peer, sizeof peer, "%s(%s)", n->peer_ip, n->peer_name);
    else
        snprintf(peer, sizeof peer, "%s", n->peer_ip);
    printf("%s %s %s %s %s %s %s\n", n->id, n->sender[0] ? n->sender : "<>", n->recipient, peer, age,
           notice_state_name(n->state), n->subject);
    return 0;
}

static int lists(struct fdb_env *env, int argc, char **argv)
{
    char err[512];
    enum pull_class cls = !strcmp(argv[0], "allow") ? PULL_ALLOWED : !strcmp(argv[0], "deny") ? PULL_DENIED
                                                                                             : PULL_UNCLASSIFIED;
    struct pull_lists *l = pull_lists_open(env, false, err, sizeof err);
    if (!l) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }
    int r = argc == 2 ? pull_peer_set(l, argv[1], cls, err, sizeof err)
                      : pull_user_set(l, argv[1], argv[2], cls, err, sizeof err);
    pull_lists_close(l);
    if (r != 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }
    return 0;
}

static int show_lists(struct fdb_env *env, int argc, char **argv)
{
    char err[512];
    struct pull_lists *l = pull_lists_open(env, false, err, sizeof err);
    if (!l) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }
    int r;
    size_t n;
    if (argc == 1) {
        struct pull_peer_entry *e;
        if ((r = pull_peer_load(l, &e, &n)) == 0)
            for (size_t i = 0; i < n; i++)
                printf("%s %s\n", e[i].deny ? "deny" : "allow", e[i].text);
        free(e);
    } else {
        struct pull_user_entry *e;
        if ((r = pull_user_load(l, argv[1], &e, &n)) == 0)
            for (size_t i = 0; i < n; i++)
                printf("%s %s\n", e[i].deny ? "deny" : "allow", e[i].pattern);
        free(e);
    }
    pull_lists_close(l);
    if (r < 0)
        fprintf(stderr, "ferryctl: cannot read the pull lists\n");
    return r < 0 ? 1 : 0;
}

static int notices(const struct ferry_config *cfg, struct fdb_env *env, int argc, char **argv)
{
    char err[512];
    struct msid_key key;
    if (msid_key_load(cfg->data_dir, &key, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }
    struct notice_store *s = notice_open(env, &key, err, sizeof err);
    memset(&key, 0, sizeof key);
    if (!s) {
        fprintf(stderr, "ferryctl: %s\n", err);
        return 1;
    }
    int rc = 0, r;
    time_t now = time(NULL);
    if (!strcmp(argv[0], "list")) {
        size_t damaged = 0;
        if (notice_list(s, argc == 2 ? argv[1] : NULL, print_notice, &now, &damaged) < 0) {
            fprintf(stderr, "ferryctl: cannot read the pending notices\n");
            rc = 1;
        } else if (damaged) {
            fprintf(stderr, "ferryctl: %zu damaged notice record(s) skipped\n", damaged);
            rc = 1;
        }
    } else if (!strcmp(argv[0], "drop")) {
        r = notice_drop(s, argv[1], argv[2], err, sizeof err);
        if (r == 1)
            fprintf(stderr, "ferryctl: user %s has no pending notice %s\n", argv[1], argv[2]);
        else if (r < 0)
            fprintf(stderr, "ferryctl: %s\n", err);
        rc = r == 0 ? 0 : 1;
    } else {
        r = notice_update(s, argv[1], argv[2], NOTICE_FETCH_REQUESTED, 0, now, err, sizeof err);
        if (r == 1)
            fprintf(stderr, "ferryctl: user %s has no pending notice %s\n", argv[1], argv[2]);
        else if (r < 0)
            fprintf(stderr, "ferryctl: %s\n", err);
        else {
            /* Tell the running queue process, as queue flush does; when nobody
               answers, the next start (or pull run) takes it. */
            char reply[256];
            bool told = control_request(cfg->spool_dir, "pull", reply, sizeof reply) == 0;
            printf("notice %s: fetch requested; %s\n", argv[2],
                   told ? (!strncmp(reply, "ok ", 3) ? reply + 3 : reply)
                        : "the queue process pulls the message when it runs (it did not answer now)");
        }
        rc = r == 0 ? 0 : 1;
    }
    notice_close(s);
    return rc;
}

int ctl_pull(const struct ferry_config *cfg, int argc, char **argv)
{
    if (argc < 1)
        return usage();
    const char *verb = argv[0];
    bool is_list = !strcmp(verb, "allow") || !strcmp(verb, "deny") || !strcmp(verb, "unlist");
    bool ok = (is_list && (argc == 2 || argc == 3)) || (!strcmp(verb, "list") && argc <= 2) ||
              (!strcmp(verb, "lists") && argc <= 2) ||
              ((!strcmp(verb, "drop") || !strcmp(verb, "fetch")) && argc == 3);
    if (!ok)
        return usage();
    struct fdb_env *env;
    if (ctl_open_env(cfg, &env) < 0)
        return 1;
    int rc = is_list                     ? lists(env, argc, argv)
             : !strcmp(verb, "lists") ? show_lists(env, argc, argv)
                                      : notices(cfg, env, argc, argv);
    fdb_env_close(env);
    return rc;
}

/*
 * pull_notice_add — test tool: store one pending DMTP notice the way the smtp
 * process will after an MSID, so `ferryctl pull` can be tested before the daemon
 * speaks DMTP.
 *
 *   pull_notice_add CONF USER RECIPIENT SENDER PEER_IP PEER_NAME SUBJECT [AGE_SECONDS]
 *
 * Prints the notice ID. Runs as the daemon's user when started as root.
 * PULL_NOTICE_MSID (the msid to store) and PULL_NOTICE_AUTO=1 (state NOTICE_AUTO,
 * pulled at once) in the environment let the pull tests point it at a real held
 * message.
 */
#include "ctl/ctl.h"
#include "lib/buf.h"
#include "pull/notice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 8 && argc != 9) {
        fprintf(stderr, "usage: pull_notice_add CONF USER RECIPIENT SENDER PEER_IP PEER_NAME SUBJECT [AGE]\n");
        return 2;
    }
    struct ferry_config cfg;
    char err[512];
    if (settings_load(argv[1], &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct fdb_env *env;
    struct msid_key key;
    if (ctl_open_env(&cfg, &env) < 0)
        return 1;
    if (msid_key_load(cfg.data_dir, &key, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct notice_store *s = notice_open(env, &key, err, sizeof err);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct pull_notice n;
    memset(&n, 0, sizeof n);
    str_copy(n.user, argv[2], sizeof n.user);
    str_copy(n.recipient, argv[3], sizeof n.recipient);
    str_copy(n.sender, argv[4], sizeof n.sender);
    str_copy(n.peer_ip, argv[5], sizeof n.peer_ip);
    str_copy(n.peer_name, argv[6], sizeof n.peer_name);
    str_copy(n.subject, argv[7], sizeof n.subject);
    const char *msid = getenv("PULL_NOTICE_MSID");
    str_copy(n.msid, msid && msid[0] ? msid : "0ABCDEFGHIJKLMNO-0077359400-ABCDEFGHIJKLMNOPQRSTUV0123",
             sizeof n.msid);
    const char *autopull = getenv("PULL_NOTICE_AUTO");
    n.state = autopull && !strcmp(autopull, "1") ? NOTICE_AUTO : NOTICE_PENDING;
    time_t now = time(NULL) - (argc == 9 ? atol(argv[8]) : 0);
    if (notice_add(s, &n, 1, now, (time_t)cfg.pull_expiry, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%s\n", n.id);
    notice_close(s);
    fdb_env_close(env);
    settings_free(&cfg);
    return 0;
}

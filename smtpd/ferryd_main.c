/*
 * ferryd — the Ferry mail daemon.
 *
 *   ferryd -c FILE [-f]   run (-f: stay in the foreground, log to stderr)
 *   ferryd -c FILE -t     check the configuration; errors as FILE:LINE: message, exit 1
 *   ferryd -c FILE -n     print the effective configuration
 *
 * Exit codes: 0 ok, 1 operational failure (bad config included), 2 usage.
 */
#include "lib/log.h"
#include "lib/settings.h"
#include "smtpd/parent.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/ferry/ferry.conf"

/* libevent's own messages, into Ferry's log at their level (by default they go
   raw to stderr, which a daemon has closed). One is expected and harmless: a
   child makes its own event base while the parent's, inherited with the fork
   and never run there, still holds the signals; the child's base, the only one
   it runs, gets them. */
static void libevent_log(int severity, const char *msg)
{
    enum log_level lvl = severity == EVENT_LOG_ERR ? LOG_LVL_ERROR : severity == EVENT_LOG_WARN ? LOG_LVL_WARN
                         : severity == EVENT_LOG_MSG ? LOG_LVL_INFO : LOG_LVL_DEBUG;
    if (lvl == LOG_LVL_WARN && strncmp(msg, "Added a signal to event base", 28) == 0)
        lvl = LOG_LVL_DEBUG;
    log_msg(lvl, NULL, "libevent: %s", msg);
}

static void usage(void)
{
    fprintf(stderr, "usage: ferryd [-c FILE] [-f | -t | -n]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *path = DEFAULT_CONFIG;
    bool foreground = false, check = false, print = false;
    int c;
    while ((c = getopt(argc, argv, "c:ftnh")) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'f': foreground = true; break;
        case 't': check = true; break;
        case 'n': print = true; break;
        default: usage();
        }
    }
    event_set_log_callback(libevent_log);
    if (optind != argc || (check && print))
        usage();
    struct ferry_config *cfg = malloc(sizeof *cfg);
    char err[CONF_ERR_MAX];
    if (!cfg) {
        fprintf(stderr, "ferryd: out of memory\n");
        return 1;
    }
    if (settings_load(path, cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        free(cfg);
        return 1;
    }
    SSL_CTX *tls = NULL;
    if (check && (parent_tls_ctx(cfg, &tls, err, sizeof err) < 0 || parent_check_files(cfg, err, sizeof err) < 0)) {
        fprintf(stderr, "%s: %s\n", path, err);
        settings_free(cfg);
        free(cfg);
        return 1;
    }
    SSL_CTX_free(tls);
    if (check) {
        printf("%s: configuration is valid\n", path);
        settings_free(cfg);
        free(cfg);
        return 0;
    }
    if (print) {
        settings_print(stdout, cfg);
        settings_free(cfg);
        free(cfg);
        return 0;
    }
    return parent_run(cfg, foreground);     /* which owns cfg from now on */
}

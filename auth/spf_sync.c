/*
 * spf_sync — the parts of spf.h that need no evaluation state: address parsing
 * and the blocking form for command-line tools (a private event loop).
 */
#include "auth/spf.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

/* --- blocking form ------------------------------------------------------------ */

struct sync_wait {
    struct spf_outcome *out;
    bool done;
};

static void sync_done(const struct spf_outcome *o, void *arg)
{
    struct sync_wait *w = arg;
    *w->out = *o;
    w->done = true;
}

int spf_check_sync(const struct dns_config *cfg, const struct spf_query *q, struct spf_outcome *out)
{
    struct auth_sync s;
    if (auth_sync_open(&s, cfg) < 0)
        return -1;
    struct sync_wait w = {out, false};
    struct spf_check *c = spf_check_start(&s.resolver, q, sync_done, &w);
    auth_sync_run(&s, &w.done);
    if (!w.done)
        spf_check_cancel(c);
    auth_sync_close(&s);
    return w.done ? 0 : -1;
}

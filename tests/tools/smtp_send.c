/*
 * smtp_send — delivers one message file with delivery/smtp_client.h, for the
 * integration tests.
 *
 *   smtp_send --target HOST=IP:PORT [--target ...] [--helo NAME] [--source IP]
 *             [--from ADDR] [--ret full|hdrs] [--envid X] [--8bit] [--smtputf8]
 *             [--requiretls] [--timeout MS] [--connect-timeout MS]
 *             [--tls off|may|must|implicit] [--auth USER:PASS] [--repeat N]
 *             --rcpt ADDR [--notify LIST] [--orcpt ADDR] [--rcpt ...] MSGFILE
 *
 * --notify and --orcpt (rfc822) apply to the --rcpt before them. --tls accepts
 * any certificate (the TLS policy lives in the queue process, not here).
 * --repeat sends the message N times, on one connection while the session
 * stays open. Prints, per transaction, "remote=HOST ip=IP tried=N txn=K
 * open=0|1 unattempted=0|1 tls=DESC", then per recipient, in order:
 * "<ADDR> ok|defer|fail relayed=0|1" and the lines "  text: TEXT" and "  reply: REPLY".
 * A failed TLS handshake is told on stderr: "hook: handshake-failed target=N
 * timed_out=0|1 local=IP" (the hook TLS-RPT counts with).
 */
#include "delivery/smtp_client.h"
#include "lib/netaddr.h"
#include "lib/tls.h"
#include "smtpd/smtp_params.h"

#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int finished;
static int repeat = 1;
static struct smtp_txn_params next_txn;

static void on_done(struct smtp_client *c, const struct smtp_client_result *r, void *arg)
{
    const struct envelope *e = arg;
    static const char *names[] = {"ok", "defer", "fail"};
    printf("remote=%s ip=%s tried=%u txn=%u open=%d unattempted=%d tls=%s\n", r->remote_host, r->remote_ip,
           r->targets_tried, r->txn_on_conn, r->session_open, r->not_attempted, r->tls);
    for (size_t i = 0; i < r->nrcpts; i++) {
        const struct smtp_rcpt_result *x = &r->rcpts[i];
        printf("<%s> %s relayed=%d\n  text: %s\n  reply: %s\n", e->rcpts[x->index].addr, names[x->st.result],
               x->dsn_relayed ? 1 : 0, x->st.text, x->reply);
    }
    fflush(stdout);
    finished++;
    if (finished < repeat && r->session_open)
        smtp_client_next(c, &next_txn, on_done, arg);
}

static SSL_CTX *tool_ctx;
static enum smtp_tls_mode tool_mode = SMTP_TLS_OFF;

static enum smtp_tls_mode hook_mode(void *arg, size_t target)
{
    return tool_mode;
}

static SSL *hook_new_ssl(void *arg, size_t target, char *err, size_t errsz)
{
    SSL *ssl = SSL_new(tool_ctx);
    if (!ssl)
        snprintf(err, errsz, "SSL_new failed");
    return ssl;
}

static bool hook_judge(void *arg, size_t target, SSL *ssl, bool *verified, char *desc, size_t descsz)
{
    char v[32], ciph[64];
    int bits;
    tls_describe(ssl, v, sizeof v, ciph, sizeof ciph, &bits);
    snprintf(desc, descsz, "%s:%s", v, ciph);
    *verified = false;
    return true;
}

static struct smtp_client *the_client;

/* TLS-RPT's view of a failed handshake, on stderr: the tests read it there. */
static void hook_handshake_failed(void *arg, size_t target, SSL *ssl, bool timed_out)
{
    char local[64] = "?";
    if (the_client)
        smtp_client_local_addr(the_client, local, sizeof local);
    fprintf(stderr, "hook: handshake-failed target=%zu timed_out=%d local=%s\n", target, timed_out, local);
}

static void usage(const char *why)
{
    fprintf(stderr, "smtp_send: %s\n", why);
    exit(2);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    struct envelope e;
    env_init(&e);
    strcpy(e.sender, "sender@client.test");
    struct mx_target targets[MX_MAX_ADDRS];
    size_t ntargets = 0;
    struct smtp_client_params p;
    memset(&p, 0, sizeof p);
    p.helo_name = "client.test";
    smtp_timeouts_default(&p.timeouts);
    struct sockaddr_storage src;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--target") && v) {
            const char *eq = strchr(v, '=');
            if (!eq || ntargets >= MX_MAX_ADDRS)
                usage("--target wants HOST=IP:PORT");
            struct mx_target *t = &targets[ntargets++];
            memset(t, 0, sizeof *t);
            snprintf(t->host, sizeof t->host, "%.*s", (int)(eq - v), v);
            if (netaddr_parse_hostport(eq + 1, 0, &t->sa, &t->salen) < 0)
                usage("bad --target address");
            i++;
        } else if (!strcmp(a, "--helo") && v) {
            p.helo_name = v, i++;
        } else if (!strcmp(a, "--source") && v) {
            if (netaddr_parse_hostport(v, 1, &src, &p.source_len) < 0)
                usage("bad --source");
            ((struct sockaddr_in *)&src)->sin_port = 0;
            if (src.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&src)->sin6_port = 0;
            p.source = (const struct sockaddr *)&src;
            i++;
        } else if (!strcmp(a, "--from") && v) {
            snprintf(e.sender, sizeof e.sender, "%s", v), i++;
        } else if (!strcmp(a, "--ret") && v) {
            e.ret = !strcmp(v, "full") ? ENV_RET_FULL : ENV_RET_HDRS, i++;
        } else if (!strcmp(a, "--envid") && v) {
            snprintf(e.envid, sizeof e.envid, "%s", v), i++;
        } else if (!strcmp(a, "--8bit")) {
            e.body_8bit = true;
        } else if (!strcmp(a, "--smtputf8")) {
            e.smtputf8 = true;
        } else if (!strcmp(a, "--requiretls")) {
            e.requiretls = true;
        } else if (!strcmp(a, "--timeout") && v) {
            unsigned ms = (unsigned)atoi(v);
            struct smtp_timeouts *t = &p.timeouts;
            t->greeting = t->helo = t->mail = t->rcpt = t->data_init = t->data_block = t->data_final = t->quit = ms;
            i++;
        } else if (!strcmp(a, "--connect-timeout") && v) {
            p.timeouts.connect = (unsigned)atoi(v), i++;
        } else if (!strcmp(a, "--tls") && v) {
            tool_mode = !strcmp(v, "may") ? SMTP_TLS_MAY : !strcmp(v, "must") ? SMTP_TLS_MUST :
                        !strcmp(v, "implicit") ? SMTP_TLS_IMPLICIT : SMTP_TLS_OFF;
            i++;
        } else if (!strcmp(a, "--auth") && v) {
            char *colon = strchr(v, ':');
            if (!colon)
                usage("--auth wants USER:PASS");
            *colon = '\0';
            p.auth_user = v;
            p.auth_pass = colon + 1;
            i++;
        } else if (!strcmp(a, "--repeat") && v) {
            repeat = atoi(v), i++;
        } else if (!strcmp(a, "--rcpt") && v) {
            if (env_add_rcpt(&e, v) < 0)
                usage("bad --rcpt");
            i++;
        } else if (!strcmp(a, "--notify") && v && e.nrcpts) {
            if (smtp_notify_parse(v, &e.rcpts[e.nrcpts - 1].notify) < 0)
                usage("bad --notify");
            i++;
        } else if (!strcmp(a, "--orcpt") && v && e.nrcpts) {
            e.rcpts[e.nrcpts - 1].orcpt_type = ENV_ORCPT_RFC822;
            snprintf(e.rcpts[e.nrcpts - 1].orcpt, sizeof e.rcpts[0].orcpt, "%s", v);
            i++;
        } else if (a[0] != '-' && !file) {
            file = a;
        } else {
            usage("unknown argument");
        }
    }
    if (!file || !ntargets || !e.nrcpts)
        usage("needs --target, --rcpt and a message file");
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        perror(file);
        return 1;
    }
    e.size = (unsigned long long)sb.st_size;
    size_t *idx = calloc(e.nrcpts, sizeof *idx);
    for (size_t i = 0; i < e.nrcpts; i++)
        idx[i] = i;
    p.env = &e;
    p.rcpts = idx;
    p.nrcpts = e.nrcpts;
    p.msg_fd = fd;
    p.targets = targets;
    p.ntargets = ntargets;
    struct smtp_tls_hooks hooks = {hook_mode, hook_new_ssl, hook_judge, NULL, NULL, hook_handshake_failed};
    if (tool_mode != SMTP_TLS_OFF) {
        tool_ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(tool_ctx, SSL_VERIFY_NONE, NULL);
        p.tls = &hooks;
    }
    next_txn = (struct smtp_txn_params){&e, idx, e.nrcpts, fd, 0};
    struct event_base *base = event_base_new();
    if (!base || !(the_client = smtp_client_start(base, &p, on_done, &e))) {
        perror("smtp_client_start");
        return 1;
    }
    event_base_dispatch(base);
    event_base_free(base);
    close(fd);
    free(idx);
    env_free(&e);
    if (tool_ctx)
        SSL_CTX_free(tool_ctx);
    if (!finished) {
        fprintf(stderr, "smtp_send: the client never reported\n");
        return 1;
    }
    return 0;
}

/*
 * tls_probe — one outbound STARTTLS session the way delivery does it, for the
 * integration tests: the TLSA lookup through lib/dns (delivery/dane.h), the
 * effective level (delivery/tls_policy.h), EHLO + STARTTLS and the handshake
 * (delivery/tls_client.h).
 *
 *   tls_probe --resolver IP[:PORT] [--level none|may|encrypt|dane|verify] [--requiretls]
 *             [--nexthop DOMAIN] [--ca FILE] [--helo NAME] HOST PORT
 *
 * HOST's A record (through the same resolver) is where it connects. Prints:
 *   "tlsa status=S usable=N total=N (WHY)"
 *   "level=L effective=E"
 *   then one of "defer (WHY)", "plaintext (WHY)", "tls-refused (WHY)", or the
 *   outcome line of tls_outcome_format followed by "acceptable=yes|no", and after
 *   an acceptable session the server's EHLO reply status under TLS ("ehlo=250").
 * Exit 0 when the session could carry mail, 1 when not, 2 on usage errors.
 */
#include "delivery/dane.h"
#include "delivery/tls_client.h"
#include "delivery/tls_policy.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static struct dane_result tlsa;
static struct dns_answer addr;
static int pending;

static void on_tlsa(const struct dane_result *r, void *arg)
{
    tlsa = *r;
    pending--;
}

static void on_addr(const struct dns_answer *a, void *arg)
{
    if (dns_answer_copy(&addr, a) < 0)
        addr.status = DNS_ERROR;
    pending--;
}

/* One SMTP reply (all its lines) from fd or ssl; returns the code, -1 on error. */
static int reply(int fd, SSL *ssl, char *text, size_t textsz)
{
    size_t used = 0;
    char line[1024];
    for (int lines = 0; lines < 100; lines++) {
        size_t n = 0;
        for (;;) {
            char ch;
            int got = ssl ? SSL_read(ssl, &ch, 1) : (int)recv(fd, &ch, 1, 0);
            if (got <= 0)
                return -1;
            if (ch == '\n')
                break;
            if (ch != '\r' && n + 1 < sizeof line)
                line[n++] = ch;
        }
        line[n] = '\0';
        if (n < 3)
            return -1;
        if (used < textsz)
            used += (size_t)snprintf(text + used, textsz - used, "%s\n", line);
        if (n == 3 || line[3] == ' ')
            return atoi(line);
    }
    return -1;
}

static int say(int fd, SSL *ssl, const char *cmd)
{
    size_t len = strlen(cmd);
    return ssl ? (SSL_write(ssl, cmd, (int)len) == (int)len ? 0 : -1)
               : (send(fd, cmd, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1);
}

int main(int argc, char **argv)
{
    struct dns_config dcfg;
    dns_config_init(&dcfg);
    enum tls_level level = TLS_LEVEL_DANE;
    const char *nexthop = NULL, *ca = NULL, *helo = "probe.example.test";
    bool requiretls = false;
    const char *host = NULL;
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--resolver") && i + 1 < argc) {
            if (dns_config_add_server(&dcfg, argv[++i]) < 0) {
                fprintf(stderr, "tls_probe: bad resolver %s\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--level") && i + 1 < argc) {
            if (tls_level_parse(argv[++i], &level) < 0) {
                fprintf(stderr, "tls_probe: bad level %s\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--requiretls")) {
            requiretls = true;
        } else if (!strcmp(argv[i], "--nexthop") && i + 1 < argc) {
            nexthop = argv[++i];
        } else if (!strcmp(argv[i], "--ca") && i + 1 < argc) {
            ca = argv[++i];
        } else if (!strcmp(argv[i], "--helo") && i + 1 < argc) {
            helo = argv[++i];
        } else if (!host) {
            host = argv[i];
        } else if (!port) {
            port = atoi(argv[i]);
        } else {
            fprintf(stderr, "tls_probe: unexpected %s\n", argv[i]);
            return 2;
        }
    }
    if (!host || port <= 0 || port > 65535 || dcfg.nservers == 0) {
        fprintf(stderr, "usage: tls_probe --resolver IP[:PORT] [--level L] [--requiretls] [--nexthop D] "
                        "[--ca FILE] [--helo NAME] HOST PORT\n");
        return 2;
    }
    dcfg.cache_max = 0;
    struct event_base *base = event_base_new();
    struct dns_client *dns = base ? dns_client_new(base, &dcfg) : NULL;
    if (!dns) {
        fprintf(stderr, "tls_probe: cannot start the DNS client\n");
        return 1;
    }
    pending = 2;
    if (!dane_lookup(dns, host, (uint16_t)port, on_tlsa, NULL) || !dns_lookup(dns, host, DNS_T_A, on_addr, NULL)) {
        fprintf(stderr, "tls_probe: out of memory\n");
        return 1;
    }
    while (pending > 0 && event_base_loop(base, EVLOOP_ONCE) == 0)
        ;
    printf("tlsa status=%s usable=%zu total=%zu (%s)\n", dane_status_name(tlsa.status), tlsa.set.n, tlsa.set.total,
           tlsa.why);
    enum tls_level eff = tls_level_effective(level, requiretls, &tlsa);
    printf("level=%s effective=%s\n", tls_level_name(level), tls_level_name(eff));
    fflush(stdout);
    int rc = 1;
    if (tlsa.status == DANE_FAILED && (level == TLS_LEVEL_DANE || requiretls)) {
        printf("defer (%s)\n", tlsa.why);
        goto out;
    }
    if (addr.status != DNS_OK || addr.count == 0) {
        printf("defer (no address for %s: %s)\n", host, dns_status_name(addr.status));
        goto out;
    }
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    sin.sin_addr = addr.records[0].u.a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char text[4096], cmd[300];
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || reply(fd, NULL, text, sizeof text) != 220) {
        printf("defer (cannot connect or no greeting)\n");
        goto out;
    }
    snprintf(cmd, sizeof cmd, "EHLO %s\r\n", helo);
    if (say(fd, NULL, cmd) < 0 || reply(fd, NULL, text, sizeof text) != 250) {
        printf("defer (EHLO failed)\n");
        goto out;
    }
    if (eff == TLS_LEVEL_NONE || !strstr(text, "STARTTLS")) {
        printf("plaintext (%s)\n", eff == TLS_LEVEL_NONE ? "level none" : "STARTTLS not offered");
        rc = tls_level_requires_tls(eff) ? 1 : 0;
        goto quit;
    }
    if (say(fd, NULL, "STARTTLS\r\n") < 0 || reply(fd, NULL, text, sizeof text) != 220) {
        printf("tls-refused (%s)\n", text);
        rc = tls_level_requires_tls(eff) ? 1 : 0;
        goto quit;
    }
    char err[256];
    SSL_CTX *ctx = tls_client_ctx_new(ca, err, sizeof err);
    bool dane_active = eff == TLS_LEVEL_DANE;
    SSL *ssl = ctx ? tls_client_ssl_new(ctx, host, nexthop, eff, &tlsa, err, sizeof err) : NULL;
    if (!ssl) {
        printf("defer (%s)\n", err);
        goto out;
    }
    SSL_set_fd(ssl, fd);
    int hs = SSL_connect(ssl);
    struct tls_outcome o;
    tls_client_outcome(ssl, eff, dane_active, &o);
    char line[512];
    tls_outcome_format(&o, line, sizeof line);
    printf("%s\nacceptable=%s\n", line, o.acceptable ? "yes" : "no");
    if (hs == 1 && o.acceptable) {
        snprintf(cmd, sizeof cmd, "EHLO %s\r\n", helo);
        int code = say(fd, ssl, cmd) == 0 ? reply(fd, ssl, text, sizeof text) : -1;
        printf("ehlo=%d\n", code);
        say(fd, ssl, "QUIT\r\n");
        reply(fd, ssl, text, sizeof text);
        rc = code == 250 ? 0 : 1;
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    goto out;
quit:
    say(fd, NULL, "QUIT\r\n");
    reply(fd, NULL, text, sizeof text);
    close(fd);
out:
    fflush(stdout);
    dns_answer_free(&addr);
    dns_client_free(dns);
    event_base_free(base);
    return rc;
}

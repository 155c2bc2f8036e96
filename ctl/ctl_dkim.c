/*
 * ctl_dkim — `ferryctl dkim keygen|sign|verify|rotate`.
 *
 *   keygen --domain D --selector S --out KEYFILE [--algo rsa-sha256|ed25519-sha256] [--bits N]
 *   sign   --domain D --selector S --key KEYFILE [--canon relaxed|simple[/relaxed|simple]] < msg > signed
 *   verify < msg                      one Authentication-Results style line per signature
 *   rotate --domain D --keydir DIR [--algo A] [--bits N]
 *
 * Key directory layout (read by the daemon's signer):
 *   DIR/D/<selector>.key   PEM private keys, mode 0600, one per selector
 *   DIR/D/active           the selector signing now (one line)
 *   DIR/D/next             the selector made by rotate, waiting for its TXT record;
 *                          the daemon promotes it to active once the record is visible
 *                          in DNS, and keeps the old key until then, so no mail is
 *                          signed with a key nobody can look up.
 * Selectors made by rotate are named <r|e>YYYYMMDD (rsa / ed25519), with -2, -3...
 * when that name is taken the same day.
 *
 * Messages are read from stdin (at most 64 MiB). Unix line ends are accepted: they
 * canonicalise as CRLF would, and sign writes its fields with the input's line ends.
 */
#include "auth/dkim_dns.h"
#include "auth/dkim_key.h"
#include "auth/dkim_sign.h"
#include "auth/dkim_verify.h"
#include "ctl/ctl.h"
#include "lib/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct dkim_args {
    const char *domain, *selector, *out, *key, *keydir, *algo, *canon;
    int bits;
};

static int parse_args(int argc, char **argv, struct dkim_args *a)
{
    memset(a, 0, sizeof *a);
    a->bits = DKIM_RSA_DEFAULT_BITS;
    a->algo = "rsa-sha256";
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "ferryctl dkim: option %s needs a value\n", o);
            return -1;
        }
        const char *v = argv[++i];
        if (!strcmp(o, "--domain")) a->domain = v;
        else if (!strcmp(o, "--selector")) a->selector = v;
        else if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--key")) a->key = v;
        else if (!strcmp(o, "--keydir")) a->keydir = v;
        else if (!strcmp(o, "--algo")) a->algo = v;
        else if (!strcmp(o, "--canon")) a->canon = v;
        else if (!strcmp(o, "--bits")) {
            char *end;
            long b = strtol(v, &end, 10);
            if (*end || b < DKIM_RSA_MIN_BITS || b > DKIM_RSA_MAX_BITS) {
                fprintf(stderr, "ferryctl dkim: --bits %s is not a number in %d..%d\n", v, DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
                return -1;
            }
            a->bits = (int)b;
        } else {
            fprintf(stderr, "ferryctl dkim: unknown option %s\n", o);
            return -1;
        }
    }
    return 0;
}

/* Generate, write and print: shared by keygen and rotate. */
static int make_key(const struct dkim_args *a, const char *selector, const char *path)
{
    enum dkim_algo algo;
    if (dkim_algo_parse(a->algo, &algo) < 0 || algo == DKIM_ALGO_RSA_SHA1) {
        fprintf(stderr, "ferryctl dkim: --algo must be rsa-sha256 or ed25519-sha256, not %s\n", a->algo);
        return 2;
    }
    char err[256];
    EVP_PKEY *k = dkim_keygen(algo, a->bits, err, sizeof err);
    if (!k || dkim_privkey_write(k, path, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl dkim: %s\n", err);
        EVP_PKEY_free(k);
        return 1;
    }
    char text[4096], line[4400];
    int rc = dkim_record_text(k, text, sizeof text) < 0 ||
             dkim_record_zone_line(selector, a->domain, text, line, sizeof line) < 0;
    EVP_PKEY_free(k);
    if (rc) {
        fprintf(stderr, "ferryctl dkim: cannot format the public key record\n");
        return 1;
    }
    printf("%s\n", line);
    return 0;
}

static int cmd_keygen(const struct dkim_args *a)
{
    if (!a->domain || !a->selector || !a->out) {
        fprintf(stderr, "usage: ferryctl dkim keygen --domain D --selector S --out KEYFILE [--algo A] [--bits N]\n");
        return 2;
    }
    return make_key(a, a->selector, a->out);
}

static int write_small(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
        fprintf(stderr, "ferryctl dkim: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int cmd_rotate(const struct dkim_args *a)
{
    if (!a->domain || !a->keydir || strchr(a->domain, '/') || a->domain[0] == '.') {
        fprintf(stderr, "usage: ferryctl dkim rotate --domain D --keydir DIR [--algo A] [--bits N]\n");
        return 2;
    }
    char dir[4096], path[4200], sel[64];
    snprintf(dir, sizeof dir, "%s/%s", a->keydir, a->domain);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "ferryctl dkim: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char base[32];
    snprintf(base, sizeof base, "%c%04d%02d%02d", strcmp(a->algo, "ed25519-sha256") ? 'r' : 'e',
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    struct stat st;
    for (int i = 1;; i++) {
        if (i > 99) {
            fprintf(stderr, "ferryctl dkim: too many keys made today in %s\n", dir);
            return 1;
        }
        if (i == 1)
            snprintf(sel, sizeof sel, "%s", base);
        else
            snprintf(sel, sizeof sel, "%s-%d", base, i);
        snprintf(path, sizeof path, "%s/%s.key", dir, sel);
        if (stat(path, &st) < 0)
            break;
    }
    int rc = make_key(a, sel, path);
    if (rc)
        return rc;
    char next[4200], line[80];
    snprintf(next, sizeof next, "%s/next", dir);
    snprintf(line, sizeof line, "%s\n", sel);
    if (write_small(next, line) < 0)
        return 1;
    fprintf(stderr, "ferryctl dkim: %s is the next selector of %s; publish the record above, "
            "the daemon switches to it once DNS shows it\n", sel, a->domain);
    return 0;
}

static int cmd_sign(const struct dkim_args *a)
{
    if (!a->domain || !a->selector || !a->key) {
        fprintf(stderr, "usage: ferryctl dkim sign --domain D --selector S --key KEYFILE < msg > signed\n");
        return 2;
    }
    char err[256];
    struct dkim_sign_key k = { .pkey = NULL, .algo = DKIM_ALGO_RSA_SHA256, .domain = a->domain, .selector = a->selector };
    k.pkey = dkim_privkey_load(a->key, &k.algo, err, sizeof err);
    if (!k.pkey) {
        fprintf(stderr, "ferryctl dkim: %s\n", err);
        return 1;
    }
    struct buf msg, sig;
    buf_init(&sig, 1u << 20);
    int rc = 1;
    if (ctl_read_stdin(&msg, "dkim") < 0)
        goto out;
    struct dkim_sign_opts o;
    dkim_sign_opts_init(&o, (int64_t)time(NULL));
    if (a->canon) {
        const char *slash = strchr(a->canon, '/');
        size_t hl = slash ? (size_t)(slash - a->canon) : strlen(a->canon);
        const char *body = slash ? slash + 1 : "simple";   /* RFC 6376 §3.5: c=X means X/simple */
        bool hs = hl == 6 && !strncmp(a->canon, "simple", 6), hr = hl == 7 && !strncmp(a->canon, "relaxed", 7);
        bool bs = !strcmp(body, "simple"), br = !strcmp(body, "relaxed");
        if (!(hs || hr) || !(bs || br)) {
            fprintf(stderr, "ferryctl dkim: --canon %s is not relaxed|simple[/relaxed|simple]\n", a->canon);
            rc = 2;
            goto out;
        }
        o.hcanon = hs ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
        o.bcanon = bs ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
    }
    if (dkim_sign_message(&k, 1, &o, msg.data ? msg.data : "", msg.len, &sig, err, sizeof err) < 0) {
        fprintf(stderr, "ferryctl dkim: %s\n", err);
        goto out;
    }
    bool crlf = msg.len == 0 || memmem(msg.data, msg.len, "\r\n", 2) != NULL;
    for (size_t i = 0; i < sig.len; i++)
        if (crlf || sig.data[i] != '\r')
            putchar(sig.data[i]);
    fwrite(msg.data, 1, msg.len, stdout);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    buf_free(&msg);
    buf_free(&sig);
    EVP_PKEY_free(k.pkey);
    return rc;
}

static int cmd_verify(const struct dns_config *dns)
{
    struct buf msg;
    if (ctl_read_stdin(&msg, "dkim") < 0) {
        buf_free(&msg);
        return 1;
    }
    struct dkim_resolver r;
    dkim_resolver_sync(&r, dns);
    struct dkim_verify_opts o;
    dkim_verify_opts_init(&o, (int64_t)time(NULL));
    struct dkim_sig_result *res;
    size_t n;
    int rc = dkim_verify_message(&o, &r, msg.data ? msg.data : "", msg.len, &res, &n);
    buf_free(&msg);
    if (rc < 0) {
        fprintf(stderr, "ferryctl dkim: verification could not run (out of memory)\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        char line[512];
        dkim_result_format(&res[i], false, line, sizeof line);
        printf("%s\n", line);
    }
    free(res);
    return 0;
}

int ctl_dkim(const struct dns_config *dns, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: ferryctl dkim keygen|sign|verify|rotate ...\n");
        return 2;
    }
    struct dkim_args a;
    if (parse_args(argc - 1, argv + 1, &a) < 0)
        return 2;
    if (!strcmp(argv[0], "keygen"))
        return cmd_keygen(&a);
    if (!strcmp(argv[0], "rotate"))
        return cmd_rotate(&a);
    if (!strcmp(argv[0], "sign"))
        return cmd_sign(&a);
    if (!strcmp(argv[0], "verify")) {
        if (argc != 1) {
            fprintf(stderr, "usage: ferryctl [--resolver IP[:PORT]] dkim verify < msg\n");
            return 2;
        }
        return cmd_verify(dns);
    }
    fprintf(stderr, "ferryctl dkim: unknown subcommand \"%s\"\n", argv[0]);
    return 2;
}

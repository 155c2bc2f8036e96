/*
 * test_config.c — lib/config.h and lib/settings.h.
 *
 * Covers: built-in defaults; every value type (size, duration, bool, enum, string,
 * path, lists from repeated keys and commas, the file's list replacing the
 * default); comments and blank lines; every error reads "PATH:LINE: " with the
 * right line (unknown key, bad value, key twice, no "=", empty value, over-long
 * line, out-of-range numbers, bad listen spec, bad CIDR); tls_cert without
 * tls_key; relative paths made absolute; etc/ferry.conf documents exactly the
 * schema's keys with their defaults; settings_is_local_domain and
 * settings_is_relay_client.
 */
#include "lib/config.h"
#include "lib/settings.h"
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];
static char conf_path[128];
static struct ferry_config cfg;
static char err[CONF_ERR_MAX];

static void setup(void)
{
    strcpy(tmpdir, "/tmp/ferry-test-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(conf_path, sizeof conf_path, "%s/ferry.conf", tmpdir);
    memset(&cfg, 0, sizeof cfg);
    err[0] = '\0';
}

static void teardown(void)
{
    unlink(conf_path);
    rmdir(tmpdir);
}

static void write_conf(const char *text)
{
    FILE *f = fopen(conf_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Load text; expect success. */
static void load_ok(const char *text)
{
    write_conf(text);
    int r = settings_load(conf_path, &cfg, err, sizeof err);
    ck_assert_msg(r == 0, "settings_load failed: %s", err);
}

/* Load text; expect an error that starts with "PATH:LINE: " and contains what. */
static void load_err(const char *text, int line, const char *what)
{
    write_conf(text);
    int r = settings_load(conf_path, &cfg, err, sizeof err);
    ck_assert_int_eq(r, -1);
    char prefix[200];
    snprintf(prefix, sizeof prefix, "%s:%d: ", conf_path, line);
    ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0,
                  "error \"%s\" does not start with \"%s\"", err, prefix);
    if (what)
        ck_assert_msg(strstr(err, what) != NULL, "error \"%s\" lacks \"%s\"", err, what);
}

START_TEST(defaults)
{
    ck_assert_int_eq(settings_load(NULL, &cfg, err, sizeof err), 0);
    ck_assert_uint_eq(cfg.message_size_limit, 26214400ULL);
    ck_assert_uint_eq(cfg.listen.n, 1);
    ck_assert_str_eq(cfg.listen.items[0], "smtp 0.0.0.0:25");
    ck_assert_uint_eq(cfg.nlisteners, 1);
    ck_assert_int_eq(cfg.listeners[0].kind, LISTEN_SMTP);
    ck_assert_uint_eq(netaddr_port((struct sockaddr *)&cfg.listeners[0].sa), 25);
    ck_assert_str_eq(cfg.spool_dir, "/var/spool/ferry");
    ck_assert_str_eq(cfg.user, "ferry");
    ck_assert_str_eq(cfg.tls_cert, "");
    ck_assert_int_eq(cfg.local_recipients, RCPT_KNOWN);
    ck_assert_uint_eq(cfg.max_recipients, 1000);
    ck_assert_uint_eq(cfg.smtp_timeout, 300);
    ck_assert_uint_eq(cfg.data_timeout, 600);
    ck_assert_uint_eq(cfg.dns_timeout, 3);
    ck_assert_uint_eq(cfg.retry_max, 67 * 60);
    ck_assert_uint_eq(cfg.queue_lifetime, 5 * 86400);
    ck_assert_uint_eq(cfg.relay_networks.n, 2);
    ck_assert_str_eq(cfg.relay_networks.items[0], "127.0.0.0/8");
    ck_assert_str_eq(cfg.relay_networks.items[1], "::1/128");
    ck_assert_uint_eq(cfg.nrelay_cidrs, 2);
    ck_assert_uint_eq(cfg.resolver.n, 0);
    ck_assert(cfg.hostname[0] != '\0');
    ck_assert(cfg.local_domains.n >= 1);
    ck_assert_str_eq(cfg.local_domains.items[0], cfg.hostname);
    settings_free(&cfg);

    /* An empty file gives the same defaults. */
    load_ok("");
    ck_assert_uint_eq(cfg.message_size_limit, 26214400ULL);
    ck_assert_str_eq(cfg.listen.items[0], "smtp 0.0.0.0:25");
    ck_assert_str_eq(cfg.path, conf_path);
    settings_free(&cfg);
}
END_TEST

START_TEST(sizes)
{
    static const struct { const char *text; unsigned long long v; } t[] = {
        { "1024", 1024 }, { "2k", 2048 }, { "3K", 3072 }, { "10M", 10485760ULL },
        { "2G", 2147483648ULL },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        unsigned long long v = 0;
        ck_assert_int_eq(conf_parse_size(t[i].text, &v), 0);
        ck_assert_uint_eq(v, t[i].v);
    }
    static const char *const bad[] = { "", "k", "M", "1x", "1.5M", "-1", " 1", "1MB", "1m",
                                       "99999999999999999999", "17179869184G" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned long long v;
        ck_assert_msg(conf_parse_size(bad[i], &v) < 0, "size \"%s\" accepted", bad[i]);
    }
    load_ok("message_size_limit = 10M\n");
    ck_assert_uint_eq(cfg.message_size_limit, 10485760ULL);
    settings_free(&cfg);
    load_ok("message_size_limit = 64k\n");
    ck_assert_uint_eq(cfg.message_size_limit, 65536);
    settings_free(&cfg);
    load_ok("message_size_limit = 1G\n");
    ck_assert_uint_eq(cfg.message_size_limit, 1073741824ULL);
    settings_free(&cfg);
}
END_TEST

START_TEST(durations)
{
    static const struct { const char *text; unsigned long long v; } t[] = {
        { "7", 7 }, { "7s", 7 }, { "2m", 120 }, { "3h", 10800 }, { "2d", 172800 },
        { "1w", 604800 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        unsigned long long v = 0;
        ck_assert_int_eq(conf_parse_duration(t[i].text, &v), 0);
        ck_assert_uint_eq(v, t[i].v);
    }
    static const char *const bad[] = { "", "s", "1y", "1M", "1 h", "h1", "-5s" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned long long v;
        ck_assert_msg(conf_parse_duration(bad[i], &v) < 0, "duration \"%s\" accepted", bad[i]);
    }
    load_ok("smtp_timeout = 90s\ndata_timeout = 1h\nqueue_lifetime = 2w\nretry_max = 1d\n"
            "retry_min = 10m\n");
    ck_assert_uint_eq(cfg.smtp_timeout, 90);
    ck_assert_uint_eq(cfg.data_timeout, 3600);
    ck_assert_uint_eq(cfg.queue_lifetime, 14 * 86400);
    ck_assert_uint_eq(cfg.retry_max, 86400);
    ck_assert_uint_eq(cfg.retry_min, 600);
    settings_free(&cfg);
}
END_TEST

START_TEST(bools_and_enums)
{
    static const char *const yes[] = { "yes", "YES", "true", "On", "1" };
    static const char *const no[] = { "no", "False", "off", "0" };
    bool b;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        b = false;
        ck_assert_int_eq(conf_parse_bool(yes[i], &b), 0);
        ck_assert(b);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        b = true;
        ck_assert_int_eq(conf_parse_bool(no[i], &b), 0);
        ck_assert(!b);
    }
    ck_assert_int_lt(conf_parse_bool("maybe", &b), 0);
    ck_assert_int_lt(conf_parse_bool("", &b), 0);
    ck_assert_int_lt(conf_parse_bool("2", &b), 0);

    load_ok("local_recipients = any\nlog_level = DEBUG\nlog = stderr\n");
    ck_assert_int_eq(cfg.local_recipients, RCPT_ANY);
    ck_assert_int_eq(cfg.log_level, 3);
    ck_assert_int_eq(cfg.log, LOGDEST_STDERR);
    settings_free(&cfg);
    load_err("log_level = loud\n", 1, "expected one of error, warn, info, debug");
}
END_TEST

START_TEST(lists)
{
    /* Repeated keys and commas; the file's list replaces the default. */
    load_ok("relay_networks = 10.0.0.0/8, 192.168.0.0/16\n"
            "relay_networks = 2001:db8::/32\n"
            "listen = smtp 127.0.0.1:2525\n"
            "listen = submission [::1]:587\n"
            "listen = smtps 0.0.0.0:465\n"
            "local_domains = Example.COM,example.org.\n"
            "local_domains = mail.example.net\n"
            "resolver = 192.0.2.53, [2001:db8::53]:5353\n"
            "tls_cert = /etc/ssl/ferry.pem\ntls_key = /etc/ssl/ferry.key\n");   /* smtps needs them */
    ck_assert_uint_eq(cfg.relay_networks.n, 3);
    ck_assert_str_eq(cfg.relay_networks.items[0], "10.0.0.0/8");
    ck_assert_str_eq(cfg.relay_networks.items[1], "192.168.0.0/16");
    ck_assert_str_eq(cfg.relay_networks.items[2], "2001:db8::/32");
    ck_assert_uint_eq(cfg.nrelay_cidrs, 3);
    ck_assert_uint_eq(cfg.listen.n, 3);
    ck_assert_uint_eq(cfg.nlisteners, 3);
    ck_assert_int_eq(cfg.listeners[0].kind, LISTEN_SMTP);
    ck_assert_int_eq(cfg.listeners[1].kind, LISTEN_SUBMISSION);
    ck_assert_int_eq(cfg.listeners[2].kind, LISTEN_SMTPS);
    ck_assert_int_eq(cfg.listeners[1].sa.ss_family, AF_INET6);
    ck_assert_uint_eq(netaddr_port((struct sockaddr *)&cfg.listeners[1].sa), 587);
    ck_assert_str_eq(cfg.listeners[0].text, "smtp 127.0.0.1:2525");
    /* listen is not comma-split: one item per line */
    ck_assert_str_eq(cfg.listen.items[1], "submission [::1]:587");
    ck_assert_uint_eq(cfg.local_domains.n, 3);
    ck_assert_str_eq(cfg.local_domains.items[0], "example.com");
    ck_assert_str_eq(cfg.local_domains.items[1], "example.org");
    ck_assert_str_eq(cfg.local_domains.items[2], "mail.example.net");
    ck_assert_uint_eq(cfg.resolver.n, 2);
    ck_assert_str_eq(cfg.resolver.items[1], "[2001:db8::53]:5353");
    settings_free(&cfg);

    /* Empty items between commas are skipped. */
    load_ok("relay_networks = 10.0.0.1,, 10.0.0.2 ,\n");
    ck_assert_uint_eq(cfg.relay_networks.n, 2);
    ck_assert_str_eq(cfg.relay_networks.items[1], "10.0.0.2");
    settings_free(&cfg);

    /* The same address twice is an error (not a line error: derived). */
    write_conf("listen = smtp 127.0.0.1:25\nlisten = smtps 127.0.0.1:25\n");
    ck_assert_int_eq(settings_load(conf_path, &cfg, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "given twice"));
}
END_TEST

START_TEST(comments_and_blanks)
{
    load_ok("# a comment\n"
            "\n"
            "   \t\n"
            "   # indented comment = with an equals sign\n"
            "  max_recipients   =   500  \n"
            "\tuser\t=\tmailer\t\n"
            "#smtp_max_sessions = 1\n"
            "hostname = MX.Example.COM.\n");
    ck_assert_uint_eq(cfg.max_recipients, 500);
    ck_assert_str_eq(cfg.user, "mailer");
    ck_assert_uint_eq(cfg.smtp_max_sessions, 200);
    ck_assert_str_eq(cfg.hostname, "mx.example.com");
    settings_free(&cfg);

    /* A last line without a newline still counts. */
    load_ok("max_errors = 7");
    ck_assert_uint_eq(cfg.max_errors, 7);
    settings_free(&cfg);
}
END_TEST

START_TEST(errors_unknown_key)
{
    load_err("# comment\n\nmax_recipients = 200\nno_such_key = 1\n", 4, "unknown setting \"no_such_key\"");
    load_err("Max_Recipients = 200\n", 1, "unknown setting");
}
END_TEST

START_TEST(errors_bad_value)
{
    load_err("\nmax_recipients = lots\n", 2, "max_recipients");
    load_err("message_size_limit = 5T\n", 1, "not a size");
    load_err("smtp_timeout = 5y\n", 1, "not a duration");
    load_err("local_recipients = some\n", 1, "expected one of");
    load_err("user = a b\n", 1, "not a user name");
    load_err("hostname = a@b\n", 1, "not a domain name");
    load_err("resolver = dns.example\n", 1, "expected IP");
    load_err("max_recipients = -1\n", 1, NULL);
}
END_TEST

START_TEST(errors_twice)
{
    load_err("max_recipients = 200\n#\nmax_recipients = 300\n", 3, "given twice");
    load_err("user = a\nuser = a\n", 2, "given twice");
}
END_TEST

START_TEST(errors_syntax)
{
    load_err("max_recipients = 200\nmax_recipients 300\n", 2, "expected \"key = value\"");
    load_err("\n\n\nmax_recipients =\n", 4, "empty value");
    load_err("message_size_limit =   \n", 1, "empty value");
    load_err("listen =\n", 1, "empty value");
    load_err("relay_networks = , ,\n", 1, "empty value");
    load_err("= 5\n", 1, NULL);
}
END_TEST

START_TEST(nul_byte_and_explicit_empty_default)
{
    /* A NUL inside a line must not silently cut the line short. */
    FILE *f = fopen(conf_path, "w");
    ck_assert_ptr_nonnull(f);
    fwrite("max_errors = 5\nuser = fe\0rry\n", 1, 30, f);
    fclose(f);
    ck_assert_int_eq(settings_load(conf_path, &cfg, err, sizeof err), -1);
    ck_assert_msg(strstr(err, ":2: NUL") != NULL, "%s", err);
    /* "hostname =" as documented in etc/ferry.conf means the default */
    load_ok("hostname =\n");
    ck_assert(cfg.hostname[0] != '\0');
    settings_free(&cfg);
}
END_TEST

START_TEST(errors_long_line)
{
    /* CONF_LINE_MAX octets plus the newline is fine; one more is not. */
    char *text = malloc(3 * CONF_LINE_MAX);
    ck_assert_ptr_nonnull(text);
    strcpy(text, "# first\nuser = ferry\n# ");
    size_t n = strlen(text);
    size_t start = strlen("# first\nuser = ferry\n");
    while (n - start < CONF_LINE_MAX)
        text[n++] = 'x';
    text[n++] = '\n';
    text[n] = '\0';
    load_ok(text);
    settings_free(&cfg);

    strcpy(text, "# first\nuser = ferry\n# ");
    n = strlen(text);
    while (n - start < CONF_LINE_MAX + 1)
        text[n++] = 'x';
    text[n++] = '\n';
    strcpy(text + n, "user = other\n");
    load_err(text, 3, "line longer than");
    free(text);
}
END_TEST

START_TEST(errors_range)
{
    load_err("max_recipients = 99\n", 1, "out of range (100 to 100000)");
    load_err("max_recipients = 100001\n", 1, "out of range");
    load_err("message_size_limit = 1023\n", 1, "out of range");
    load_err("message_size_limit = 2G\n", 1, "out of range");
    load_err("dns_rounds = 0\n", 1, "out of range");
    load_err("dns_timeout = 61s\n", 1, "out of range");
    load_err("smtp_timeout = 2h\n", 1, "out of range");
    load_err("queue_lifetime = 0\n", 1, "out of range");
    load_err("max_errors = 18446744073709551616\n", 1, "not a number");
    load_ok("max_recipients = 100\nsmtp_max_sessions = 100000\nmessage_size_limit = 1k\n");
    ck_assert_uint_eq(cfg.max_recipients, 100);
    ck_assert_uint_eq(cfg.message_size_limit, 1024);
    settings_free(&cfg);
}
END_TEST

/* The session limits (security review #5): one session count per kind of
   listener, the junk-command and idle-session limits. */
START_TEST(session_limits)
{
    ck_assert_int_eq(settings_load(NULL, &cfg, err, sizeof err), 0);
    ck_assert_uint_eq(cfg.smtp_max_sessions, 200);
    ck_assert_uint_eq(cfg.submission_max_sessions, 100);
    ck_assert_uint_eq(cfg.max_connections_per_ip, 20);
    ck_assert_uint_eq(cfg.smtp_junk_command_limit, 100);
    ck_assert_uint_eq(cfg.smtp_idle_session_limit, 300);
    ck_assert_uint_eq(cfg.smtp_timeout, 300);      /* a separate key: the per-command timeout */
    settings_free(&cfg);

    load_ok("smtp_max_sessions = 5\nsubmission_max_sessions = 7\nsmtp_junk_command_limit = 1\n"
            "smtp_idle_session_limit = 2s\n");
    ck_assert_uint_eq(cfg.smtp_max_sessions, 5);
    ck_assert_uint_eq(cfg.submission_max_sessions, 7);
    ck_assert_uint_eq(cfg.smtp_junk_command_limit, 1);
    ck_assert_uint_eq(cfg.smtp_idle_session_limit, 2);
    settings_free(&cfg);
    load_ok("smtp_idle_session_limit = 1d\nsmtp_junk_command_limit = 100000\n");
    ck_assert_uint_eq(cfg.smtp_idle_session_limit, 86400);
    settings_free(&cfg);

    load_err("smtp_max_sessions = 0\n", 1, "out of range");
    load_err("user = x\nsubmission_max_sessions = 0\n", 2, "out of range");
    load_err("submission_max_sessions = 100001\n", 1, "out of range");
    load_err("smtp_max_sessions = many\n", 1, "not a number");
    load_err("smtp_junk_command_limit = 0\n", 1, "out of range");
    load_err("smtp_junk_command_limit = -1\n", 1, NULL);
    load_err("smtp_idle_session_limit = 0\n", 1, "out of range");
    load_err("smtp_idle_session_limit = 2d\n", 1, "out of range");
    load_err("smtp_idle_session_limit = 5x\n", 1, NULL);
    /* The single global count is gone: its key is unknown now. */
    load_err("max_connections = 200\n", 1, "unknown");
}
END_TEST

START_TEST(errors_listen)
{
    load_err("listen = smtp 127.0.0.1\n", 1, "address must be");
    load_err("listen = pop3 127.0.0.1:110\n", 1, "KIND must be");
    load_err("listen = smtp\n", 1, "expected \"KIND ADDRESS:PORT\"");
    load_err("listen = smtp 127.0.0.1:0\n", 1, "address must be");
    load_err("listen = smtp 127.0.0.1:65536\n", 1, "address must be");
    load_err("listen = smtp [127.0.0.1]:25\n", 1, "address must be");
    load_err("listen = smtp mail.example:25\n", 1, "address must be");
    load_err("listen = smtp 0.0.0.0:25\nlisten = smtp 999.0.0.1:25\n", 2, "address must be");
}
END_TEST

START_TEST(listen_options)
{
    load_ok("listen = smtp 127.0.0.1:2525 trace=/tmp/traces\nlisten = submission 127.0.0.1:2587\n");
    ck_assert_uint_eq(cfg.nlisteners, 2);
    ck_assert_str_eq(cfg.listeners[0].trace_dir, "/tmp/traces");
    ck_assert_str_eq(cfg.listeners[1].trace_dir, "");
    settings_free(&cfg);
    load_err("listen = smtp 127.0.0.1:2525 trace=relative\n", 1, "absolute");
    load_err("listen = smtp 127.0.0.1:2525 bogus=1\n", 1, "unknown listen option");
}
END_TEST

START_TEST(errors_cidr)
{
    load_err("relay_networks = 10.0.0.0/33\n", 1, "not an address or CIDR block");
    load_err("relay_networks = 10.0.0.0/8, ::1/129\n", 1, "not an address or CIDR block");
    load_err("\nrelay_networks = 10.0.0.0/8\nrelay_networks = 10.0.0/8\n", 3, "CIDR");
    load_err("relay_networks = 10.0.0.0/\n", 1, "CIDR");
    load_err("relay_networks = 10.0.0.0/x\n", 1, "CIDR");
    load_err("relay_networks = example.com\n", 1, "CIDR");
}
END_TEST

START_TEST(tls_pair)
{
    write_conf("tls_cert = /etc/ssl/cert.pem\n");
    ck_assert_int_eq(settings_load(conf_path, &cfg, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "tls_cert and tls_key"));
    ck_assert_int_eq(strncmp(err, conf_path, strlen(conf_path)), 0);
    write_conf("tls_key = /etc/ssl/key.pem\n");
    ck_assert_int_eq(settings_load(conf_path, &cfg, err, sizeof err), -1);
    load_ok("tls_cert = /etc/ssl/cert.pem\ntls_key = /etc/ssl/key.pem\n");
    ck_assert_str_eq(cfg.tls_cert, "/etc/ssl/cert.pem");
    ck_assert_str_eq(cfg.tls_key, "/etc/ssl/key.pem");
    settings_free(&cfg);
}
END_TEST

START_TEST(relative_paths)
{
    char cwd[PATH_MAX], want[PATH_MAX + 64];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    load_ok("spool_dir = spool\ndata_dir = ./data/db\nmail_dir = /abs/mail\npid_file = run/f.pid\n");
    snprintf(want, sizeof want, "%s/spool", cwd);
    ck_assert_str_eq(cfg.spool_dir, want);
    snprintf(want, sizeof want, "%s/data/db", cwd);
    ck_assert_str_eq(cfg.data_dir, want);
    ck_assert_str_eq(cfg.mail_dir, "/abs/mail");
    snprintf(want, sizeof want, "%s/run/f.pid", cwd);
    ck_assert_str_eq(cfg.pid_file, want);
    settings_free(&cfg);
}
END_TEST

/* etc/ferry.conf documents every key as "#key = DEFAULT" and nothing else. */
START_TEST(ferry_conf_matches_schema)
{
    size_t n;
    const struct conf_setting *schema = settings_schema(&n);
    int *found = calloc(n, sizeof *found);
    ck_assert_ptr_nonnull(found);
    FILE *f = fopen("etc/ferry.conf", "r");
    ck_assert_msg(f != NULL, "etc/ferry.conf not found (run from the repository root)");
    char line[CONF_LINE_MAX + 2];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\n")] = '\0';
        const char *p = line;
        bool commented = false;
        if (*p == '#') {
            commented = true;
            p++;
        }
        /* a setting line: [#]key = value, key of [a-z0-9_] */
        size_t kl = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (kl == 0 || strncmp(p + kl, " =", 2) != 0) {
            ck_assert_msg(!commented ? (line[0] == '\0') : true,
                          "etc/ferry.conf:%d: not a comment, blank or setting line", lineno);
            continue;
        }
        ck_assert_msg(commented, "etc/ferry.conf:%d: a setting that is not commented out", lineno);
        char key[64];
        ck_assert(kl < sizeof key);
        memcpy(key, p, kl);
        key[kl] = '\0';
        const char *value = p + kl + 2;
        if (*value == ' ')
            value++;
        else
            ck_assert_msg(*value == '\0', "etc/ferry.conf:%d: expected a space after '='", lineno);
        size_t i;
        for (i = 0; i < n; i++)
            if (strcmp(schema[i].key, key) == 0)
                break;
        ck_assert_msg(i < n, "etc/ferry.conf:%d: key \"%s\" is not in the schema", lineno, key);
        found[i]++;
        const char *def = schema[i].def ? schema[i].def : "";
        ck_assert_msg(strcmp(value, def) == 0, "etc/ferry.conf:%d: %s documented as \"%s\", default is \"%s\"",
                      lineno, key, value, def);
    }
    fclose(f);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(found[i] == 1, "key \"%s\" appears %d times in etc/ferry.conf (want 1)",
                      schema[i].key, found[i]);
    free(found);
}
END_TEST

static struct sockaddr_storage sa_of(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
        s4->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
        s6->sin6_family = AF_INET6;
    else
        ck_abort_msg("bad test address %s", ip);
    return ss;
}

START_TEST(pull_keys)
{
    ck_assert_int_eq(settings_load(NULL, &cfg, err, sizeof err), 0);
    ck_assert_int_eq(cfg.pull_mode, PULL_MODE_OFF);
    ck_assert_int_eq(cfg.pull_legacy, PULL_LEGACY_GREYLIST);
    ck_assert_uint_eq(cfg.pull_expiry, 14 * 86400);
    ck_assert(!cfg.pull_private_peers);
    ck_assert(cfg.pull_auto_allow);
    ck_assert(cfg.pull_allow_dmarc_pass);
    ck_assert_uint_eq(cfg.pull_greylist_delay, 300);
    ck_assert_uint_eq(cfg.pull_greylist_window, 86400);
    ck_assert_uint_eq(cfg.pull_greylist_lifetime, 36 * 86400);
    settings_free(&cfg);
    load_ok("pull_mode = on\npull_legacy = reject\npull_expiry = 2h\npull_private_peers = yes\n"
            "pull_auto_allow = no\npull_allow_dmarc_pass = no\npull_greylist_delay = 0s\n"
            "pull_greylist_window = 10m\npull_greylist_lifetime = 2d\n");
    ck_assert_int_eq(cfg.pull_mode, PULL_MODE_ON);
    ck_assert_int_eq(cfg.pull_legacy, PULL_LEGACY_REJECT);
    ck_assert_uint_eq(cfg.pull_expiry, 7200);
    ck_assert(cfg.pull_private_peers);
    ck_assert(!cfg.pull_auto_allow);
    ck_assert(!cfg.pull_allow_dmarc_pass);
    ck_assert_uint_eq(cfg.pull_greylist_delay, 0);
    ck_assert_uint_eq(cfg.pull_greylist_window, 600);
    settings_free(&cfg);
    load_ok("pull_legacy = accept\n");
    ck_assert_int_eq(cfg.pull_legacy, PULL_LEGACY_ACCEPT);
    settings_free(&cfg);
    load_err("# x\npull_mode = maybe\n", 2, "pull_mode");
    load_err("pull_legacy = drop\n", 1, NULL);
    load_err("pull_expiry = 0s\n", 1, NULL);
    load_err("pull_expiry = 101d\n", 1, NULL);
    load_err("pull_private_peers = perhaps\n", 1, NULL);
    load_err("pull_greylist_window = 30s\n", 1, NULL);
    load_err("pull_greylist_delay = 2d\n", 1, NULL);
    /* the delay must be shorter than the window (checked across keys) */
    write_conf("pull_greylist_delay = 1h\npull_greylist_window = 1h\n");
    ck_assert_int_eq(settings_load(conf_path, &cfg, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "pull_greylist_delay must be shorter"));
}
END_TEST

START_TEST(local_domains)
{
    load_ok("local_domains = Example.COM, example.org.\n");
    ck_assert(settings_is_local_domain(&cfg, "example.com"));
    ck_assert(settings_is_local_domain(&cfg, "EXAMPLE.COM"));
    ck_assert(settings_is_local_domain(&cfg, "eXample.com."));
    ck_assert(settings_is_local_domain(&cfg, "example.org"));
    ck_assert(settings_is_local_domain(&cfg, "Example.Org."));
    ck_assert(!settings_is_local_domain(&cfg, "example.com.."));
    ck_assert(!settings_is_local_domain(&cfg, "example.co"));
    ck_assert(!settings_is_local_domain(&cfg, "xexample.com"));
    ck_assert(!settings_is_local_domain(&cfg, "mail.example.com"));
    ck_assert(!settings_is_local_domain(&cfg, ""));
    ck_assert(!settings_is_local_domain(&cfg, "."));
    ck_assert(!settings_is_local_domain(&cfg, "localhost"));
    settings_free(&cfg);

    /* Default: the hostname and localhost. */
    load_ok("hostname = mx.example.net\n");
    ck_assert(settings_is_local_domain(&cfg, "MX.example.net."));
    ck_assert(settings_is_local_domain(&cfg, "LocalHost"));
    ck_assert(!settings_is_local_domain(&cfg, "example.net"));
    settings_free(&cfg);
}
END_TEST

START_TEST(dmarc_reporting_keys)
{
    ck_assert_int_eq(settings_load(NULL, &cfg, err, sizeof err), 0);
    ck_assert(cfg.dmarc_reporting);
    ck_assert(!cfg.dmarc_failure_reports);
    ck_assert(cfg.dmarc_failure_redact);
    ck_assert_uint_eq(cfg.dmarc_report_interval, 86400);
    ck_assert_uint_eq(cfg.dmarc_failure_rate, 10);
    ck_assert_str_eq(cfg.dmarc_report_org_name, cfg.hostname);
    settings_free(&cfg);

    load_ok("hostname = mx.example.net\nlocal_domains = example.net, example.org\n");
    ck_assert_str_eq(cfg.dmarc_report_org_name, "mx.example.net");
    ck_assert_str_eq(cfg.dmarc_report_email, "noreply-dmarc@mx.example.net");
    ck_assert_str_eq(cfg.dmarc_reports_address, "dmarc-reports@example.net");
    ck_assert(settings_dmarc_report_domain(&cfg, "anything.example"));
    /* TLS reports: tlsrpt@ each local domain unless listed */
    ck_assert_uint_eq(cfg.tlsrpt_reports_address.n, 2);
    ck_assert(settings_is_tlsrpt_address(&cfg, "TLSRPT@example.org"));
    ck_assert(!settings_is_tlsrpt_address(&cfg, "tlsrpt@mx.example.net"));
    ck_assert(settings_tlsrpt_our_domain(&cfg, "example.org."));
    ck_assert(!settings_tlsrpt_our_domain(&cfg, "sub.example.org"));
    settings_free(&cfg);
    load_ok("local_domains = example.net\nrelay_domains = example.com\n"
            "tlsrpt_reports_address = tls@example.net, reports@example.com\n");
    ck_assert_uint_eq(cfg.tlsrpt_reports_address.n, 2);
    ck_assert(settings_is_tlsrpt_address(&cfg, "reports@example.com"));
    ck_assert(!settings_is_tlsrpt_address(&cfg, "tlsrpt@example.net"));
    ck_assert(settings_tlsrpt_our_domain(&cfg, "example.com"));
    settings_free(&cfg);
    load_err("tlsrpt_reports_address = not an address\n", 1, "local@domain");

    load_ok("dmarc_report_domains = Example.COM, example.org.\ndmarc_report_org_name = Example & Co <x>\n"
            "dmarc_report_email = dmarc@example.com\ndmarc_report_interval = 6h\n"
            "dmarc_failure_reports = yes\ndmarc_failure_redact = no\ndmarc_failure_rate = 3\n"
            "dmarc_reports_address = rua@example.com\n");
    ck_assert(settings_dmarc_report_domain(&cfg, "example.com"));
    ck_assert(settings_dmarc_report_domain(&cfg, "EXAMPLE.org."));
    ck_assert(!settings_dmarc_report_domain(&cfg, "sub.example.com"));
    ck_assert_str_eq(cfg.dmarc_report_org_name, "Example & Co <x>");
    ck_assert_str_eq(cfg.dmarc_report_email, "dmarc@example.com");
    ck_assert_str_eq(cfg.dmarc_reports_address, "rua@example.com");
    ck_assert_uint_eq(cfg.dmarc_report_interval, 6 * 3600);
    ck_assert(cfg.dmarc_failure_reports);
    ck_assert(!cfg.dmarc_failure_redact);
    ck_assert_uint_eq(cfg.dmarc_failure_rate, 3);
    settings_free(&cfg);

    load_ok("dmarc_reporting = no\n");
    ck_assert(!settings_dmarc_report_domain(&cfg, "example.com"));
    settings_free(&cfg);

    load_err("dmarc_report_interval = 7h\n", 1, "divide a day");
    load_err("\ndmarc_report_interval = 2d\n", 2, "divide a day");
    load_err("dmarc_report_interval = 30m\n", 1, "divide a day");
    load_err("dmarc_report_email = not an address\n", 1, "local@domain");
    load_err("dmarc_reports_address = x@[192.0.2.1]\n", 1, "local@domain");
    load_err("dmarc_failure_rate = 0\n", 1, "dmarc_failure_rate");
    load_err("dmarc_failure_reports = maybe\n", 1, NULL);
    load_err("dmarc_report_domains = a@b\n", 1, "not a domain name");
}
END_TEST

START_TEST(relay_clients)
{
    struct sockaddr_storage ss;
    ck_assert_int_eq(settings_load(NULL, &cfg, err, sizeof err), 0);
    ss = sa_of("127.0.0.1");
    ck_assert(settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("127.255.1.2");
    ck_assert(settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("::1");
    ck_assert(settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("::ffff:127.0.0.1");
    ck_assert(settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("128.0.0.1");
    ck_assert(!settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("::2");
    ck_assert(!settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    settings_free(&cfg);

    load_ok("relay_networks = 192.0.2.0/24, 2001:db8::/32\nrelay_networks = 198.51.100.7\n");
    ss = sa_of("192.0.2.200");
    ck_assert(settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("192.0.3.1");
    ck_assert(!settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("::ffff:192.0.2.9");
    ck_assert(settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("::ffff:192.0.3.9");
    ck_assert(!settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("2001:db8:ffff::1");
    ck_assert(settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("2001:db9::1");
    ck_assert(!settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("198.51.100.7");
    ck_assert(settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    ss = sa_of("198.51.100.8");
    ck_assert(!settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    /* the default 127.0.0.0/8 was replaced by the file's list */
    ss = sa_of("127.0.0.1");
    ck_assert(!settings_is_relay_client(&cfg, (struct sockaddr *)&ss));
    settings_free(&cfg);
}
END_TEST

START_TEST(local_concurrency)
{
    load_ok("");
    ck_assert_uint_eq(cfg.local_concurrency, 32);     /* the default etc/ferry.conf documents */
    settings_free(&cfg);
    load_ok("local_concurrency = 1\n");
    ck_assert_uint_eq(cfg.local_concurrency, 1);
    settings_free(&cfg);
    load_ok("local_concurrency = 256\n");
    ck_assert_uint_eq(cfg.local_concurrency, 256);
    settings_free(&cfg);
    /* No worker at all would never deliver; more than 256 processes is a typo. */
    load_err("local_concurrency = 0\n", 1, "out of range (1 to 256)");
    load_err("\nlocal_concurrency = 257\n", 2, "out of range (1 to 256)");
    load_err("local_concurrency = -1\n", 1, "not a number");
    load_err("local_concurrency = 8k\n", 1, "not a number");
    load_err("local_concurrency =\n", 1, NULL);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, sizes);
    tcase_add_test(tc, durations);
    tcase_add_test(tc, bools_and_enums);
    tcase_add_test(tc, lists);
    tcase_add_test(tc, comments_and_blanks);
    tcase_add_test(tc, errors_unknown_key);
    tcase_add_test(tc, errors_bad_value);
    tcase_add_test(tc, errors_twice);
    tcase_add_test(tc, errors_syntax);
    tcase_add_test(tc, nul_byte_and_explicit_empty_default);
    tcase_add_test(tc, errors_long_line);
    tcase_add_test(tc, errors_range);
    tcase_add_test(tc, session_limits);
    tcase_add_test(tc, errors_listen);
    tcase_add_test(tc, listen_options);
    tcase_add_test(tc, errors_cidr);
    tcase_add_test(tc, tls_pair);
    tcase_add_test(tc, relative_paths);
    tcase_add_test(tc, ferry_conf_matches_schema);
    tcase_add_test(tc, pull_keys);
    tcase_add_test(tc, local_domains);
    tcase_add_test(tc, relay_clients);
    tcase_add_test(tc, dmarc_reporting_keys);
    tcase_add_test(tc, local_concurrency);
    suite_add_tcase(s, tc);
    return s;
}

UNIT_MAIN(config_suite)

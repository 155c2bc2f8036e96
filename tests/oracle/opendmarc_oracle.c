/*
 * opendmarc_oracle — OpenDMARC's libopendmarc (RFC 7489, PSL organizational domains) as
 * an independent oracle for tests/integration/test_dmarc.py. Not part of the build:
 * the test compiles it with -lopendmarc (Debian libopendmarc-dev).
 *
 *   opendmarc_oracle PSLFILE < cases
 * Each input line: FROM|RECORD|RECORD_DOMAIN|SPF_DOMAIN|SPF(pass|fail|none)|DKIM_DOMAIN|DKIM(pass|fail|none)
 * Each output line: pass|fail|none|error POLICY(none|quarantine|reject|-)
 */
#include <opendmarc/dmarc.h>
#include <stdio.h>
#include <string.h>

static int spf_code(const char *s)
{
    return !strcmp(s, "pass") ? DMARC_POLICY_SPF_OUTCOME_PASS
         : !strcmp(s, "fail") ? DMARC_POLICY_SPF_OUTCOME_FAIL : DMARC_POLICY_SPF_OUTCOME_NONE;
}

static int dkim_code(const char *s)
{
    return !strcmp(s, "pass") ? DMARC_POLICY_DKIM_OUTCOME_PASS
         : !strcmp(s, "fail") ? DMARC_POLICY_DKIM_OUTCOME_FAIL : DMARC_POLICY_DKIM_OUTCOME_NONE;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    OPENDMARC_LIB_T lib;
    memset(&lib, 0, sizeof lib);
    lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
    snprintf((char *)lib.tld_source_file, sizeof lib.tld_source_file, "%s", argv[1]);
    if (opendmarc_policy_library_init(&lib) != DMARC_PARSE_OKAY)
        return 1;
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        char *f[7];
        char *p = line;
        for (int i = 0; i < 7; i++) {
            f[i] = p;
            p = strchr(p, '|');
            if (p)
                *p++ = '\0';
            else
                p = line + strlen(line);
        }
        DMARC_POLICY_T *c = opendmarc_policy_connect_init((u_char *)"192.0.2.1", DMARC_POLICY_IP_TYPE_IPV4);
        opendmarc_policy_store_from_domain(c, (u_char *)f[0]);
        OPENDMARC_STATUS_T st = DMARC_DNS_ERROR_NO_RECORD;
        /* a non-NULL organizational domain tells libopendmarc the record came from the
           org domain's lookup (so sp= applies): only when it is not the From domain */
        if (f[1][0])
            st = opendmarc_policy_store_dmarc(c, (u_char *)f[1], (u_char *)f[0],
                                              strcmp(f[0], f[2]) ? (u_char *)f[2] : NULL);
        if (f[3][0])
            opendmarc_policy_store_spf(c, (u_char *)f[3], spf_code(f[4]), DMARC_POLICY_SPF_ORIGIN_MAILFROM, NULL);
        if (f[5][0])
            opendmarc_policy_store_dkim(c, (u_char *)f[5], (u_char *)"s1", dkim_code(f[6]), NULL);
        const char *res = "error", *pol = "-";
        if (st == DMARC_DNS_ERROR_NO_RECORD) {
            res = "none";
        } else if (st == DMARC_PARSE_OKAY) {
            switch (opendmarc_get_policy_to_enforce(c)) {
            case DMARC_POLICY_ABSENT: res = "none"; break;
            case DMARC_POLICY_PASS: res = "pass"; break;
            case DMARC_POLICY_REJECT: res = "fail", pol = "reject"; break;
            case DMARC_POLICY_QUARANTINE: res = "fail", pol = "quarantine"; break;
            case DMARC_POLICY_NONE: res = "fail", pol = "none"; break;
            default: break;
            }
        }
        printf("%s %s\n", res, pol);
        opendmarc_policy_connect_shutdown(c);
    }
    opendmarc_policy_library_shutdown(&lib);
    return 0;
}

/* smtp_tlsrpt — see smtp_tlsrpt.h. */
#include "smtpd/smtp_tlsrpt.h"
#include "delivery/tlsrpt_parse.h"
#include "delivery/tlsrpt_received.h"
#include "lib/log.h"
#include "smtpd/smtp_server.h"
#include "smtpd/smtp_session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define INLINE_JSON_MAX (1u << 20)    /* per report, checked at the end of DATA */
#define INLINE_MSG_MAX  (2u << 20)    /* a larger message is checked at import only */

static bool ours(void *arg, const char *domain)
{
    return settings_tlsrpt_our_domain(arg, domain);
}

/* The message as spooled so far (the Received: field and the content), into
   *out (malloc'd) when it is in its file; from the write buffer otherwise. */
static int message_bytes(struct smtp_session *s, const char **msg, size_t *len, char **owned)
{
    *owned = NULL;
    if (!s->wflushed) {
        *msg = s->wbuf ? s->wbuf : "";
        *len = s->wlen;
        return 0;
    }
    struct stat st;
    if (fstat(s->draft.msg_fd, &st) < 0)
        return -1;
    if ((unsigned long long)st.st_size > TLSRPT_RX_MSG_MAX) {
        *len = (size_t)st.st_size;
        return 1;
    }
    if ((unsigned long long)st.st_size > INLINE_MSG_MAX) {
        *len = (size_t)st.st_size;
        return 2;           /* not read back on the loop: checked at import */
    }
    char *b = malloc((size_t)st.st_size + 1);
    if (!b)
        return -1;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = pread(s->draft.msg_fd, b + got, (size_t)st.st_size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(b);
            return -1;
        }
        got += (size_t)r;
    }
    *msg = *owned = b;
    *len = got;
    return 0;
}

const char *smtp_tlsrpt_refusal(struct smtp_session *s, char *buf, size_t bufsz)
{
    const struct ferry_config *cfg = s->srv->cfg;
    if (s->env.nrcpts == 0)
        return NULL;
    for (size_t i = 0; i < s->env.nrcpts; i++)
        if (!settings_is_tlsrpt_address(cfg, s->env.rcpts[i].addr))
            return NULL;
    const char *msg;
    size_t len;
    char *owned;
    int m = message_bytes(s, &msg, &len, &owned);
    if (m < 0) {
        log_msg(LOG_LVL_WARN, s->draft.id, "tls-rpt: cannot read the report back: %s", strerror(errno));
        return NULL;        /* taken; the report run reads it and says what it finds */
    }
    if (m == 2) {
        log_msg(LOG_LVL_INFO, s->draft.id, "tls-rpt: a %zu-octet report message: taken, checked at import", len);
        return NULL;
    }
    if (m > 0) {
        snprintf(buf, bufsz, "552 5.3.4 TLS report refused: the message is larger than %u octets",
                 TLSRPT_RX_MSG_MAX);
        return buf;
    }
    struct tlsrpt_rx_report *reps;
    size_t n;
    char why[400];
    /* A bounded look on the smtp loop: a report whose JSON is larger than
       INLINE_JSON_MAX (a json-c tree costs tens of times its text, and a few KB of
       gzip can inflate to 10 MB) is taken and checked by the report run instead,
       which refuses it into the log, not at SMTP time. */
    int rc = tlsrpt_rx_check_message(msg, len, INLINE_JSON_MAX, &reps, &n, why, sizeof why);
    if (rc > 0) {
        free(owned);
        log_msg(LOG_LVL_INFO, s->draft.id, "tls-rpt: report larger than %u octets of JSON: taken, checked at import",
                INLINE_JSON_MAX);
        return NULL;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = tlsrpt_received_acceptable(&reps[i], ours, (void *)cfg, (long long)time(NULL), why, sizeof why);
    if (rc == 0) {
        log_msg(LOG_LVL_INFO, s->draft.id, "tls-rpt: report %s from %s read (%zu polic%s)", reps[0].report_id,
                reps[0].org, reps[0].npolicies, reps[0].npolicies == 1 ? "y" : "ies");
        for (size_t i = 0; i < n; i++)
            tlsrpt_rx_free(&reps[i]);
        free(reps);
    }
    free(owned);
    if (rc == 0)
        return NULL;
    snprintf(buf, bufsz, "550 5.6.0 TLS report refused: %s", why);
    return buf;
}

/* pull_tls — see pull_tls.h. */
#include "queue/pull_tls.h"
#include "delivery/tls_client.h"
#include "lib/buf.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <stdio.h>

int pull_tls_start(struct event_base *base, struct bufferevent **bev, SSL_CTX *ctx, const char *sni, char *err,
                   size_t errlen)
{
    if (evbuffer_get_length(bufferevent_get_input(*bev)) > 0) {
        snprintf(err, errlen, "the holder sent data after its reply to STARTTLS");
        return -1;
    }
    SSL *ssl = tls_client_ssl_new(ctx, sni, NULL, TLS_LEVEL_MAY, NULL, err, errlen);
    if (!ssl)
        return -1;
    bufferevent_setcb(*bev, NULL, NULL, NULL, NULL);
    struct bufferevent *f = bufferevent_openssl_filter_new(base, *bev, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                           BEV_OPT_CLOSE_ON_FREE);
    if (!f) {
        /* libevent's failure path may have freed the SSL and the connection under
           it already (CLOSE_ON_FREE): forget them rather than free twice. */
        *bev = NULL;
        snprintf(err, errlen, "out of memory starting TLS");
        return -1;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
    *bev = f;
    return 0;
}

void pull_tls_describe(struct bufferevent *tls, char *log_line, size_t logsz, char *trace, size_t tracesz)
{
    struct tls_outcome o;
    tls_client_outcome(bufferevent_openssl_get_ssl(tls), TLS_LEVEL_MAY, false, &o);
    tls_outcome_format(&o, log_line, logsz);
    snprintf(trace, tracesz, "%s %s", o.protocol, o.cipher);
}

void pull_tls_error(struct bufferevent *tls, char *out, size_t outsz)
{
    unsigned long e = bufferevent_get_openssl_error(tls);
    if (!e)
        e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, out, outsz);
    else
        str_copy(out, "the connection was closed during the handshake", outsz);
    ERR_clear_error();
}

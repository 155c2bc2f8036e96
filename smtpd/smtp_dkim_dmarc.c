/* smtp_dkim_dmarc — see smtp_dkim_dmarc.h. */
#include "smtpd/smtp_dkim_dmarc.h"
#include "auth/arc.h"
#include "auth/dkim_dns.h"
#include "auth/dkim_sign.h"
#include "auth/dkim_verify.h"
#include "auth/dmarc.h"
#include "auth/dmarc_from.h"
#include "lib/buf.h"
#include "lib/hdr_value.h"
#include "lib/log.h"
#include "lib/mail_date.h"
#include "lib/rfc5322_addr.h"
#include "lib/settings.h"
#include "smtpd/dkim_keystore.h"
#include "smtpd/smtp_arc_seal.h"
#include "smtpd/smtp_server.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AR_MAX (64 * 1024)

enum policy_stage { PS_HEADER, PS_BODY, PS_FINISHING, PS_DONE };

struct smtp_policy {
    struct smtp_server *srv;
    struct smtp_policy_ctx ctx;
    char authserv_id[256], other_results[1024], log_id[64];
    char extra_fields[2048];
    char spf_domain[256];
    char hostname[256];
    char from[600];             /* the header From: address ("" when none or several) */
    enum policy_stage stage;
    struct buf hdr;                 /* the header section while it is held back */
    bool header_too_big;
    struct dkim_verifier *verifier;
    struct arc_verifier *arc;       /* port-25 mail: the ARC chain (RFC 8617), beside DKIM */
    struct arc_result *arc_result;  /* its result, once in */
    char remote_ip[64];
    char arc_summary[ARC_REASON_MAX + 96];  /* "arc=pass ..." for the log line; "" when not run */
    struct smtp_arc_seal *seal;     /* forwarded mail: the next ARC set, made at the end */
    size_t ar_off, ar_end;          /* our Authentication-Results field in prepend (end 0: incomplete) */
    struct dkim_signer *signer;
    bool sign_deferred;             /* keys exist but could not be used now: 451 */
    struct dkim_resolver resolver;
    struct buf prepend;
    smtp_policy_done_fn done;
    void *done_arg;
    /* DMARC */
    struct dmarc_from author;       /* from the header section as it arrived */
    struct dkim_sig_result *dkim;   /* copies of the verifier's results */
    size_t ndkim;
    struct auth_resolver dmarc_resolver;
    struct dmarc_eval *dmarc_eval;
    bool dmarc_starting, dmarc_answered;
    struct dmarc_outcome *outcome;
    struct policy_dmarc verdict;
    struct buf arrived;             /* keep_header: the header section as it came */
};

struct smtp_policy *smtp_policy_new(struct smtp_server *srv, const struct smtp_policy_ctx *ctx)
{
    struct smtp_policy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->srv = srv;
    p->ctx = *ctx;
    str_copy(p->authserv_id, ctx->authserv_id ? ctx->authserv_id : "", sizeof p->authserv_id);
    str_copy(p->other_results, ctx->other_results ? ctx->other_results : "", sizeof p->other_results);
    str_copy(p->log_id, ctx->log_id ? ctx->log_id : "", sizeof p->log_id);
    str_copy(p->extra_fields, ctx->extra_fields ? ctx->extra_fields : "", sizeof p->extra_fields);
    str_copy(p->hostname, ctx->hostname ? ctx->hostname : "localhost", sizeof p->hostname);
    str_copy(p->spf_domain, ctx->spf_domain ? ctx->spf_domain : "", sizeof p->spf_domain);
    str_copy(p->remote_ip, ctx->remote_ip ? ctx->remote_ip : "", sizeof p->remote_ip);
    buf_init(&p->hdr, POLICY_HEADER_MAX);
    buf_init(&p->prepend, AR_MAX);
    buf_init(&p->arrived, POLICY_HEADER_MAX);
    p->stage = PS_HEADER;
    if (ctx->verify && srv->dns) {
        struct dkim_verify_opts o;
        dkim_verify_opts_init(&o, (int64_t)time(NULL));
        o.max_signatures = srv->cfg->dkim_max_signatures;
        o.l_policy = srv->cfg->dkim_body_length == 1 ? DKIM_L_REFUSE : DKIM_L_ACCEPT;
        dkim_resolver_async(&p->resolver, srv->dns);
        p->verifier = dkim_verify_new(&o, &p->resolver);
        /* Without memory for it the message simply gets no arc= result. */
        if (ctx->arc && p->verifier)
            p->arc = arc_verify_new(&p->resolver);
        /* Sealing needs the chain's result (cv=) and our results (the AAR). */
        if (ctx->seal && p->arc)
            p->seal = smtp_arc_seal_new(srv, p->log_id);
    }
    if (!p->verifier)
        p->ctx.dmarc = false;       /* DMARC needs the DKIM results (and DNS) */
    return p;
}

void smtp_policy_free(struct smtp_policy *p)
{
    if (!p)
        return;
    dkim_verify_free(p->verifier);      /* cancels outstanding key lookups */
    arc_verify_free(p->arc);
    free(p->arc_result);
    smtp_arc_seal_free(p->seal);
    if (p->dmarc_eval)
        dmarc_evaluate_cancel(p->dmarc_eval);
    free(p->dkim);
    free(p->outcome);
    dkim_signer_free(p->signer);
    buf_free(&p->hdr);
    buf_free(&p->prepend);
    buf_free(&p->arrived);
    free(p);
}

const char *smtp_policy_refusal(const struct smtp_policy *p)
{
    return p->header_too_big ? "552 5.3.4 The header section is larger than 1 MiB" : NULL;
}

const char *smtp_policy_deferral(const struct smtp_policy *p)
{
    return p->sign_deferred ? "451 4.3.0 The message cannot be signed just now; try again later" : NULL;
}

/* ---- pure helpers ------------------------------------------------------------ */

/* The next header field of hdr[*pos..len): its start and length (continuation lines
   included, final CRLF included). false at the end. */
static bool next_field(const char *hdr, size_t len, size_t *pos, const char **f, size_t *flen)
{
    if (*pos >= len)
        return false;
    size_t start = *pos, i = *pos;
    for (;;) {
        const char *nl = memchr(hdr + i, '\n', len - i);
        i = nl ? (size_t)(nl - hdr) + 1 : len;
        if (i >= len || (hdr[i] != ' ' && hdr[i] != '\t'))
            break;
    }
    *f = hdr + start;
    *flen = i - start;
    *pos = i;
    return true;
}

int policy_strip_forged_ar(const char *hdr, size_t len, const char *authserv_id, struct buf *out)
{
    size_t pos = 0, flen, v;
    const char *f;
    int removed = 0;
    while (next_field(hdr, len, &pos, &f, &flen)) {
        /* Any spelling a reader would take for ours: "Name :" (RFC 5322 4.5.3),
           comments before the id, and the id as a token or a quoted-string
           (RFC 8601 2.2: authserv-id is a value). A field whose id cannot be
           read at all goes too: nobody can show it is not ours, and a lenient
           reader might take it for ours. */
        if (authserv_id[0] && hdr_field_is(f, flen, "Authentication-Results", &v)) {
            char id[256];
            size_t i = hdr_skip_cfws(f, v, flen);
            if (!hdr_value_read(f, i, flen, id, sizeof id) || str_ieq(id, authserv_id)) {
                removed++;
                continue;
            }
        }
        if (buf_append(out, f, flen) < 0)
            return -1;
    }
    return removed;
}

int policy_from_address(const char *hdr, size_t len, char *out, size_t outsz)
{
    size_t pos = 0, flen;
    const char *f, *from = NULL;
    size_t from_len = 0;
    while (next_field(hdr, len, &pos, &f, &flen)) {
        size_t v;
        if (hdr_field_is(f, flen, "From", &v)) {
            if (from)
                return -1;      /* two From fields: no single author */
            from = f + v;
            from_len = flen - v;
        }
    }
    if (!from)
        return -1;
    while (from_len && (from[from_len - 1] == '\n' || from[from_len - 1] == '\r'))
        from_len--;         /* the field's own line end is not part of the value */
    /* exactly one mailbox (RFC 7489 6.6.1's rule for the author), parsed per RFC 5322 */
    struct rfc5322_mailbox mb[2];
    struct rfc5322_list list;
    struct rfc5322_error err;
    if (rfc5322_parse_address_list(from, from_len, RFC5322_UTF8, mb, 2, &list, &err) < 0 || list.count != 1 ||
        mb[0].domain_literal || !mb[0].domain[0])
        return -1;
    size_t dl = strlen(mb[0].domain_lower);
    if (dl && mb[0].domain_lower[dl - 1] == '.')
        mb[0].domain_lower[--dl] = '\0';
    int n = snprintf(out, outsz, "%s@%s", mb[0].local_raw, mb[0].domain_lower);
    return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int policy_from_domain(const char *hdr, size_t len, char *out, size_t outsz)
{
    char addr[600];
    if (policy_from_address(hdr, len, addr, sizeof addr) < 0)
        return -1;
    const char *at = strrchr(addr, '@');
    size_t n = strlen(at + 1);
    if (n == 0 || n >= outsz)
        return -1;
    memcpy(out, at + 1, n + 1);
    str_lower(out);
    return 0;
}


/* ---- the stream -------------------------------------------------------------- */

/* The keys to sign a message with this header section: its From: domain's, else
   dkim_signing_domain's. */
static ssize_t signing_keys(struct smtp_server *srv, const char *hdr, size_t hlen,
                            const struct dkim_sign_key **keys)
{
    char domain[256];
    ssize_t nkeys = 0;
    *keys = NULL;
    if (policy_from_domain(hdr, hlen, domain, sizeof domain) == 0)
        nkeys = dkim_keystore_get(srv->dkim_keys, domain, keys);
    if (nkeys == 0 && srv->cfg->dkim_signing_domain[0])
        nkeys = dkim_keystore_get(srv->dkim_keys, srv->cfg->dkim_signing_domain, keys);
    return nkeys;
}

int smtp_policy_sign_whole(struct smtp_server *srv, const char *msg, size_t len, struct buf *fields,
                           const char *log_id)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < len && !end; i++)
        if (msg[i] == '\r' && msg[i + 1] == '\n' && msg[i + 2] == '\r' && msg[i + 3] == '\n')
            end = msg + i + 2;
    size_t hlen = end ? (size_t)(end - msg) : len;
    const struct dkim_sign_key *keys;
    ssize_t nkeys = signing_keys(srv, msg, hlen, &keys);
    if (nkeys <= 0)
        return (int)nkeys;
    struct dkim_sign_opts o;
    dkim_sign_opts_init(&o, (int64_t)time(NULL));
    char err[256];
    size_t before = fields->len;
    if (dkim_sign_message(keys, (size_t)nkeys, &o, msg, len, fields, err, sizeof err) < 0) {
        fields->len = before;
        log_msg(LOG_LVL_WARN, log_id, "dkim: not signed: %s", err);
        return -1;
    }
    log_msg(LOG_LVL_INFO, log_id, "dkim: signed");
    return (int)nkeys;
}

static void start_signer(struct smtp_policy *p, const char *hdr, size_t hlen)
{
    const struct dkim_sign_key *keys;
    ssize_t nkeys = signing_keys(p->srv, hdr, hlen, &keys);
    p->sign_deferred = nkeys < 0;
    if (nkeys <= 0)
        return;
    struct dkim_sign_opts o;
    dkim_sign_opts_init(&o, (int64_t)time(NULL));
    p->signer = dkim_signer_new(keys, (size_t)nkeys, &o);
    char err[256];
    if (p->signer && dkim_signer_header(p->signer, hdr, hlen, err, sizeof err) < 0) {
        log_msg(LOG_LVL_WARN, p->log_id, "dkim: not signed: %s", err);
        dkim_signer_free(p->signer);
        p->signer = NULL;
    }
}

/* The header section is complete (hlen octets; the rest of hdr is the empty line
   and the start of the body). */
/* Submission fixes (RFC 6409 8.2, 8.3): a message without Date: or Message-ID:
   gets them, at the end of its header section, before it is signed. */
static void add_missing_fields(struct smtp_policy *p, const char *h, size_t hlen, struct buf *out)
{
    bool have_date = false, have_id = false;
    size_t pos = 0, flen;
    const char *f;
    while (next_field(h, hlen, &pos, &f, &flen)) {
        have_date |= hdr_field_is(f, flen, "Date", NULL);
        have_id |= hdr_field_is(f, flen, "Message-ID", NULL);
    }
    if (!have_date) {
        char date[MAIL_DATE_MAX];
        mail_date(time(NULL), date, sizeof date);
        buf_printf(out, "Date: %s\r\n", date);
    }
    if (!have_id) {
        unsigned char rnd[6];
        if (RAND_bytes(rnd, sizeof rnd) != 1)
            memset(rnd, 0, sizeof rnd);
        buf_printf(out, "Message-ID: <%s.%02x%02x%02x%02x%02x%02x@%s>\r\n", p->log_id, rnd[0], rnd[1], rnd[2],
                   rnd[3], rnd[4], rnd[5], p->hostname);
    }
    if (!have_date || !have_id)
        log_msg(LOG_LVL_INFO, p->log_id, "added%s%s to a submitted message", have_date ? "" : " Date:",
                have_id ? "" : " Message-ID:");
}

/* The header section is complete (hlen octets; the rest of hdr is the empty line
   and the start of the body). */
static void header_done(struct smtp_policy *p, size_t hlen, smtp_policy_write_fn w, void *arg)
{
    const char *h = p->hdr.data ? p->hdr.data : "";
    if (policy_from_address(h, hlen, p->from, sizeof p->from) < 0)
        p->from[0] = '\0';
    if (p->verifier)            /* the header section exactly as it arrived */
        dkim_verify_header(p->verifier, h, hlen);
    if (p->arc)
        arc_verify_header(p->arc, h, hlen);
    if (p->ctx.dmarc)
        dmarc_from_extract(h, hlen, &p->author);
    if (p->ctx.keep_header && buf_append(&p->arrived, h, hlen) < 0)
        buf_reset(&p->arrived);
    struct buf clean;
    buf_init(&clean, POLICY_HEADER_MAX + 4096);
    int removed = policy_strip_forged_ar(h, hlen, p->authserv_id, &clean);
    if (removed > 0)
        log_msg(LOG_LVL_INFO, p->log_id, "removed %d Authentication-Results field%s claiming to be ours (%s)",
                removed, removed == 1 ? "" : "s", p->authserv_id);
    if (removed < 0) {
        buf_reset(&clean);
        buf_append(&clean, h, hlen);
    }
    if (p->ctx.add_missing)
        add_missing_fields(p, h, hlen, &clean);
    if (p->ctx.sign)            /* what is stored is what is signed */
        start_signer(p, clean.data ? clean.data : "", clean.len);
    if (p->seal)                /* and what is sealed */
        smtp_arc_seal_header(p->seal, clean.data ? clean.data : "", clean.len);
    w(arg, clean.data ? clean.data : "", clean.len);
    buf_free(&clean);
    p->stage = PS_BODY;
    /* The rest: the empty line (not body for DKIM) and what follows it. */
    size_t rest = p->hdr.len - hlen;
    if (rest) {
        w(arg, h + hlen, rest);
        size_t skip = rest >= 2 ? 2 : rest;
        if (p->verifier)
            dkim_verify_body(p->verifier, h + hlen + skip, rest - skip);
        if (p->arc)
            arc_verify_body(p->arc, h + hlen + skip, rest - skip);
        if (p->signer)
            dkim_signer_body(p->signer, h + hlen + skip, rest - skip);
        if (p->seal)
            smtp_arc_seal_body(p->seal, h + hlen + skip, rest - skip);
    }
    buf_reset(&p->hdr);
}

/* Where the header section ends in hdr (the offset of the empty line), or -1. */
static long find_header_end(const struct buf *b, size_t from)
{
    if (b->len >= 2 && b->data[0] == '\r' && b->data[1] == '\n')
        return 0;
    size_t i = from > 3 ? from - 3 : 0;
    for (; i + 3 < b->len; i++)
        if (b->data[i] == '\r' && b->data[i + 1] == '\n' && b->data[i + 2] == '\r' && b->data[i + 3] == '\n')
            return (long)(i + 2);
    return -1;
}

void smtp_policy_content(struct smtp_policy *p, const char *in, size_t n, smtp_policy_write_fn w, void *arg)
{
    if (n == 0)
        return;
    if (p->stage == PS_BODY) {
        w(arg, in, n);
        if (p->verifier)
            dkim_verify_body(p->verifier, in, n);
        if (p->arc)
            arc_verify_body(p->arc, in, n);
        if (p->signer)
            dkim_signer_body(p->signer, in, n);
        if (p->seal)
            smtp_arc_seal_body(p->seal, in, n);
        return;
    }
    if (p->stage != PS_HEADER || p->header_too_big)
        return;
    if (p->hdr.len == 0 && (in[0] == ' ' || in[0] == '\t')) {
        /* A first line that starts with white space is no header field (RFC 5322
           2.2.3: it can only continue one), and written as it came it would
           continue the Received: field we put above it. The header section is
           empty: end it here with our own empty line, and the line starts the body. */
        log_msg(LOG_LVL_INFO, p->log_id, "message begins with white space: it starts the body");
        header_done(p, 0, w, arg);
        w(arg, "\r\n", 2);
        smtp_policy_content(p, in, n, w, arg);
        return;
    }
    size_t old = p->hdr.len;
    if (buf_append(&p->hdr, in, n) < 0) {
        /* A header section this large is refused at the end; nothing more is kept. */
        p->header_too_big = true;
        buf_free(&p->hdr);
        return;
    }
    long end = find_header_end(&p->hdr, old);
    if (end >= 0)
        header_done(p, (size_t)end, w, arg);
}

/* Forwarded mail (ctx.seal): the next ARC set over the message as it will be
   stored, once every other field is added (RFC 8617 5.1 step 1), with our
   Authentication-Results value (prepend[ar_off..ar_end)) as its AAR, on top of
   everything prepended. Not for a message refused here. */
static void seal_forwarded(struct smtp_policy *p)
{
    if (!p->seal || (p->verdict.evaluated && p->verdict.applied == DMARC_P_REJECT))
        return;
    if (!p->arc_result) {       /* out of memory earlier: no cv= to state */
        log_msg(LOG_LVL_WARN, p->log_id, "arc: not sealed: no chain result");
        return;
    }
    static const char name[] = "Authentication-Results: ";
    size_t from = p->ar_off + sizeof name - 1;
    if (!p->ar_end || p->ar_end < from + 2)
        return;                 /* the field was left incomplete: nothing to vouch for */
    size_t n = p->ar_end - from - 2;            /* without the field's CRLF */
    char *ar = malloc(n + 1);
    if (!ar) {
        log_msg(LOG_LVL_WARN, p->log_id, "arc: not sealed: out of memory");
        return;
    }
    memcpy(ar, p->prepend.data + from, n);
    ar[n] = '\0';
    struct buf set;
    buf_init(&set, 2 * AR_MAX);
    if (smtp_arc_seal_finish(p->seal, ar, p->arc_result->status, &set) < 0) {
        p->sign_deferred = true;        /* the key process: try again later */
    } else if (set.len && buf_append(&set, p->prepend.data, p->prepend.len) == 0) {
        buf_free(&p->prepend);
        p->prepend = set;
        buf_init(&set, 0);
    } else if (set.len) {
        log_msg(LOG_LVL_WARN, p->log_id, "arc: not sealed: the header fields to add do not fit");
    }
    buf_free(&set);
    free(ar);
}

static void finish_done(struct smtp_policy *p)
{
    p->stage = PS_DONE;
    if (p->extra_fields[0] && buf_puts(&p->prepend, p->extra_fields) < 0)
        log_msg(LOG_LVL_WARN, p->log_id, "header fields to add do not fit; left out");
    seal_forwarded(p);
    p->done(p->done_arg, p->prepend.data ? p->prepend.data : "", p->prepend.len);
}

/* The end of the Authentication-Results field: SPF, then DMARC when it ran. */
static void end_results(struct smtp_policy *p)
{
    int r = 0;
    if (p->other_results[0])
        r |= buf_printf(&p->prepend, ";\r\n\t%s", p->other_results);
    if (p->outcome) {
        /* dis= says what Ferry did, after local policy (RFC 9989 7.2). */
        struct dmarc_outcome shown = *p->outcome;
        shown.disposition = (enum dmarc_policy)p->verdict.applied;
        char text[1024];
        if (dmarc_format_auth_results(&shown, text, sizeof text) >= 0)
            r |= buf_printf(&p->prepend, ";\r\n\t%s", text);
        if (p->verdict.override_comment[0])      /* why dis= is not the Domain Owner's p= */
            r |= buf_printf(&p->prepend, " (override=%s: %s)", p->verdict.override, p->verdict.override_comment);
    }
    r |= buf_puts(&p->prepend, "\r\n");
    if (r == 0)
        p->ar_end = p->prepend.len;
    if (p->verdict.evaluated && p->verdict.applied == DMARC_P_QUARANTINE)
        r |= buf_printf(&p->prepend, "X-Ferry-Quarantine: dmarc=%s policy=%s header.from=%s\r\n",
                        dmarc_result_name((enum dmarc_result)p->verdict.result),
                        dmarc_policy_name((enum dmarc_policy)p->verdict.requested), p->verdict.header_from);
    if (r < 0)
        log_msg(LOG_LVL_WARN, p->log_id, "Authentication-Results too long; left incomplete");
    finish_done(p);
}

/* RFC 8617 §7.2.1 local policy: a chain that passes, sealed last by a domain we
   trust, whose AAR says the message authenticated there. Returns the method that
   passed, or NULL, and in *sealer our own spelling of the sealer (a name checked
   when the configuration was read, safe in a comment and a report). Only the
   newest sealer counts: it is the one that vouches for what the earlier hops saw. */
static const char *trusted_arc_pass(const struct smtp_policy *p, const char **sealer)
{
    const struct arc_result *r = p->arc_result;
    const struct conf_list *l = &p->srv->cfg->arc_trusted_sealers;
    if (!r || r->status != ARC_CV_PASS || !r->newest_domain[0])
        return NULL;
    for (size_t i = 0; i < l->n; i++)
        if (str_ieq(l->items[i], r->newest_domain)) {
            *sealer = l->items[i];
            return arc_aar_pass(r->newest_aar);
        }
    return NULL;
}

/* Local policy on top of the Domain Owner's: what Ferry applies, and why it differs. */
static void decide_disposition(struct smtp_policy *p, const struct dmarc_outcome *o)
{
    struct policy_dmarc *v = &p->verdict;
    const struct ferry_config *cfg = p->srv->cfg;
    v->evaluated = true;
    v->result = o->result;
    v->requested = o->disposition;
    v->applied = o->disposition;
    str_copy(v->header_from, o->header_from[0] ? o->header_from : "-", sizeof v->header_from);
    const char *sealer = NULL, *arc_pass = trusted_arc_pass(p, &sealer);
    if (arc_pass)
        snprintf(v->arc_vouch, sizeof v->arc_vouch, "arc sealer %s (%s=pass)", sealer, arc_pass);
    if (v->applied != DMARC_P_NONE) {
        if (p->ctx.trusted_forwarder) {
            v->applied = DMARC_P_NONE;
            str_copy(v->override, "trusted_forwarder", sizeof v->override);
        } else if (o->result == DMARC_RES_FAIL && arc_pass) {
            v->applied = DMARC_P_NONE;
            str_copy(v->override, "local_policy", sizeof v->override);
            str_copy(v->override_comment, v->arc_vouch, sizeof v->override_comment);
        } else if (cfg->dmarc_enforce == DMARC_ENFORCE_NO) {
            v->applied = DMARC_P_NONE;
            str_copy(v->override, "local_policy", sizeof v->override);
        } else if (cfg->dmarc_enforce == DMARC_ENFORCE_QUARANTINE_ONLY && v->applied == DMARC_P_REJECT) {
            v->applied = DMARC_P_QUARANTINE;
            str_copy(v->override, "local_policy", sizeof v->override);
        }
    }
    int n = snprintf(v->summary, sizeof v->summary, "dmarc=%s header.from=%s policy=%s disposition=%s",
                     dmarc_result_name(o->result), v->header_from,
                     o->has_record ? dmarc_policy_name(o->policy) : "none",
                     dmarc_policy_name((enum dmarc_policy)v->applied));
    if (n > 0 && (size_t)n < sizeof v->summary && v->override[0])
        n += snprintf(v->summary + n, sizeof v->summary - (size_t)n, " override=%s%s%s%s", v->override,
                      v->override_comment[0] ? " (" : "", v->override_comment, v->override_comment[0] ? ")" : "");
    if (n > 0 && (size_t)n < sizeof v->summary && o->reason[0])
        snprintf(v->summary + n, sizeof v->summary - (size_t)n, " (%s)", o->reason);
    log_msg(LOG_LVL_INFO, p->log_id, "%s", v->summary);
    for (size_t i = 0; i < o->nsteps; i++)
        log_msg(LOG_LVL_DEBUG, p->log_id, "dmarc: %s", o->steps[i]);
}

static void on_dmarc(const struct dmarc_outcome *o, void *arg)
{
    struct smtp_policy *p = arg;
    p->dmarc_eval = NULL;
    p->outcome = malloc(sizeof *p->outcome);
    if (p->outcome) {
        *p->outcome = *o;
        decide_disposition(p, o);
    } else {
        log_msg(LOG_LVL_WARN, p->log_id, "dmarc: out of memory; not evaluated");
    }
    p->dmarc_answered = true;
    if (!p->dmarc_starting)
        end_results(p);
}

static void start_dmarc(struct smtp_policy *p)
{
    struct dmarc_input in = {
        .from = &p->author,
        .spf = (enum spf_result)p->ctx.spf,
        .spf_domain = p->spf_domain[0] ? p->spf_domain : NULL,
        .dkim = p->dkim,
        .ndkim = p->ndkim,
    };
    auth_resolver_dns(&p->dmarc_resolver, p->srv->dns);
    p->dmarc_starting = true;
    struct dmarc_eval *e = dmarc_evaluate(&p->dmarc_resolver, &in, on_dmarc, p);
    p->dmarc_starting = false;
    if (p->dmarc_answered)      /* answered inside dmarc_evaluate (no DNS needed) */
        end_results(p);
    else if (e)
        p->dmarc_eval = e;
    else
        end_results(p);         /* could not start: no DMARC result, said in the log */
}

static void on_verified(void *arg, const struct dkim_sig_result *res, size_t n)
{
    struct smtp_policy *p = arg;
    p->ar_off = p->prepend.len;
    int r = buf_printf(&p->prepend, "Authentication-Results: %s", p->authserv_id);
    for (size_t i = 0; i < n; i++) {
        char text[512];
        dkim_result_format(&res[i], true, text, sizeof text);
        r |= buf_printf(&p->prepend, ";\r\n\t%s", text);
        log_msg(LOG_LVL_INFO, p->log_id, "%s", text);
    }
    if (p->arc_result) {
        char text[ARC_REASON_MAX * 4 + 128];
        arc_result_format(p->arc_result, p->remote_ip, text, sizeof text);
        r |= buf_printf(&p->prepend, ";\r\n\t%s", text);
    }
    if (r < 0)
        log_msg(LOG_LVL_WARN, p->log_id, "Authentication-Results too long; left incomplete");
    if (!p->ctx.dmarc) {
        end_results(p);
        return;
    }
    if (!res) {         /* the verifier ran out of memory: no DKIM view, so no DMARC verdict */
        log_msg(LOG_LVL_WARN, p->log_id, "dmarc: no DKIM results; not evaluated");
        end_results(p);
        return;
    }
    /* The results live only during this call; DMARC needs them after it. Without
       them DMARC would see no signature and could refuse a signed message, so
       out of memory means no DMARC verdict at all (logged), never a wrong one. */
    if (n && (p->dkim = calloc(n, sizeof *p->dkim)) == NULL) {
        log_msg(LOG_LVL_WARN, p->log_id, "dmarc: out of memory; not evaluated");
        end_results(p);
        return;
    }
    if (n) {
        memcpy(p->dkim, res, n * sizeof *res);
        p->ndkim = n;
    }
    start_dmarc(p);
}

void smtp_policy_content_end(struct smtp_policy *p, smtp_policy_write_fn w, void *arg)
{
    if (p->stage == PS_HEADER && !p->header_too_big)
        header_done(p, p->hdr.len, w, arg);      /* a message that is all header */
}

bool smtp_policy_runs_dmarc(const struct smtp_policy *p)
{
    return p->ctx.dmarc;
}

const struct policy_dmarc *smtp_policy_dmarc(const struct smtp_policy *p)
{
    return &p->verdict;
}

const char *smtp_policy_arrived_header(const struct smtp_policy *p, size_t *len)
{
    *len = p->arrived.len;
    return p->arrived.data ? p->arrived.data : "";
}

const struct dkim_sig_result *smtp_policy_dkim_results(const struct smtp_policy *p, size_t *n)
{
    *n = p->ndkim;
    return p->dkim;
}

const struct dmarc_outcome *smtp_policy_dmarc_outcome(const struct smtp_policy *p)
{
    return p->outcome;
}

/* The ARC result is in: keep it (DMARC's local policy reads it), then DKIM. The
   two run one after the other so that one callback writes the whole field. */
static void on_arc(void *arg, const struct arc_result *r)
{
    struct smtp_policy *p = arg;
    p->arc_result = malloc(sizeof *p->arc_result);
    if (p->arc_result) {
        *p->arc_result = *r;
        int n = snprintf(p->arc_summary, sizeof p->arc_summary, "arc=%s", arc_cv_name(r->status));
        if (r->status == ARC_CV_PASS && n > 0 && (size_t)n < sizeof p->arc_summary)
            snprintf(p->arc_summary + n, sizeof p->arc_summary - (size_t)n, " arc.oldest-pass=%u arc.sealer=%s",
                     r->oldest_pass, r->newest_domain);
        log_msg(LOG_LVL_INFO, p->log_id, "arc=%s (%s)", arc_cv_name(r->status), r->reason);
    } else {
        log_msg(LOG_LVL_WARN, p->log_id, "arc: out of memory; no result");
    }
    dkim_verify_finish(p->verifier, on_verified, p);
}

const char *smtp_policy_arc_summary(const struct smtp_policy *p)
{
    return p->arc_summary;
}

void smtp_policy_finish(struct smtp_policy *p, smtp_policy_done_fn done, void *arg)
{
    p->done = done;
    p->done_arg = arg;
    p->stage = PS_FINISHING;
    if (p->signer) {
        char err[256];
        size_t before = p->prepend.len;
        if (dkim_signer_finish(p->signer, &p->prepend, err, sizeof err) < 0) {
            /* Keys exist for this mail: the key process failed. It waits rather
               than leave unsigned (a DMARC p=reject domain would lose it). */
            p->prepend.len = before;
            p->sign_deferred = true;
            log_msg(LOG_LVL_WARN, p->log_id, "dkim: not signed: %s", err);
        } else
            log_msg(LOG_LVL_INFO, p->log_id, "dkim: signed");
    }
    if (p->arc && !p->header_too_big) {
        arc_verify_finish(p->arc, on_arc, p);     /* then DKIM, from on_arc */
        return;
    }
    if (p->verifier && !p->header_too_big) {
        dkim_verify_finish(p->verifier, on_verified, p);
        return;
    }
    if (p->ctx.verify && !p->header_too_big) {    /* no DNS client: say so rather than claim "none" */
        buf_printf(&p->prepend, "Authentication-Results: %s;\r\n\tdkim=temperror (no resolver)%s%s\r\n",
                   p->authserv_id, p->other_results[0] ? ";\r\n\t" : "", p->other_results);
    }
    finish_done(p);
}

const char *smtp_policy_header_from(const struct smtp_policy *p)
{
    return p->from;
}

/*
 * spf — check_host() (RFC 7208 §4, §5, §6) as an explicit state machine.
 *
 * The evaluation keeps a stack of frames, one per record being interpreted: the
 * top-level <domain>, and one per include: level. redirect= replaces the frame in
 * place (§6.1). Each DNS answer resumes run(), which interprets terms until one
 * needs DNS (it then starts one query and returns) or a result is known.
 */
#include "auth/spf.h"
#include "auth/spf_macro.h"
#include "auth/spf_names.h"
#include "lib/netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define SPF_DEPTH        12     /* 10 DNS terms bound the include depth */
#define SPF_MAX_TERMS    10
#define SPF_MAX_VOID     2
#define SPF_MAX_MX       10
#define SPF_MAX_PTR      10

enum spf_state {
    ST_RUN,         /* interpreting terms, no query outstanding */
    ST_RECORD,      /* TXT of a frame's domain */
    ST_A,           /* A/AAAA of an a: target */
    ST_MX,          /* MX of an mx: target */
    ST_MX_ADDR,     /* A/AAAA of MX name mx_next */
    ST_PTR,         /* PTR of the client address */
    ST_PTR_ADDR,    /* A/AAAA of PTR name ptr_next */
    ST_EXISTS,      /* A of an exists: target */
    ST_EXP,         /* TXT of the exp= target */
    ST_DONE
};

/* What to do once the validated names (ptr, %{p}) are known. */
enum after_ptr { AFTER_TERM, AFTER_EXP_SPEC, AFTER_EXP_TEXT };

struct frame {
    char domain[DNS_NAME_MAX + 1];
    struct spf_record rec;
    bool have_rec;
    size_t next;            /* next term to interpret */
    bool is_include;        /* entered by include: (its result is a match or not) */
    bool redirected;        /* entered by redirect= (none becomes permerror) */
};

struct spf_check {
    struct auth_resolver res;
    spf_done_cb cb;
    void *arg;
    enum spf_state state;
    void *pending;
    time_t started;
    unsigned time_limit;
    struct spf_macro_vars vars;
    char local[256], sender_domain[256], helo[256], receiver[256], validated[DNS_NAME_MAX + 1];
    struct frame frames[SPF_DEPTH];
    size_t depth;           /* frames in use */
    const struct spf_term *term;    /* the mechanism being evaluated */
    char target[DNS_NAME_MAX + 1];
    char names[SPF_MAX_PTR > SPF_MAX_MX ? SPF_MAX_PTR : SPF_MAX_MX][DNS_NAME_MAX + 1];
    size_t nnames, next_name;
    /* validated domain names of the client (§5.5), computed once */
    bool ptr_known;
    char ptr_ok[SPF_MAX_PTR][DNS_NAME_MAX + 1];
    size_t nptr_ok;
    enum after_ptr after;
    bool ptr_for_mech;      /* the lookup is for a ptr mechanism (else for %{p}) */
    bool ptr_void;          /* the PTR query got NXDOMAIN or no records */
    char exp_text[SPF_TEXT_MAX];
    struct spf_outcome out;
};

static void run(struct spf_check *c);
static void frame_result(struct spf_check *c, enum spf_result r, const struct spf_term *t);

/* --- completion ---------------------------------------------------------- */

/* Records the result; the entry point that is running (callback or start) delivers
   it with complete() once the stack has unwound, so nothing touches a freed check. */
static void finish(struct spf_check *c, enum spf_result r, const char *reason)
{
    c->state = ST_DONE;
    c->out.result = r;
    if (reason && (!c->out.reason[0] || r == SPF_PERMERROR || r == SPF_TEMPERROR))
        snprintf(c->out.reason, sizeof c->out.reason, "%s", reason);
    if (r != SPF_FAIL)
        c->out.explanation[0] = '\0';
}

static void complete(struct spf_check *c)
{
    c->cb(&c->out, c->arg);
    for (size_t i = 0; i < c->depth; i++)
        spf_record_free(&c->frames[i].rec);
    free(c);
}

static void finishf(struct spf_check *c, enum spf_result r, const char *fmt, const char *a, const char *b)
{
    char why[SPF_TEXT_MAX];
    snprintf(why, sizeof why, fmt, a, b ? b : "");
    finish(c, r, why);
}

void spf_check_cancel(struct spf_check *c)
{
    if (!c)
        return;
    if (c->pending)
        c->res.cancel(c->res.ctx, c->pending);
    for (size_t i = 0; i < c->depth; i++)
        spf_record_free(&c->frames[i].rec);
    free(c);
}

/* --- helpers -------------------------------------------------------------- */

static struct frame *top(struct spf_check *c) { return &c->frames[c->depth - 1]; }

/* §4.3: a <domain> (the checked one, an include or redirect target) has two labels
   at least; a mechanism's <target-name> may have one. */
static bool domain_ok(const char *d) { return spf_query_labels(d) >= 2; }
static bool target_ok(const char *d) { return spf_query_labels(d) >= 1; }

static void callback(const struct dns_answer *a, void *arg);

static void lookup(struct spf_check *c, enum spf_state st, const char *name, uint16_t type)
{
    c->state = st;
    c->pending = c->res.lookup(c->res.ctx, name, type, callback, c);
    if (!c->pending)
        finish(c, SPF_TEMPERROR, "out of memory starting a DNS query");
}

static uint16_t addr_type(const struct spf_check *c)
{
    return c->vars.family == AF_INET ? DNS_T_A : DNS_T_AAAA;
}

/* Does any address record of the answer fall in the client's network? */
static bool answer_matches(const struct spf_check *c, const struct dns_answer *a, const struct spf_term *t)
{
    for (size_t i = 0; i < a->count; i++) {
        const struct dns_record *r = &a->records[i];
        if (c->vars.family == AF_INET && r->type == DNS_T_A &&
            spf_cidr_match((const uint8_t *)&r->u.a, c->vars.ip, t ? t->cidr4 : 32))
            return true;
        if (c->vars.family == AF_INET6 && r->type == DNS_T_AAAA &&
            spf_cidr_match((const uint8_t *)&r->u.aaaa, c->vars.ip, t ? t->cidr6 : 128))
            return true;
    }
    return false;
}

/* %{p} (§7.3): the <domain> itself if validated, else a subdomain of it, else any. */
static void choose_validated(struct spf_check *c)
{
    const char *d = c->vars.domain;
    const char *pick = c->nptr_ok ? c->ptr_ok[0] : "unknown";
    int best = 0;
    for (size_t i = 0; i < c->nptr_ok; i++) {
        const char *n = c->ptr_ok[i];
        if (!strcasecmp(n, d)) {
            pick = n;
            break;
        }
        if (best < 1 && spf_name_under(n, d)) {
            pick = n;
            best = 1;
        }
    }
    snprintf(c->validated, sizeof c->validated, "%s", pick);
    c->vars.validated = c->validated;
}

static bool add_void(struct spf_check *c, const char *qname)
{
    if (++c->out.void_lookups > SPF_MAX_VOID) {
        char why[SPF_TEXT_MAX];
        snprintf(why, sizeof why, "more than %d void DNS lookups (the last: %s)", SPF_MAX_VOID, qname);
        finish(c, SPF_PERMERROR, why);
        return false;
    }
    return true;
}

static bool count_void(struct spf_check *c, const struct dns_answer *a)
{
    return !spf_answer_void(a) || add_void(c, a->qname);
}

/* A DNS failure inside a mechanism: §5 makes check_host() a temperror. */
static bool dns_failed(struct spf_check *c, const struct dns_answer *a)
{
    if (auth_dns_definite(a->status))
        return false;
    char why[SPF_TEXT_MAX];
    snprintf(why, sizeof why, "DNS lookup of %s %s failed: %s%s%s", dns_type_name(a->qtype), a->qname,
             dns_status_name(a->status), a->error[0] ? ": " : "", a->error);
    finish(c, SPF_TEMPERROR, why);
    return true;
}

/* --- validated names (ptr mechanism, %{p}) -------------------------------- */

static void resume_after_ptr(struct spf_check *c);
static void mech_done(struct spf_check *c, bool matched);
static void ptr_match(struct spf_check *c);

static void ptr_next_name(struct spf_check *c)
{
    if (c->next_name < c->nnames) {
        lookup(c, ST_PTR_ADDR, c->names[c->next_name], addr_type(c));
        return;
    }
    c->ptr_known = true;
    resume_after_ptr(c);
}

static void ptr_start(struct spf_check *c, enum after_ptr after)
{
    char rev[DNS_NAME_MAX + 1];
    netaddr_reverse_name(c->vars.family, c->vars.ip, rev, sizeof rev);
    c->after = after;
    lookup(c, ST_PTR, rev, DNS_T_PTR);
}

/* Make sure the validated names are known before going on; true when they are. */
static bool need_ptr(struct spf_check *c, const char *spec, enum after_ptr after)
{
    if (c->ptr_known || !spec || !spf_macro_uses_p(spec, strlen(spec)))
        return true;
    c->ptr_for_mech = false;
    ptr_start(c, after);
    return false;
}

/* --- records ------------------------------------------------------------- */

/* Begin interpreting <domain> in the top frame. */
static void fetch_record(struct spf_check *c)
{
    struct frame *f = top(c);
    if (!domain_ok(f->domain)) {
        if (c->depth == 1 && !f->redirected) {
            finishf(c, SPF_NONE, "\"%s\" is not a valid domain name", f->domain, NULL);
            return;
        }
        finishf(c, SPF_PERMERROR, "\"%s\" (included or redirected to) is not a valid domain name", f->domain, NULL);
        return;
    }
    lookup(c, ST_RECORD, f->domain, DNS_T_TXT);
}

static void record_answer(struct spf_check *c, const struct dns_answer *a)
{
    struct frame *f = top(c);
    if (!auth_dns_definite(a->status)) {
        finishf(c, SPF_TEMPERROR, "DNS lookup of TXT %s failed: %s", f->domain, dns_status_name(a->status));
        return;
    }
    const struct dns_record *found = NULL;
    size_t n = 0;
    for (size_t i = 0; a->status == DNS_OK && i < a->count; i++) {
        const struct dns_record *r = &a->records[i];
        if (r->type == DNS_T_TXT && r->data && spf_record_is_spf1((const char *)r->data, r->len)) {
            found = r;
            n++;
        }
    }
    if (n > 1) {
        finishf(c, SPF_PERMERROR, "%s publishes more than one \"v=spf1\" record", f->domain, NULL);
        return;
    }
    if (n == 0) {
        /* §4.5 none; an include or redirect target without a record is a permerror (§5.2, §6.1) */
        if (f->is_include || f->redirected) {
            finishf(c, SPF_PERMERROR, "%s %s has no SPF record", f->redirected ? "redirect target" : "included domain",
                    f->domain);
            return;
        }
        finishf(c, SPF_NONE, "%s publishes no SPF record", f->domain, NULL);
        return;
    }
    char err[SPF_TEXT_MAX - 80];
    int rc = spf_record_parse((const char *)found->data, found->len, &f->rec, err, sizeof err);
    if (rc == -2) {
        finish(c, SPF_TEMPERROR, "out of memory parsing an SPF record");
        return;
    }
    if (rc < 0) {
        snprintf(c->out.record, sizeof c->out.record, "%.*s", (int)found->len, (const char *)found->data);
        finishf(c, SPF_PERMERROR, "the SPF record of %s: %s", f->domain, err);
        return;
    }
    f->have_rec = true;
    f->next = 0;
    c->state = ST_RUN;
    run(c);
}

/* --- term interpretation --------------------------------------------------- */

static bool count_term(struct spf_check *c, const char *what)
{
    if (++c->out.dns_terms > SPF_MAX_TERMS) {
        finishf(c, SPF_PERMERROR, "more than 10 DNS-querying terms (the 11th: %s)", what, NULL);
        return false;
    }
    return true;
}

/* Expand a domain-spec (or <domain> when spec is NULL) into c->target. */
static bool expand_target(struct spf_check *c, const char *spec, const char *what)
{
    struct frame *f = top(c);
    c->vars.domain = f->domain;
    if (!spec) {
        snprintf(c->target, sizeof c->target, "%s", f->domain);
        return true;
    }
    if (c->ptr_known)
        choose_validated(c);
    char err[256];
    int rc = spf_macro_expand(spec, strlen(spec), SPF_MACRO_DOMAIN, &c->vars, c->target, sizeof c->target, err,
                              sizeof err);
    if (rc == -2) {
        /* §4.8, §5: a name that cannot be queried does not exist (the caller's
           target_ok or fetch_record sees the empty name) */
        c->target[0] = '\0';
        return true;
    }
    if (rc < 0) {
        finishf(c, SPF_PERMERROR, "%s: %s", what, err);
        return false;
    }
    return true;
}

static void mech_start(struct spf_check *c, const struct spf_term *t)
{
    c->term = t;
    if (!need_ptr(c, t->domain_spec, AFTER_TERM))
        return;
    if (!count_term(c, t->text) || !expand_target(c, t->domain_spec, t->text))
        return;
    if ((t->mech == SPF_M_A || t->mech == SPF_M_MX || t->mech == SPF_M_EXISTS) && !target_ok(c->target)) {
        /* RFC 7208 §4.3, §4.8, §5: not a DNS name, so no such domain: no match
           (and no DNS query, so no void lookup either) */
        mech_done(c, false);
        return;
    }
    switch (t->mech) {
    case SPF_M_A:
        lookup(c, ST_A, c->target, addr_type(c));
        break;
    case SPF_M_MX:
        lookup(c, ST_MX, c->target, DNS_T_MX);
        break;
    case SPF_M_EXISTS:
        lookup(c, ST_EXISTS, c->target, DNS_T_A);
        break;
    case SPF_M_PTR:
        spf_name_lower(c->target);
        if (c->ptr_known) {
            /* the PTR answer is remembered, but every ptr term that gets a void
               answer counts (§4.6.4 counts terms) */
            if (c->ptr_void && !add_void(c, "the client's PTR name"))
                return;
            ptr_match(c);
        } else {
            c->ptr_for_mech = true;
            ptr_start(c, AFTER_TERM);
        }
        break;
    case SPF_M_INCLUDE: {
        if (c->depth == SPF_DEPTH) {
            finish(c, SPF_PERMERROR, "includes nested too deeply");
            return;
        }
        struct frame *nf = &c->frames[c->depth++];
        memset(nf, 0, sizeof *nf);
        snprintf(nf->domain, sizeof nf->domain, "%s", c->target);
        spf_name_lower(nf->domain);
        nf->is_include = true;
        fetch_record(c);
        break;
    }
    default:
        break;
    }
}

/* Interpret the top frame's terms from where it stopped. */
static void run(struct spf_check *c)
{
    while (c->state == ST_RUN) {
        if (c->time_limit && time(NULL) - c->started > (time_t)c->time_limit) {
            finish(c, SPF_TEMPERROR, "the SPF evaluation took longer than its time limit");
            return;
        }
        struct frame *f = top(c);
        if (f->next >= f->rec.nterms) {
            if (!f->rec.redirect) {
                frame_result(c, SPF_NEUTRAL, NULL);     /* §4.7 default */
                continue;
            }
            /* §6.1: redirect only when no mechanism matched */
            c->term = NULL;
            if (!need_ptr(c, f->rec.redirect, AFTER_TERM))
                return;
            char what[300];
            snprintf(what, sizeof what, "redirect=%s", f->rec.redirect);
            if (!count_term(c, what) || !expand_target(c, f->rec.redirect, what))
                return;
            char target[DNS_NAME_MAX + 1];
            snprintf(target, sizeof target, "%s", c->target);
            spf_name_lower(target);
            spf_record_free(&f->rec);
            bool inc = f->is_include;
            memset(f, 0, sizeof *f);
            snprintf(f->domain, sizeof f->domain, "%s", target);
            f->is_include = inc;
            f->redirected = true;
            fetch_record(c);
            return;
        }
        const struct spf_term *t = &f->rec.terms[f->next];
        switch (t->mech) {
        case SPF_M_ALL:
            frame_result(c, t->qualifier, t);
            continue;
        case SPF_M_IP4:
        case SPF_M_IP6:
            if ((t->mech == SPF_M_IP4 && c->vars.family == AF_INET && spf_cidr_match(t->addr, c->vars.ip, t->cidr4)) ||
                (t->mech == SPF_M_IP6 && c->vars.family == AF_INET6 && spf_cidr_match(t->addr, c->vars.ip, t->cidr6)))
                frame_result(c, t->qualifier, t);
            else
                f->next++;
            continue;
        default:
            mech_start(c, t);
            return;
        }
    }
}

/* The mechanism c->term matched (or not); continue the frame. */
static void mech_done(struct spf_check *c, bool matched)
{
    c->state = ST_RUN;
    if (matched)
        frame_result(c, c->term->qualifier, c->term);
    else
        top(c)->next++;
    if (c->state == ST_RUN)
        run(c);
}

static void exp_start(struct spf_check *c);

/* The top frame produced result r (t: the deciding term, NULL for the default). */
static void frame_result(struct spf_check *c, enum spf_result r, const struct spf_term *t)
{
    struct frame *f = top(c);
    if (c->depth > 1) {
        /* §5.2: the included evaluation only decides whether include: matched */
        spf_record_free(&f->rec);
        c->depth--;
        struct frame *p = top(c);
        const struct spf_term *inc = &p->rec.terms[p->next];
        c->term = inc;
        if (r == SPF_PASS) {
            frame_result(c, inc->qualifier, inc);
            return;
        }
        p->next++;
        c->state = ST_RUN;
        return;
    }
    snprintf(c->out.mechanism, sizeof c->out.mechanism, "%s", t ? t->text : "");
    snprintf(c->out.record, sizeof c->out.record, "%s", f->rec.text ? f->rec.text : "");
    snprintf(c->out.domain, sizeof c->out.domain, "%s", f->domain);
    if (!t)
        snprintf(c->out.reason, sizeof c->out.reason, "no mechanism matched (default result)");
    if (r == SPF_FAIL) {
        exp_start(c);
        return;
    }
    finish(c, r, NULL);
}

/* --- explanation (§6.2) ---------------------------------------------------- */

static void default_explanation(struct spf_check *c)
{
    char ip[48];
    snprintf(ip, sizeof ip, "%s", c->out.client_ip);
    snprintf(c->out.explanation, sizeof c->out.explanation, "%s is not a designated sender for %s", ip,
             c->out.domain);
}

static void exp_start(struct spf_check *c)
{
    struct frame *f = top(c);
    default_explanation(c);
    if (!f->rec.exp) {
        finish(c, SPF_FAIL, NULL);
        return;
    }
    if (!need_ptr(c, f->rec.exp, AFTER_EXP_SPEC))
        return;
    c->vars.domain = f->domain;
    if (c->ptr_known)
        choose_validated(c);
    char err[256];
    if (spf_macro_expand(f->rec.exp, strlen(f->rec.exp), SPF_MACRO_DOMAIN, &c->vars, c->target, sizeof c->target,
                         err, sizeof err) < 0 || !domain_ok(c->target)) {
        finish(c, SPF_FAIL, NULL);
        return;
    }
    lookup(c, ST_EXP, c->target, DNS_T_TXT);
}

static void exp_text(struct spf_check *c)
{
    if (!need_ptr(c, c->exp_text, AFTER_EXP_TEXT))
        return;
    c->vars.domain = top(c)->domain;
    if (c->ptr_known)
        choose_validated(c);
    char err[256], text[SPF_TEXT_MAX];
    if (spf_macro_expand(c->exp_text, strlen(c->exp_text), SPF_MACRO_EXPLAIN, &c->vars, text, sizeof text, err,
                         sizeof err) == 0) {
        /* keep it printable: it goes into an SMTP reply */
        for (char *p = text; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                *p = '?';
        snprintf(c->out.explanation, sizeof c->out.explanation, "%s", text);
    }
    finish(c, SPF_FAIL, NULL);
}

static void exp_answer(struct spf_check *c, const struct dns_answer *a)
{
    /* any error, no record or several: as if there were no exp= */
    if (a->status != DNS_OK || spf_count_type(a, DNS_T_TXT) != 1) {
        finish(c, SPF_FAIL, NULL);
        return;
    }
    for (size_t i = 0; i < a->count; i++) {
        const struct dns_record *r = &a->records[i];
        if (r->type != DNS_T_TXT)
            continue;
        if (r->len >= sizeof c->exp_text || memchr(r->data, '\0', r->len)) {
            finish(c, SPF_FAIL, NULL);
            return;
        }
        memcpy(c->exp_text, r->data, r->len);
        c->exp_text[r->len] = '\0';
    }
    exp_text(c);
}

/* §5.5: a validated name equal to the target or below it */
static void ptr_match(struct spf_check *c)
{
    bool matched = false;
    for (size_t i = 0; i < c->nptr_ok && !matched; i++) {
        const char *n = c->ptr_ok[i];
        matched = !strcasecmp(n, c->target) || spf_name_under(n, c->target);
    }
    mech_done(c, matched);
}

static void resume_after_ptr(struct spf_check *c)
{
    c->state = ST_RUN;
    switch (c->after) {
    case AFTER_EXP_SPEC:
        exp_start(c);
        return;
    case AFTER_EXP_TEXT:
        exp_text(c);
        return;
    case AFTER_TERM:
        break;
    }
    if (c->ptr_for_mech) {
        ptr_match(c);
        return;
    }
    /* a term waited for %{p}: interpret it again from the start */
    run(c);
}

/* --- DNS answers ------------------------------------------------------------ */

static void on_answer(struct spf_check *c, const struct dns_answer *a);

static void callback(const struct dns_answer *a, void *arg)
{
    struct spf_check *c = arg;
    c->pending = NULL;
    on_answer(c, a);
    if (c->state == ST_DONE)
        complete(c);
}

static void on_answer(struct spf_check *c, const struct dns_answer *a)
{
    if (c->time_limit && time(NULL) - c->started > (time_t)c->time_limit) {
        finish(c, SPF_TEMPERROR, "the SPF evaluation took longer than its time limit");
        return;
    }
    switch (c->state) {
    case ST_RECORD:
        record_answer(c, a);
        return;
    case ST_A:
        if (dns_failed(c, a) || !count_void(c, a))
            return;
        mech_done(c, answer_matches(c, a, c->term));
        return;
    case ST_EXISTS:
        if (dns_failed(c, a) || !count_void(c, a))
            return;
        mech_done(c, a->status == DNS_OK && spf_count_type(a, DNS_T_A) > 0);
        return;
    case ST_MX: {
        if (dns_failed(c, a) || !count_void(c, a))
            return;
        size_t n = a->status == DNS_OK ? spf_count_type(a, DNS_T_MX) : 0;
        if (n > SPF_MAX_MX) {
            finishf(c, SPF_PERMERROR, "%s has more than 10 MX records (mechanism %s)", c->target, c->term->text);
            return;
        }
        c->nnames = c->next_name = 0;
        for (size_t i = 0; i < a->count; i++) {
            if (a->records[i].type != DNS_T_MX)
                continue;
            char *dst = c->names[c->nnames];
            snprintf(dst, DNS_NAME_MAX + 1, "%s", a->records[i].u.mx.exchange);
            spf_name_lower(dst);
            if (dst[0])     /* RFC 7505 null MX "." names no host */
                c->nnames++;
        }
    }
        /* fall through */
    case ST_MX_ADDR:
        if (c->state == ST_MX_ADDR) {
            if (dns_failed(c, a))
                return;
            if (answer_matches(c, a, c->term)) {
                mech_done(c, true);
                return;
            }
            c->next_name++;
        }
        if (c->next_name < c->nnames)
            lookup(c, ST_MX_ADDR, c->names[c->next_name], addr_type(c));
        else
            mech_done(c, false);
        return;
    case ST_PTR:
        /* §5.5: a DNS error here only means no validated names */
        c->nnames = c->next_name = 0;
        c->nptr_ok = 0;
        c->ptr_void = auth_dns_definite(a->status) && spf_answer_void(a);
        if (c->ptr_for_mech && c->ptr_void && !add_void(c, a->qname))
            return;
        for (size_t i = 0; a->status == DNS_OK && i < a->count && c->nnames < SPF_MAX_PTR; i++) {
            if (a->records[i].type != DNS_T_PTR)
                continue;
            snprintf(c->names[c->nnames], DNS_NAME_MAX + 1, "%s", a->records[i].u.ptr);
            spf_name_lower(c->names[c->nnames]);
            if (c->names[c->nnames][0])
                c->nnames++;
        }
        ptr_next_name(c);
        return;
    case ST_PTR_ADDR:
        if (a->status == DNS_OK && answer_matches(c, a, NULL))
            memcpy(c->ptr_ok[c->nptr_ok++], c->names[c->next_name], DNS_NAME_MAX + 1);
        c->next_name++;
        ptr_next_name(c);
        return;
    case ST_EXP:
        exp_answer(c, a);
        return;
    case ST_RUN:
    case ST_DONE:
        return;
    }
}

/* --- start ------------------------------------------------------------------ */

static void copy_lower(char *dst, size_t dsz, const char *src)
{
    snprintf(dst, dsz, "%s", src ? src : "");
    spf_name_lower(dst);
}

struct spf_check *spf_check_start(const struct auth_resolver *r, const struct spf_query *q, spf_done_cb cb, void *arg)
{
    struct spf_check *c = calloc(1, sizeof *c);
    if (!c) {
        struct spf_outcome o;
        memset(&o, 0, sizeof o);
        o.result = SPF_TEMPERROR;
        snprintf(o.reason, sizeof o.reason, "out of memory starting an SPF check");
        cb(&o, arg);
        return NULL;
    }
    c->res = *r;
    c->cb = cb;
    c->arg = arg;
    c->started = time(NULL);
    c->time_limit = q->time_limit ? q->time_limit : 20;
    c->vars.family = q->family;
    memcpy(c->vars.ip, q->ip, 16);
    if (q->family == AF_INET6) {    /* mapped IPv4 is IPv4 (§5 note on ip6) */
        char text[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, q->ip, text, sizeof text);
        netaddr_text_bytes(text, &c->vars.family, c->vars.ip);
    }
    inet_ntop(c->vars.family, c->vars.ip, c->out.client_ip, sizeof c->out.client_ip);
    copy_lower(c->helo, sizeof c->helo, q->helo);
    snprintf(c->out.helo, sizeof c->out.helo, "%s", q->helo ? q->helo : "");
    snprintf(c->receiver, sizeof c->receiver, "%s", q->receiver ? q->receiver : "unknown");
    c->out.identity = q->identity;

    /* §4.3: <sender> and its parts; postmaster for a missing local-part */
    const char *sender = q->sender ? q->sender : "";
    if (q->identity == SPF_ID_HELO || !sender[0]) {
        snprintf(c->local, sizeof c->local, "postmaster");
        snprintf(c->sender_domain, sizeof c->sender_domain, "%s", c->helo);
    } else {
        const char *at = strrchr(sender, '@');
        if (!at || at == sender)
            snprintf(c->local, sizeof c->local, "postmaster");
        else
            snprintf(c->local, sizeof c->local, "%.*s", (int)(at - sender), sender);
        copy_lower(c->sender_domain, sizeof c->sender_domain, at ? at + 1 : sender);
    }
    snprintf(c->out.sender, sizeof c->out.sender, "%s@%s", c->local, c->sender_domain);
    c->vars.local = c->local;
    c->vars.sender_domain = c->sender_domain;
    c->vars.helo = c->helo;
    c->vars.receiver = c->receiver;
    c->vars.validated = "unknown";
    c->vars.now = q->now ? q->now : time(NULL);

    c->depth = 1;
    struct frame *f = &c->frames[0];
    snprintf(f->domain, sizeof f->domain, "%s", q->identity == SPF_ID_HELO ? c->helo : c->sender_domain);
    snprintf(c->out.domain, sizeof c->out.domain, "%s", f->domain);
    c->vars.domain = f->domain;
    c->state = ST_RUN;
    fetch_record(c);
    if (c->state == ST_DONE) {
        complete(c);
        return NULL;
    }
    return c;
}

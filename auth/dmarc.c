/*
 * dmarc — see dmarc.h. The evaluation is a short sequence of stages, each at most one
 * outstanding lookup: the Author Domain's tree walk, then a walk per identifier that
 * relaxed alignment cannot settle by comparing names, then (only on fail, when np=
 * could change the answer) the Author Domain's existence. advance() runs stages until
 * one has to wait; a lookup that answers inside its start call is just the next turn
 * of the loop.
 */
#include "auth/dmarc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum id_state { ID_UNKNOWN, ID_ALIGNED, ID_NOT_ALIGNED, ID_TEMP };

struct ident {
    bool is_spf;
    char domain[DMARC_DOMAIN_MAX + 1];
    enum id_state state;
};

enum stage { S_AUTHOR, S_IDENTS, S_EXISTS, S_DONE };

struct dmarc_eval {
    struct auth_resolver res;
    dmarc_done_cb cb;
    void *arg;
    enum stage stage;
    struct dmarc_discover *walking;
    void *exists_q;
    bool waiting;              /* a lookup is outstanding */
    bool author_known;         /* the author walk has answered */
    bool org_known;            /* org_domain of the author is settled */
    struct ident ids[1 + DMARC_DKIM_IDS_MAX];
    size_t nids, next_id;
    int exists;                /* -1 unknown, 0 NXDOMAIN, 1 exists, 2 temp failure */
    struct dmarc_walk walk;    /* the Author Domain's */
    struct dmarc_outcome out;
};

const char *dmarc_result_name(enum dmarc_result r)
{
    switch (r) {
    case DMARC_RES_NONE: return "none";
    case DMARC_RES_PASS: return "pass";
    case DMARC_RES_FAIL: return "fail";
    case DMARC_RES_TEMPERROR: return "temperror";
    case DMARC_RES_PERMERROR: return "permerror";
    }
    return "permerror";
}

static void step(struct dmarc_outcome *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void step(struct dmarc_outcome *o, const char *fmt, ...)
{
    if (o->nsteps >= DMARC_STEPS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->steps[o->nsteps++], DMARC_STEP_LEN, fmt, ap);
    va_end(ap);
}

static void set_result(struct dmarc_outcome *o, enum dmarc_result r, const char *reason)
{
    o->result = r;
    snprintf(o->reason, sizeof o->reason, "%s", reason);
}

/* --- the From: outcome --------------------------------------------------------- */

/* True when the From: outcome alone decides the result. */
static bool from_decides(struct dmarc_outcome *o, const struct dmarc_from *f)
{
    switch (f->status) {
    case DMARC_FROM_OK:
        snprintf(o->header_from, sizeof o->header_from, "%s", f->domain);
        if (strcmp(f->written, f->domain))
            step(o, "author domain: %s (written %s; %s)", f->domain, f->written, f->reason);
        else
            step(o, "author domain: %s (%s)", f->domain, f->reason);
        return false;
    case DMARC_FROM_ABSENT:
    case DMARC_FROM_EMPTY:
        set_result(o, DMARC_RES_NONE, f->reason);
        step(o, "no author domain: %s; DMARC does not apply", f->reason);
        return true;
    case DMARC_FROM_MULTI_DOMAIN:
        set_result(o, DMARC_RES_PERMERROR, f->reason);
        o->disposition = DMARC_P_REJECT;
        step(o, "%s: no single author domain can be validated, and such a From: can show a domain "
                "nobody checked (RFC 9989 11.5); disposition reject", f->reason);
        return true;
    case DMARC_FROM_SYNTAX:
    case DMARC_FROM_BAD_NAME:
    case DMARC_FROM_LITERAL:
        set_result(o, DMARC_RES_PERMERROR, f->reason);
        step(o, "%s; no DMARC policy can be looked up", f->reason);
        return true;
    case DMARC_FROM_NOMEM:
        set_result(o, DMARC_RES_TEMPERROR, f->reason);
        step(o, "%s", f->reason);
        return true;
    }
    return true;
}

/* --- the author walk ------------------------------------------------------------ */

static void describe_walk(struct dmarc_outcome *o, const struct dmarc_walk *w)
{
    for (size_t i = 0; i < w->nlevels; i++) {
        const struct dmarc_level *l = &w->levels[i];
        switch (l->kind) {
        case DMARC_LVL_NONE:
            step(o, "_dmarc.%s: no DMARC record (%s)", l->domain, dns_status_name(l->dns));
            break;
        case DMARC_LVL_ONE:
            step(o, "_dmarc.%s: record \"%s\"", l->domain, l->text);
            if (l->rec.notes[0])
                step(o, "_dmarc.%s: %s", l->domain, l->rec.notes);
            break;
        case DMARC_LVL_SEVERAL:
            step(o, "_dmarc.%s: several DMARC records, all discarded (RFC 9989 4.10)", l->domain);
            break;
        case DMARC_LVL_TEMPFAIL:
            step(o, "_dmarc.%s: DNS failure (%s)", l->domain, dns_status_name(l->dns));
            break;
        case DMARC_LVL_SKIPPED:
            step(o, "_dmarc.%s: name too long to query, no record", l->domain);
            break;
        }
    }
}

/* Takes the applicable record from the walk; false when the result is decided. */
static bool take_record(struct dmarc_eval *e)
{
    struct dmarc_outcome *o = &e->out;
    const struct dmarc_walk *w = &e->walk;
    describe_walk(o, w);
    int pl = w->policy_level;
    if (w->status == DMARC_WALK_TEMPERROR) {
        /* the author's own record still applies; the org domain is unknown */
        if (!(w->nlevels && w->levels[0].kind == DMARC_LVL_ONE)) {
            set_result(o, DMARC_RES_TEMPERROR, w->reason);
            step(o, "the applicable record cannot be known: %s", w->reason);
            return false;
        }
        pl = 0;
        o->source = DMARC_SRC_DOMAIN;
        step(o, "the organizational domain is unknown (%s); only identical identifiers can align", w->reason);
    } else if (w->status != DMARC_WALK_OK) {
        set_result(o, DMARC_RES_PERMERROR, w->reason);
        return false;
    } else {
        e->org_known = true;
        o->source = w->source;
        snprintf(o->org_domain, sizeof o->org_domain, "%s", w->org_domain);
        step(o, "organizational domain of %s: %s", w->start, w->org_domain);
    }
    if (pl < 0) {
        set_result(o, DMARC_RES_NONE, "no DMARC policy record");
        step(o, "no DMARC policy record for %s: DMARC does not apply", w->start);
        return false;
    }
    o->has_record = true;
    o->record = w->levels[pl].rec;
    snprintf(o->policy_domain, sizeof o->policy_domain, "%s", w->levels[pl].domain);
    const struct dmarc_record *r = &o->record;
    step(o, "policy record: _dmarc.%s (%s) p=%s sp=%s np=%s adkim=%s aspf=%s t=%s", o->policy_domain,
         dmarc_source_name(o->source), dmarc_policy_name(r->p), dmarc_policy_name(r->sp), dmarc_policy_name(r->np),
         r->adkim == DMARC_ALIGN_STRICT ? "s" : "r", r->aspf == DMARC_ALIGN_STRICT ? "s" : "r",
         r->testing ? "y" : "n");
    if (r->policy_state == DMARC_POLICY_UNUSABLE) {
        set_result(o, DMARC_RES_PERMERROR, "the DMARC record has an invalid policy and no valid rua=");
        step(o, "the record's p=, sp= or np= is invalid and it has no valid rua=: no DMARC processing "
                "(RFC 9989 4.10.1)");
        return false;
    }
    if (r->policy_state == DMARC_POLICY_FORCED_NONE)
        step(o, "the record's p=, sp= or np= is invalid but rua= is valid: acting as p=none (RFC 9989 4.10.1)");
    return true;
}

/* --- identifiers ---------------------------------------------------------------- */

static void add_ident(struct dmarc_eval *e, bool is_spf, const char *domain)
{
    struct dmarc_outcome *o = &e->out;
    char canon[DMARC_DOMAIN_MAX + 1];
    if (dmarc_domain_canon(domain, canon, sizeof canon) < 0) {
        step(o, "%s: \"%.100s\" is not a valid domain name, cannot align", is_spf ? "spf" : "dkim", domain);
        return;
    }
    for (size_t i = 0; i < e->nids; i++)
        if (e->ids[i].is_spf == is_spf && !strcmp(e->ids[i].domain, canon))
            return;
    if (!is_spf && e->nids >= 1 + DMARC_DKIM_IDS_MAX) {
        step(o, "dkim: d=%s beyond the first %d signing domains, not considered", canon, DMARC_DKIM_IDS_MAX);
        return;
    }
    struct ident *id = &e->ids[e->nids++];
    id->is_spf = is_spf;
    snprintf(id->domain, sizeof id->domain, "%s", canon);
    id->state = ID_UNKNOWN;
}

static void collect_idents(struct dmarc_eval *e, const struct dmarc_input *in)
{
    struct dmarc_outcome *o = &e->out;
    if (in->spf == SPF_PASS && in->spf_domain && in->spf_domain[0])
        add_ident(e, true, in->spf_domain);
    else
        step(o, "spf: %s for %s: no SPF-authenticated identifier", spf_result_name(in->spf),
             in->spf_domain && in->spf_domain[0] ? in->spf_domain : "(no domain)");
    size_t n = 0;
    for (size_t i = 0; i < in->ndkim; i++) {
        const struct dkim_sig_result *s = &in->dkim[i];
        if (s->result == DKIM_RES_NONE)
            continue;
        n++;
        if (s->result == DKIM_RES_PASS && s->domain[0])
            add_ident(e, false, s->domain);
        else
            step(o, "dkim: d=%s s=%s %s: not an authenticated identifier", s->domain[0] ? s->domain : "?",
                 s->selector[0] ? s->selector : "?", dkim_result_name(s->result));
    }
    if (n == 0)
        step(o, "dkim: no signature: no DKIM-authenticated identifier");
}

static const char *method(const struct ident *id) { return id->is_spf ? "spf" : "dkim"; }

/* Settles what comparing names can settle (§4.10.2); the rest waits for a walk. */
static void compare(struct dmarc_eval *e, struct ident *id)
{
    struct dmarc_outcome *o = &e->out;
    bool strict = (id->is_spf ? o->record.aspf : o->record.adkim) == DMARC_ALIGN_STRICT;
    const char *mode = id->is_spf ? (strict ? "aspf=s" : "aspf=r") : (strict ? "adkim=s" : "adkim=r");
    const char *what = id->is_spf ? "pass for" : "pass, d=";
    if (!strcmp(id->domain, o->header_from)) {
        id->state = ID_ALIGNED;
        step(o, "%s: %s %s; %s: aligned (identical to the author domain)", method(id), what, id->domain, mode);
    } else if (strict) {
        id->state = ID_NOT_ALIGNED;
        step(o, "%s: %s %s; %s: not aligned (strict needs %s exactly)", method(id), what, id->domain, mode,
             o->header_from);
    } else if (!e->org_known) {
        id->state = ID_TEMP;
        step(o, "%s: %s %s; %s: unknown (the author's organizational domain is unknown)", method(id), what,
             id->domain, mode);
    } else if (!dmarc_domain_is_within(id->domain, o->org_domain)) {
        id->state = ID_NOT_ALIGNED;
        step(o, "%s: %s %s; %s: not aligned (not within %s, the author's organizational domain)", method(id), what,
             id->domain, mode, o->org_domain);
    }
}

static void ident_walked(struct dmarc_eval *e, struct ident *id, const struct dmarc_walk *w)
{
    struct dmarc_outcome *o = &e->out;
    const char *mode = id->is_spf ? "aspf=r" : "adkim=r";
    const char *what = id->is_spf ? "pass for" : "pass, d=";
    if (w->status != DMARC_WALK_OK) {
        id->state = w->status == DMARC_WALK_TEMPERROR ? ID_TEMP : ID_NOT_ALIGNED;
        step(o, "%s: %s %s; %s: organizational domain not found (%s)", method(id), what, id->domain, mode, w->reason);
    } else if (!strcmp(w->org_domain, o->org_domain)) {
        id->state = ID_ALIGNED;
        step(o, "%s: %s %s; %s: aligned (same organizational domain %s)", method(id), what, id->domain, mode,
             o->org_domain);
    } else {
        id->state = ID_NOT_ALIGNED;
        step(o, "%s: %s %s; %s: not aligned (its organizational domain is %s, the author's %s)", method(id), what,
             id->domain, mode, w->org_domain, o->org_domain);
    }
}

/* --- the verdict ---------------------------------------------------------------- */

static void verdict(struct dmarc_eval *e)
{
    struct dmarc_outcome *o = &e->out;
    bool temp = false;
    for (size_t i = 0; i < e->nids; i++) {
        const struct ident *id = &e->ids[i];
        if (id->state == ID_ALIGNED && id->is_spf)
            o->spf_aligned = true;
        if (id->state == ID_ALIGNED && !id->is_spf && !o->dkim_aligned) {
            o->dkim_aligned = true;
            snprintf(o->dkim_aligned_domain, sizeof o->dkim_aligned_domain, "%s", id->domain);
        }
        temp = temp || id->state == ID_TEMP || id->state == ID_UNKNOWN;
    }
    if (o->spf_aligned || o->dkim_aligned)
        set_result(o, DMARC_RES_PASS, o->spf_aligned && o->dkim_aligned ? "SPF and DKIM aligned"
                                      : o->spf_aligned ? "SPF aligned" : "DKIM aligned");
    else if (temp)
        set_result(o, DMARC_RES_TEMPERROR, "an identifier's alignment could not be determined");
    else
        set_result(o, DMARC_RES_FAIL, e->nids ? "no authenticated identifier is aligned"
                                              : "no authenticated identifier");
}

/* Which of p, sp, np; true when the existence of the author domain decides it. */
static bool needs_existence(const struct dmarc_eval *e)
{
    const struct dmarc_outcome *o = &e->out;
    return o->result == DMARC_RES_FAIL && o->source != DMARC_SRC_DOMAIN && o->record.has_np &&
           o->record.np != o->record.sp;
}

static void apply_policy(struct dmarc_eval *e)
{
    struct dmarc_outcome *o = &e->out;
    const struct dmarc_record *r = &o->record;
    if (o->source == DMARC_SRC_DOMAIN) {
        o->policy = r->p, o->policy_tag = "p";
    } else if (e->exists == 0) {
        o->policy = r->np, o->policy_tag = "np";
        step(o, "%s does not exist (NXDOMAIN): np= applies", o->header_from);
    } else {
        o->policy = r->sp, o->policy_tag = "sp";
    }
    if (e->exists == 2) {
        set_result(o, DMARC_RES_TEMPERROR, "the author domain's existence could not be determined");
        step(o, "the A lookup of %s failed: whether np= applies is unknown", o->header_from);
    }
    if (o->result != DMARC_RES_FAIL) {
        o->disposition = DMARC_P_NONE;
    } else {
        o->disposition = o->policy;
        if (r->testing && o->policy != DMARC_P_NONE) {
            o->disposition = o->policy == DMARC_P_REJECT ? DMARC_P_QUARANTINE : DMARC_P_NONE;
            step(o, "t=y: the domain owner is testing; %s lowered to %s (RFC 9989 4.7)", dmarc_policy_name(o->policy),
                 dmarc_policy_name(o->disposition));
        }
    }
    step(o, "result: %s (%s); policy %s=%s from _dmarc.%s; disposition %s", dmarc_result_name(o->result), o->reason,
         o->policy_tag, dmarc_policy_name(o->policy), o->policy_domain, dmarc_policy_name(o->disposition));
}

/* --- driving ---------------------------------------------------------------------- */

static bool advance(struct dmarc_eval *e);

static void finish(struct dmarc_eval *e)
{
    e->stage = S_DONE;
    e->cb(&e->out, e->arg);
    free(e);
}

static void walk_done(const struct dmarc_walk *w, void *arg)
{
    struct dmarc_eval *e = arg;
    bool was_waiting = e->waiting;
    e->walking = NULL;
    e->waiting = false;
    if (e->stage == S_AUTHOR) {
        e->walk = *w;
        e->author_known = true;
    } else {
        ident_walked(e, &e->ids[e->next_id++], w);
    }
    if (was_waiting && advance(e))
        finish(e);
}

static void exists_done(const struct dns_answer *a, void *arg)
{
    struct dmarc_eval *e = arg;
    e->exists_q = NULL;
    e->waiting = false;
    e->exists = a->status == DNS_NXDOMAIN ? 0 : auth_dns_definite(a->status) ? 1 : 2;
    if (advance(e))
        finish(e);
}

/* Runs stages until one must wait (false) or the outcome is ready (true). */
static bool advance(struct dmarc_eval *e)
{
    for (;;) {
        switch (e->stage) {
        case S_AUTHOR:
            if (!e->author_known) {
                e->waiting = false;
                struct dmarc_discover *d = dmarc_discover_start(&e->res, e->out.header_from, walk_done, e);
                if (!e->author_known) {
                    e->walking = d;
                    e->waiting = true;
                    return false;
                }
                continue;
            }
            if (!take_record(e))
                return true;
            for (size_t i = 0; i < e->nids; i++)
                compare(e, &e->ids[i]);
            e->next_id = 0;
            e->stage = S_IDENTS;
            continue;
        case S_IDENTS: {
            bool dkim_done = false;
            for (size_t i = 0; i < e->nids; i++)
                dkim_done = dkim_done || (!e->ids[i].is_spf && e->ids[i].state == ID_ALIGNED);
            while (e->next_id < e->nids &&
                   (e->ids[e->next_id].state != ID_UNKNOWN || (dkim_done && !e->ids[e->next_id].is_spf)))
                e->next_id++;
            if (e->next_id < e->nids) {
                size_t want = e->next_id;
                struct dmarc_discover *d = dmarc_discover_start(&e->res, e->ids[want].domain, walk_done, e);
                if (e->next_id == want) {       /* not answered in line */
                    e->walking = d;
                    e->waiting = true;
                    return false;
                }
                continue;
            }
            verdict(e);
            e->stage = S_EXISTS;
            continue;
        }
        case S_EXISTS:
            if (needs_existence(e) && e->exists < 0) {
                e->exists_q = e->res.lookup(e->res.ctx, e->out.header_from, DNS_T_A, exists_done, e);
                if (!e->exists_q)
                    e->exists = 2;
                else {
                    e->waiting = true;
                    return false;
                }
            }
            apply_policy(e);
            return true;
        case S_DONE:
            return true;
        }
    }
}

struct dmarc_eval *dmarc_evaluate(const struct auth_resolver *r, const struct dmarc_input *in, dmarc_done_cb cb,
                                  void *arg)
{
    struct dmarc_eval *e = calloc(1, sizeof *e);
    if (!e) {
        struct dmarc_outcome *o = calloc(1, sizeof *o);
        static const struct dmarc_outcome fallback = {.result = DMARC_RES_TEMPERROR, .reason = "out of memory",
                                                      .policy_tag = ""};
        cb(o ? o : &fallback, arg);
        free(o);
        return NULL;
    }
    e->res = *r;
    e->cb = cb;
    e->arg = arg;
    e->exists = -1;
    e->out.policy_tag = "";
    if (from_decides(&e->out, in->from)) {
        finish(e);
        return NULL;
    }
    collect_idents(e, in);
    if (advance(e)) {
        finish(e);
        return NULL;
    }
    return e;
}

void dmarc_evaluate_cancel(struct dmarc_eval *e)
{
    if (!e)
        return;
    if (e->walking)
        dmarc_discover_cancel(e->walking);
    if (e->exists_q)
        e->res.cancel(e->res.ctx, e->exists_q);
    free(e);
}

/* --- blocking form and formatting ------------------------------------------------- */

struct sync_state {
    struct dmarc_outcome *out;
    bool done;
};

static void sync_done(const struct dmarc_outcome *o, void *arg)
{
    struct sync_state *s = arg;
    *s->out = *o;
    s->done = true;
}

int dmarc_evaluate_sync(const struct dns_config *cfg, const struct dmarc_input *in, struct dmarc_outcome *out)
{
    struct auth_sync s;
    if (auth_sync_open(&s, cfg) < 0)
        return -1;
    struct sync_state st = {out, false};
    struct dmarc_eval *e = dmarc_evaluate(&s.resolver, in, sync_done, &st);
    auth_sync_run(&s, &st.done);
    if (!st.done) {
        dmarc_evaluate_cancel(e);
        auth_sync_close(&s);
        return -1;
    }
    auth_sync_close(&s);
    return 0;
}

int dmarc_format_auth_results(const struct dmarc_outcome *o, char *out, size_t outsz)
{
    char comment[96] = "";
    if (o->has_record)
        snprintf(comment, sizeof comment, " (p=%s sp=%s dis=%s)", dmarc_policy_name(o->record.p),
                 dmarc_policy_name(o->record.sp), dmarc_policy_name(o->disposition));
    int n = snprintf(out, outsz, "dmarc=%s%s%s%s", dmarc_result_name(o->result), comment,
                     o->header_from[0] ? " header.from=" : "", o->header_from);
    if (n >= 0 && o->has_record && (size_t)n < outsz)
        n += snprintf(out + n, outsz - (size_t)n, " policy.dmarc=%s", dmarc_policy_name(o->disposition));
    return n < 0 || (size_t)n >= outsz ? -1 : n;
}

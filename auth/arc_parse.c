/* arc_parse — collecting ARC sets and the structural checks of RFC 8617 §5.2 1–3. */
#include "auth/arc.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *arc_cv_name(enum arc_cv cv)
{
    return cv == ARC_CV_PASS ? "pass" : cv == ARC_CV_FAIL ? "fail" : "none";
}

/* 1..ARC_SETS_MAX+1 from decimal digits, else 0. */
static unsigned instance_of(const char *p, size_t n)
{
    unsigned x = 0;
    if (n == 0 || n > 3)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        x = x * 10 + (unsigned)(p[i] - '0');
    }
    return x >= 1 && x <= ARC_SETS_MAX + 1 ? x : 0;
}

static bool is_fws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

unsigned arc_aar_instance(const char *v, size_t len, size_t *rest)
{
    size_t i = 0;
    while (i < len && is_fws(v[i]))
        i++;
    if (len - i < 2 || v[i] != 'i')
        return 0;
    i++;
    while (i < len && is_fws(v[i]))
        i++;
    if (i >= len || v[i++] != '=')
        return 0;
    while (i < len && is_fws(v[i]))
        i++;
    size_t a = i;
    while (i < len && v[i] >= '0' && v[i] <= '9')
        i++;
    unsigned n = instance_of(v + a, i - a);
    while (i < len && is_fws(v[i]))
        i++;
    if (!n || i >= len || v[i] != ';')
        return 0;
    if (rest)
        *rest = i + 1;
    return n;
}

/* Parse an AMS or AS field's tag list; its instance, or 0 with a reason. */
static unsigned tagged(const struct dkim_field *f, struct dkim_taglist *tl, size_t *off,
                       char *d, char *s, char *why, size_t whysz)
{
    char err[128];
    *off = f->name_len;
    while (*off < f->len && f->start[*off] != ':')
        (*off)++;
    (*off)++;
    if (*off > f->len || dkim_tags_parse(f->start + *off, f->len - *off, tl, err, sizeof err) < 0) {
        snprintf(why, whysz, "%.*s is malformed: %s", (int)f->name_len, f->start, *off > f->len ? "no colon" : err);
        return 0;
    }
    const struct dkim_tag *t = dkim_tags_get(tl, "i");
    unsigned n = t ? instance_of(t->value, t->value_len) : 0;
    if (!n) {
        snprintf(why, whysz, "%.*s has no valid i= instance", (int)f->name_len, f->start);
        return 0;
    }
    const struct dkim_tag *td = dkim_tags_get(tl, "d"), *ts = dkim_tags_get(tl, "s");
    if (!td || !ts || dkim_tag_copy(td, d, 256, true) < 0 || dkim_tag_copy(ts, s, 64, true) < 0) {
        snprintf(why, whysz, "%.*s i=%u has no usable d= or s=", (int)f->name_len, f->start, n);
        return 0;
    }
    return n;
}

enum arc_cv arc_collect(const struct dkim_header *h, struct arc_chain *c, char *why, size_t whysz)
{
    /* seen[k]: which of AAR(1), AMS(2), AS(4) instance k+1 has */
    unsigned char seen[ARC_SETS_MAX + 1] = { 0 };
    unsigned maxi = 0;
    bool any = false;
    memset(c, 0, sizeof *c);
    why[0] = '\0';
    for (size_t i = 0; i < h->n; i++) {
        const struct dkim_field *f = &h->fields[i];
        int kind = dkim_field_is(f, "ARC-Authentication-Results") ? 1 :
                   dkim_field_is(f, "ARC-Message-Signature") ? 2 : dkim_field_is(f, "ARC-Seal") ? 4 : 0;
        if (!kind)
            continue;
        any = true;
        struct arc_set tmp;
        unsigned n;
        if (kind == 1) {
            size_t off = f->name_len, rest = 0;
            while (off < f->len && f->start[off] != ':')
                off++;
            off++;
            n = off <= f->len ? arc_aar_instance(f->start + off, f->len - off, &rest) : 0;
            if (!n) {
                snprintf(why, whysz, "ARC-Authentication-Results has no valid i= instance");
                return ARC_CV_FAIL;
            }
            tmp.aar_value = f->start + off + rest;
            tmp.aar_len = f->len - off - rest;
        } else if (kind == 2) {
            n = tagged(f, &tmp.ams_tags, &tmp.ams_off, tmp.ams_domain, tmp.ams_selector, why, whysz);
        } else {
            n = tagged(f, &tmp.as_tags, &tmp.as_off, tmp.as_domain, tmp.as_selector, why, whysz);
        }
        if (!n)
            return ARC_CV_FAIL;
        if (n > ARC_SETS_MAX) {
            snprintf(why, whysz, "more than %d ARC sets", ARC_SETS_MAX);
            return ARC_CV_FAIL;
        }
        if (seen[n - 1] & kind) {
            snprintf(why, whysz, "ARC set i=%u has two %.*s fields", n, (int)f->name_len, f->start);
            return ARC_CV_FAIL;
        }
        seen[n - 1] |= (unsigned char)kind;
        struct arc_set *s = &c->sets[n - 1];
        s->instance = n;
        if (kind == 1) {
            s->aar = i;
            s->aar_value = tmp.aar_value;
            s->aar_len = tmp.aar_len;
        } else if (kind == 2) {
            s->ams = i;
            s->ams_tags = tmp.ams_tags;
            s->ams_off = tmp.ams_off;
            memcpy(s->ams_domain, tmp.ams_domain, sizeof s->ams_domain);
            memcpy(s->ams_selector, tmp.ams_selector, sizeof s->ams_selector);
        } else {
            s->as = i;
            s->as_tags = tmp.as_tags;
            s->as_off = tmp.as_off;
            memcpy(s->as_domain, tmp.as_domain, sizeof s->as_domain);
            memcpy(s->as_selector, tmp.as_selector, sizeof s->as_selector);
        }
        if (n > maxi)
            maxi = n;
    }
    if (!any)
        return ARC_CV_NONE;
    c->n = maxi;
    for (unsigned k = 0; k < maxi; k++) {
        if (seen[k] != 7) {
            snprintf(why, whysz, "ARC set i=%u is %s", k + 1, seen[k] ? "incomplete" : "missing");
            return ARC_CV_FAIL;
        }
    }
    /* Step 2 before step 3's cv rules: a newest seal that says fail ends it. */
    for (unsigned k = maxi; k-- > 0;) {
        struct arc_set *s = &c->sets[k];
        const struct dkim_tag *t = dkim_tags_get(&s->as_tags, "cv");
        char v[8];
        if (!t || dkim_tag_copy(t, v, sizeof v, true) < 0) {
            snprintf(why, whysz, "ARC-Seal i=%u has no valid cv=", k + 1);
            return ARC_CV_FAIL;
        }
        s->cv = !strcasecmp(v, "pass") ? ARC_CV_PASS : !strcasecmp(v, "fail") ? ARC_CV_FAIL :
                !strcasecmp(v, "none") ? ARC_CV_NONE : (enum arc_cv)-1;
        if ((int)s->cv < 0) {
            snprintf(why, whysz, "ARC-Seal i=%u has unknown cv=%s", k + 1, v);
            return ARC_CV_FAIL;
        }
        if (s->cv == ARC_CV_FAIL) {
            snprintf(why, whysz, "ARC-Seal i=%u says cv=fail", k + 1);
            return ARC_CV_FAIL;
        }
        if (s->cv != (k == 0 ? ARC_CV_NONE : ARC_CV_PASS)) {
            snprintf(why, whysz, "ARC-Seal i=%u has cv=%s; RFC 8617 requires %s", k + 1, v, k == 0 ? "none" : "pass");
            return ARC_CV_FAIL;
        }
        if (dkim_tags_get(&s->as_tags, "h")) {
            snprintf(why, whysz, "ARC-Seal i=%u has an h= tag", k + 1);
            return ARC_CV_FAIL;
        }
    }
    return ARC_CV_PASS;
}

unsigned arc_max_instance(const struct dkim_header *h)
{
    unsigned maxi = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct dkim_field *f = &h->fields[i];
        bool aar = dkim_field_is(f, "ARC-Authentication-Results");
        if (!aar && !dkim_field_is(f, "ARC-Message-Signature") && !dkim_field_is(f, "ARC-Seal"))
            continue;
        const char *colon = memchr(f->start, ':', f->len);
        if (!colon)
            continue;
        const char *v = colon + 1;
        size_t vlen = f->len - (size_t)(v - f->start);
        unsigned n = 0;
        if (aar) {
            n = arc_aar_instance(v, vlen, NULL);
        } else {
            struct dkim_taglist tl;
            char err[64];
            const struct dkim_tag *t;
            if (dkim_tags_parse(v, vlen, &tl, err, sizeof err) == 0 && (t = dkim_tags_get(&tl, "i")))
                n = instance_of(t->value, t->value_len);
        }
        if (n > maxi)
            maxi = n;
    }
    return maxi;
}

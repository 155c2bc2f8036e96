/* scheduler — see scheduler.h. Two chained hash tables (messages by ID,
   destinations by name) and one binary min-heap of job pointers; each job
   remembers its heap slot so a move or removal is O(log n). */
#include "queue/scheduler.h"
#include "lib/buf.h"

#include <stdlib.h>
#include <string.h>

#define NOT_IN_HEAP SIZE_MAX

struct sched_dest {
    char name[SCHED_DEST_MAX + 1];
    int64_t down_until;
    unsigned pass_gen, pass_count;
    struct sched_dest *next;
};

struct sched_msg;

struct sched_job {
    struct sched_msg *msg;
    struct sched_dest *dest;
    int64_t due;
    size_t heap_idx;
};

struct sched_msg {
    char id[QID_LEN + 1];
    bool held;
    struct sched_job **jobs;
    size_t njobs;
    struct sched_msg *next;
};

struct sched {
    struct sched_params p;
    struct sched_msg **msgs;
    size_t msg_buckets, nmsgs;
    struct sched_dest **dests;
    size_t dest_buckets, ndests;
    struct sched_job **heap;
    size_t heap_len, heap_cap;
    size_t njobs;
    unsigned pass_gen;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* ---- heap ---- */

static void heap_set(struct sched *s, size_t i, struct sched_job *j)
{
    s->heap[i] = j;
    j->heap_idx = i;
}

static void sift_up(struct sched *s, size_t i)
{
    struct sched_job *j = s->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (s->heap[parent]->due <= j->due)
            break;
        heap_set(s, i, s->heap[parent]);
        i = parent;
    }
    heap_set(s, i, j);
}

static void sift_down(struct sched *s, size_t i)
{
    struct sched_job *j = s->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_len)
            break;
        if (c + 1 < s->heap_len && s->heap[c + 1]->due < s->heap[c]->due)
            c++;
        if (s->heap[c]->due >= j->due)
            break;
        heap_set(s, i, s->heap[c]);
        i = c;
    }
    heap_set(s, i, j);
}

static int heap_push(struct sched *s, struct sched_job *j)
{
    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        struct sched_job **h = realloc(s->heap, cap * sizeof *h);
        if (!h)
            return -1;
        s->heap = h;
        s->heap_cap = cap;
    }
    heap_set(s, s->heap_len++, j);
    sift_up(s, s->heap_len - 1);
    return 0;
}

static void heap_remove(struct sched *s, struct sched_job *j)
{
    size_t i = j->heap_idx;
    if (i == NOT_IN_HEAP)
        return;
    j->heap_idx = NOT_IN_HEAP;
    struct sched_job *last = s->heap[--s->heap_len];
    if (i == s->heap_len)
        return;
    heap_set(s, i, last);
    sift_down(s, i);
    sift_up(s, last->heap_idx);
}

/* Re-key a job; it joins the heap if it was out (and its message is not held). */
static int job_set_due(struct sched *s, struct sched_job *j, int64_t due)
{
    j->due = due;
    if (j->msg->held) {
        heap_remove(s, j);
        return 0;
    }
    if (j->heap_idx == NOT_IN_HEAP)
        return heap_push(s, j);
    sift_down(s, j->heap_idx);
    sift_up(s, j->heap_idx);
    return 0;
}

/* ---- hash tables ---- */

static int grow_msgs(struct sched *s)
{
    size_t nb = s->msg_buckets ? s->msg_buckets * 2 : 1024;
    struct sched_msg **t = calloc(nb, sizeof *t);
    if (!t)
        return -1;
    for (size_t b = 0; b < s->msg_buckets; b++) {
        for (struct sched_msg *m = s->msgs[b], *next; m; m = next) {
            next = m->next;
            size_t k = hash_str(m->id) & (nb - 1);
            m->next = t[k];
            t[k] = m;
        }
    }
    free(s->msgs);
    s->msgs = t;
    s->msg_buckets = nb;
    return 0;
}

static struct sched_msg *find_msg(const struct sched *s, const char *id)
{
    if (!s->msg_buckets)
        return NULL;
    for (struct sched_msg *m = s->msgs[hash_str(id) & (s->msg_buckets - 1)]; m; m = m->next)
        if (!strcmp(m->id, id))
            return m;
    return NULL;
}

static struct sched_msg *get_msg(struct sched *s, const char *id)
{
    struct sched_msg *m = find_msg(s, id);
    if (m)
        return m;
    if (strlen(id) > QID_LEN)
        return NULL;
    if (s->nmsgs >= s->msg_buckets && grow_msgs(s) < 0)
        return NULL;
    if (!(m = calloc(1, sizeof *m)))
        return NULL;
    strcpy(m->id, id);
    size_t k = hash_str(id) & (s->msg_buckets - 1);
    m->next = s->msgs[k];
    s->msgs[k] = m;
    s->nmsgs++;
    return m;
}

static void unlink_msg(struct sched *s, struct sched_msg *m)
{
    struct sched_msg **pp = &s->msgs[hash_str(m->id) & (s->msg_buckets - 1)];
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (*pp)
        *pp = m->next;
    s->nmsgs--;
    free(m->jobs);
    free(m);
}

static int grow_dests(struct sched *s)
{
    size_t nb = s->dest_buckets ? s->dest_buckets * 2 : 256;
    struct sched_dest **t = calloc(nb, sizeof *t);
    if (!t)
        return -1;
    for (size_t b = 0; b < s->dest_buckets; b++) {
        for (struct sched_dest *d = s->dests[b], *next; d; d = next) {
            next = d->next;
            size_t k = hash_str(d->name) & (nb - 1);
            d->next = t[k];
            t[k] = d;
        }
    }
    free(s->dests);
    s->dests = t;
    s->dest_buckets = nb;
    return 0;
}

static struct sched_dest *find_dest(const struct sched *s, const char *name)
{
    if (!s->dest_buckets)
        return NULL;
    for (struct sched_dest *d = s->dests[hash_str(name) & (s->dest_buckets - 1)]; d; d = d->next)
        if (!strcmp(d->name, name))
            return d;
    return NULL;
}

/* Destinations are kept for the life of the index: there are few of them
   compared with messages, and their down marks must outlive their jobs. */
static struct sched_dest *get_dest(struct sched *s, const char *name)
{
    struct sched_dest *d = find_dest(s, name);
    if (d)
        return d;
    if (strlen(name) > SCHED_DEST_MAX)
        return NULL;
    if (s->ndests >= s->dest_buckets && grow_dests(s) < 0)
        return NULL;
    if (!(d = calloc(1, sizeof *d)))
        return NULL;
    strcpy(d->name, name);
    size_t k = hash_str(name) & (s->dest_buckets - 1);
    d->next = s->dests[k];
    s->dests[k] = d;
    s->ndests++;
    return d;
}

/* ---- public ---- */

struct sched *sched_new(const struct sched_params *p)
{
    struct sched *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = *p;
    if (s->p.dest_concurrency == 0)
        s->p.dest_concurrency = 1;
    if (grow_msgs(s) < 0 || grow_dests(s) < 0) {
        sched_free(s);
        return NULL;
    }
    return s;
}

void sched_free(struct sched *s)
{
    if (!s)
        return;
    for (size_t b = 0; b < s->msg_buckets; b++) {
        for (struct sched_msg *m = s->msgs[b], *next; m; m = next) {
            next = m->next;
            for (size_t i = 0; i < m->njobs; i++)
                free(m->jobs[i]);
            free(m->jobs);
            free(m);
        }
    }
    for (size_t b = 0; b < s->dest_buckets; b++) {
        for (struct sched_dest *d = s->dests[b], *next; d; d = next) {
            next = d->next;
            free(d);
        }
    }
    free(s->msgs);
    free(s->dests);
    free(s->heap);
    free(s);
}

static struct sched_job *find_job(const struct sched_msg *m, const char *dest)
{
    for (size_t i = 0; i < m->njobs; i++)
        if (!strcmp(m->jobs[i]->dest->name, dest))
            return m->jobs[i];
    return NULL;
}

int sched_put(struct sched *s, const char *id, const char *dest, int64_t due)
{
    struct sched_msg *m = get_msg(s, id);
    if (!m)
        return -1;
    struct sched_job *j = find_job(m, dest);
    if (j)
        return job_set_due(s, j, due);
    struct sched_dest *d = get_dest(s, dest);
    struct sched_job **jobs = d ? realloc(m->jobs, (m->njobs + 1) * sizeof *jobs) : NULL;
    if (jobs)
        m->jobs = jobs;
    j = jobs ? calloc(1, sizeof *j) : NULL;
    if (!j) {
        if (m->njobs == 0)
            unlink_msg(s, m);
        return -1;
    }
    j->msg = m;
    j->dest = d;
    j->heap_idx = NOT_IN_HEAP;
    m->jobs[m->njobs++] = j;
    s->njobs++;
    if (job_set_due(s, j, due) < 0) {
        m->njobs--;
        s->njobs--;
        free(j);
        if (m->njobs == 0)
            unlink_msg(s, m);
        return -1;
    }
    return 0;
}

void sched_remove_job(struct sched *s, const char *id, const char *dest)
{
    struct sched_msg *m = find_msg(s, id);
    if (!m)
        return;
    for (size_t i = 0; i < m->njobs; i++) {
        if (strcmp(m->jobs[i]->dest->name, dest) != 0)
            continue;
        heap_remove(s, m->jobs[i]);
        free(m->jobs[i]);
        m->jobs[i] = m->jobs[--m->njobs];
        s->njobs--;
        break;
    }
    if (m->njobs == 0)
        unlink_msg(s, m);
}

void sched_remove_msg(struct sched *s, const char *id)
{
    struct sched_msg *m = find_msg(s, id);
    if (!m)
        return;
    for (size_t i = 0; i < m->njobs; i++) {
        heap_remove(s, m->jobs[i]);
        free(m->jobs[i]);
    }
    s->njobs -= m->njobs;
    unlink_msg(s, m);
}

bool sched_has_msg(const struct sched *s, const char *id)
{
    return find_msg(s, id) != NULL;
}

size_t sched_msg_count(const struct sched *s)
{
    return s->nmsgs;
}

size_t sched_job_count(const struct sched *s)
{
    return s->njobs;
}

int sched_hold(struct sched *s, const char *id, bool hold, int64_t now)
{
    struct sched_msg *m = find_msg(s, id);
    if (!m)
        return -1;
    m->held = hold;
    int r = 0;
    for (size_t i = 0; i < m->njobs; i++) {
        if (hold)
            heap_remove(s, m->jobs[i]);
        else if (job_set_due(s, m->jobs[i], now) < 0)
            r = -1;
    }
    return r;
}

size_t sched_flush(struct sched *s, const char *id, int64_t now)
{
    size_t n = 0;
    if (id) {
        struct sched_msg *m = find_msg(s, id);
        for (size_t i = 0; m && !m->held && i < m->njobs; i++) {
            m->jobs[i]->dest->down_until = 0;
            if (job_set_due(s, m->jobs[i], now) == 0)
                n++;
        }
        return n;
    }
    for (size_t b = 0; b < s->dest_buckets; b++)
        for (struct sched_dest *d = s->dests[b]; d; d = d->next)
            d->down_until = 0;
    /* Every job in the heap becomes due now: equal keys keep the heap valid
       without any sifting. In-flight jobs are re-armed by their caller. */
    for (size_t i = 0; i < s->heap_len; i++, n++)
        s->heap[i]->due = now;
    return n;
}

int sched_dest_down(struct sched *s, const char *dest, int64_t until)
{
    struct sched_dest *d = get_dest(s, dest);
    if (!d)
        return -1;
    d->down_until = until;
    return 0;
}

void sched_dest_up(struct sched *s, const char *dest)
{
    struct sched_dest *d = find_dest(s, dest);
    if (d)
        d->down_until = 0;
}

int64_t sched_dest_down_until(const struct sched *s, const char *dest)
{
    const struct sched_dest *d = find_dest(s, dest);
    return d ? d->down_until : 0;
}

int64_t sched_next_due(const struct sched *s)
{
    return s->heap_len ? s->heap[0]->due : SCHED_NEVER;
}

size_t sched_pop_due(struct sched *s, int64_t now, struct sched_due *out, size_t max)
{
    size_t n = 0;
    /* Jobs over their destination's share of this pass are set aside and put
       back after it, still due: popping them again here would loop. */
    struct sched_job **aside = NULL;
    size_t naside = 0, aside_cap = 0;
    s->pass_gen++;
    while (n < max && s->heap_len && s->heap[0]->due <= now) {
        struct sched_job *j = s->heap[0];
        struct sched_dest *d = j->dest;
        if (d->down_until > now) {
            /* The destination deferred recently: wait for its retry time. */
            j->due = d->down_until;
            sift_down(s, 0);
            continue;
        }
        if (d->pass_gen != s->pass_gen) {
            d->pass_gen = s->pass_gen;
            d->pass_count = 0;
        }
        heap_remove(s, j);
        if (d->pass_count >= s->p.dest_concurrency) {
            if (naside == aside_cap) {
                size_t cap = aside_cap ? aside_cap * 2 : 16;
                struct sched_job **a = realloc(aside, cap * sizeof *a);
                if (!a) {
                    heap_push(s, j);    /* the slot it just left: cannot fail */
                    break;
                }
                aside = a;
                aside_cap = cap;
            }
            aside[naside++] = j;
            continue;
        }
        d->pass_count++;
        str_copy(out[n].id, j->msg->id, sizeof out[n].id);
        str_copy(out[n].dest, d->name, sizeof out[n].dest);
        n++;
    }
    for (size_t i = 0; i < naside; i++)
        heap_push(s, aside[i]);     /* slots they left: cannot fail */
    free(aside);
    return n;
}

int64_t sched_backoff(const struct sched_params *p, unsigned attempts, uint32_t rnd)
{
    int64_t d = p->retry_min_ms;
    for (unsigned i = 1; i < attempts && d < p->retry_max_ms; i++)
        d *= 2;
    if (d > p->retry_max_ms)
        d = p->retry_max_ms;
    /* ±10 %: spreads the retries of messages that failed together (a
       destination that was down) so they do not return as one burst. */
    int64_t span = d / 5;
    if (span > 0)
        d += (int64_t)(rnd % (uint64_t)(span + 1)) - span / 2;
    if (d < p->retry_min_ms)
        d = p->retry_min_ms;
    if (d > p->retry_max_ms)
        d = p->retry_max_ms;
    return d;
}

int64_t sched_due_from_wall(time_t next, time_t now_wall, int64_t now_mono, int64_t horizon_ms)
{
    if (next <= now_wall)
        return now_mono;
    int64_t delta = (int64_t)(next - now_wall);
    if (delta > horizon_ms / 1000)
        return now_mono + horizon_ms;
    return now_mono + delta * 1000;
}

enum sched_age sched_age_check(time_t arrival, time_t now_wall, unsigned long long lifetime,
                               unsigned long long warn_after, bool warned)
{
    unsigned long long age = now_wall > arrival ? (unsigned long long)(now_wall - arrival) : 0;
    if (age >= lifetime)
        return SCHED_AGE_EXPIRED;
    if (warn_after && !warned && age >= warn_after)
        return SCHED_AGE_WARN;
    return SCHED_AGE_YOUNG;
}

/* ratelimit — see ratelimit.h. */
#include "lib/ratelimit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct rl_entry {
    char key[RATELIMIT_KEY_MAX + 1];
    double level;       /* events in the bucket at time `at` */
    double at;
    int32_t next;       /* chain in the bucket list, or the free list; -1 ends */
    bool used;
};

struct ratelimit {
    double limit, rate;         /* rate: drained per second */
    size_t max_keys, count, nbuckets;
    int32_t free_head;
    int32_t *buckets;
    struct rl_entry *entries;
};

static uint32_t hash_key(const char *k)
{
    uint32_t h = 2166136261u;      /* FNV-1a */
    for (; *k; k++) {
        h ^= (unsigned char)*k;
        h *= 16777619u;
    }
    return h;
}

struct ratelimit *ratelimit_new(size_t max_keys, double limit, double window)
{
    if (max_keys == 0 || max_keys > INT32_MAX / 4 || !(limit > 0) || !(window > 0))
        return NULL;
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->limit = limit;
    rl->rate = limit / window;
    rl->max_keys = max_keys;
    rl->nbuckets = 1;
    while (rl->nbuckets < max_keys * 2)
        rl->nbuckets <<= 1;
    rl->buckets = malloc(rl->nbuckets * sizeof *rl->buckets);
    rl->entries = calloc(max_keys, sizeof *rl->entries);
    if (!rl->buckets || !rl->entries) {
        ratelimit_free(rl);
        return NULL;
    }
    for (size_t i = 0; i < rl->nbuckets; i++)
        rl->buckets[i] = -1;
    for (size_t i = 0; i < max_keys; i++)
        rl->entries[i].next = i + 1 < max_keys ? (int32_t)(i + 1) : -1;
    rl->free_head = 0;
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    free(rl->buckets);
    free(rl->entries);
    free(rl);
}

/* The level of an entry drained up to now. A clock that went backwards drains nothing. */
static double level_at(const struct ratelimit *rl, const struct rl_entry *e, double now)
{
    double dt = now - e->at;
    if (dt <= 0)
        return e->level;
    double l = e->level - dt * rl->rate;
    return l > 0 ? l : 0;
}

static int32_t find(const struct ratelimit *rl, const char *key, int32_t **link)
{
    int32_t *p = &rl->buckets[hash_key(key) & (rl->nbuckets - 1)];
    while (*p >= 0) {
        if (strcmp(rl->entries[*p].key, key) == 0) {
            if (link)
                *link = p;
            return *p;
        }
        p = &rl->entries[*p].next;
    }
    return -1;
}

static void unlink_entry(struct ratelimit *rl, int32_t idx)
{
    int32_t *link;
    if (find(rl, rl->entries[idx].key, &link) != idx)
        return;
    *link = rl->entries[idx].next;
    rl->entries[idx].used = false;
    rl->entries[idx].next = rl->free_head;
    rl->free_head = idx;
    rl->count--;
}

/* Make room by forgetting the key that has drained the most. O(max_keys), but only
   when the table is full, which takes max_keys distinct keys inside one window. */
static void evict_one(struct ratelimit *rl, double now)
{
    int32_t best = -1;
    double best_level = 0;
    for (size_t i = 0; i < rl->max_keys; i++) {
        if (!rl->entries[i].used)
            continue;
        double l = level_at(rl, &rl->entries[i], now);
        if (best < 0 || l < best_level) {
            best = (int32_t)i;
            best_level = l;
            if (l == 0)
                break;
        }
    }
    if (best >= 0)
        unlink_entry(rl, best);
}

static void bounded_key(const char *key, char out[RATELIMIT_KEY_MAX + 1])
{
    size_t n = strlen(key);
    if (n > RATELIMIT_KEY_MAX)
        n = RATELIMIT_KEY_MAX;
    memcpy(out, key, n);
    out[n] = '\0';
}

bool ratelimit_hit(struct ratelimit *rl, const char *key_in, double now)
{
    char key[RATELIMIT_KEY_MAX + 1];
    bounded_key(key_in, key);
    int32_t idx = find(rl, key, NULL);
    if (idx < 0) {
        if (rl->free_head < 0)
            evict_one(rl, now);
        idx = rl->free_head;
        struct rl_entry *e = &rl->entries[idx];
        rl->free_head = e->next;
        memcpy(e->key, key, sizeof e->key);
        e->level = 0;
        e->at = now;
        e->used = true;
        uint32_t b = hash_key(key) & (rl->nbuckets - 1);
        e->next = rl->buckets[b];
        rl->buckets[b] = idx;
        rl->count++;
    }
    struct rl_entry *e = &rl->entries[idx];
    double l = level_at(rl, e, now);
    if (now > e->at)
        e->at = now;
    e->level = l;
    if (l + 1 > rl->limit)
        return false;
    e->level = l + 1;
    return true;
}

double ratelimit_level(const struct ratelimit *rl, const char *key_in, double now)
{
    char key[RATELIMIT_KEY_MAX + 1];
    bounded_key(key_in, key);
    int32_t idx = find(rl, key, NULL);
    return idx < 0 ? 0 : level_at(rl, &rl->entries[idx], now);
}

bool ratelimit_exceeded(const struct ratelimit *rl, const char *key, double now)
{
    return ratelimit_level(rl, key, now) + 1 > rl->limit;
}

double ratelimit_wait(const struct ratelimit *rl, const char *key, double now)
{
    double over = ratelimit_level(rl, key, now) + 1 - rl->limit;
    return over > 0 ? over / rl->rate : 0;
}

void ratelimit_forget(struct ratelimit *rl, const char *key_in)
{
    char key[RATELIMIT_KEY_MAX + 1];
    bounded_key(key_in, key);
    int32_t idx = find(rl, key, NULL);
    if (idx >= 0)
        unlink_entry(rl, idx);
}

size_t ratelimit_count(const struct ratelimit *rl)
{
    return rl->count;
}

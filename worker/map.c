/*
 * Hash map: FNV-1a hashing, chaining, doubling at load factor 1.
 */

#include <stdlib.h>
#include <string.h>

#include "map.h"


/* 64-bit FNV-1a folded to the 32 bits an entry keeps */
static uint32_t
wh_map_hash(const void *key, size_t klen)
{
    size_t                i;
    uint64_t              h = 0xcbf29ce484222325ULL;
    const unsigned char  *p = key;

    for (i = 0; i < klen; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }

    return (uint32_t) (h ^ (h >> 32));
}


void
wh_map_free(wh_map_t *m)
{
    size_t           i;
    wh_map_entry_t  *e, *next;

    for (i = 0; i < m->nbuckets; i++) {
        for (e = m->buckets[i]; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }

    free(m->buckets);
    memset(m, 0, sizeof(wh_map_t));
}


static wh_map_entry_t **
wh_map_find(wh_map_t *m, const void *key, size_t klen, uint32_t h)
{
    wh_map_entry_t  **pe;

    if (m->nbuckets == 0) {
        return NULL;
    }

    for (pe = &m->buckets[h & (m->nbuckets - 1)]; *pe != NULL;
         pe = &(*pe)->next)
    {
        if ((*pe)->hash == h && (*pe)->klen == klen
            && memcmp((*pe)->key, key, klen) == 0)
        {
            return pe;
        }
    }

    return NULL;
}


void *
wh_map_get(wh_map_t *m, const void *key, size_t klen)
{
    wh_map_entry_t  **pe;

    pe = wh_map_find(m, key, klen, wh_map_hash(key, klen));

    return pe ? (*pe)->value : NULL;
}


static int
wh_map_grow(wh_map_t *m)
{
    size_t            i, n;
    wh_map_entry_t   *e, *next, **b;

    n = m->nbuckets ? m->nbuckets * 2 : 64;
    b = calloc(n, sizeof(wh_map_entry_t *));

    if (b == NULL) {
        return -1;
    }

    for (i = 0; i < m->nbuckets; i++) {
        for (e = m->buckets[i]; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }

    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;

    return 0;
}


wh_map_entry_t *
wh_map_put(wh_map_t *m, const void *key, size_t klen, void *value)
{
    uint32_t          h;
    wh_map_entry_t   *e, **pe;

    if (klen > UINT32_MAX) {
        return NULL;
    }

    h = wh_map_hash(key, klen);
    pe = wh_map_find(m, key, klen, h);

    if (pe != NULL) {
        (*pe)->value = value;
        return *pe;
    }

    if (m->count >= m->nbuckets && wh_map_grow(m) != 0) {
        return NULL;
    }

    e = malloc(sizeof(wh_map_entry_t) + klen);

    if (e == NULL) {
        return NULL;
    }

    e->hash = h;
    e->value = value;
    e->klen = (uint32_t) klen;
    memcpy(e->key, key, klen);
    e->next = m->buckets[h & (m->nbuckets - 1)];
    m->buckets[h & (m->nbuckets - 1)] = e;
    m->count++;

    return e;
}


void *
wh_map_del(wh_map_t *m, const void *key, size_t klen)
{
    void             *v;
    wh_map_entry_t   *e, **pe;

    pe = wh_map_find(m, key, klen, wh_map_hash(key, klen));

    if (pe == NULL) {
        return NULL;
    }

    e = *pe;
    *pe = e->next;
    v = e->value;
    free(e);
    m->count--;

    return v;
}


wh_map_entry_t *
wh_map_next(wh_map_t *m, wh_map_iter_t *it)
{
    wh_map_entry_t  *e;

    /* it->entry is the next entry to return, found before the caller
     * could free the current one */
    while (it->entry == NULL) {
        if (it->bucket >= m->nbuckets) {
            return NULL;
        }

        it->entry = m->buckets[it->bucket++];
    }

    e = it->entry;
    it->entry = e->next;

    return e;
}

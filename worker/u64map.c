/*
 * The map of 64-bit keys: linear probing at a load of at most a half,
 * deletion by shifting the rest of the run back (no tombstones, so a
 * map that keeps changing never fills with them).
 */

#include <stdlib.h>
#include <string.h>

#include "u64map.h"


#define WH_U64MAP_MIN  64


void
wh_u64map_init(wh_u64map_t *m, size_t max)
{
    memset(m, 0, sizeof(wh_u64map_t));
    m->max = max;
}


void
wh_u64map_free(wh_u64map_t *m)
{
    free(m->keys);
    free(m->values);
    m->keys = NULL;
    m->values = NULL;
    m->nslots = 0;
    m->count = 0;
}


static uint64_t
wh_u64map_key(uint64_t key)
{
    return key ? key : 1;
}


/* where key's run starts: mixed once more, so that keys that differ
 * only in high bits do not pile up in one run */
static size_t
wh_u64map_home(const wh_u64map_t *m, uint64_t key)
{
    return (size_t) ((key * 0x9e3779b97f4a7c15ULL) >> 17)
           & (m->nslots - 1);
}


/* the slot of key, or the empty one where it would go */
static size_t
wh_u64map_slot(const wh_u64map_t *m, uint64_t key)
{
    size_t  i, mask = m->nslots - 1;

    i = wh_u64map_home(m, key);

    while (m->keys[i] != 0 && m->keys[i] != key) {
        i = (i + 1) & mask;
    }

    return i;
}


int
wh_u64map_get(const wh_u64map_t *m, uint64_t key, uint32_t *value)
{
    size_t  i;

    key = wh_u64map_key(key);

    if (m->nslots == 0) {
        return 0;
    }

    i = wh_u64map_slot(m, key);

    if (m->keys[i] != key) {
        return 0;
    }

    *value = m->values[i];

    return 1;
}


static int
wh_u64map_grow(wh_u64map_t *m)
{
    size_t     i, j, n;
    uint64_t  *keys = m->keys;
    uint32_t  *values = m->values;
    size_t     nold = m->nslots;

    n = nold ? nold * 2 : WH_U64MAP_MIN;
    m->keys = calloc(n, sizeof(uint64_t));
    m->values = malloc(n * sizeof(uint32_t));

    if (m->keys == NULL || m->values == NULL) {
        free(m->keys);
        free(m->values);
        m->keys = keys;
        m->values = values;
        return -1;
    }

    m->nslots = n;

    for (i = 0; i < nold; i++) {
        if (keys[i] != 0) {
            j = wh_u64map_slot(m, keys[i]);
            m->keys[j] = keys[i];
            m->values[j] = values[i];
        }
    }

    free(keys);
    free(values);

    return 0;
}


int
wh_u64map_put(wh_u64map_t *m, uint64_t key, uint32_t value)
{
    size_t  i;

    key = wh_u64map_key(key);

    if (m->nslots) {
        i = wh_u64map_slot(m, key);

        if (m->keys[i] == key) {
            m->values[i] = value;
            return 0;
        }
    }

    if (m->count >= m->max) {
        return -1;
    }

    if ((m->count + 1) * 2 > m->nslots && wh_u64map_grow(m) != 0) {
        return -1;
    }

    i = wh_u64map_slot(m, key);
    m->keys[i] = key;
    m->values[i] = value;
    m->count++;

    return 0;
}


void
wh_u64map_del(wh_u64map_t *m, uint64_t key)
{
    size_t  i, j, home, mask;

    key = wh_u64map_key(key);

    if (m->nslots == 0) {
        return;
    }

    mask = m->nslots - 1;
    i = wh_u64map_slot(m, key);

    if (m->keys[i] != key) {
        return;
    }

    m->keys[i] = 0;
    m->count--;

    /* a key after the hole whose home is not between the hole and it
     * moves into the hole, which moves on */
    for (j = (i + 1) & mask; m->keys[j] != 0; j = (j + 1) & mask) {
        home = wh_u64map_home(m, m->keys[j]);

        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->keys[i] = m->keys[j];
            m->values[i] = m->values[j];
            m->keys[j] = 0;
            i = j;
        }
    }
}

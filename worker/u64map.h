/*
 * A map from 64-bit keys (hashes of longer ones) to 32-bit values:
 * open addressing with linear probing, 12 bytes a slot, so that
 * remembering something of every client costs 24 to 48 bytes each,
 * not a map entry with its key.  Key 0 is taken for 1.  Bounded: past
 * max keys, adding one fails.
 */

#ifndef WH_U64MAP_H
#define WH_U64MAP_H

#include <stddef.h>
#include <stdint.h>


typedef struct {
    uint64_t  *keys;            /* 0: an empty slot */
    uint32_t  *values;
    size_t     nslots;          /* a power of two, or 0 */
    size_t     count;
    size_t     max;             /* keys at most */
} wh_u64map_t;


void wh_u64map_init(wh_u64map_t *m, size_t max);
void wh_u64map_free(wh_u64map_t *m);
/* 1 and *value if key is there, else 0 */
int wh_u64map_get(const wh_u64map_t *m, uint64_t key, uint32_t *value);
/* adds or replaces: 0, or -1 out of memory or full */
int wh_u64map_put(wh_u64map_t *m, uint64_t key, uint32_t value);
void wh_u64map_del(wh_u64map_t *m, uint64_t key);

#endif /* WH_U64MAP_H */

/*
 * A chained hash map from byte strings to pointers, for channels,
 * sessions and workspaces.  Keys are copied into the entries.
 */

#ifndef WH_MAP_H
#define WH_MAP_H

#include <stddef.h>
#include <stdint.h>


typedef struct wh_map_entry_s  wh_map_entry_t;

/* one per session, client and channel: 24 bytes before the key */
struct wh_map_entry_s {
    wh_map_entry_t  *next;
    void            *value;
    uint32_t         hash;
    uint32_t         klen;
    unsigned char    key[];
};

typedef struct {
    wh_map_entry_t  **buckets;
    size_t            nbuckets;     /* a power of two, or 0 */
    size_t            count;
} wh_map_t;

typedef struct {
    size_t            bucket;
    wh_map_entry_t   *entry;
} wh_map_iter_t;


void wh_map_free(wh_map_t *m);          /* values are the caller's */
void *wh_map_get(wh_map_t *m, const void *key, size_t klen);
/* adds or replaces; the entry (its key lives as long as it), or NULL
 * on ENOMEM */
wh_map_entry_t *wh_map_put(wh_map_t *m, const void *key, size_t klen,
    void *value);
/* removes the key; returns its value or NULL */
void *wh_map_del(wh_map_t *m, const void *key, size_t klen);

/* iteration: *it zeroed first; an entry may be deleted once returned */
wh_map_entry_t *wh_map_next(wh_map_t *m, wh_map_iter_t *it);

#endif /* WH_MAP_H */

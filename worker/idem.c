/*
 * Idempotency keys of API publishes: a map for lookups, a list in
 * insertion order for the window and the bound.
 */

#include <stdlib.h>
#include <string.h>

#include "idem.h"


static void
wh_idem_unlink(wh_idem_table_t *t, wh_idem_t *e)
{
    if (e->prev) {
        e->prev->next = e->next;
    } else {
        t->oldest = e->next;
    }

    if (e->next) {
        e->next->prev = e->prev;
    } else {
        t->newest = e->prev;
    }
}


static void
wh_idem_drop(wh_idem_table_t *t, wh_idem_t *e)
{
    wh_map_del(&t->keys, e->key, e->klen);
    wh_idem_unlink(t, e);
    free(e);
}


/* expired keys go; past the bound, the oldest answered ones too (a
 * pending one is held by its publish and goes when it is answered) */
static void
wh_idem_trim(wh_idem_table_t *t, int64_t now)
{
    wh_idem_t  *e, *next;

    for (e = t->oldest; e != NULL; e = next) {
        next = e->next;

        if (e->expires_ms > now && t->keys.count < WH_IDEM_MAX) {
            return;
        }

        if (e->done) {
            wh_idem_drop(t, e);
        }
    }
}


void
wh_idem_free(wh_idem_table_t *t)
{
    wh_idem_t  *e, *next;

    for (e = t->oldest; e != NULL; e = next) {
        next = e->next;
        free(e);
    }

    wh_map_free(&t->keys);
    memset(t, 0, sizeof(wh_idem_table_t));
}


wh_idem_t *
wh_idem_begin(wh_idem_table_t *t, wh_str_t ws, wh_str_t ch, wh_str_t key,
    int64_t now, wh_idem_t **found)
{
    size_t      klen;
    wh_idem_t  *e;

    wh_idem_trim(t, now);

    klen = ws.len + 1 + ch.len + 1 + key.len;
    e = malloc(sizeof(wh_idem_t) + klen);

    if (e == NULL) {
        return NULL;
    }

    memset(e, 0, sizeof(wh_idem_t));
    memcpy(e->key, ws.data, ws.len);
    e->key[ws.len] = '\0';
    memcpy(e->key + ws.len + 1, ch.data, ch.len);
    e->key[ws.len + 1 + ch.len] = '\0';
    memcpy(e->key + ws.len + 1 + ch.len + 1, key.data, key.len);
    e->klen = klen;

    *found = wh_map_get(&t->keys, e->key, klen);

    if (*found != NULL && ((*found)->expires_ms > now || !(*found)->done)) {
        free(e);
        return *found;
    }

    if (*found != NULL) {
        wh_idem_drop(t, *found);
        *found = NULL;
    }

    if (wh_map_put(&t->keys, e->key, klen, e) == NULL) {
        free(e);
        return NULL;
    }

    e->expires_ms = now + WH_IDEM_WINDOW_MS;
    e->prev = t->newest;

    if (t->newest) {
        t->newest->next = e;
    } else {
        t->oldest = e;
    }

    t->newest = e;

    return e;
}


void
wh_idem_end(wh_idem_table_t *t, wh_idem_t *e, int ok, uint64_t id,
    const char *epoch)
{
    if (!ok) {
        wh_idem_drop(t, e);
        return;
    }

    e->done = 1;
    e->id = id;
    strncpy(e->epoch, epoch, sizeof(e->epoch) - 1);
}

/*
 * Idempotency keys of API publishes (the Idempotency-Key header): a
 * repeat of a key on the same channel within the window gets the first
 * message's id and epoch instead of a second message.
 *
 * Bounded: keys live WH_IDEM_WINDOW_MS, and past WH_IDEM_MAX keys the
 * oldest answered ones are forgotten first.  In memory only: a restart
 * of wirehubd forgets them (commands keep theirs in the store).
 */

#ifndef WH_IDEM_H
#define WH_IDEM_H

#include <stddef.h>
#include <stdint.h>

#include "wh_link.h"
#include "map.h"


#define WH_IDEM_KEY_MAX     128
#define WH_IDEM_WINDOW_MS   (10 * 60 * 1000)
#define WH_IDEM_MAX         65536

typedef struct wh_idem_s  wh_idem_t;

/* one key: pending until its publish is answered */
struct wh_idem_s {
    wh_idem_t  *prev, *next;    /* oldest first */
    int64_t     expires_ms;
    uint64_t    id;
    int         done;
    char        epoch[16];
    size_t      klen;
    char        key[];          /* ws "\0" channel "\0" key */
};

typedef struct {
    wh_map_t    keys;           /* key -> wh_idem_t */
    wh_idem_t  *oldest, *newest;
} wh_idem_table_t;


void wh_idem_free(wh_idem_table_t *t);

/* the key of a publish: *found the entry of an earlier one (done or
 * pending), else a new pending entry is made (*found NULL); returns the
 * entry, NULL on ENOMEM */
wh_idem_t *wh_idem_begin(wh_idem_table_t *t, wh_str_t ws, wh_str_t ch,
    wh_str_t key, int64_t now, wh_idem_t **found);

/* the publish of a pending entry was answered: stored as id (ok) or not
 * (the entry goes, so the key may be used again) */
void wh_idem_end(wh_idem_table_t *t, wh_idem_t *e, int ok, uint64_t id,
    const char *epoch);

#endif /* WH_IDEM_H */

/*
 * The LMDB engine's channels and history: the history store
 * (engine_lmdb_store.c), an environment of its own, apart from the
 * clients and the commands, which are synced on every commit.
 */

#include "engine_lmdb.h"


/* the history store of the engine */
static wh_store_t *
wh_lmdb_store(wh_engine_t *e)
{
    return ((wh_engine_lmdb_t *) e)->history;
}


int
wh_lmdb_chan_get(wh_etxn_t *t, wh_str_t ws, wh_str_t ch, int64_t now,
    int create, wh_chan_meta_t *meta, wh_err_t *err)
{
    return wh_store_channel(wh_lmdb_store(t->engine), wh_lmdb_htxn(t), ws,
                            ch, now, create, meta, err);
}


int
wh_lmdb_chan_append(wh_etxn_t *t, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, int64_t now, const void *text, size_t len,
    int64_t room, int64_t *growth, wh_err_t *err)
{
    return wh_store_append(wh_lmdb_store(t->engine), wh_lmdb_htxn(t), ws,
                           ch, meta, now, text, len, room, growth, err);
}


int
wh_lmdb_chan_ensure(wh_engine_t *e, wh_str_t ws, wh_str_t ch, int64_t now,
    wh_chan_meta_t *meta, wh_err_t *err)
{
    return wh_store_ensure(wh_lmdb_store(e), ws, ch, now, meta, err);
}


int
wh_lmdb_chan_meta(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, wh_err_t *err)
{
    return wh_store_meta(wh_lmdb_store(e), ws, ch, meta, err);
}


int
wh_lmdb_chan_list(wh_engine_t *e, wh_str_t ws, wh_str_t after,
    wh_chan_item_pt cb, void *ctx, wh_err_t *err)
{
    return wh_store_channels(wh_lmdb_store(e), ws, after, cb, ctx, err);
}


int
wh_lmdb_hist_read(wh_engine_t *e, wh_str_t ws, wh_str_t ch, uint64_t after,
    uint64_t up_to, size_t limit, int64_t now, wh_hist_item_pt cb,
    void *ctx, wh_hist_range_t *r, wh_err_t *err)
{
    return wh_store_read(wh_lmdb_store(e), ws, ch, after, up_to, limit, now,
                         cb, ctx, r, err);
}


int
wh_lmdb_hist_usage(wh_engine_t *e, wh_usage_pt cb, void *ctx,
    wh_err_t *err)
{
    return wh_store_usage(wh_lmdb_store(e), cb, ctx, err);
}


int
wh_lmdb_hist_expire(wh_engine_t *e, int64_t now, wh_usage_pt freed,
    void *ctx, size_t *removed, wh_err_t *err)
{
    return wh_store_expire(wh_lmdb_store(e), now, freed, ctx, removed, err);
}


int
wh_lmdb_sync_background(wh_engine_t *e, wh_err_t *err)
{
    return wh_store_sync_background(wh_lmdb_store(e), err);
}


/* both environments: a dead reader of either holds its pages */
int
wh_lmdb_check_readers(wh_engine_t *e, int *dead, wh_err_t *err)
{
    int                n;
    wh_engine_lmdb_t  *l = (wh_engine_lmdb_t *) e;

    if (wh_store_check_readers(l->state, dead, err) != 0
        || wh_store_check_readers(l->history, &n, err) != 0)
    {
        return -1;
    }

    *dead += n;

    return 0;
}


size_t
wh_lmdb_size(wh_engine_t *e)
{
    wh_engine_lmdb_t  *l = (wh_engine_lmdb_t *) e;

    return l->state->map_size + l->history->map_size;
}

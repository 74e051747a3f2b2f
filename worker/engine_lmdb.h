/*
 * The LMDB engine (engine.h) over two stores (engine_lmdb_store.h),
 * one LMDB environment per space of engine.h, under the storage
 * directory:
 *
 *   state/       synced on every commit: the databases of kv.h, which
 *                hold the records of state.h (state.h lists them); a
 *                state write's txn is a kv txn over the environment's
 *                (kv_lmdb.h)
 *   history/     MDB_NOSYNC, synced every second by a thread of its
 *                own: channels and history (engine_lmdb_store.h); a
 *                history write's txn is the MDB_txn itself
 *
 * A store of the layout before (one MDB_NOSYNC environment, data.mdb
 * in the storage directory itself) is split at start
 * (engine_lmdb_upgrade.c).
 */

#ifndef WH_ENGINE_LMDB_H
#define WH_ENGINE_LMDB_H

#include <assert.h>
#include <lmdb.h>

#include "wh_channel.h"
#include "engine.h"
#include "engine_lmdb_store.h"
#include "kv.h"


typedef struct {
    wh_engine_t   base;
    wh_store_t   *state;        /* WH_ENGINE_STATE */
    wh_store_t   *history;      /* WH_ENGINE_HISTORY */
    MDB_dbi       dbi[WH_KV_NDBS];  /* the state's, by wh_kv_db_e */
} wh_engine_lmdb_t;


/* opens both stores under dir (engine_lmdb_store.h says what the
 * arguments are; each map grows up to max_map_size on its own) and the
 * engine's databases, created if need be; an old layout is upgraded
 * first */
int wh_engine_lmdb_open(wh_engine_t **out, const char *dir,
    size_t map_size, size_t max_map_size, uint32_t hist_len,
    int64_t hist_ttl_ms, wh_log_t *log, wh_err_t *err);

/* engine_lmdb_channels.c: the channel and upkeep operations of the
 * table, over engine_lmdb_store.c */
int wh_lmdb_chan_get(wh_etxn_t *t, wh_str_t ws, wh_str_t ch, int64_t now,
    int create, wh_chan_meta_t *meta, wh_err_t *err);
int wh_lmdb_chan_append(wh_etxn_t *t, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, int64_t now, const void *text, size_t len,
    int64_t room, int64_t *growth, wh_err_t *err);
int wh_lmdb_chan_ensure(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    int64_t now, wh_chan_meta_t *meta, wh_err_t *err);
int wh_lmdb_chan_meta(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, wh_err_t *err);
int wh_lmdb_chan_list(wh_engine_t *e, wh_str_t ws, wh_str_t after,
    wh_chan_item_pt cb, void *ctx, wh_err_t *err);
int wh_lmdb_hist_read(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    uint64_t after, uint64_t up_to, size_t limit, int64_t now,
    wh_hist_item_pt cb, void *ctx, wh_hist_range_t *r, wh_err_t *err);
int wh_lmdb_hist_usage(wh_engine_t *e, wh_usage_pt cb, void *ctx,
    wh_err_t *err);
int wh_lmdb_hist_expire(wh_engine_t *e, int64_t now, wh_usage_pt freed,
    void *ctx, size_t *removed, wh_err_t *err);
int wh_lmdb_sync_background(wh_engine_t *e, wh_err_t *err);
int wh_lmdb_check_readers(wh_engine_t *e, int *dead, wh_err_t *err);
size_t wh_lmdb_size(wh_engine_t *e);

#define WH_LMDB_PATH_MAX  4096

/* engine_lmdb_upgrade.c: dir "/" name into path; -1 with err if it
 * does not fit */
int wh_lmdb_path(char *path, size_t size, const char *dir,
    const char *name, wh_err_t *err);

/* engine_lmdb_upgrade.c: splits a store of the one-environment layout
 * in dir into state/ and history/; 0 also when there is nothing to do */
int wh_lmdb_upgrade(const char *dir, size_t map_size, size_t max_map_size,
    wh_log_t *log, wh_err_t *err);

/* the names of the databases of each store, NULL-terminated (the
 * upgrade copies them) */
extern const char  *wh_lmdb_state_dbs[];
extern const char  *wh_lmdb_history_dbs[];

/* the MDB_txn of a history write (a state write's is a kv txn,
 * state.h): a database handle of one environment means another
 * database in the other */
static inline MDB_txn *
wh_lmdb_htxn(wh_etxn_t *t)
{
    assert(t->space == WH_ENGINE_HISTORY);

    return t->impl;
}

#endif /* WH_ENGINE_LMDB_H */

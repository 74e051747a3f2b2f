/*
 * The LMDB engine: its table, transactions (engine_lmdb_store.c grows
 * the map and retries), its opening and its figures.  The channels are
 * in engine_lmdb_channels.c, the upgrade of the one-environment layout
 * in engine_lmdb_upgrade.c; the records of the state space are
 * state_*.c's, over the kv txn of kv_lmdb.c.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine_lmdb.h"
#include "kv_lmdb.h"
#include "state.h"


typedef struct {
    wh_engine_t        *engine;
    wh_engine_space_e   space;
    wh_engine_txn_pt    fn;
    void               *ctx;
} wh_lmdb_run_t;


/* fn in the write txn of st: a state write gets a kv txn (state.h) */
static int
wh_lmdb_run(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    wh_etxn_t          t;
    wh_lmdb_run_t     *run = ctx;
    wh_kv_lmdb_txn_t   kv;

    (void) st;

    t.engine = run->engine;
    t.space = run->space;
    t.impl = txn;
    t.unchecked = 0;

    if (run->space == WH_ENGINE_STATE) {
        wh_kv_lmdb_txn(&kv, txn, ((wh_engine_lmdb_t *) run->engine)->dbi);
        t.impl = &kv.base;
    }

    return run->fn(&t, run->ctx, err);
}


static int
wh_lmdb_write(wh_engine_t *e, wh_engine_space_e space, wh_engine_txn_pt fn,
    void *ctx, wh_err_t *err)
{
    wh_lmdb_run_t      run;
    wh_engine_lmdb_t  *l = (wh_engine_lmdb_t *) e;

    run.engine = e;
    run.space = space;
    run.fn = fn;
    run.ctx = ctx;

    return wh_store_write(space == WH_ENGINE_STATE ? l->state : l->history,
                          wh_lmdb_run, &run, err);
}


/* the state environment's meta page, which its commits leave unsynced */
static int
wh_lmdb_sync(wh_engine_t *e, wh_err_t *err)
{
    return wh_store_sync(((wh_engine_lmdb_t *) e)->state, err);
}


/* syncs and closes */
static void
wh_lmdb_close(wh_engine_t *e)
{
    wh_engine_lmdb_t  *l = (wh_engine_lmdb_t *) e;

    if (l->history) {
        wh_store_close(l->history);
    }

    if (l->state) {
        wh_store_close(l->state);
    }

    free(e);
}


/* ----------------------------------------------------------- stats */


static int
wh_lmdb_stats(wh_engine_t *e, wh_engine_stats_t *out, wh_err_t *err)
{
    uint64_t           bytes;
    wh_engine_lmdb_t  *l = (wh_engine_lmdb_t *) e;

    memset(out, 0, sizeof(wh_engine_stats_t));

    wh_store_space(l->state, &out->space[WH_ENGINE_STATE]);
    wh_store_space(l->history, &out->space[WH_ENGINE_HISTORY]);

    if (wh_store_db_size(l->history, l->history->chans, &out->channels,
                         &bytes, err) != 0
        || wh_store_db_size(l->history, l->history->hist, &out->messages,
                            &out->history_bytes, err) != 0
        || wh_store_db_size(l->state, l->dbi[WH_KV_CLIENTS], &out->clients,
                            &bytes, err) != 0)
    {
        return -1;
    }

    return 0;
}


/* ------------------------------------------------------------ open */


/* a store made before the indexes of the workspace-wide listing gets
 * them; one made before the late client index, its mark */
static int
wh_lmdb_audit(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    unsigned  *created = ctx;

    if ((*created & (1u << WH_KV_CMD_WS))
        && wh_state_audit_backfill(t, err) != 0)
    {
        return -1;
    }

    return wh_state_cmd_clients_open(t, err);
}


/* the databases of the state, created if need be */
static int
wh_lmdb_open_dbs(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    unsigned           created;
    wh_engine_lmdb_t  *e = ctx;
    wh_lmdb_run_t      run;

    if (wh_kv_lmdb_open(txn, e->dbi, &created, err) != 0) {
        return -1;
    }

    run.engine = &e->base;
    run.space = WH_ENGINE_STATE;
    run.fn = wh_lmdb_audit;
    run.ctx = &created;

    return wh_lmdb_run(st, txn, &run, err);
}


static const wh_engine_ops_t  wh_lmdb_ops = {
    .kind = "lmdb",
    .write = wh_lmdb_write,
    .sync = wh_lmdb_sync,
    .close = wh_lmdb_close,
    .chan_get = wh_lmdb_chan_get,
    .chan_append = wh_lmdb_chan_append,
    .chan_ensure = wh_lmdb_chan_ensure,
    .chan_meta = wh_lmdb_chan_meta,
    .chan_list = wh_lmdb_chan_list,
    .hist_read = wh_lmdb_hist_read,
    .hist_usage = wh_lmdb_hist_usage,
    .hist_expire = wh_lmdb_hist_expire,
    .sync_background = wh_lmdb_sync_background,
    .check_readers = wh_lmdb_check_readers,
    .size = wh_lmdb_size,
    .stats = wh_lmdb_stats,
    WH_STATE_OPS
};


int
wh_engine_lmdb_open(wh_engine_t **out, const char *dir, size_t map_size,
    size_t max_map_size, uint32_t hist_len, int64_t hist_ttl_ms,
    wh_log_t *log, wh_err_t *err)
{
    char               state[WH_LMDB_PATH_MAX], hist[WH_LMDB_PATH_MAX];
    wh_engine_lmdb_t  *e;

    if (wh_lmdb_path(state, sizeof(state), dir, "state", err) != 0
        || wh_lmdb_path(hist, sizeof(hist), dir, "history", err) != 0)
    {
        return -1;
    }

    if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
        return wh_err(err, 503, "cannot create storage directory \"%s\": "
                      "%s", dir, strerror(errno));
    }

    if (wh_lmdb_upgrade(dir, map_size, max_map_size, log, err) != 0) {
        return -1;
    }

    e = calloc(1, sizeof(wh_engine_lmdb_t));

    if (e == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    e->base.ops = &wh_lmdb_ops;
    e->base.log = log;

    if (wh_store_open(&e->state, state, WH_STORE_STATE, map_size,
                      max_map_size, hist_len, hist_ttl_ms, log, err) != 0
        || wh_store_open(&e->history, hist, WH_STORE_HISTORY, map_size,
                         max_map_size, hist_len, hist_ttl_ms, log, err)
           != 0)
    {
        wh_lmdb_close(&e->base);
        return -1;
    }

    if (wh_store_write(e->state, wh_lmdb_open_dbs, e, err) != 0)
    {
        wh_lmdb_close(&e->base);
        return -1;
    }

    *out = &e->base;

    return 0;
}

/*
 * The LMDB engine: its table, transactions (engine_lmdb_store.c grows
 * the map and retries), the clients and the revocations.  The
 * channels are in engine_lmdb_channels.c, the commands in
 * engine_lmdb_commands.c, the upgrade of the one-environment layout in
 * engine_lmdb_upgrade.c.
 *
 * A stored client is a JSON object:
 *
 *   {"name":"..","client_type":"..","metadata":"<its JSON text>",
 *    "created":ms,"last_seen":ms}
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "engine_lmdb.h"


typedef struct {
    wh_engine_t        *engine;
    wh_engine_space_e   space;
    wh_engine_txn_pt    fn;
    void               *ctx;
} wh_lmdb_run_t;



static int
wh_lmdb_run(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    wh_etxn_t       t;
    wh_lmdb_run_t  *run = ctx;

    (void) st;

    t.engine = run->engine;
    t.space = run->space;
    t.impl = txn;

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


/* the state environment syncs every commit: nothing is left to do
 * unless it was opened otherwise */
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


/* ---------------------------------------------------------- clients */


/* a stored client into out; -1 if it is corrupt */
static int
wh_lmdb_client_decode(wh_str_t ws, wh_str_t id, const MDB_val *v,
    wh_client_t *out, wh_err_t *err)
{
    int            rc;
    json_t        *obj;
    wh_str_t       strs[5], *dst[5];
    json_error_t   je;

    obj = json_loadb(v->mv_data, v->mv_size, 0, &je);

    if (!json_is_object(obj)) {
        json_decref(obj);
        return wh_err(err, 503, "corrupt client %.*s: %s", (int) id.len,
                      id.data, je.text);
    }

    strs[0] = ws;
    strs[1] = id;
    strs[2] = wh_lmdb_str(obj, "name");
    strs[3] = wh_lmdb_str(obj, "client_type");
    strs[4] = wh_lmdb_str(obj, "metadata");
    dst[0] = &out->ws;
    dst[1] = &out->id;
    dst[2] = &out->name;
    dst[3] = &out->client_type;
    dst[4] = &out->metadata;
    out->created_ms = wh_lmdb_int(obj, "created");
    out->last_seen_ms = wh_lmdb_int(obj, "last_seen");

    rc = wh_strs_copy(&out->mem, dst, strs, 5);
    json_decref(obj);

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


static int
wh_lmdb_client_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_client_t *out, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[WH_LMDB_KEY_MAX];

    if (id.len == 0 || id.len > WH_CMD_CLIENT_MAX) {
        return 0;
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, id);

    rc = mdb_get(wh_lmdb_stxn(t), wh_lmdb_of(t)->clients_db, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return wh_mdb_error(rc, "reading a client", err);
    }

    if (out == NULL) {
        return 1;
    }

    return wh_lmdb_client_decode(ws, id, &v, out, err) ? -1 : 1;
}


static int
wh_lmdb_client_put(wh_etxn_t *t, const wh_client_t *cl, wh_err_t *err)
{
    int            rc;
    char          *text;
    json_t        *obj;
    MDB_val        k, v;
    wh_str_t       name, type;
    unsigned char  key[WH_LMDB_KEY_MAX];

    name = wh_lmdb_set(cl->name);
    type = wh_lmdb_set(cl->client_type);
    obj = json_pack("{s:s%,s:s%,s:I,s:I}",
                    "name", name.data, name.len,
                    "client_type", type.data, type.len,
                    "created", (json_int_t) cl->created_ms,
                    "last_seen", (json_int_t) cl->last_seen_ms);

    if (obj != NULL && cl->metadata.len
        && json_object_set_new(obj, "metadata",
                               json_stringn(cl->metadata.data,
                                            cl->metadata.len)) != 0)
    {
        json_decref(obj);
        obj = NULL;
    }

    text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);

    if (text == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, cl->ws, cl->id);
    v.mv_data = text;
    v.mv_size = strlen(text);

    rc = mdb_put(wh_lmdb_stxn(t), wh_lmdb_of(t)->clients_db, &k, &v, 0);
    free(text);

    return rc ? wh_mdb_error(rc, "writing a client", err) : 0;
}


typedef struct {
    wh_client_list_t  *out;
    wh_str_t           ws;
    size_t             limit;
} wh_lmdb_list_t;


static int
wh_lmdb_client_item(void *ctx, wh_str_t id, const MDB_val *v,
    wh_err_t *err)
{
    wh_lmdb_list_t    *l = ctx;
    wh_client_list_t  *out = l->out;

    if (out->n == l->limit) {
        out->more = 1;
        return 1;
    }

    memset(&out->items[out->n], 0, sizeof(wh_client_t));

    if (wh_lmdb_client_decode(l->ws, id, v, &out->items[out->n], err)
        != 0)
    {
        return -1;
    }

    out->n++;

    return 0;
}


static int
wh_lmdb_client_list(wh_etxn_t *t, wh_str_t ws, wh_str_t after,
    size_t limit, wh_client_list_t *out, wh_err_t *err)
{
    int              rc;
    MDB_cursor      *cur;
    wh_lmdb_list_t   l;

    memset(out, 0, sizeof(wh_client_list_t));
    out->items = calloc(limit ? limit : 1, sizeof(wh_client_t));

    if (out->items == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->clients_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    l.out = out;
    l.ws = ws;
    l.limit = limit;
    rc = wh_store_scan_names(cur, ws, after, "listing clients",
                             wh_lmdb_client_item, &l, err);
    mdb_cursor_close(cur);

    return rc;
}


static int
wh_lmdb_client_revoke(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    uint64_t before_s, wh_err_t *err)
{
    int                rc;
    MDB_val            k, v;
    unsigned char      key[WH_LMDB_KEY_MAX], val[WH_BE64_LEN];
    wh_engine_lmdb_t  *e = wh_lmdb_of(t);

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, id);

    rc = mdb_del(wh_lmdb_stxn(t), e->clients_db, &k, NULL);

    if (rc != 0) {
        return wh_mdb_error(rc, "deleting a client", err);
    }

    wh_be64_put(val, before_s);
    v.mv_data = val;
    v.mv_size = WH_BE64_LEN;

    rc = mdb_put(wh_lmdb_stxn(t), e->revoked_db, &k, &v, 0);

    return rc ? wh_mdb_error(rc, "storing a revocation", err) : 0;
}


static int
wh_lmdb_revocations(wh_etxn_t *t, wh_engine_revoked_pt cb, void *ctx,
    wh_err_t *err)
{
    int           rc;
    const char   *nul;
    MDB_val       k, v;
    wh_str_t      ws, id;
    MDB_cursor   *cur;

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->revoked_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        nul = memchr(k.mv_data, '\0', k.mv_size);

        if (v.mv_size != WH_BE64_LEN || nul == NULL) {
            continue;
        }

        ws.data = k.mv_data;
        ws.len = nul - ws.data;
        id.data = nul + 1;
        id.len = k.mv_size - ws.len - 1;

        if (cb(ctx, ws, id, wh_be64_get(v.mv_data)) != 0) {
            mdb_cursor_close(cur);
            return wh_err(err, 503, "cannot load the revocations");
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : wh_mdb_error(rc, "loading revocations",
                                               err);
}


static int
wh_lmdb_client_each(wh_etxn_t *t, wh_usage_pt cb, void *ctx, wh_err_t *err)
{
    int           rc;
    MDB_val       k, v;
    wh_str_t      ws, id;
    MDB_cursor   *cur;

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->clients_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (wh_key_unpair(k.mv_data, k.mv_size, &ws, &id) != 0) {
            continue;
        }

        if (cb(ctx, ws, id, 0) != 0) {
            mdb_cursor_close(cur);
            return wh_err(err, 503, "cannot count the clients");
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : wh_mdb_error(rc, "counting clients",
                                               err);
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
        || wh_store_db_size(l->state, l->clients_db, &out->clients, &bytes,
                            err) != 0)
    {
        return -1;
    }

    return 0;
}


/* ------------------------------------------------------------ open */


static int
wh_lmdb_open_dbs(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    int                rc;
    wh_engine_lmdb_t  *e = ctx;

    if ((rc = mdb_dbi_open(wh_lmdb_stxn(t), "clients", MDB_CREATE,
                           &e->clients_db)) != 0
        || (rc = mdb_dbi_open(wh_lmdb_stxn(t), "revoked", MDB_CREATE,
                              &e->revoked_db)) != 0)
    {
        return wh_mdb_error(rc, "opening the client databases", err);
    }

    if (wh_lmdb_cmd_open_dbs(e, wh_lmdb_stxn(t), err) != 0
        || wh_lmdb_job_open_dbs(e, wh_lmdb_stxn(t), err) != 0
        || wh_lmdb_audit_open_dbs(t, err) != 0)
    {
        return -1;
    }

    return wh_lmdb_sources_open_db(e, wh_lmdb_stxn(t), err);
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
    .client_get = wh_lmdb_client_get,
    .client_put = wh_lmdb_client_put,
    .client_list = wh_lmdb_client_list,
    .client_revoke = wh_lmdb_client_revoke,
    .revocations = wh_lmdb_revocations,
    .client_each = wh_lmdb_client_each,
    .cmd_seq = wh_lmdb_cmd_seq,
    .cmd_set_seq = wh_lmdb_cmd_set_seq,
    .cmd_get = wh_lmdb_cmd_get,
    .cmd_insert = wh_lmdb_cmd_insert,
    .cmd_update = wh_lmdb_cmd_update,
    .cmd_idem = wh_lmdb_cmd_idem,
    .cmd_list = wh_lmdb_cmd_list,
    .cmd_open = wh_lmdb_cmd_open,
    .cmd_forget_client = wh_lmdb_cmd_forget_client,

    /* fleet jobs */
    .job_get = wh_lmdb_job_get,
    .job_put = wh_lmdb_job_put,
    .job_delete = wh_lmdb_job_delete,
    .job_each = wh_lmdb_job_each,
    .exec_put = wh_lmdb_exec_put,
    .exec_each = wh_lmdb_exec_each,

    /* upstream sources */
    .source_put = wh_lmdb_source_put,
    .source_del = wh_lmdb_source_del,
    .source_each = wh_lmdb_source_each,

    /* the workspace-wide listing of commands, the retention */
    .cmd_list_ws = wh_lmdb_cmd_list_ws,
    .cmd_prune = wh_lmdb_cmd_prune,
    .cmd_delete = wh_lmdb_cmd_delete,
    .exec_delete = wh_lmdb_exec_delete
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

    /* a write txn: the databases are created if need be */
    if (wh_engine_write(&e->base, WH_ENGINE_STATE, wh_lmdb_open_dbs, e,
                        err) != 0)
    {
        wh_lmdb_close(&e->base);
        return -1;
    }

    *out = &e->base;

    return 0;
}

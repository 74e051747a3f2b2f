/*
 * The run-time upstream sources in the LMDB engine: one database of the
 * state environment, ws "\0" id -> the record sources.c wrote.
 */

#include <string.h>

#include "engine_lmdb.h"


int
wh_lmdb_sources_open_db(wh_engine_lmdb_t *e, MDB_txn *txn, wh_err_t *err)
{
    int  rc;

    rc = mdb_dbi_open(txn, "sources", MDB_CREATE, &e->sources_db);

    return rc ? wh_mdb_error(rc, "opening the sources database", err) : 0;
}


static int
wh_lmdb_source_key(unsigned char *key, wh_str_t ws, wh_str_t id,
    MDB_val *k, wh_err_t *err)
{
    if (ws.len > WH_WORKSPACE_MAX || id.len == 0 || id.len > 64) {
        return wh_err(err, 400, "invalid source key");
    }

    k->mv_data = key;
    k->mv_size = wh_key_pair(key, ws, id);

    return 0;
}


int
wh_lmdb_source_put(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_str_t record,
    wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[WH_LMDB_KEY_MAX];

    if (wh_lmdb_source_key(key, ws, id, &k, err) != 0) {
        return -1;
    }

    v.mv_data = (void *) record.data;
    v.mv_size = record.len;
    rc = mdb_put(wh_lmdb_stxn(t), wh_lmdb_of(t)->sources_db, &k, &v, 0);

    return rc ? wh_mdb_error(rc, "storing a source", err) : 0;
}


int
wh_lmdb_source_del(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_err_t *err)
{
    int            rc;
    MDB_val        k;
    unsigned char  key[WH_LMDB_KEY_MAX];

    if (wh_lmdb_source_key(key, ws, id, &k, err) != 0) {
        return -1;
    }

    rc = mdb_del(wh_lmdb_stxn(t), wh_lmdb_of(t)->sources_db, &k, NULL);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    return rc ? wh_mdb_error(rc, "deleting a source", err) : 1;
}


int
wh_lmdb_source_each(wh_etxn_t *t, wh_engine_source_pt cb, void *ctx,
    wh_err_t *err)
{
    int           rc;
    const char   *nul;
    MDB_val       k, v;
    wh_str_t      ws, id, rec;
    MDB_cursor   *cur;

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->sources_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        nul = memchr(k.mv_data, '\0', k.mv_size);

        if (nul == NULL) {
            continue;
        }

        ws.data = k.mv_data;
        ws.len = nul - ws.data;
        id.data = nul + 1;
        id.len = k.mv_size - ws.len - 1;
        rec.data = v.mv_data;
        rec.len = v.mv_size;

        if (cb(ctx, ws, id, rec) != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == 0 || rc == MDB_NOTFOUND ? 0
           : wh_mdb_error(rc, "loading the sources", err);
}

/*
 * The run-time upstream sources (state.h): one database of the state,
 * ws "\0" id -> the record sources.c wrote.
 */

#include <string.h>

#include "state.h"


typedef struct {
    wh_engine_source_pt   cb;
    void                 *ctx;
} wh_state_sources_t;


static int
wh_state_source_key(unsigned char *key, wh_str_t ws, wh_str_t id,
    size_t *klen, wh_err_t *err)
{
    if (ws.len > WH_WORKSPACE_MAX || id.len == 0 || id.len > 64) {
        return wh_err(err, 400, "invalid source key");
    }

    *klen = wh_key_pair(key, ws, id);

    return 0;
}


int
wh_state_source_put(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_str_t record, wh_err_t *err)
{
    size_t         klen = 0;
    unsigned char  key[WH_STATE_KEY_MAX];

    if (wh_state_source_key(key, ws, id, &klen, err) != 0) {
        return -1;
    }

    return wh_state_put(t, WH_KV_SOURCES, key, klen, record.data,
                        record.len, "storing a source", err);
}


int
wh_state_source_del(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_err_t *err)
{
    size_t         klen = 0;
    unsigned char  key[WH_STATE_KEY_MAX];

    if (wh_state_source_key(key, ws, id, &klen, err) != 0) {
        return -1;
    }

    return wh_state_del(t, WH_KV_SOURCES, key, klen, "deleting a source",
                        err);
}


static int
wh_state_source_one(void *ctx, const wh_kv_val_t *k, const wh_kv_val_t *v,
    wh_err_t *err)
{
    wh_str_t             ws, id, rec;
    wh_state_sources_t  *s = ctx;

    (void) err;

    if (wh_key_unpair(k->data, k->len, &ws, &id) != 0) {
        return 0;
    }

    rec.data = v->data;
    rec.len = v->len;

    /* any answer but 0 stops, without failing the load */
    return s->cb(s->ctx, ws, id, rec) != 0;
}


int
wh_state_source_each(wh_etxn_t *t, wh_engine_source_pt cb, void *ctx,
    wh_err_t *err)
{
    wh_state_sources_t  s = { cb, ctx };

    return wh_state_scan(t, WH_KV_SOURCES, NULL, 0, 0, wh_state_source_one,
                         &s, "loading the sources", err);
}


int
wh_state_source_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_str_t *record, wh_err_t *err)
{
    int           rc;
    wh_kv_val_t   v;

    rc = wh_state_get_rec(t, WH_KV_SOURCES, ws, id, 64, &v,
                          "reading a source", err);

    if (rc == 1) {
        record->data = v.data;
        record->len = v.len;
    }

    return rc;
}

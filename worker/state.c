/*
 * What the records of the state space share (state.h): the kv
 * operations with the messages the API reports, the saving of a JSON
 * record, and the walks of a database.
 */

#include <stdlib.h>
#include <string.h>

#include "state.h"


int
wh_state_fail(int rc, const char *what, wh_err_t *err)
{
    char  cause[sizeof(err->msg)];

    if (rc == WH_ENGINE_AGAIN) {
        return rc;
    }

    /* a result the caller does not expect is an error too */
    if (rc == WH_KV_NOTFOUND || rc == WH_KV_EXISTS) {
        return wh_err(err, 503, "%s: %s", what,
                      rc == WH_KV_NOTFOUND ? "no such key" : "key exists");
    }

    memcpy(cause, err->msg, sizeof(cause));

    return wh_err(err, err->status, "%s: %s", what, cause);
}


static wh_kv_val_t
wh_state_val(const void *data, size_t len)
{
    wh_kv_val_t  v;

    v.data = (void *) data;
    v.len = len;

    return v;
}


int
wh_state_get(wh_etxn_t *t, wh_kv_db_e db, const void *key, size_t klen,
    wh_kv_val_t *val, const char *what, wh_err_t *err)
{
    int          rc;
    wh_kv_val_t  k = wh_state_val(key, klen);

    rc = wh_kv_get(wh_state_kv(t), db, &k, val, err);

    if (rc == WH_KV_NOTFOUND) {
        return 0;
    }

    return rc ? wh_state_fail(rc, what, err) : 1;
}


int
wh_state_get_rec(wh_etxn_t *t, wh_kv_db_e db, wh_str_t ws, wh_str_t id,
    size_t max, wh_kv_val_t *val, const char *what, wh_err_t *err)
{
    unsigned char  key[WH_STATE_KEY_MAX];

    if (id.len == 0 || id.len > max) {
        return 0;
    }

    return wh_state_get(t, db, key, wh_key_pair(key, ws, id), val, what,
                        err);
}


int
wh_state_put(wh_etxn_t *t, wh_kv_db_e db, const void *key, size_t klen,
    const void *val, size_t vlen, const char *what, wh_err_t *err)
{
    int          rc;
    wh_kv_val_t  k = wh_state_val(key, klen), v = wh_state_val(val, vlen);

    rc = wh_kv_put(wh_state_kv(t), db, &k, &v, 0, err);

    return rc ? wh_state_fail(rc, what, err) : 0;
}


int
wh_state_del(wh_etxn_t *t, wh_kv_db_e db, const void *key, size_t klen,
    const char *what, wh_err_t *err)
{
    int          rc;
    wh_kv_val_t  k = wh_state_val(key, klen);

    rc = wh_kv_del(wh_state_kv(t), db, &k, err);

    if (rc == WH_KV_NOTFOUND) {
        return 0;
    }

    return rc ? wh_state_fail(rc, what, err) : 1;
}


int
wh_state_save(wh_etxn_t *t, wh_kv_db_e db, wh_str_t ws, wh_str_t id,
    char *text, unsigned flags, const char *what, wh_err_t *err)
{
    int            rc;
    wh_kv_val_t    k, v;
    unsigned char  key[WH_STATE_KEY_MAX];

    if (text == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    k = wh_state_val(key, wh_key_pair(key, ws, id));
    v = wh_state_val(text, strlen(text));

    rc = wh_kv_put(wh_state_kv(t), db, &k, &v, flags, err);
    free(text);

    if (rc == WH_KV_EXISTS && (flags & WH_KV_NOOVERWRITE)) {
        return rc;
    }

    return rc ? wh_state_fail(rc, what, err) : 0;
}


int
wh_state_scan(wh_etxn_t *t, wh_kv_db_e db, const void *from, size_t flen,
    size_t plen, wh_state_entry_pt cb, void *ctx, const char *what,
    wh_err_t *err)
{
    int           rc, stop = 0;
    wh_kv_val_t   k, v, p;
    wh_kv_cur_t  *cur;

    /* the store reads no key past the prefix */
    p = wh_state_val(from, plen);
    rc = wh_kv_cur_open(wh_state_kv(t), db, &p, &cur, err);

    if (rc != 0) {
        return wh_state_fail(rc, "opening a cursor", err);
    }

    k = wh_state_val(from, flen);

    for (rc = wh_kv_cur_get(cur, &k, &v, flen ? WH_KV_SET_RANGE
                                              : WH_KV_FIRST, err);
         rc == 0;
         rc = wh_kv_cur_get(cur, &k, &v, WH_KV_NEXT, err))
    {
        stop = cb(ctx, &k, &v, err);

        if (stop == WH_STATE_DELETE) {
            /* NEXT then goes to the entry after it (kv.h) */
            stop = 0;
            rc = wh_kv_cur_del(cur, err);

            if (rc != 0) {
                break;
            }

            continue;
        }

        if (stop != 0) {
            break;
        }
    }

    wh_kv_cur_close(cur);

    if (stop != 0) {
        return stop < 0 ? stop : 0;
    }

    return rc < 0 ? wh_state_fail(rc, what, err) : 0;
}


static int
wh_state_del_one(void *ctx, const wh_kv_val_t *k, const wh_kv_val_t *v,
    wh_err_t *err)
{
    size_t  *klen = ctx;

    (void) v;
    (void) err;

    return *klen && k->len != *klen ? 1 : WH_STATE_DELETE;
}


int
wh_state_del_prefix(wh_etxn_t *t, wh_kv_db_e db, const void *prefix,
    size_t plen, size_t klen, const char *what, wh_err_t *err)
{
    return wh_state_scan(t, db, prefix, plen, plen, wh_state_del_one, &klen,
                         what, err);
}

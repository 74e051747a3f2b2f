/*
 * The key-value txn of kv.h over LMDB (kv_lmdb.h): a translation of
 * values, flags and results, nothing more.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "kv_lmdb.h"
#include "engine_lmdb_store.h"


static const MDB_cursor_op  wh_kv_lmdb_ops_of[] = {
    [WH_KV_FIRST] = MDB_FIRST,
    [WH_KV_LAST] = MDB_LAST,
    [WH_KV_NEXT] = MDB_NEXT,
    [WH_KV_PREV] = MDB_PREV,
    [WH_KV_SET_RANGE] = MDB_SET_RANGE,
    [WH_KV_GET_CURRENT] = MDB_GET_CURRENT
};


/* LMDB's answer as kv.h's */
static int
wh_kv_lmdb_rc(int rc, wh_err_t *err)
{
    switch (rc) {

    case 0:
        return 0;

    case MDB_NOTFOUND:
        return WH_KV_NOTFOUND;

    case MDB_KEYEXIST:
        return WH_KV_EXISTS;

    default:
        return wh_mdb_error(rc, NULL, err);
    }
}


static int
wh_kv_lmdb_get(wh_kv_txn_t *kt, wh_kv_db_e db, const wh_kv_val_t *key,
    wh_kv_val_t *val, wh_err_t *err)
{
    int                rc;
    MDB_val            k, v;
    wh_kv_lmdb_txn_t  *t = (wh_kv_lmdb_txn_t *) kt;

    k.mv_data = key->data;
    k.mv_size = key->len;

    rc = mdb_get(t->txn, t->dbi[db], &k, &v);

    if (rc == 0) {
        val->data = v.mv_data;
        val->len = v.mv_size;
    }

    return wh_kv_lmdb_rc(rc, err);
}


static int
wh_kv_lmdb_put(wh_kv_txn_t *kt, wh_kv_db_e db, const wh_kv_val_t *key,
    const wh_kv_val_t *val, unsigned flags, wh_err_t *err)
{
    MDB_val            k, v;
    wh_kv_lmdb_txn_t  *t = (wh_kv_lmdb_txn_t *) kt;

    k.mv_data = key->data;
    k.mv_size = key->len;
    v.mv_data = val->data;
    v.mv_size = val->len;

    return wh_kv_lmdb_rc(mdb_put(t->txn, t->dbi[db], &k, &v,
                                 flags & WH_KV_NOOVERWRITE
                                 ? MDB_NOOVERWRITE : 0), err);
}


static int
wh_kv_lmdb_del(wh_kv_txn_t *kt, wh_kv_db_e db, const wh_kv_val_t *key,
    wh_err_t *err)
{
    MDB_val            k;
    wh_kv_lmdb_txn_t  *t = (wh_kv_lmdb_txn_t *) kt;

    k.mv_data = key->data;
    k.mv_size = key->len;

    return wh_kv_lmdb_rc(mdb_del(t->txn, t->dbi[db], &k, NULL), err);
}


static int
wh_kv_lmdb_reserve(wh_kv_txn_t *kt, wh_kv_db_e db, const wh_kv_val_t *key,
    uint64_t n, uint64_t *first, wh_err_t *err)
{
    int            rc;
    uint64_t       last;
    wh_kv_val_t    v;
    unsigned char  buf[WH_BE64_LEN];

    v.data = NULL;
    v.len = 0;
    rc = wh_kv_lmdb_get(kt, db, key, &v, err);

    if (rc != 0 && rc != WH_KV_NOTFOUND) {
        return rc;
    }

    last = rc == 0 && v.len == WH_BE64_LEN ? wh_be64_get(v.data) : 0;
    wh_be64_put(buf, last + n);
    v.data = buf;
    v.len = WH_BE64_LEN;
    *first = last + 1;

    return wh_kv_lmdb_put(kt, db, key, &v, 0, err);
}


/* the op where the prefix keeps the cursor: FIRST and LAST of it,
 * SET_RANGE from it at least; an unplaced NEXT and PREV are LMDB's
 * FIRST and LAST */
static int
wh_kv_lmdb_place(wh_kv_lmdb_cur_t *c, MDB_val *k, MDB_val *v,
    wh_kv_op_e op)
{
    int  rc, cmp;

    if (!c->at && (op == WH_KV_NEXT || op == WH_KV_PREV)) {
        op = op == WH_KV_NEXT ? WH_KV_FIRST : WH_KV_LAST;
    }

    if (c->prefix.len == 0) {
        return mdb_cursor_get(c->cur, k, v, wh_kv_lmdb_ops_of[op]);
    }

    switch (op) {

    case WH_KV_FIRST:
        k->mv_data = c->prefix.data;
        k->mv_size = c->prefix.len;
        return mdb_cursor_get(c->cur, k, v, MDB_SET_RANGE);

    case WH_KV_LAST:
        if (c->end.len == 0) {
            return mdb_cursor_get(c->cur, k, v, MDB_LAST);
        }

        k->mv_data = c->end.data;
        k->mv_size = c->end.len;
        rc = mdb_cursor_get(c->cur, k, v, MDB_SET_RANGE);

        return mdb_cursor_get(c->cur, k, v,
                              rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);

    case WH_KV_SET_RANGE:
        /* a key before the prefix starts at the prefix */
        cmp = memcmp(k->mv_data, c->prefix.data,
                     k->mv_size < c->prefix.len ? k->mv_size
                                                : c->prefix.len);

        if (cmp < 0 || (cmp == 0 && k->mv_size < c->prefix.len)) {
            k->mv_data = c->prefix.data;
            k->mv_size = c->prefix.len;
        }

        return mdb_cursor_get(c->cur, k, v, MDB_SET_RANGE);

    default:
        return mdb_cursor_get(c->cur, k, v, wh_kv_lmdb_ops_of[op]);
    }
}


static int
wh_kv_lmdb_cur_get(wh_kv_cur_t *kc, wh_kv_val_t *key, wh_kv_val_t *val,
    wh_kv_op_e op, wh_err_t *err)
{
    int                rc;
    MDB_val            k, v;
    wh_kv_lmdb_cur_t  *c = (wh_kv_lmdb_cur_t *) kc;

    k.mv_data = key->data;
    k.mv_size = key->len;

    rc = wh_kv_lmdb_place(c, &k, &v, op);

    if (rc == 0) {
        c->at = 1;

        if (!wh_kv_in_prefix(&c->prefix, k.mv_data, k.mv_size)) {
            return WH_KV_NOTFOUND;
        }

        key->data = k.mv_data;
        key->len = k.mv_size;
        val->data = v.mv_data;
        val->len = v.mv_size;
    }

    return wh_kv_lmdb_rc(rc, err);
}


static int
wh_kv_lmdb_cur_del(wh_kv_cur_t *kc, wh_err_t *err)
{
    wh_kv_lmdb_cur_t  *c = (wh_kv_lmdb_cur_t *) kc;

    return wh_kv_lmdb_rc(mdb_cursor_del(c->cur, 0), err);
}


static void
wh_kv_lmdb_cur_close(wh_kv_cur_t *kc)
{
    wh_kv_lmdb_cur_t  *c = (wh_kv_lmdb_cur_t *) kc;

    mdb_cursor_close(c->cur);
    free(c);
}


static int
wh_kv_lmdb_cur_open(wh_kv_txn_t *kt, wh_kv_db_e db,
    const wh_kv_val_t *prefix, wh_kv_cur_t **out, wh_err_t *err)
{
    int                rc;
    size_t             plen;
    unsigned char     *p;
    wh_kv_lmdb_cur_t  *c;
    wh_kv_lmdb_txn_t  *t = (wh_kv_lmdb_txn_t *) kt;

    plen = prefix ? prefix->len : 0;
    /* the prefix, then its end */
    c = malloc(sizeof(wh_kv_lmdb_cur_t) + 2 * plen);

    if (c == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    rc = mdb_cursor_open(t->txn, t->dbi[db], &c->cur);

    if (rc != 0) {
        free(c);
        return wh_kv_lmdb_rc(rc, err);
    }

    p = (unsigned char *) (c + 1);
    c->at = 0;
    c->prefix.data = p;
    c->prefix.len = plen;
    c->end.data = p + plen;
    c->end.len = 0;

    if (plen > 0) {
        memcpy(p, prefix->data, plen);
        c->end.len = wh_kv_prefix_end(p, plen, p + plen);
    }

    /* the txn's table has the cursor's operations too */
    c->base.ops = kt->ops;
    *out = &c->base;

    return 0;
}


static const wh_kv_ops_t  wh_kv_lmdb_ops = {
    .get = wh_kv_lmdb_get,
    .put = wh_kv_lmdb_put,
    .del = wh_kv_lmdb_del,
    .cur_open = wh_kv_lmdb_cur_open,
    .cur_get = wh_kv_lmdb_cur_get,
    .cur_del = wh_kv_lmdb_cur_del,
    .cur_close = wh_kv_lmdb_cur_close,
    .reserve = wh_kv_lmdb_reserve
};


void
wh_kv_lmdb_txn(wh_kv_lmdb_txn_t *t, MDB_txn *txn, const MDB_dbi *dbi)
{
    t->base.ops = &wh_kv_lmdb_ops;
    t->base.unchecked = 0;
    t->txn = txn;
    memcpy(t->dbi, dbi, sizeof(t->dbi));
}


int
wh_kv_lmdb_open(MDB_txn *txn, MDB_dbi *dbi, unsigned *created,
    wh_err_t *err)
{
    int      rc;
    char     what[64];
    size_t   i;

    *created = 0;

    for (i = 0; i < WH_KV_NDBS; i++) {
        rc = mdb_dbi_open(txn, wh_kv_dbs[i].name, 0, &dbi[i]);

        if (rc == MDB_NOTFOUND) {
            *created |= 1u << i;
            rc = mdb_dbi_open(txn, wh_kv_dbs[i].name, MDB_CREATE, &dbi[i]);
        }

        if (rc != 0) {
            snprintf(what, sizeof(what), "opening the %s database",
                     wh_kv_dbs[i].name);
            return wh_mdb_error(rc, what, err);
        }
    }

    return 0;
}

/*
 * The key-value txn (kv.h) over a write txn of the LMDB engine's state
 * environment (engine_lmdb_store.h): each database of kv.h is the
 * LMDB database of its name.  The structs live on the caller's stack
 * for the length of the write; a cursor is malloc()ed by cur_open and
 * freed by cur_close.
 *
 * Errors: LMDB's MDB_NOTFOUND and MDB_KEYEXIST are WH_KV_NOTFOUND and
 * WH_KV_EXISTS; any other is -1 with LMDB's message alone and
 * wh_mdb_error()'s status (507 for MDB_MAP_FULL, which makes
 * wh_store_write() grow the map and run the write again), the caller
 * saying what it was doing.  LMDB never answers WH_ENGINE_AGAIN.
 */

#ifndef WH_KV_LMDB_H
#define WH_KV_LMDB_H

#include <lmdb.h>

#include "kv.h"
#include "log.h"


typedef struct {
    wh_kv_txn_t   base;
    MDB_txn      *txn;
    MDB_dbi       dbi[WH_KV_NDBS];
} wh_kv_lmdb_txn_t;

typedef struct {
    wh_kv_cur_t   base;
    MDB_cursor   *cur;
    int           at;               /* placed: NEXT is not FIRST */
    wh_kv_val_t   prefix;           /* kv.h's; data after the struct */
    wh_kv_val_t   end;              /* wh_kv_prefix_end(), len 0: none */
} wh_kv_lmdb_cur_t;


/* opens the databases of kv.h in txn, each created if it is missing,
 * into dbi[]; *created gets bit (1u << db) of each that was */
int wh_kv_lmdb_open(MDB_txn *txn, MDB_dbi *dbi, unsigned *created,
    wh_err_t *err);

/* t becomes a kv txn over txn, with the handles wh_kv_lmdb_open() gave */
void wh_kv_lmdb_txn(wh_kv_lmdb_txn_t *t, MDB_txn *txn, const MDB_dbi *dbi);

#endif /* WH_KV_LMDB_H */

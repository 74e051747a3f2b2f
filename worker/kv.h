/*
 * An ordered key-value write transaction: what the records of the
 * state space (engine.h: clients, revocations, commands, jobs,
 * sources) are stored in, so that one implementation of those records
 * (state_*.c) serves every engine.  LMDB's state environment is one
 * store (kv_lmdb.c), Redis another (kv_redis.c).
 *
 * The semantics are LMDB's, because its code came first: named
 * databases of keys that sort as memcmp() sorts them (LMDB's default
 * order, and Redis's ZRANGEBYLEX order), one value per key, cursors
 * that walk a database both ways and see the txn's own writes.  What
 * a read hands out stays valid until the txn ends.
 *
 * A read of a remote store (Redis) may answer WH_ENGINE_AGAIN: the
 * store is fetching it, and the whole write runs again from scratch
 * when the engine wakes (engine.h), by which time the read is answered
 * from what was fetched.  Callers pass AGAIN up unchanged.
 */

#ifndef WH_KV_H
#define WH_KV_H

#include <stddef.h>

#include "wh_link.h"
#include "engine.h"
#include "log.h"


/* results besides 0 (found, done), -1 (err set), WH_ENGINE_AGAIN */
#define WH_KV_NOTFOUND  1           /* no such key, or no entry there */
#define WH_KV_EXISTS    3           /* put with WH_KV_NOOVERWRITE */

/* put: fail with WH_KV_EXISTS rather than replace */
#define WH_KV_NOOVERWRITE  0x1

/*
 * The state's databases.  ws_keyed: every key starts with the
 * workspace and "\0" (Redis keeps those under the workspace's hash
 * tag); the others hold keys of every workspace.
 */
typedef enum {
    WH_KV_CLIENTS = 0,
    WH_KV_REVOKED,
    WH_KV_COMMANDS,
    WH_KV_CMD_OPEN,
    WH_KV_CMD_CLIENT,
    WH_KV_CMD_IDEM,
    WH_KV_CMD_META,
    WH_KV_CMD_WS,
    WH_KV_CMD_ENDED,
    WH_KV_JOBS,
    WH_KV_JOB_EXEC,
    WH_KV_SOURCES,
    WH_KV_NDBS
} wh_kv_db_e;

typedef struct {
    const char  *name;              /* LMDB's database name */
    int          ws_keyed;
} wh_kv_db_t;

extern const wh_kv_db_t  wh_kv_dbs[WH_KV_NDBS];

typedef struct {
    size_t       len;
    void        *data;
} wh_kv_val_t;

/* where a cursor goes (LMDB's MDB_cursor_op of the same names) */
typedef enum {
    WH_KV_FIRST = 0,
    WH_KV_LAST,
    WH_KV_NEXT,
    WH_KV_PREV,
    WH_KV_SET_RANGE,                /* the first key >= the key given */
    WH_KV_GET_CURRENT
} wh_kv_op_e;

typedef struct wh_kv_txn_s  wh_kv_txn_t;
typedef struct wh_kv_cur_s  wh_kv_cur_t;

typedef struct {
    int   (*get)(wh_kv_txn_t *t, wh_kv_db_e db, const wh_kv_val_t *key,
        wh_kv_val_t *val, wh_err_t *err);
    int   (*put)(wh_kv_txn_t *t, wh_kv_db_e db, const wh_kv_val_t *key,
        const wh_kv_val_t *val, unsigned flags, wh_err_t *err);
    /* WH_KV_NOTFOUND if there was no such key */
    int   (*del)(wh_kv_txn_t *t, wh_kv_db_e db, const wh_kv_val_t *key,
        wh_err_t *err);
    /*
     * prefix (NULL or len 0: the whole database): the cursor sees only
     * the keys that start with it.  FIRST and LAST go to the first and
     * last of those, NEXT, PREV and SET_RANGE answer WH_KV_NOTFOUND
     * where the nearest key does not start with it.  A store that
     * fetches ranges (Redis) then reads no key past the prefix.
     */
    int   (*cur_open)(wh_kv_txn_t *t, wh_kv_db_e db,
        const wh_kv_val_t *prefix, wh_kv_cur_t **out, wh_err_t *err);
    /* key is read for WH_KV_SET_RANGE and set on every 0 */
    int   (*cur_get)(wh_kv_cur_t *c, wh_kv_val_t *key, wh_kv_val_t *val,
        wh_kv_op_e op, wh_err_t *err);
    /* deletes the entry under the cursor; NEXT then goes to the one
     * after it */
    int   (*cur_del)(wh_kv_cur_t *c, wh_err_t *err);
    void  (*cur_close)(wh_kv_cur_t *c);
    /*
     * n numbers of the counter under key (its value a big-endian
     * uint64, absent 0) taken at once: *first is the first of them.  Two
     * writes that take numbers never get the same ones and do not
     * conflict over them (Redis: taken at once, outside the commit and
     * not checked by it; numbers of a write not committed are lost, a
     * gap).  LMDB takes them inside the txn.
     */
    int   (*reserve)(wh_kv_txn_t *t, wh_kv_db_e db, const wh_kv_val_t *key,
        uint64_t n, uint64_t *first, wh_err_t *err);
} wh_kv_ops_t;

struct wh_kv_txn_s {
    const wh_kv_ops_t  *ops;
    int                 unchecked;  /* the reads made while set decide
                                     * nothing the txn writes: a store
                                     * that checks reads at commit
                                     * (Redis) leaves them out */
};

struct wh_kv_cur_s {
    const wh_kv_ops_t  *ops;
};


/*
 * A prefix's end: the least key past every key that starts with prefix
 * (prefix without its trailing 0xff bytes, its last byte plus one),
 * into out (plen bytes at most); its length, 0 if no key is past them
 * (an empty prefix, or only 0xff bytes).
 */
size_t wh_kv_prefix_end(const void *prefix, size_t plen, void *out);
/* does key start with prefix (NULL: every key does)? */
int wh_kv_in_prefix(const wh_kv_val_t *prefix, const void *key,
    size_t klen);


#define wh_kv_get(t, db, k, v, err)  (t)->ops->get(t, db, k, v, err)
#define wh_kv_put(t, db, k, v, f, err)  (t)->ops->put(t, db, k, v, f, err)
#define wh_kv_del(t, db, k, err)  (t)->ops->del(t, db, k, err)
#define wh_kv_cur_open(t, db, p, c, err)                                \
    (t)->ops->cur_open(t, db, p, c, err)
#define wh_kv_cur_get(c, k, v, op, err)  (c)->ops->cur_get(c, k, v, op, err)
#define wh_kv_cur_del(c, err)  (c)->ops->cur_del(c, err)
#define wh_kv_cur_close(c)  (c)->ops->cur_close(c)
#define wh_kv_reserve(t, db, k, n, first, err)                          \
    (t)->ops->reserve(t, db, k, n, first, err)

#endif /* WH_KV_H */

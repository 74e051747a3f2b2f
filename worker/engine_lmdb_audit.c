/*
 * The LMDB engine's workspace-wide listing of commands and their
 * retention, two indexes of the state store beside those of
 * engine_lmdb_commands.c (which keeps them up to date):
 *
 *   cmd_ws     ws "\0" seq -> id           every command, by creation
 *   cmd_ended  ended ms, ws "\0" id -> id  ended commands not of a job,
 *                                          by the time they ended
 *
 * A store written before they existed is indexed when they are first
 * opened, at start.  Every walk here is bounded by its caller's count:
 * a txn never takes long, whatever the store holds.
 */

#include <stdlib.h>
#include <string.h>

#include "engine_lmdb.h"


/* what one prune removes: keys copied out before the deletes */
typedef struct {
    unsigned char    key[WH_LMDB_KEY_MAX + WH_BE64_LEN];
    size_t           klen;
} wh_lmdb_ended_t;


/* ------------------------------------------------------------ open */


/* indexes what a store made before the indexes existed */
static int
wh_lmdb_audit_backfill(wh_etxn_t *t, wh_err_t *err)
{
    int            rc;
    size_t         n = 0;
    MDB_val        k, v;
    wh_str_t       ws, id;
    MDB_cursor    *cur;
    wh_command_t   cmd;

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->cmds_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (wh_key_unpair(k.mv_data, k.mv_size, &ws, &id) != 0) {
            continue;
        }

        if (wh_lmdb_cmd_get(t, ws, id, &cmd, err) != 1) {
            mdb_cursor_close(cur);
            return -1;
        }

        rc = wh_lmdb_cmd_index_ws(t, &cmd, err) != 0
             || (!wh_cmd_is_open(cmd.state.status)
                 && wh_lmdb_cmd_index_ended(t, &cmd, err) != 0);
        wh_command_free(&cmd);

        if (rc != 0) {
            mdb_cursor_close(cur);
            return -1;
        }

        n++;
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return wh_mdb_error(rc, "indexing commands", err);
    }

    if (n && t->engine->log) {
        wh_log_info(t->engine->log, "storage: %zu stored commands indexed "
                    "for GET /commands and the retention", n);
    }

    return 0;
}


int
wh_lmdb_audit_open_dbs(wh_etxn_t *t, wh_err_t *err)
{
    int                rc, fresh;
    MDB_txn           *txn = wh_lmdb_stxn(t);
    wh_engine_lmdb_t  *e = wh_lmdb_of(t);

    rc = mdb_dbi_open(txn, "cmd_ws", 0, &e->ws_db);
    fresh = rc == MDB_NOTFOUND;

    if ((fresh
         && (rc = mdb_dbi_open(txn, "cmd_ws", MDB_CREATE, &e->ws_db)) != 0)
        || (!fresh && rc != 0)
        || (rc = mdb_dbi_open(txn, "cmd_ended", MDB_CREATE, &e->ended_db))
           != 0)
    {
        return wh_mdb_error(rc, "opening the command indexes", err);
    }

    return fresh ? wh_lmdb_audit_backfill(t, err) : 0;
}


/* --------------------------------------------------------- listing */


/* 1 if f admits cmd */
static int
wh_lmdb_filter(const wh_cmd_filter_t *f, const wh_command_t *cmd)
{
    const char  *colon;
    wh_str_t     by = cmd->issued_by;

    if (f->mask != 0 && !(f->mask & (1u << cmd->state.status))) {
        return 0;
    }

    if (f->sub.len == 0) {
        return 1;
    }

    /* issued_by is "role:sub" */
    colon = by.len ? memchr(by.data, ':', by.len) : NULL;

    return colon != NULL
           && (size_t) (by.data + by.len - colon - 1) == f->sub.len
           && memcmp(colon + 1, f->sub.data, f->sub.len) == 0;
}


int
wh_lmdb_cmd_list_ws(wh_etxn_t *t, wh_str_t ws, uint64_t before,
    size_t limit, size_t scan, const wh_cmd_filter_t *f,
    wh_cmd_list_t *out, wh_err_t *err)
{
    int            rc, found;
    size_t         looked = 0, plen;
    uint64_t       seq;
    MDB_val        k, v;
    wh_str_t       id;
    MDB_cursor    *cur;
    wh_command_t   cmd;
    unsigned char  key[WH_LMDB_KEY_MAX];

    memset(out, 0, sizeof(wh_cmd_list_t));

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->ws_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    /* newest first: from the first key past the page, one back */
    k.mv_data = key;
    k.mv_size = wh_key_ws_seq(key, ws, before ? before : UINT64_MAX);
    plen = k.mv_size - WH_BE64_LEN;

    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);

    for ( /* void */ ; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV))
    {
        if (k.mv_size != plen + WH_BE64_LEN
            || memcmp(k.mv_data, key, plen) != 0)
        {
            break;
        }

        seq = wh_be64_get((unsigned char *) k.mv_data + plen);

        if (seq >= (before ? before : UINT64_MAX)) {
            continue;
        }

        if (out->n == limit || looked == scan) {
            out->next = seq + 1;
            break;
        }

        looked++;
        id.data = v.mv_data;
        id.len = v.mv_size;

        found = wh_lmdb_cmd_get(t, ws, id, &cmd, err);

        if (found < 0) {
            mdb_cursor_close(cur);
            return -1;
        }

        if (found == 0) {
            continue;
        }

        /* seq follows creation: nothing older can be admitted */
        if (f->since_ms && cmd.created_ms < f->since_ms) {
            wh_command_free(&cmd);
            break;
        }

        if (!wh_lmdb_filter(f, &cmd)) {
            wh_command_free(&cmd);
            continue;
        }

        if (wh_cmd_list_add(out) == NULL) {
            wh_command_free(&cmd);
            mdb_cursor_close(cur);
            return wh_err(err, 503, "out of memory");
        }

        out->items[out->n - 1] = cmd;
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_mdb_error(rc, "listing commands", err);
    }

    return 0;
}


/* ------------------------------------------------------- retention */


static int
wh_lmdb_del(MDB_txn *txn, MDB_dbi dbi, const unsigned char *key,
    size_t klen, const char *what, wh_err_t *err)
{
    int      rc;
    MDB_val  k;

    k.mv_data = (void *) key;
    k.mv_size = klen;

    rc = mdb_del(txn, dbi, &k, NULL);

    return rc != 0 && rc != MDB_NOTFOUND ? wh_mdb_error(rc, what, err) : 0;
}


/* the idempotency key, only while it still names this command */
static int
wh_lmdb_del_idem(wh_etxn_t *t, const wh_command_t *cmd, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[WH_LMDB_KEY_MAX];

    k.mv_data = key;
    k.mv_size = wh_key_idem(key, cmd->ws, cmd->client_id, cmd->idem);

    rc = mdb_get(wh_lmdb_stxn(t), wh_lmdb_of(t)->idem_db, &k, &v);

    if (rc == MDB_NOTFOUND || (rc == 0 && (v.mv_size != cmd->id.len
        || memcmp(v.mv_data, cmd->id.data, cmd->id.len) != 0)))
    {
        return 0;
    }

    return rc ? wh_mdb_error(rc, "reading an idempotency key", err)
              : wh_lmdb_del(wh_lmdb_stxn(t), wh_lmdb_of(t)->idem_db, key,
                            k.mv_size, "forgetting a key", err);
}


int
wh_lmdb_cmd_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_err_t *err)
{
    int                rc;
    MDB_txn           *txn = wh_lmdb_stxn(t);
    wh_command_t       cmd;
    unsigned char      key[WH_LMDB_KEY_MAX + WH_BE64_LEN];
    wh_engine_lmdb_t  *e = wh_lmdb_of(t);

    rc = wh_lmdb_cmd_get(t, ws, id, &cmd, err);

    if (rc <= 0) {
        return rc;
    }

    rc = wh_lmdb_del(txn, e->cmds_db, key, wh_key_pair(key, ws, id),
                     "deleting a command", err)
         || wh_lmdb_del(txn, e->client_db, key,
                        wh_key_seq(key, ws, cmd.client_id, cmd.seq),
                        "deleting a command", err)
         || wh_lmdb_del(txn, e->open_db, key,
                        wh_key_seq(key, ws, cmd.client_id, cmd.seq),
                        "deleting a command", err)
         || wh_lmdb_del(txn, e->ws_db, key, wh_key_ws_seq(key, ws, cmd.seq),
                        "deleting a command", err)
         || wh_lmdb_del(txn, e->ended_db, key,
                        wh_key_ended(key, cmd.updated_ms, ws, id),
                        "deleting a command", err)
         || (cmd.idem.len && wh_lmdb_del_idem(t, &cmd, err) != 0);

    wh_command_free(&cmd);

    return rc ? -1 : 1;
}


int
wh_lmdb_cmd_prune(wh_etxn_t *t, int64_t before_ms, size_t max,
    size_t *removed, int *more, wh_err_t *err)
{
    int               rc;
    size_t            i, n = 0;
    MDB_val           k, v;
    wh_str_t          ws, id;
    MDB_cursor       *cur;
    wh_lmdb_ended_t  *ended;

    *removed = 0;
    *more = 0;

    ended = calloc(max ? max : 1, sizeof(wh_lmdb_ended_t));

    if (ended == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->ended_db, &cur);

    if (rc != 0) {
        free(ended);
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    /* the keys first: deleting under the cursor would move it */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size <= WH_BE64_LEN || k.mv_size > sizeof(ended[0].key)
            || (int64_t) wh_be64_get(k.mv_data) >= before_ms)
        {
            break;
        }

        if (n == max) {
            *more = 1;
            break;
        }

        memcpy(ended[n].key, k.mv_data, k.mv_size);
        ended[n++].klen = k.mv_size;
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        free(ended);
        return wh_mdb_error(rc, "reading ended commands", err);
    }

    for (i = 0; i < n; i++) {
        /* a command that ended twice left a key of its first end */
        rc = wh_key_unpair(ended[i].key + WH_BE64_LEN,
                           ended[i].klen - WH_BE64_LEN, &ws, &id) == 0
             ? wh_lmdb_cmd_delete(t, ws, id, err) : 0;

        if (rc < 0
            || wh_lmdb_del(wh_lmdb_stxn(t), wh_lmdb_of(t)->ended_db,
                           ended[i].key, ended[i].klen,
                           "deleting a command", err) != 0)
        {
            free(ended);
            return -1;
        }

        *removed += rc;
    }

    free(ended);

    return 0;
}


int
wh_lmdb_exec_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t job, uint64_t idx,
    wh_err_t *err)
{
    unsigned char  key[WH_LMDB_KEY_MAX];

    return wh_lmdb_del(wh_lmdb_stxn(t), wh_lmdb_of(t)->exec_db, key,
                       wh_key_seq(key, ws, job, idx),
                       "deleting an execution", err);
}

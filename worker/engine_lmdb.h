/*
 * The LMDB engine (engine.h) over the store of store.h, which keeps
 * the channels and their history in the same environment.
 *
 *   clients      ws "\0" client_id -> the client (JSON: name,
 *                client_type, metadata as its own text, created and
 *                last_seen in ms)
 *   revoked      ws "\0" client_id -> be64 seconds: tokens of that
 *                client issued (iat) before are refused
 *   commands     ws "\0" command_id -> the command (JSON, see
 *                engine_lmdb_commands.c)
 *   cmd_open     ws "\0" client "\0" be64 seq -> command_id, for the
 *                open (pending, sent) ones: loaded at start
 *   cmd_client   ws "\0" client "\0" be64 seq -> command_id, all of a
 *                client's commands in creation order (listing)
 *   cmd_idem     ws "\0" client "\0" idempotency_key -> command_id
 *   cmd_meta     "seq" -> be64 the last seq given out
 *
 * Keys start with the workspace and "\0", so that nothing is ever found
 * across workspaces.
 */

#ifndef WH_ENGINE_LMDB_H
#define WH_ENGINE_LMDB_H

#include <lmdb.h>

#include <jansson.h>

#include "wh_channel.h"
#include "engine.h"
#include "store.h"


#define WH_LMDB_KEY_MAX  (WH_WORKSPACE_MAX + 1 + WH_CMD_CLIENT_MAX + 1 \
                          + WH_CMD_IDEM_MAX + 8)

typedef struct {
    wh_engine_t   base;
    wh_store_t   *store;
    MDB_dbi       clients_db, revoked_db;
    MDB_dbi       cmds_db, open_db, client_db, idem_db, meta_db;
} wh_engine_lmdb_t;


/* the engine over an open store; its databases are created if need be */
int wh_engine_lmdb_open(wh_engine_t **out, wh_store_t *store,
    wh_log_t *log, wh_err_t *err);

/* engine_lmdb_commands.c: the command databases, and the command
 * operations of the table (engine.h says what each does) */
int wh_lmdb_cmd_open_dbs(wh_engine_lmdb_t *e, MDB_txn *txn,
    wh_err_t *err);
int wh_lmdb_cmd_seq(wh_etxn_t *t, uint64_t *last, wh_err_t *err);
int wh_lmdb_cmd_set_seq(wh_etxn_t *t, uint64_t last, wh_err_t *err);
int wh_lmdb_cmd_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_command_t *out, wh_err_t *err);
int wh_lmdb_cmd_insert(wh_etxn_t *t, const wh_command_t *cmd,
    wh_err_t *err);
int wh_lmdb_cmd_update(wh_etxn_t *t, const wh_command_t *cmd,
    wh_err_t *err);
int wh_lmdb_cmd_idem(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    wh_str_t key, wh_command_t *out, wh_err_t *err);
int wh_lmdb_cmd_list(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    uint64_t after, size_t limit, unsigned mask, wh_cmd_list_t *out,
    wh_err_t *err);
int wh_lmdb_cmd_open(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    wh_engine_cmd_pt cb, void *ctx, wh_err_t *err);
int wh_lmdb_cmd_forget_client(wh_etxn_t *t, wh_str_t ws,
    wh_str_t client_id, wh_err_t *err);

static inline wh_engine_lmdb_t *
wh_lmdb_of(wh_etxn_t *t)
{
    return (wh_engine_lmdb_t *) t->engine;
}

/* s, or "" for an unset string (no data): jansson wants a pointer */
static inline wh_str_t
wh_lmdb_set(wh_str_t s)
{
    if (s.data == NULL) {
        s.data = "";
        s.len = 0;
    }

    return s;
}


/* a string member of a stored JSON record; "" if absent */
static inline wh_str_t
wh_lmdb_str(json_t *obj, const char *key)
{
    json_t    *v;
    wh_str_t   s = { "", 0 };

    v = json_object_get(obj, key);

    if (json_is_string(v)) {
        s.data = json_string_value(v);
        s.len = json_string_length(v);
    }

    return s;
}


static inline int64_t
wh_lmdb_int(json_t *obj, const char *key)
{
    return (int64_t) json_integer_value(json_object_get(obj, key));
}

#endif /* WH_ENGINE_LMDB_H */

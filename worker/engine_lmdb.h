/*
 * The LMDB engine (engine.h) over two stores (engine_lmdb_store.h),
 * one LMDB environment per space of engine.h, under the storage
 * directory:
 *
 *   state/       synced on every commit; the databases below
 *   history/     MDB_NOSYNC, synced every second by a thread of its
 *                own: channels and history (engine_lmdb_store.h)
 *
 * A store of the layout before (one MDB_NOSYNC environment, data.mdb
 * in the storage directory itself) is split at start
 * (engine_lmdb_upgrade.c).  The state databases:
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
 *   jobs, job_exec   fleet jobs and their executions
 *                (engine_lmdb_jobs.c)
 *   sources      ws "\0" source_id -> the run-time source (sources.c's
 *                JSON record)
 *
 * Keys start with the workspace and "\0", so that nothing is ever found
 * across workspaces.
 */

#ifndef WH_ENGINE_LMDB_H
#define WH_ENGINE_LMDB_H

#include <assert.h>
#include <lmdb.h>

#include <jansson.h>

#include "wh_channel.h"
#include "engine.h"
#include "engine_lmdb_store.h"


#define WH_LMDB_KEY_MAX  (WH_WORKSPACE_MAX + 1 + WH_CMD_CLIENT_MAX + 1 \
                          + WH_CMD_IDEM_MAX + 8)

typedef struct {
    wh_engine_t   base;
    wh_store_t   *state;        /* WH_ENGINE_STATE */
    wh_store_t   *history;      /* WH_ENGINE_HISTORY */
    MDB_dbi       clients_db, revoked_db;
    MDB_dbi       cmds_db, open_db, client_db, idem_db, meta_db;
    MDB_dbi       jobs_db, exec_db;
    MDB_dbi       sources_db;
    MDB_dbi       ws_db, ended_db;      /* engine_lmdb_audit.c */
} wh_engine_lmdb_t;


/* opens both stores under dir (engine_lmdb_store.h says what the
 * arguments are; each map grows up to max_map_size on its own) and the
 * engine's databases, created if need be; an old layout is upgraded
 * first */
int wh_engine_lmdb_open(wh_engine_t **out, const char *dir,
    size_t map_size, size_t max_map_size, uint32_t hist_len,
    int64_t hist_ttl_ms, wh_log_t *log, wh_err_t *err);

/* engine_lmdb_channels.c: the channel and upkeep operations of the
 * table, over engine_lmdb_store.c */
int wh_lmdb_chan_get(wh_etxn_t *t, wh_str_t ws, wh_str_t ch, int64_t now,
    int create, wh_chan_meta_t *meta, wh_err_t *err);
int wh_lmdb_chan_append(wh_etxn_t *t, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, int64_t now, const void *text, size_t len,
    int64_t room, int64_t *growth, wh_err_t *err);
int wh_lmdb_chan_ensure(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    int64_t now, wh_chan_meta_t *meta, wh_err_t *err);
int wh_lmdb_chan_meta(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, wh_err_t *err);
int wh_lmdb_chan_list(wh_engine_t *e, wh_str_t ws, wh_str_t after,
    wh_chan_item_pt cb, void *ctx, wh_err_t *err);
int wh_lmdb_hist_read(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    uint64_t after, uint64_t up_to, size_t limit, int64_t now,
    wh_hist_item_pt cb, void *ctx, wh_hist_range_t *r, wh_err_t *err);
int wh_lmdb_hist_usage(wh_engine_t *e, wh_usage_pt cb, void *ctx,
    wh_err_t *err);
int wh_lmdb_hist_expire(wh_engine_t *e, int64_t now, wh_usage_pt freed,
    void *ctx, size_t *removed, wh_err_t *err);
int wh_lmdb_sync_background(wh_engine_t *e, wh_err_t *err);
int wh_lmdb_check_readers(wh_engine_t *e, int *dead, wh_err_t *err);
size_t wh_lmdb_size(wh_engine_t *e);

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

/* engine_lmdb_jobs.c: the job databases and operations (a block of
 * their own at the end of the table) */
int wh_lmdb_job_open_dbs(wh_engine_lmdb_t *e, MDB_txn *txn,
    wh_err_t *err);
int wh_lmdb_job_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_job_t *out,
    wh_err_t *err);
int wh_lmdb_job_put(wh_etxn_t *t, const wh_job_t *job, wh_err_t *err);
int wh_lmdb_job_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_err_t *err);
int wh_lmdb_job_each(wh_etxn_t *t, wh_engine_job_pt cb, void *ctx,
    wh_err_t *err);
int wh_lmdb_exec_put(wh_etxn_t *t, wh_str_t ws, wh_str_t job, uint64_t idx,
    const wh_job_exec_t *x, wh_err_t *err);
int wh_lmdb_exec_each(wh_etxn_t *t, wh_str_t ws, wh_str_t job,
    uint64_t from, wh_engine_exec_pt cb, void *ctx, wh_err_t *err);
/* engine_lmdb_sources.c: the run-time sources of the table */
int wh_lmdb_sources_open_db(wh_engine_lmdb_t *e, MDB_txn *txn,
    wh_err_t *err);
int wh_lmdb_source_put(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_str_t record, wh_err_t *err);
int wh_lmdb_source_del(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_err_t *err);
int wh_lmdb_source_each(wh_etxn_t *t, wh_engine_source_pt cb, void *ctx,
    wh_err_t *err);

/* engine_lmdb_audit.c: the workspace-wide listing and the retention
 * of commands (a block of their own at the end of the table), and the
 * indexes they need, kept by cmd_insert and cmd_update; opening them
 * the first time indexes what the store already holds */
size_t wh_key_idem(unsigned char *buf, wh_str_t ws, wh_str_t client_id,
    wh_str_t idem);
size_t wh_key_ws_seq(unsigned char *buf, wh_str_t ws, uint64_t seq);
size_t wh_key_ended(unsigned char *buf, int64_t ended_ms, wh_str_t ws,
    wh_str_t id);
int wh_lmdb_audit_open_dbs(wh_etxn_t *t, wh_err_t *err);
int wh_lmdb_cmd_index_ws(wh_etxn_t *t, const wh_command_t *cmd,
    wh_err_t *err);
int wh_lmdb_cmd_index_ended(wh_etxn_t *t, const wh_command_t *cmd,
    wh_err_t *err);
int wh_lmdb_cmd_list_ws(wh_etxn_t *t, wh_str_t ws, uint64_t before,
    size_t limit, size_t scan, const wh_cmd_filter_t *f,
    wh_cmd_list_t *out, wh_err_t *err);
int wh_lmdb_cmd_prune(wh_etxn_t *t, int64_t before_ms, size_t max,
    size_t *removed, int *more, wh_err_t *err);
int wh_lmdb_cmd_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_err_t *err);
int wh_lmdb_exec_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t job,
    uint64_t idx, wh_err_t *err);

#define WH_LMDB_PATH_MAX  4096

/* engine_lmdb_upgrade.c: dir "/" name into path; -1 with err if it
 * does not fit */
int wh_lmdb_path(char *path, size_t size, const char *dir,
    const char *name, wh_err_t *err);

/* engine_lmdb_upgrade.c: splits a store of the one-environment layout
 * in dir into state/ and history/; 0 also when there is nothing to do */
int wh_lmdb_upgrade(const char *dir, size_t map_size, size_t max_map_size,
    wh_log_t *log, wh_err_t *err);

/* the names of the databases of each store, NULL-terminated (the
 * upgrade copies them) */
extern const char  *wh_lmdb_state_dbs[];
extern const char  *wh_lmdb_history_dbs[];

static inline wh_engine_lmdb_t *
wh_lmdb_of(wh_etxn_t *t)
{
    return (wh_engine_lmdb_t *) t->engine;
}


/* the txn of a write, which must be of that space: a database handle
 * of one environment means another database in the other */
static inline MDB_txn *
wh_lmdb_txn(wh_etxn_t *t, wh_engine_space_e space)
{
    assert(t->space == space);

    return t->impl;
}

#define wh_lmdb_stxn(t)  wh_lmdb_txn(t, WH_ENGINE_STATE)
#define wh_lmdb_htxn(t)  wh_lmdb_txn(t, WH_ENGINE_HISTORY)

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

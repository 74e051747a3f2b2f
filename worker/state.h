/*
 * The records of the state space (engine.h): clients, revocations,
 * commands and their indexes, fleet jobs, run-time sources, written
 * once for every engine over the key-value txn of kv.h.  An engine
 * points the state operations of its table at the wh_state_* below
 * (each has the signature of the op of its name) and hands them a txn
 * whose impl is its kv txn.
 *
 * The contract of a STATE write: wh_etxn_t.impl is a wh_kv_txn_t *,
 * valid for the length of the write (LMDB: a wh_kv_lmdb_txn_t on the
 * stack of engine_lmdb.c's write, over the MDB_txn of the state
 * environment).  A HISTORY write's impl stays the engine's own.
 * Results of the kv operations pass up unchanged when they are
 * WH_ENGINE_AGAIN: the write runs again from scratch.
 *
 * The databases (kv.h's, named as LMDB names them), all in the state
 * environment of LMDB; keys start with the workspace and "\0" unless
 * said otherwise, so that nothing is ever found across workspaces:
 *
 *   clients      ws "\0" client_id -> the client (JSON: name,
 *                client_type, metadata as its own text, created and
 *                last_seen in ms)                      state_clients.c
 *   revoked      ws "\0" client_id -> be64 seconds: tokens of that
 *                client issued (iat) before are refused  state_clients.c
 *   commands     ws "\0" command_id -> the command (JSON, see
 *                state_commands.c)
 *   cmd_open     ws "\0" client "\0" be64 seq -> command_id, for the
 *                open (pending, sent) ones: loaded at start
 *   cmd_client   ws "\0" client "\0" be64 seq -> command_id, all of a
 *                client's commands in creation order (listing); one
 *                node writes it late, up to cmd_meta's "clients"
 *                                                    state_cmd_client.c
 *   cmd_idem     ws "\0" client "\0" idempotency_key -> command_id
 *   cmd_meta     "seq" -> be64 the last seq given out, "clients" ->
 *                be64 the seq cmd_client has (not keyed by workspace)
 *                                                       state_commands.c
 *   cmd_ws       ws "\0" be64 seq -> command_id "\0" client, every
 *                command by creation (command_id alone in a store of
 *                before: a store written now is not one an older
 *                wirehubd reads)
 *   cmd_ended    be64 ended ms, ws "\0" id -> id, the ended commands
 *                not of a job, by the time they ended (not keyed by
 *                workspace)                                state_audit.c
 *   jobs         ws "\0" job_id -> the job (JSON)
 *   job_exec     ws "\0" job_id "\0" be64 index -> be32 series + the
 *                client id                                 state_jobs.c
 *   sources      ws "\0" source_id -> the run-time source (sources.c's
 *                JSON record)                           state_sources.c
 */

#ifndef WH_STATE_H
#define WH_STATE_H

#include <assert.h>

#include <jansson.h>

#include "engine.h"
#include "keys.h"
#include "kv.h"


/* the longest key of the state's databases but cmd_ended's (which
 * has WH_BE64_LEN more) */
#define WH_STATE_KEY_MAX  (WH_WORKSPACE_MAX + 1 + WH_CMD_CLIENT_MAX + 1 \
                           + WH_CMD_IDEM_MAX + 8)

/* an entry of a scan (wh_state_scan): 0 goes on, 1 stops,
 * WH_STATE_DELETE deletes the entry and goes on, -1 (err set) or
 * WH_ENGINE_AGAIN fails */
#define WH_STATE_DELETE  2
typedef int (*wh_state_entry_pt)(void *ctx, const wh_kv_val_t *key,
    const wh_kv_val_t *val, wh_err_t *err);


/* the kv txn of a state write */
static inline wh_kv_txn_t *
wh_state_kv(wh_etxn_t *t)
{
    wh_kv_txn_t  *kv = t->impl;

    assert(t->space == WH_ENGINE_STATE);

    /* every read and write goes through here: the reads it is asked
     * for now are checked at commit, or not */
    kv->unchecked = t->unchecked;

    return kv;
}


/*
 * 1 if cmd_client is written late (state_cmd_client.c): on one node,
 * where the commands' own writes list them; a cluster's nodes list what
 * the others created, so each command comes with its entry
 */
static inline int
wh_state_cmd_client_late(wh_etxn_t *t)
{
    return !wh_engine_shared(t->engine);
}


/* s, or "" for an unset string (no data): jansson wants a pointer */
static inline wh_str_t
wh_state_set(wh_str_t s)
{
    if (s.data == NULL) {
        s.data = "";
        s.len = 0;
    }

    return s;
}


/* a string member of a stored JSON record; "" if absent */
static inline wh_str_t
wh_state_str(json_t *obj, const char *key)
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
wh_state_int(json_t *obj, const char *key)
{
    return (int64_t) json_integer_value(json_object_get(obj, key));
}


/* state.c: what the records share */

/* a failed kv operation (rc < 0) as the API reports it: "what: " and
 * the store's message, its status kept; WH_ENGINE_AGAIN unchanged */
int wh_state_fail(int rc, const char *what, wh_err_t *err);
/* 1 found (*val set), 0 not, else as wh_state_fail */
int wh_state_get(wh_etxn_t *t, wh_kv_db_e db, const void *key,
    size_t klen, wh_kv_val_t *val, const char *what, wh_err_t *err);
/* the record of db under ws "\0" id, as wh_state_get; 0 for an id no
 * record has (empty, or longer than max) */
int wh_state_get_rec(wh_etxn_t *t, wh_kv_db_e db, wh_str_t ws, wh_str_t id,
    size_t max, wh_kv_val_t *val, const char *what, wh_err_t *err);
int wh_state_put(wh_etxn_t *t, wh_kv_db_e db, const void *key,
    size_t klen, const void *val, size_t vlen, const char *what,
    wh_err_t *err);
/* 1 deleted, 0 there was none */
int wh_state_del(wh_etxn_t *t, wh_kv_db_e db, const void *key,
    size_t klen, const char *what, wh_err_t *err);
/* stores text (a JSON record, malloc()ed, freed here; NULL: out of
 * memory) under ws "\0" id; flags of kv.h: WH_KV_EXISTS passes up */
int wh_state_save(wh_etxn_t *t, wh_kv_db_e db, wh_str_t ws, wh_str_t id,
    char *text, unsigned flags, const char *what, wh_err_t *err);
/* the entries of db from the first key >= from (flen 0: the first),
 * while their key starts with the plen first bytes of from; what names
 * the walk in its errors */
int wh_state_scan(wh_etxn_t *t, wh_kv_db_e db, const void *from,
    size_t flen, size_t plen, wh_state_entry_pt cb, void *ctx,
    const char *what, wh_err_t *err);
/* deletes the entries of db whose key starts with prefix and is klen
 * long (0: any length) */
int wh_state_del_prefix(wh_etxn_t *t, wh_kv_db_e db, const void *prefix,
    size_t plen, size_t klen, const char *what, wh_err_t *err);

/* state_clients.c: the ops of engine.h of the same names */
int wh_state_client_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_client_t *out, wh_err_t *err);
int wh_state_client_put(wh_etxn_t *t, const wh_client_t *cl,
    wh_err_t *err);
int wh_state_client_list(wh_etxn_t *t, wh_str_t ws, wh_str_t after,
    size_t limit, wh_client_list_t *out, wh_err_t *err);
int wh_state_client_revoke(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    uint64_t before_s, wh_err_t *err);
int wh_state_revocations(wh_etxn_t *t, wh_engine_revoked_pt cb, void *ctx,
    wh_err_t *err);
int wh_state_client_each(wh_etxn_t *t, wh_usage_pt cb, void *ctx,
    wh_err_t *err);

/* state_commands.c */
/* a counter of cmd_meta (a big-endian uint64; absent: 0, *found 0) */
int wh_state_cmd_meta(wh_etxn_t *t, const char *name, uint64_t *value,
    int *found, const char *what, wh_err_t *err);
int wh_state_cmd_set_meta(wh_etxn_t *t, const char *name, uint64_t value,
    const char *what, wh_err_t *err);
int wh_state_cmd_seq(wh_etxn_t *t, uint64_t *last, wh_err_t *err);
int wh_state_cmd_set_seq(wh_etxn_t *t, uint64_t last, wh_err_t *err);
int wh_state_cmd_seq_take(wh_etxn_t *t, uint64_t n, uint64_t *first,
    wh_err_t *err);
int wh_state_cmd_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_command_t *out, wh_err_t *err);
int wh_state_cmd_insert(wh_etxn_t *t, const wh_command_t *cmd,
    wh_err_t *err);
int wh_state_cmd_update(wh_etxn_t *t, const wh_command_t *cmd,
    wh_err_t *err);
int wh_state_cmd_idem(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    wh_str_t key, wh_command_t *out, wh_err_t *err);
int wh_state_cmd_open(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    wh_engine_cmd_pt cb, void *ctx, wh_err_t *err);
int wh_state_cmd_forget_client(wh_etxn_t *t, wh_str_t ws,
    wh_str_t client_id, wh_err_t *err);
/* the entries of cmd_ws and (an ended command not of a job) cmd_ended,
 * which cmd_insert and cmd_update keep */
int wh_state_cmd_index_ws(wh_etxn_t *t, const wh_command_t *cmd,
    wh_err_t *err);
int wh_state_cmd_index_ended(wh_etxn_t *t, const wh_command_t *cmd,
    wh_err_t *err);
/* an entry of cmd_ws: id "\0" client; a store of before has the id
 * alone (client_id "") */
void wh_state_ws_entry(const wh_kv_val_t *v, wh_str_t *id,
    wh_str_t *client_id);
/* 1 if f admits cmd */
int wh_state_cmd_admits(const wh_cmd_filter_t *f, const wh_command_t *cmd);
/* cmd, which it takes, at the end of out if f admits it, else freed */
int wh_state_cmd_keep(const wh_cmd_filter_t *f, wh_command_t *cmd,
    wh_cmd_list_t *out, wh_err_t *err);

/* state_cmd_client.c: a client's commands, and their index, which one
 * node writes late */
int wh_state_cmd_list(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    uint64_t after, size_t limit, unsigned mask, wh_cmd_list_t *out,
    wh_err_t *err);
int wh_state_cmd_index_clients(wh_etxn_t *t, uint64_t *indexed,
    wh_err_t *err);
/* the index's mark for a store that has none: an engine whose index is
 * written late runs it at open */
int wh_state_cmd_clients_open(wh_etxn_t *t, wh_err_t *err);

/* state_audit.c: the workspace-wide listing and the retention */
int wh_state_cmd_list_ws(wh_etxn_t *t, wh_str_t ws, uint64_t before,
    size_t limit, size_t scan, const wh_cmd_filter_t *f,
    wh_cmd_list_t *out, wh_err_t *err);
int wh_state_cmd_prune(wh_etxn_t *t, int64_t before_ms, size_t max,
    size_t *removed, int *more, wh_err_t *err);
int wh_state_cmd_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_err_t *err);
/* indexes in cmd_ws and cmd_ended the commands of a store written
 * before those existed: an engine runs it when it had to create
 * cmd_ws (LMDB: at open) */
int wh_state_audit_backfill(wh_etxn_t *t, wh_err_t *err);

/* state_jobs.c */
int wh_state_job_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_job_t *out, wh_err_t *err);
int wh_state_job_put(wh_etxn_t *t, const wh_job_t *job, wh_err_t *err);
int wh_state_job_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_err_t *err);
int wh_state_job_each(wh_etxn_t *t, wh_str_t ws, wh_engine_job_pt cb,
    void *ctx, wh_err_t *err);
int wh_state_exec_put(wh_etxn_t *t, wh_str_t ws, wh_str_t job,
    uint64_t idx, const wh_job_exec_t *x, wh_err_t *err);
int wh_state_exec_each(wh_etxn_t *t, wh_str_t ws, wh_str_t job,
    uint64_t from, wh_engine_exec_pt cb, void *ctx, wh_err_t *err);
int wh_state_exec_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t job,
    uint64_t idx, wh_err_t *err);

/* state_sources.c */
int wh_state_source_put(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_str_t record, wh_err_t *err);
int wh_state_source_del(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_err_t *err);
int wh_state_source_each(wh_etxn_t *t, wh_engine_source_pt cb, void *ctx,
    wh_err_t *err);
int wh_state_source_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
    wh_str_t *record, wh_err_t *err);

/* the state operations of an engine's table (engine.h), in the order
 * of wh_engine_ops_s: every engine stores the same records */
#define WH_STATE_OPS                                                         \
    .client_get = wh_state_client_get,                                       \
    .client_put = wh_state_client_put,                                       \
    .client_list = wh_state_client_list,                                     \
    .client_revoke = wh_state_client_revoke,                                 \
    .revocations = wh_state_revocations,                                     \
    .client_each = wh_state_client_each,                                     \
    .cmd_seq = wh_state_cmd_seq,                                             \
    .cmd_set_seq = wh_state_cmd_set_seq,                                     \
    .cmd_seq_take = wh_state_cmd_seq_take,                                   \
    .cmd_get = wh_state_cmd_get,                                             \
    .cmd_insert = wh_state_cmd_insert,                                       \
    .cmd_update = wh_state_cmd_update,                                       \
    .cmd_idem = wh_state_cmd_idem,                                           \
    .cmd_list = wh_state_cmd_list,                                           \
    .cmd_index_clients = wh_state_cmd_index_clients,                         \
    .cmd_open = wh_state_cmd_open,                                           \
    .cmd_forget_client = wh_state_cmd_forget_client,                         \
    .job_get = wh_state_job_get,                                             \
    .job_put = wh_state_job_put,                                             \
    .job_delete = wh_state_job_delete,                                       \
    .job_each = wh_state_job_each,                                           \
    .exec_put = wh_state_exec_put,                                           \
    .exec_each = wh_state_exec_each,                                         \
    .source_put = wh_state_source_put,                                       \
    .source_del = wh_state_source_del,                                       \
    .source_each = wh_state_source_each,                                     \
    .source_get = wh_state_source_get,                                       \
    .cmd_list_ws = wh_state_cmd_list_ws,                                     \
    .cmd_prune = wh_state_cmd_prune,                                         \
    .cmd_delete = wh_state_cmd_delete,                                       \
    .exec_delete = wh_state_exec_delete

#endif /* WH_STATE_H */

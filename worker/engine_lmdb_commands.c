/*
 * The LMDB engine's commands.  A stored command is a JSON object:
 *
 *   {"client":"..","command":"..","payload":"<its JSON text>",
 *    "priority":5,"status":1,"attempt":1,"seq":42,"created":ms,
 *    "updated":ms,"expires":ms,"deadline":ms,"idem":"..",
 *    "result":"<JSON text>","error":"..","reason":"..",
 *    "history":[{"status":0,"at":ms},{"status":1,"at":ms,"attempt":1,
 *                "session":".."}]}
 *
 * payload and result are kept as the text the user sent, so that they
 * go out with their own bytes.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine_lmdb.h"


/* the strings of a command besides those of its history */
#define WH_LMDB_CMD_STRS  13

typedef struct {
    unsigned char    *key;
    size_t            klen;
    wh_str_t          ws, id;
} wh_lmdb_open_t;


/* ------------------------------------------------------------- keys */


/* ws "\0" client "\0" idempotency key */
size_t
wh_key_idem(unsigned char *buf, wh_str_t ws, wh_str_t client_id,
    wh_str_t idem)
{
    size_t  n;

    n = wh_key_pair(buf, ws, client_id);
    buf[n] = '\0';
    memcpy(buf + n + 1, idem.data, idem.len);

    return n + 1 + idem.len;
}


/* ws "\0" seq: the workspace's commands in creation order */
size_t
wh_key_ws_seq(unsigned char *buf, wh_str_t ws, uint64_t seq)
{
    memcpy(buf, ws.data, ws.len);
    buf[ws.len] = '\0';
    wh_be64_put(buf + ws.len + 1, seq);

    return ws.len + 1 + WH_BE64_LEN;
}


/* ended ms, ws "\0" id: the ended commands, the oldest end first */
size_t
wh_key_ended(unsigned char *buf, int64_t ended_ms, wh_str_t ws, wh_str_t id)
{
    wh_be64_put(buf, (uint64_t) ended_ms);

    return WH_BE64_LEN + wh_key_pair(buf + WH_BE64_LEN, ws, id);
}


/* ------------------------------------------------------- encoding */


static int
wh_rec_history(json_t *h, wh_command_t *out, wh_str_t *strs,
    wh_str_t **dst)
{
    size_t           i, n;
    json_t          *e;
    wh_cmd_event_t  *ev;

    n = json_array_size(h);

    if (n == 0) {
        return 0;
    }

    out->history = calloc(n, sizeof(wh_cmd_event_t));

    if (out->history == NULL) {
        return -1;
    }

    out->nhistory = n;
    out->history_cap = n;

    json_array_foreach(h, i, e) {
        ev = &out->history[i];
        ev->status = (wh_cmd_status_e) wh_lmdb_int(e, "status");
        ev->at_ms = wh_lmdb_int(e, "at");
        ev->attempt = (unsigned) wh_lmdb_int(e, "attempt");
        strs[2 * i] = wh_lmdb_str(e, "session");
        strs[2 * i + 1] = wh_lmdb_str(e, "reason");
        dst[2 * i] = &ev->session;
        dst[2 * i + 1] = &ev->reason;
    }

    return 0;
}


static int
wh_rec_decode(json_t *obj, wh_str_t ws, wh_str_t id, wh_command_t *out)
{
    size_t     i, n;
    json_t    *h;
    wh_str_t   strs[WH_LMDB_CMD_STRS + 2 * WH_CMD_HISTORY_MAX];
    wh_str_t  *dst[WH_LMDB_CMD_STRS + 2 * WH_CMD_HISTORY_MAX];
    const char  *keys[] = { "client", "command", "payload", "idem",
                            "result", "error", "reason", "lane",
                            "supersede", "issued_by", "job" };

    memset(out, 0, sizeof(wh_command_t));

    strs[0] = ws;
    strs[1] = id;
    dst[0] = &out->ws;
    dst[1] = &out->id;
    dst[2] = &out->client_id;
    dst[3] = &out->command;
    dst[4] = &out->payload;
    dst[5] = &out->idem;
    dst[6] = &out->result;
    dst[7] = &out->error;
    dst[8] = &out->reason;
    dst[9] = &out->lane;
    dst[10] = &out->supersede;
    dst[11] = &out->issued_by;
    dst[12] = &out->job;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        strs[2 + i] = wh_lmdb_str(obj, keys[i]);
    }

    out->priority = (unsigned) wh_lmdb_int(obj, "priority");
    out->seq = (uint64_t) wh_lmdb_int(obj, "seq");
    out->state.status = (wh_cmd_status_e) wh_lmdb_int(obj, "status");
    out->state.attempt = (unsigned) wh_lmdb_int(obj, "attempt");
    out->state.expires_ms = wh_lmdb_int(obj, "expires");
    out->state.deadline_ms = wh_lmdb_int(obj, "deadline");
    out->created_ms = wh_lmdb_int(obj, "created");
    out->updated_ms = wh_lmdb_int(obj, "updated");
    out->state.not_before_ms = wh_lmdb_int(obj, "not_before");
    out->job_idx = (uint64_t) wh_lmdb_int(obj, "jidx");
    out->state.lane = wh_cmd_lane_hash(strs[9].data, strs[9].len);

    h = json_object_get(obj, "history");
    n = json_array_size(h) > WH_CMD_HISTORY_MAX ? 0 : json_array_size(h);

    if (n && wh_rec_history(h, out, strs + WH_LMDB_CMD_STRS,
                            dst + WH_LMDB_CMD_STRS) != 0)
    {
        return -1;
    }

    if (wh_strs_copy(&out->mem, dst, strs, WH_LMDB_CMD_STRS + 2 * n) != 0)
    {
        wh_command_free(out);
        return -1;
    }

    return 0;
}


static int
wh_rec_set_str(json_t *obj, const char *key, wh_str_t s)
{
    return s.len ? json_object_set_new(obj, key,
                                       json_stringn(s.data, s.len))
                 : 0;
}


static json_t *
wh_rec_event(const wh_cmd_event_t *ev)
{
    json_t  *e;

    e = json_pack("{s:i,s:I}", "status", (int) ev->status,
                  "at", (json_int_t) ev->at_ms);

    if (e != NULL && ev->attempt
        && (json_object_set_new(e, "attempt", json_integer(ev->attempt))
            | json_object_set_new(e, "session",
                                  json_stringn(wh_lmdb_set(ev->session).data,
                                               ev->session.len))) != 0)
    {
        json_decref(e);
        return NULL;
    }

    if (e != NULL && wh_rec_set_str(e, "reason", ev->reason) != 0) {
        json_decref(e);
        return NULL;
    }

    return e;
}


/* the JSON text of a command, malloc()ed; NULL out of memory */
static char *
wh_rec_encode(const wh_command_t *cmd)
{
    int      rc;
    char      *text;
    size_t     i;
    json_t    *obj, *h;
    wh_str_t   client, name, payload;

    client = wh_lmdb_set(cmd->client_id);
    name = wh_lmdb_set(cmd->command);
    payload = wh_lmdb_set(cmd->payload);
    h = json_array();
    obj = json_pack("{s:s%,s:s%,s:s%,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:I}",
                    "client", client.data, client.len,
                    "command", name.data, name.len,
                    "payload", payload.data, payload.len,
                    "priority", (int) cmd->priority,
                    "status", (int) cmd->state.status,
                    "attempt", (int) cmd->state.attempt,
                    "seq", (json_int_t) cmd->seq,
                    "created", (json_int_t) cmd->created_ms,
                    "updated", (json_int_t) cmd->updated_ms,
                    "expires", (json_int_t) cmd->state.expires_ms,
                    "deadline", (json_int_t) cmd->state.deadline_ms);

    rc = obj == NULL || h == NULL;

    for (i = 0; rc == 0 && i < cmd->nhistory; i++) {
        rc = json_array_append_new(h, wh_rec_event(&cmd->history[i]));
    }

    if (rc == 0) {
        rc = json_object_set(obj, "history", h)
             | wh_rec_set_str(obj, "idem", cmd->idem)
             | wh_rec_set_str(obj, "result", cmd->result)
             | wh_rec_set_str(obj, "error", cmd->error)
             | wh_rec_set_str(obj, "reason", cmd->reason)
             | wh_rec_set_str(obj, "lane", cmd->lane)
             | wh_rec_set_str(obj, "supersede", cmd->supersede)
             | wh_rec_set_str(obj, "issued_by", cmd->issued_by)
             | wh_rec_set_str(obj, "job", cmd->job);
    }

    if (rc == 0 && cmd->job.len) {
        rc = json_object_set_new(obj, "jidx",
                                 json_integer((json_int_t) cmd->job_idx));
    }

    if (rc == 0 && cmd->state.not_before_ms) {
        rc = json_object_set_new(obj, "not_before",
                                 json_integer(cmd->state.not_before_ms));
    }

    text = rc ? NULL : json_dumps(obj, JSON_COMPACT);
    json_decref(h);
    json_decref(obj);

    return text;
}


/* -------------------------------------------------- reads, writes */


int
wh_lmdb_cmd_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_command_t *out,
    wh_err_t *err)
{
    int            rc;
    json_t        *obj;
    MDB_val        k, v;
    json_error_t   je;
    unsigned char  key[WH_LMDB_KEY_MAX];

    if (id.len == 0 || id.len > WH_CMD_ID_MAX) {
        return 0;
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, id);

    rc = mdb_get(wh_lmdb_stxn(t), wh_lmdb_of(t)->cmds_db, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return wh_mdb_error(rc, "reading a command", err);
    }

    obj = json_loadb(v.mv_data, v.mv_size, 0, &je);

    if (obj == NULL || !json_is_string(json_object_get(obj, "client"))) {
        json_decref(obj);
        return wh_err(err, 503, "corrupt command %.*s: %s", (int) id.len,
                      id.data, je.text);
    }

    rc = wh_rec_decode(obj, ws, id, out);
    json_decref(obj);

    return rc ? wh_err(err, 503, "out of memory") : 1;
}


static int
wh_lmdb_cmd_save(wh_etxn_t *t, const wh_command_t *cmd, unsigned flags,
    wh_err_t *err)
{
    int            rc;
    char          *text;
    MDB_val        k, v;
    unsigned char  key[WH_LMDB_KEY_MAX];

    text = wh_rec_encode(cmd);

    if (text == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, cmd->ws, cmd->id);
    v.mv_data = text;
    v.mv_size = strlen(text);

    rc = mdb_put(wh_lmdb_stxn(t), wh_lmdb_of(t)->cmds_db, &k, &v, flags);
    free(text);

    if (rc == MDB_KEYEXIST) {
        return wh_err(err, 503, "command id %.*s taken", (int) cmd->id.len,
                      cmd->id.data);
    }

    return rc ? wh_mdb_error(rc, "writing a command", err) : 0;
}


static int
wh_lmdb_put_index(MDB_txn *txn, MDB_dbi dbi, const unsigned char *key,
    size_t klen, wh_str_t id, wh_err_t *err)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = (void *) key;
    k.mv_size = klen;
    v.mv_data = (void *) id.data;
    v.mv_size = id.len;

    rc = mdb_put(txn, dbi, &k, &v, 0);

    return rc ? wh_mdb_error(rc, "indexing a command", err) : 0;
}


int
wh_lmdb_cmd_index_ws(wh_etxn_t *t, const wh_command_t *cmd, wh_err_t *err)
{
    unsigned char  key[WH_LMDB_KEY_MAX];

    return wh_lmdb_put_index(wh_lmdb_stxn(t), wh_lmdb_of(t)->ws_db, key,
                             wh_key_ws_seq(key, cmd->ws, cmd->seq), cmd->id,
                             err);
}


/* an ended command waits for the retention; one of a job goes with its
 * job instead (its executions list it until then) */
int
wh_lmdb_cmd_index_ended(wh_etxn_t *t, const wh_command_t *cmd,
    wh_err_t *err)
{
    unsigned char  key[WH_LMDB_KEY_MAX + WH_BE64_LEN];

    if (cmd->job.len) {
        return 0;
    }

    return wh_lmdb_put_index(wh_lmdb_stxn(t), wh_lmdb_of(t)->ended_db, key,
                             wh_key_ended(key, cmd->updated_ms, cmd->ws,
                                          cmd->id), cmd->id, err);
}


int
wh_lmdb_cmd_insert(wh_etxn_t *t, const wh_command_t *cmd, wh_err_t *err)
{
    size_t             klen;
    unsigned char      key[WH_LMDB_KEY_MAX];
    wh_engine_lmdb_t  *e = wh_lmdb_of(t);

    if (wh_lmdb_cmd_save(t, cmd, MDB_NOOVERWRITE, err) != 0) {
        return -1;
    }

    klen = wh_key_seq(key, cmd->ws, cmd->client_id, cmd->seq);

    if (wh_lmdb_put_index(wh_lmdb_stxn(t), e->open_db, key, klen, cmd->id, err)
        != 0
        || wh_lmdb_put_index(wh_lmdb_stxn(t), e->client_db, key, klen, cmd->id,
                             err) != 0
        || wh_lmdb_cmd_index_ws(t, cmd, err) != 0)
    {
        return -1;
    }

    if (cmd->idem.len == 0) {
        return 0;
    }

    klen = wh_key_idem(key, cmd->ws, cmd->client_id, cmd->idem);

    return wh_lmdb_put_index(wh_lmdb_stxn(t), e->idem_db, key, klen,
                             cmd->id, err);
}


int
wh_lmdb_cmd_update(wh_etxn_t *t, const wh_command_t *cmd, wh_err_t *err)
{
    int            rc;
    MDB_val        k;
    unsigned char  key[WH_LMDB_KEY_MAX];

    if (wh_lmdb_cmd_save(t, cmd, 0, err) != 0) {
        return -1;
    }

    if (wh_cmd_is_open(cmd->state.status)) {
        return 0;
    }

    k.mv_data = key;
    k.mv_size = wh_key_seq(key, cmd->ws, cmd->client_id, cmd->seq);
    rc = mdb_del(wh_lmdb_stxn(t), wh_lmdb_of(t)->open_db, &k, NULL);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_mdb_error(rc, "closing a command", err);
    }

    return wh_lmdb_cmd_index_ended(t, cmd, err);
}


int
wh_lmdb_cmd_idem(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    wh_str_t idem, wh_command_t *out, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    wh_str_t       id;
    unsigned char  key[WH_LMDB_KEY_MAX];

    k.mv_data = key;
    k.mv_size = wh_key_idem(key, ws, client_id, idem);

    rc = mdb_get(wh_lmdb_stxn(t), wh_lmdb_of(t)->idem_db, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return wh_mdb_error(rc, "reading an idempotency key", err);
    }

    id.data = v.mv_data;
    id.len = v.mv_size;

    return wh_lmdb_cmd_get(t, ws, id, out, err);
}


/* one listed command, if its status is in mask */
static int
wh_lmdb_cmd_list_item(wh_etxn_t *t, wh_str_t ws, const MDB_val *v,
    unsigned mask, wh_cmd_list_t *out, wh_err_t *err)
{
    int            rc;
    wh_str_t       id;
    wh_command_t   cmd;

    id.data = v->mv_data;
    id.len = v->mv_size;

    rc = wh_lmdb_cmd_get(t, ws, id, &cmd, err);

    if (rc <= 0) {
        return rc;
    }

    if (mask != 0 && !(mask & (1u << cmd.state.status))) {
        wh_command_free(&cmd);
        return 0;
    }

    if (wh_cmd_list_add(out) == NULL) {
        wh_command_free(&cmd);
        return wh_err(err, 503, "out of memory");
    }

    out->items[out->n - 1] = cmd;

    return 0;
}


int
wh_lmdb_cmd_list(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    uint64_t after, size_t limit, unsigned mask, wh_cmd_list_t *out,
    wh_err_t *err)
{
    int            rc;
    size_t         plen;
    uint64_t       last = 0;
    MDB_val        k, v;
    MDB_cursor    *cur;
    unsigned char  key[WH_LMDB_KEY_MAX];

    memset(out, 0, sizeof(wh_cmd_list_t));

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->client_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    k.mv_data = key;
    k.mv_size = wh_key_seq(key, ws, client_id, after + 1);
    plen = k.mv_size - WH_BE64_LEN;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != plen + WH_BE64_LEN
            || memcmp(k.mv_data, key, plen) != 0)
        {
            break;
        }

        if (out->n == limit) {
            out->next = last;
            break;
        }

        if (wh_lmdb_cmd_list_item(t, ws, &v, mask, out, err) != 0) {
            mdb_cursor_close(cur);
            return -1;
        }

        last = wh_be64_get((unsigned char *) k.mv_data + plen);
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_mdb_error(rc, "listing commands", err);
    }

    return 0;
}


/* --------------------------------------------------- open commands */


static void
wh_lmdb_open_free(wh_lmdb_open_t *list, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        free(list[i].key);
    }

    free(list);
}


/* copies the open index entries under the prefix (all if plen is 0):
 * the callbacks change the index */
static int
wh_lmdb_open_collect(wh_etxn_t *t, const unsigned char *prefix,
    size_t plen, wh_lmdb_open_t **out, size_t *n, wh_err_t *err)
{
    int              rc, oom = 0;
    size_t           cap = 0;
    MDB_val          k, v;
    const char      *nul;
    MDB_cursor      *cur;
    wh_lmdb_open_t  *list = NULL, *p, *e;

    *n = 0;
    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->open_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    k.mv_data = (void *) prefix;
    k.mv_size = plen;

    for (rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
         rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0) {
            break;
        }

        nul = memchr(k.mv_data, '\0', k.mv_size);

        if (nul == NULL || v.mv_size == 0 || v.mv_size > WH_CMD_ID_MAX) {
            continue;
        }

        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            p = realloc(list, cap * sizeof(wh_lmdb_open_t));

            if (p == NULL) {
                oom = 1;
                break;
            }

            list = p;
        }

        e = &list[*n];
        e->key = malloc(k.mv_size + v.mv_size);

        if (e->key == NULL) {
            oom = 1;
            break;
        }

        memcpy(e->key, k.mv_data, k.mv_size);
        memcpy(e->key + k.mv_size, v.mv_data, v.mv_size);
        e->klen = k.mv_size;
        e->ws.data = (const char *) e->key;
        e->ws.len = nul - (const char *) k.mv_data;
        e->id.data = (const char *) e->key + k.mv_size;
        e->id.len = v.mv_size;
        (*n)++;
    }

    mdb_cursor_close(cur);
    *out = list;

    if (oom) {
        return wh_err(err, 503, "out of memory");
    }

    return rc && rc != MDB_NOTFOUND
           ? wh_mdb_error(rc, "reading open commands", err) : 0;
}


static int
wh_lmdb_open_one(wh_etxn_t *t, wh_lmdb_open_t *o, int start,
    wh_engine_cmd_pt cb, void *ctx, wh_err_t *err)
{
    int            rc;
    MDB_val        k;
    wh_command_t   cmd;

    rc = wh_lmdb_cmd_get(t, o->ws, o->id, &cmd, err);

    if (rc < 0 && start) {
        /* one corrupt command does not keep the others from loading */
        wh_log_error(t->engine->log, "commands: open command %.*s: %s",
                     (int) o->id.len, o->id.data, err->msg);
        return 0;
    }

    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        /* an index entry without its command */
        k.mv_data = o->key;
        k.mv_size = o->klen;
        rc = mdb_del(wh_lmdb_stxn(t), wh_lmdb_of(t)->open_db, &k, NULL);

        return rc && rc != MDB_NOTFOUND
               ? wh_mdb_error(rc, "closing a command", err) : 0;
    }

    rc = cb(ctx, &cmd, err);
    wh_command_free(&cmd);

    return rc;
}


int
wh_lmdb_cmd_open(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    wh_engine_cmd_pt cb, void *ctx, wh_err_t *err)
{
    int              rc = 0;
    size_t           i, n, plen = 0;
    wh_lmdb_open_t  *list = NULL;
    unsigned char    key[WH_LMDB_KEY_MAX];

    if (ws.len) {
        plen = wh_key_seq(key, ws, client_id, 0) - WH_BE64_LEN;
    }

    if (wh_lmdb_open_collect(t, key, plen, &list, &n, err) != 0) {
        wh_lmdb_open_free(list, n);
        return -1;
    }

    for (i = 0; rc == 0 && i < n; i++) {
        if (plen && list[i].klen != plen + WH_BE64_LEN) {
            continue;
        }

        rc = wh_lmdb_open_one(t, &list[i], plen == 0, cb, ctx, err);
    }

    wh_lmdb_open_free(list, n);

    return rc;
}


int
wh_lmdb_cmd_forget_client(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    wh_err_t *err)
{
    int            rc;
    size_t         plen;
    MDB_val        k, v;
    MDB_cursor    *cur;
    unsigned char  key[WH_LMDB_KEY_MAX];

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->idem_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, client_id);
    key[k.mv_size++] = '\0';
    plen = k.mv_size;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size < plen || memcmp(k.mv_data, key, plen) != 0) {
            break;
        }

        rc = mdb_cursor_del(cur, 0);

        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_mdb_error(rc, "forgetting idempotency keys", err);
    }

    return 0;
}


/* ------------------------------------------------------------ seq */


int
wh_lmdb_cmd_seq(wh_etxn_t *t, uint64_t *last, wh_err_t *err)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = "seq";
    k.mv_size = 3;
    rc = mdb_get(wh_lmdb_stxn(t), wh_lmdb_of(t)->meta_db, &k, &v);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_mdb_error(rc, "reading the command seq", err);
    }

    *last = rc == 0 && v.mv_size == 8 ? wh_be64_get(v.mv_data) : 0;

    return 0;
}


int
wh_lmdb_cmd_set_seq(wh_etxn_t *t, uint64_t last, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  val[WH_BE64_LEN];

    wh_be64_put(val, last);
    k.mv_data = "seq";
    k.mv_size = 3;
    v.mv_data = val;
    v.mv_size = WH_BE64_LEN;

    rc = mdb_put(wh_lmdb_stxn(t), wh_lmdb_of(t)->meta_db, &k, &v, 0);

    return rc ? wh_mdb_error(rc, "writing the command seq", err) : 0;
}


int
wh_lmdb_cmd_open_dbs(wh_engine_lmdb_t *e, MDB_txn *txn, wh_err_t *err)
{
    int  rc;

    if ((rc = mdb_dbi_open(txn, "commands", MDB_CREATE, &e->cmds_db)) != 0
        || (rc = mdb_dbi_open(txn, "cmd_open", MDB_CREATE, &e->open_db))
           != 0
        || (rc = mdb_dbi_open(txn, "cmd_client", MDB_CREATE,
                              &e->client_db)) != 0
        || (rc = mdb_dbi_open(txn, "cmd_idem", MDB_CREATE, &e->idem_db))
           != 0
        || (rc = mdb_dbi_open(txn, "cmd_meta", MDB_CREATE, &e->meta_db))
           != 0)
    {
        return wh_mdb_error(rc, "opening the command databases", err);
    }

    return 0;
}

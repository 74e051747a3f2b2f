/*
 * The clients registry.  Like the commands, every read and write is an
 * op of the batch (batch.h): it sees what earlier ops of the same turn
 * wrote, and answers only after the commit.
 *
 * A stored client is a JSON object:
 *
 *   {"name":"..","client_type":"..","metadata":"<its JSON text>",
 *    "created":ms,"last_seen":ms}
 */

#include <stdlib.h>
#include <string.h>

#include "wh_time.h"
#include "message.h"
#include "clients_internal.h"


/* ------------------------------------------------------------ keys */


int
wh_client_id_valid(const char *id, size_t len)
{
    size_t  i;

    if (len == 0 || len > WH_CMD_CLIENT_MAX || !wh_utf8_valid(id, len)) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((unsigned char) id[i] < 0x20 || id[i] == 0x7f || id[i] == '/') {
            return 0;
        }
    }

    return 1;
}


/* --------------------------------------------------------- records */


wh_str_t
wh_cl_str(json_t *obj, const char *key)
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


/* 1 found (*obj set), 0 not, -1 error */
int
wh_cl_load(wh_clients_t *cl, MDB_txn *txn, wh_str_t ws, wh_str_t id,
    json_t **obj, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    json_error_t   je;
    unsigned char  key[WH_CL_KEY_MAX];

    *obj = NULL;

    if (id.len == 0 || id.len > WH_CMD_CLIENT_MAX) {
        return 0;
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, id);

    rc = mdb_get(txn, cl->clients_db, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return wh_mdb_error(rc, "reading a client", err);
    }

    *obj = json_loadb(v.mv_data, v.mv_size, 0, &je);

    if (!json_is_object(*obj)) {
        json_decref(*obj);
        *obj = NULL;
        return wh_err(err, 503, "corrupt client %.*s: %s", (int) id.len,
                      id.data, je.text);
    }

    return 1;
}


int
wh_cl_save(wh_clients_t *cl, MDB_txn *txn, wh_str_t ws, wh_str_t id,
    json_t *obj, wh_err_t *err)
{
    int            rc;
    char          *text;
    MDB_val        k, v;
    unsigned char  key[WH_CL_KEY_MAX];

    text = json_dumps(obj, JSON_COMPACT);

    if (text == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, id);
    v.mv_data = text;
    v.mv_size = strlen(text);

    rc = mdb_put(txn, cl->clients_db, &k, &v, 0);
    free(text);

    return rc ? wh_mdb_error(rc, "writing a client", err) : 0;
}


int
wh_clients_exists(wh_clients_t *cl, MDB_txn *txn, wh_str_t ws,
    wh_str_t client_id, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[WH_CL_KEY_MAX];

    if (client_id.len == 0 || client_id.len > WH_CMD_CLIENT_MAX) {
        return 0;
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, client_id);

    rc = mdb_get(txn, cl->clients_db, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    return rc ? wh_mdb_error(rc, "reading a client", err) : 1;
}


/* sets the fields the op carries */
int
wh_cl_set_fields(json_t *obj, wh_cl_op_t *op)
{
    int  rc = 0;

    if (op->fields & WH_CL_NAME) {
        rc |= json_object_set_new(obj, "name",
                                  json_stringn(op->name.data,
                                               op->name.len));
    }

    if (op->fields & WH_CL_TYPE) {
        rc |= json_object_set_new(obj, "client_type",
                                  json_stringn(op->client_type.data,
                                               op->client_type.len));
    }

    if ((op->fields & WH_CL_META) && op->metadata.len) {
        rc |= json_object_set_new(obj, "metadata",
                                  json_stringn(op->metadata.data,
                                               op->metadata.len));

    } else if (op->fields & WH_CL_META) {
        /* metadata null removes it; absent already is fine */
        (void) json_object_del(obj, "metadata");
    }

    return rc;
}


int
wh_cl_revoke_txn(wh_clients_t *cl, MDB_txn *txn, wh_cl_op_t *op,
    wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[WH_CL_KEY_MAX], val[8];

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, op->ws, op->client_id);

    rc = mdb_del(txn, cl->clients_db, &k, NULL);

    if (rc != 0) {
        return wh_mdb_error(rc, "deleting a client", err);
    }

    wh_be64_put(val, op->revoke_s);
    v.mv_data = val;
    v.mv_size = 8;

    rc = mdb_put(txn, cl->revoked_db, &k, &v, 0);

    return rc ? wh_mdb_error(rc, "storing a revocation", err) : 0;
}


/* ------------------------------------------------------ session hooks */


static uint16_t
wh_cl_admit(void *ctx, wh_str_t ws, wh_str_t client_id, uint64_t iat)
{
    size_t          klen;
    uint64_t        before;
    unsigned char   key[WH_CL_KEY_MAX];
    wh_clients_t   *cl = ctx;

    if (cl->revoked.count == 0 || client_id.len > WH_CMD_CLIENT_MAX) {
        return 0;
    }

    klen = wh_key_pair(key, ws, client_id);
    before = (uint64_t) (uintptr_t) wh_map_get(&cl->revoked, key, klen);

    return iat < before ? WH_CLOSE_REVOKED : 0;
}


static void
wh_cl_seen(wh_clients_t *cl, wh_cl_op_e kind, wh_str_t ws,
    wh_str_t client_id, wh_str_t client_type, wh_str_t name)
{
    unsigned  fields = 0;
    wh_str_t  strs[6];

    memset(strs, 0, sizeof(strs));
    strs[0] = ws;
    strs[1] = client_id;

    /* what the client says of itself, when it says something */
    if (client_type.len) {
        strs[3] = client_type;
        fields |= WH_CL_TYPE;
    }

    if (name.len) {
        strs[2] = name;
        fields |= WH_CL_NAME;
    }

    wh_cl_queue(cl, kind, NULL, 0, strs, fields, 0);
}


static void
wh_cl_opened(void *ctx, wh_str_t ws, wh_str_t client_id,
    wh_str_t client_type, wh_str_t name)
{
    wh_clients_t  *cl = ctx;

    wh_cl_seen(cl, WH_CL_OP_SEEN, ws, client_id, client_type, name);
    wh_commands_client_online(cl->commands, ws, client_id);
}


static void
wh_cl_updated(void *ctx, wh_str_t ws, wh_str_t client_id,
    wh_str_t client_type, wh_str_t name)
{
    wh_cl_seen(ctx, WH_CL_OP_SEEN, ws, client_id, client_type, name);
}


static void
wh_cl_closed(void *ctx, wh_str_t ws, wh_str_t client_id, unsigned left)
{
    wh_str_t  none = { "", 0 };

    if (left == 0) {
        wh_cl_seen(ctx, WH_CL_OP_GONE, ws, client_id, none, none);
    }
}


void
wh_clients_hello(wh_clients_t *cl, wh_peer_t *peer)
{
    wh_str_t         ws, client_id;
    const char      *nul;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&cl->revoked, &it)) != NULL) {
        nul = memchr(e->key, '\0', e->klen);
        ws.data = (const char *) e->key;
        ws.len = nul - ws.data;
        client_id.data = nul + 1;
        client_id.len = e->klen - ws.len - 1;
        wh_cl_send_revoke(peer, ws, client_id,
                          (uint64_t) (uintptr_t) e->value);
    }
}


/* ------------------------------------------------------ start, end */


static int
wh_cl_init_txn(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    MDB_cursor    *cur;
    wh_clients_t  *cl = ctx;

    (void) st;

    if ((rc = mdb_dbi_open(txn, "clients", MDB_CREATE, &cl->clients_db))
        != 0
        || (rc = mdb_dbi_open(txn, "revoked", MDB_CREATE,
                              &cl->revoked_db)) != 0
        || (rc = mdb_cursor_open(txn, cl->revoked_db, &cur)) != 0)
    {
        return wh_mdb_error(rc, "opening the client databases", err);
    }

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (v.mv_size != 8 || memchr(k.mv_data, '\0', k.mv_size) == NULL
            || wh_map_put(&cl->revoked, k.mv_data, k.mv_size,
                          (void *) (uintptr_t) wh_be64_get(v.mv_data))
               == NULL)
        {
            rc = -1;
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc == -1) {
        return wh_err(err, 503, "cannot load the revocations");
    }

    return rc == MDB_NOTFOUND ? 0 : wh_mdb_error(rc, "loading revocations",
                                               err);
}


int
wh_clients_init(wh_clients_t *cl, wh_store_t *store, wh_batch_t *batch,
    wh_sessions_t *sessions, wh_link_t *link, wh_commands_t *commands,
    wh_log_t *log, wh_err_t *err)
{
    memset(cl, 0, sizeof(wh_clients_t));
    cl->store = store;
    cl->log = log;
    cl->batch = batch;
    cl->sessions = sessions;
    cl->link = link;
    cl->commands = commands;

    if (wh_store_write(store, wh_cl_init_txn, cl, err) != 0) {
        wh_map_free(&cl->revoked);
        return -1;
    }

    sessions->hooks.admit = wh_cl_admit;
    sessions->hooks.opened = wh_cl_opened;
    sessions->hooks.updated = wh_cl_updated;
    sessions->hooks.closed = wh_cl_closed;
    sessions->hooks.ctx = cl;

    if (cl->revoked.count) {
        wh_log_info(log, "clients: %zu revocations loaded",
                    cl->revoked.count);
    }

    return 0;
}


void
wh_clients_free(wh_clients_t *cl)
{
    wh_map_free(&cl->revoked);
}

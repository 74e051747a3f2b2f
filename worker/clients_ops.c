/*
 * The ops of the clients registry in the batch (batch.h): one request
 * or session event each, applied inside the txn, then acted on (a
 * revocation, a disconnect) and answered after the commit.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_time.h"
#include "jsonw.h"
#include "message.h"
#include "clients_internal.h"


/* ------------------------------------------------------ ops: apply */


static int
wh_cl_apply_create(wh_clients_t *cl, MDB_txn *txn, wh_cl_op_t *op,
    int64_t now, wh_err_t *err)
{
    int      rc;
    json_t  *obj;

    rc = wh_clients_exists(cl, txn, op->ws, op->client_id, err);

    if (rc != 0) {
        return rc < 0 ? -1 : wh_cl_error(op, 409, "conflict",
                                         "a client with this id exists");
    }

    obj = json_pack("{s:I,s:I}", "created", (json_int_t) now,
                    "last_seen", (json_int_t) 0);

    if (obj == NULL || wh_cl_set_fields(obj, op) != 0) {
        json_decref(obj);
        return wh_err(err, 503, "out of memory");
    }

    op->op.sync = 1;
    rc = wh_cl_save(cl, txn, op->ws, op->client_id, obj, err) != 0
         || wh_cl_answer(op, 201, obj, err) != 0 ? -1 : 0;
    json_decref(obj);

    return rc;
}


static int
wh_cl_apply_get(wh_clients_t *cl, MDB_txn *txn, wh_cl_op_t *op,
    int64_t now, wh_err_t *err)
{
    int      rc;
    json_t  *obj;

    rc = wh_cl_load(cl, txn, op->ws, op->client_id, &obj, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cl_error(op, 404, "not_found",
                                         "no such client");
    }

    if (op->kind == WH_CL_OP_PATCH) {
        op->op.sync = 1;

        if (wh_cl_set_fields(obj, op) != 0) {
            json_decref(obj);
            return wh_err(err, 503, "out of memory");
        }

        if (wh_cl_save(cl, txn, op->ws, op->client_id, obj, err) != 0) {
            json_decref(obj);
            return -1;
        }
    }

    (void) now;

    rc = wh_cl_answer(op, 200, obj, err);
    json_decref(obj);

    return rc;
}


static int
wh_cl_list_item(wh_clients_t *cl, wh_cl_op_t *op, const MDB_val *k,
    const MDB_val *v, size_t plen, wh_err_t *err)
{
    int           rc;
    json_t       *obj;
    wh_str_t      id;
    json_error_t  je;

    id.data = (const char *) k->mv_data + plen;
    id.len = k->mv_size - plen;
    obj = json_loadb(v->mv_data, v->mv_size, 0, &je);

    if (!json_is_object(obj)) {
        json_decref(obj);
        return wh_err(err, 503, "corrupt client %.*s: %s", (int) id.len,
                      id.data, je.text);
    }

    rc = wh_cl_object(cl, &op->answer, op->ws, id, obj);
    json_decref(obj);

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


/* the clients of the workspace after the cursor, by id; *last is the
 * last id shown when more follow */
static int
wh_cl_list_scan(wh_clients_t *cl, wh_cl_op_t *op, MDB_cursor *cur,
    wh_str_t *last, wh_err_t *err)
{
    int            rc;
    size_t         n = 0, plen;
    MDB_val        k, v;
    unsigned char  key[WH_CL_KEY_MAX];

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, op->ws, op->cursor);
    plen = op->ws.len + 1;
    last->len = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size <= plen || memcmp(k.mv_data, key, plen) != 0) {
            last->len = 0;
            return 0;
        }

        if (k.mv_size == plen + op->cursor.len
            && memcmp((char *) k.mv_data + plen, op->cursor.data,
                      op->cursor.len) == 0)
        {
            continue;
        }

        if (n == op->limit) {
            return 0;
        }

        if (wh_cl_list_item(op->cl, op, &k, &v, plen, err) != 0) {
            return -1;
        }

        n++;
        last->data = (const char *) k.mv_data + plen;
        last->len = k.mv_size - plen;
    }

    (void) cl;
    last->len = 0;

    return rc == MDB_NOTFOUND ? 0 : wh_mdb_error(rc, "listing clients", err);
}


static int
wh_cl_apply_list(wh_clients_t *cl, MDB_txn *txn, wh_cl_op_t *op,
    wh_err_t *err)
{
    int          rc;
    wh_str_t     last;
    MDB_cursor  *cur;

    rc = mdb_cursor_open(txn, cl->clients_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    op->status = 200;
    rc = wh_jw_open(&op->answer, NULL, '{')
         | wh_jw_open(&op->answer, "items", '[');

    if (rc != 0 || wh_cl_list_scan(cl, op, cur, &last, err) != 0) {
        mdb_cursor_close(cur);
        return rc ? wh_err(err, 503, "out of memory") : -1;
    }

    rc = wh_jw_close(&op->answer, ']');

    /* last points into the txn's pages: used before the cursor closes */
    if (last.len) {
        rc |= wh_jw_str(&op->answer, "next", last.data, last.len);
    } else {
        rc |= wh_jw_raw(&op->answer, "next", "null", 4);
    }

    mdb_cursor_close(cur);
    rc |= wh_jw_close(&op->answer, '}');

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


static int
wh_cl_apply_delete(wh_clients_t *cl, MDB_txn *txn, wh_cl_op_t *op,
    int64_t now, wh_err_t *err)
{
    int  rc;

    rc = wh_clients_exists(cl, txn, op->ws, op->client_id, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cl_error(op, 404, "not_found",
                                         "no such client");
    }

    op->op.sync = 1;

    /* tokens issued up to this second are refused: iat has seconds */
    op->revoke_s = (uint64_t) (now + 999) / 1000;

    if (wh_cl_revoke_txn(cl, txn, op, err) != 0
        || wh_commands_cancel_client(cl->commands, txn, op->ws,
                                     op->client_id, now, &op->notes, err)
           != 0
        || wh_commands_forget_client(cl->commands, txn, op->ws,
                                     op->client_id, err) != 0)
    {
        return -1;
    }

    op->status = 200;
    rc = wh_jw_open(&op->answer, NULL, '{');
    rc |= wh_jw_str(&op->answer, "id", op->client_id.data,
                    op->client_id.len);
    rc |= wh_jw_bool(&op->answer, "deleted", 1);
    rc |= wh_jw_close(&op->answer, '}');

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


static int
wh_cl_apply_disconnect(wh_clients_t *cl, MDB_txn *txn, wh_cl_op_t *op,
    wh_err_t *err)
{
    int  rc;

    rc = wh_clients_exists(cl, txn, op->ws, op->client_id, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cl_error(op, 404, "not_found",
                                         "no such client");
    }

    op->status = 200;
    rc = wh_jw_open(&op->answer, NULL, '{');
    rc |= wh_jw_str(&op->answer, "id", op->client_id.data,
                    op->client_id.len);
    rc |= wh_jw_int(&op->answer, "disconnected",
                    wh_sessions_of_client(cl->sessions, op->ws,
                                          op->client_id));
    rc |= wh_jw_close(&op->answer, '}');

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


/* a session opened (implicit registration) or its last one closed */
static int
wh_cl_apply_seen(wh_clients_t *cl, MDB_txn *txn, wh_cl_op_t *op,
    int64_t now, wh_err_t *err)
{
    int      rc;
    json_t  *obj;

    rc = wh_cl_load(cl, txn, op->ws, op->client_id, &obj, err);

    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        if (op->kind == WH_CL_OP_GONE) {
            /* deleted meanwhile: nothing to remember */
            return 0;
        }

        obj = json_pack("{s:s,s:s,s:I}", "name", "", "client_type", "",
                        "created", (json_int_t) now);
    }

    if (obj == NULL
        || json_object_set_new(obj, "last_seen", json_integer(now)) != 0
        || wh_cl_set_fields(obj, op) != 0)
    {
        json_decref(obj);
        return wh_err(err, 503, "out of memory");
    }

    rc = wh_cl_save(cl, txn, op->ws, op->client_id, obj, err);
    json_decref(obj);

    return rc;
}


static int
wh_cl_op_apply(wh_op_t *base, MDB_txn *txn, wh_err_t *err)
{
    int64_t        now;
    wh_cl_op_t    *op = (wh_cl_op_t *) base;
    wh_clients_t  *cl = op->cl;

    wh_cmd_notes_done(cl->commands, &op->notes, 0);
    op->answer.len = 0;
    op->status = 500;

    now = wh_time_ms();

    switch (op->kind) {

    case WH_CL_OP_CREATE:
        return wh_cl_apply_create(cl, txn, op, now, err);

    case WH_CL_OP_LIST:
        return wh_cl_apply_list(cl, txn, op, err);

    case WH_CL_OP_GET:
    case WH_CL_OP_PATCH:
        return wh_cl_apply_get(cl, txn, op, now, err);

    case WH_CL_OP_DELETE:
        return wh_cl_apply_delete(cl, txn, op, now, err);

    case WH_CL_OP_DISCONNECT:
        return wh_cl_apply_disconnect(cl, txn, op, err);

    default:
        return wh_cl_apply_seen(cl, txn, op, now, err);
    }
}


/* ------------------------------------------------------- ops: done */


static void
wh_cl_revoked_set(wh_clients_t *cl, wh_str_t ws, wh_str_t client_id,
    uint64_t before)
{
    size_t         klen;
    uint64_t       old;
    unsigned char  key[WH_CL_KEY_MAX];

    klen = wh_key_pair(key, ws, client_id);
    old = (uint64_t) (uintptr_t) wh_map_get(&cl->revoked, key, klen);

    if (old < before
        && wh_map_put(&cl->revoked, key, klen, (void *) (uintptr_t) before)
           == NULL)
    {
        wh_log_error(cl->log, "clients: out of memory: the revocation of "
                     "%.*s applies after a restart", (int) client_id.len,
                     client_id.data);
    }
}


void
wh_cl_send_revoke(wh_peer_t *peer, wh_str_t ws, wh_str_t client_id,
    uint64_t before)
{
    wh_link_msg_t  m;

    if (!peer->hello || peer->closing) {
        return;
    }

    memset(&m, 0, sizeof(m));
    m.type = WH_LINK_REVOKE;
    m.workspace = ws;
    m.client_id = client_id;
    m.id2 = before;
    wh_link_send(peer, &m);
}


/* the client is deleted: every worker refuses its old tokens, its
 * sessions close */
static void
wh_cl_deleted(wh_clients_t *cl, wh_cl_op_t *op)
{
    unsigned    n;
    wh_peer_t  *peer;

    wh_cl_revoked_set(cl, op->ws, op->client_id, op->revoke_s);

    for (peer = cl->link->peers; peer != NULL; peer = peer->next) {
        wh_cl_send_revoke(peer, op->ws, op->client_id, op->revoke_s);
    }

    n = wh_sessions_kick_client(cl->sessions, op->ws, op->client_id,
                                WH_CLOSE_REVOKED, "client deleted");

    wh_log_info(cl->log, "clients: %.*s of %.*s deleted, %u sessions "
                "closed", (int) op->client_id.len, op->client_id.data,
                (int) op->ws.len, op->ws.data, n);
}


static void
wh_cl_op_free(wh_cl_op_t *op)
{
    wh_cmd_notes_done(op->cl->commands, &op->notes, 0);
    wh_buf_free(&op->answer);
    free(op->mem);
    free(op);
}


static void
wh_cl_op_done(wh_op_t *base, int committed, const wh_err_t *err)
{
    wh_cl_op_t    *op = (wh_cl_op_t *) base;
    wh_clients_t  *cl = op->cl;

    if (committed && op->status == 200) {
        if (op->kind == WH_CL_OP_DELETE) {
            wh_cl_deleted(cl, op);

        } else if (op->kind == WH_CL_OP_DISCONNECT) {
            (void) wh_sessions_kick_client(cl->sessions, op->ws,
                                           op->client_id, WH_CLOSE_NORMAL,
                                           "disconnected by the API");
        }
    }

    wh_cmd_notes_done(cl->commands, &op->notes, committed);

    if (op->peer != NULL && err != NULL) {
        wh_respond_error(op->peer, op->req_id, (uint16_t) err->status,
                         wh_error_code(err->status),
                         committed ? "stored, but the sync to disk "
                         "failed" : "storage error, retry");

    } else if (op->peer != NULL) {
        wh_respond(op->peer, op->req_id, op->status, op->answer.data,
                   op->answer.len);
    }

    wh_cl_op_free(op);
}


/* strings: ws, client_id, name, client_type, metadata, cursor */
static wh_cl_op_t *
wh_cl_op_new(wh_clients_t *cl, wh_cl_op_e kind, wh_peer_t *peer,
    uint32_t req_id, const wh_str_t *strs)
{
    char        *p;
    size_t       i, total = 0;
    wh_cl_op_t  *op;
    wh_str_t    *dst[6];

    op = calloc(1, sizeof(wh_cl_op_t));

    if (op == NULL) {
        return NULL;
    }

    dst[0] = &op->ws;
    dst[1] = &op->client_id;
    dst[2] = &op->name;
    dst[3] = &op->client_type;
    dst[4] = &op->metadata;
    dst[5] = &op->cursor;

    for (i = 0; i < 6; i++) {
        total += strs[i].len;
    }

    op->mem = malloc(total + 1);

    if (op->mem == NULL) {
        free(op);
        return NULL;
    }

    for (p = op->mem, i = 0; i < 6; i++) {
        dst[i]->data = p;
        dst[i]->len = strs[i].len;

        if (strs[i].len) {
            memcpy(p, strs[i].data, strs[i].len);
        }

        p += strs[i].len;
    }

    op->op.apply = wh_cl_op_apply;
    op->op.done = wh_cl_op_done;
    op->cl = cl;
    op->kind = kind;
    op->peer = peer;
    op->req_id = req_id;
    wh_cmd_notes_init(&op->notes);

    return op;
}


void
wh_cl_queue(wh_clients_t *cl, wh_cl_op_e kind, wh_peer_t *peer,
    uint32_t req_id, const wh_str_t *strs, unsigned fields, size_t limit)
{
    wh_cl_op_t  *op;

    op = wh_cl_op_new(cl, kind, peer, req_id, strs);

    if (op == NULL) {
        if (peer != NULL) {
            wh_respond_error(peer, req_id, 503, "unavailable",
                             "out of memory");
        } else {
            wh_log_error(cl->log, "clients: out of memory");
        }

        return;
    }

    op->fields = fields;
    op->limit = limit;
    wh_batch_add(cl->batch, &op->op, 0);
}

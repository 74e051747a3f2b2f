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

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "wh_channel.h"
#include "wh_time.h"
#include "api.h"
#include "jsonw.h"
#include "message.h"
#include "clients.h"


#define WH_CL_BODY_MAX      (64 * 1024)
#define WH_CL_FIELD_MAX     256       /* bytes of a name or a type */
#define WH_CL_LIMIT_DEF     100
#define WH_CL_LIMIT_MAX     1000
#define WH_CL_ID_RANDOM     8         /* bytes: "cl-" + 16 hex */
#define WH_CL_KEY_MAX       (WH_WORKSPACE_MAX + 1 + WH_CMD_CLIENT_MAX)

typedef enum {
    WH_CL_OP_CREATE = 0,
    WH_CL_OP_LIST,
    WH_CL_OP_GET,
    WH_CL_OP_PATCH,
    WH_CL_OP_DELETE,
    WH_CL_OP_DISCONNECT,
    WH_CL_OP_SEEN,          /* a session opened or registered */
    WH_CL_OP_GONE           /* the client's last session closed */
} wh_cl_op_e;

/* which fields a create or a patch sets */
#define WH_CL_NAME      0x01
#define WH_CL_TYPE      0x02
#define WH_CL_META      0x04

typedef struct {
    wh_op_t           op;
    wh_clients_t     *cl;
    wh_cl_op_e        kind;
    wh_peer_t        *peer;           /* NULL: nobody waits for it */
    uint32_t          req_id;
    uint16_t          status;
    wh_buf_t          answer;
    wh_cmd_notes_t    notes;          /* delete: cancelled commands */
    wh_str_t          ws, client_id, name, client_type, metadata, cursor;
    unsigned          fields;         /* WH_CL_NAME, ... */
    size_t            limit;
    uint64_t          revoke_s;       /* delete: tokens before refused */
    char             *mem;
} wh_cl_op_t;


/* ------------------------------------------------------------ keys */


static size_t
wh_cl_key(unsigned char *buf, wh_str_t ws, wh_str_t client_id)
{
    memcpy(buf, ws.data, ws.len);
    buf[ws.len] = '\0';
    memcpy(buf + ws.len + 1, client_id.data, client_id.len);

    return ws.len + 1 + client_id.len;
}


static void
wh_be64_put(unsigned char *p, uint64_t v)
{
    int  i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char) (v & 0xff);
        v >>= 8;
    }
}


static uint64_t
wh_be64_get(const unsigned char *p)
{
    int       i;
    uint64_t  v = 0;

    for (i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }

    return v;
}


static int
wh_cl_fail(int rc, const char *what, wh_err_t *err)
{
    return wh_err(err, rc == MDB_MAP_FULL ? 507 : 503, "%s: %s", what,
                  mdb_strerror(rc));
}


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


static wh_str_t
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
static int
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
    k.mv_size = wh_cl_key(key, ws, id);

    rc = mdb_get(txn, cl->clients_db, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return wh_cl_fail(rc, "reading a client", err);
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


static int
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
    k.mv_size = wh_cl_key(key, ws, id);
    v.mv_data = text;
    v.mv_size = strlen(text);

    rc = mdb_put(txn, cl->clients_db, &k, &v, 0);
    free(text);

    return rc ? wh_cl_fail(rc, "writing a client", err) : 0;
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
    k.mv_size = wh_cl_key(key, ws, client_id);

    rc = mdb_get(txn, cl->clients_db, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    return rc ? wh_cl_fail(rc, "reading a client", err) : 1;
}


/* sets the fields the op carries */
static int
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


/* the client as the API shows it */
static int
wh_cl_object(wh_clients_t *cl, wh_buf_t *b, wh_str_t ws, wh_str_t id,
    json_t *obj)
{
    int        rc;
    unsigned   n;
    wh_str_t   s;

    n = wh_sessions_of_client(cl->sessions, ws, id);

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_str(b, "id", id.data, id.len);
    s = wh_cl_str(obj, "name");
    rc |= wh_jw_str(b, "name", s.data, s.len);
    s = wh_cl_str(obj, "client_type");
    rc |= wh_jw_str(b, "client_type", s.data, s.len);
    rc |= wh_jw_bool(b, "online", n > 0);
    rc |= wh_jw_int(b, "connections", n);
    rc |= wh_jw_time(b, "last_seen",
                     json_integer_value(json_object_get(obj, "last_seen")));
    rc |= wh_jw_time(b, "created_at",
                     json_integer_value(json_object_get(obj, "created")));

    if ((s = wh_cl_str(obj, "metadata")).len) {
        rc |= wh_jw_raw(b, "metadata", s.data, s.len);
    }

    return rc | wh_jw_close(b, '}');
}


/* ---------------------------------------------------------- answers */


static int
wh_cl_error(wh_cl_op_t *op, uint16_t status, const char *code,
    const char *message)
{
    op->status = status;
    op->answer.len = 0;

    if (wh_json_error(&op->answer, code, message) != 0) {
        op->answer.len = 0;
    }

    return 0;
}


static int
wh_cl_answer(wh_cl_op_t *op, uint16_t status, json_t *obj, wh_err_t *err)
{
    op->status = status;
    op->answer.len = 0;

    if (wh_cl_object(op->cl, &op->answer, op->ws, op->client_id, obj)
        != 0)
    {
        return wh_err(err, 503, "out of memory");
    }

    return 0;
}


static void
wh_cl_respond(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    const void *body, size_t len)
{
    wh_link_msg_t  r;

    memset(&r, 0, sizeof(r));
    r.type = WH_LINK_RESPONSE;
    r.req_id = req_id;
    r.status = status;
    r.body.data = body;
    r.body.len = len;
    wh_link_send(peer, &r);
}


static void
wh_cl_respond_error(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    const char *code, const char *message)
{
    wh_buf_t  b = { 0 };

    if (wh_json_error(&b, code, message) != 0) {
        wh_link_drop(peer, "out of memory");
    } else {
        wh_cl_respond(peer, req_id, status, b.data, b.len);
    }

    wh_buf_free(&b);
}


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
    k.mv_size = wh_cl_key(key, op->ws, op->cursor);
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

    return rc == MDB_NOTFOUND ? 0 : wh_cl_fail(rc, "listing clients", err);
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
        return wh_cl_fail(rc, "opening a cursor", err);
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
wh_cl_revoke_txn(wh_clients_t *cl, MDB_txn *txn, wh_cl_op_t *op,
    wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[WH_CL_KEY_MAX], val[8];

    k.mv_data = key;
    k.mv_size = wh_cl_key(key, op->ws, op->client_id);

    rc = mdb_del(txn, cl->clients_db, &k, NULL);

    if (rc != 0) {
        return wh_cl_fail(rc, "deleting a client", err);
    }

    wh_be64_put(val, op->revoke_s);
    v.mv_data = val;
    v.mv_size = 8;

    rc = mdb_put(txn, cl->revoked_db, &k, &v, 0);

    return rc ? wh_cl_fail(rc, "storing a revocation", err) : 0;
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

    klen = wh_cl_key(key, ws, client_id);
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


static void
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
        wh_cl_respond_error(op->peer, op->req_id, (uint16_t) err->status,
                            wh_error_code(err->status),
                            committed ? "stored, but the sync to disk "
                            "failed" : "storage error, retry");

    } else if (op->peer != NULL) {
        wh_cl_respond(op->peer, op->req_id, op->status, op->answer.data,
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


static void
wh_cl_queue(wh_clients_t *cl, wh_cl_op_e kind, wh_peer_t *peer,
    uint32_t req_id, const wh_str_t *strs, unsigned fields, size_t limit)
{
    wh_cl_op_t  *op;

    op = wh_cl_op_new(cl, kind, peer, req_id, strs);

    if (op == NULL) {
        if (peer != NULL) {
            wh_cl_respond_error(peer, req_id, 503, "unavailable",
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


/* ------------------------------------------------------ API parsing */


/* a string member of 1 to max bytes: 1 set, 0 absent, -1 invalid */
static int
wh_cl_field(json_t *body, const char *key, size_t max, wh_str_t *out)
{
    json_t  *v;

    v = json_object_get(body, key);

    if (v == NULL) {
        return 0;
    }

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > max)
    {
        return -1;
    }

    out->data = json_string_value(v);
    out->len = json_string_length(v);

    return 1;
}


/* name, client_type and metadata of a create or patch body; a message
 * for a 400, or NULL */
static const char *
wh_cl_parse_fields(const wh_link_msg_t *m, json_t *body, wh_str_t *strs,
    unsigned *fields)
{
    int      rc;
    json_t  *meta;

    if ((rc = wh_cl_field(body, "name", WH_CL_FIELD_MAX, &strs[2])) < 0) {
        return "\"name\" must be a string of 1 to 256 bytes";
    }

    *fields |= rc ? WH_CL_NAME : 0;
    rc = wh_cl_field(body, "client_type", WH_CL_FIELD_MAX, &strs[3]);

    if (rc < 0) {
        return "\"client_type\" must be a string of 1 to 256 bytes";
    }

    *fields |= rc ? WH_CL_TYPE : 0;
    meta = json_object_get(body, "metadata");

    if (meta == NULL) {
        return NULL;
    }

    if (!json_is_object(meta) && !json_is_null(meta)) {
        return "\"metadata\" must be an object (or null to remove it)";
    }

    *fields |= WH_CL_META;

    if (json_is_object(meta)
        && !wh_json_member(m->body.data, m->body.len, "metadata", &strs[4]))
    {
        return "write the key \"metadata\" without escapes";
    }

    return NULL;
}


static int
wh_cl_new_id(char *out)
{
    int            i;
    unsigned char  r[WH_CL_ID_RANDOM];
    static const char  hex[] = "0123456789abcdef";

    if (getrandom(r, sizeof(r), 0) != (ssize_t) sizeof(r)) {
        return -1;
    }

    memcpy(out, "cl-", 3);

    for (i = 0; i < WH_CL_ID_RANDOM; i++) {
        out[3 + 2 * i] = hex[r[i] >> 4];
        out[4 + 2 * i] = hex[r[i] & 0xf];
    }

    out[3 + 2 * WH_CL_ID_RANDOM] = '\0';

    return 0;
}


/* POST /clients and PATCH /clients/{id} */
static void
wh_cl_write(wh_clients_t *cl, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_cl_op_e kind, wh_str_t client_id)
{
    char           id[4 + 2 * WH_CL_ID_RANDOM];
    json_t        *body;
    unsigned       fields = 0;
    wh_str_t       strs[6];
    const char    *bad = NULL;
    json_error_t   je;

    memset(strs, 0, sizeof(strs));
    strs[0] = m->workspace;
    strs[1] = client_id;

    body = m->body.len <= WH_CL_BODY_MAX
           ? json_loadb(m->body.data, m->body.len, JSON_REJECT_DUPLICATES,
                        &je)
           : NULL;

    if (!json_is_object(body)) {
        bad = "the body must be a JSON object {name, client_type, "
              "metadata} of at most 64 KiB";

    } else {
        bad = wh_cl_parse_fields(m, body, strs, &fields);
    }

    if (bad == NULL && kind == WH_CL_OP_CREATE) {
        if ((fields & (WH_CL_NAME | WH_CL_TYPE)) != (WH_CL_NAME | WH_CL_TYPE))
        {
            bad = "\"name\" and \"client_type\" are required";

        } else if (wh_cl_field(body, "id", WH_CMD_CLIENT_MAX, &strs[1]) < 0
                   || (strs[1].len
                       && !wh_client_id_valid(strs[1].data, strs[1].len)))
        {
            bad = "\"id\" must be 1 to 256 bytes without \"/\" or control "
                  "characters";

        } else if (strs[1].len == 0 && wh_cl_new_id(id) == 0) {
            strs[1].data = id;
            strs[1].len = strlen(id);
        }
    }

    if (bad == NULL && strs[1].len == 0) {
        bad = "no randomness for a client id";
    }

    if (bad != NULL) {
        wh_cl_respond_error(peer, m->req_id, 400, "bad_request", bad);
    } else {
        wh_cl_queue(cl, kind, peer, m->req_id, strs, fields, 0);
    }

    json_decref(body);
}


static void
wh_cl_list(wh_clients_t *cl, wh_peer_t *peer, const wh_link_msg_t *m)
{
    int       rc;
    char      cursor[WH_CMD_CLIENT_MAX + 1];
    uint64_t  limit = WH_CL_LIMIT_DEF;
    wh_str_t  strs[6];

    memset(strs, 0, sizeof(strs));
    strs[0] = m->workspace;

    rc = wh_query_u64(m->query, "limit", &limit);

    if (rc < 0 || limit == 0) {
        wh_cl_respond_error(peer, m->req_id, 400, "bad_request",
                            "limit must be 1 to 1000");
        return;
    }

    rc = wh_query_get(m->query, "cursor", cursor, sizeof(cursor),
                      &strs[5].len);

    if (rc < 0) {
        wh_cl_respond_error(peer, m->req_id, 400, "bad_request",
                            "invalid cursor");
        return;
    }

    strs[5].data = cursor;
    strs[5].len = rc == 1 ? strs[5].len : 0;

    wh_cl_queue(cl, WH_CL_OP_LIST, peer, m->req_id, strs, 0,
                limit > WH_CL_LIMIT_MAX ? WH_CL_LIMIT_MAX : limit);
}


static int
wh_method_is(const wh_link_msg_t *m, const char *method)
{
    return m->name.len == strlen(method)
           && memcmp(m->name.data, method, m->name.len) == 0;
}


static void
wh_cl_one(wh_clients_t *cl, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t client_id, wh_str_t rest)
{
    wh_str_t  strs[6];

    memset(strs, 0, sizeof(strs));
    strs[0] = m->workspace;
    strs[1] = client_id;

    if (rest.len == 0 && wh_method_is(m, "GET")) {
        wh_cl_queue(cl, WH_CL_OP_GET, peer, m->req_id, strs, 0, 0);

    } else if (rest.len == 0 && wh_method_is(m, "PATCH")) {
        wh_cl_write(cl, peer, m, WH_CL_OP_PATCH, client_id);

    } else if (rest.len == 0 && wh_method_is(m, "DELETE")) {
        wh_cl_queue(cl, WH_CL_OP_DELETE, peer, m->req_id, strs, 0, 0);

    } else if (rest.len == sizeof("/disconnect") - 1
               && memcmp(rest.data, "/disconnect", rest.len) == 0
               && wh_method_is(m, "POST"))
    {
        wh_cl_queue(cl, WH_CL_OP_DISCONNECT, peer, m->req_id, strs, 0, 0);

    } else if (rest.len == 0 || (rest.len == sizeof("/disconnect") - 1
                                 && memcmp(rest.data, "/disconnect",
                                           rest.len) == 0))
    {
        wh_cl_respond_error(peer, m->req_id, 405, "method_not_allowed",
                            "method not allowed here");

    } else {
        wh_cl_respond_error(peer, m->req_id, 404, "not_found",
                            "no such resource");
    }
}


void
wh_clients_api(wh_clients_t *cl, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t path)
{
    const char  *slash;
    wh_str_t     id, rest, none = { "", 0 };
    static const char  prefix[] = "/clients/";

    if (path.len == sizeof("/clients") - 1) {
        if (wh_method_is(m, "POST")) {
            wh_cl_write(cl, peer, m, WH_CL_OP_CREATE, none);

        } else if (wh_method_is(m, "GET")) {
            wh_cl_list(cl, peer, m);

        } else {
            wh_cl_respond_error(peer, m->req_id, 405, "method_not_allowed",
                                "use GET or POST");
        }

        return;
    }

    if (path.len <= sizeof(prefix) - 1
        || memcmp(path.data, prefix, sizeof(prefix) - 1) != 0)
    {
        wh_cl_respond_error(peer, m->req_id, 404, "not_found",
                            "no such resource");
        return;
    }

    id.data = path.data + sizeof(prefix) - 1;
    id.len = path.len - (sizeof(prefix) - 1);
    slash = memchr(id.data, '/', id.len);
    rest.data = slash ? slash : id.data + id.len;
    rest.len = id.data + id.len - rest.data;
    id.len = rest.data - id.data;

    if (rest.len == sizeof("/commands") - 1
        && memcmp(rest.data, "/commands", rest.len) == 0)
    {
        wh_commands_api(cl->commands, peer, m, path);
        return;
    }

    if (!wh_client_id_valid(id.data, id.len)) {
        /* like any client that does not exist */
        wh_cl_respond_error(peer, m->req_id, 404, "not_found",
                            "no such client");
        return;
    }

    wh_cl_one(cl, peer, m, id, rest);
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

    klen = wh_cl_key(key, ws, client_id);
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
        return wh_cl_fail(rc, "opening the client databases", err);
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

    return rc == MDB_NOTFOUND ? 0 : wh_cl_fail(rc, "loading revocations",
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

/*
 * The commands' LMDB records and their encoding: keys, the stored JSON
 * object (see commands.c), reads, writes and index scans inside a
 * batch txn, the seq kept across restarts, and the loading of the
 * open commands at start.
 */

#include <stdlib.h>
#include <string.h>

#include "wh_time.h"
#include "commands_internal.h"


#define WH_CMD_HISTORY_MAX   64


/* ------------------------------------------------------------- keys */


/* a "\0" b; the callers bound both lengths */
/* ws "\0" client "\0" be64 seq */
size_t
wh_key_seq(unsigned char *buf, wh_str_t ws, wh_str_t client_id,
    uint64_t seq)
{
    size_t  n;

    n = wh_key_pair(buf, ws, client_id);
    buf[n] = '\0';
    wh_be64_put(buf + n + 1, seq);

    return n + 9;
}


/* ws "\0" client "\0" idempotency key */
static size_t
wh_key_idem(unsigned char *buf, wh_str_t ws, wh_str_t client_id,
    wh_str_t idem)
{
    size_t  n;

    n = wh_key_pair(buf, ws, client_id);
    buf[n] = '\0';
    memcpy(buf + n + 1, idem.data, idem.len);

    return n + 1 + idem.len;
}


/* ---------------------------------------------------------- records */


wh_str_t
wh_rec_str(json_t *obj, const char *key)
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


int64_t
wh_rec_int(json_t *obj, const char *key)
{
    return (int64_t) json_integer_value(json_object_get(obj, key));
}


/* the name of the record's status; a corrupt one shows as "unknown" */
const char *
wh_rec_status(json_t *obj)
{
    const char  *name;

    name = wh_cmd_status_name((wh_cmd_status_e) wh_rec_int(obj, "status"));

    return name ? name : "unknown";
}


void
wh_rec_state(json_t *obj, wh_cmd_state_t *s)
{
    s->status = (wh_cmd_status_e) wh_rec_int(obj, "status");
    s->attempt = (unsigned) wh_rec_int(obj, "attempt");
    s->expires_ms = wh_rec_int(obj, "expires");
    s->deadline_ms = wh_rec_int(obj, "deadline");
}


/* 1 found (r->obj set), 0 not, -1 error */
int
wh_cmd_load(wh_commands_t *c, MDB_txn *txn, wh_str_t ws, wh_str_t id,
    wh_cmd_rec_t *r, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    json_error_t   je;
    unsigned char  key[WH_CMD_KEY_MAX];

    r->obj = NULL;

    if (id.len == 0 || id.len > WH_CMD_ID_MAX) {
        return 0;
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, id);

    rc = mdb_get(txn, c->cmds_db, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return wh_mdb_error(rc, "reading a command", err);
    }

    r->obj = json_loadb(v.mv_data, v.mv_size, 0, &je);

    if (r->obj == NULL || !json_is_string(json_object_get(r->obj,
                                                            "client")))
    {
        json_decref(r->obj);
        r->obj = NULL;
        return wh_err(err, 503, "corrupt command %.*s: %s", (int) id.len,
                      id.data, je.text);
    }

    r->ws = ws;
    r->id = id;
    r->client_id = wh_rec_str(r->obj, "client");

    return 1;
}


int
wh_cmd_save(wh_commands_t *c, MDB_txn *txn, wh_cmd_rec_t *r,
    unsigned flags, wh_err_t *err)
{
    int            rc;
    char          *text;
    MDB_val        k, v;
    unsigned char  key[WH_CMD_KEY_MAX];

    text = json_dumps(r->obj, JSON_COMPACT);

    if (text == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, r->ws, r->id);
    v.mv_data = text;
    v.mv_size = strlen(text);

    rc = mdb_put(txn, c->cmds_db, &k, &v, flags);
    free(text);

    if (rc == MDB_KEYEXIST) {
        return wh_err(err, 503, "command id %.*s taken", (int) r->id.len,
                      r->id.data);
    }

    return rc ? wh_mdb_error(rc, "writing a command", err) : 0;
}


int
wh_cmd_history(wh_cmd_rec_t *r, int64_t now, wh_str_t session,
    const char *reason)
{
    json_t  *h, *e;

    h = json_object_get(r->obj, "history");
    e = json_pack("{s:I,s:I}", "status", wh_rec_int(r->obj, "status"),
                  "at", (json_int_t) now);

    if (!json_is_array(h) || e == NULL) {
        json_decref(e);
        return -1;
    }

    if (json_object_get(r->obj, "status") != NULL
        && wh_rec_int(r->obj, "status") == WH_CMD_SENT)
    {
        json_object_set_new(e, "attempt",
                            json_integer(wh_rec_int(r->obj, "attempt")));
        json_object_set_new(e, "session",
                            json_stringn(session.data, session.len));
    }

    if (reason) {
        json_object_set_new(e, "reason", json_string(reason));
    }

    /* the oldest entries after the first give way to the newest */
    if (json_array_size(h) >= WH_CMD_HISTORY_MAX) {
        json_array_remove(h, 1);
    }

    return json_array_append_new(h, e);
}


int
wh_cmd_set_state(wh_cmd_rec_t *r, const wh_cmd_state_t *s, int64_t now)
{
    return json_object_set_new(r->obj, "status", json_integer(s->status))
           | json_object_set_new(r->obj, "attempt", json_integer(s->attempt))
           | json_object_set_new(r->obj, "deadline",
                                 json_integer(s->deadline_ms))
           | json_object_set_new(r->obj, "updated", json_integer(now));
}


/* 1 and *id if the client already used this idempotency key */
int
wh_cmd_idem_find(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    wh_str_t *id, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[WH_CMD_KEY_MAX];

    k.mv_data = key;
    k.mv_size = wh_key_idem(key, op->ws, op->client_id, op->idem);

    rc = mdb_get(txn, c->idem_db, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return wh_mdb_error(rc, "reading an idempotency key", err);
    }

    id->data = v.mv_data;
    id->len = v.mv_size;

    return 1;
}


static json_t *
wh_cmd_new_record(wh_commands_t *c, wh_cmd_op_t *op, uint64_t seq,
    int64_t now)
{
    json_t  *obj;

    obj = json_pack("{s:s%,s:s%,s:s%,s:i,s:i,s:i,s:I,s:I,s:I,s:I,s:I,"
                    "s:[{s:i,s:I}]}",
                    "client", op->client_id.data, op->client_id.len,
                    "command", op->command.data, op->command.len,
                    "payload", op->payload.data, op->payload.len,
                    "priority", (int) op->priority,
                    "status", WH_CMD_PENDING, "attempt", 0,
                    "seq", (json_int_t) seq, "created", (json_int_t) now,
                    "updated", (json_int_t) now,
                    "expires", (json_int_t) (now + op->ttl_ms),
                    "deadline", (json_int_t) 0,
                    "history", "status", WH_CMD_PENDING,
                    "at", (json_int_t) now);

    if (obj != NULL && op->idem.len
        && json_object_set_new(obj, "idem",
                               json_stringn(op->idem.data, op->idem.len))
           != 0)
    {
        json_decref(obj);
        return NULL;
    }

    (void) c;

    return obj;
}


static int
wh_cmd_put_index(MDB_txn *txn, MDB_dbi dbi, const unsigned char *key,
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
wh_cmd_insert(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    wh_cmd_rec_t *r, int64_t now, wh_err_t *err)
{
    size_t          klen;
    uint64_t        seq;
    unsigned char   key[WH_CMD_KEY_MAX];

    seq = ++c->txn_seq;

    r->ws = op->ws;
    r->id = op->id;
    r->obj = wh_cmd_new_record(c, op, seq, now);

    if (r->obj == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    r->client_id = wh_rec_str(r->obj, "client");

    if (wh_cmd_save(c, txn, r, MDB_NOOVERWRITE, err) != 0) {
        return -1;
    }

    klen = wh_key_seq(key, op->ws, op->client_id, seq);

    if (wh_cmd_put_index(txn, c->open_db, key, klen, op->id, err) != 0
        || wh_cmd_put_index(txn, c->client_db, key, klen, op->id, err) != 0)
    {
        return -1;
    }

    if (op->idem.len) {
        klen = wh_key_idem(key, op->ws, op->client_id, op->idem);

        if (wh_cmd_put_index(txn, c->idem_db, key, klen, op->id, err)
            != 0)
        {
            return -1;
        }
    }

    return 0;
}


static int
wh_cmd_list_item(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    const MDB_val *v, int *added, wh_err_t *err)
{
    int            rc;
    wh_str_t       id;
    wh_cmd_rec_t   r;

    id.data = v->mv_data;
    id.len = v->mv_size;
    *added = 0;

    rc = wh_cmd_load(c, txn, op->ws, id, &r, err);

    if (rc <= 0) {
        return rc;
    }

    rc = 0;

    if (op->status_mask == 0
        || (op->status_mask & (1u << wh_rec_int(r.obj, "status"))))
    {
        rc = wh_cmd_object(&op->answer, &r, 0);
        *added = 1;
    }

    json_decref(r.obj);

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


/* items after op->cursor; *next is the seq of the last one when more
 * may follow, else 0 */
int
wh_cmd_list_scan(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    MDB_cursor *cur, uint64_t *next, wh_err_t *err)
{
    int            rc, added;
    size_t         n = 0, plen;
    uint64_t       last = 0;
    MDB_val        k, v;
    unsigned char  key[WH_CMD_KEY_MAX];

    k.mv_data = key;
    k.mv_size = wh_key_seq(key, op->ws, op->client_id, op->cursor + 1);
    plen = k.mv_size - 8;
    *next = 0;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != plen + 8 || memcmp(k.mv_data, key, plen) != 0) {
            return 0;
        }

        if (n == op->limit) {
            *next = last;
            return 0;
        }

        if (wh_cmd_list_item(c, txn, op, &v, &added, err) != 0) {
            return -1;
        }

        n += added;
        last = wh_be64_get((unsigned char *) k.mv_data + plen);
    }

    return rc == MDB_NOTFOUND ? 0 : wh_mdb_error(rc, "listing commands", err);
}


int
wh_commands_forget_client(wh_commands_t *c, MDB_txn *txn, wh_str_t ws,
    wh_str_t client_id, wh_err_t *err)
{
    int            rc;
    size_t         plen;
    MDB_val        k, v;
    MDB_cursor    *cur;
    unsigned char  key[WH_CMD_KEY_MAX];

    rc = mdb_cursor_open(txn, c->idem_db, &cur);

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


/* -------------------------------------------------------- start, end */


int
wh_cmd_begin(void *ctx, MDB_txn *txn, wh_err_t *err)
{
    wh_commands_t  *c = ctx;

    (void) txn;
    (void) err;

    c->txn_seq = c->next_seq - 1;
    wh_map_free(&c->txn_sent);

    return 0;
}


int
wh_cmd_end(void *ctx, MDB_txn *txn, wh_err_t *err)
{
    int             rc;
    MDB_val         k, v;
    unsigned char   val[8];
    wh_commands_t  *c = ctx;

    if (c->txn_seq == c->next_seq - 1) {
        return 0;
    }

    wh_be64_put(val, c->txn_seq);
    k.mv_data = "seq";
    k.mv_size = 3;
    v.mv_data = val;
    v.mv_size = 8;

    rc = mdb_put(txn, c->meta_db, &k, &v, 0);

    return rc ? wh_mdb_error(rc, "writing the command seq", err) : 0;
}


void
wh_cmd_committed(void *ctx, int committed)
{
    wh_commands_t  *c = ctx;

    if (committed) {
        c->next_seq = c->txn_seq + 1;
    }
}


int
wh_cmd_open_dbs(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    int             rc;
    MDB_val         k, v;
    wh_commands_t  *c = ctx;

    (void) st;

    if ((rc = mdb_dbi_open(txn, "commands", MDB_CREATE, &c->cmds_db)) != 0
        || (rc = mdb_dbi_open(txn, "cmd_open", MDB_CREATE, &c->open_db))
           != 0
        || (rc = mdb_dbi_open(txn, "cmd_client", MDB_CREATE,
                              &c->client_db)) != 0
        || (rc = mdb_dbi_open(txn, "cmd_idem", MDB_CREATE, &c->idem_db))
           != 0
        || (rc = mdb_dbi_open(txn, "cmd_meta", MDB_CREATE, &c->meta_db))
           != 0)
    {
        return wh_mdb_error(rc, "opening the command databases", err);
    }

    k.mv_data = "seq";
    k.mv_size = 3;
    rc = mdb_get(txn, c->meta_db, &k, &v);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_mdb_error(rc, "reading the command seq", err);
    }

    c->next_seq = rc == 0 && v.mv_size == 8 ? wh_be64_get(v.mv_data) + 1
                                            : 1;

    return 0;
}


/* one open command of the store into memory */
static void
wh_cmd_load_open(wh_commands_t *c, MDB_txn *txn, const MDB_val *k,
    const MDB_val *v, int64_t now)
{
    int              rc;
    const char      *nul;
    wh_str_t         ws, id;
    wh_err_t         err;
    wh_cmd_rec_t     r;
    wh_cmd_state_t   s;

    nul = memchr(k->mv_data, '\0', k->mv_size);

    if (nul == NULL) {
        return;
    }

    ws.data = k->mv_data;
    ws.len = nul - ws.data;
    id.data = v->mv_data;
    id.len = v->mv_size;

    rc = wh_cmd_load(c, txn, ws, id, &r, &err);

    if (rc <= 0) {
        wh_log_error(c->log, "commands: open command %.*s: %s",
                     (int) id.len, id.data, rc ? err.msg : "missing");
        return;
    }

    wh_rec_state(r.obj, &s);

    if (!wh_cmd_is_open(s.status)
        || wh_cmdq_put(&c->q, ws, r.client_id, id,
                       (unsigned) wh_rec_int(r.obj, "priority"),
                       (uint64_t) wh_rec_int(r.obj, "seq"), &s,
                       wh_cmd_due(&s, now)) == NULL)
    {
        wh_log_error(c->log, "commands: cannot load open command %.*s",
                     (int) id.len, id.data);
    }

    json_decref(r.obj);
}


int
wh_cmd_load_all(wh_store_t *st, MDB_txn *txn, void *ctx, wh_err_t *err)
{
    int             rc;
    int64_t         now;
    MDB_val         k, v;
    MDB_cursor     *cur;
    wh_commands_t  *c = ctx;

    (void) st;

    rc = mdb_cursor_open(txn, c->open_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    now = wh_time_ms();

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        wh_cmd_load_open(c, txn, &k, &v, now);
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return wh_mdb_error(rc, "loading open commands", err);
    }

    return 0;
}

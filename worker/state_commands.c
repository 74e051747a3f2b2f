/*
 * The commands (state.h).  A stored command is a JSON object:
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

#include "cmdrec.h"
#include "jsonw.h"
#include "state.h"


/* the strings of a command besides those of its history */
#define WH_STATE_CMD_STRS  13

/* an entry of cmd_open, copied out: the callbacks change the index */
typedef struct {
    unsigned char    *key;
    size_t            klen;
    wh_str_t          ws, id;
} wh_state_open_t;

typedef struct {
    wh_state_open_t  *list;
    size_t            n, cap;
} wh_state_opens_t;


/* ------------------------------------------------------- encoding */


/* the fields of a record jansson read, for the records the scanner
 * leaves (cmdrec.h) */
static void
wh_rec_fields(json_t *obj, wh_cmdrec_t *rec)
{
    size_t              i, n;
    json_t             *h, *e;
    wh_cmdrec_event_t  *ev;

    for (i = 0; i < WH_CMDREC_STRS; i++) {
        rec->strs[i] = wh_state_str(obj, wh_cmdrec_str_keys[i]);
    }

    for (i = 0; i < WH_CMDREC_INTS; i++) {
        rec->ints[i] = wh_state_int(obj, wh_cmdrec_int_keys[i]);
    }

    rec->has_client = json_is_string(json_object_get(obj, "client"));

    h = json_object_get(obj, "history");
    n = json_array_size(h) > WH_CMD_HISTORY_MAX ? 0 : json_array_size(h);
    rec->nhistory = n;

    for (i = 0; i < n; i++) {
        e = json_array_get(h, i);
        ev = &rec->history[i];
        ev->status = wh_state_int(e, "status");
        ev->at = wh_state_int(e, "at");
        ev->attempt = wh_state_int(e, "attempt");
        ev->session = wh_state_str(e, "session");
        ev->reason = wh_state_str(e, "reason");
    }
}


static int
wh_rec_decode(const wh_cmdrec_t *rec, wh_str_t ws, wh_str_t id,
    wh_command_t *out)
{
    size_t                    i, n;
    wh_cmd_event_t           *ev;
    const wh_cmdrec_event_t  *re;
    wh_str_t   strs[WH_STATE_CMD_STRS + 2 * WH_CMD_HISTORY_MAX];
    wh_str_t  *dst[WH_STATE_CMD_STRS + 2 * WH_CMD_HISTORY_MAX];

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

    for (i = 0; i < WH_CMDREC_STRS; i++) {
        strs[2 + i] = rec->strs[i];
    }

    out->priority = (unsigned) rec->ints[WH_CMDREC_PRIORITY];
    out->seq = (uint64_t) rec->ints[WH_CMDREC_SEQ];
    out->state.status = (wh_cmd_status_e) rec->ints[WH_CMDREC_STATUS];
    out->state.attempt = (unsigned) rec->ints[WH_CMDREC_ATTEMPT];
    out->state.expires_ms = rec->ints[WH_CMDREC_EXPIRES];
    out->state.deadline_ms = rec->ints[WH_CMDREC_DEADLINE];
    out->created_ms = rec->ints[WH_CMDREC_CREATED];
    out->updated_ms = rec->ints[WH_CMDREC_UPDATED];
    out->state.not_before_ms = rec->ints[WH_CMDREC_NOT_BEFORE];
    out->job_idx = (uint64_t) rec->ints[WH_CMDREC_JIDX];
    out->state.lane = wh_cmd_lane_hash(strs[9].data, strs[9].len);

    n = rec->nhistory;

    if (n) {
        out->history = calloc(n, sizeof(wh_cmd_event_t));

        if (out->history == NULL) {
            return -1;
        }

        out->nhistory = n;
        out->history_cap = n;
    }

    for (i = 0; i < n; i++) {
        ev = &out->history[i];
        re = &rec->history[i];
        ev->status = (wh_cmd_status_e) re->status;
        ev->at_ms = re->at;
        ev->attempt = (unsigned) re->attempt;
        strs[WH_STATE_CMD_STRS + 2 * i] = re->session;
        strs[WH_STATE_CMD_STRS + 2 * i + 1] = re->reason;
        dst[WH_STATE_CMD_STRS + 2 * i] = &ev->session;
        dst[WH_STATE_CMD_STRS + 2 * i + 1] = &ev->reason;
    }

    if (wh_strs_copy(&out->mem, dst, strs, WH_STATE_CMD_STRS + 2 * n) != 0)
    {
        wh_command_free(out);
        return -1;
    }

    return 0;
}


/* a string member only when it is set, as the records always had */
static int
wh_rec_str(wh_buf_t *b, const char *key, wh_str_t s)
{
    return s.len ? wh_jw_str(b, key, s.data, s.len) : 0;
}


static int
wh_rec_event(wh_buf_t *b, const wh_cmd_event_t *ev)
{
    int       rc;
    wh_str_t  session;

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_int(b, "status", (int) ev->status);
    rc |= wh_jw_int(b, "at", ev->at_ms);

    if (ev->attempt) {
        session = wh_state_set(ev->session);
        rc |= wh_jw_int(b, "attempt", ev->attempt);
        rc |= wh_jw_str(b, "session", session.data, session.len);
    }

    rc |= wh_rec_str(b, "reason", ev->reason);

    return rc | wh_jw_close(b, '}');
}


/*
 * the JSON text of a command, malloc()ed; NULL out of memory.  Written
 * straight into one buffer: building a jansson tree to print it cost
 * a fifth of the daemon's time per command (it is saved three times).
 */
static char *
wh_rec_encode(const wh_command_t *cmd)
{
    int        rc;
    size_t     i;
    wh_buf_t   b;
    wh_str_t   client, name, payload;

    client = wh_state_set(cmd->client_id);
    name = wh_state_set(cmd->command);
    payload = wh_state_set(cmd->payload);

    memset(&b, 0, sizeof(wh_buf_t));

    /* escaping may double the user's JSON texts */
    rc = wh_buf_reserve(&b, 512 + client.len + name.len
                            + 2 * (payload.len + cmd->result.len));
    rc |= wh_jw_open(&b, NULL, '{');
    rc |= wh_jw_str(&b, "client", client.data, client.len);
    rc |= wh_jw_str(&b, "command", name.data, name.len);
    rc |= wh_jw_str(&b, "payload", payload.data, payload.len);
    rc |= wh_jw_int(&b, "priority", (int) cmd->priority);
    rc |= wh_jw_int(&b, "status", (int) cmd->state.status);
    rc |= wh_jw_int(&b, "attempt", (int) cmd->state.attempt);
    rc |= wh_jw_int(&b, "seq", (int64_t) cmd->seq);
    rc |= wh_jw_int(&b, "created", cmd->created_ms);
    rc |= wh_jw_int(&b, "updated", cmd->updated_ms);
    rc |= wh_jw_int(&b, "expires", cmd->state.expires_ms);
    rc |= wh_jw_int(&b, "deadline", cmd->state.deadline_ms);
    rc |= wh_jw_open(&b, "history", '[');

    for (i = 0; i < cmd->nhistory; i++) {
        rc |= wh_rec_event(&b, &cmd->history[i]);
    }

    rc |= wh_jw_close(&b, ']');
    rc |= wh_rec_str(&b, "idem", cmd->idem);
    rc |= wh_rec_str(&b, "result", cmd->result);
    rc |= wh_rec_str(&b, "error", cmd->error);
    rc |= wh_rec_str(&b, "reason", cmd->reason);
    rc |= wh_rec_str(&b, "lane", cmd->lane);
    rc |= wh_rec_str(&b, "supersede", cmd->supersede);
    rc |= wh_rec_str(&b, "issued_by", cmd->issued_by);
    rc |= wh_rec_str(&b, "job", cmd->job);

    if (cmd->job.len) {
        rc |= wh_jw_int(&b, "jidx", (int64_t) cmd->job_idx);
    }

    if (cmd->state.not_before_ms) {
        rc |= wh_jw_int(&b, "not_before", cmd->state.not_before_ms);
    }

    rc |= wh_jw_close(&b, '}');
    rc |= wh_buf_append(&b, "", 1);

    if (rc != 0) {
        wh_buf_free(&b);
        return NULL;
    }

    return (char *) b.data;
}


/* -------------------------------------------------- reads, writes */


int
wh_state_cmd_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_command_t *out,
    wh_err_t *err)
{
    int            rc;
    char          *scratch;
    json_t        *obj = NULL;
    wh_kv_val_t    v;
    wh_cmdrec_t    rec;
    json_error_t   je;

    rc = wh_state_get_rec(t, WH_KV_COMMANDS, ws, id, WH_CMD_ID_MAX, &v,
                          "reading a command", err);

    if (rc <= 0) {
        return rc;
    }

    /* what the scanner unescapes is never longer than the text */
    scratch = malloc(v.len + 1);

    if (scratch == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    je.text[0] = '\0';
    rc = wh_cmdrec_scan(v.data, v.len, &rec, scratch);

    if (rc != 0) {
        obj = json_loadb(v.data, v.len, 0, &je);

        if (obj != NULL) {
            wh_rec_fields(obj, &rec);
            rc = 0;
        }
    }

    if (rc != 0 || !rec.has_client) {
        free(scratch);
        json_decref(obj);
        return wh_err(err, 503, "corrupt command %.*s: %s", (int) id.len,
                      id.data, je.text);
    }

    rc = wh_rec_decode(&rec, ws, id, out);
    free(scratch);
    json_decref(obj);

    return rc ? wh_err(err, 503, "out of memory") : 1;
}


static int
wh_state_cmd_save(wh_etxn_t *t, const wh_command_t *cmd, unsigned flags,
    wh_err_t *err)
{
    int  rc;

    rc = wh_state_save(t, WH_KV_COMMANDS, cmd->ws, cmd->id,
                       wh_rec_encode(cmd), flags, "writing a command", err);

    if (rc == WH_KV_EXISTS) {
        return wh_err(err, 503, "command id %.*s taken", (int) cmd->id.len,
                      cmd->id.data);
    }

    return rc;
}


/* an index entry: key -> the command's id */
static int
wh_state_put_index(wh_etxn_t *t, wh_kv_db_e db, const unsigned char *key,
    size_t klen, wh_str_t id, wh_err_t *err)
{
    return wh_state_put(t, db, key, klen, id.data, id.len,
                        "indexing a command", err);
}


/* cmd_ws's entry names the client too: the late client index and a
 * client's newest commands (state_cmd_client.c) read it there */
int
wh_state_cmd_index_ws(wh_etxn_t *t, const wh_command_t *cmd, wh_err_t *err)
{
    size_t         klen;
    unsigned char  key[WH_STATE_KEY_MAX];
    char           val[WH_CMD_ID_MAX + 1 + WH_CMD_CLIENT_MAX];

    if (cmd->id.len > WH_CMD_ID_MAX
        || cmd->client_id.len > WH_CMD_CLIENT_MAX)
    {
        return wh_err(err, 503, "command id or client id too long");
    }

    klen = wh_key_ws_seq(key, cmd->ws, cmd->seq);
    memcpy(val, cmd->id.data, cmd->id.len);
    val[cmd->id.len] = '\0';
    memcpy(val + cmd->id.len + 1, cmd->client_id.data, cmd->client_id.len);

    return wh_state_put(t, WH_KV_CMD_WS, key, klen, val,
                        cmd->id.len + 1 + cmd->client_id.len,
                        "indexing a command", err);
}


void
wh_state_ws_entry(const wh_kv_val_t *v, wh_str_t *id, wh_str_t *client_id)
{
    const char  *nul;

    nul = memchr(v->data, '\0', v->len);

    id->data = v->data;
    id->len = nul ? (size_t) (nul - (const char *) v->data) : v->len;
    client_id->data = nul ? nul + 1 : "";
    client_id->len = nul ? v->len - id->len - 1 : 0;
}


/* an ended command waits for the retention; one of a job goes with its
 * job instead (its executions list it until then) */
int
wh_state_cmd_index_ended(wh_etxn_t *t, const wh_command_t *cmd,
    wh_err_t *err)
{
    unsigned char  key[WH_STATE_KEY_MAX + WH_BE64_LEN];

    if (cmd->job.len) {
        return 0;
    }

    return wh_state_put_index(t, WH_KV_CMD_ENDED, key,
                              wh_key_ended(key, cmd->updated_ms, cmd->ws,
                                           cmd->id), cmd->id, err);
}


int
wh_state_cmd_insert(wh_etxn_t *t, const wh_command_t *cmd, wh_err_t *err)
{
    int            rc;
    size_t         klen;
    unsigned char  key[WH_STATE_KEY_MAX];

    if ((rc = wh_state_cmd_save(t, cmd, WH_KV_NOOVERWRITE, err)) != 0) {
        return rc;
    }

    klen = wh_key_seq(key, cmd->ws, cmd->client_id, cmd->seq);

    /* one node's cmd_client is written later (state_cmd_client.c) */
    if ((rc = wh_state_put_index(t, WH_KV_CMD_OPEN, key, klen, cmd->id,
                                 err)) != 0
        || (!wh_state_cmd_client_late(t)
            && (rc = wh_state_put_index(t, WH_KV_CMD_CLIENT, key, klen,
                                        cmd->id, err)) != 0)
        || (rc = wh_state_cmd_index_ws(t, cmd, err)) != 0)
    {
        return rc;
    }

    if (cmd->idem.len == 0) {
        return 0;
    }

    klen = wh_key_idem(key, cmd->ws, cmd->client_id, cmd->idem);

    return wh_state_put_index(t, WH_KV_CMD_IDEM, key, klen, cmd->id, err);
}


int
wh_state_cmd_update(wh_etxn_t *t, const wh_command_t *cmd, wh_err_t *err)
{
    int            rc;
    unsigned char  key[WH_STATE_KEY_MAX];

    if ((rc = wh_state_cmd_save(t, cmd, 0, err)) != 0) {
        return rc;
    }

    if (wh_cmd_is_open(cmd->state.status)) {
        return 0;
    }

    rc = wh_state_del(t, WH_KV_CMD_OPEN, key,
                      wh_key_seq(key, cmd->ws, cmd->client_id, cmd->seq),
                      "closing a command", err);

    return rc < 0 ? rc : wh_state_cmd_index_ended(t, cmd, err);
}


int
wh_state_cmd_idem(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    wh_str_t idem, wh_command_t *out, wh_err_t *err)
{
    int            rc;
    wh_str_t       id;
    wh_kv_val_t    v;
    unsigned char  key[WH_STATE_KEY_MAX];

    rc = wh_state_get(t, WH_KV_CMD_IDEM, key,
                      wh_key_idem(key, ws, client_id, idem), &v,
                      "reading an idempotency key", err);

    if (rc <= 0) {
        return rc;
    }

    id.data = v.data;
    id.len = v.len;

    return wh_state_cmd_get(t, ws, id, out, err);
}


int
wh_state_cmd_admits(const wh_cmd_filter_t *f, const wh_command_t *cmd)
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
wh_state_cmd_keep(const wh_cmd_filter_t *f, wh_command_t *cmd,
    wh_cmd_list_t *out, wh_err_t *err)
{
    if (!wh_state_cmd_admits(f, cmd)) {
        wh_command_free(cmd);
        return 0;
    }

    if (wh_cmd_list_add(out) == NULL) {
        wh_command_free(cmd);
        return wh_err(err, 503, "out of memory");
    }

    out->items[out->n - 1] = *cmd;

    return 0;
}


/* --------------------------------------------------- open commands */


static void
wh_state_open_free(wh_state_opens_t *o)
{
    size_t  i;

    for (i = 0; i < o->n; i++) {
        free(o->list[i].key);
    }

    free(o->list);
}


static int
wh_state_open_add(void *ctx, const wh_kv_val_t *k, const wh_kv_val_t *v,
    wh_err_t *err)
{
    const char        *nul;
    wh_state_open_t   *p, *e;
    wh_state_opens_t  *o = ctx;

    nul = memchr(k->data, '\0', k->len);

    if (nul == NULL || v->len == 0 || v->len > WH_CMD_ID_MAX) {
        return 0;
    }

    if (o->n == o->cap) {
        p = realloc(o->list, (o->cap ? 2 * o->cap : 64)
                             * sizeof(wh_state_open_t));

        if (p == NULL) {
            return wh_err(err, 503, "out of memory");
        }

        o->list = p;
        o->cap = o->cap ? 2 * o->cap : 64;
    }

    e = &o->list[o->n];
    e->key = malloc(k->len + v->len);

    if (e->key == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    memcpy(e->key, k->data, k->len);
    memcpy(e->key + k->len, v->data, v->len);
    e->klen = k->len;
    e->ws.data = (const char *) e->key;
    e->ws.len = nul - (const char *) k->data;
    e->id.data = (const char *) e->key + k->len;
    e->id.len = v->len;
    o->n++;

    return 0;
}


static int
wh_state_open_one(wh_etxn_t *t, wh_state_open_t *o, int start,
    wh_engine_cmd_pt cb, void *ctx, wh_err_t *err)
{
    int            rc;
    wh_command_t   cmd;

    rc = wh_state_cmd_get(t, o->ws, o->id, &cmd, err);

    if (rc == -1 && start) {
        /* one corrupt command does not keep the others from loading */
        wh_log_error(t->engine->log, "commands: open command %.*s: %s",
                     (int) o->id.len, o->id.data, err->msg);
        return 0;
    }

    if (rc < 0) {
        return rc;
    }

    if (rc == 0) {
        /* an index entry without its command; read unchecked (a
         * refresh, engine.h), the two reads may be of two moments, and
         * such a reader writes nothing: a checked one mends it */
        if (t->unchecked) {
            return 0;
        }

        rc = wh_state_del(t, WH_KV_CMD_OPEN, o->key, o->klen,
                          "closing a command", err);

        return rc < 0 ? rc : 0;
    }

    rc = cb(ctx, &cmd, err);
    wh_command_free(&cmd);

    return rc;
}


int
wh_state_cmd_open(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    wh_engine_cmd_pt cb, void *ctx, wh_err_t *err)
{
    int                rc;
    size_t             i, plen = 0;
    wh_state_opens_t   o;
    unsigned char      key[WH_STATE_KEY_MAX];

    memset(&o, 0, sizeof(o));

    if (ws.len) {
        plen = wh_key_seq(key, ws, client_id, 0) - WH_BE64_LEN;
    }

    /* the entries first: the callbacks change the index */
    rc = wh_state_scan(t, WH_KV_CMD_OPEN, key, plen, plen,
                       wh_state_open_add, &o, "reading open commands",
                       err);

    for (i = 0; rc == 0 && i < o.n; i++) {
        if (plen && o.list[i].klen != plen + WH_BE64_LEN) {
            continue;
        }

        rc = wh_state_open_one(t, &o.list[i], plen == 0, cb, ctx, err);
    }

    wh_state_open_free(&o);

    return rc;
}


int
wh_state_cmd_forget_client(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    wh_err_t *err)
{
    size_t         plen;
    unsigned char  key[WH_STATE_KEY_MAX];

    plen = wh_key_pair(key, ws, client_id);
    key[plen++] = '\0';

    return wh_state_del_prefix(t, WH_KV_CMD_IDEM, key, plen, 0,
                               "forgetting idempotency keys", err);
}


/* ------------------------------------------------------------ seq */


int
wh_state_cmd_meta(wh_etxn_t *t, const char *name, uint64_t *value,
    int *found, const char *what, wh_err_t *err)
{
    int          rc;
    wh_kv_val_t  v;

    rc = wh_state_get(t, WH_KV_CMD_META, name, strlen(name), &v, what,
                      err);

    if (rc < 0) {
        return rc;
    }

    *found = rc == 1 && v.len == WH_BE64_LEN;
    *value = *found ? wh_be64_get(v.data) : 0;

    return 0;
}


int
wh_state_cmd_set_meta(wh_etxn_t *t, const char *name, uint64_t value,
    const char *what, wh_err_t *err)
{
    unsigned char  val[WH_BE64_LEN];

    wh_be64_put(val, value);

    return wh_state_put(t, WH_KV_CMD_META, name, strlen(name), val,
                        WH_BE64_LEN, what, err);
}


int
wh_state_cmd_seq(wh_etxn_t *t, uint64_t *last, wh_err_t *err)
{
    int  found;

    return wh_state_cmd_meta(t, "seq", last, &found,
                             "reading the command seq", err);
}


/* the same counter as cmd_seq's: what either gave out, the other
 * does not give again */
int
wh_state_cmd_seq_take(wh_etxn_t *t, uint64_t n, uint64_t *first,
    wh_err_t *err)
{
    int          rc;
    char         name[] = "seq";
    wh_kv_val_t  k = { 3, name };

    rc = wh_kv_reserve(wh_state_kv(t), WH_KV_CMD_META, &k, n, first, err);

    return rc ? wh_state_fail(rc, "taking command seqs", err) : 0;
}


int
wh_state_cmd_set_seq(wh_etxn_t *t, uint64_t last, wh_err_t *err)
{
    return wh_state_cmd_set_meta(t, "seq", last, "writing the command seq",
                                 err);
}

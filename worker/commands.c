/*
 * The durable command queue.  Every change is an op of the batch
 * (batch.h): apply decides it inside the txn from the stored command,
 * recording notes (the new state, the delivery, the event); after the
 * commit the notes update memory (cmdqueue.h), send the COMMAND frame,
 * and publish on "$commands"; then the op answers.
 *
 * A stored command is a JSON object:
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

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>

#include "wh_channel.h"
#include "wh_time.h"
#include "api.h"
#include "clients.h"
#include "jsonw.h"
#include "message.h"
#include "commands.h"


#define WH_CMD_BODY_MAX      (256 * 1024)  /* a payload, a result */
#define WH_CMD_IDEM_MAX      128
#define WH_CMD_HISTORY_MAX   64
#define WH_CMD_TICK_MS       100
#define WH_CMD_TICK_MAX      10000         /* advanced per tick */
#define WH_CMD_RETRY_MS      1000          /* after a failed batch */
#define WH_CMD_TTL_MAX_S     (30 * 86400)
#define WH_CMD_LIMIT_DEF     100
#define WH_CMD_LIMIT_MAX     1000
#define WH_CMD_ID_TIME       11            /* hex digits of ms */
#define WH_CMD_ID_RANDOM     10            /* random hex digits */
#define WH_CMD_KEY_MAX       (WH_WORKSPACE_MAX + 1 + WH_CMD_CLIENT_MAX + 1 \
                              + WH_CMD_IDEM_MAX)

typedef enum {
    WH_CMD_OP_CREATE = 0,
    WH_CMD_OP_LIST,
    WH_CMD_OP_GET,
    WH_CMD_OP_CANCEL,
    WH_CMD_OP_RESULT,
    WH_CMD_OP_ADVANCE
} wh_cmd_op_e;

struct wh_cmd_note_s {
    wh_cmd_note_t    *next;
    wh_cmd_state_t    state;
    unsigned          priority;
    uint64_t          seq;
    int               publish;        /* a status change */
    wh_peer_t        *peer;           /* a delivery to this session */
    wh_buf_t          event;          /* "$commands" data */
    wh_buf_t          command;        /* the device_command text */
    wh_str_t          ws, client_id, id, session;   /* point into mem */
    char              mem[];
};

/* a stored command being worked on inside a txn */
typedef struct {
    json_t           *obj;
    wh_str_t          ws, id, client_id;
} wh_cmd_rec_t;

/* one request, result or timer tick for one command */
typedef struct {
    wh_op_t           op;
    wh_commands_t    *c;
    wh_cmd_op_e       kind;
    wh_peer_t        *peer;           /* NULL: nobody waits for it */
    uint32_t          req_id;
    uint16_t          status;         /* the answer */
    wh_buf_t          answer;
    wh_cmd_notes_t    notes;
    wh_str_t          ws, client_id, id, command, payload, idem;
    wh_str_t          result, error, session;
    unsigned          priority;
    int64_t           ttl_ms;
    unsigned          status_mask;    /* list: 0 any */
    uint64_t          cursor;
    size_t            limit;
    wh_cmd_status_e   outcome;        /* result: completed or failed */
} wh_cmd_op_t;


static void wh_cmd_op_free(wh_cmd_op_t *op);


/* ------------------------------------------------------------- keys */


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


/* a "\0" b; the callers bound both lengths */
static size_t
wh_key_pair(unsigned char *buf, wh_str_t a, wh_str_t b)
{
    memcpy(buf, a.data, a.len);
    buf[a.len] = '\0';
    memcpy(buf + a.len + 1, b.data, b.len);

    return a.len + 1 + b.len;
}


/* ws "\0" client "\0" be64 seq */
static size_t
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


static int
wh_cmd_fail(int rc, const char *what, wh_err_t *err)
{
    return wh_err(err, rc == MDB_MAP_FULL ? 507 : 503, "%s: %s", what,
                  mdb_strerror(rc));
}


/* ------------------------------------------------------------ notes */


void
wh_cmd_notes_init(wh_cmd_notes_t *notes)
{
    notes->head = NULL;
    notes->tail = &notes->head;
}


static void
wh_cmd_notes_clear(wh_cmd_notes_t *notes)
{
    wh_cmd_note_t  *n, *next;

    for (n = notes->head; n != NULL; n = next) {
        next = n->next;
        wh_buf_free(&n->event);
        wh_buf_free(&n->command);
        free(n);
    }

    wh_cmd_notes_init(notes);
}


static wh_str_t
wh_note_copy(char **p, wh_str_t s)
{
    wh_str_t  r;

    r.data = *p;
    r.len = s.len;

    if (s.len) {
        memcpy(*p, s.data, s.len);
    }

    *p += s.len;

    return r;
}


static wh_str_t
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


static int64_t
wh_rec_int(json_t *obj, const char *key)
{
    return (int64_t) json_integer_value(json_object_get(obj, key));
}


/* the name of the record's status; a corrupt one shows as "unknown" */
static const char *
wh_rec_status(json_t *obj)
{
    const char  *name;

    name = wh_cmd_status_name((wh_cmd_status_e) wh_rec_int(obj, "status"));

    return name ? name : "unknown";
}


static void
wh_rec_state(json_t *obj, wh_cmd_state_t *s)
{
    s->status = (wh_cmd_status_e) wh_rec_int(obj, "status");
    s->attempt = (unsigned) wh_rec_int(obj, "attempt");
    s->expires_ms = wh_rec_int(obj, "expires");
    s->deadline_ms = wh_rec_int(obj, "deadline");
}


/* the data of a command_status event */
static int
wh_note_event(wh_buf_t *b, wh_cmd_rec_t *r)
{
    int       rc;
    wh_str_t  reason, error, name;

    reason = wh_rec_str(r->obj, "reason");
    error = wh_rec_str(r->obj, "error");
    name = wh_rec_str(r->obj, "command");

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_str(b, "command_id", r->id.data, r->id.len);
    rc |= wh_jw_str(b, "client_id", r->client_id.data, r->client_id.len);
    rc |= wh_jw_str(b, "command", name.data, name.len);
    rc |= wh_jw_cstr(b, "status", wh_rec_status(r->obj));
    rc |= wh_jw_int(b, "attempt", wh_rec_int(r->obj, "attempt"));

    if (reason.len) {
        rc |= wh_jw_str(b, "reason", reason.data, reason.len);
    }

    if (error.len) {
        rc |= wh_jw_str(b, "error", error.data, error.len);
    }

    return rc | wh_jw_close(b, '}');
}


/* the message a device gets */
static int
wh_note_command(wh_buf_t *b, wh_cmd_rec_t *r, int64_t now)
{
    int       rc;
    wh_str_t  name, payload;

    name = wh_rec_str(r->obj, "command");
    payload = wh_rec_str(r->obj, "payload");

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_cstr(b, "type", "device_command");
    rc |= wh_jw_str(b, "command_id", r->id.data, r->id.len);
    rc |= wh_jw_str(b, "command", name.data, name.len);
    rc |= wh_jw_raw(b, "payload", payload.data, payload.len);
    rc |= wh_jw_int(b, "priority", wh_rec_int(r->obj, "priority"));
    rc |= wh_jw_int(b, "attempt", wh_rec_int(r->obj, "attempt"));
    rc |= wh_jw_time(b, "timestamp", now);

    return rc | wh_jw_close(b, '}');
}


/* notes the command's state as stored now; publish: it changed;
 * peer: it is delivered to that session */
static int
wh_note_add(wh_cmd_notes_t *notes, wh_cmd_rec_t *r, int publish,
    wh_peer_t *peer, wh_str_t session, int64_t now, wh_err_t *err)
{
    char           *p;
    wh_cmd_note_t  *n;

    n = calloc(1, sizeof(wh_cmd_note_t) + r->ws.len + r->client_id.len
                  + r->id.len + session.len);

    if (n == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    p = n->mem;
    n->ws = wh_note_copy(&p, r->ws);
    n->client_id = wh_note_copy(&p, r->client_id);
    n->id = wh_note_copy(&p, r->id);
    n->session = wh_note_copy(&p, session);
    n->priority = (unsigned) wh_rec_int(r->obj, "priority");
    n->seq = (uint64_t) wh_rec_int(r->obj, "seq");
    n->publish = publish;
    n->peer = peer;
    wh_rec_state(r->obj, &n->state);

    *notes->tail = n;
    notes->tail = &n->next;

    if ((publish && wh_note_event(&n->event, r) != 0)
        || (peer && wh_note_command(&n->command, r, now) != 0))
    {
        return wh_err(err, 503, "out of memory");
    }

    return 0;
}


static void
wh_note_count(wh_commands_t *c, wh_cmd_note_t *n)
{
    switch (n->state.status) {
    case WH_CMD_PENDING:
        c->counters.created++;
        break;
    case WH_CMD_SENT:
        c->counters.delivered++;
        break;
    case WH_CMD_COMPLETED:
        c->counters.completed++;
        break;
    case WH_CMD_FAILED:
        c->counters.failed++;
        break;
    case WH_CMD_EXPIRED:
        c->counters.expired++;
        break;
    default:
        c->counters.cancelled++;
        break;
    }
}


static void wh_cmd_pump(wh_commands_t *c, wh_qclient_t *qc,
    int connected);


/* a sent command was answered or ended: the next one may go */
static void
wh_note_slot_freed(wh_commands_t *c, wh_cmd_note_t *n)
{
    wh_qclient_t  *qc;

    qc = wh_cmdq_client(&c->q, n->ws, n->client_id);

    if (qc != NULL
        && wh_sessions_of_client(c->sessions, n->ws, n->client_id) > 0)
    {
        wh_cmd_pump(c, qc, 0);
    }
}


static void
wh_note_act(wh_commands_t *c, wh_cmd_note_t *n, int64_t now)
{
    int            was_sent;
    wh_err_t       err;
    wh_qcmd_t     *cmd;
    wh_link_msg_t  m;
    wh_str_t       ch = { "$commands", 9 }, type = { "command_status", 14 };
    wh_str_t       data;

    cmd = wh_cmdq_find(&c->q, n->ws, n->id);
    was_sent = cmd != NULL && cmd->state.status == WH_CMD_SENT;

    if (wh_cmd_is_open(n->state.status)) {
        if (wh_cmdq_put(&c->q, n->ws, n->client_id, n->id, n->priority,
                        n->seq, &n->state, wh_cmd_due(&n->state, now))
            == NULL)
        {
            wh_log_error(c->log, "commands: out of memory: %.*s is not "
                         "watched until a restart", (int) n->id.len,
                         n->id.data);
        }

    } else if (cmd != NULL) {
        wh_cmdq_remove(&c->q, cmd);
    }

    if (was_sent && n->state.status != WH_CMD_SENT) {
        wh_note_slot_freed(c, n);
    }

    if (n->peer != NULL) {
        memset(&m, 0, sizeof(m));
        m.type = WH_LINK_COMMAND;
        m.session = n->session;
        m.workspace = n->ws;
        m.client_id = n->client_id;
        m.body.data = (const char *) n->command.data;
        m.body.len = n->command.len;
        wh_link_send(n->peer, &m);
    }

    if (!n->publish) {
        return;
    }

    wh_note_count(c, n);

    data.data = (const char *) n->event.data;
    data.len = n->event.len;

    if (wh_channels_enqueue(c->channels, WH_PUB_DAEMON, NULL, 0, n->ws, ch,
                            type, data, &err) != 0)
    {
        wh_log_error(c->log, "commands: $commands event: %s", err.msg);
    }
}


void
wh_cmd_notes_done(wh_commands_t *c, wh_cmd_notes_t *notes, int committed)
{
    int64_t         now;
    wh_cmd_note_t  *n;

    if (committed) {
        now = wh_time_ms();

        for (n = notes->head; n != NULL; n = n->next) {
            wh_note_act(c, n, now);
        }
    }

    wh_cmd_notes_clear(notes);
}


/* ---------------------------------------------------------- records */


/* 1 found (r->obj set), 0 not, -1 error */
static int
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
        return wh_cmd_fail(rc, "reading a command", err);
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


static int
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

    return rc ? wh_cmd_fail(rc, "writing a command", err) : 0;
}


static int
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


static int
wh_cmd_set_state(wh_cmd_rec_t *r, const wh_cmd_state_t *s, int64_t now)
{
    return json_object_set_new(r->obj, "status", json_integer(s->status))
           | json_object_set_new(r->obj, "attempt", json_integer(s->attempt))
           | json_object_set_new(r->obj, "deadline",
                                 json_integer(s->deadline_ms))
           | json_object_set_new(r->obj, "updated", json_integer(now));
}


/*
 * Moves an open command to status `to` (for WH_CMD_SENT: delivered once
 * more to peer/session), stores it and notes it.  A command that ends
 * leaves cmd_open.
 */
static int
wh_cmd_change(wh_commands_t *c, MDB_txn *txn, wh_cmd_rec_t *r,
    wh_cmd_status_e to, const char *reason, wh_peer_t *peer,
    wh_str_t session, int64_t now, wh_cmd_notes_t *notes, wh_err_t *err)
{
    int             rc;
    MDB_val         k;
    wh_cmd_state_t  s;
    unsigned char   key[WH_CMD_KEY_MAX];

    wh_rec_state(r->obj, &s);

    if (to == WH_CMD_SENT) {
        wh_cmd_delivered(&c->policy, &s, now);
    } else {
        s.status = to;
    }

    if (wh_cmd_set_state(r, &s, now) != 0
        || (reason && json_object_set_new(r->obj, "reason",
                                          json_string(reason)) != 0)
        || wh_cmd_history(r, now, session, reason) != 0)
    {
        return wh_err(err, 503, "out of memory");
    }

    if (wh_cmd_save(c, txn, r, 0, err) != 0) {
        return -1;
    }

    if (!wh_cmd_is_open(to)) {
        k.mv_data = key;
        k.mv_size = wh_key_seq(key, r->ws, r->client_id,
                               (uint64_t) wh_rec_int(r->obj, "seq"));
        rc = mdb_del(txn, c->open_db, &k, NULL);

        if (rc != 0 && rc != MDB_NOTFOUND) {
            return wh_cmd_fail(rc, "closing a command", err);
        }
    }

    return wh_note_add(notes, r, 1, to == WH_CMD_SENT ? peer : NULL,
                       session, now, err);
}


/*
 * The client's commands sent and unanswered: those memory knows, plus
 * those this txn sent (memory learns of them after the commit).  The
 * txn's count lives in c->txn_sent, emptied when a txn begins.
 */
static size_t
wh_cmd_in_flight(wh_commands_t *c, wh_cmd_rec_t *r, int add)
{
    size_t          klen, n;
    wh_qclient_t   *qc;
    unsigned char   key[WH_CMD_KEY_MAX];

    klen = wh_key_pair(key, r->ws, r->client_id);
    n = (size_t) (uintptr_t) wh_map_get(&c->txn_sent, key, klen);

    if (add) {
        /* out of memory the window is only a little wider */
        (void) wh_map_put(&c->txn_sent, key, klen,
                          (void *) (uintptr_t) (n + 1));
        return n + 1;
    }

    qc = wh_cmdq_client(&c->q, r->ws, r->client_id);

    return n + (qc ? qc->sent : 0);
}


/* what the rules say for an open command now, carried out */
static int
wh_cmd_advance(wh_commands_t *c, MDB_txn *txn, wh_cmd_rec_t *r,
    int64_t now, wh_cmd_notes_t *notes, int *changed, wh_err_t *err)
{
    int              online;
    wh_peer_t       *peer = NULL;
    wh_str_t         session = { "", 0 };
    wh_cmd_state_t   s;

    wh_rec_state(r->obj, &s);
    online = wh_sessions_newest(c->sessions, r->ws, r->client_id, &peer,
                                &session);
    *changed = 1;

    switch (wh_cmd_decide(&c->policy, &s, now, online,
                          wh_cmd_in_flight(c, r, 0)))
    {
    case WH_CMD_DELIVER:
        if (s.status == WH_CMD_PENDING) {
            (void) wh_cmd_in_flight(c, r, 1);
        }

        return wh_cmd_change(c, txn, r, WH_CMD_SENT, NULL, peer, session,
                             now, notes, err);

    case WH_CMD_EXPIRE:
        return wh_cmd_change(c, txn, r, WH_CMD_EXPIRED, "ttl", NULL,
                             session, now, notes, err);

    case WH_CMD_GIVE_UP:
        return wh_cmd_change(c, txn, r, WH_CMD_FAILED, "max_attempts", NULL,
                             session, now, notes, err);

    default:
        /* only memory learns when it is next due */
        *changed = 0;
        return wh_note_add(notes, r, 0, NULL, session, now, err);
    }
}


/* ---------------------------------------------------------- answers */


/* an answer that is not a change; out of memory, it goes out empty */
static int
wh_cmd_error(wh_cmd_op_t *op, uint16_t status, const char *code,
    const char *message)
{
    op->status = status;
    op->answer.len = 0;

    if (wh_json_error(&op->answer, code, message) != 0) {
        op->answer.len = 0;
    }

    return 0;
}


/* the command as the API shows it */
static int
wh_cmd_object(wh_buf_t *b, wh_cmd_rec_t *r, int with_history)
{
    int        rc;
    size_t     i;
    json_t    *h, *e;
    wh_str_t   s;

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_jw_str(b, "command_id", r->id.data, r->id.len);
    rc |= wh_jw_str(b, "client_id", r->client_id.data, r->client_id.len);
    s = wh_rec_str(r->obj, "command");
    rc |= wh_jw_str(b, "command", s.data, s.len);
    s = wh_rec_str(r->obj, "payload");
    rc |= wh_jw_raw(b, "payload", s.data, s.len);
    rc |= wh_jw_int(b, "priority", wh_rec_int(r->obj, "priority"));
    rc |= wh_jw_cstr(b, "status", wh_rec_status(r->obj));
    rc |= wh_jw_int(b, "attempt", wh_rec_int(r->obj, "attempt"));
    rc |= wh_jw_time(b, "created_at", wh_rec_int(r->obj, "created"));
    rc |= wh_jw_time(b, "updated_at", wh_rec_int(r->obj, "updated"));
    rc |= wh_jw_time(b, "expires_at", wh_rec_int(r->obj, "expires"));

    if ((s = wh_rec_str(r->obj, "idem")).len) {
        rc |= wh_jw_str(b, "idempotency_key", s.data, s.len);
    }

    if ((s = wh_rec_str(r->obj, "result")).len) {
        rc |= wh_jw_raw(b, "result", s.data, s.len);
    }

    if ((s = wh_rec_str(r->obj, "error")).len) {
        rc |= wh_jw_str(b, "error", s.data, s.len);
    }

    if ((s = wh_rec_str(r->obj, "reason")).len) {
        rc |= wh_jw_str(b, "reason", s.data, s.len);
    }

    h = json_object_get(r->obj, "history");

    if (!with_history || !json_is_array(h)) {
        return rc | wh_jw_close(b, '}');
    }

    rc |= wh_jw_open(b, "history", '[');

    json_array_foreach(h, i, e) {
        rc |= wh_jw_open(b, NULL, '{');
        rc |= wh_jw_cstr(b, "status", wh_rec_status(e));
        rc |= wh_jw_time(b, "at", wh_rec_int(e, "at"));

        if (json_object_get(e, "attempt")) {
            rc |= wh_jw_int(b, "attempt", wh_rec_int(e, "attempt"));
            s = wh_rec_str(e, "session");
            rc |= wh_jw_str(b, "session", s.data, s.len);
        }

        if ((s = wh_rec_str(e, "reason")).len) {
            rc |= wh_jw_str(b, "reason", s.data, s.len);
        }

        rc |= wh_jw_close(b, '}');
    }

    rc |= wh_jw_close(b, ']');

    return rc | wh_jw_close(b, '}');
}


/* {"command_id","status","client_id","priority","attempt","expires_at"} */
static int
wh_cmd_summary(wh_cmd_op_t *op, uint16_t status, wh_cmd_rec_t *r)
{
    int  rc;

    op->status = status;
    op->answer.len = 0;

    rc = wh_jw_open(&op->answer, NULL, '{');
    rc |= wh_jw_str(&op->answer, "command_id", r->id.data, r->id.len);
    rc |= wh_jw_cstr(&op->answer, "status",
                     wh_rec_status(r->obj));
    rc |= wh_jw_str(&op->answer, "client_id", r->client_id.data,
                    r->client_id.len);
    rc |= wh_jw_int(&op->answer, "priority",
                    wh_rec_int(r->obj, "priority"));
    rc |= wh_jw_int(&op->answer, "attempt", wh_rec_int(r->obj, "attempt"));
    rc |= wh_jw_time(&op->answer, "expires_at",
                     wh_rec_int(r->obj, "expires"));

    return rc | wh_jw_close(&op->answer, '}');
}


/* ------------------------------------------------------ op: create */


/* 1 and *id if the client already used this idempotency key */
static int
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
        return wh_cmd_fail(rc, "reading an idempotency key", err);
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

    return rc ? wh_cmd_fail(rc, "indexing a command", err) : 0;
}


static int
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
wh_cmd_apply_create(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int            rc, changed;
    wh_str_t       first;
    wh_cmd_rec_t   r;

    rc = wh_clients_exists(c->clients, txn, op->ws, op->client_id, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cmd_error(op, 404, "not_found",
                                          "no such client");
    }

    if (op->idem.len) {
        rc = wh_cmd_idem_find(c, txn, op, &first, err);

        if (rc == 1) {
            rc = wh_cmd_load(c, txn, op->ws, first, &r, err);
        }

        if (rc < 0) {
            return -1;
        }

        if (rc == 1) {
            /* a repeat: the first command, as it is now */
            rc = wh_cmd_summary(op, 200, &r);
            json_decref(r.obj);
            return rc ? wh_err(err, 503, "out of memory") : 0;
        }
    }

    op->op.sync = 1;

    rc = wh_cmd_insert(c, txn, op, &r, now, err) != 0
         || wh_note_add(&op->notes, &r, 1, NULL, op->session, now, err) != 0
         || wh_cmd_advance(c, txn, &r, now, &op->notes, &changed, err) != 0
         ? -1 : 0;

    if (rc == 0 && wh_cmd_summary(op, 202, &r) != 0) {
        rc = wh_err(err, 503, "out of memory");
    }

    json_decref(r.obj);

    return rc;
}


/* -------------------------------------------------------- op: list */


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
static int
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

    return rc == MDB_NOTFOUND ? 0 : wh_cmd_fail(rc, "listing commands", err);
}


static int
wh_cmd_apply_list(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    wh_err_t *err)
{
    int          rc;
    char         num[32];
    uint64_t     next;
    MDB_cursor  *cur;

    rc = wh_clients_exists(c->clients, txn, op->ws, op->client_id, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cmd_error(op, 404, "not_found",
                                          "no such client");
    }

    rc = mdb_cursor_open(txn, c->client_db, &cur);

    if (rc != 0) {
        return wh_cmd_fail(rc, "opening a cursor", err);
    }

    op->status = 200;
    rc = wh_jw_open(&op->answer, NULL, '{')
         | wh_jw_open(&op->answer, "items", '[');

    if (rc != 0 || wh_cmd_list_scan(c, txn, op, cur, &next, err) != 0) {
        mdb_cursor_close(cur);
        return rc ? wh_err(err, 503, "out of memory") : -1;
    }

    mdb_cursor_close(cur);

    rc = wh_jw_close(&op->answer, ']');

    if (next) {
        snprintf(num, sizeof(num), "%" PRIu64, next);
        rc |= wh_jw_cstr(&op->answer, "next", num);
    } else {
        rc |= wh_jw_raw(&op->answer, "next", "null", 4);
    }

    rc |= wh_jw_close(&op->answer, '}');

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


/* ------------------------------------- ops: get, cancel, result, tick */


static int
wh_cmd_apply_get(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    wh_err_t *err)
{
    int           rc;
    wh_cmd_rec_t  r;

    rc = wh_cmd_load(c, txn, op->ws, op->id, &r, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cmd_error(op, 404, "not_found",
                                          "no such command");
    }

    op->status = 200;
    rc = wh_cmd_object(&op->answer, &r, 1);
    json_decref(r.obj);

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


/* an ended command: a cancel (409 conflict) or a second result (409
 * bad_request, as the client sees it) */
static int
wh_cmd_already(wh_cmd_op_t *op, const char *code, wh_cmd_rec_t *r)
{
    char  msg[64];

    snprintf(msg, sizeof(msg), "command already %s",
             wh_rec_status(r->obj));

    return wh_cmd_error(op, 409, code, msg);
}


static int
wh_cmd_apply_cancel(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int           rc;
    wh_cmd_rec_t  r;

    rc = wh_cmd_load(c, txn, op->ws, op->id, &r, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cmd_error(op, 404, "not_found",
                                          "no such command");
    }

    if (!wh_cmd_is_open((wh_cmd_status_e) wh_rec_int(r.obj, "status"))) {
        rc = wh_cmd_already(op, "conflict", &r);

    } else {
        op->op.sync = 1;
        rc = wh_cmd_change(c, txn, &r, WH_CMD_CANCELLED,
                           "cancelled by the API", NULL, op->session, now,
                           &op->notes, err);

        if (rc == 0 && wh_cmd_summary(op, 200, &r) != 0) {
            rc = wh_err(err, 503, "out of memory");
        }
    }

    json_decref(r.obj);

    return rc;
}


static int
wh_cmd_apply_result(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int           rc;
    wh_cmd_rec_t  r;

    rc = wh_cmd_load(c, txn, op->ws, op->id, &r, err);

    if (rc < 0) {
        return -1;
    }

    /* another client's command answers exactly like a missing one */
    if (rc == 0 || r.client_id.len != op->client_id.len
        || memcmp(r.client_id.data, op->client_id.data, r.client_id.len)
           != 0)
    {
        json_decref(r.obj);
        return wh_cmd_error(op, 404, "not_found", "no such command");
    }

    if (!wh_cmd_is_open((wh_cmd_status_e) wh_rec_int(r.obj, "status"))) {
        rc = wh_cmd_already(op, "bad_request", &r);
        json_decref(r.obj);
        return rc;
    }

    op->op.sync = 1;

    if ((op->result.len
         && json_object_set_new(r.obj, "result",
                                json_stringn(op->result.data,
                                             op->result.len)) != 0)
        || (op->error.len
            && json_object_set_new(r.obj, "error",
                                   json_stringn(op->error.data,
                                                op->error.len)) != 0))
    {
        json_decref(r.obj);
        return wh_err(err, 503, "out of memory");
    }

    rc = wh_cmd_change(c, txn, &r, op->outcome, NULL, NULL, op->session,
                       now, &op->notes, err);

    if (rc == 0 && wh_cmd_summary(op, 200, &r) != 0) {
        rc = wh_err(err, 503, "out of memory");
    }

    json_decref(r.obj);

    return rc;
}


static int
wh_cmd_apply_advance(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int             rc, changed;
    wh_cmd_rec_t    r;

    rc = wh_cmd_load(c, txn, op->ws, op->id, &r, err);

    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        /* gone from the store: memory forgets it too */
        r.ws = op->ws;
        r.id = op->id;
        r.client_id = op->client_id;
        r.obj = json_pack("{s:i}", "status", WH_CMD_CANCELLED);

        if (r.obj == NULL) {
            return wh_err(err, 503, "out of memory");
        }

        rc = wh_note_add(&op->notes, &r, 0, NULL, op->session, now, err);
        json_decref(r.obj);
        return rc;
    }

    rc = wh_cmd_advance(c, txn, &r, now, &op->notes, &changed, err);
    op->op.sync |= changed;
    json_decref(r.obj);

    return rc;
}


static int
wh_cmd_op_apply(wh_op_t *base, MDB_txn *txn, wh_err_t *err)
{
    int64_t         now;
    wh_cmd_op_t    *op = (wh_cmd_op_t *) base;
    wh_commands_t  *c = op->c;

    /* a batch may be applied again after the map grew */
    wh_cmd_notes_clear(&op->notes);
    op->answer.len = 0;
    op->status = 500;

    now = wh_time_ms();

    switch (op->kind) {

    case WH_CMD_OP_CREATE:
        return wh_cmd_apply_create(c, txn, op, now, err);

    case WH_CMD_OP_LIST:
        return wh_cmd_apply_list(c, txn, op, err);

    case WH_CMD_OP_GET:
        return wh_cmd_apply_get(c, txn, op, err);

    case WH_CMD_OP_CANCEL:
        return wh_cmd_apply_cancel(c, txn, op, now, err);

    case WH_CMD_OP_RESULT:
        return wh_cmd_apply_result(c, txn, op, now, err);

    default:
        return wh_cmd_apply_advance(c, txn, op, now, err);
    }
}


static void
wh_cmd_respond(wh_peer_t *peer, uint32_t req_id, uint16_t status,
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
wh_cmd_respond_error(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    const char *code, const char *message)
{
    wh_buf_t  b = { 0 };

    if (wh_json_error(&b, code, message) != 0) {
        wh_link_drop(peer, "out of memory");
    } else {
        wh_cmd_respond(peer, req_id, status, b.data, b.len);
    }

    wh_buf_free(&b);
}


static void
wh_cmd_op_done(wh_op_t *base, int committed, const wh_err_t *err)
{
    wh_qcmd_t      *cmd;
    wh_cmd_op_t    *op = (wh_cmd_op_t *) base;
    wh_commands_t  *c = op->c;

    cmd = op->kind == WH_CMD_OP_ADVANCE
          ? wh_cmdq_find(&c->q, op->ws, op->id) : NULL;

    if (cmd != NULL) {
        /* decided: a pump may queue it again */
        cmd->queued = 0;

        if (!committed && cmd->heap == 0) {
            /* try again a little later */
            wh_cmdq_set_due(&c->q, cmd, wh_time_ms() + WH_CMD_RETRY_MS);
        }
    }

    wh_cmd_notes_done(c, &op->notes, committed);

    if (op->peer != NULL) {
        if (err != NULL) {
            wh_cmd_respond_error(op->peer, op->req_id,
                                 (uint16_t) err->status,
                                 wh_error_code(err->status),
                                 committed ? "stored, but the sync to disk "
                                 "failed" : "storage error, retry");

        } else {
            wh_cmd_respond(op->peer, op->req_id, op->status,
                           op->answer.data, op->answer.len);
        }
    }

    wh_cmd_op_free(op);
}


/* -------------------------------------------------------- ops: make */


static void
wh_cmd_op_free(wh_cmd_op_t *op)
{
    wh_cmd_notes_clear(&op->notes);
    wh_buf_free(&op->answer);
    free((char *) op->ws.data);
    free(op);
}


/* one allocation for the strings: ws, client_id, id, command, payload,
 * idem, result, error, session, in this order */
static int
wh_cmd_op_strings(wh_cmd_op_t *op, const wh_str_t *src, size_t n)
{
    char      *p;
    size_t     i, total = 0;
    wh_str_t  *dst[] = { &op->ws, &op->client_id, &op->id, &op->command,
                         &op->payload, &op->idem, &op->result, &op->error,
                         &op->session };

    for (i = 0; i < n; i++) {
        total += src[i].len;
    }

    p = malloc(total + 1);

    if (p == NULL) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        dst[i]->data = p;
        dst[i]->len = src[i].len;

        if (src[i].len) {
            memcpy(p, src[i].data, src[i].len);
        }

        p += src[i].len;
    }

    for ( /* void */ ; i < sizeof(dst) / sizeof(dst[0]); i++) {
        dst[i]->data = p;
        dst[i]->len = 0;
    }

    return 0;
}


static wh_cmd_op_t *
wh_cmd_op_new(wh_commands_t *c, wh_cmd_op_e kind, wh_peer_t *peer,
    uint32_t req_id, const wh_str_t *strs, size_t n)
{
    wh_cmd_op_t  *op;

    op = calloc(1, sizeof(wh_cmd_op_t));

    if (op == NULL) {
        return NULL;
    }

    if (wh_cmd_op_strings(op, strs, n) != 0) {
        free(op);
        return NULL;
    }

    op->op.apply = wh_cmd_op_apply;
    op->op.done = wh_cmd_op_done;
    op->c = c;
    op->kind = kind;
    op->peer = peer;
    op->req_id = req_id;
    wh_cmd_notes_init(&op->notes);

    return op;
}


/* ------------------------------------------------------ API parsing */


/*
 * "c-" + 11 hex digits of the time in ms + 10 random hex digits: ids
 * made close in time sort close together, so that a batch of new
 * commands dirties a few B-tree pages at the end of the workspace's
 * range, not one random page each (an fsync writes every dirty page).
 */
static int
wh_cmd_new_id(char *out)
{
    int            i;
    uint64_t       ms;
    unsigned char  r[WH_CMD_ID_RANDOM];
    static const char  hex[] = "0123456789abcdef";

    if (getrandom(r, sizeof(r), 0) != (ssize_t) sizeof(r)) {
        return -1;
    }

    ms = (uint64_t) wh_time_ms();
    out[0] = 'c';
    out[1] = '-';

    for (i = WH_CMD_ID_TIME - 1; i >= 0; i--) {
        out[2 + i] = hex[ms & 0xf];
        ms >>= 4;
    }

    for (i = 0; i < WH_CMD_ID_RANDOM; i++) {
        out[2 + WH_CMD_ID_TIME + i] = hex[r[i] & 0xf];
    }

    out[2 + WH_CMD_ID_TIME + WH_CMD_ID_RANDOM] = '\0';

    return 0;
}


/* the fields of POST /clients/{id}/commands; a message for a 400 */
static const char *
wh_cmd_parse_create(wh_commands_t *c, json_t *body, wh_str_t *strs,
    unsigned *priority, int64_t *ttl_ms)
{
    json_t  *v;

    v = json_object_get(body, "command");

    if (!json_is_string(v) || !wh_message_type_valid(json_string_value(v),
                                                     json_string_length(v)))
    {
        return "\"command\" must be a name of 1 to 128 characters";
    }

    strs[3].data = json_string_value(v);
    strs[3].len = json_string_length(v);

    v = json_object_get(body, "priority");
    *priority = WH_CMD_PRIORITY_DEF;

    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0
            || json_integer_value(v) >= WH_CMD_PRIORITIES)
        {
            return "\"priority\" must be an integer from 0 to 9";
        }

        *priority = (unsigned) json_integer_value(v);
    }

    v = json_object_get(body, "ttl");
    *ttl_ms = c->policy.ttl_ms;

    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1
            || json_integer_value(v) > WH_CMD_TTL_MAX_S)
        {
            return "\"ttl\" must be 1 to 2592000 seconds";
        }

        *ttl_ms = (int64_t) json_integer_value(v) * 1000;
    }

    v = json_object_get(body, "idempotency_key");

    if (v != NULL) {
        if (!json_is_string(v) || json_string_length(v) == 0
            || json_string_length(v) > WH_CMD_IDEM_MAX)
        {
            return "\"idempotency_key\" must be a string of 1 to 128 "
                   "bytes";
        }

        strs[5].data = json_string_value(v);
        strs[5].len = json_string_length(v);
    }

    return NULL;
}


static void
wh_cmd_create(wh_commands_t *c, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t client_id)
{
    char           id[3 + WH_CMD_ID_TIME + WH_CMD_ID_RANDOM];
    json_t        *body;
    int64_t        ttl_ms;
    unsigned       priority;
    wh_str_t       strs[6];
    const char    *bad;
    wh_cmd_op_t   *op;
    json_error_t   je;

    if (m->body.len > WH_CMD_BODY_MAX) {
        wh_cmd_respond_error(peer, m->req_id, 413, "too_large",
                             "the command is larger than 256 KiB");
        return;
    }

    body = json_loadb(m->body.data, m->body.len, JSON_REJECT_DUPLICATES,
                      &je);

    if (!json_is_object(body)) {
        json_decref(body);
        wh_cmd_respond_error(peer, m->req_id, 400, "bad_request",
                             "the body must be a JSON object {command, "
                             "payload, priority, ttl, idempotency_key}");
        return;
    }

    memset(strs, 0, sizeof(strs));
    strs[0] = m->workspace;
    strs[1] = client_id;

    /* the payload keeps its bytes; an escaped key is re-encoded */
    if (json_object_get(body, "payload") == NULL) {
        strs[4].data = "{}";
        strs[4].len = 2;
    } else if (!wh_json_member(m->body.data, m->body.len, "payload",
                               &strs[4]))
    {
        bad = "write the key \"payload\" without escapes";
        goto refused;
    }

    bad = wh_cmd_parse_create(c, body, strs, &priority, &ttl_ms);

    if (bad != NULL || wh_cmd_new_id(id) != 0) {
        goto refused;
    }

    strs[2].data = id;
    strs[2].len = strlen(id);

    op = wh_cmd_op_new(c, WH_CMD_OP_CREATE, peer, m->req_id, strs, 6);
    json_decref(body);

    if (op == NULL) {
        wh_cmd_respond_error(peer, m->req_id, 503, "unavailable",
                             "out of memory");
        return;
    }

    op->priority = priority;
    op->ttl_ms = ttl_ms;
    wh_batch_add(c->batch, &op->op, 0);

    return;

refused:

    json_decref(body);
    wh_cmd_respond_error(peer, m->req_id, bad ? 400 : 503,
                         bad ? "bad_request" : "unavailable",
                         bad ? bad : "no randomness for a command id");
}


/* status=pending,sent -> a bit per status; -1 if one is unknown */
static int
wh_cmd_status_mask(wh_str_t q, unsigned *mask)
{
    int          rc, st;
    char         buf[128];
    size_t       len;
    const char  *p, *end, *comma;

    *mask = 0;
    rc = wh_query_get(q, "status", buf, sizeof(buf), &len);

    if (rc <= 0) {
        return rc;
    }

    for (p = buf, end = buf + len; p < end; p = comma + 1) {
        comma = memchr(p, ',', end - p);
        comma = comma ? comma : end;
        st = wh_cmd_status_parse(p, comma - p);

        if (st < 0) {
            return -1;
        }

        *mask |= 1u << st;
    }

    return 0;
}


static void
wh_cmd_list(wh_commands_t *c, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t client_id)
{
    int           rc;
    uint64_t      limit = WH_CMD_LIMIT_DEF, cursor = 0;
    unsigned      mask;
    wh_str_t      strs[2];
    wh_cmd_op_t  *op;

    if (wh_cmd_status_mask(m->query, &mask) != 0) {
        wh_cmd_respond_error(peer, m->req_id, 400, "bad_request",
                             "status must list pending, sent, completed, "
                             "failed, expired or cancelled");
        return;
    }

    rc = wh_query_u64(m->query, "limit", &limit);

    if (rc < 0 || limit == 0) {
        wh_cmd_respond_error(peer, m->req_id, 400, "bad_request",
                             "limit must be 1 to 1000");
        return;
    }

    if (wh_query_u64(m->query, "cursor", &cursor) < 0) {
        wh_cmd_respond_error(peer, m->req_id, 400, "bad_request",
                             "invalid cursor");
        return;
    }

    strs[0] = m->workspace;
    strs[1] = client_id;
    op = wh_cmd_op_new(c, WH_CMD_OP_LIST, peer, m->req_id, strs, 2);

    if (op == NULL) {
        wh_cmd_respond_error(peer, m->req_id, 503, "unavailable",
                             "out of memory");
        return;
    }

    op->status_mask = mask;
    op->limit = limit > WH_CMD_LIMIT_MAX ? WH_CMD_LIMIT_MAX : limit;
    op->cursor = cursor;
    wh_batch_add(c->batch, &op->op, 0);
}


static void
wh_cmd_by_id(wh_commands_t *c, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_cmd_op_e kind, wh_str_t id)
{
    wh_str_t      strs[3];
    wh_cmd_op_t  *op;

    strs[0] = m->workspace;
    strs[1].data = "";
    strs[1].len = 0;
    strs[2] = id;

    op = wh_cmd_op_new(c, kind, peer, m->req_id, strs, 3);

    if (op == NULL) {
        wh_cmd_respond_error(peer, m->req_id, 503, "unavailable",
                             "out of memory");
        return;
    }

    wh_batch_add(c->batch, &op->op, 0);
}


static int
wh_method_is(const wh_link_msg_t *m, const char *method)
{
    return m->name.len == strlen(method)
           && memcmp(m->name.data, method, m->name.len) == 0;
}


static int
wh_path_starts(wh_str_t path, const char *prefix, wh_str_t *rest)
{
    size_t  n = strlen(prefix);

    if (path.len < n || memcmp(path.data, prefix, n) != 0) {
        return 0;
    }

    rest->data = path.data + n;
    rest->len = path.len - n;

    return 1;
}


void
wh_commands_api(wh_commands_t *c, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t path)
{
    const char  *slash;
    wh_str_t     rest, client_id;

    if (wh_path_starts(path, "/commands/", &rest) && rest.len
        && memchr(rest.data, '/', rest.len) == NULL)
    {
        if (wh_method_is(m, "GET")) {
            wh_cmd_by_id(c, peer, m, WH_CMD_OP_GET, rest);
            return;
        }

        if (wh_method_is(m, "DELETE")) {
            wh_cmd_by_id(c, peer, m, WH_CMD_OP_CANCEL, rest);
            return;
        }

        wh_cmd_respond_error(peer, m->req_id, 405, "method_not_allowed",
                             "use GET or DELETE");
        return;
    }

    if (wh_path_starts(path, "/clients/", &rest)
        && (slash = memchr(rest.data, '/', rest.len)) != NULL
        && rest.data + rest.len - slash == sizeof("/commands") - 1
        && memcmp(slash, "/commands", sizeof("/commands") - 1) == 0)
    {
        client_id.data = rest.data;
        client_id.len = slash - rest.data;

        if (!wh_client_id_valid(client_id.data, client_id.len)) {
            wh_cmd_respond_error(peer, m->req_id, 404, "not_found",
                                 "no such client");
            return;
        }

        if (wh_method_is(m, "POST")) {
            wh_cmd_create(c, peer, m, client_id);
            return;
        }

        if (wh_method_is(m, "GET")) {
            wh_cmd_list(c, peer, m, client_id);
            return;
        }

        wh_cmd_respond_error(peer, m->req_id, 405, "method_not_allowed",
                             "use POST or GET");
        return;
    }

    wh_cmd_respond_error(peer, m->req_id, 404, "not_found",
                         "no such resource");
}


/* --------------------------------------------------- COMMAND_RESULT */


/* the fields of a command_result; a message for a 400 */
static const char *
wh_cmd_parse_result(const wh_link_msg_t *m, json_t *body, wh_str_t *strs,
    wh_cmd_status_e *outcome, char **dumped)
{
    json_t  *v;

    v = json_object_get(body, "command_id");

    if (!json_is_string(v) || json_string_length(v) == 0
        || json_string_length(v) > WH_CMD_ID_MAX)
    {
        return "\"command_id\" is required";
    }

    strs[2].data = json_string_value(v);
    strs[2].len = json_string_length(v);

    v = json_object_get(body, "status");

    if (json_is_string(v) && strcmp(json_string_value(v), "completed") == 0)
    {
        *outcome = WH_CMD_COMPLETED;

    } else if (json_is_string(v)
               && strcmp(json_string_value(v), "failed") == 0)
    {
        *outcome = WH_CMD_FAILED;

    } else {
        return "\"status\" must be completed or failed";
    }

    if (json_object_get(body, "result") != NULL
        && !wh_json_member(m->body.data, m->body.len, "result", &strs[6]))
    {
        return "write the key \"result\" without escapes";
    }

    v = json_object_get(body, "error");

    if (json_is_string(v)) {
        strs[7].data = json_string_value(v);
        strs[7].len = json_string_length(v);

    } else if (v != NULL) {
        *dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        strs[7].data = *dumped ? *dumped : "";
        strs[7].len = *dumped ? strlen(*dumped) : 0;
    }

    return NULL;
}


int
wh_commands_result(wh_commands_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    char             *dumped = NULL;
    json_t           *body;
    wh_str_t          strs[9];
    const char       *bad;
    wh_cmd_op_t      *op;
    wh_cmd_status_e   outcome = WH_CMD_COMPLETED;

    if (!wh_workspace_valid(m->workspace.data, m->workspace.len)
        || m->client_id.len == 0 || m->client_id.len > WH_CMD_CLIENT_MAX)
    {
        return -1;
    }

    if (m->body.len > WH_CMD_BODY_MAX) {
        wh_cmd_respond_error(peer, m->req_id, 413, "too_large",
                             "the result is larger than 256 KiB");
        return 0;
    }

    body = json_loadb(m->body.data, m->body.len, 0, NULL);
    memset(strs, 0, sizeof(strs));
    strs[0] = m->workspace;
    strs[1] = m->client_id;
    strs[8] = m->session;

    bad = json_is_object(body)
          ? wh_cmd_parse_result(m, body, strs, &outcome, &dumped)
          : "the result must be a JSON object";

    if (bad != NULL) {
        json_decref(body);
        free(dumped);
        wh_cmd_respond_error(peer, m->req_id, 400, "bad_request", bad);
        return 0;
    }

    op = wh_cmd_op_new(c, WH_CMD_OP_RESULT, peer, m->req_id, strs, 9);
    json_decref(body);
    free(dumped);

    if (op == NULL) {
        wh_cmd_respond_error(peer, m->req_id, 503, "unavailable",
                             "out of memory");
        return 0;
    }

    op->outcome = outcome;
    wh_batch_add(c->batch, &op->op, 0);

    return 0;
}


/* --------------------------------------------------- delivery, time */


static void
wh_cmd_queue_advance(wh_commands_t *c, wh_qcmd_t *cmd, int first)
{
    wh_str_t      strs[3];
    wh_cmd_op_t  *op;

    strs[0] = cmd->ws;
    strs[1] = cmd->client->client_id;
    strs[2] = cmd->id;

    op = wh_cmd_op_new(c, WH_CMD_OP_ADVANCE, NULL, 0, strs, 3);

    if (op == NULL) {
        wh_log_error(c->log, "commands: out of memory, %.*s waits",
                     (int) cmd->id.len, cmd->id.data);

        if (cmd->heap == 0) {
            wh_cmdq_set_due(&c->q, cmd, wh_time_ms() + WH_CMD_RETRY_MS);
        }

        return;
    }

    cmd->queued = 1;
    wh_batch_add(c->batch, &op->op, first);
}


/*
 * Queues an op for each of the client's commands that may go now, in
 * delivery order: the pending ones its window takes and, when the
 * client just connected, the sent ones whose ack window passed while
 * it was away.  Each is decided again inside the txn.
 */
static void
wh_cmd_pump(wh_commands_t *c, wh_qclient_t *qc, int connected)
{
    size_t      busy;
    int64_t     now;
    wh_qcmd_t  *cmd;

    now = wh_time_ms();
    busy = qc->sent;

    for (cmd = wh_cmdq_first(qc); cmd != NULL; cmd = wh_cmdq_next(cmd)) {
        if (cmd->state.status == WH_CMD_SENT) {
            if (connected && !cmd->queued
                && cmd->state.deadline_ms <= now)
            {
                wh_cmd_queue_advance(c, cmd, 1);
            }

            continue;
        }

        if (busy >= c->policy.window) {
            if (!connected) {
                return;
            }

            continue;
        }

        busy++;

        if (!cmd->queued) {
            wh_cmd_queue_advance(c, cmd, 1);
        }
    }
}


void
wh_commands_client_online(wh_commands_t *c, wh_str_t ws, wh_str_t client_id)
{
    wh_qclient_t  *qc;

    qc = wh_cmdq_client(&c->q, ws, client_id);

    if (qc != NULL) {
        wh_cmd_pump(c, qc, 1);
    }
}


static void
wh_commands_tick(wh_timer_t *t)
{
    int64_t         now;
    unsigned        n;
    wh_qcmd_t      *cmd;
    wh_commands_t  *c = t->data;

    now = wh_time_ms();

    for (n = 0; n < WH_CMD_TICK_MAX; n++) {
        cmd = wh_cmdq_pop_due(&c->q, now);

        if (cmd == NULL) {
            break;
        }

        wh_cmd_queue_advance(c, cmd, 0);
    }
}


int
wh_commands_start(wh_commands_t *c, wh_loop_t *loop, wh_err_t *err)
{
    c->timer.interval = WH_CMD_TICK_MS;
    c->timer.handler = wh_commands_tick;
    c->timer.data = c;

    return wh_loop_timer(loop, &c->timer, err);
}


size_t
wh_commands_open(wh_commands_t *c, wh_str_t ws)
{
    return wh_cmdq_count_ws(&c->q, ws);
}


/* ------------------------------------------------- deleted clients */


int
wh_commands_cancel_client(wh_commands_t *c, MDB_txn *txn, wh_str_t ws,
    wh_str_t client_id, int64_t now, wh_cmd_notes_t *notes, wh_err_t *err)
{
    int            rc;
    size_t         plen;
    MDB_val        k, v;
    wh_str_t       id, none = { "", 0 };
    MDB_cursor    *cur;
    wh_cmd_rec_t   r;
    unsigned char  key[WH_CMD_KEY_MAX];
    char           idbuf[WH_CMD_ID_MAX];

    rc = mdb_cursor_open(txn, c->open_db, &cur);

    if (rc != 0) {
        return wh_cmd_fail(rc, "opening a cursor", err);
    }

    k.mv_data = key;
    k.mv_size = wh_key_seq(key, ws, client_id, 0);
    plen = k.mv_size - 8;

    /* each change deletes the entry under the cursor: start over */
    while ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) == 0
           && k.mv_size == plen + 8 && memcmp(k.mv_data, key, plen) == 0
           && v.mv_size > 0 && v.mv_size <= WH_CMD_ID_MAX)
    {
        memcpy(idbuf, v.mv_data, v.mv_size);
        id.data = idbuf;
        id.len = v.mv_size;

        rc = wh_cmd_load(c, txn, ws, id, &r, err);

        if (rc < 0) {
            mdb_cursor_close(cur);
            return -1;
        }

        rc = rc == 0 ? mdb_cursor_del(cur, 0)
             : wh_cmd_change(c, txn, &r, WH_CMD_CANCELLED, "client deleted",
                             NULL, none, now, notes, err);

        json_decref(r.obj);

        if (rc != 0) {
            mdb_cursor_close(cur);
            return rc == -1 ? -1 : wh_cmd_fail(rc, "closing a command",
                                               err);
        }

        k.mv_data = key;
        k.mv_size = plen + 8;
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_cmd_fail(rc, "cancelling commands", err);
    }

    return 0;
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
        return wh_cmd_fail(rc, "opening a cursor", err);
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
        return wh_cmd_fail(rc, "forgetting idempotency keys", err);
    }

    return 0;
}


/* -------------------------------------------------------- start, end */


static int
wh_cmd_begin(void *ctx, MDB_txn *txn, wh_err_t *err)
{
    wh_commands_t  *c = ctx;

    (void) txn;
    (void) err;

    c->txn_seq = c->next_seq - 1;
    wh_map_free(&c->txn_sent);

    return 0;
}


static int
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

    return rc ? wh_cmd_fail(rc, "writing the command seq", err) : 0;
}


static void
wh_cmd_committed(void *ctx, int committed)
{
    wh_commands_t  *c = ctx;

    if (committed) {
        c->next_seq = c->txn_seq + 1;
    }
}


static int
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
        return wh_cmd_fail(rc, "opening the command databases", err);
    }

    k.mv_data = "seq";
    k.mv_size = 3;
    rc = mdb_get(txn, c->meta_db, &k, &v);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_cmd_fail(rc, "reading the command seq", err);
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


static int
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
        return wh_cmd_fail(rc, "opening a cursor", err);
    }

    now = wh_time_ms();

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        wh_cmd_load_open(c, txn, &k, &v, now);
    }

    mdb_cursor_close(cur);

    if (rc != MDB_NOTFOUND) {
        return wh_cmd_fail(rc, "loading open commands", err);
    }

    return 0;
}


int
wh_commands_init(wh_commands_t *c, wh_store_t *store, wh_batch_t *batch,
    wh_sessions_t *sessions, wh_channels_t *channels, wh_clients_t *clients,
    const wh_cmd_policy_t *policy, wh_log_t *log, wh_err_t *err)
{
    memset(c, 0, sizeof(wh_commands_t));
    c->store = store;
    c->log = log;
    c->batch = batch;
    c->sessions = sessions;
    c->channels = channels;
    c->clients = clients;
    c->policy = *policy;
    wh_cmdq_init(&c->q);

    /* a write txn: the databases are created if need be; loading in it
     * keeps the open commands and the seq consistent */
    if (wh_store_write(store, wh_cmd_open_dbs, c, err) != 0
        || wh_store_write(store, wh_cmd_load_all, c, err) != 0)
    {
        wh_cmdq_free(&c->q);
        return -1;
    }

    batch->begin = wh_cmd_begin;
    batch->end = wh_cmd_end;
    batch->committed = wh_cmd_committed;
    batch->ctx = c;

    wh_log_info(log, "commands: %zu open, ttl %" PRId64 " ms, ack_timeout "
                "%" PRId64 " ms, max_attempts %u", wh_cmdq_count(&c->q),
                policy->ttl_ms, policy->ack_timeout_ms,
                policy->max_attempts);

    return 0;
}


void
wh_commands_free(wh_commands_t *c)
{
    wh_cmdq_free(&c->q);
    wh_map_free(&c->txn_sent);
}

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
#include <stdlib.h>
#include <string.h>

#include "wh_time.h"
#include "jsonw.h"
#include "commands_internal.h"


#define WH_CMD_TICK_MS       100
#define WH_CMD_TICK_MAX      10000         /* advanced per tick */


/* ------------------------------------------------------------ notes */


void
wh_cmd_notes_init(wh_cmd_notes_t *notes)
{
    notes->head = NULL;
    notes->tail = &notes->head;
}


void
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
int
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


/*
 * Moves an open command to status `to` (for WH_CMD_SENT: delivered once
 * more to peer/session), stores it and notes it.  A command that ends
 * leaves cmd_open.
 */
int
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
            return wh_mdb_error(rc, "closing a command", err);
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
int
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
        return wh_mdb_error(rc, "opening a cursor", err);
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
            return rc == -1 ? -1 : wh_mdb_error(rc, "closing a command",
                                               err);
        }

        k.mv_data = key;
        k.mv_size = plen + 8;
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_mdb_error(rc, "cancelling commands", err);
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

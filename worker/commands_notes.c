/*
 * State changes of the commands.  Inside a batch txn an op changes a
 * stored command (wh_cmd_change, wh_cmd_advance) and notes it; after
 * the commit the notes update memory (cmdqueue.h), send the COMMAND
 * frame and publish on "$commands".  So nothing is announced before it
 * is stored.
 */

#include <stdlib.h>
#include <string.h>

#include "wh_time.h"
#include "commands_json.h"
#include "commands_internal.h"


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


int
wh_cmd_note(wh_cmd_notes_t *notes, const wh_command_t *cmd, int publish,
    wh_peer_t *peer, wh_str_t session, int64_t now, wh_err_t *err)
{
    char           *p;
    wh_cmd_note_t  *n;

    n = calloc(1, sizeof(wh_cmd_note_t) + cmd->ws.len + cmd->client_id.len
                  + cmd->id.len + session.len + cmd->job.len);

    if (n == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    p = n->mem;
    n->ws = wh_note_copy(&p, cmd->ws);
    n->client_id = wh_note_copy(&p, cmd->client_id);
    n->id = wh_note_copy(&p, cmd->id);
    n->session = wh_note_copy(&p, session);
    n->job = wh_note_copy(&p, cmd->job);
    n->job_idx = cmd->job_idx;
    n->priority = cmd->priority;
    n->seq = cmd->seq;
    n->publish = publish;
    n->peer = peer;
    n->state = cmd->state;

    *notes->tail = n;
    notes->tail = &n->next;

    if ((publish == WH_NOTE_CHANGED
         && wh_cmd_json_event(&n->event, cmd) != 0)
        || (peer && wh_cmd_json_device(&n->command, cmd, now) != 0))
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


/* memory follows the store: an open command is (re)indexed, an ended
 * one forgotten; a sent one that ended frees a place in the window */
static void
wh_note_index(wh_commands_t *c, wh_cmd_note_t *n, int64_t now)
{
    int            was_sent;
    wh_qcmd_t     *cmd;
    wh_qclient_t  *qc;

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

    if (!was_sent || n->state.status == WH_CMD_SENT) {
        return;
    }

    qc = wh_cmdq_client(&c->q, n->ws, n->client_id);

    if (qc != NULL && c->slot_freed != NULL
        && wh_sessions_of_client(c->sessions, n->ws, n->client_id) > 0)
    {
        c->slot_freed(c, qc);
    }
}


static void
wh_note_act(wh_commands_t *c, wh_cmd_note_t *n, int64_t now)
{
    wh_err_t       err;
    wh_link_msg_t  m;
    wh_str_t       ch = { "$commands", 9 }, type = { "command_status", 14 };
    wh_str_t       data;

    wh_note_index(c, n, now);

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

    if (n->job.len && n->publish != WH_NOTE_QUIET
        && c->job_changed != NULL)
    {
        c->job_changed(c->job_ctx, n->ws, n->job, n->job_idx,
                       n->state.status);
    }

    if (n->publish != WH_NOTE_CHANGED) {
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


/* cluster: the other nodes learn whose commands changed, once per
 * client of a run of notes */
static void
wh_note_tell(wh_commands_t *c, wh_cmd_notes_t *notes)
{
    wh_cmd_note_t  *n, *prev = NULL;

    if (!wh_engine_shared(c->engine)) {
        return;
    }

    for (n = notes->head; n != NULL; n = n->next) {
        if (n->publish != WH_NOTE_CHANGED) {
            continue;
        }

        if (prev == NULL || !wh_str_eq(prev->ws, n->ws)
            || !wh_str_eq(prev->client_id, n->client_id))
        {
            wh_engine_notify(c->engine, WH_NOTE_COMMANDS, n->ws,
                             n->client_id, 0);
        }

        prev = n;
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

        wh_note_tell(c, notes);
    }

    wh_cmd_notes_clear(notes);
}


/* --------------------------------------------------- state changes */


int
wh_cmd_change(wh_commands_t *c, wh_etxn_t *t, wh_command_t *cmd,
    wh_cmd_status_e to, const char *reason, wh_peer_t *peer,
    wh_str_t session, int64_t now, wh_cmd_notes_t *notes, wh_err_t *err)
{
    wh_cmd_event_t  ev;

    if (to == WH_CMD_SENT) {
        wh_cmd_delivered(&c->policy, &cmd->state, now);
    } else {
        cmd->state.status = to;
    }

    cmd->updated_ms = now;
    memset(&ev, 0, sizeof(ev));
    ev.status = to;
    ev.at_ms = now;

    if (to == WH_CMD_SENT) {
        ev.attempt = cmd->state.attempt;
        ev.session = session;
    }

    if (reason != NULL) {
        cmd->reason.data = reason;
        cmd->reason.len = strlen(reason);
        ev.reason = cmd->reason;
    }

    if (wh_command_event(cmd, &ev) != 0) {
        return wh_err(err, 503, "out of memory");
    }

    if (cmd != c->unstored && wh_etxn_ops(t)->cmd_update(t, cmd, err) != 0)
    {
        return -1;
    }

    return wh_cmd_note(notes, cmd, WH_NOTE_CHANGED,
                       to == WH_CMD_SENT ? peer : NULL,
                       session, now, err);
}


/*
 * The client's commands sent and unanswered: those memory knows, plus
 * those this txn sent (memory learns of them after the commit).  The
 * txn's count lives in c->txn_sent, emptied when a txn begins.
 */
static size_t
wh_cmd_in_flight(wh_commands_t *c, const wh_command_t *cmd, int add)
{
    size_t          klen, n;
    wh_qclient_t   *qc;
    unsigned char   key[WH_CMDQ_KEY_MAX];

    klen = wh_cmdq_key(key, cmd->ws, cmd->client_id);
    n = (size_t) (uintptr_t) wh_map_get(&c->txn_sent, key, klen);

    if (add) {
        /* out of memory the window is only a little wider */
        (void) wh_map_put(&c->txn_sent, key, klen,
                          (void *) (uintptr_t) (n + 1));
        return n + 1;
    }

    qc = wh_cmdq_client(&c->q, cmd->ws, cmd->client_id);

    return n + (qc ? qc->sent : 0);
}


/*
 * 1 if a pending command of a lane must wait: another of its client's
 * open commands of the same lane was sent and not answered, or is
 * older (a lane goes in creation order), in memory or in this txn.
 * The txn's lanes live in c->txn_lanes, emptied when a txn begins.
 */
static int
wh_cmd_lane_busy(wh_commands_t *c, const wh_command_t *cmd, int add)
{
    size_t          klen;
    wh_qcmd_t      *q;
    wh_qclient_t   *qc;
    unsigned char   key[WH_CMDQ_KEY_MAX + 5];

    klen = wh_cmdq_key(key, cmd->ws, cmd->client_id);
    key[klen++] = '\0';
    memcpy(key + klen, &cmd->state.lane, 4);
    klen += 4;

    if (add) {
        /* out of memory the lane is only less strict */
        (void) wh_map_put(&c->txn_lanes, key, klen, (void *) 1);
        return 0;
    }

    if (wh_map_get(&c->txn_lanes, key, klen) != NULL) {
        return 1;
    }

    qc = wh_cmdq_client(&c->q, cmd->ws, cmd->client_id);

    if (qc == NULL) {
        return 0;
    }

    for (q = wh_cmdq_first(qc); q != NULL; q = wh_cmdq_next(q)) {
        if (q->state.lane != cmd->state.lane || q->seq == cmd->seq) {
            continue;
        }

        if (q->state.status == WH_CMD_SENT || q->seq < cmd->seq) {
            return 1;
        }
    }

    return 0;
}


int
wh_cmd_advance(wh_commands_t *c, wh_etxn_t *t, wh_command_t *cmd,
    int64_t now, wh_cmd_notes_t *notes, int *changed, wh_err_t *err)
{
    int         online;
    wh_peer_t  *peer = NULL;
    wh_str_t    session = { "", 0 };

    online = wh_sessions_newest(c->sessions, cmd->ws, cmd->client_id,
                                &peer, &session);
    *changed = 1;

    if (online && cmd->state.lane && cmd->state.status == WH_CMD_PENDING
        && wh_cmd_lane_busy(c, cmd, 0))
    {
        /* waits for its lane as if its client were away */
        online = 0;
    }

    switch (wh_cmd_decide(&c->policy, &cmd->state, now, online,
                          wh_cmd_in_flight(c, cmd, 0)))
    {
    case WH_CMD_DELIVER:
        if (cmd->state.status == WH_CMD_PENDING) {
            (void) wh_cmd_in_flight(c, cmd, 1);

            if (cmd->state.lane) {
                (void) wh_cmd_lane_busy(c, cmd, 1);
            }
        }

        return wh_cmd_change(c, t, cmd, WH_CMD_SENT, NULL, peer, session,
                             now, notes, err);

    case WH_CMD_EXPIRE:
        return wh_cmd_change(c, t, cmd, WH_CMD_EXPIRED, "ttl", NULL,
                             session, now, notes, err);

    case WH_CMD_GIVE_UP:
        return wh_cmd_change(c, t, cmd, WH_CMD_FAILED, "max_attempts", NULL,
                             session, now, notes, err);

    default:
        /* only memory learns when it is next due */
        *changed = 0;
        return wh_cmd_note(notes, cmd, WH_NOTE_QUIET, NULL, session, now, err);
    }
}

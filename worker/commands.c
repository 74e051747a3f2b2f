/*
 * The durable command queue's operations.  Every request, result and
 * timer tick is an op of the batch (batch.h): apply decides it inside
 * the txn from the stored command (engine.h), recording notes
 * (commands_notes.c) and what it came to; after the commit the notes
 * are acted on and the op's reply (the API's) answers.
 */

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wh_time.h"
#include "commands_internal.h"


#define WH_CMD_RETRY_MS      1000          /* after a failed batch */
/* the timer runs when a command falls due, never closer together than
 * WH_CMD_TICK_MS (what falls due meanwhile goes in one batch), and at
 * least once a second (retention) */
#define WH_CMD_TICK_MS       100
#define WH_CMD_IDLE_TICK_MS  1000
#define WH_CMD_TICK_MAX      10000         /* advanced per tick */
#define WH_CMD_OP_STRS       12
#define WH_CMD_SCAN_MAX      1000          /* looked at per listed page */
#define WH_CMD_PRUNE_MAX     500           /* deleted per loop turn */
#define WH_CMD_PRUNE_MS      1000          /* between prunes, when done */
/* one node: the per-client index is brought up to date once a second
 * while commands come fast, each page it writes then taking many of
 * their entries (a listing reads those from cmd_ws), or sooner when
 * that many wait for it; while they come slower, in the batch after
 * theirs, so that no commit grows by a second's worth of pages a few
 * entries each (at 1,000/s that commit held up the commands beside it
 * by tens of ms) */
#define WH_CMD_INDEX_MS      1000
#define WH_CMD_INDEX_MAX     32768
#define WH_CMD_INDEX_FAST    4000          /* commands a second */
/* cluster: seqs a txn takes at once (the unused ones are a gap) */
#define WH_CMD_SEQ_BLOCK     64


static wh_str_t  wh_none = { "", 0 };


/* ------------------------------------------------------------ apply */


/* a pending command of the client with the new one's supersede key
 * gives way to it */
typedef struct {
    wh_commands_t   *c;
    wh_etxn_t       *t;
    const wh_command_t  *by;
    int64_t          now;
    wh_cmd_notes_t  *notes;
} wh_cmd_supersede_t;


static int
wh_cmd_supersede_one(void *ctx, wh_command_t *cmd, wh_err_t *err)
{
    wh_cmd_supersede_t  *s = ctx;

    if (cmd->state.status != WH_CMD_PENDING
        || cmd->supersede.len != s->by->supersede.len
        || memcmp(cmd->supersede.data, s->by->supersede.data,
                  cmd->supersede.len) != 0)
    {
        return 0;
    }

    return wh_cmd_change(s->c, s->t, cmd, WH_CMD_SUPERSEDED, "superseded",
                         NULL, wh_none, s->now, s->notes, err);
}


/* cluster: a block of seqs for the txn, unless it has some left.  They
 * are taken in Redis at once, past every seq given out: two nodes'
 * writes never conflict over the seq, and a command created after
 * another was answered still comes after it. */
static int
wh_cmd_seq_block(wh_commands_t *c, wh_etxn_t *t, wh_err_t *err)
{
    if (!wh_engine_shared(c->engine) || c->txn_block_left > 0) {
        return 0;
    }

    if (wh_etxn_ops(t)->cmd_seq_take(t, WH_CMD_SEQ_BLOCK, &c->txn_block,
                                     err)
        != 0)
    {
        return -1;
    }

    c->txn_block_left = WH_CMD_SEQ_BLOCK;

    return 0;
}


/* the seq of a new command: the next in memory on one node (the txn
 * writes the last), the next of the txn's block in a cluster */
static int
wh_cmd_next_seq(wh_commands_t *c, wh_etxn_t *t, uint64_t *seq,
    wh_err_t *err)
{
    if (!wh_engine_shared(c->engine)) {
        *seq = ++c->txn_seq;
        return 0;
    }

    if (wh_cmd_seq_block(c, t, err) != 0) {
        return -1;
    }

    *seq = c->txn_block++;
    c->txn_block_left--;

    return 0;
}


int
wh_commands_insert(wh_commands_t *c, wh_etxn_t *t, wh_command_t *cmd,
    int64_t ttl_ms, int64_t now, wh_cmd_notes_t *notes, wh_err_t *err)
{
    int                  rc, changed;
    wh_cmd_event_t       ev;
    wh_cmd_supersede_t   s;

    if (cmd->supersede.len) {
        s.c = c;
        s.t = t;
        s.by = cmd;
        s.now = now;
        s.notes = notes;

        if (wh_etxn_ops(t)->cmd_open(t, cmd->ws, cmd->client_id,
                                     wh_cmd_supersede_one, &s, err) != 0)
        {
            return -1;
        }
    }

    if (wh_cmd_next_seq(c, t, &cmd->seq, err) != 0) {
        return -1;
    }

    cmd->state.status = WH_CMD_PENDING;
    cmd->state.expires_ms = wh_cmd_expires_at(&c->policy, now, ttl_ms);
    cmd->state.lane = wh_cmd_lane_hash(cmd->lane.data, cmd->lane.len);
    cmd->created_ms = now;
    cmd->updated_ms = now;

    memset(&ev, 0, sizeof(ev));
    ev.status = WH_CMD_PENDING;
    ev.at_ms = now;

    if (wh_command_event(cmd, &ev) != 0) {
        return wh_err(err, 503, "out of memory");
    }

    /* a client online gets it at once: the record is written once, sent,
     * after both events are noted */
    c->unstored = cmd;
    rc = wh_cmd_note(notes, cmd, WH_NOTE_CHANGED, NULL, wh_none, now, err)
         != 0
         || wh_cmd_advance(c, t, cmd, now, notes, &changed, err) != 0
         ? -1 : 0;
    c->unstored = NULL;

    if (rc != 0 || wh_etxn_ops(t)->cmd_insert(t, cmd, err) != 0) {
        return -1;
    }

    /* ended at once (expired, given up): closed as any other end */
    return wh_cmd_is_open(cmd->state.status)
           ? 0 : wh_etxn_ops(t)->cmd_update(t, cmd, err);
}


int
wh_commands_cancel_pending(wh_commands_t *c, wh_etxn_t *t, wh_str_t ws,
    wh_str_t id, const char *reason, int64_t now, wh_cmd_notes_t *notes,
    int *status, wh_err_t *err)
{
    int           rc;
    wh_command_t  cmd;

    *status = WH_CMD_CANCELLED;
    rc = wh_etxn_ops(t)->cmd_get(t, ws, id, &cmd, err);

    if (rc <= 0) {
        return rc;
    }

    rc = 0;
    *status = cmd.state.status;

    if (cmd.state.status == WH_CMD_PENDING) {
        rc = wh_cmd_change(c, t, &cmd, WH_CMD_CANCELLED, reason, NULL,
                           wh_none, now, notes, err) != 0 ? -1 : 1;
        *status = WH_CMD_CANCELLED;
    }

    wh_command_free(&cmd);

    return rc;
}


static int
wh_cmd_apply_create(wh_commands_t *c, wh_etxn_t *t, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int              rc, repeat;
    wh_command_t    *cmd = &op->cmd;

    /*
     * The client, the idempotency key and (cluster) a block of seqs do
     * not depend on each other: all three are asked for before an answer
     * is looked at, so that a cluster's batch fetches them from Redis in
     * one round trip rather than one after the other.
     */
    rc = wh_etxn_ops(t)->client_get(t, op->ws, op->client_id, NULL, err);
    repeat = rc >= 0 && op->idem.len
             ? wh_etxn_ops(t)->cmd_idem(t, op->ws, op->client_id, op->idem,
                                        cmd, err)
             : 0;

    if (rc < 0 || repeat < 0 || wh_cmd_seq_block(c, t, err) != 0) {
        return -1;
    }

    /* (what an idempotency key found is freed with the op) */
    if (rc == 0) {
        op->outcome = WH_CMD_NO_CLIENT;
        return 0;
    }

    if (repeat) {
        /* a repeat: the first command, as it is now */
        op->outcome = WH_CMD_REPEATED;
        return 0;
    }

    /* a place of the quota is held from here to done, where the queue
     * counts the command: the creates of one batch cannot pass the
     * quota together.  The op owns it, so a batch applied again does
     * not take it twice. */
    if (!op->held
        && wh_quota_take(c->quota, op->ws, WH_QUOTA_QUEUED_COMMANDS) != 0)
    {
        op->outcome = WH_CMD_OVER_QUOTA;
        return 0;
    }

    op->held = 1;
    op->op.sync = 1;
    cmd->ws = op->ws;
    cmd->id = op->id;
    cmd->client_id = op->client_id;
    cmd->command = op->command;
    cmd->payload = op->payload;
    cmd->idem = op->idem;
    cmd->lane = op->lane;
    cmd->supersede = op->supersede;
    cmd->issued_by = op->issued_by;
    cmd->priority = op->priority;
    cmd->state.not_before_ms = op->not_before_ms;

    return wh_commands_insert(c, t, cmd, op->ttl_ms, now, &op->notes, err);
}


static int
wh_cmd_apply_list(wh_etxn_t *t, wh_cmd_op_t *op, wh_err_t *err)
{
    int  rc;

    rc = wh_etxn_ops(t)->client_get(t, op->ws, op->client_id, NULL, err);

    if (rc <= 0) {
        op->outcome = WH_CMD_NO_CLIENT;
        return rc;
    }

    return wh_etxn_ops(t)->cmd_list(t, op->ws, op->client_id, op->cursor,
                                    op->limit, op->status_mask, &op->list,
                                    err);
}


/* every command of the workspace, newest first, filtered: issued_by
 * names a sub; a page looks at WH_CMD_SCAN_MAX commands at most, so
 * that a filter matching few never makes a long txn */
static int
wh_cmd_apply_list_ws(wh_etxn_t *t, wh_cmd_op_t *op, wh_err_t *err)
{
    wh_cmd_filter_t  f;

    f.mask = op->status_mask;
    f.sub = op->issued_by;
    f.since_ms = op->since_ms;

    return wh_etxn_ops(t)->cmd_list_ws(t, op->ws, op->cursor, op->limit,
                                       WH_CMD_SCAN_MAX, &f, &op->list,
                                       err);
}


/* the retention: one bounded step, the oldest ends first */
static int
wh_cmd_apply_prune(wh_commands_t *c, wh_etxn_t *t, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    return wh_etxn_ops(t)->cmd_prune(t, now - c->retention_ms,
                                     WH_CMD_PRUNE_MAX, &op->pruned,
                                     &op->more, err);
}


/* one node: the per-client index up to the last seq given out */
static int
wh_cmd_apply_index(wh_etxn_t *t, wh_cmd_op_t *op, wh_err_t *err)
{
    return wh_etxn_ops(t)->cmd_index_clients(t, &op->cursor, err);
}


/* the command the op names; 0 (outcome set) if there is none */
static int
wh_cmd_apply_load(wh_etxn_t *t, wh_cmd_op_t *op, wh_err_t *err)
{
    int  rc;

    rc = wh_etxn_ops(t)->cmd_get(t, op->ws, op->id, &op->cmd, err);

    /* another client's command answers exactly like a missing one */
    if (rc == 1 && op->kind == WH_CMD_OP_RESULT
        && (op->cmd.client_id.len != op->client_id.len
            || memcmp(op->cmd.client_id.data, op->client_id.data,
                      op->client_id.len) != 0))
    {
        rc = 0;
    }

    if (rc == 0) {
        op->outcome = WH_CMD_NO_COMMAND;
    }

    return rc;
}


/* cancel and result: an open command ends */
static int
wh_cmd_apply_end(wh_commands_t *c, wh_etxn_t *t, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int              rc;
    const char      *reason = NULL;
    wh_cmd_status_e  to = WH_CMD_CANCELLED;

    rc = wh_cmd_apply_load(t, op, err);

    if (rc <= 0) {
        return rc;
    }

    if (!wh_cmd_is_open(op->cmd.state.status)) {
        op->outcome = WH_CMD_ENDED;
        return 0;
    }

    op->op.sync = 1;

    if (op->kind == WH_CMD_OP_CANCEL) {
        reason = "cancelled by the API";

    } else {
        to = op->reported;

        if (op->result.len) {
            op->cmd.result = op->result;
        }

        if (op->error.len) {
            op->cmd.error = op->error;
        }
    }

    return wh_cmd_change(c, t, &op->cmd, to, reason, NULL, op->session, now,
                         &op->notes, err);
}


static int
wh_cmd_apply_advance(wh_commands_t *c, wh_etxn_t *t, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int           rc, changed;
    wh_command_t  gone;

    rc = wh_etxn_ops(t)->cmd_get(t, op->ws, op->id, &op->cmd, err);

    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        /* gone from the store: memory forgets it too */
        memset(&gone, 0, sizeof(gone));
        gone.ws = op->ws;
        gone.id = op->id;
        gone.client_id = op->client_id;
        gone.state.status = WH_CMD_CANCELLED;

        return wh_cmd_note(&op->notes, &gone, WH_NOTE_QUIET, NULL,
                           op->session, now, err);
    }

    rc = wh_cmd_advance(c, t, &op->cmd, now, &op->notes, &changed, err);
    op->op.sync |= changed;

    return rc;
}


typedef struct {
    wh_cmd_op_t     *op;
    int64_t          now;
} wh_cmd_refresh_t;


static int
wh_cmd_refresh_one(void *ctx, wh_command_t *cmd, wh_err_t *err)
{
    wh_cmd_refresh_t  *r = ctx;

    return wh_cmd_note(&r->op->notes, cmd, WH_NOTE_QUIET, NULL, wh_none,
                       r->now, err);
}


/* 1 if the refresh noted the command already */
static int
wh_cmd_refresh_noted(wh_cmd_op_t *op, wh_str_t id)
{
    wh_cmd_note_t  *n;

    for (n = op->notes.head; n != NULL; n = n->next) {
        if (wh_str_eq(n->id, id)) {
            return 1;
        }
    }

    return 0;
}


static int
wh_cmd_refresh_read(wh_commands_t *c, wh_etxn_t *t, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int                rc;
    wh_qcmd_t         *q;
    wh_qclient_t      *qc;
    wh_command_t       gone;
    wh_cmd_refresh_t   r;

    r.op = op;
    r.now = now;

    if (wh_etxn_ops(t)->cmd_open(t, op->ws, op->client_id,
                                 wh_cmd_refresh_one, &r, err) != 0)
    {
        return -1;
    }

    qc = wh_cmdq_client(&c->q, op->ws, op->client_id);

    for (q = qc ? wh_cmdq_first(qc) : NULL; q; q = wh_cmdq_next(q)) {
        if (wh_cmd_refresh_noted(op, q->id)) {
            continue;
        }

        /* ended elsewhere: its job, if it runs here, learns how */
        rc = wh_etxn_ops(t)->cmd_get(t, op->ws, q->id, &gone, err);

        if (rc < 0) {
            return -1;
        }

        if (rc == 1) {
            rc = wh_cmd_note(&op->notes, &gone, WH_NOTE_CHANGED_ELSEWHERE,
                             NULL, wh_none, now, err);
            wh_command_free(&gone);

        } else {
            memset(&gone, 0, sizeof(gone));
            gone.ws = op->ws;
            gone.id = q->id;
            gone.client_id = op->client_id;
            gone.state.status = WH_CMD_CANCELLED;
            rc = wh_cmd_note(&op->notes, &gone, WH_NOTE_QUIET, NULL,
                             wh_none, now, err);
        }

        if (rc != 0) {
            return -1;
        }
    }

    return 0;
}


/*
 * Memory follows what the store holds of the client's open commands:
 * each is noted (indexed after the commit), and what memory holds that
 * is no longer open there is noted as ended (forgotten).  Nothing is
 * announced: the node that changed them did.
 *
 * It writes nothing, so its reads are not checked at commit: a command
 * the device's node ends meanwhile does not refuse the whole batch
 * (the creates beside it); that node's note brings a refresh after.
 */
static int
wh_cmd_apply_refresh(wh_commands_t *c, wh_etxn_t *t, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int  rc;

    t->unchecked = 1;
    rc = wh_cmd_refresh_read(c, t, op, now, err);
    t->unchecked = 0;

    return rc;
}


static int
wh_cmd_op_apply(wh_op_t *base, wh_etxn_t *t, wh_err_t *err)
{
    int64_t         now;
    wh_cmd_op_t    *op = (wh_cmd_op_t *) base;
    wh_commands_t  *c = op->c;

    /* a batch may be applied again: start from scratch */
    wh_cmd_notes_clear(&op->notes);
    wh_command_free(&op->cmd);
    wh_cmd_list_free(&op->list);
    memset(&op->cmd, 0, sizeof(wh_command_t));
    op->outcome = WH_CMD_DONE;

    now = wh_time_ms();

    switch (op->kind) {

    case WH_CMD_OP_CREATE:
        return wh_cmd_apply_create(c, t, op, now, err);

    case WH_CMD_OP_LIST:
        return wh_cmd_apply_list(t, op, err);

    case WH_CMD_OP_LIST_WS:
        return wh_cmd_apply_list_ws(t, op, err);

    case WH_CMD_OP_PRUNE:
        return wh_cmd_apply_prune(c, t, op, now, err);

    case WH_CMD_OP_INDEX:
        return wh_cmd_apply_index(t, op, err);

    case WH_CMD_OP_GET:
        return wh_cmd_apply_load(t, op, err) < 0 ? -1 : 0;

    case WH_CMD_OP_REFRESH:
        return wh_cmd_apply_refresh(c, t, op, now, err);

    case WH_CMD_OP_CANCEL:
    case WH_CMD_OP_RESULT:
        return wh_cmd_apply_end(c, t, op, now, err);

    default:
        return wh_cmd_apply_advance(c, t, op, now, err);
    }
}


/* -------------------------------------------------------- done, make */


static void wh_cmd_tick_in(wh_commands_t *c, int64_t delay_ms);
static void wh_cmd_indexed(wh_commands_t *c, uint64_t indexed);
static void wh_commands_index(wh_commands_t *c);
static void wh_cmd_refreshed(wh_commands_t *c, wh_str_t ws,
    wh_str_t client_id, int committed);
static void wh_cmd_pending_may_go(wh_commands_t *c, wh_str_t ws,
    wh_str_t client_id);


/* a command whose op could not be made or committed is tried again a
 * little later */
static void
wh_cmd_retry_later(wh_commands_t *c, wh_qcmd_t *cmd)
{
    if (cmd->heap == 0) {
        wh_cmdq_set_due(&c->q, cmd, wh_time_ms() + WH_CMD_RETRY_MS);
    }
}


static void
wh_cmd_op_free(wh_cmd_op_t *op)
{
    wh_cmd_notes_clear(&op->notes);
    wh_command_free(&op->cmd);
    wh_cmd_list_free(&op->list);
    free(op->mem);
    free(op);
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

        if (!committed) {
            wh_cmd_retry_later(c, cmd);
        }
    }

    if (op->kind == WH_CMD_OP_PRUNE) {
        /* a step that left more goes on at the next tick */
        c->pruning = 0;
        c->prune_at = wh_loop_now()
                      + (committed && op->more ? 0 : WH_CMD_PRUNE_MS);
        wh_cmd_tick_in(c, c->prune_at - wh_loop_now());
        c->counters.pruned += committed ? op->pruned : 0;
    }

    if (op->kind == WH_CMD_OP_INDEX) {
        wh_cmd_indexed(c, committed ? op->cursor : c->indexed);
    }

    wh_cmd_notes_done(c, &op->notes, committed);

    if (op->kind == WH_CMD_OP_REFRESH) {
        wh_cmd_refreshed(c, op->ws, op->client_id, committed);
    }

    /* a new command that had to wait in its txn (its lane or the window
     * was busy) may go now: what held it may have ended in the same
     * batch, and memory learnt of it only now */
    if (op->kind == WH_CMD_OP_CREATE && committed
        && op->outcome == WH_CMD_DONE)
    {
        wh_cmd_pending_may_go(c, op->ws, op->client_id);

        /* slow: its entry goes in the next batch, a page or two */
        wh_commands_index(c);
    }

    if (op->held) {
        wh_quota_release(c->quota, op->ws, WH_QUOTA_QUEUED_COMMANDS);
    }

    if (op->reply != NULL) {
        op->reply(op, committed, err);
    }

    wh_cmd_op_free(op);
}


wh_cmd_op_t *
wh_cmd_op_new(wh_commands_t *c, wh_cmd_op_e kind, const wh_str_t *strs,
    size_t n)
{
    size_t        i;
    wh_str_t      all[WH_CMD_OP_STRS];
    wh_cmd_op_t  *op;
    wh_str_t     *dst[WH_CMD_OP_STRS];

    op = calloc(1, sizeof(wh_cmd_op_t));

    if (op == NULL) {
        return NULL;
    }

    dst[0] = &op->ws;
    dst[1] = &op->client_id;
    dst[2] = &op->id;
    dst[3] = &op->command;
    dst[4] = &op->payload;
    dst[5] = &op->idem;
    dst[6] = &op->result;
    dst[7] = &op->error;
    dst[8] = &op->session;
    dst[9] = &op->lane;
    dst[10] = &op->supersede;
    dst[11] = &op->issued_by;

    for (i = 0; i < WH_CMD_OP_STRS; i++) {
        all[i] = i < n ? strs[i] : wh_none;
    }

    if (wh_strs_copy(&op->mem, dst, all, WH_CMD_OP_STRS) != 0) {
        free(op);
        return NULL;
    }

    op->op.apply = wh_cmd_op_apply;
    op->op.done = wh_cmd_op_done;
    op->c = c;
    op->kind = kind;
    wh_cmd_notes_init(&op->notes);

    return op;
}


void
wh_cmd_op_submit(wh_cmd_op_t *op)
{
    wh_batch_add(op->c->batch, &op->op, 0);
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

    op = wh_cmd_op_new(c, WH_CMD_OP_ADVANCE, strs, 3);

    if (op == NULL) {
        wh_log_error(c->log, "commands: out of memory, %.*s waits",
                     (int) cmd->id.len, cmd->id.data);
        wh_cmd_retry_later(c, cmd);
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
                && wh_cmd_ack_overdue(&cmd->state, now))
            {
                wh_cmd_queue_advance(c, cmd, 1);
            }

            continue;
        }

        if (!wh_cmd_window_open(&c->policy, busy)) {
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


/* a sent command was answered or ended: the next one may go */
static void
wh_cmd_slot_freed(wh_commands_t *c, wh_qclient_t *qc)
{
    wh_cmd_pump(c, qc, 0);
}


static void
wh_cmd_pending_may_go(wh_commands_t *c, wh_str_t ws, wh_str_t client_id)
{
    wh_qclient_t  *qc;

    qc = wh_cmdq_client(&c->q, ws, client_id);

    if (qc != NULL && wh_sessions_of_client(c->sessions, ws, client_id) > 0)
    {
        wh_cmd_pump(c, qc, 0);
    }
}


/* cluster: memory reads the client's open commands again; then, if
 * it is online here, they go as they may */
static void
wh_cmd_refresh(wh_commands_t *c, wh_str_t ws, wh_str_t client_id)
{
    size_t          klen;
    uintptr_t       state;
    wh_str_t        strs[2];
    wh_cmd_op_t    *op;
    unsigned char   key[WH_CMDQ_KEY_MAX];

    /* a burst of notes for one client (a job, a flood of commands) is
     * one refresh, and one more after it: each reads all the client's
     * open commands */
    klen = wh_cmdq_key(key, ws, client_id);
    state = (uintptr_t) wh_map_get(&c->refreshing, key, klen);

    if (state != 0) {
        (void) wh_map_put(&c->refreshing, key, klen, (void *) 2);
        return;
    }

    strs[0] = ws;
    strs[1] = client_id;
    op = wh_cmd_op_new(c, WH_CMD_OP_REFRESH, strs, 2);

    if (op == NULL) {
        wh_log_error(c->log, "commands: out of memory: the commands of "
                     "%.*s wait for its next connect", (int) client_id.len,
                     client_id.data);
        return;
    }

    /* out of memory: refreshes are only not coalesced */
    (void) wh_map_put(&c->refreshing, key, klen, (void *) 1);
    wh_batch_add(c->batch, &op->op, 0);
}


static void
wh_cmd_refreshed(wh_commands_t *c, wh_str_t ws, wh_str_t client_id,
    int committed)
{
    size_t          klen;
    uintptr_t       state;
    wh_qclient_t   *qc;
    unsigned char   key[WH_CMDQ_KEY_MAX];

    klen = wh_cmdq_key(key, ws, client_id);
    state = (uintptr_t) wh_map_del(&c->refreshing, key, klen);

    /* one that failed (Redis is down) is made up for by the resync
     * when Redis is back */
    if (!committed) {
        return;
    }

    if (state == 2) {
        /* notes came while it read: read once more */
        wh_cmd_refresh(c, ws, client_id);
    }

    qc = wh_cmdq_client(&c->q, ws, client_id);

    if (qc != NULL && wh_sessions_of_client(c->sessions, ws, client_id) > 0)
    {
        wh_cmd_pump(c, qc, 1);
    }
}


void
wh_commands_client_online(wh_commands_t *c, wh_str_t ws, wh_str_t client_id)
{
    wh_qclient_t  *qc;

    /* other nodes may have queued commands for it meanwhile */
    if (wh_engine_shared(c->engine)) {
        wh_cmd_refresh(c, ws, client_id);
        return;
    }

    qc = wh_cmdq_client(&c->q, ws, client_id);

    if (qc != NULL) {
        wh_cmd_pump(c, qc, 1);
    }
}


static void
wh_cmd_refresh_online(void *ctx, wh_str_t ws, wh_str_t client_id)
{
    wh_cmd_refresh(ctx, ws, client_id);
}


void
wh_commands_changed_elsewhere(wh_commands_t *c, wh_str_t ws,
    wh_str_t client_id)
{
    if (client_id.len == 0) {
        wh_sessions_each_client(c->sessions, wh_cmd_refresh_online, c);
        return;
    }

    /* what memory holds of it, or what a session here may get */
    if (wh_cmdq_client(&c->q, ws, client_id) != NULL
        || wh_sessions_of_client(c->sessions, ws, client_id) > 0)
    {
        wh_cmd_refresh(c, ws, client_id);
    }
}


/* an op of the daemon's own (the retention, the index) in the batch;
 * *queued says so until its done */
static void
wh_cmd_queue_step(wh_commands_t *c, wh_cmd_op_e kind, int *queued)
{
    wh_cmd_op_t  *op;

    op = wh_cmd_op_new(c, kind, NULL, 0);

    if (op == NULL) {
        return;
    }

    *queued = 1;
    wh_batch_add(c->batch, &op->op, 0);
}


/* at most one step of the retention in a batch: each turn stays short */
static void
wh_commands_prune(wh_commands_t *c)
{
    if (c->retention_ms == 0 || c->pruning || wh_loop_now() < c->prune_at)
    {
        return;
    }

    wh_cmd_queue_step(c, WH_CMD_OP_PRUNE, &c->pruning);
}


/* one node: the index has seqs up to indexed; the next step comes in a
 * second if commands came fast since the one before, else with the
 * next batch that creates some (or the timer's tick) */
static void
wh_cmd_indexed(wh_commands_t *c, uint64_t indexed)
{
    int64_t  now, took;

    now = wh_loop_now();
    took = now - c->index_ms;

    c->indexing = 0;
    c->index_at = now + ((indexed - c->indexed) * 1000
                         >= (uint64_t) WH_CMD_INDEX_FAST * (took ? took : 1)
                         ? WH_CMD_INDEX_MS : 0);
    c->index_ms = now;
    c->indexed = indexed;
}


/* one node: commands were given seqs the per-client index has not */
static int
wh_cmd_index_behind(wh_commands_t *c)
{
    return !wh_engine_shared(c->engine) && c->next_seq - 1 > c->indexed;
}


/* one node: a step of the per-client index when it is due, in a
 * batch of its own or beside others */
static void
wh_commands_index(wh_commands_t *c)
{
    if (c->indexing || !wh_cmd_index_behind(c)
        || (wh_loop_now() < c->index_at
            && c->next_seq - 1 - c->indexed < WH_CMD_INDEX_MAX))
    {
        return;
    }

    wh_cmd_queue_step(c, WH_CMD_OP_INDEX, &c->indexing);
}


/* the timer's next run no later than delay_ms from now, never closer
 * than WH_CMD_TICK_MS */
static void
wh_cmd_tick_in(wh_commands_t *c, int64_t delay_ms)
{
    wh_loop_timer_by(&c->timer, delay_ms < WH_CMD_TICK_MS ? WH_CMD_TICK_MS
                                                          : delay_ms);
}


/* the queue set a due time (wall clock): the timer runs by then */
static void
wh_cmd_due_set(void *ctx, int64_t due_ms)
{
    int64_t         delay;
    wh_commands_t  *c = ctx;

    delay = due_ms - wh_time_ms();

    /* later than that: the idle tick comes first anyway */
    if (delay < WH_CMD_IDLE_TICK_MS) {
        wh_cmd_tick_in(c, delay);
    }
}


static void
wh_commands_tick(wh_timer_t *t)
{
    int64_t         now, delay;
    unsigned        n;
    wh_qcmd_t      *cmd;
    wh_commands_t  *c = t->data;

    wh_commands_prune(c);
    wh_commands_index(c);

    now = wh_time_ms();

    for (n = 0; n < WH_CMD_TICK_MAX; n++) {
        cmd = wh_cmdq_pop_due(&c->q, now);

        if (cmd == NULL) {
            break;
        }

        wh_cmd_queue_advance(c, cmd, 0);
    }

    /* an idle daemon wakes once a second for its commands */
    delay = n == WH_CMD_TICK_MAX ? 0 : wh_cmdq_next_due(&c->q) - now;

    if (c->retention_ms && c->prune_at - wh_loop_now() < delay) {
        delay = c->prune_at - wh_loop_now();
    }

    if (wh_cmd_index_behind(c) && c->index_at - wh_loop_now() < delay)
    {
        delay = c->index_at - wh_loop_now();
    }

    t->interval = delay < WH_CMD_TICK_MS ? WH_CMD_TICK_MS
                  : delay > WH_CMD_IDLE_TICK_MS ? WH_CMD_IDLE_TICK_MS
                  : delay;
}


int
wh_commands_start(wh_commands_t *c, wh_loop_t *loop, wh_err_t *err)
{
    c->timer.interval = WH_CMD_TICK_MS;
    c->timer.handler = wh_commands_tick;
    c->timer.data = c;
    c->q.due_set = wh_cmd_due_set;
    c->q.due_ctx = c;

    return wh_loop_timer(loop, &c->timer, err);
}


size_t
wh_commands_open(wh_commands_t *c, wh_str_t ws)
{
    return wh_cmdq_count_ws(&c->q, ws);
}


/* ------------------------------------------------- deleted clients */


typedef struct {
    wh_commands_t   *c;
    wh_etxn_t       *t;
    int64_t          now;
    wh_cmd_notes_t  *notes;
} wh_cmd_drop_t;


static int
wh_cmd_drop_one(void *ctx, wh_command_t *cmd, wh_err_t *err)
{
    wh_cmd_drop_t  *d = ctx;

    return wh_cmd_change(d->c, d->t, cmd, WH_CMD_CANCELLED, "client deleted",
                         NULL, wh_none, d->now, d->notes, err);
}


int
wh_commands_drop_client(wh_commands_t *c, wh_etxn_t *t, wh_str_t ws,
    wh_str_t client_id, int64_t now, wh_cmd_notes_t *notes, wh_err_t *err)
{
    wh_cmd_drop_t  d;

    d.c = c;
    d.t = t;
    d.now = now;
    d.notes = notes;

    if (wh_etxn_ops(t)->cmd_open(t, ws, client_id, wh_cmd_drop_one, &d,
                                 err) != 0)
    {
        return -1;
    }

    return wh_etxn_ops(t)->cmd_forget_client(t, ws, client_id, err);
}


/* ---------------------------------------------------- start, end */


static int
wh_cmd_begin(void *ctx, wh_etxn_t *t, wh_err_t *err)
{
    wh_commands_t  *c = ctx;

    (void) t;
    (void) err;

    c->txn_seq = c->next_seq - 1;
    c->txn_block_left = 0;
    wh_map_free(&c->txn_sent);
    wh_map_free(&c->txn_lanes);

    return 0;
}


static int
wh_cmd_end(void *ctx, wh_etxn_t *t, wh_err_t *err)
{
    wh_commands_t  *c = ctx;

    if (c->txn_seq == c->next_seq - 1) {
        return 0;
    }

    return wh_etxn_ops(t)->cmd_set_seq(t, c->txn_seq, err);
}


static void
wh_cmd_committed(void *ctx, int committed)
{
    wh_commands_t  *c = ctx;

    if (committed) {
        c->next_seq = c->txn_seq + 1;
    }
}


typedef struct {
    wh_commands_t   *c;
    int64_t          now;
} wh_cmd_loading_t;


/* one open command of the store into memory */
static int
wh_cmd_load_one(void *ctx, wh_command_t *cmd, wh_err_t *err)
{
    wh_cmd_loading_t  *l = ctx;
    wh_commands_t     *c = l->c;

    (void) err;

    if (!wh_cmd_is_open(cmd->state.status)
        || wh_cmdq_put(&c->q, cmd->ws, cmd->client_id, cmd->id,
                       cmd->priority, cmd->seq, &cmd->state,
                       wh_cmd_due(&cmd->state, l->now)) == NULL)
    {
        wh_log_error(c->log, "commands: cannot load open command %.*s",
                     (int) cmd->id.len, cmd->id.data);
    }

    return 0;
}


/* the seq and the open commands, in one txn so that they agree */
static int
wh_cmd_load(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    uint64_t           last;
    wh_cmd_loading_t   l;
    wh_commands_t     *c = ctx;

    if (wh_etxn_ops(t)->cmd_seq(t, &last, err) != 0) {
        return -1;
    }

    c->next_seq = last + 1;
    l.c = c;
    l.now = wh_time_ms();

    return wh_etxn_ops(t)->cmd_open(t, wh_none, wh_none, wh_cmd_load_one,
                                    &l, err);
}


/* the quota's view of the queue (wh_quota_t.count_open) */
static size_t
wh_cmd_count_open(void *ctx, wh_str_t ws)
{
    return wh_commands_open(ctx, ws);
}


int
wh_commands_init(wh_commands_t *c, wh_engine_t *engine, wh_batch_t *batch,
    wh_sessions_t *sessions, wh_channels_t *channels, wh_quota_t *quota,
    const wh_cmd_policy_t *policy, wh_log_t *log, wh_err_t *err)
{
    memset(c, 0, sizeof(wh_commands_t));
    c->engine = engine;
    c->log = log;
    c->batch = batch;
    c->sessions = sessions;
    c->channels = channels;
    c->quota = quota;
    c->policy = *policy;
    c->slot_freed = wh_cmd_slot_freed;
    wh_cmdq_init(&c->q);

    if (wh_engine_write(engine, WH_ENGINE_STATE, wh_cmd_load, c, err)
        != 0)
    {
        wh_cmdq_free(&c->q);
        return -1;
    }

    batch->begin = wh_cmd_begin;
    batch->end = wh_cmd_end;
    batch->committed = wh_cmd_committed;
    batch->ctx = c;
    quota->count_open = wh_cmd_count_open;
    quota->count_ctx = c;

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
    wh_map_free(&c->txn_lanes);
    wh_map_free(&c->refreshing);
}

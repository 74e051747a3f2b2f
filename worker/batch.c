/*
 * The group-commit pipeline of commands and clients.
 */

#include <string.h>

#include "batch.h"


typedef struct {
    wh_batch_t  *batch;
    wh_op_t     *ops;
} wh_batch_run_t;


void
wh_batch_init(wh_batch_t *b, wh_engine_t *engine, wh_log_t *log)
{
    memset(b, 0, sizeof(wh_batch_t));
    b->engine = engine;
    b->log = log;
    b->first_tail = &b->first;
    b->tail = &b->head;
}


void
wh_batch_add(wh_batch_t *b, wh_op_t *op, int first)
{
    op->next = NULL;

    if (first) {
        *b->first_tail = op;
        b->first_tail = &op->next;
    } else {
        *b->tail = op;
        b->tail = &op->next;
    }

    b->pending++;
}


static int
wh_batch_txn(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    wh_op_t         *op;
    wh_batch_run_t  *run = ctx;
    wh_batch_t      *b = run->batch;

    if (b->begin && b->begin(b->ctx, t, err) != 0) {
        return -1;
    }

    for (op = run->ops; op != NULL; op = op->next) {
        if (op->apply(op, t, err) != 0) {
            return -1;
        }
    }

    return b->end ? b->end(b->ctx, t, err) : 0;
}


/* takes the queued ops, the "first" ones ahead */
static wh_op_t *
wh_batch_take(wh_batch_t *b)
{
    wh_op_t  *ops;

    if (b->first != NULL) {
        *b->first_tail = b->head;
        ops = b->first;
    } else {
        ops = b->head;
    }

    b->first = NULL;
    b->first_tail = &b->first;
    b->head = NULL;
    b->tail = &b->head;
    b->pending = 0;

    return ops;
}


static void
wh_batch_round(wh_batch_t *b)
{
    int              committed, sync = 0;
    size_t           n = 0;
    wh_err_t         err, sync_err;
    wh_op_t         *op, *next;
    wh_batch_run_t   run;

    if (b->pending == 0) {
        return;
    }

    run.batch = b;
    run.ops = wh_batch_take(b);

    committed = wh_engine_write(b->engine, WH_ENGINE_STATE, wh_batch_txn,
                                &run, &err) == 0;

    /* apply may have asked for a sync: only ops that changed something
     * durable do */
    for (op = run.ops; op != NULL; op = op->next) {
        sync |= op->sync;
        n++;
    }

    if (!committed) {
        wh_log_error(b->log, "commands: a batch of %zu writes failed: %s",
                     n, err.msg);
    }

    sync_err.status = 0;

    if (committed && sync) {
        if (wh_engine_sync(b->engine, &sync_err) != 0) {
            wh_log_error(b->log, "commands: %s", sync_err.msg);
        } else {
            b->syncs++;
        }
    }

    b->commits += committed;
    b->ops += n;

    if (b->committed) {
        b->committed(b->ctx, committed);
    }

    for (op = run.ops; op != NULL; op = next) {
        next = op->next;

        if (!committed) {
            op->done(op, 0, &err);

        } else if (op->sync && sync_err.status != 0) {
            op->done(op, 1, &sync_err);

        } else {
            op->done(op, 1, NULL);
        }
    }
}


void
wh_batch_commit(wh_batch_t *b)
{
    int  round;

    /* a done may queue more (an answered command frees a place in its
     * client's window): one more round sends it in this loop turn */
    for (round = 0; round < 2 && b->pending; round++) {
        wh_batch_round(b);
    }
}


void
wh_batch_free(wh_batch_t *b)
{
    wh_batch_commit(b);
}

/*
 * The group-commit pipeline of commands and clients.
 */

#include <string.h>

#include "batch.h"


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


/* takes the queued ops, the "first" ones ahead: all of them, or the
 * first max_ops */
static wh_op_t *
wh_batch_take(wh_batch_t *b)
{
    size_t     n;
    wh_op_t   *ops, **cut;

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

    if (b->max_ops == 0 || b->pending <= b->max_ops) {
        b->pending = 0;
        return ops;
    }

    /* the rest waits for the next round, in its order (those queued
     * first among them stay ahead of what comes) */
    for (n = 0, cut = &ops; n < b->max_ops; n++) {
        cut = &(*cut)->next;
    }

    b->first = *cut;
    *cut = NULL;

    for (cut = &b->first; *cut != NULL; cut = &(*cut)->next) {
        /* void */
    }

    b->first_tail = cut;
    b->pending -= b->max_ops;

    return ops;
}


/* 0 when the round ended (or nothing was queued), WH_ENGINE_AGAIN
 * while its write is under way: the same ops are written again at the
 * next call, and those queued meanwhile wait for the round after */
static int
wh_batch_round(wh_batch_t *b)
{
    int              rc, committed, sync = 0;
    size_t           n = 0;
    wh_err_t         err, sync_err;
    wh_op_t         *op, *next;
    wh_batch_run_t  *run = &b->run;

    if (run->ops == NULL) {
        if (b->pending == 0) {
            return 0;
        }

        run->batch = b;
        run->ops = wh_batch_take(b);
    }

    rc = wh_engine_write(b->engine, WH_ENGINE_STATE, wh_batch_txn, run,
                         &err);

    if (rc == WH_ENGINE_AGAIN) {
        return WH_ENGINE_AGAIN;
    }

    committed = rc == 0;

    /* apply may have asked for a sync: only ops that changed something
     * durable do */
    for (op = run->ops; op != NULL; op = op->next) {
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

    op = run->ops;
    run->ops = NULL;

    for ( /* void */ ; op != NULL; op = next) {
        next = op->next;

        if (!committed) {
            op->done(op, 0, &err);

        } else if (op->sync && sync_err.status != 0) {
            op->done(op, 1, &sync_err);

        } else {
            op->done(op, 1, NULL);
        }
    }

    return 0;
}


void
wh_batch_commit(wh_batch_t *b)
{
    int  round;

    /* a done may queue more (an answered command frees a place in its
     * client's window): one more round sends it in this loop turn */
    for (round = 0; round < 2 && (b->pending || b->run.ops); round++) {
        if (wh_batch_round(b) == WH_ENGINE_AGAIN) {
            break;
        }
    }
}


void
wh_batch_free(wh_batch_t *b)
{
    wh_batch_commit(b);
}

/*
 * Group commit for the commands and the clients registry.  Every write
 * those make in a loop turn is an op; at the end of the turn all ops
 * run in ONE write txn of the engine's state space (engine.h), which
 * is synced to disk when any op asked for it (LMDB: the state
 * environment syncs every commit), and only then does each op act:
 * answer, deliver, publish its event.  So nothing is announced before
 * it is stored, and thousands of commands per second cost one fsync
 * per turn, not one each.
 *
 * An op's apply runs inside the txn and decides from what the txn
 * sees (earlier ops of the same batch included), recording its outcome
 * in the op.  It may run twice: when the engine retries (LMDB: the map
 * is full, the txn is aborted, the map grown), the whole batch is
 * applied again, so apply must start from scratch each time and touch
 * nothing but the txn and its op.  Memory is only changed by done,
 * after the commit.
 */

#ifndef WH_BATCH_H
#define WH_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "log.h"


typedef struct wh_op_s     wh_op_t;
typedef struct wh_batch_s  wh_batch_t;

/* -1 with err fails the whole batch (a storage error) */
typedef int (*wh_op_apply_pt)(wh_op_t *op, wh_etxn_t *t, wh_err_t *err);

/* after the commit; committed is 0 if the batch failed (err says why),
 * 1 if it is stored (err is then set only if a sync the op asked for
 * failed).  done frees the op. */
typedef void (*wh_op_done_pt)(wh_op_t *op, int committed,
    const wh_err_t *err);

struct wh_op_s {
    wh_op_t          *next;
    wh_op_apply_pt    apply;
    wh_op_done_pt     done;
    int               sync;        /* must be on disk before done; set
                                    * when queued or by apply */
};

/* around the ops of one txn: begin before the first apply, end after
 * the last (both may run again), committed after the commit */
typedef int (*wh_batch_hook_pt)(void *ctx, wh_etxn_t *t, wh_err_t *err);
typedef void (*wh_batch_committed_pt)(void *ctx, int committed);

/* the ops of the write under way */
typedef struct {
    wh_batch_t             *batch;
    wh_op_t                *ops;
} wh_batch_run_t;

struct wh_batch_s {
    wh_engine_t            *engine;
    wh_log_t               *log;
    wh_op_t                *first, **first_tail;   /* run first */
    wh_op_t                *head, **tail;
    size_t                  pending;
    size_t                  max_ops;    /* ops in one txn at most; 0 no
                                         * limit */
    wh_batch_hook_pt        begin;
    wh_batch_hook_pt        end;
    wh_batch_committed_pt   committed;
    void                   *ctx;
    wh_batch_run_t          run;
    uint64_t                commits;    /* counters for stats */
    uint64_t                syncs;
    uint64_t                ops;
};


void wh_batch_init(wh_batch_t *b, wh_engine_t *engine, wh_log_t *log);

/* queues op; first: ahead of the ops queued without it (deliveries to
 * a client that just connected go before new commands) */
void wh_batch_add(wh_batch_t *b, wh_op_t *op, int first);

/* applies, commits (and syncs) the queued ops, then calls their done;
 * ops a done queues get one more round, later ones wait for the next
 * call */
void wh_batch_commit(wh_batch_t *b);

/* at exit: commits what is queued */
void wh_batch_free(wh_batch_t *b);

#endif /* WH_BATCH_H */

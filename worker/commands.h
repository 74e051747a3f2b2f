/*
 * The durable command queue (DESIGN.md "Commands: the durable queue").
 *
 * A command is stored (and synced: group commit, see batch.h) before
 * the API answers 202, delivered to its client's newest session at once
 * or when the client next connects (higher priority first, then oldest
 * first), redelivered when a result does not come within the attempt's
 * ack window up to max_attempts, and ends completed, failed, expired
 * (ttl) or cancelled.  Every status change is committed before it is
 * announced: on "$commands" of the workspace, to the API caller, to the
 * device.
 *
 * The rules (expiry, ack window and backoff, what a command needs now)
 * are the plain functions of cmdqueue.h; the state is in the engine
 * (engine.h).  Requests are ops (wh_cmd_op_t) of the batch: the API
 * makes one, submits it and renders what it came to in its reply.
 */

#ifndef WH_COMMANDS_H
#define WH_COMMANDS_H

#include <stdint.h>

#include "wh_link.h"
#include "batch.h"
#include "channels.h"
#include "cmdqueue.h"
#include "engine.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "quota.h"
#include "sessions.h"


typedef struct wh_commands_s  wh_commands_t;
typedef struct wh_cmd_note_s  wh_cmd_note_t;
typedef struct wh_cmd_op_s    wh_cmd_op_t;

/* status changes decided inside a batch txn, acted on after the
 * commit (memory, delivery, the $commands event) */
typedef struct {
    wh_cmd_note_t    *head;
    wh_cmd_note_t   **tail;
} wh_cmd_notes_t;

/* status changes since the start, for stats */
typedef struct {
    uint64_t          created;
    uint64_t          delivered;      /* deliveries, attempts included */
    uint64_t          completed;
    uint64_t          failed;
    uint64_t          expired;
    uint64_t          cancelled;
    uint64_t          pruned;         /* deleted by the retention */
} wh_cmd_counters_t;

/* an execution of a job changed status (after the commit; jobs.c) */
typedef void (*wh_cmd_job_pt)(void *ctx, wh_str_t ws, wh_str_t job,
    uint64_t idx, wh_cmd_status_e status);

struct wh_commands_s {
    wh_engine_t      *engine;
    wh_log_t         *log;
    wh_batch_t       *batch;
    wh_sessions_t    *sessions;
    wh_channels_t    *channels;
    wh_quota_t       *quota;          /* queued_commands, at create */
    wh_cmd_policy_t   policy;
    wh_cmdq_t         q;
    uint64_t          next_seq;       /* the next seq to give out */
    uint64_t          txn_seq;        /* its value inside a batch txn */
    uint64_t          txn_block;      /* cluster: the next seq of the
                                       * block the txn took */
    uint64_t          txn_block_left; /* and how many are left of it */
    wh_map_t          txn_sent;       /* ws "\0" client -> sent by the
                                       * txn being applied */
    wh_map_t          txn_lanes;      /* ws "\0" client "\0" lane hash
                                       * -> sent by that txn */
    /* the command being inserted: what changes it before its insert is
     * stored by that insert (one record write, not two) */
    const wh_command_t *unstored;
    wh_map_t          refreshing;     /* cluster: ws "\0" client -> 1, a
                                       * refresh is queued; 2, and
                                       * another is due after it */
    /* a sent command ended: the client's next ones may go (set by
     * commands.c, called by the notes) */
    void            (*slot_freed)(wh_commands_t *c, wh_qclient_t *qc);
    wh_timer_t        timer;
    wh_cmd_counters_t counters;
    wh_cmd_job_pt     job_changed;    /* set by jobs.c */
    void             *job_ctx;
    int64_t           retention_ms;   /* ended commands kept; 0 ever */
    int64_t           prune_at;       /* monotonic ms of the next prune */
    int               pruning;        /* a prune op is in the batch */
    /* one node: the per-client index is written late (state.h) */
    uint64_t          indexed;        /* the seq it has, as committed */
    int64_t           index_at;       /* monotonic ms of the next step */
    int64_t           index_ms;       /* and of the last one's end */
    int               indexing;       /* an index op is in the batch */
};

typedef enum {
    WH_CMD_OP_CREATE = 0,
    WH_CMD_OP_LIST,
    WH_CMD_OP_LIST_WS,              /* GET /commands: the workspace's */
    WH_CMD_OP_GET,
    WH_CMD_OP_CANCEL,
    WH_CMD_OP_RESULT,
    WH_CMD_OP_ADVANCE,              /* the timer or a connect */
    WH_CMD_OP_PRUNE,                /* the retention: ended commands go */
    WH_CMD_OP_REFRESH,              /* cluster: memory reads a client's
                                     * open commands again */
    WH_CMD_OP_INDEX                 /* one node: the per-client index
                                     * brought up to date */
} wh_cmd_op_e;

/* what a request came to (storage errors aside) */
typedef enum {
    WH_CMD_DONE = 0,                /* cmd (or list) is the answer */
    WH_CMD_REPEATED,                /* create: the idempotency key was
                                     * used; cmd is the first command */
    WH_CMD_NO_CLIENT,
    WH_CMD_NO_COMMAND,
    WH_CMD_ENDED,                   /* cancel, result: cmd had ended */
    WH_CMD_OVER_QUOTA               /* create: the workspace has its
                                     * queued_commands */
} wh_cmd_outcome_e;

/* after the commit: committed 0 if the batch failed (err says why); 1
 * if stored, with err set only when the sync failed */
typedef void (*wh_cmd_reply_pt)(wh_cmd_op_t *op, int committed,
    const wh_err_t *err);

struct wh_cmd_op_s {
    wh_op_t           op;
    wh_commands_t    *c;
    wh_cmd_op_e       kind;

    /* the request; strings point into mem */
    wh_str_t          ws, client_id, id, command, payload, idem;
    wh_str_t          result, error, session;
    wh_str_t          lane, supersede, issued_by;
    unsigned          priority;
    int64_t           ttl_ms;         /* 0: the policy's */
    int64_t           not_before_ms;  /* 0: none */
    unsigned          status_mask;    /* list: 0 any */
    int64_t           since_ms;       /* list_ws: created since; 0 */
    uint64_t          cursor;         /* index: the seq it has */
    size_t            limit;
    wh_cmd_status_e   reported;       /* result: completed or failed */
    size_t            pruned;         /* prune: deleted */
    int               more;           /* prune: some are left */

    /* what it came to */
    wh_cmd_outcome_e  outcome;
    wh_command_t      cmd;
    wh_cmd_list_t     list;
    int               held;           /* create: holds a place of the
                                       * quota until done */

    /* who waits for it: the API's (NULL reply: nobody) */
    wh_cmd_reply_pt   reply;
    wh_peer_t        *peer;
    uint32_t          req_id;

    wh_cmd_notes_t    notes;
    char             *mem;
};


/* loads the open commands; tells quota how many a workspace has */
int wh_commands_init(wh_commands_t *c, wh_engine_t *engine,
    wh_batch_t *batch, wh_sessions_t *sessions, wh_channels_t *channels,
    wh_quota_t *quota, const wh_cmd_policy_t *policy, wh_log_t *log,
    wh_err_t *err);
void wh_commands_free(wh_commands_t *c);

/* the timer that redelivers, expires and gives up */
int wh_commands_start(wh_commands_t *c, wh_loop_t *loop, wh_err_t *err);

/* a request; strings: ws, client_id, id, command, payload, idem,
 * result, error, session, lane, supersede, issued_by (the first n),
 * copied.  NULL out of memory */
wh_cmd_op_t *wh_cmd_op_new(wh_commands_t *c, wh_cmd_op_e kind,
    const wh_str_t *strs, size_t n);
/* queues it for the end of the loop turn */
void wh_cmd_op_submit(wh_cmd_op_t *op);

/* a session of the client opened: its waiting commands go out, as
 * many as its window takes */
void wh_commands_client_online(wh_commands_t *c, wh_str_t ws,
    wh_str_t client_id);

/* cluster: another node changed the client's commands (or, with
 * client_id empty, notes may have been lost: every client online here
 * is read again) */
void wh_commands_changed_elsewhere(wh_commands_t *c, wh_str_t ws,
    wh_str_t client_id);

/* open commands of a workspace (stats) */
size_t wh_commands_open(wh_commands_t *c, wh_str_t ws);

/* for the clients registry, inside a batch txn: cancels every open
 * command of the client (it is being deleted) and forgets its
 * idempotency keys */
int wh_commands_drop_client(wh_commands_t *c, wh_etxn_t *t, wh_str_t ws,
    wh_str_t client_id, int64_t now, wh_cmd_notes_t *notes, wh_err_t *err);

/* inside a batch txn: stores cmd (ws, id, client_id, command,
 * payload, priority, lane, supersede, issued_by, job set; ttl_ms 0 the
 * policy's) as a new pending command, supersedes the client's pending
 * one with its supersede key, and delivers it if it may go now */
int wh_commands_insert(wh_commands_t *c, wh_etxn_t *t, wh_command_t *cmd,
    int64_t ttl_ms, int64_t now, wh_cmd_notes_t *notes, wh_err_t *err);

/* inside a batch txn: cancels the command if it is still pending (1),
 * else nothing (0); *status: what the command is now (cancelled when
 * there is none) */
int wh_commands_cancel_pending(wh_commands_t *c, wh_etxn_t *t, wh_str_t ws,
    wh_str_t id, const char *reason, int64_t now, wh_cmd_notes_t *notes,
    int *status, wh_err_t *err);

void wh_cmd_notes_init(wh_cmd_notes_t *notes);
/* after the commit: acts on the notes if committed; frees them */
void wh_cmd_notes_done(wh_commands_t *c, wh_cmd_notes_t *notes,
    int committed);

#endif /* WH_COMMANDS_H */

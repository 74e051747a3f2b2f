/*
 * The durable command queue (DESIGN.md "Commands: the durable queue").
 *
 * A command is stored (and synced: group commit, see batch.h) before
 * the API answers 202, delivered to its client's newest session at once
 * or when the client next connects (higher priority first, then oldest
 * first), redelivered when a result does not come within the attempt's
 * ack window (ack_timeout, doubling per attempt) up to max_attempts,
 * and ends completed, failed, expired (ttl) or cancelled.  Every status
 * change is committed before it is announced: on "$commands" of the
 * workspace, to the API caller, to the device.
 *
 * LMDB databases (keys start with workspace "\0", so that nothing is
 * ever found across workspaces):
 *
 *   commands     ws "\0" command_id -> the command (JSON, see
 *                commands.c)
 *   cmd_open     ws "\0" client "\0" be64 seq -> command_id, for the
 *                open (pending, sent) ones: loaded at start
 *   cmd_client   ws "\0" client "\0" be64 seq -> command_id, all of a
 *                client's commands in creation order (listing)
 *   cmd_idem     ws "\0" client "\0" idempotency_key -> command_id
 *   cmd_meta     "seq" -> be64 the last seq given out
 */

#ifndef WH_COMMANDS_H
#define WH_COMMANDS_H

#include <lmdb.h>
#include <stdint.h>

#include "wh_link.h"
#include "batch.h"
#include "channels.h"
#include "cmdqueue.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "sessions.h"
#include "store.h"


typedef struct wh_clients_s   wh_clients_t;
typedef struct wh_cmd_note_s  wh_cmd_note_t;

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
} wh_cmd_counters_t;

typedef struct wh_commands_s {
    wh_store_t       *store;
    wh_log_t         *log;
    wh_batch_t       *batch;
    wh_sessions_t    *sessions;
    wh_channels_t    *channels;
    wh_clients_t     *clients;
    wh_cmd_policy_t   policy;
    wh_cmdq_t         q;
    MDB_dbi           cmds_db, open_db, client_db, idem_db, meta_db;
    uint64_t          next_seq;       /* the next seq to give out */
    uint64_t          txn_seq;        /* its value inside a batch txn */
    wh_map_t          txn_sent;       /* ws "\0" client -> sent by the
                                       * txn being applied */
    wh_timer_t        timer;
    wh_cmd_counters_t counters;
} wh_commands_t;


/* opens the databases and loads the open commands */
int wh_commands_init(wh_commands_t *c, wh_store_t *store,
    wh_batch_t *batch, wh_sessions_t *sessions, wh_channels_t *channels,
    wh_clients_t *clients, const wh_cmd_policy_t *policy, wh_log_t *log,
    wh_err_t *err);
void wh_commands_free(wh_commands_t *c);

/* the timer that redelivers, expires and gives up */
int wh_commands_start(wh_commands_t *c, wh_loop_t *loop, wh_err_t *err);

/* REQUEST for /clients/{id}/commands and /commands/... */
void wh_commands_api(wh_commands_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m, wh_str_t path);

/* COMMAND_RESULT; -1 is a protocol error */
int wh_commands_result(wh_commands_t *c, wh_peer_t *peer,
    const wh_link_msg_t *m);

/* a session of the client opened: its waiting commands go out, as
 * many as its window takes */
void wh_commands_client_online(wh_commands_t *c, wh_str_t ws,
    wh_str_t client_id);

/* open commands of a workspace (stats) */
size_t wh_commands_open(wh_commands_t *c, wh_str_t ws);

/* for the clients registry: inside a batch txn, cancels every open
 * command of the client (it is being deleted) */
int wh_commands_cancel_client(wh_commands_t *c, MDB_txn *txn, wh_str_t ws,
    wh_str_t client_id, int64_t now, wh_cmd_notes_t *notes, wh_err_t *err);
/* ... and forgets the client's idempotency keys */
int wh_commands_forget_client(wh_commands_t *c, MDB_txn *txn, wh_str_t ws,
    wh_str_t client_id, wh_err_t *err);

void wh_cmd_notes_init(wh_cmd_notes_t *notes);
/* after the commit: acts on the notes if committed; frees them */
void wh_cmd_notes_done(wh_commands_t *c, wh_cmd_notes_t *notes,
    int committed);

#endif /* WH_COMMANDS_H */

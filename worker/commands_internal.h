/*
 * What the files of the durable command queue share, and nothing else
 * includes: commands.c (notes, state changes, delivery, timers),
 * commands_ops.c (the ops of the batch), commands_store.c (the LMDB
 * records) and commands_api.c (the routes and their JSON).
 */

#ifndef WH_COMMANDS_INTERNAL_H
#define WH_COMMANDS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <lmdb.h>

#include "wh_channel.h"
#include "commands.h"
#include "respond.h"


#define WH_CMD_IDEM_MAX      128
#define WH_CMD_RETRY_MS      1000          /* after a failed batch */
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


/* commands.c: notes and state changes */
void wh_cmd_notes_clear(wh_cmd_notes_t *notes);
int wh_note_add(wh_cmd_notes_t *notes, wh_cmd_rec_t *r, int publish,
    wh_peer_t *peer, wh_str_t session, int64_t now, wh_err_t *err);
int wh_cmd_change(wh_commands_t *c, MDB_txn *txn, wh_cmd_rec_t *r,
    wh_cmd_status_e to, const char *reason, wh_peer_t *peer,
    wh_str_t session, int64_t now, wh_cmd_notes_t *notes, wh_err_t *err);
int wh_cmd_advance(wh_commands_t *c, MDB_txn *txn, wh_cmd_rec_t *r,
    int64_t now, wh_cmd_notes_t *notes, int *changed, wh_err_t *err);

/* commands_ops.c */
wh_cmd_op_t *wh_cmd_op_new(wh_commands_t *c, wh_cmd_op_e kind,
    wh_peer_t *peer, uint32_t req_id, const wh_str_t *strs, size_t n);

/* commands_store.c: keys and records */
size_t wh_key_seq(unsigned char *buf, wh_str_t ws, wh_str_t client_id,
    uint64_t seq);
wh_str_t wh_rec_str(json_t *obj, const char *key);
int64_t wh_rec_int(json_t *obj, const char *key);
const char *wh_rec_status(json_t *obj);
void wh_rec_state(json_t *obj, wh_cmd_state_t *s);
int wh_cmd_load(wh_commands_t *c, MDB_txn *txn, wh_str_t ws, wh_str_t id,
    wh_cmd_rec_t *r, wh_err_t *err);
int wh_cmd_save(wh_commands_t *c, MDB_txn *txn, wh_cmd_rec_t *r,
    unsigned flags, wh_err_t *err);
int wh_cmd_history(wh_cmd_rec_t *r, int64_t now, wh_str_t session,
    const char *reason);
int wh_cmd_set_state(wh_cmd_rec_t *r, const wh_cmd_state_t *s,
    int64_t now);
int wh_cmd_idem_find(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    wh_str_t *id, wh_err_t *err);
int wh_cmd_insert(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    wh_cmd_rec_t *r, int64_t now, wh_err_t *err);
int wh_cmd_list_scan(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    MDB_cursor *cur, uint64_t *next, wh_err_t *err);

/* commands_store.c: the batch hooks and the start */
int wh_cmd_begin(void *ctx, MDB_txn *txn, wh_err_t *err);
int wh_cmd_end(void *ctx, MDB_txn *txn, wh_err_t *err);
void wh_cmd_committed(void *ctx, int committed);
int wh_cmd_open_dbs(wh_store_t *st, MDB_txn *txn, void *ctx,
    wh_err_t *err);
int wh_cmd_load_all(wh_store_t *st, MDB_txn *txn, void *ctx,
    wh_err_t *err);

/* commands_api.c: answers */
int wh_cmd_error(wh_cmd_op_t *op, uint16_t status, const char *code,
    const char *message);
int wh_cmd_object(wh_buf_t *b, wh_cmd_rec_t *r, int with_history);
int wh_cmd_summary(wh_cmd_op_t *op, uint16_t status, wh_cmd_rec_t *r);
int wh_cmd_already(wh_cmd_op_t *op, const char *code, wh_cmd_rec_t *r);

#endif /* WH_COMMANDS_INTERNAL_H */

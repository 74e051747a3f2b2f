/*
 * What the files of the clients registry share, and nothing else
 * includes: clients.c (keys, records, session hooks, start),
 * clients_ops.c (the ops of the batch) and clients_api.c (the routes
 * and their JSON).
 */

#ifndef WH_CLIENTS_INTERNAL_H
#define WH_CLIENTS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <lmdb.h>

#include "wh_channel.h"
#include "clients.h"
#include "respond.h"


#define WH_CL_KEY_MAX       (WH_WORKSPACE_MAX + 1 + WH_CMD_CLIENT_MAX)

typedef enum {
    WH_CL_OP_CREATE = 0,
    WH_CL_OP_LIST,
    WH_CL_OP_GET,
    WH_CL_OP_PATCH,
    WH_CL_OP_DELETE,
    WH_CL_OP_DISCONNECT,
    WH_CL_OP_SEEN,          /* a session opened or registered */
    WH_CL_OP_GONE           /* the client's last session closed */
} wh_cl_op_e;

/* which fields a create or a patch sets */
#define WH_CL_NAME      0x01
#define WH_CL_TYPE      0x02
#define WH_CL_META      0x04

typedef struct {
    wh_op_t           op;
    wh_clients_t     *cl;
    wh_cl_op_e        kind;
    wh_peer_t        *peer;           /* NULL: nobody waits for it */
    uint32_t          req_id;
    uint16_t          status;
    wh_buf_t          answer;
    wh_cmd_notes_t    notes;          /* delete: cancelled commands */
    wh_str_t          ws, client_id, name, client_type, metadata, cursor;
    unsigned          fields;         /* WH_CL_NAME, ... */
    size_t            limit;
    uint64_t          revoke_s;       /* delete: tokens before refused */
    char             *mem;
} wh_cl_op_t;


/* clients.c: keys and records */
wh_str_t wh_cl_str(json_t *obj, const char *key);
int wh_cl_load(wh_clients_t *cl, MDB_txn *txn, wh_str_t ws, wh_str_t id,
    json_t **obj, wh_err_t *err);
int wh_cl_save(wh_clients_t *cl, MDB_txn *txn, wh_str_t ws, wh_str_t id,
    json_t *obj, wh_err_t *err);
int wh_cl_set_fields(json_t *obj, wh_cl_op_t *op);
int wh_cl_revoke_txn(wh_clients_t *cl, MDB_txn *txn, wh_cl_op_t *op,
    wh_err_t *err);

/* clients_ops.c */
void wh_cl_send_revoke(wh_peer_t *peer, wh_str_t ws, wh_str_t client_id,
    uint64_t before);
void wh_cl_queue(wh_clients_t *cl, wh_cl_op_e kind, wh_peer_t *peer,
    uint32_t req_id, const wh_str_t *strs, unsigned fields, size_t limit);

/* clients_api.c: answers */
int wh_cl_object(wh_clients_t *cl, wh_buf_t *b, wh_str_t ws, wh_str_t id,
    json_t *obj);
int wh_cl_error(wh_cl_op_t *op, uint16_t status, const char *code,
    const char *message);
int wh_cl_answer(wh_cl_op_t *op, uint16_t status, json_t *obj,
    wh_err_t *err);

#endif /* WH_CLIENTS_INTERNAL_H */

/*
 * The ops of the commands in the batch (batch.h): one request, result
 * or timer tick each, decided inside the txn from the stored command,
 * then acted on and answered after the commit.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wh_time.h"
#include "clients.h"
#include "jsonw.h"
#include "commands_internal.h"


static void wh_cmd_op_free(wh_cmd_op_t *op);


/* ------------------------------------------------------ op: create */


static int
wh_cmd_apply_create(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int            rc, changed;
    wh_str_t       first;
    wh_cmd_rec_t   r;

    rc = wh_clients_exists(c->clients, txn, op->ws, op->client_id, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cmd_error(op, 404, "not_found",
                                          "no such client");
    }

    if (op->idem.len) {
        rc = wh_cmd_idem_find(c, txn, op, &first, err);

        if (rc == 1) {
            rc = wh_cmd_load(c, txn, op->ws, first, &r, err);
        }

        if (rc < 0) {
            return -1;
        }

        if (rc == 1) {
            /* a repeat: the first command, as it is now */
            rc = wh_cmd_summary(op, 200, &r);
            json_decref(r.obj);
            return rc ? wh_err(err, 503, "out of memory") : 0;
        }
    }

    op->op.sync = 1;

    rc = wh_cmd_insert(c, txn, op, &r, now, err) != 0
         || wh_note_add(&op->notes, &r, 1, NULL, op->session, now, err) != 0
         || wh_cmd_advance(c, txn, &r, now, &op->notes, &changed, err) != 0
         ? -1 : 0;

    if (rc == 0 && wh_cmd_summary(op, 202, &r) != 0) {
        rc = wh_err(err, 503, "out of memory");
    }

    json_decref(r.obj);

    return rc;
}


/* -------------------------------------------------------- op: list */


static int
wh_cmd_apply_list(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    wh_err_t *err)
{
    int          rc;
    char         num[32];
    uint64_t     next;
    MDB_cursor  *cur;

    rc = wh_clients_exists(c->clients, txn, op->ws, op->client_id, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cmd_error(op, 404, "not_found",
                                          "no such client");
    }

    rc = mdb_cursor_open(txn, c->client_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    op->status = 200;
    rc = wh_jw_open(&op->answer, NULL, '{')
         | wh_jw_open(&op->answer, "items", '[');

    if (rc != 0 || wh_cmd_list_scan(c, txn, op, cur, &next, err) != 0) {
        mdb_cursor_close(cur);
        return rc ? wh_err(err, 503, "out of memory") : -1;
    }

    mdb_cursor_close(cur);

    rc = wh_jw_close(&op->answer, ']');

    if (next) {
        snprintf(num, sizeof(num), "%" PRIu64, next);
        rc |= wh_jw_cstr(&op->answer, "next", num);
    } else {
        rc |= wh_jw_raw(&op->answer, "next", "null", 4);
    }

    rc |= wh_jw_close(&op->answer, '}');

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


/* ------------------------------------- ops: get, cancel, result, tick */


static int
wh_cmd_apply_get(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    wh_err_t *err)
{
    int           rc;
    wh_cmd_rec_t  r;

    rc = wh_cmd_load(c, txn, op->ws, op->id, &r, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cmd_error(op, 404, "not_found",
                                          "no such command");
    }

    op->status = 200;
    rc = wh_cmd_object(&op->answer, &r, 1);
    json_decref(r.obj);

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


static int
wh_cmd_apply_cancel(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int           rc;
    wh_cmd_rec_t  r;

    rc = wh_cmd_load(c, txn, op->ws, op->id, &r, err);

    if (rc <= 0) {
        return rc < 0 ? -1 : wh_cmd_error(op, 404, "not_found",
                                          "no such command");
    }

    if (!wh_cmd_is_open((wh_cmd_status_e) wh_rec_int(r.obj, "status"))) {
        rc = wh_cmd_already(op, "conflict", &r);

    } else {
        op->op.sync = 1;
        rc = wh_cmd_change(c, txn, &r, WH_CMD_CANCELLED,
                           "cancelled by the API", NULL, op->session, now,
                           &op->notes, err);

        if (rc == 0 && wh_cmd_summary(op, 200, &r) != 0) {
            rc = wh_err(err, 503, "out of memory");
        }
    }

    json_decref(r.obj);

    return rc;
}


static int
wh_cmd_apply_result(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int           rc;
    wh_cmd_rec_t  r;

    rc = wh_cmd_load(c, txn, op->ws, op->id, &r, err);

    if (rc < 0) {
        return -1;
    }

    /* another client's command answers exactly like a missing one */
    if (rc == 0 || r.client_id.len != op->client_id.len
        || memcmp(r.client_id.data, op->client_id.data, r.client_id.len)
           != 0)
    {
        json_decref(r.obj);
        return wh_cmd_error(op, 404, "not_found", "no such command");
    }

    if (!wh_cmd_is_open((wh_cmd_status_e) wh_rec_int(r.obj, "status"))) {
        rc = wh_cmd_already(op, "bad_request", &r);
        json_decref(r.obj);
        return rc;
    }

    op->op.sync = 1;

    if ((op->result.len
         && json_object_set_new(r.obj, "result",
                                json_stringn(op->result.data,
                                             op->result.len)) != 0)
        || (op->error.len
            && json_object_set_new(r.obj, "error",
                                   json_stringn(op->error.data,
                                                op->error.len)) != 0))
    {
        json_decref(r.obj);
        return wh_err(err, 503, "out of memory");
    }

    rc = wh_cmd_change(c, txn, &r, op->outcome, NULL, NULL, op->session,
                       now, &op->notes, err);

    if (rc == 0 && wh_cmd_summary(op, 200, &r) != 0) {
        rc = wh_err(err, 503, "out of memory");
    }

    json_decref(r.obj);

    return rc;
}


static int
wh_cmd_apply_advance(wh_commands_t *c, MDB_txn *txn, wh_cmd_op_t *op,
    int64_t now, wh_err_t *err)
{
    int             rc, changed;
    wh_cmd_rec_t    r;

    rc = wh_cmd_load(c, txn, op->ws, op->id, &r, err);

    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        /* gone from the store: memory forgets it too */
        r.ws = op->ws;
        r.id = op->id;
        r.client_id = op->client_id;
        r.obj = json_pack("{s:i}", "status", WH_CMD_CANCELLED);

        if (r.obj == NULL) {
            return wh_err(err, 503, "out of memory");
        }

        rc = wh_note_add(&op->notes, &r, 0, NULL, op->session, now, err);
        json_decref(r.obj);
        return rc;
    }

    rc = wh_cmd_advance(c, txn, &r, now, &op->notes, &changed, err);
    op->op.sync |= changed;
    json_decref(r.obj);

    return rc;
}


static int
wh_cmd_op_apply(wh_op_t *base, MDB_txn *txn, wh_err_t *err)
{
    int64_t         now;
    wh_cmd_op_t    *op = (wh_cmd_op_t *) base;
    wh_commands_t  *c = op->c;

    /* a batch may be applied again after the map grew */
    wh_cmd_notes_clear(&op->notes);
    op->answer.len = 0;
    op->status = 500;

    now = wh_time_ms();

    switch (op->kind) {

    case WH_CMD_OP_CREATE:
        return wh_cmd_apply_create(c, txn, op, now, err);

    case WH_CMD_OP_LIST:
        return wh_cmd_apply_list(c, txn, op, err);

    case WH_CMD_OP_GET:
        return wh_cmd_apply_get(c, txn, op, err);

    case WH_CMD_OP_CANCEL:
        return wh_cmd_apply_cancel(c, txn, op, now, err);

    case WH_CMD_OP_RESULT:
        return wh_cmd_apply_result(c, txn, op, now, err);

    default:
        return wh_cmd_apply_advance(c, txn, op, now, err);
    }
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

        if (!committed && cmd->heap == 0) {
            /* try again a little later */
            wh_cmdq_set_due(&c->q, cmd, wh_time_ms() + WH_CMD_RETRY_MS);
        }
    }

    wh_cmd_notes_done(c, &op->notes, committed);

    if (op->peer != NULL) {
        if (err != NULL) {
            wh_respond_error(op->peer, op->req_id,
                             (uint16_t) err->status,
                             wh_error_code(err->status),
                             committed ? "stored, but the sync to disk "
                             "failed" : "storage error, retry");

        } else {
            wh_respond(op->peer, op->req_id, op->status,
                       op->answer.data, op->answer.len);
        }
    }

    wh_cmd_op_free(op);
}


/* -------------------------------------------------------- ops: make */


static void
wh_cmd_op_free(wh_cmd_op_t *op)
{
    wh_cmd_notes_clear(&op->notes);
    wh_buf_free(&op->answer);
    free((char *) op->ws.data);
    free(op);
}


/* one allocation for the strings: ws, client_id, id, command, payload,
 * idem, result, error, session, in this order */
static int
wh_cmd_op_strings(wh_cmd_op_t *op, const wh_str_t *src, size_t n)
{
    char      *p;
    size_t     i, total = 0;
    wh_str_t  *dst[] = { &op->ws, &op->client_id, &op->id, &op->command,
                         &op->payload, &op->idem, &op->result, &op->error,
                         &op->session };

    for (i = 0; i < n; i++) {
        total += src[i].len;
    }

    p = malloc(total + 1);

    if (p == NULL) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        dst[i]->data = p;
        dst[i]->len = src[i].len;

        if (src[i].len) {
            memcpy(p, src[i].data, src[i].len);
        }

        p += src[i].len;
    }

    for ( /* void */ ; i < sizeof(dst) / sizeof(dst[0]); i++) {
        dst[i]->data = p;
        dst[i]->len = 0;
    }

    return 0;
}


wh_cmd_op_t *
wh_cmd_op_new(wh_commands_t *c, wh_cmd_op_e kind, wh_peer_t *peer,
    uint32_t req_id, const wh_str_t *strs, size_t n)
{
    wh_cmd_op_t  *op;

    op = calloc(1, sizeof(wh_cmd_op_t));

    if (op == NULL) {
        return NULL;
    }

    if (wh_cmd_op_strings(op, strs, n) != 0) {
        free(op);
        return NULL;
    }

    op->op.apply = wh_cmd_op_apply;
    op->op.done = wh_cmd_op_done;
    op->c = c;
    op->kind = kind;
    op->peer = peer;
    op->req_id = req_id;
    wh_cmd_notes_init(&op->notes);

    return op;
}

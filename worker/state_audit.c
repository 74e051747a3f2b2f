/*
 * The workspace-wide listing of commands and their retention (state.h),
 * over two indexes beside those of state_commands.c (which keeps them
 * up to date):
 *
 *   cmd_ws     ws "\0" seq -> id "\0" client   every command, by
 *                                            creation (the id alone
 *                                            in a store of before)
 *   cmd_ended  ended ms, ws "\0" id -> id      ended commands not of a
 *                                            job, by the time they
 *                                            ended
 *
 * A store written before they existed is indexed when an engine first
 * creates them (wh_state_audit_backfill).  Every walk here is bounded
 * by its caller's count: a txn never takes long, whatever the store
 * holds.
 */

#include <stdlib.h>
#include <string.h>

#include "state.h"


/* what one prune removes: keys copied out before the deletes */
typedef struct {
    unsigned char    key[WH_STATE_KEY_MAX + WH_BE64_LEN];
    size_t           klen;
} wh_state_ended_t;

typedef struct {
    wh_state_ended_t  *ended;
    size_t             n, max;
    int64_t            before_ms;
    int               *more;
} wh_state_prune_t;

typedef struct {
    wh_etxn_t         *t;
    size_t             n;
} wh_state_backfill_t;


/* -------------------------------------------------------- backfill */


static int
wh_state_backfill_one(void *ctx, const wh_kv_val_t *k,
    const wh_kv_val_t *v, wh_err_t *err)
{
    int                   rc;
    wh_str_t              ws, id;
    wh_command_t          cmd;
    wh_state_backfill_t  *b = ctx;

    (void) v;

    if (wh_key_unpair(k->data, k->len, &ws, &id) != 0) {
        return 0;
    }

    rc = wh_state_cmd_get(b->t, ws, id, &cmd, err);

    if (rc != 1) {
        return rc < 0 ? rc : -1;
    }

    if ((rc = wh_state_cmd_index_ws(b->t, &cmd, err)) == 0
        && !wh_cmd_is_open(cmd.state.status))
    {
        rc = wh_state_cmd_index_ended(b->t, &cmd, err);
    }

    wh_command_free(&cmd);
    b->n++;

    return rc;
}


int
wh_state_audit_backfill(wh_etxn_t *t, wh_err_t *err)
{
    int                  rc;
    wh_state_backfill_t  b;

    b.t = t;
    b.n = 0;

    rc = wh_state_scan(t, WH_KV_COMMANDS, NULL, 0, 0,
                       wh_state_backfill_one, &b, "indexing commands", err);

    if (rc == 0 && b.n && t->engine->log) {
        wh_log_info(t->engine->log, "storage: %zu stored commands indexed "
                    "for GET /commands and the retention", b.n);
    }

    return rc;
}


/* --------------------------------------------------------- listing */


/* one entry of cmd_ws, the newest first: 0 goes on, 1 stops */
static int
wh_state_list_ws_one(wh_etxn_t *t, wh_str_t ws, const wh_kv_val_t *v,
    const wh_cmd_filter_t *f, wh_cmd_list_t *out, wh_err_t *err)
{
    int            found;
    wh_str_t       id, client_id;
    wh_command_t   cmd;

    wh_state_ws_entry(v, &id, &client_id);

    found = wh_state_cmd_get(t, ws, id, &cmd, err);

    if (found <= 0) {
        return found;
    }

    /* seq follows creation: nothing older can be admitted */
    if (f->since_ms && cmd.created_ms < f->since_ms) {
        wh_command_free(&cmd);
        return 1;
    }

    return wh_state_cmd_keep(f, &cmd, out, err);
}


int
wh_state_cmd_list_ws(wh_etxn_t *t, wh_str_t ws, uint64_t before,
    size_t limit, size_t scan, const wh_cmd_filter_t *f,
    wh_cmd_list_t *out, wh_err_t *err)
{
    int            rc, stop = 0;
    size_t         looked = 0, plen;
    uint64_t       seq;
    wh_kv_val_t    k, v, p;
    wh_kv_cur_t   *cur;
    unsigned char  key[WH_STATE_KEY_MAX];

    memset(out, 0, sizeof(wh_cmd_list_t));

    /* newest first: from the first key past the page, one back */
    k.data = key;
    k.len = wh_key_ws_seq(key, ws, before ? before : UINT64_MAX);
    plen = k.len - WH_BE64_LEN;
    p.data = key;
    p.len = plen;

    rc = wh_kv_cur_open(wh_state_kv(t), WH_KV_CMD_WS, &p, &cur, err);

    if (rc != 0) {
        return wh_state_fail(rc, "opening a cursor", err);
    }

    rc = wh_kv_cur_get(cur, &k, &v, WH_KV_SET_RANGE, err);

    if (rc >= 0) {
        rc = wh_kv_cur_get(cur, &k, &v, rc == 0 ? WH_KV_PREV : WH_KV_LAST,
                           err);
    }

    for ( /* void */ ; rc == 0;
         rc = wh_kv_cur_get(cur, &k, &v, WH_KV_PREV, err))
    {
        if (k.len != plen + WH_BE64_LEN || memcmp(k.data, key, plen) != 0)
        {
            break;
        }

        seq = wh_be64_get((unsigned char *) k.data + plen);

        if (seq >= (before ? before : UINT64_MAX)) {
            continue;
        }

        if (out->n == limit || looked == scan) {
            out->next = seq + 1;
            break;
        }

        looked++;
        stop = wh_state_list_ws_one(t, ws, &v, f, out, err);

        if (stop != 0) {
            break;
        }
    }

    wh_kv_cur_close(cur);

    if (stop != 0) {
        return stop < 0 ? stop : 0;
    }

    return rc < 0 ? wh_state_fail(rc, "listing commands", err) : 0;
}


/* ------------------------------------------------------- retention */


/* the idempotency key, only while it still names this command */
static int
wh_state_del_idem(wh_etxn_t *t, const wh_command_t *cmd, wh_err_t *err)
{
    int            rc;
    size_t         klen;
    wh_kv_val_t    v;
    unsigned char  key[WH_STATE_KEY_MAX];

    klen = wh_key_idem(key, cmd->ws, cmd->client_id, cmd->idem);
    rc = wh_state_get(t, WH_KV_CMD_IDEM, key, klen, &v,
                      "reading an idempotency key", err);

    if (rc <= 0 || v.len != cmd->id.len
        || memcmp(v.data, cmd->id.data, cmd->id.len) != 0)
    {
        return rc < 0 ? rc : 0;
    }

    rc = wh_state_del(t, WH_KV_CMD_IDEM, key, klen, "forgetting a key",
                      err);

    return rc < 0 ? rc : 0;
}


/* the command's entries of every database */
static int
wh_state_cmd_unlink(wh_etxn_t *t, const wh_command_t *cmd, wh_err_t *err)
{
    int            i, rc = 0;
    size_t         klen[5];
    wh_kv_db_e     dbs[5] = { WH_KV_COMMANDS, WH_KV_CMD_CLIENT,
                              WH_KV_CMD_OPEN, WH_KV_CMD_WS,
                              WH_KV_CMD_ENDED };
    unsigned char  key[5][WH_STATE_KEY_MAX + WH_BE64_LEN];

    klen[0] = wh_key_pair(key[0], cmd->ws, cmd->id);
    klen[1] = wh_key_seq(key[1], cmd->ws, cmd->client_id, cmd->seq);
    klen[2] = wh_key_seq(key[2], cmd->ws, cmd->client_id, cmd->seq);
    klen[3] = wh_key_ws_seq(key[3], cmd->ws, cmd->seq);
    klen[4] = wh_key_ended(key[4], cmd->updated_ms, cmd->ws, cmd->id);

    for (i = 0; rc >= 0 && i < 5; i++) {
        rc = wh_state_del(t, dbs[i], key[i], klen[i], "deleting a command",
                          err);
    }

    if (rc >= 0 && cmd->idem.len) {
        rc = wh_state_del_idem(t, cmd, err);
    }

    return rc < 0 ? rc : 0;
}


int
wh_state_cmd_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_err_t *err)
{
    int           rc;
    wh_command_t  cmd;

    rc = wh_state_cmd_get(t, ws, id, &cmd, err);

    if (rc <= 0) {
        return rc;
    }

    rc = wh_state_cmd_unlink(t, &cmd, err);
    wh_command_free(&cmd);

    return rc < 0 ? rc : 1;
}


static int
wh_state_prune_add(void *ctx, const wh_kv_val_t *k, const wh_kv_val_t *v,
    wh_err_t *err)
{
    wh_state_prune_t  *p = ctx;

    (void) v;
    (void) err;

    if (k->len <= WH_BE64_LEN || k->len > sizeof(p->ended[0].key)
        || (int64_t) wh_be64_get(k->data) >= p->before_ms)
    {
        return 1;
    }

    if (p->n == p->max) {
        *p->more = 1;
        return 1;
    }

    memcpy(p->ended[p->n].key, k->data, k->len);
    p->ended[p->n++].klen = k->len;

    return 0;
}


int
wh_state_cmd_prune(wh_etxn_t *t, int64_t before_ms, size_t max,
    size_t *removed, int *more, wh_err_t *err)
{
    int               rc;
    size_t            i;
    wh_str_t          ws, id;
    wh_state_prune_t  p;

    *removed = 0;
    *more = 0;

    p.ended = calloc(max ? max : 1, sizeof(wh_state_ended_t));

    if (p.ended == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    p.n = 0;
    p.max = max;
    p.before_ms = before_ms;
    p.more = more;

    /* the keys first: deleting under the cursor would move it */
    rc = wh_state_scan(t, WH_KV_CMD_ENDED, NULL, 0, 0, wh_state_prune_add,
                       &p, "reading ended commands", err);

    for (i = 0; rc == 0 && i < p.n; i++) {
        /* a command that ended twice left a key of its first end */
        rc = wh_key_unpair(p.ended[i].key + WH_BE64_LEN,
                           p.ended[i].klen - WH_BE64_LEN, &ws, &id) == 0
             ? wh_state_cmd_delete(t, ws, id, err) : 0;

        if (rc < 0) {
            break;
        }

        *removed += rc;
        rc = wh_state_del(t, WH_KV_CMD_ENDED, p.ended[i].key,
                          p.ended[i].klen, "deleting a command", err);
        rc = rc < 0 ? rc : 0;
    }

    free(p.ended);

    return rc;
}

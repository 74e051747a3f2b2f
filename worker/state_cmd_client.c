/*
 * A client's commands (state.h): the index cmd_client,
 *
 *   cmd_client  ws "\0" client "\0" seq -> id   a client's commands
 *
 * and the listing over it.
 *
 * On one node (LMDB) the index is written late.  The commands of a
 * batch belong to about as many clients as it has commands, so that an
 * entry made with each command dirtied a B-tree page of its own, which
 * the synced commit then wrote: of the 100 pages a commit of 64 new
 * commands wrote, 64 were this index's.  cmd_ws (ws "\0" seq -> id
 * "\0" client) has every command in creation order, its newest entries
 * on a few pages; once a second the index is brought up to date from
 * it (wh_state_cmd_index_clients), many entries a page, and cmd_meta's
 * "clients" says the seq up to which it is.  A listing reads the index
 * up to there and cmd_ws after it, so that a crash loses nothing: what
 * the index lacks, cmd_ws has.  A cluster's nodes list what the others
 * created: its store (Redis) gets each entry with its command.
 */

#include <string.h>

#include "state.h"


/* a listing of a client's commands */
typedef struct {
    wh_etxn_t        *t;
    wh_str_t          ws, client_id;
    size_t            plen, limit;
    wh_cmd_filter_t   filter;       /* the mask alone */
    uint64_t          last;
    uint64_t          upto;         /* the index's part: seqs up to */
    wh_cmd_list_t    *out;
} wh_state_clist_t;

/* a step of the index: up to the last seq of the commits before */
typedef struct {
    wh_etxn_t        *t;
    uint64_t          last;
} wh_state_indexing_t;

/* an entry of cmd_ws (client_id "" if it does not say): 0 goes on, 1
 * stops, -1 (err set) fails */
typedef int (*wh_state_tail_pt)(void *ctx, wh_str_t ws, uint64_t seq,
    wh_str_t id, wh_str_t client_id, wh_err_t *err);


/* ---------------------------------------------------- the mark */


static int
wh_state_clients_mark(wh_etxn_t *t, uint64_t *mark, int *found,
    wh_err_t *err)
{
    return wh_state_cmd_meta(t, "clients", mark, found,
                             "reading the client index's mark", err);
}


static int
wh_state_clients_set_mark(wh_etxn_t *t, uint64_t mark, wh_err_t *err)
{
    return wh_state_cmd_set_meta(t, "clients", mark,
                                 "writing the client index's mark", err);
}


/*
 * A store of before the late index had every entry written with its
 * command: its mark is the last seq given out.  A new store's is 0.
 */
int
wh_state_cmd_clients_open(wh_etxn_t *t, wh_err_t *err)
{
    int       rc, found;
    uint64_t  mark, last;

    rc = wh_state_clients_mark(t, &mark, &found, err);

    if (rc != 0 || found) {
        return rc;
    }

    rc = wh_state_cmd_seq(t, &last, err);

    return rc != 0 ? rc : wh_state_clients_set_mark(t, last, err);
}


/* ---------------------------------------------- cmd_ws's newest */


/*
 * The entries of cmd_ws with a seq past after, of ws or (ws empty) of
 * every workspace, each workspace's in seq order.  A workspace costs
 * two seeks: to its first entry, then past after.
 */
static int
wh_state_ws_tail(wh_etxn_t *t, wh_str_t ws, uint64_t after,
    wh_state_tail_pt cb, void *ctx, wh_err_t *err)
{
    int             rc, stop = 0;
    size_t          plen;
    uint64_t        seq;
    wh_str_t        w, id, client_id;
    wh_kv_val_t     k, v, p;
    wh_kv_cur_t    *cur;
    const char     *nul;
    unsigned char   key[WH_STATE_KEY_MAX];

    if (after == UINT64_MAX) {
        /* no seq is past it (and after + 1 would be the first) */
        return 0;
    }

    plen = ws.len ? wh_key_ws_seq(key, ws, 0) - WH_BE64_LEN : 0;
    p.data = key;
    p.len = plen;

    rc = wh_kv_cur_open(wh_state_kv(t), WH_KV_CMD_WS, &p, &cur, err);

    if (rc != 0) {
        return wh_state_fail(rc, "opening a cursor", err);
    }

    k.data = key;
    k.len = ws.len ? wh_key_ws_seq(key, ws, after + 1) : 0;
    rc = wh_kv_cur_get(cur, &k, &v, ws.len ? WH_KV_SET_RANGE : WH_KV_FIRST,
                       err);

    while (rc == 0) {
        nul = memchr(k.data, '\0', k.len);

        if (nul == NULL
            || (size_t) (nul - (char *) k.data) > WH_WORKSPACE_MAX
            || k.len != (size_t) (nul - (char *) k.data) + 1 + WH_BE64_LEN)
        {
            rc = wh_kv_cur_get(cur, &k, &v, WH_KV_NEXT, err);
            continue;
        }

        w.data = k.data;
        w.len = nul - (char *) k.data;
        seq = wh_be64_get((const unsigned char *) nul + 1);

        if (seq <= after) {
            /* the first entry of another workspace: past after */
            k.len = wh_key_ws_seq(key, w, after + 1);
            k.data = key;
            rc = wh_kv_cur_get(cur, &k, &v, WH_KV_SET_RANGE, err);
            continue;
        }

        wh_state_ws_entry(&v, &id, &client_id);

        if (id.len == 0 || id.len > WH_CMD_ID_MAX
            || client_id.len > WH_CMD_CLIENT_MAX)
        {
            /* not an entry this store writes: it names nothing */
            rc = wh_kv_cur_get(cur, &k, &v, WH_KV_NEXT, err);
            continue;
        }

        stop = cb(ctx, w, seq, id, client_id, err);

        if (stop != 0) {
            break;
        }

        rc = wh_kv_cur_get(cur, &k, &v, WH_KV_NEXT, err);
    }

    wh_kv_cur_close(cur);

    if (stop != 0) {
        return stop < 0 ? stop : 0;
    }

    return rc < 0 ? wh_state_fail(rc, "reading new commands", err) : 0;
}


/* ------------------------------------------------- bringing it up */


/* cmd_client's entry of a command */
static int
wh_state_index_put(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    uint64_t seq, wh_str_t id, wh_err_t *err)
{
    unsigned char  key[WH_STATE_KEY_MAX];

    return wh_state_put(t, WH_KV_CMD_CLIENT, key,
                        wh_key_seq(key, ws, client_id, seq), id.data, id.len,
                        "indexing a command", err);
}


/*
 * The entry of one command of cmd_ws in cmd_client.  An entry of a
 * store of before does not name the client: its record does.  A record
 * that cannot be read is left out, and logged (the listing fails on it
 * as it would on its entry): the index goes on past it.
 */
static int
wh_state_index_one(void *ctx, wh_str_t ws, uint64_t seq, wh_str_t id,
    wh_str_t client_id, wh_err_t *err)
{
    int                   rc;
    wh_etxn_t            *t;
    wh_command_t          cmd;
    wh_state_indexing_t  *x = ctx;

    t = x->t;

    if (seq > x->last) {
        /* made by this txn: cmd_meta's seq is written at its end, and
         * the mark stays below it */
        return 0;
    }

    if (client_id.len) {
        return wh_state_index_put(t, ws, client_id, seq, id, err);
    }

    rc = wh_state_cmd_get(t, ws, id, &cmd, err);

    if (rc < 0 && t->engine->log) {
        wh_log_error(t->engine->log, "commands: %.*s is not indexed by "
                     "client: %s", (int) id.len, id.data, err->msg);
    }

    if (rc <= 0) {
        /* an entry without its command lists nothing */
        return 0;
    }

    rc = wh_state_index_put(t, ws, cmd.client_id, seq, id, err);
    wh_command_free(&cmd);

    return rc;
}


int
wh_state_cmd_index_clients(wh_etxn_t *t, uint64_t *indexed, wh_err_t *err)
{
    int                  rc, found;
    uint64_t             mark, last;
    wh_str_t             all = { "", 0 };
    wh_state_indexing_t  x;

    if ((rc = wh_state_clients_mark(t, &mark, &found, err)) != 0
        || (rc = wh_state_cmd_seq(t, &last, err)) != 0)
    {
        return rc;
    }

    *indexed = last;

    if (found && mark >= last) {
        return 0;
    }

    /* no mark: a store the engine did not open (wh_state_cmd_clients_
     * open); its whole cmd_ws is put again, which changes nothing */
    x.t = t;
    x.last = last;
    rc = wh_state_ws_tail(t, all, found ? mark : 0, wh_state_index_one, &x,
                          err);

    return rc != 0 ? rc : wh_state_clients_set_mark(t, last, err);
}


/* -------------------------------------------------------- listing */


/* the next command of the listing, if its status is in the mask: 0
 * goes on, 1 the page is full */
static int
wh_state_list_add(wh_state_clist_t *l, uint64_t seq, wh_str_t id,
    wh_err_t *err)
{
    int            rc;
    wh_command_t   cmd;
    wh_cmd_list_t *out = l->out;

    if (out->n == l->limit) {
        out->next = l->last;
        return 1;
    }

    rc = wh_state_cmd_get(l->t, l->ws, id, &cmd, err);

    if (rc < 0) {
        return rc;
    }

    l->last = seq;

    if (rc == 0) {
        return 0;
    }

    return wh_state_cmd_keep(&l->filter, &cmd, out, err);
}


/* one entry of cmd_client */
static int
wh_state_list_indexed(void *ctx, const wh_kv_val_t *k,
    const wh_kv_val_t *v, wh_err_t *err)
{
    uint64_t           seq;
    wh_str_t           id;
    wh_state_clist_t  *l = ctx;

    if (k->len != l->plen + WH_BE64_LEN) {
        return 1;
    }

    seq = wh_be64_get((unsigned char *) k->data + l->plen);

    if (seq > l->upto) {
        /* cmd_ws lists it (an entry an older wirehubd made at once) */
        return 1;
    }

    id.data = v->data;
    id.len = v->len;

    return wh_state_list_add(l, seq, id, err);
}


/* one entry of cmd_ws past the mark: the client's, or passed over */
static int
wh_state_list_new(void *ctx, wh_str_t ws, uint64_t seq, wh_str_t id,
    wh_str_t client_id, wh_err_t *err)
{
    int                rc;
    wh_command_t       cmd;
    wh_state_clist_t  *l = ctx;

    (void) ws;

    if (client_id.len == 0) {
        /* an entry of a store of before: its record names the client */
        rc = wh_state_cmd_get(l->t, l->ws, id, &cmd, err);

        if (rc <= 0) {
            return rc;
        }

        rc = wh_str_eq(cmd.client_id, l->client_id);
        wh_command_free(&cmd);

        if (!rc) {
            return 0;
        }

    } else if (!wh_str_eq(client_id, l->client_id)) {
        return 0;
    }

    return wh_state_list_add(l, seq, id, err);
}


int
wh_state_cmd_list(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
    uint64_t after, size_t limit, unsigned mask, wh_cmd_list_t *out,
    wh_err_t *err)
{
    int                rc, found, late;
    size_t             klen;
    uint64_t           mark = UINT64_MAX;
    wh_state_clist_t   l;
    unsigned char      key[WH_STATE_KEY_MAX];

    memset(out, 0, sizeof(wh_cmd_list_t));

    if (after == UINT64_MAX) {
        /* no seq is past it */
        return 0;
    }

    /* the index has every command up to its mark, cmd_ws the newer */
    late = wh_state_cmd_client_late(t);

    if (late && (rc = wh_state_clients_mark(t, &mark, &found, err)) != 0) {
        return rc;
    }

    klen = wh_key_seq(key, ws, client_id, after + 1);
    l.t = t;
    l.ws = ws;
    l.client_id = client_id;
    l.plen = klen - WH_BE64_LEN;
    l.limit = limit;
    memset(&l.filter, 0, sizeof(l.filter));
    l.filter.mask = mask;
    l.last = 0;
    l.upto = mark;
    l.out = out;

    rc = wh_state_scan(t, WH_KV_CMD_CLIENT, key, klen, l.plen,
                       wh_state_list_indexed, &l, "listing commands", err);

    if (rc != 0 || out->next || !late) {
        return rc;
    }

    return wh_state_ws_tail(t, ws, mark > after ? mark : after,
                            wh_state_list_new, &l, err);
}

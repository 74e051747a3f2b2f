/*
 * Run-time upstream sources in a cluster (sources_shared.h).
 *
 * Each API call is a batch op: its apply reads and writes the record
 * inside the cluster's transaction (and may run again), its done acts
 * on this node (starts or stops the source) and answers.  A record is
 * sources.c's JSON with "_node", the node running it.  Every 2 s the
 * engine is asked which nodes lost their lease lately (nodes_gone: one
 * script, no scan); only then are the records read, and each of those
 * nodes' sources is taken over (the record rewritten with this node,
 * in a transaction that checks it still names the old one) and started
 * here.
 */

#include <stdlib.h>
#include <string.h>

#include "respond.h"
#include "sources_shared.h"


#define WH_SRCSH_SCAN_MS         2000     /* nodes gone looked for */
#define WH_SRCSH_GONE_WINDOW_MS  600000   /* their sources looked for
                                           * so long */

typedef enum {
    WH_SRCOP_CREATE = 0,
    WH_SRCOP_DELETE,
    WH_SRCOP_LIST,
    WH_SRCOP_READ,
    WH_SRCOP_SCAN,
    WH_SRCOP_ADOPT
} wh_srcop_e;

typedef struct {
    wh_op_t           op;
    wh_sources_t     *s;
    wh_srcop_e        kind;
    wh_str_t          ws, id;           /* into mem */
    char             *record;           /* CREATE: what is stored */
    char             *from;             /* ADOPT: the node it was on */
    json_t           *found;            /* records read, each with _ws
                                         * and _id */
    int               status;           /* 0 done, else the answer's */
    wh_peer_t        *peer;
    uint32_t          req_id;
    char             *mem;
} wh_srcop_t;


int
wh_sources_shared(const wh_sources_t *s)
{
    return s->batch != NULL;
}


static wh_srcop_t *
wh_srcop_new(wh_sources_t *s, wh_srcop_e kind, wh_str_t ws, wh_str_t id)
{
    wh_str_t     strs[2];
    wh_str_t    *dst[2];
    wh_srcop_t  *op;

    op = calloc(1, sizeof(wh_srcop_t));

    if (op == NULL) {
        return NULL;
    }

    strs[0] = ws;
    strs[1] = id;
    dst[0] = &op->ws;
    dst[1] = &op->id;

    if (wh_strs_copy(&op->mem, dst, strs, 2) != 0) {
        free(op);
        return NULL;
    }

    op->s = s;
    op->kind = kind;

    return op;
}


static void
wh_srcop_free(wh_srcop_t *op)
{
    if (op->record != NULL) {
        /* header values */
        memset(op->record, 0, strlen(op->record));
        free(op->record);
    }

    json_decref(op->found);
    free(op->from);
    free(op->mem);
    free(op);
}


/* ------------------------------------------------------------ apply */


static int
wh_srcop_collect(void *ctx, wh_str_t ws, wh_str_t id, wh_str_t record)
{
    json_t        *item;
    json_error_t   je;
    const char    *node;
    wh_srcop_t    *op = ctx;

    if (op->kind == WH_SRCOP_LIST && !wh_str_eq(ws, op->ws)) {
        return 0;
    }

    item = json_loadb(record.data, record.len, 0, &je);

    if (!json_is_object(item)) {
        json_decref(item);
        return 0;
    }

    node = json_string_value(json_object_get(item, "_node"));

    if (op->kind == WH_SRCOP_SCAN
        && (node == NULL || !wh_nodes_have(op->from, wh_cstr(node))))
    {
        json_decref(item);
        return 0;
    }

    if (json_object_set_new(item, "_ws", json_stringn(ws.data, ws.len))
        || json_object_set_new(item, "_id", json_stringn(id.data, id.len))
        || json_array_append_new(op->found, item) != 0)
    {
        return 1;
    }

    return 0;
}


/* ADOPT: the record still names the node it is taken from */
static int
wh_srcop_adopt(wh_srcop_t *op, wh_etxn_t *t, wh_str_t rec, wh_err_t *err)
{
    char          *text;
    json_t        *item;
    json_error_t   je;
    const char    *node;
    int            rc;

    item = json_loadb(rec.data, rec.len, 0, &je);
    node = json_string_value(json_object_get(item, "_node"));

    if (node == NULL || strcmp(node, op->from) != 0) {
        json_decref(item);
        op->status = 404;
        return 0;
    }

    json_object_set_new(item, "_node",
                        json_string(op->s->engine->node_id));
    text = json_dumps(item, JSON_COMPACT);
    json_decref(item);

    if (text == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    rc = wh_etxn_ops(t)->source_put(t, op->ws, op->id, wh_cstr(text), err);

    if (rc == 0) {
        free(op->record);
        op->record = text;
        op->op.sync = 1;
    } else {
        memset(text, 0, strlen(text));
        free(text);
    }

    return rc;
}


static int
wh_srcop_apply(wh_op_t *base, wh_etxn_t *t, wh_err_t *err)
{
    int           rc;
    wh_str_t      rec;
    wh_srcop_t   *op = (wh_srcop_t *) base;

    /* a batch may be applied again: from scratch */
    op->status = 0;

    switch (op->kind) {

    case WH_SRCOP_LIST:
    case WH_SRCOP_SCAN:
        json_decref(op->found);
        op->found = json_array();

        if (op->found == NULL) {
            return wh_err(err, 503, "out of memory");
        }

        return wh_etxn_ops(t)->source_each(t, wh_srcop_collect, op, err);

    case WH_SRCOP_DELETE:
        rc = wh_etxn_ops(t)->source_del(t, op->ws, op->id, err);
        op->status = rc == 0 ? 404 : 0;
        op->op.sync = rc > 0;
        return rc < 0 ? -1 : 0;

    default:
        break;
    }

    rc = wh_etxn_ops(t)->source_get(t, op->ws, op->id, &rec, err);

    if (rc < 0) {
        return -1;
    }

    switch (op->kind) {

    case WH_SRCOP_CREATE:
        if (rc == 1) {
            op->status = 409;
            return 0;
        }

        op->op.sync = 1;
        return wh_etxn_ops(t)->source_put(t, op->ws, op->id,
                                          wh_cstr(op->record), err);

    case WH_SRCOP_READ:
        json_decref(op->found);
        op->found = json_array();

        if (op->found == NULL) {
            return wh_err(err, 503, "out of memory");
        }

        if (rc == 0) {
            op->status = 404;
            return 0;
        }

        return wh_srcop_collect(op, op->ws, op->id, rec)
               ? wh_err(err, 503, "out of memory") : 0;

    default:
        if (rc == 0) {
            op->status = 404;
            return 0;
        }

        return wh_srcop_adopt(op, t, rec, err);
    }
}


/* ------------------------------------------------------------- done */


/* a stored record's definition (without _ws, _id, _node); 0 or -1 */
static int
wh_srcop_def(json_t *item, wh_str_t ws, wh_source_def_t *def, char *why,
    size_t size)
{
    int      rc;
    json_t  *copy;

    copy = json_deep_copy(item);

    if (copy == NULL) {
        snprintf(why, size, "out of memory");
        return -1;
    }

    json_object_del(copy, "_ws");
    json_object_del(copy, "_id");
    json_object_del(copy, "_node");
    rc = wh_source_def_json(def, ws, copy, 0, why, size);
    json_decref(copy);

    return rc;
}


/* a source as every node shows it: this node's own with its state */
static json_t *
wh_srcop_view(wh_sources_t *s, json_t *item)
{
    char              why[200];
    json_t           *obj;
    wh_str_t          ws, id;
    wh_source_t      *src;
    wh_source_def_t   def;

    ws = wh_cstr(json_string_value(json_object_get(item, "_ws")));
    id = wh_cstr(json_string_value(json_object_get(item, "_id")));
    src = wh_sources_find(s, ws, id);

    if (src != NULL && src->stored) {
        return wh_source_json(src);
    }

    if (wh_srcop_def(item, ws, &def, why, sizeof(why)) != 0) {
        wh_source_def_free(&def);
        return NULL;
    }

    obj = wh_source_json_remote(&def, json_string_value(
                                          json_object_get(item, "_node")));
    wh_source_def_free(&def);

    return obj;
}


static void wh_srcop_submit(wh_srcop_t *op);


/* the op's stored record started here; NULL with err */
static wh_source_t *
wh_srcop_start(wh_srcop_t *op, wh_err_t *err)
{
    char              why[200];
    json_t           *item;
    wh_source_t      *src = NULL;
    wh_source_def_t   def;
    json_error_t      je;

    item = json_loads(op->record, 0, &je);
    memset(&def, 0, sizeof(def));

    if (item == NULL) {
        wh_err(err, 503, "out of memory");

    } else if (wh_srcop_def(item, op->ws, &def, why, sizeof(why)) != 0) {
        wh_err(err, 503, "%s", why);

    } else {
        src = wh_sources_add(op->s, &def, 1, err);
    }

    json_decref(item);

    if (src == NULL) {
        wh_source_def_free(&def);
    }

    return src;
}


static void
wh_srcop_created(wh_srcop_t *op)
{
    wh_err_t      err;
    wh_srcop_t   *forget;
    wh_source_t  *src;

    if (op->status == 409) {
        wh_respond_error(op->peer, op->req_id, 409, "conflict",
                         "the source exists");
        return;
    }

    src = wh_srcop_start(op, &err);

    if (src == NULL) {
        /* stored but not started (a cafile that does not load, say):
         * not kept either */
        wh_respond_err(op->peer, op->req_id, &err);
        forget = wh_srcop_new(op->s, WH_SRCOP_DELETE, op->ws, op->id);

        if (forget != NULL) {
            wh_srcop_submit(forget);
        }

        return;
    }

    wh_log_info(op->s->log, "source %s/%s: added (%s)", src->def.workspace,
                src->def.id, src->def.parsed.host);
    wh_respond_json(op->peer, op->req_id, 201, wh_source_json(src));
}


static void
wh_srcop_deleted(wh_srcop_t *op)
{
    wh_source_t       *src;
    wh_engine_note_t   note;
    wh_engine_t       *e = op->s->engine;

    if (op->status == 404) {
        wh_respond_error(op->peer, op->req_id, 404, "not_found",
                         "no such source");
        return;
    }

    src = wh_sources_find(op->s, op->ws, op->id);

    if (src != NULL && src->stored) {
        wh_sources_remove(op->s, src);
    }

    /* the node that runs it stops it */
    memset(&note, 0, sizeof(note));
    note.kind = WH_NOTE_SOURCE;
    note.ws = op->ws;
    note.client_id = op->id;
    e->ops->state_notify(e, &note);

    wh_respond_json(op->peer, op->req_id, 200,
                   json_pack("{s:s%,s:b}", "id", op->id.data, op->id.len,
                             "deleted", 1));
}


static void
wh_srcop_listed(wh_srcop_t *op)
{
    size_t        i;
    json_t       *items, *item, *v;
    wh_source_t  *src;

    items = json_array();

    /* this node's configured ones first, as on one node */
    for (src = op->s->head; src && items; src = src->next) {
        if (!src->stored && wh_str_eq(wh_cstr(src->def.workspace), op->ws)
            && json_array_append_new(items, wh_source_json(src)) != 0)
        {
            json_decref(items);
            items = NULL;
        }
    }

    json_array_foreach(op->found, i, item) {
        v = items ? wh_srcop_view(op->s, item) : NULL;

        if (v != NULL && json_array_append_new(items, v) != 0) {
            json_decref(items);
            items = NULL;
        }
    }

    wh_respond_json(op->peer, op->req_id, 200,
                   items ? json_pack("{s:o}", "items", items) : NULL);
}


static void wh_srcsh_take_over(wh_sources_t *s, json_t *found);


static void
wh_srcop_adopted(wh_srcop_t *op)
{
    wh_err_t  err;

    if (wh_srcop_start(op, &err) == NULL) {
        wh_log_error(op->s->log, "source %.*s/%.*s: not taken over from "
                     "node \"%s\": %s", (int) op->ws.len, op->ws.data,
                     (int) op->id.len, op->id.data, op->from, err.msg);
        return;
    }

    wh_log_info(op->s->log, "source %.*s/%.*s: taken over from node \"%s\", "
                "whose lease ended", (int) op->ws.len, op->ws.data,
                (int) op->id.len, op->id.data, op->from);
}


static void
wh_srcop_done(wh_op_t *base, int committed, const wh_err_t *err)
{
    json_t       *item;
    wh_srcop_t   *op = (wh_srcop_t *) base;

    if (op->kind == WH_SRCOP_SCAN) {
        op->s->scanning = 0;

        if (committed && !op->s->stopped) {
            wh_srcsh_take_over(op->s, op->found);
        }

    } else if (op->kind == WH_SRCOP_ADOPT) {
        if (committed && op->status == 0 && !op->s->stopped) {
            wh_srcop_adopted(op);
        }

    } else if (op->peer == NULL) {
        /* a record dropped again: nobody waits for it */

    } else if (!wh_respond_failed(op->peer, op->req_id, committed, err)) {
        switch (op->kind) {

        case WH_SRCOP_CREATE:
            wh_srcop_created(op);
            break;

        case WH_SRCOP_DELETE:
            wh_srcop_deleted(op);
            break;

        case WH_SRCOP_LIST:
            wh_srcop_listed(op);
            break;

        default:
            item = json_array_get(op->found, 0);

            if (op->status == 404 || item == NULL) {
                wh_respond_error(op->peer, op->req_id, 404, "not_found",
                                 "no such source");
            } else {
                wh_respond_json(op->peer, op->req_id, 200,
                               wh_srcop_view(op->s, item));
            }

            break;
        }
    }

    wh_srcop_free(op);
}


static void
wh_srcop_submit(wh_srcop_t *op)
{
    op->op.apply = wh_srcop_apply;
    op->op.done = wh_srcop_done;
    wh_batch_add(op->s->batch, &op->op, 0);
}


/* ------------------------------------------------------------ routes */


static wh_srcop_t *
wh_srcop_request(wh_sources_t *s, wh_srcop_e kind, wh_peer_t *peer,
    const wh_link_msg_t *m, wh_str_t id)
{
    wh_srcop_t  *op;

    op = wh_srcop_new(s, kind, m->workspace, id);

    if (op == NULL) {
        wh_respond_error(peer, m->req_id, 503, "unavailable",
                         "out of memory");
        return NULL;
    }

    op->peer = peer;
    op->req_id = m->req_id;

    return op;
}


void
wh_sources_shared_create(wh_sources_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    char              why[200];
    json_t           *body, *stored;
    wh_srcop_t       *op;
    wh_source_def_t   def;

    body = wh_request_object(peer, m, 64 * 1024,
                             "a source is at most 64 KiB of JSON",
                             "the body must be a JSON object");

    if (body == NULL) {
        return;
    }

    if (wh_source_def_json(&def, m->workspace, body, 0, why, sizeof(why))
        != 0)
    {
        json_decref(body);
        wh_source_def_free(&def);
        wh_respond_error(peer, m->req_id, 400, "bad_request", why);
        return;
    }

    json_decref(body);

    if (wh_sources_find(s, m->workspace, wh_cstr(def.id)) != NULL) {
        wh_respond_error(peer, m->req_id, 409, "conflict",
                         "the source exists");
        wh_source_def_free(&def);
        return;
    }

    op = wh_srcop_request(s, WH_SRCOP_CREATE, peer, m, wh_cstr(def.id));
    stored = wh_source_def_to_json(&def, 1);
    wh_source_def_free(&def);

    if (op != NULL && stored != NULL
        && json_object_set_new(stored, "_node",
                               json_string(s->engine->node_id)) == 0)
    {
        op->record = json_dumps(stored, JSON_COMPACT);
    }

    json_decref(stored);

    if (op == NULL) {
        return;
    }

    if (op->record == NULL) {
        wh_respond_error(peer, m->req_id, 503, "unavailable",
                         "out of memory");
        wh_srcop_free(op);
        return;
    }

    wh_srcop_submit(op);
}


void
wh_sources_shared_list(wh_sources_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m)
{
    wh_srcop_t  *op;

    op = wh_srcop_request(s, WH_SRCOP_LIST, peer, m, wh_cstr(""));

    if (op != NULL) {
        wh_srcop_submit(op);
    }
}


void
wh_sources_shared_one(wh_sources_t *s, wh_peer_t *peer,
    const wh_link_msg_t *m, wh_str_t id)
{
    wh_srcop_t   *op;
    wh_source_t  *src;

    src = wh_sources_find(s, m->workspace, id);

    if (src != NULL && !src->stored) {
        /* this node's wirehubd.conf: shown, never deleted */
        if (wh_method_is(m, "GET")) {
            wh_respond_json(peer, m->req_id, 200, wh_source_json(src));
        } else {
            wh_respond_error(peer, m->req_id, 409, "conflict",
                             "the source is defined in the configuration "
                             "file");
        }

        return;
    }

    if (id.len == 0 || id.len > 64) {
        wh_respond_error(peer, m->req_id, 404, "not_found",
                         "no such source");
        return;
    }

    op = wh_srcop_request(s, wh_method_is(m, "GET") ? WH_SRCOP_READ
                                                    : WH_SRCOP_DELETE,
                          peer, m, id);

    if (op != NULL) {
        wh_srcop_submit(op);
    }
}


/* ---------------------------------------------------------- take over */


/* after a scan: each source it found is taken over */
static void
wh_srcsh_take_over(wh_sources_t *s, json_t *found)
{
    size_t       i;
    json_t      *item;
    wh_srcop_t  *op;

    json_array_foreach(found, i, item) {
        op = wh_srcop_new(s, WH_SRCOP_ADOPT,
                          wh_cstr(json_string_value(json_object_get(item,
                                                                    "_ws"))),
                          wh_cstr(json_string_value(json_object_get(item,
                                                                    "_id"))));

        if (op == NULL) {
            return;
        }

        op->from = strdup(json_string_value(json_object_get(item, "_node")));

        if (op->from == NULL) {
            wh_srcop_free(op);
            return;
        }

        wh_srcop_submit(op);
    }
}


/* the engine's answer: the nodes whose lease ended lately */
static void
wh_srcsh_gone_nodes(void *ctx, const wh_str_t *nodes, size_t n)
{
    wh_srcop_t    *op;
    wh_sources_t  *s = ctx;

    if (s->stopped) {
        return;
    }

    s->scanning = 0;
    op = n ? wh_srcop_new(s, WH_SRCOP_SCAN, wh_cstr(""), wh_cstr(""))
           : NULL;

    if (op == NULL) {
        return;
    }

    op->from = wh_nodes_join(nodes, n);

    if (op->from == NULL) {
        wh_srcop_free(op);
        return;
    }

    s->scanning = 1;
    wh_srcop_submit(op);
}


static void
wh_srcsh_scan(wh_timer_t *t)
{
    wh_sources_t  *s = t->data;
    wh_engine_t   *e = s->engine;

    if (s->scanning || s->stopped) {
        return;
    }

    s->scanning = e->ops->nodes_gone(e, WH_SRCSH_GONE_WINDOW_MS,
                                     wh_srcsh_gone_nodes, s) == 0;
}


void
wh_sources_changed_elsewhere(wh_sources_t *s, wh_str_t ws, wh_str_t id)
{
    wh_source_t  *src;

    src = wh_sources_find(s, ws, id);

    if (src != NULL && src->stored) {
        wh_sources_remove(s, src);
    }
}


int
wh_sources_shared_init(wh_sources_t *s, wh_batch_t *batch, wh_err_t *err)
{
    if (!wh_engine_shared(s->engine)
        || s->engine->ops->nodes_gone == NULL
        || s->engine->ops->source_get == NULL)
    {
        return 0;
    }

    s->batch = batch;
    s->adopt.interval = WH_SRCSH_SCAN_MS;
    s->adopt.handler = wh_srcsh_scan;
    s->adopt.data = s;

    return wh_loop_timer(s->loop, &s->adopt, err);
}


void
wh_sources_shared_stop(wh_sources_t *s)
{
    if (s->batch != NULL && !s->stopped) {
        wh_loop_timer_del(s->loop, &s->adopt);
    }

    s->stopped = 1;
}

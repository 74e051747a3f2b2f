/*
 * The jobs' HTTP routes (DESIGN.md "Fleet jobs"):
 *
 *   POST /jobs                       -> 202 the job, once its executions
 *                                       are stored
 *   GET  /jobs?status=&limit=        newest first
 *   GET  /jobs/{id}
 *   GET  /jobs/{id}/executions?status=&cursor=&limit=
 *   POST /jobs/{id}/cancel           POST /jobs/{id}/retry
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wh_time.h"
#include "commands_api.h"
#include "jobs_api.h"
#include "jobs_internal.h"
#include "jsonw.h"
#include "message.h"
#include "query.h"
#include "respond.h"


#define WH_JOB_BODY_MAX      (1024 * 1024)
#define WH_JOB_TTL_MAX_S     (30 * 86400)
#define WH_JOB_RATE_MAX      6000000
#define WH_JOB_LIMIT_DEF     100
#define WH_JOB_LIMIT_MAX     1000


static void
wh_jobs_oom(wh_peer_t *peer, uint32_t req_id)
{
    wh_respond_error(peer, req_id, 503, "unavailable", "out of memory");
}


static void
wh_jobs_send_job(wh_peer_t *peer, uint32_t req_id, uint16_t status,
    const wh_jobm_t *jm)
{
    wh_buf_t  b = { NULL, 0, 0 };

    if (wh_job_json(&b, jm) != 0) {
        wh_jobs_oom(peer, req_id);
    } else {
        wh_respond(peer, req_id, status, b.data, b.len);
    }

    wh_buf_free(&b);
}


/* ---------------------------------------------------------- answers */


static void
wh_jobs_reply_execs(wh_job_op_t *op)
{
    int                  rc;
    char                 num[32];
    size_t               i;
    wh_buf_t             b = { NULL, 0, 0 };
    wh_job_exec_item_t  *it;

    rc = wh_jw_open(&b, NULL, '{') | wh_jw_open(&b, "items", '[');

    for (i = 0; i < op->nitems; i++) {
        it = &op->items[i];
        rc |= wh_jw_open(&b, NULL, '{');
        rc |= wh_jw_int(&b, "index", (int64_t) it->idx);
        rc |= wh_jw_cstr(&b, "client_id", it->client);
        rc |= wh_jw_cstr(&b, "status", wh_job_exec_status(it->status));
        rc |= wh_jw_int(&b, "attempt", it->attempt);

        if (it->command_id) {
            rc |= wh_jw_cstr(&b, "command_id", it->command_id);
        }

        if (it->error) {
            rc |= wh_jw_cstr(&b, "error", it->error);
        }

        rc |= wh_jw_close(&b, '}');
    }

    rc |= wh_jw_close(&b, ']');

    if (op->next_idx) {
        snprintf(num, sizeof(num), "%" PRIu64, op->next_idx);
        rc |= wh_jw_cstr(&b, "next", num);
    } else {
        rc |= wh_jw_raw(&b, "next", "null", 4);
    }

    if ((rc | wh_jw_close(&b, '}')) != 0) {
        wh_jobs_oom(op->peer, op->req_id);
    } else {
        wh_respond(op->peer, op->req_id, 200, b.data, b.len);
    }

    wh_buf_free(&b);
}


static int
wh_jobs_newest_first(const void *a, const void *b)
{
    const wh_job_t  *x = a;
    const wh_job_t  *y = b;

    return x->created_ms < y->created_ms ? 1
           : x->created_ms > y->created_ms ? -1
           : 0;
}


/* cluster: the workspace's jobs as stored; this node's from memory */
static void
wh_jobs_reply_list(wh_job_op_t *op)
{
    int          rc;
    size_t       i;
    wh_buf_t     b = { NULL, 0, 0 };
    wh_jobm_t   *jm;

    qsort(op->recs, op->nrecs, sizeof(wh_job_t), wh_jobs_newest_first);
    rc = wh_jw_open(&b, NULL, '{') | wh_jw_open(&b, "items", '[');

    for (i = 0; i < op->nrecs && i < op->limit; i++) {
        jm = wh_jobs_find(op->j, op->recs[i].ws, op->recs[i].id);
        rc |= jm ? wh_job_json(&b, jm) : wh_job_json_rec(&b, &op->recs[i]);
    }

    rc |= wh_jw_close(&b, ']') | wh_jw_close(&b, '}');

    if (rc != 0) {
        wh_jobs_oom(op->peer, op->req_id);
    } else {
        wh_respond(op->peer, op->req_id, 200, b.data, b.len);
    }

    wh_buf_free(&b);
}


static void
wh_jobs_reply(wh_job_op_t *op, int committed, const wh_err_t *err)
{
    uint16_t    status;
    wh_buf_t    b = { NULL, 0, 0 };
    wh_jobm_t  *jm;

    if (wh_respond_failed(op->peer, op->req_id, committed, err)) {
        return;
    }

    if (op->outcome == WH_JOB_NOT_FOUND) {
        wh_respond_error(op->peer, op->req_id, 404, "not_found",
                         "no such job");
        return;
    }

    jm = wh_jobs_find(op->j, op->rec.ws, op->rec.id);

    if (op->outcome == WH_JOB_CONFLICT) {
        wh_respond_error(op->peer, op->req_id, 409, "conflict",
                         op->to_status == WH_JOB_RETRY
                         ? "only an ended job can be retried"
                         : "the job already ended");
        return;
    }

    if (op->outcome == WH_JOB_MOVED) {
        wh_respond_error(op->peer, op->req_id, 503, "unavailable",
                         "the job was just taken over by another node; "
                         "try again");
        return;
    }

    if (op->kind == WH_JOB_OP_EXECS) {
        wh_jobs_reply_execs(op);
        return;
    }

    if (op->kind == WH_JOB_OP_LIST) {
        wh_jobs_reply_list(op);
        return;
    }

    status = op->kind == WH_JOB_OP_CREATE || op->to_status == WH_JOB_RETRY
             ? 202 : 200;

    if (jm != NULL) {
        wh_jobs_send_job(op->peer, op->req_id, status, jm);
        return;
    }

    /* cluster: a job another node runs, as stored */
    if (op->after_rec.id.len == 0 || wh_job_json_rec(&b, &op->after_rec))
    {
        wh_jobs_oom(op->peer, op->req_id);
    } else {
        wh_respond(op->peer, op->req_id, status, b.data, b.len);
    }

    wh_buf_free(&b);
}


/* ---------------------------------------------------------- create */


/* "target": a message for a 400; sets the kind and its summary text */
static const char *
wh_jobs_parse_target(json_t *body, wh_job_op_t *op, json_t **summary)
{
    size_t   i;
    json_t  *t, *v, *c;

    t = json_object_get(body, "target");

    if (!json_is_object(t) || json_object_size(t) != 1) {
        return "\"target\" must be {\"clients\":[...]}, "
               "{\"client_type\":\"...\"} or {\"all\":true}";
    }

    if ((v = json_object_get(t, "all")) != NULL) {
        if (!json_is_true(v)) {
            return "\"target.all\" must be true";
        }

        op->target = WH_JOB_TARGET_ALL;
        *summary = json_pack("{s:b}", "all", 1);
        return NULL;
    }

    if ((v = json_object_get(t, "client_type")) != NULL) {
        if (!json_is_string(v) || json_string_length(v) == 0
            || json_string_length(v) > 64)
        {
            return "\"target.client_type\" must be a string of 1 to 64 "
                   "bytes";
        }

        op->target = WH_JOB_TARGET_TYPE;
        *summary = json_pack("{s:O}", "client_type", v);
        return NULL;
    }

    v = json_object_get(t, "clients");

    if (!json_is_array(v) || json_array_size(v) == 0) {
        return "\"target.clients\" must be a list of client ids";
    }

    json_array_foreach(v, i, c) {
        if (!json_is_string(c) || json_string_length(c) == 0
            || json_string_length(c) > WH_CMD_CLIENT_MAX)
        {
            return "\"target.clients\" must be a list of client ids";
        }
    }

    op->target = WH_JOB_TARGET_LIST;
    op->nclients = json_array_size(v);
    *summary = json_pack("{s:I}", "clients", (json_int_t) op->nclients);

    return NULL;
}


/* an unsigned member within [min, max], or def if absent */
static const char *
wh_jobs_parse_uint(json_t *obj, const char *key, json_int_t min,
    json_int_t max, json_int_t def, json_int_t *out, const char *bad)
{
    json_t  *v;

    v = obj ? json_object_get(obj, key) : NULL;
    *out = def;

    if (v == NULL) {
        return NULL;
    }

    if (!json_is_integer(v) || json_integer_value(v) < min
        || json_integer_value(v) > max)
    {
        return bad;
    }

    *out = json_integer_value(v);

    return NULL;
}


/* priority, ttl, rollout, abort, not_before; a message for a 400 */
static const char *
wh_jobs_parse_rules(json_t *body, wh_job_t *rec)
{
    json_t      *v;
    json_int_t   n;
    const char  *bad;

    if ((bad = wh_jobs_parse_uint(body, "priority", 0,
                                  WH_CMD_PRIORITIES - 1,
                                  WH_CMD_PRIORITY_DEF, &n,
                                  "\"priority\" must be an integer from 0 "
                                  "to 9")) != NULL)
    {
        return bad;
    }

    rec->priority = (unsigned) n;

    if ((bad = wh_jobs_parse_uint(body, "ttl", 1, WH_JOB_TTL_MAX_S, 0, &n,
                                  "\"ttl\" must be 1 to 2592000 seconds"))
        != NULL)
    {
        return bad;
    }

    rec->ttl_ms = (int64_t) n * WH_MS_PER_S;
    v = json_object_get(body, "rollout");

    if ((v != NULL && !json_is_object(v))
        || (bad = wh_jobs_parse_uint(v, "max_per_minute", 1,
                                     WH_JOB_RATE_MAX, 0, &n, "x")) != NULL)
    {
        return "\"rollout.max_per_minute\" must be an integer from 1 to "
               "6000000";
    }

    rec->rate = (uint32_t) n;
    v = json_object_get(body, "abort");

    if (v != NULL) {
        if (!json_is_object(v)
            || json_object_get(v, "failure_percent") == NULL
            || wh_jobs_parse_uint(v, "failure_percent", 0, 100, 0, &n, "x")
               != NULL)
        {
            return "\"abort.failure_percent\" must be an integer from 0 "
                   "to 100";
        }

        rec->abort = 1;
        rec->abort_percent = (unsigned) n;

        if (wh_jobs_parse_uint(v, "min_executed", 0, 1000000000, 1, &n,
                               "x") != NULL)
        {
            return "\"abort.min_executed\" must be a count";
        }

        rec->abort_min = (unsigned) n;
    }

    return wh_cmd_parse_not_before(body, &rec->not_before_ms);
}


/* the op's strings (ws, id, command, payload, issued_by, target,
 * client_type, the clients) copied into one block */
static int
wh_jobs_op_strings(wh_job_op_t *op, json_t *body, wh_str_t payload,
    wh_str_t issued_by, const char *target)
{
    char       *old;
    size_t      i, n;
    json_t     *v, *list;
    wh_str_t   *strs;
    wh_str_t  **dst;
    int         rc;

    list = json_object_get(json_object_get(body, "target"), "clients");
    n = 7 + op->nclients;
    strs = calloc(n, sizeof(wh_str_t));
    dst = calloc(n, sizeof(wh_str_t *));
    op->clients = op->nclients ? calloc(op->nclients, sizeof(wh_str_t))
                               : NULL;

    if (strs == NULL || dst == NULL || (op->nclients && !op->clients)) {
        free(strs);
        free(dst);
        return -1;
    }

    v = json_object_get(body, "command");
    strs[0] = op->rec.ws;
    strs[1] = op->rec.id;
    strs[2].data = json_string_value(v);
    strs[2].len = json_string_length(v);
    strs[3] = payload;
    strs[4] = issued_by;
    strs[5] = wh_cstr(target);
    v = json_object_get(json_object_get(body, "target"), "client_type");
    strs[6].data = json_is_string(v) ? json_string_value(v) : "";
    strs[6].len = json_is_string(v) ? json_string_length(v) : 0;
    dst[0] = &op->rec.ws;
    dst[1] = &op->rec.id;
    dst[2] = &op->rec.command;
    dst[3] = &op->rec.payload;
    dst[4] = &op->rec.issued_by;
    dst[5] = &op->rec.target;
    dst[6] = &op->client_type;

    for (i = 0; i < op->nclients; i++) {
        v = json_array_get(list, i);
        strs[7 + i].data = json_string_value(v);
        strs[7 + i].len = json_string_length(v);
        dst[7 + i] = &op->clients[i];
    }

    /* strs[0] and strs[1] are in the old block */
    old = op->mem;
    op->mem = NULL;
    rc = wh_strs_copy(&op->mem, dst, strs, n);
    free(old);
    free(strs);
    free(dst);

    return rc;
}


static void
wh_jobs_create(wh_jobs_t *j, wh_peer_t *peer, const wh_link_msg_t *m)
{
    char           id[WH_CMD_NEW_ID_LEN + 1], by[WH_ISSUER_MAX];
    char          *target = NULL;
    json_t        *body, *v, *summary = NULL;
    wh_str_t       payload, issued_by;
    wh_job_op_t   *op;
    const char    *bad = NULL;

    body = wh_request_object(peer, m, WH_JOB_BODY_MAX,
                             "the job is larger than 1 MiB",
                             "the body must be a JSON object {command, "
                             "payload, target, rollout, abort, ...}");

    if (body == NULL) {
        return;
    }

    /* no id (getrandom() failed) is the server's failure */
    op = wh_cmd_new_id(id, 'j') == 0
         ? wh_job_op_new(j, WH_JOB_OP_CREATE, m->workspace, wh_cstr(id))
         : NULL;

    if (op == NULL) {
        json_decref(body);
        wh_jobs_oom(peer, m->req_id);
        return;
    }

    v = json_object_get(body, "command");

    if (!json_is_string(v) || !wh_message_type_valid(json_string_value(v),
                                                     json_string_length(v)))
    {
        bad = "\"command\" must be a name of 1 to 128 characters";
    }

    payload.data = "{}";
    payload.len = 2;

    if (bad == NULL && json_object_get(body, "payload") != NULL
        && !wh_json_member(m->body.data, m->body.len, "payload", &payload))
    {
        bad = "write the key \"payload\" without escapes";
    }

    if (bad == NULL) {
        bad = wh_jobs_parse_target(body, op, &summary);
    }

    if (bad == NULL) {
        bad = wh_jobs_parse_rules(body, &op->rec);
    }

    if (bad != NULL) {
        wh_respond_error(peer, m->req_id, 400, "bad_request", bad);
        goto done;
    }

    target = summary ? json_dumps(summary, JSON_COMPACT) : NULL;
    wh_issuer(m, by, sizeof(by), &issued_by);

    if (target == NULL
        || wh_jobs_op_strings(op, body, payload, issued_by, target) != 0)
    {
        wh_jobs_oom(peer, m->req_id);
        goto done;
    }

    op->rec.series = 1;
    op->rec.created_ms = wh_time_ms();
    /* cluster: this node runs its rollout (the engine keeps the id) */
    op->rec.node = wh_cstr(j->engine->node_id ? j->engine->node_id : "");
    op->started_us = wh_loop_now() * 1000;
    op->reply = wh_jobs_reply;
    op->peer = peer;
    op->req_id = m->req_id;
    wh_job_op_submit(op);
    op = NULL;

done:

    if (op != NULL) {
        wh_job_op_free(op);
    }

    free(target);
    json_decref(summary);
    json_decref(body);
}


/* ------------------------------------------------------------ reads */


static int
wh_jobms_newest_first(const void *a, const void *b)
{
    const wh_jobm_t  *x = *(wh_jobm_t * const *) a;
    const wh_jobm_t  *y = *(wh_jobm_t * const *) b;

    return wh_jobs_newest_first(&x->rec, &y->rec);
}


static void
wh_jobs_list(wh_jobs_t *j, wh_peer_t *peer, const wh_link_msg_t *m)
{
    int              rc, st = -1;
    char             buf[32];
    size_t           n = 0, i, len;
    uint64_t         limit = WH_JOB_LIMIT_DEF;
    wh_buf_t         b = { NULL, 0, 0 };
    wh_jobm_t      **all, *jm;
    wh_job_op_t     *op;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    rc = wh_query_get(m->query, "status", buf, sizeof(buf), &len);

    if (rc < 0 || (rc == 1 && (st = wh_job_status_parse(buf, len)) < 0)
        || wh_query_u64(m->query, "limit", &limit) < 0 || limit == 0)
    {
        wh_respond_error(peer, m->req_id, 400, "bad_request",
                         "status must be a job status, limit 1 to 1000");
        return;
    }

    limit = limit > WH_JOB_LIMIT_MAX ? WH_JOB_LIMIT_MAX : limit;

    if (j->cluster) {
        /* the nodes run different jobs: the store has them all */
        op = wh_job_op_new(j, WH_JOB_OP_LIST, m->workspace, wh_cstr(""));

        if (op == NULL) {
            wh_jobs_oom(peer, m->req_id);
            return;
        }

        op->to_status = st;
        op->limit = limit;
        op->reply = wh_jobs_reply;
        op->peer = peer;
        op->req_id = m->req_id;
        wh_job_op_submit(op);
        return;
    }

    all = malloc((j->jobs.count + 1) * sizeof(wh_jobm_t *));

    if (all == NULL) {
        wh_jobs_oom(peer, m->req_id);
        return;
    }

    while ((e = wh_map_next(&j->jobs, &it)) != NULL) {
        jm = e->value;

        if (jm->rec.ws.len == m->workspace.len
            && memcmp(jm->rec.ws.data, m->workspace.data, m->workspace.len)
               == 0
            && (st < 0 || jm->rec.status == st))
        {
            all[n++] = jm;
        }
    }

    qsort(all, n, sizeof(wh_jobm_t *), wh_jobms_newest_first);
    rc = wh_jw_open(&b, NULL, '{') | wh_jw_open(&b, "items", '[');

    for (i = 0; i < n && i < limit; i++) {
        rc |= wh_job_json(&b, all[i]);
    }

    rc |= wh_jw_close(&b, ']') | wh_jw_close(&b, '}');
    free(all);

    if (rc != 0) {
        wh_jobs_oom(peer, m->req_id);
    } else {
        wh_respond(peer, m->req_id, 200, b.data, b.len);
    }

    wh_buf_free(&b);
}


static void
wh_jobs_execs(wh_jobs_t *j, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t id)
{
    unsigned      mask;
    uint64_t      limit = WH_JOB_LIMIT_DEF, cursor = 0;
    wh_job_op_t  *op;

    if (wh_cmd_status_mask(m->query, &mask) != 0
        || wh_query_u64(m->query, "limit", &limit) < 0 || limit == 0
        || wh_query_u64(m->query, "cursor", &cursor) < 0)
    {
        wh_respond_error(peer, m->req_id, 400, "bad_request",
                         "status must list execution statuses, limit 1 "
                         "to 1000");
        return;
    }

    op = wh_job_op_new(j, WH_JOB_OP_EXECS, m->workspace, id);

    if (op == NULL) {
        wh_jobs_oom(peer, m->req_id);
        return;
    }

    op->mask = mask;
    op->cursor = cursor;
    op->limit = limit > WH_JOB_LIMIT_MAX ? WH_JOB_LIMIT_MAX : limit;
    op->reply = wh_jobs_reply;
    op->peer = peer;
    op->req_id = m->req_id;
    wh_job_op_submit(op);
}


static void
wh_jobs_change(wh_jobs_t *j, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t id, int to)
{
    wh_jobm_t    *jm;
    wh_job_op_t  *op;

    jm = wh_jobs_find(j, m->workspace, id);

    /* cluster: another node's job is changed in the store */
    if (jm == NULL && !j->cluster) {
        wh_respond_error(peer, m->req_id, 404, "not_found", "no such job");
        return;
    }

    op = wh_job_op_new(j, WH_JOB_OP_STATE, m->workspace, id);

    if (op == NULL) {
        wh_jobs_oom(peer, m->req_id);
        return;
    }

    op->to_status = to;
    op->reply = wh_jobs_reply;
    op->peer = peer;
    op->req_id = m->req_id;
    wh_job_op_submit(op);
}


/* cluster: a job another node runs, from the store */
static void
wh_jobs_read(wh_jobs_t *j, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t id)
{
    wh_job_op_t  *op;

    op = wh_job_op_new(j, WH_JOB_OP_READ, m->workspace, id);

    if (op == NULL) {
        wh_jobs_oom(peer, m->req_id);
        return;
    }

    op->reply = wh_jobs_reply;
    op->peer = peer;
    op->req_id = m->req_id;
    wh_job_op_submit(op);
}


/* ----------------------------------------------------------- routes */


int
wh_jobs_api_path(wh_str_t path)
{
    return (path.len == 5 && memcmp(path.data, "/jobs", 5) == 0)
           || (path.len > 6 && memcmp(path.data, "/jobs/", 6) == 0);
}


static int
wh_jobs_tail_is(wh_str_t rest, const char *slash, const char *tail)
{
    size_t  n = strlen(tail);

    return (size_t) (rest.data + rest.len - slash) == n
           && memcmp(slash, tail, n) == 0;
}


void
wh_jobs_api(wh_jobs_t *j, wh_peer_t *peer, const wh_link_msg_t *m,
    wh_str_t path)
{
    wh_str_t     rest, id;
    wh_jobm_t   *jm;
    const char  *slash;

    if (path.len == 5) {
        if (wh_method_is(m, "POST")) {
            wh_jobs_create(j, peer, m);
        } else if (wh_method_is(m, "GET")) {
            wh_jobs_list(j, peer, m);
        } else {
            wh_respond_error(peer, m->req_id, 405, "method_not_allowed",
                             "use POST or GET");
        }

        return;
    }

    rest.data = path.data + 6;
    rest.len = path.len - 6;
    slash = memchr(rest.data, '/', rest.len);
    id.data = rest.data;
    id.len = slash ? (size_t) (slash - rest.data) : rest.len;

    if (slash == NULL && wh_method_is(m, "GET")) {
        jm = wh_jobs_find(j, m->workspace, id);

        if (jm != NULL) {
            wh_jobs_send_job(peer, m->req_id, 200, jm);
        } else if (j->cluster) {
            wh_jobs_read(j, peer, m, id);
        } else {
            wh_respond_error(peer, m->req_id, 404, "not_found",
                             "no such job");
        }

        return;
    }

    if (slash && wh_jobs_tail_is(rest, slash, "/executions")
        && wh_method_is(m, "GET"))
    {
        wh_jobs_execs(j, peer, m, id);
        return;
    }

    if (slash && wh_jobs_tail_is(rest, slash, "/cancel")
        && wh_method_is(m, "POST"))
    {
        wh_jobs_change(j, peer, m, id, WH_JOB_CANCELLED);
        return;
    }

    if (slash && wh_jobs_tail_is(rest, slash, "/retry")
        && wh_method_is(m, "POST"))
    {
        wh_jobs_change(j, peer, m, id, WH_JOB_RETRY);
        return;
    }

    wh_respond_error(peer, m->req_id, 404, "not_found", "no such resource");
}

/*
 * The fleet jobs (engine.h, jobs.h), two databases of the state
 * (state.h):
 *
 *   jobs       ws "\0" job_id -> the job (JSON: command, payload as its
 *              text, target as its text, status, counts of the rollout;
 *              in a cluster the executions by status, "counts")
 *   job_exec   ws "\0" job_id "\0" be64 index -> be32 series + the
 *              client id: one execution, in target order
 *
 * The status of an execution is its command's (ws, job_id "." index
 * "." series): nothing here changes when a command does.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "state.h"


#define WH_JOB_STRS  7

typedef struct {
    wh_etxn_t          *t;
    wh_engine_job_pt    job;
    wh_engine_exec_pt   exec;
    void               *ctx;
    size_t              plen;
} wh_state_jobs_t;


/* ------------------------------------------------------- encoding */


static int
wh_job_decode(json_t *obj, wh_str_t ws, wh_str_t id, wh_job_t *out)
{
    size_t      i;
    json_t     *counts;
    json_int_t  n;
    wh_str_t    strs[WH_JOB_STRS];
    wh_str_t   *dst[WH_JOB_STRS];
    const char *keys[] = { "command", "payload", "issued_by", "target",
                           "node" };

    memset(out, 0, sizeof(wh_job_t));
    strs[0] = ws;
    strs[1] = id;
    dst[0] = &out->ws;
    dst[1] = &out->id;
    dst[2] = &out->command;
    dst[3] = &out->payload;
    dst[4] = &out->issued_by;
    dst[5] = &out->target;
    dst[6] = &out->node;

    for (i = 0; i < 5; i++) {
        strs[2 + i] = wh_state_str(obj, keys[i]);
    }

    out->status = (int) wh_state_int(obj, "status");
    out->priority = (unsigned) wh_state_int(obj, "priority");
    out->abort = (int) wh_state_int(obj, "abort");
    out->abort_percent = (unsigned) wh_state_int(obj, "abort_percent");
    out->abort_min = (unsigned) wh_state_int(obj, "abort_min");
    out->rate = (uint32_t) wh_state_int(obj, "rate");
    out->series = (uint32_t) wh_state_int(obj, "series");
    out->ttl_ms = wh_state_int(obj, "ttl");
    out->not_before_ms = wh_state_int(obj, "not_before");
    out->created_ms = wh_state_int(obj, "created");
    out->started_ms = wh_state_int(obj, "started");
    out->ended_ms = wh_state_int(obj, "ended");
    out->updated_ms = wh_state_int(obj, "updated");
    out->targets = (uint64_t) wh_state_int(obj, "targets");
    out->cursor = (uint64_t) wh_state_int(obj, "cursor");
    out->skipped = (uint64_t) wh_state_int(obj, "skipped");
    counts = json_object_get(obj, "counts");

    if (json_is_array(counts) && json_array_size(counts) == WH_CMD_NSTATUS)
    {
        for (i = 0; i < WH_CMD_NSTATUS; i++) {
            n = json_integer_value(json_array_get(counts, i));
            out->counts[i] = n > 0 ? (uint64_t) n : 0;
        }

        out->counted = 1;
    }

    return wh_strs_copy(&out->mem, dst, strs, WH_JOB_STRS);
}


static char *
wh_job_encode(const wh_job_t *job)
{
    int        i;
    char      *text;
    json_t    *obj, *counts;
    wh_str_t   cmd, payload, by, target, node;

    node = wh_state_set(job->node);
    cmd = wh_state_set(job->command);
    payload = wh_state_set(job->payload);
    by = wh_state_set(job->issued_by);
    target = wh_state_set(job->target);

    obj = json_pack("{s:s%,s:s%,s:s%,s:s%,s:s%,s:i,s:i,s:i,s:i,s:i,s:I,"
                    "s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
                    "node", node.data, node.len,
                    "command", cmd.data, cmd.len,
                    "payload", payload.data, payload.len,
                    "issued_by", by.data, by.len,
                    "target", target.data, target.len,
                    "status", job->status,
                    "priority", (int) job->priority,
                    "abort", job->abort,
                    "abort_percent", (int) job->abort_percent,
                    "abort_min", (int) job->abort_min,
                    "rate", (json_int_t) job->rate,
                    "series", (json_int_t) job->series,
                    "ttl", (json_int_t) job->ttl_ms,
                    "not_before", (json_int_t) job->not_before_ms,
                    "created", (json_int_t) job->created_ms,
                    "started", (json_int_t) job->started_ms,
                    "ended", (json_int_t) job->ended_ms,
                    "updated", (json_int_t) job->updated_ms,
                    "targets", (json_int_t) job->targets,
                    "cursor", (json_int_t) job->cursor,
                    "skipped", (json_int_t) job->skipped);

    if (obj != NULL && job->counted) {
        counts = json_array();

        for (i = 0; i < WH_CMD_NSTATUS && counts != NULL; i++) {
            (void) json_array_append_new(counts,
                                         json_integer((json_int_t)
                                                      job->counts[i]));
        }

        (void) json_object_set_new(obj, "counts", counts);
    }

    text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);

    return text;
}


/* ------------------------------------------------------------- jobs */


static int
wh_state_job_load(const wh_kv_val_t *v, wh_str_t ws, wh_str_t id,
    wh_job_t *out, wh_err_t *err)
{
    int            rc;
    json_t        *obj;
    json_error_t   je;

    obj = json_loadb(v->data, v->len, 0, &je);

    if (!json_is_object(obj)) {
        json_decref(obj);
        return wh_err(err, 503, "corrupt job %.*s: %s", (int) id.len,
                      id.data, je.text);
    }

    rc = wh_job_decode(obj, ws, id, out);
    json_decref(obj);

    return rc ? wh_err(err, 503, "out of memory") : 0;
}


int
wh_state_job_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_job_t *out,
    wh_err_t *err)
{
    int            rc;
    wh_kv_val_t    v;

    rc = wh_state_get_rec(t, WH_KV_JOBS, ws, id, WH_CMD_ID_MAX, &v,
                          "reading a job", err);

    if (rc <= 0) {
        return rc;
    }

    return wh_state_job_load(&v, ws, id, out, err) ? -1 : 1;
}


int
wh_state_job_put(wh_etxn_t *t, const wh_job_t *job, wh_err_t *err)
{
    return wh_state_save(t, WH_KV_JOBS, job->ws, job->id,
                         wh_job_encode(job), 0, "writing a job", err);
}


int
wh_state_job_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_err_t *err)
{
    int            rc;
    size_t         klen;
    unsigned char  key[WH_STATE_KEY_MAX];

    rc = wh_state_del(t, WH_KV_JOBS, key, wh_key_pair(key, ws, id),
                      "deleting a job", err);

    if (rc < 0) {
        return rc;
    }

    klen = wh_key_seq(key, ws, id, 0);

    return wh_state_del_prefix(t, WH_KV_JOB_EXEC, key, klen - WH_BE64_LEN,
                               klen, "deleting executions", err);
}


static int
wh_state_job_one(void *ctx, const wh_kv_val_t *k, const wh_kv_val_t *v,
    wh_err_t *err)
{
    int               rc;
    wh_str_t          ws, id;
    wh_job_t          job;
    wh_state_jobs_t  *j = ctx;

    if (wh_key_unpair(k->data, k->len, &ws, &id) != 0) {
        return 0;
    }

    if (wh_state_job_load(v, ws, id, &job, err) != 0) {
        /* one corrupt job does not keep the others from loading */
        wh_log_error(j->t->engine->log, "jobs: %s", err->msg);
        return 0;
    }

    rc = j->job(j->ctx, &job, err);
    wh_job_free(&job);

    return rc;
}


int
wh_state_job_each(wh_etxn_t *t, wh_str_t ws, wh_engine_job_pt cb,
    void *ctx, wh_err_t *err)
{
    size_t           plen = 0;
    wh_str_t         none = { "", 0 };
    wh_state_jobs_t  j;
    unsigned char    from[WH_STATE_KEY_MAX];

    memset(&j, 0, sizeof(j));
    j.t = t;
    j.job = cb;
    j.ctx = ctx;

    if (ws.len > WH_WORKSPACE_MAX) {
        return 0;
    }

    /* ws "\0": the workspace's keys only */
    if (ws.len) {
        plen = wh_key_pair(from, ws, none);
    }

    return wh_state_scan(t, WH_KV_JOBS, plen ? from : NULL, plen, plen,
                         wh_state_job_one, &j, "reading jobs", err);
}


/* ------------------------------------------------------- executions */


int
wh_state_exec_put(wh_etxn_t *t, wh_str_t ws, wh_str_t job, uint64_t idx,
    const wh_job_exec_t *x, wh_err_t *err)
{
    unsigned char  key[WH_STATE_KEY_MAX];
    unsigned char  val[4 + WH_CMD_CLIENT_MAX];

    if (x->client_len > WH_CMD_CLIENT_MAX) {
        return wh_err(err, 400, "client id too long");
    }

    val[0] = (unsigned char) (x->series >> 24);
    val[1] = (unsigned char) (x->series >> 16);
    val[2] = (unsigned char) (x->series >> 8);
    val[3] = (unsigned char) x->series;
    memcpy(val + 4, x->client, x->client_len);

    return wh_state_put(t, WH_KV_JOB_EXEC, key,
                        wh_key_seq(key, ws, job, idx), val,
                        4 + x->client_len, "writing an execution", err);
}


static int
wh_state_exec_one(void *ctx, const wh_kv_val_t *k, const wh_kv_val_t *v,
    wh_err_t *err)
{
    wh_job_exec_t         x;
    wh_state_jobs_t      *j = ctx;
    const unsigned char  *p = v->data;

    if (k->len != j->plen + WH_BE64_LEN) {
        return 1;
    }

    if (v->len < 4 || v->len > 4 + WH_CMD_CLIENT_MAX) {
        return 0;
    }

    x.series = ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
               | ((uint32_t) p[2] << 8) | p[3];
    x.client_len = v->len - 4;
    memcpy(x.client, p + 4, x.client_len);

    return j->exec(j->ctx, wh_be64_get((unsigned char *) k->data + j->plen),
                   &x, err);
}


int
wh_state_exec_each(wh_etxn_t *t, wh_str_t ws, wh_str_t job, uint64_t from,
    wh_engine_exec_pt cb, void *ctx, wh_err_t *err)
{
    size_t           klen;
    wh_state_jobs_t  j;
    unsigned char    key[WH_STATE_KEY_MAX];

    memset(&j, 0, sizeof(j));
    klen = wh_key_seq(key, ws, job, from);
    j.t = t;
    j.exec = cb;
    j.ctx = ctx;
    j.plen = klen - WH_BE64_LEN;

    return wh_state_scan(t, WH_KV_JOB_EXEC, key, klen, j.plen,
                         wh_state_exec_one, &j, "reading executions", err);
}


int
wh_state_exec_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t job, uint64_t idx,
    wh_err_t *err)
{
    int            rc;
    unsigned char  key[WH_STATE_KEY_MAX];

    rc = wh_state_del(t, WH_KV_JOB_EXEC, key, wh_key_seq(key, ws, job, idx),
                      "deleting an execution", err);

    return rc < 0 ? rc : 0;
}

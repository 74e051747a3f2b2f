/*
 * The LMDB engine's fleet jobs (engine.h, jobs.h), two databases of the
 * state store:
 *
 *   jobs       ws "\0" job_id -> the job (JSON: command, payload as its
 *              text, target as its text, status, counts of the rollout)
 *   job_exec   ws "\0" job_id "\0" be64 index -> be32 series + the
 *              client id: one execution, in target order
 *
 * The status of an execution is its command's (ws, job_id "." index
 * "." series): nothing here changes when a command does.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "engine_lmdb.h"


#define WH_JOB_STRS  7


/* ------------------------------------------------------- encoding */


static int
wh_job_decode(json_t *obj, wh_str_t ws, wh_str_t id, wh_job_t *out)
{
    size_t      i;
    wh_str_t    strs[WH_JOB_STRS];
    wh_str_t   *dst[WH_JOB_STRS];
    const char *keys[] = { "command", "payload", "issued_by", "target" };

    memset(out, 0, sizeof(wh_job_t));
    strs[0] = ws;
    strs[1] = id;
    dst[0] = &out->ws;
    dst[1] = &out->id;
    dst[2] = &out->command;
    dst[3] = &out->payload;
    dst[4] = &out->issued_by;
    dst[5] = &out->target;

    for (i = 0; i < 4; i++) {
        strs[2 + i] = wh_lmdb_str(obj, keys[i]);
    }

    out->status = (int) wh_lmdb_int(obj, "status");
    out->priority = (unsigned) wh_lmdb_int(obj, "priority");
    out->abort = (int) wh_lmdb_int(obj, "abort");
    out->abort_percent = (unsigned) wh_lmdb_int(obj, "abort_percent");
    out->abort_min = (unsigned) wh_lmdb_int(obj, "abort_min");
    out->rate = (uint32_t) wh_lmdb_int(obj, "rate");
    out->series = (uint32_t) wh_lmdb_int(obj, "series");
    out->ttl_ms = wh_lmdb_int(obj, "ttl");
    out->not_before_ms = wh_lmdb_int(obj, "not_before");
    out->created_ms = wh_lmdb_int(obj, "created");
    out->started_ms = wh_lmdb_int(obj, "started");
    out->ended_ms = wh_lmdb_int(obj, "ended");
    out->updated_ms = wh_lmdb_int(obj, "updated");
    out->targets = (uint64_t) wh_lmdb_int(obj, "targets");
    out->cursor = (uint64_t) wh_lmdb_int(obj, "cursor");
    out->skipped = (uint64_t) wh_lmdb_int(obj, "skipped");

    return wh_strs_copy(&out->mem, dst, strs, 6);
}


static char *
wh_job_encode(const wh_job_t *job)
{
    char      *text;
    json_t    *obj;
    wh_str_t   cmd, payload, by, target;

    cmd = wh_lmdb_set(job->command);
    payload = wh_lmdb_set(job->payload);
    by = wh_lmdb_set(job->issued_by);
    target = wh_lmdb_set(job->target);

    obj = json_pack("{s:s%,s:s%,s:s%,s:s%,s:i,s:i,s:i,s:i,s:i,s:I,s:I,"
                    "s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}",
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

    text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);

    return text;
}


/* ------------------------------------------------------------- jobs */


static int
wh_lmdb_job_load(const MDB_val *v, wh_str_t ws, wh_str_t id, wh_job_t *out,
    wh_err_t *err)
{
    int            rc;
    json_t        *obj;
    json_error_t   je;

    obj = json_loadb(v->mv_data, v->mv_size, 0, &je);

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
wh_lmdb_job_get(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_job_t *out,
    wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[WH_LMDB_KEY_MAX];

    if (id.len == 0 || id.len > WH_CMD_ID_MAX) {
        return 0;
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, id);

    rc = mdb_get(wh_lmdb_stxn(t), wh_lmdb_of(t)->jobs_db, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return wh_mdb_error(rc, "reading a job", err);
    }

    return wh_lmdb_job_load(&v, ws, id, out, err) ? -1 : 1;
}


int
wh_lmdb_job_put(wh_etxn_t *t, const wh_job_t *job, wh_err_t *err)
{
    int            rc;
    char          *text;
    MDB_val        k, v;
    unsigned char  key[WH_LMDB_KEY_MAX];

    text = wh_job_encode(job);

    if (text == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, job->ws, job->id);
    v.mv_data = text;
    v.mv_size = strlen(text);

    rc = mdb_put(wh_lmdb_stxn(t), wh_lmdb_of(t)->jobs_db, &k, &v, 0);
    free(text);

    return rc ? wh_mdb_error(rc, "writing a job", err) : 0;
}


int
wh_lmdb_job_delete(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_err_t *err)
{
    int            rc;
    size_t         plen;
    MDB_val        k, v;
    MDB_cursor    *cur;
    unsigned char  key[WH_LMDB_KEY_MAX];

    k.mv_data = key;
    k.mv_size = wh_key_pair(key, ws, id);
    rc = mdb_del(wh_lmdb_stxn(t), wh_lmdb_of(t)->jobs_db, &k, NULL);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return wh_mdb_error(rc, "deleting a job", err);
    }

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->exec_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    k.mv_size = wh_key_seq(key, ws, id, 0);
    plen = k.mv_size - WH_BE64_LEN;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != plen + WH_BE64_LEN
            || memcmp(k.mv_data, key, plen) != 0)
        {
            break;
        }

        rc = mdb_cursor_del(cur, 0);

        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc && rc != MDB_NOTFOUND
           ? wh_mdb_error(rc, "deleting executions", err) : 0;
}


int
wh_lmdb_job_each(wh_etxn_t *t, wh_engine_job_pt cb, void *ctx,
    wh_err_t *err)
{
    int           rc, stop = 0;
    MDB_val       k, v;
    wh_str_t      ws, id;
    wh_job_t      job;
    MDB_cursor   *cur;

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->jobs_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !stop;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (wh_key_unpair(k.mv_data, k.mv_size, &ws, &id) != 0) {
            continue;
        }

        if (wh_lmdb_job_load(&v, ws, id, &job, err) != 0) {
            /* one corrupt job does not keep the others from loading */
            wh_log_error(t->engine->log, "jobs: %s", err->msg);
            continue;
        }

        stop = cb(ctx, &job, err);
        wh_job_free(&job);
    }

    mdb_cursor_close(cur);

    if (stop) {
        return stop < 0 ? -1 : 0;
    }

    return rc == MDB_NOTFOUND ? 0 : wh_mdb_error(rc, "loading jobs", err);
}


/* ------------------------------------------------------- executions */


int
wh_lmdb_exec_put(wh_etxn_t *t, wh_str_t ws, wh_str_t job, uint64_t idx,
    const wh_job_exec_t *x, wh_err_t *err)
{
    int            rc;
    MDB_val        k, v;
    unsigned char  key[WH_LMDB_KEY_MAX];
    unsigned char  val[4 + WH_CMD_CLIENT_MAX];

    if (x->client_len > WH_CMD_CLIENT_MAX) {
        return wh_err(err, 400, "client id too long");
    }

    val[0] = (unsigned char) (x->series >> 24);
    val[1] = (unsigned char) (x->series >> 16);
    val[2] = (unsigned char) (x->series >> 8);
    val[3] = (unsigned char) x->series;
    memcpy(val + 4, x->client, x->client_len);

    k.mv_data = key;
    k.mv_size = wh_key_seq(key, ws, job, idx);
    v.mv_data = val;
    v.mv_size = 4 + x->client_len;

    rc = mdb_put(wh_lmdb_stxn(t), wh_lmdb_of(t)->exec_db, &k, &v, 0);

    return rc ? wh_mdb_error(rc, "writing an execution", err) : 0;
}


int
wh_lmdb_exec_each(wh_etxn_t *t, wh_str_t ws, wh_str_t job, uint64_t from,
    wh_engine_exec_pt cb, void *ctx, wh_err_t *err)
{
    int             rc, stop = 0;
    size_t          plen;
    MDB_val         k, v;
    MDB_cursor     *cur;
    wh_job_exec_t   x;
    unsigned char   key[WH_LMDB_KEY_MAX];
    unsigned char  *p;

    rc = mdb_cursor_open(wh_lmdb_stxn(t), wh_lmdb_of(t)->exec_db, &cur);

    if (rc != 0) {
        return wh_mdb_error(rc, "opening a cursor", err);
    }

    k.mv_data = key;
    k.mv_size = wh_key_seq(key, ws, job, from);
    plen = k.mv_size - WH_BE64_LEN;

    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && !stop;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
    {
        if (k.mv_size != plen + WH_BE64_LEN
            || memcmp(k.mv_data, key, plen) != 0)
        {
            break;
        }

        if (v.mv_size < 4 || v.mv_size > 4 + WH_CMD_CLIENT_MAX) {
            continue;
        }

        p = v.mv_data;
        x.series = ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
                   | ((uint32_t) p[2] << 8) | p[3];
        x.client_len = v.mv_size - 4;
        memcpy(x.client, p + 4, x.client_len);

        stop = cb(ctx, wh_be64_get((unsigned char *) k.mv_data + plen), &x,
                  err);
    }

    mdb_cursor_close(cur);

    if (stop) {
        return stop < 0 ? -1 : 0;
    }

    return rc == 0 || rc == MDB_NOTFOUND
           ? 0 : wh_mdb_error(rc, "reading executions", err);
}


int
wh_lmdb_job_open_dbs(wh_engine_lmdb_t *e, MDB_txn *txn, wh_err_t *err)
{
    int  rc;

    if ((rc = mdb_dbi_open(txn, "jobs", MDB_CREATE, &e->jobs_db)) != 0
        || (rc = mdb_dbi_open(txn, "job_exec", MDB_CREATE, &e->exec_db))
           != 0)
    {
        return wh_mdb_error(rc, "opening the job databases", err);
    }

    return 0;
}

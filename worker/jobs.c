/*
 * Fleet jobs: the state in memory, the ops of the batch (apply decides
 * from the txn, done changes memory) and the timer that starts, rolls
 * out, aborts and finishes jobs and reports their progress.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wh_time.h"
#include "jsonw.h"
#include "jobs_internal.h"


#define WH_JOB_TICK_MS       20
#define WH_JOB_IDLE_TICK_MS  1000      /* nothing rolling out: expiry,
                                        * pruning, take-overs only */
#define WH_JOB_CHUNK         1000      /* executions written per turn */
#define WH_JOB_RELEASE_MAX   500       /* commands released per turn */
#define WH_JOB_SCAN_MAX      4000      /* executions looked at per turn */
#define WH_JOB_SWEEP_MAX     500       /* commands cancelled per turn */
#define WH_JOB_PROGRESS_MS   1000
#define WH_JOB_PRUNE_MAX     250       /* executions deleted per turn */
#define WH_JOB_KEY_MAX       (WH_WORKSPACE_MAX + 1 + WH_CMD_ID_MAX)
/* cluster */
#define WH_JOB_SAVE_MS       1000      /* counts stored at most so often */
#define WH_JOB_ADOPT_MS      2000      /* nodes gone looked for */
#define WH_JOB_GONE_WINDOW_MS  600000  /* their jobs looked for so long */


static const char  *wh_job_status_names[WH_JOB_NSTATUS] = {
    "creating", "scheduled", "in_progress", "completed", "aborted",
    "cancelled"
};

const char *
wh_job_status_name(int status)
{
    return status >= 0 && status < WH_JOB_NSTATUS
           ? wh_job_status_names[status] : "unknown";
}


int
wh_job_status_parse(const char *name, size_t len)
{
    int  i;

    for (i = 0; i < WH_JOB_NSTATUS; i++) {
        if (strlen(wh_job_status_names[i]) == len
            && memcmp(wh_job_status_names[i], name, len) == 0)
        {
            return i;
        }
    }

    return -1;
}


const char *
wh_job_exec_status(int status)
{
    const char  *name;

    if (status & WH_EXEC_WAITING) {
        return "pending";
    }

    name = wh_cmd_status_name((wh_cmd_status_e) status);

    return name ? name : "unknown";
}


static int
wh_job_final(int status)
{
    return status >= WH_JOB_COMPLETED;
}


/* the counts' index of an execution's byte */
static int
wh_exec_count_of(uint8_t b)
{
    return (b & WH_EXEC_WAITING) ? WH_CMD_PENDING : (b & WH_EXEC_STATUS);
}


static void
wh_exec_set(wh_jobm_t *jm, uint64_t idx, uint8_t b)
{
    int  from, to;

    if (idx >= jm->rec.targets) {
        return;
    }

    from = wh_exec_count_of(jm->exec[idx]);
    to = wh_exec_count_of(b);

    if (from < WH_CMD_NSTATUS && jm->counts[from] > 0) {
        jm->counts[from]--;
    }

    if (to < WH_CMD_NSTATUS) {
        jm->counts[to]++;
    }

    jm->exec[idx] = b;
    jm->changed = 1;
    jm->unsaved = 1;
}


/* "<job>.<idx>.<series>" into buf (WH_CMD_ID_MAX + 1 bytes) */
static wh_str_t
wh_exec_cmd_id(char *buf, wh_str_t job, uint64_t idx, uint32_t series)
{
    int       n;
    wh_str_t  s;

    n = snprintf(buf, WH_CMD_ID_MAX + 1, "%.*s.%" PRIu64 ".%" PRIu32,
                 (int) job.len, job.data, idx, series);

    s.data = buf;
    s.len = n > 0 && n <= WH_CMD_ID_MAX ? (size_t) n : 0;

    return s;
}


/* ------------------------------------------------------ job in memory */


static size_t
wh_job_key(unsigned char *buf, wh_str_t ws, wh_str_t id)
{
    if (ws.len > WH_WORKSPACE_MAX || id.len > WH_CMD_ID_MAX) {
        return 0;
    }

    memcpy(buf, ws.data, ws.len);
    buf[ws.len] = '\0';
    memcpy(buf + ws.len + 1, id.data, id.len);

    return ws.len + 1 + id.len;
}


wh_jobm_t *
wh_jobs_find(wh_jobs_t *j, wh_str_t ws, wh_str_t id)
{
    size_t         klen;
    unsigned char  key[WH_JOB_KEY_MAX];

    klen = wh_job_key(key, ws, id);

    return klen ? wh_map_get(&j->jobs, key, klen) : NULL;
}


/* a copy of rec (its strings included) into dst; -1 out of memory */
static int
wh_job_rec_copy(wh_job_t *dst, const wh_job_t *rec)
{
    wh_str_t    strs[7];
    wh_str_t   *d[7];
    wh_job_t    tmp = *rec;

    strs[0] = rec->ws;
    strs[1] = rec->id;
    strs[2] = rec->command;
    strs[3] = rec->payload;
    strs[4] = rec->issued_by;
    strs[5] = rec->target;
    d[0] = &tmp.ws;
    d[1] = &tmp.id;
    d[2] = &tmp.command;
    d[3] = &tmp.payload;
    d[4] = &tmp.issued_by;
    strs[6] = rec->node;
    d[5] = &tmp.target;
    d[6] = &tmp.node;
    tmp.mem = NULL;

    if (wh_strs_copy(&tmp.mem, d, strs, 7) != 0) {
        return -1;
    }

    wh_job_free(dst);
    *dst = tmp;

    return 0;
}


/* a job for memory, every execution waiting (until told otherwise) */
static wh_jobm_t *
wh_jobm_new(const wh_job_t *rec)
{
    uint64_t        i;
    wh_jobm_t      *jm;

    jm = calloc(1, sizeof(wh_jobm_t));

    if (jm == NULL) {
        return NULL;
    }

    jm->exec = malloc(rec->targets ? rec->targets : 1);

    if (jm->exec == NULL || wh_job_rec_copy(&jm->rec, rec) != 0) {
        wh_job_free(&jm->rec);
        free(jm->exec);
        free(jm);
        return NULL;
    }

    for (i = 0; i < rec->targets; i++) {
        jm->exec[i] = WH_EXEC_WAITING | WH_CMD_PENDING;
    }

    jm->counts[WH_CMD_PENDING] = rec->targets;
    jm->filled_ms = wh_loop_now();
    jm->progress_ms = 0;

    return jm;
}


static int
wh_jobs_insert(wh_jobs_t *j, wh_jobm_t *jm)
{
    size_t          klen;
    unsigned char   key[WH_JOB_KEY_MAX];

    klen = wh_job_key(key, jm->rec.ws, jm->rec.id);

    return klen && wh_map_put(&j->jobs, key, klen, jm) != NULL ? 0 : -1;
}


/* a new job in memory */
static wh_jobm_t *
wh_jobs_add(wh_jobs_t *j, const wh_job_t *rec)
{
    wh_jobm_t  *jm;

    jm = wh_jobm_new(rec);

    if (jm != NULL && wh_jobs_insert(j, jm) != 0) {
        wh_job_free(&jm->rec);
        free(jm->exec);
        free(jm);
        return NULL;
    }

    return jm;
}


void
wh_jobs_totals(wh_jobs_t *j, uint64_t *jobs, uint64_t *execs)
{
    int              s;
    wh_jobm_t       *jm;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    memset(jobs, 0, WH_JOB_NSTATUS * sizeof(uint64_t));
    memset(execs, 0, WH_CMD_NSTATUS * sizeof(uint64_t));

    while ((e = wh_map_next(&j->jobs, &it)) != NULL) {
        jm = e->value;

        if (jm->rec.status >= 0 && jm->rec.status < WH_JOB_NSTATUS) {
            jobs[jm->rec.status]++;
        }

        for (s = 0; s < WH_CMD_NSTATUS; s++) {
            execs[s] += jm->counts[s];
        }
    }
}


/* ------------------------------------------------------------ JSON */


static int
wh_job_json_counts(wh_buf_t *b, const wh_jobm_t *jm)
{
    int  s, rc;

    rc = wh_jw_open(b, "counts", '{');

    for (s = 0; s < WH_CMD_NSTATUS; s++) {
        rc |= wh_jw_int(b, wh_cmd_status_name((wh_cmd_status_e) s),
                        (int64_t) jm->counts[s]);
    }

    return rc | wh_jw_close(b, '}');
}


static int
wh_job_json_members(wh_buf_t *b, const wh_jobm_t *jm)
{
    int              rc;
    const wh_job_t  *r = &jm->rec;

    rc = wh_jw_str(b, "job_id", r->id.data, r->id.len);
    rc |= wh_jw_cstr(b, "status", wh_job_status_name(r->status));
    rc |= wh_jw_int(b, "targets", (int64_t) r->targets);
    rc |= wh_job_json_counts(b, jm);

    return rc;
}


int
wh_job_json(wh_buf_t *b, const wh_jobm_t *jm)
{
    int              rc;
    const wh_job_t  *r = &jm->rec;

    rc = wh_jw_open(b, NULL, '{');
    rc |= wh_job_json_members(b, jm);
    rc |= wh_jw_str(b, "command", r->command.data, r->command.len);
    rc |= wh_jw_raw(b, "payload", r->payload.data, r->payload.len);
    rc |= wh_jw_raw(b, "target", r->target.data, r->target.len);
    rc |= wh_jw_int(b, "priority", r->priority);
    rc |= wh_jw_int(b, "series", r->series);
    rc |= wh_jw_int(b, "released", (int64_t) r->cursor);
    rc |= wh_jw_int(b, "skipped", (int64_t) r->skipped);

    if (r->ttl_ms) {
        rc |= wh_jw_int(b, "ttl", r->ttl_ms / WH_MS_PER_S);
    }

    rc |= wh_jw_open(b, "rollout", '{');

    if (r->rate) {
        rc |= wh_jw_int(b, "max_per_minute", r->rate);
    } else {
        rc |= wh_jw_raw(b, "max_per_minute", "null", 4);
    }

    rc |= wh_jw_close(b, '}');

    if (r->abort) {
        rc |= wh_jw_open(b, "abort", '{');
        rc |= wh_jw_int(b, "failure_percent", r->abort_percent);
        rc |= wh_jw_int(b, "min_executed", r->abort_min);
        rc |= wh_jw_close(b, '}');
    }

    if (r->issued_by.len) {
        rc |= wh_jw_issuer(b, "issued_by", r->issued_by.data,
                           r->issued_by.len);
    }

    rc |= wh_jw_time(b, "not_before", r->not_before_ms);
    rc |= wh_jw_time(b, "created_at", r->created_ms);
    rc |= wh_jw_time(b, "started_at", r->started_ms);
    rc |= wh_jw_time(b, "ended_at", r->ended_ms);
    rc |= wh_jw_time(b, "updated_at", r->updated_ms);

    return rc | wh_jw_close(b, '}');
}


/* a stored job seen as memory would have it: its stored counts (all
 * pending if it has none); strings are rec's */
static void
wh_job_view(wh_jobm_t *v, const wh_job_t *rec)
{
    memset(v, 0, sizeof(wh_jobm_t));
    v->rec = *rec;

    if (rec->counted) {
        memcpy(v->counts, rec->counts, sizeof(v->counts));
    } else {
        v->counts[WH_CMD_PENDING] = rec->targets;
    }
}


int
wh_job_json_rec(wh_buf_t *b, const wh_job_t *rec)
{
    wh_jobm_t  v;

    wh_job_view(&v, rec);

    return wh_job_json(b, &v);
}


/* a job event on "$commands" of its workspace */
static void
wh_job_event(wh_jobs_t *j, wh_jobm_t *jm, const char *type)
{
    int        rc;
    wh_err_t   err;
    wh_str_t   ch = { "$commands", 9 }, t, data;
    wh_buf_t   b = { NULL, 0, 0 };

    rc = wh_jw_open(&b, NULL, '{') | wh_job_json_members(&b, jm);

    if (jm->rec.rate) {
        rc |= wh_jw_int(&b, "max_per_minute", jm->rec.rate);
    }

    rc |= wh_jw_close(&b, '}');

    t = wh_cstr(type);
    data.data = (const char *) b.data;
    data.len = b.len;

    if (rc != 0
        || wh_channels_enqueue(j->channels, WH_PUB_DAEMON, NULL, 0,
                               jm->rec.ws, ch, t, data, &err) != 0)
    {
        wh_log_error(j->log, "jobs: %s event of %.*s not published", type,
                     (int) jm->rec.id.len, jm->rec.id.data);
    }

    wh_buf_free(&b);
    jm->changed = 0;
    jm->progress_ms = wh_loop_now();
}


/* -------------------------------------------------------------- ops */


wh_job_op_t *
wh_job_op_new(wh_jobs_t *j, wh_job_op_e kind, wh_str_t ws, wh_str_t id)
{
    wh_str_t      strs[2];
    wh_str_t     *dst[2];
    wh_job_op_t  *op;

    op = calloc(1, sizeof(wh_job_op_t));

    if (op == NULL) {
        return NULL;
    }

    strs[0] = ws;
    strs[1] = id;
    dst[0] = &op->rec.ws;
    dst[1] = &op->rec.id;

    if (wh_strs_copy(&op->mem, dst, strs, 2) != 0) {
        free(op);
        return NULL;
    }

    op->j = j;
    op->kind = kind;
    wh_cmd_notes_init(&op->notes);

    return op;
}


static void wh_job_op_done(wh_op_t *base, int committed,
    const wh_err_t *err);
static int wh_job_op_apply(wh_op_t *base, wh_etxn_t *t, wh_err_t *err);


static void
wh_job_recs_free(wh_job_op_t *op)
{
    while (op->nrecs > 0) {
        wh_job_free(&op->recs[--op->nrecs]);
    }

    free(op->recs);
    op->recs = NULL;
}


static void
wh_jobm_free(wh_jobm_t *jm)
{
    if (jm != NULL) {
        wh_job_free(&jm->rec);
        free(jm->exec);
        free(jm);
    }
}


/* this node runs the job's rollout */
static int
wh_job_mine(const wh_jobs_t *j, const wh_job_t *rec)
{
    return !j->cluster || wh_str_eq(rec->node, wh_cstr(j->engine->node_id));
}


/* the job's record with, in a cluster, the counts of the node that
 * runs it, for the others to read */
static int
wh_job_put(wh_job_op_t *op, wh_etxn_t *t, wh_job_t *rec, wh_err_t *err)
{
    wh_jobm_t  *jm;

    if (op->j->cluster
        && (jm = wh_jobs_find(op->j, rec->ws, rec->id)) != NULL)
    {
        memcpy(rec->counts, jm->counts, sizeof(rec->counts));
        rec->counted = 1;
    }

    return wh_etxn_ops(t)->job_put(t, rec, err);
}


void
wh_job_op_free(wh_job_op_t *op)
{
    size_t  i;

    for (i = 0; i < op->nitems; i++) {
        free(op->items[i].client);
        free(op->items[i].command_id);
        free(op->items[i].error);
    }

    wh_cmd_notes_done(op->j->commands, &op->notes, 0);
    wh_job_free(&op->after_rec);
    wh_job_recs_free(op);
    wh_jobm_free(op->loaded);
    free(op->from_node);
    free(op->items);
    free(op->clients);
    free(op->mem);
    free(op);
}


/*
 * The tick runs every WH_JOB_TICK_MS while a job rolls out, and once a
 * second when none does (an idle daemon does not wake 50 times a
 * second): whatever may start work brings the fast tick back.
 */
static void
wh_jobs_wake(wh_jobs_t *j)
{
    if (j->timer.interval == WH_JOB_TICK_MS || j->timer.handler == NULL) {
        return;
    }

    j->timer.interval = WH_JOB_TICK_MS;
    wh_loop_timer_by(&j->timer, WH_JOB_TICK_MS);
}


void
wh_job_op_submit(wh_job_op_t *op)
{
    op->op.apply = wh_job_op_apply;
    op->op.done = wh_job_op_done;
    wh_batch_add(op->j->batch, &op->op, 0);
    wh_jobs_wake(op->j);
}


/* ------------------------------------------------------ apply: create */


typedef struct {
    wh_job_op_t  *op;
    wh_etxn_t    *t;
} wh_job_txn_t;


static int
wh_job_add_exec(wh_job_op_t *op, wh_etxn_t *t, wh_str_t client,
    wh_err_t *err)
{
    wh_job_exec_t  x;

    if (client.len > WH_CMD_CLIENT_MAX) {
        op->next_skipped++;
        return 0;
    }

    x.series = 0;
    x.client_len = client.len;
    memcpy(x.client, client.data, client.len);

    return wh_etxn_ops(t)->exec_put(t, op->rec.ws, op->rec.id,
                                    op->next_written++, &x, err);
}


/* the next chunk of a client list: registered clients become
 * executions */
static int
wh_job_create_list(wh_job_op_t *op, wh_etxn_t *t, wh_err_t *err)
{
    int       rc;
    uint64_t  end;

    end = op->pos + WH_JOB_CHUNK;
    end = end > op->nclients ? op->nclients : end;

    for (op->next_pos = op->pos; op->next_pos < end; op->next_pos++) {
        rc = wh_etxn_ops(t)->client_get(t, op->rec.ws,
                                        op->clients[op->next_pos], NULL,
                                        err);

        if (rc < 0) {
            return -1;
        }

        if (rc == 0) {
            op->next_skipped++;
            continue;
        }

        if (wh_job_add_exec(op, t, op->clients[op->next_pos], err) != 0) {
            return -1;
        }
    }

    op->finished = op->next_pos == op->nclients;

    return 0;
}


/* the next page of the registry: its clients (of the type) become
 * executions */
static int
wh_job_create_scan(wh_job_op_t *op, wh_etxn_t *t, wh_err_t *err)
{
    int                rc = 0;
    size_t             i;
    wh_str_t           after;
    wh_client_t       *cl;
    wh_client_list_t   list;

    after.data = op->after;
    after.len = op->after_len;

    if (wh_etxn_ops(t)->client_list(t, op->rec.ws, after, WH_JOB_CHUNK,
                                    &list, err) != 0)
    {
        return -1;
    }

    for (i = 0; rc == 0 && i < list.n; i++) {
        cl = &list.items[i];

        if (op->target == WH_JOB_TARGET_TYPE
            && (cl->client_type.len != op->client_type.len
                || memcmp(cl->client_type.data, op->client_type.data,
                          cl->client_type.len) != 0))
        {
            continue;
        }

        rc = wh_job_add_exec(op, t, cl->id, err);
    }

    if (list.n) {
        cl = &list.items[list.n - 1];
        op->next_after_len = cl->id.len;
        memcpy(op->next_after, cl->id.data, cl->id.len);
    }

    op->finished = !list.more;
    wh_client_list_free(&list);

    return rc;
}


static int
wh_job_apply_create(wh_job_op_t *op, wh_etxn_t *t, int64_t now,
    wh_err_t *err)
{
    int  rc;

    op->next_written = op->written;
    op->next_skipped = op->skipped;
    op->next_after_len = op->after_len;
    memcpy(op->next_after, op->after, op->after_len);
    op->finished = 0;
    op->op.sync = 1;

    rc = op->target == WH_JOB_TARGET_LIST ? wh_job_create_list(op, t, err)
                                          : wh_job_create_scan(op, t, err);

    if (rc != 0) {
        return -1;
    }

    op->rec.targets = op->next_written;
    op->rec.skipped = op->next_skipped;
    op->rec.updated_ms = now;
    op->rec.status = WH_JOB_CREATING;

    if (op->finished) {
        op->rec.status = op->rec.not_before_ms > now ? WH_JOB_SCHEDULED
                                                     : WH_JOB_IN_PROGRESS;
        op->rec.started_ms = op->rec.status == WH_JOB_IN_PROGRESS ? now : 0;

        if (op->rec.targets == 0) {
            op->rec.status = WH_JOB_COMPLETED;
            op->rec.ended_ms = now;
        }
    }

    return wh_etxn_ops(t)->job_put(t, &op->rec, err);
}


/* ----------------------------------------------------- apply: release */


typedef struct {
    wh_job_op_t  *op;
    wh_etxn_t    *t;
    wh_jobm_t    *jm;
    wh_job_t     *rec;
    int64_t       now;
    uint64_t      scanned;
} wh_job_release_t;


static int
wh_job_release_one(void *ctx, uint64_t idx, const wh_job_exec_t *x,
    wh_err_t *err)
{
    int                rc;
    char               id[WH_CMD_ID_MAX + 1];
    wh_job_exec_t      nx;
    wh_command_t       cmd;
    wh_job_release_t  *r = ctx;
    wh_job_t          *rec = r->rec;
    wh_job_op_t       *op = r->op;

    if (op->used >= op->allow || r->scanned >= WH_JOB_SCAN_MAX
        || idx >= rec->targets)
    {
        return 1;
    }

    r->scanned++;
    op->cursor = idx + 1;

    /* due: never released in the first series, or waiting for a retry
     * (memory's bit: a failure of an earlier series) */
    if (!(x->series == 0 ? rec->series == 1
          : x->series < rec->series
            && (r->jm->exec[idx] & WH_EXEC_WAITING)))
    {
        return 0;
    }

    memset(&cmd, 0, sizeof(cmd));
    cmd.ws = rec->ws;
    cmd.id = wh_exec_cmd_id(id, rec->id, idx, rec->series);
    cmd.client_id.data = x->client;
    cmd.client_id.len = x->client_len;
    cmd.command = rec->command;
    cmd.payload = rec->payload;
    cmd.issued_by = rec->issued_by;
    cmd.priority = rec->priority;
    cmd.job = rec->id;
    cmd.job_idx = idx;

    if (cmd.id.len == 0) {
        return wh_err(err, 500, "execution id too long");
    }

    nx = *x;
    nx.series = rec->series;

    rc = wh_commands_insert(op->j->commands, r->t, &cmd, rec->ttl_ms,
                            r->now, &op->notes, err) != 0
         || wh_etxn_ops(r->t)->exec_put(r->t, rec->ws, rec->id, idx, &nx,
                                        err) != 0;
    wh_command_free(&cmd);

    if (rc) {
        return -1;
    }

    op->used++;

    return 0;
}


static int
wh_job_apply_release(wh_job_op_t *op, wh_etxn_t *t, wh_jobm_t *jm,
    int64_t now, wh_err_t *err)
{
    wh_job_release_t   r;
    wh_job_t          *rec = &op->after_rec;

    if (rec->status != WH_JOB_IN_PROGRESS || rec->cursor >= rec->targets) {
        return 0;
    }

    r.op = op;
    r.t = t;
    r.jm = jm;
    r.rec = rec;
    r.now = now;
    r.scanned = 0;
    op->cursor = rec->cursor;

    if (wh_etxn_ops(t)->exec_each(t, rec->ws, rec->id, rec->cursor,
                                  wh_job_release_one, &r, err) != 0)
    {
        return -1;
    }

    if (op->cursor == rec->cursor) {
        /* the executions ended early (a corrupt store): none beyond */
        op->cursor = rec->targets;
    }

    op->op.sync = 1;
    rec->cursor = op->cursor;
    rec->updated_ms = now;

    return wh_job_put(op, t, rec, err);
}


/* ------------------------------------------------------- apply: state */


static int
wh_job_apply_state(wh_job_op_t *op, wh_etxn_t *t, int64_t now,
    wh_err_t *err)
{
    wh_job_t  *rec = &op->after_rec;

    switch (op->to_status) {

    case WH_JOB_IN_PROGRESS:
        if (rec->status != WH_JOB_SCHEDULED) {
            return 0;
        }

        rec->started_ms = now;
        break;

    case WH_JOB_COMPLETED:
        if (rec->status != WH_JOB_IN_PROGRESS) {
            return 0;
        }

        rec->ended_ms = now;
        break;

    case WH_JOB_ABORTED:
    case WH_JOB_CANCELLED:
        if (wh_job_final(rec->status) || rec->status == WH_JOB_CREATING) {
            op->outcome = WH_JOB_CONFLICT;
            return 0;
        }

        rec->ended_ms = now;
        break;

    default:
        /* a retry: a new series over the failed ones of an ended job */
        if (!wh_job_final(rec->status)) {
            op->outcome = WH_JOB_CONFLICT;
            return 0;
        }

        rec->series++;
        rec->cursor = 0;
        rec->ended_ms = 0;
        op->op.sync = 1;
        rec->status = WH_JOB_IN_PROGRESS;
        rec->updated_ms = now;

        return wh_job_put(op, t, rec, err);
    }

    op->op.sync = 1;
    rec->status = op->to_status;
    rec->updated_ms = now;

    return wh_job_put(op, t, rec, err);
}


/* ------------------------------------------------------- apply: sweep */


/* the series of a released pending execution's command is the job's:
 * earlier series ended (failed) before a retry made a new one */
static int
wh_job_apply_sweep(wh_job_op_t *op, wh_etxn_t *t, wh_jobm_t *jm,
    int64_t now, wh_err_t *err)
{
    int        rc, st;
    char       id[WH_CMD_ID_MAX + 1];
    uint64_t   i, done = 0;
    wh_str_t   cid;

    /* what was no longer pending (another node of a cluster sent it):
     * memory learns it in done */
    op->nitems = 0;

    if (op->items == NULL) {
        op->items = calloc(WH_JOB_SWEEP_MAX, sizeof(wh_job_exec_item_t));

        if (op->items == NULL) {
            return wh_err(err, 503, "out of memory");
        }
    }

    for (i = op->from; i < jm->rec.targets && done < WH_JOB_SWEEP_MAX;
         i++)
    {
        if (jm->exec[i] != WH_CMD_PENDING) {
            continue;
        }

        done++;
        cid = wh_exec_cmd_id(id, jm->rec.id, i, jm->rec.series);
        rc = wh_commands_cancel_pending(op->j->commands, t, jm->rec.ws, cid,
                                        jm->rec.status == WH_JOB_ABORTED
                                        ? "job aborted" : "job cancelled",
                                        now, &op->notes, &st, err);

        if (rc < 0) {
            return -1;
        }

        if (rc == 0 && st != WH_CMD_PENDING) {
            op->items[op->nitems].idx = i;
            op->items[op->nitems].status = st;
            op->nitems++;
        }
    }

    op->to = i;
    op->op.sync |= done > 0;

    return 0;
}


/* ------------------------------------------------------- apply: execs */


typedef struct {
    wh_job_op_t     *op;
    wh_etxn_t       *t;
    wh_jobm_t       *jm;          /* NULL: a job another node runs */
    const wh_job_t  *rec;
} wh_job_list_t;


static char *
wh_job_strdup(wh_str_t s)
{
    char  *p;

    p = malloc(s.len + 1);

    if (p != NULL) {
        memcpy(p, s.data, s.len);
        p[s.len] = '\0';
    }

    return p;
}


/* an execution's status from the store: its command's (status; -1
 * there is none), waiting while the rollout has not reached it or will
 * retry it */
static uint8_t
wh_job_stored_status(const wh_job_t *rec, const wh_job_exec_t *x,
    int status)
{
    uint8_t  b;

    if (x->series == 0) {
        return rec->series == 1 && !wh_job_final(rec->status)
               ? WH_EXEC_WAITING | WH_CMD_PENDING : WH_CMD_CANCELLED;
    }

    b = status >= 0 ? (uint8_t) status : WH_CMD_CANCELLED;

    if (x->series < rec->series
        && (b == WH_CMD_FAILED || b == WH_CMD_EXPIRED)
        && !wh_job_final(rec->status))
    {
        b |= WH_EXEC_WAITING;
    }

    return b;
}


static int
wh_job_list_one(void *ctx, uint64_t idx, const wh_job_exec_t *x,
    wh_err_t *err)
{
    int                  rc = 0, st;
    char                 id[WH_CMD_ID_MAX + 1];
    wh_str_t             cid, client;
    wh_command_t         cmd;
    wh_job_list_t       *l = ctx;
    wh_job_op_t         *op = l->op;
    wh_job_exec_item_t  *it;

    if (idx >= l->rec->targets) {
        return 1;
    }

    cid = wh_exec_cmd_id(id, l->rec->id, idx, x->series);

    if (x->series && (l->jm == NULL || !op->mask)) {
        rc = wh_etxn_ops(l->t)->cmd_get(l->t, l->rec->ws, cid, &cmd, err);

        if (rc < 0) {
            return -1;
        }
    }

    st = l->jm ? l->jm->exec[idx]
               : wh_job_stored_status(l->rec, x, rc == 1
                                                 ? (int) cmd.state.status
                                                 : -1);

    if ((op->mask
         && !(op->mask & (1u << wh_exec_count_of((uint8_t) st))))
        || op->nitems == op->limit)
    {
        if (rc == 1) {
            wh_command_free(&cmd);
        }

        if (op->nitems == op->limit) {
            op->next_idx = idx;
            return 1;
        }

        return 0;
    }

    it = &op->items[op->nitems];
    memset(it, 0, sizeof(wh_job_exec_item_t));
    it->idx = idx;
    it->status = st;
    client.data = x->client;
    client.len = x->client_len;
    it->client = wh_job_strdup(client);
    op->nitems++;

    if (x->series && l->jm != NULL && op->mask) {
        rc = wh_etxn_ops(l->t)->cmd_get(l->t, l->rec->ws, cid, &cmd, err);
    }

    if (rc < 0 || it->client == NULL) {
        if (rc == 1) {
            wh_command_free(&cmd);
        }

        return rc < 0 ? -1 : wh_err(err, 503, "out of memory");
    }

    if (x->series == 0) {
        return 0;
    }

    it->command_id = wh_job_strdup(cid);

    if (rc == 1) {
        it->attempt = cmd.state.attempt;

        if (cmd.error.len || cmd.reason.len) {
            it->error = wh_job_strdup(cmd.error.len ? cmd.error
                                                    : cmd.reason);
        }

        wh_command_free(&cmd);
    }

    return it->command_id == NULL ? wh_err(err, 503, "out of memory") : 0;
}


static int
wh_job_apply_execs(wh_job_op_t *op, wh_etxn_t *t, wh_jobm_t *jm,
    const wh_job_t *rec, wh_err_t *err)
{
    wh_job_list_t  l;

    while (op->nitems > 0) {
        op->nitems--;
        free(op->items[op->nitems].client);
        free(op->items[op->nitems].command_id);
        free(op->items[op->nitems].error);
    }

    op->next_idx = 0;

    if (op->items == NULL) {
        op->items = calloc(op->limit, sizeof(wh_job_exec_item_t));

        if (op->items == NULL) {
            return wh_err(err, 503, "out of memory");
        }
    }

    l.op = op;
    l.t = t;
    l.jm = jm;
    l.rec = rec;

    return wh_etxn_ops(t)->exec_each(t, rec->ws, rec->id, op->cursor,
                                     wh_job_list_one, &l, err);
}


/* ------------------------------------------------------ retention */


typedef struct {
    uint64_t         idx[WH_JOB_PRUNE_MAX];
    uint32_t         series[WH_JOB_PRUNE_MAX];
    size_t           n;
    int              more;
} wh_job_prune_t;


static int
wh_job_prune_one(void *ctx, uint64_t idx, const wh_job_exec_t *x,
    wh_err_t *err)
{
    wh_job_prune_t  *p = ctx;

    (void) err;

    if (p->n == WH_JOB_PRUNE_MAX) {
        p->more = 1;
        return 1;
    }

    p->idx[p->n] = idx;
    p->series[p->n++] = x->series;

    return 0;
}


/* a chunk of the executions of an ended job, with the commands of
 * every series; once none is left, the job (op->finished) */
static int
wh_job_apply_prune(wh_job_op_t *op, wh_etxn_t *t, wh_jobm_t *jm,
    wh_err_t *err)
{
    int               rc;
    char              id[WH_CMD_ID_MAX + 1];
    size_t            i;
    uint32_t          s;
    wh_str_t          cid;
    wh_job_prune_t   *p;
    const wh_job_t   *r = &jm->rec;

    p = calloc(1, sizeof(wh_job_prune_t));

    if (p == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    op->finished = 0;
    rc = wh_etxn_ops(t)->exec_each(t, r->ws, r->id, 0, wh_job_prune_one, p,
                                   err);

    for (i = 0; rc == 0 && i < p->n; i++) {
        for (s = 1; rc == 0 && s <= p->series[i]; s++) {
            cid.data = id;
            cid.len = (size_t) snprintf(id, sizeof(id), "%.*s.%" PRIu64
                                        ".%" PRIu32, (int) r->id.len,
                                        r->id.data, p->idx[i], s);
            rc = cid.len < sizeof(id)
                 && wh_etxn_ops(t)->cmd_delete(t, r->ws, cid, err) < 0;
        }

        rc = rc || wh_etxn_ops(t)->exec_delete(t, r->ws, r->id, p->idx[i],
                                               err) != 0;
    }

    if (rc == 0 && !p->more) {
        rc = wh_etxn_ops(t)->job_delete(t, r->ws, r->id, err) != 0;
        op->finished = rc == 0;
    }

    free(p);

    return rc ? -1 : 0;
}


/* after the commit: the job is forgotten once all of it went */
static void
wh_job_prune_done(wh_jobs_t *j, wh_job_op_t *op, wh_jobm_t *jm)
{
    size_t         klen;
    unsigned char  key[WH_JOB_KEY_MAX];

    if (!op->finished) {
        return;
    }

    wh_log_info(j->log, "jobs: %.*s of %.*s ended past the retention, "
                "deleted", (int) jm->rec.id.len, jm->rec.id.data,
                (int) jm->rec.ws.len, jm->rec.ws.data);

    klen = wh_job_key(key, jm->rec.ws, jm->rec.id);
    wh_map_del(&j->jobs, key, klen);
    j->counters.pruned++;
    wh_job_free(&jm->rec);
    free(jm->exec);
    free(jm);
}


/* an ended job past the retention, when nothing else is to be done */
static int
wh_job_expired(const wh_jobs_t *j, const wh_jobm_t *jm, int64_t now)
{
    int64_t  keep = j->commands->retention_ms;

    return keep != 0 && !jm->sweep && jm->rec.ended_ms != 0
           && (jm->rec.status == WH_JOB_COMPLETED
               || jm->rec.status == WH_JOB_ABORTED
               || jm->rec.status == WH_JOB_CANCELLED)
           && now - jm->rec.ended_ms >= keep;
}


/* ------------------------------------------------ apply: cluster */


static int
wh_job_each_one(void *ctx, wh_job_t *job, wh_err_t *err)
{
    wh_job_t     *p;
    wh_job_op_t  *op = ctx;

    if (op->kind == WH_JOB_OP_LIST
        ? !wh_str_eq(job->ws, op->rec.ws)
          || job->status == WH_JOB_CREATING
          || (op->to_status >= 0 && job->status != op->to_status)
        : wh_job_final(job->status) || job->status == WH_JOB_CREATING
          || !wh_nodes_have(op->from_node, job->node))
    {
        return 0;
    }

    p = realloc(op->recs, (op->nrecs + 1) * sizeof(wh_job_t));

    if (p == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    op->recs = p;
    memset(&p[op->nrecs], 0, sizeof(wh_job_t));

    if (wh_job_rec_copy(&p[op->nrecs], job) != 0) {
        return wh_err(err, 503, "out of memory");
    }

    op->nrecs++;

    return 0;
}


/* LIST: the workspace's jobs; SCAN: the ones other nodes run */
static int
wh_job_apply_each(wh_job_op_t *op, wh_etxn_t *t, wh_err_t *err)
{
    wh_job_recs_free(op);

    return wh_etxn_ops(t)->job_each(t, op->kind == WH_JOB_OP_LIST
                                       ? op->rec.ws : wh_cstr(""),
                                    wh_job_each_one, op, err);
}


typedef struct {
    wh_jobs_t     *j;
    wh_etxn_t     *t;
    wh_jobm_t     *jm;
    wh_job_t      *creating;      /* jobs dropped: never answered */
    size_t         ncreating;
} wh_jobs_loading_t;

static int wh_jobs_load_exec(void *ctx, uint64_t idx,
    const wh_job_exec_t *x, wh_err_t *err);


/* ADOPT: the job is still its dead node's: it becomes this node's,
 * and is loaded as at start */
static int
wh_job_apply_adopt(wh_job_op_t *op, wh_etxn_t *t, wh_err_t *err)
{
    wh_job_t           *rec = &op->after_rec;
    wh_jobs_loading_t   l;

    wh_jobm_free(op->loaded);
    op->loaded = NULL;

    if (wh_job_final(rec->status) || rec->status == WH_JOB_CREATING
        || !wh_str_eq(rec->node, wh_cstr(op->from_node)))
    {
        op->outcome = WH_JOB_NOT_FOUND;
        return 0;
    }

    rec->node = wh_cstr(op->j->engine->node_id);
    op->op.sync = 1;

    if (wh_etxn_ops(t)->job_put(t, rec, err) != 0) {
        return -1;
    }

    op->loaded = wh_jobm_new(rec);

    if (op->loaded == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    memset(&l, 0, sizeof(l));
    l.j = op->j;
    l.t = t;
    l.jm = op->loaded;

    return wh_etxn_ops(t)->exec_each(t, rec->ws, rec->id, 0,
                                     wh_jobs_load_exec, &l, err);
}


static int
wh_job_op_apply(wh_op_t *base, wh_etxn_t *t, wh_err_t *err)
{
    int           rc;
    int64_t       now;
    wh_jobm_t    *jm;
    wh_job_op_t  *op = (wh_job_op_t *) base;

    /* a batch may be applied again: start from scratch */
    wh_cmd_notes_done(op->j->commands, &op->notes, 0);
    op->outcome = WH_JOB_DONE;
    op->used = 0;
    now = wh_time_ms();

    if (op->kind == WH_JOB_OP_CREATE) {
        return wh_job_apply_create(op, t, now, err);
    }

    if (op->kind == WH_JOB_OP_LIST || op->kind == WH_JOB_OP_SCAN) {
        return wh_job_apply_each(op, t, err);
    }

    jm = wh_jobs_find(op->j, op->rec.ws, op->rec.id);

    /* in a cluster a job another node runs is read, changed (cancel,
     * retry) or taken over from the store */
    if (jm == NULL
        && !(op->j->cluster
             && (op->kind == WH_JOB_OP_READ || op->kind == WH_JOB_OP_EXECS
                 || op->kind == WH_JOB_OP_STATE
                 || op->kind == WH_JOB_OP_ADOPT)))
    {
        op->outcome = WH_JOB_NOT_FOUND;
        return 0;
    }

    switch (op->kind) {

    case WH_JOB_OP_SWEEP:
        return wh_job_apply_sweep(op, t, jm, now, err);

    case WH_JOB_OP_EXECS:
        if (jm != NULL) {
            return wh_job_apply_execs(op, t, jm, &jm->rec, err);
        }

        break;

    case WH_JOB_OP_PRUNE:
        return wh_job_apply_prune(op, t, jm, err);

    default:
        break;
    }

    wh_job_free(&op->after_rec);
    rc = wh_etxn_ops(t)->job_get(t, op->rec.ws, op->rec.id, &op->after_rec,
                                 err);

    /* one whose executions are still being written is not there yet,
     * as on one node */
    if (rc <= 0 || (jm == NULL && op->after_rec.status == WH_JOB_CREATING))
    {
        op->outcome = WH_JOB_NOT_FOUND;
        return rc < 0 ? rc : 0;
    }

    switch (op->kind) {

    case WH_JOB_OP_READ:
    case WH_JOB_OP_REFRESH:
        return 0;

    case WH_JOB_OP_EXECS:
        return wh_job_apply_execs(op, t, NULL, &op->after_rec, err);

    case WH_JOB_OP_ADOPT:
        return wh_job_apply_adopt(op, t, err);

    default:
        break;
    }

    if (jm != NULL && !wh_job_mine(op->j, &op->after_rec)) {
        /* taken over while this node was cut off: the other runs it */
        op->outcome = WH_JOB_MOVED;
        return 0;
    }

    switch (op->kind) {

    case WH_JOB_OP_SAVE:
        return wh_job_put(op, t, &op->after_rec, err);

    case WH_JOB_OP_RELEASE:
        return wh_job_apply_release(op, t, jm, now, err);

    default:
        return wh_job_apply_state(op, t, now, err);
    }
}


/* -------------------------------------------------------------- done */


/* memory follows a committed state change; announce: publish its
 * event (not when another node did and this one reads it again) */
static void
wh_job_state_done(wh_jobs_t *j, wh_job_op_t *op, wh_jobm_t *jm,
    int announce)
{
    uint64_t  i;
    uint8_t   b;

    if (op->outcome != WH_JOB_DONE
        || wh_job_rec_copy(&jm->rec, &op->after_rec) != 0)
    {
        return;
    }

    switch (jm->rec.status) {

    case WH_JOB_ABORTED:
    case WH_JOB_CANCELLED:
        /* what the rollout had not released is cancelled with it; the
         * released pending commands are swept */
        for (i = 0; i < jm->rec.targets; i++) {
            if (jm->exec[i] & WH_EXEC_WAITING) {
                wh_exec_set(jm, i, WH_CMD_CANCELLED);
            }
        }

        jm->sweep = 1;
        jm->sweep_at = 0;
        j->counters.aborted += jm->rec.status == WH_JOB_ABORTED;

        if (announce) {
            wh_job_event(j, jm, jm->rec.status == WH_JOB_ABORTED
                                ? "job_aborted" : "job_cancelled");
        }

        break;

    case WH_JOB_COMPLETED:
        if (announce) {
            wh_job_event(j, jm, "job_completed");
        }

        break;

    case WH_JOB_IN_PROGRESS:
        if (op->to_status == WH_JOB_RETRY) {
            for (i = 0; i < jm->rec.targets; i++) {
                b = jm->exec[i];

                if (b == WH_CMD_FAILED || b == WH_CMD_EXPIRED) {
                    wh_exec_set(jm, i, WH_EXEC_WAITING | b);
                }
            }
        }

        jm->tokens = 0;
        jm->filled_ms = wh_loop_now();

        if (announce) {
            wh_job_event(j, jm, "job_progress");
        }

        break;

    default:
        break;
    }
}


static void
wh_job_create_done(wh_jobs_t *j, wh_job_op_t *op, int committed,
    const wh_err_t *err)
{
    wh_jobm_t  *jm;

    if (!committed) {
        /* the job stays "creating" in the store: dropped at start */
        op->reply(op, 0, err);
        return;
    }

    op->pos = op->next_pos;
    op->written = op->next_written;
    op->skipped = op->next_skipped;
    op->after_len = op->next_after_len;
    memcpy(op->after, op->next_after, op->next_after_len);

    if (!op->finished) {
        /* the next chunk in a later turn: the loop goes on meanwhile */
        op->next = j->creating;
        j->creating = op;
        return;
    }

    jm = wh_jobs_add(j, &op->rec);

    if (jm == NULL) {
        wh_log_error(j->log, "jobs: out of memory: %.*s waits for a "
                     "restart", (int) op->rec.id.len, op->rec.id.data);
    } else if (jm->rec.status == WH_JOB_COMPLETED) {
        wh_job_event(j, jm, "job_completed");
    }

    j->counters.created++;
    wh_log_info(j->log, "jobs: %.*s of %.*s: %" PRIu64 " executions "
                "written in %" PRId64 " ms", (int) op->rec.id.len,
                op->rec.id.data, (int) op->rec.ws.len, op->rec.ws.data,
                op->rec.targets,
                (wh_loop_now() * 1000 - op->started_us) / 1000);

    op->reply(op, 1, err);
}


static void wh_jobs_take_over(wh_jobs_t *j, wh_job_op_t *op);


/* the cluster's side of a committed op; the job in memory after it */
static wh_jobm_t *
wh_job_cluster_done(wh_jobs_t *j, wh_job_op_t *op, wh_jobm_t *jm)
{
    size_t             klen;
    wh_jobm_t          v;
    wh_engine_note_t   note;
    unsigned char      key[WH_JOB_KEY_MAX];

    switch (op->kind) {

    case WH_JOB_OP_SCAN:
        wh_jobs_take_over(j, op);
        return jm;

    case WH_JOB_OP_ADOPT:
        if (op->outcome != WH_JOB_DONE || op->loaded == NULL || jm != NULL
            || wh_jobs_insert(j, op->loaded) != 0)
        {
            return jm;
        }

        jm = op->loaded;
        op->loaded = NULL;
        wh_log_info(j->log, "jobs: %.*s of %.*s taken over from node "
                    "\"%s\", whose lease ended", (int) jm->rec.id.len,
                    jm->rec.id.data, (int) jm->rec.ws.len, jm->rec.ws.data,
                    op->from_node);
        return jm;

    case WH_JOB_OP_STATE:
        if (jm != NULL || op->outcome != WH_JOB_DONE) {
            break;
        }

        /* another node's job: this node tells, and that one acts */
        wh_job_view(&v, &op->after_rec);
        wh_job_event(j, &v, op->after_rec.status == WH_JOB_CANCELLED
                            ? "job_cancelled" : "job_progress");
        memset(&note, 0, sizeof(note));
        note.kind = WH_NOTE_JOB;
        note.ws = op->rec.ws;
        note.client_id = op->rec.id;
        j->engine->ops->state_notify(j->engine, &note);
        return NULL;

    default:
        break;
    }

    if (jm != NULL && op->outcome == WH_JOB_MOVED) {
        wh_log_warn(j->log, "jobs: %.*s of %.*s is run by node \"%.*s\" "
                    "now; this node lets it go", (int) jm->rec.id.len,
                    jm->rec.id.data, (int) jm->rec.ws.len, jm->rec.ws.data,
                    (int) op->after_rec.node.len, op->after_rec.node.data);
        klen = wh_job_key(key, jm->rec.ws, jm->rec.id);
        wh_map_del(&j->jobs, key, klen);
        wh_jobm_free(jm);
        return NULL;
    }

    return jm;
}


static void
wh_job_op_done(wh_op_t *base, int committed, const wh_err_t *err)
{
    size_t        i;
    wh_jobm_t    *jm;
    wh_job_op_t  *op = (wh_job_op_t *) base;
    wh_jobs_t    *j = op->j;

    /* what the op changed is for the next tick to carry on */
    wh_jobs_wake(j);
    wh_cmd_notes_done(j->commands, &op->notes, committed);

    if (op->kind == WH_JOB_OP_CREATE) {
        wh_job_create_done(j, op, committed, err);

        if (!committed || op->finished) {
            wh_job_op_free(op);
        }

        return;
    }

    jm = wh_jobs_find(j, op->rec.ws, op->rec.id);

    if (jm != NULL) {
        jm->busy = 0;
    }

    if (op->kind == WH_JOB_OP_PRUNE) {
        j->pruning = 0;
    }

    if (op->kind == WH_JOB_OP_SCAN) {
        j->scanning = 0;
    }

    if (committed) {
        jm = wh_job_cluster_done(j, op, jm);
    }

    if (jm != NULL && committed) {
        switch (op->kind) {

        case WH_JOB_OP_RELEASE:
            if (op->outcome == WH_JOB_DONE
                && op->after_rec.status == WH_JOB_IN_PROGRESS)
            {
                jm->rec.cursor = op->cursor;
                jm->tokens -= (double) op->used;
                j->counters.released += op->used;
            }

            break;

        case WH_JOB_OP_STATE:
            wh_job_state_done(j, op, jm, 1);
            break;

        case WH_JOB_OP_REFRESH:
            /* cancelled or retried by another node */
            if (op->outcome == WH_JOB_DONE
                && (op->after_rec.status != jm->rec.status
                    || op->after_rec.series != jm->rec.series))
            {
                op->to_status = op->after_rec.series != jm->rec.series
                                ? WH_JOB_RETRY : op->after_rec.status;
                wh_job_state_done(j, op, jm, 0);
            }

            break;

        case WH_JOB_OP_SWEEP:
            jm->sweep_at = op->to;
            jm->sweep = op->to < jm->rec.targets;

            for (i = 0; i < op->nitems; i++) {
                if (jm->exec[op->items[i].idx] == WH_CMD_PENDING) {
                    wh_exec_set(jm, op->items[i].idx,
                                (uint8_t) op->items[i].status);
                }
            }

            op->nitems = 0;
            break;

        case WH_JOB_OP_PRUNE:
            wh_job_prune_done(j, op, jm);
            break;

        default:
            break;
        }
    }

    if (op->reply != NULL) {
        op->reply(op, committed, err);
    }

    wh_job_op_free(op);
}


/* ------------------------------------------ other nodes' jobs */


/* after a scan: each job it found is taken over */
static void
wh_jobs_take_over(wh_jobs_t *j, wh_job_op_t *op)
{
    size_t        i;
    wh_job_op_t  *adopt;

    for (i = 0; i < op->nrecs; i++) {
        adopt = wh_job_op_new(j, WH_JOB_OP_ADOPT, op->recs[i].ws,
                              op->recs[i].id);

        if (adopt == NULL) {
            return;
        }

        adopt->from_node = strndup(op->recs[i].node.data,
                                   op->recs[i].node.len);

        if (adopt->from_node == NULL) {
            wh_job_op_free(adopt);
            return;
        }

        wh_job_op_submit(adopt);
    }
}


/* the engine's answer: the nodes whose lease ended lately */
static void
wh_jobs_gone(void *ctx, const wh_str_t *nodes, size_t n)
{
    wh_jobs_t    *j = ctx;
    wh_job_op_t  *op;

    if (j->stopped) {
        return;
    }

    j->scanning = 0;
    op = n ? wh_job_op_new(j, WH_JOB_OP_SCAN, wh_cstr(""), wh_cstr(""))
           : NULL;

    if (op == NULL) {
        return;
    }

    op->from_node = wh_nodes_join(nodes, n);

    if (op->from_node == NULL) {
        wh_job_op_free(op);
        return;
    }

    j->scanning = 1;
    wh_job_op_submit(op);
}


void
wh_jobs_changed_elsewhere(wh_jobs_t *j, wh_str_t ws, wh_str_t id)
{
    wh_job_op_t  *op;

    if (wh_jobs_find(j, ws, id) == NULL) {
        return;
    }

    op = wh_job_op_new(j, WH_JOB_OP_REFRESH, ws, id);

    if (op == NULL) {
        wh_log_error(j->log, "jobs: out of memory, a change of %.*s made "
                     "elsewhere is not read", (int) id.len, id.data);
        return;
    }

    wh_job_op_submit(op);
}


/* ---------------------------------------- executions change status */


static void
wh_jobs_exec_changed(void *ctx, wh_str_t ws, wh_str_t job, uint64_t idx,
    wh_cmd_status_e status)
{
    wh_jobm_t  *jm;
    wh_jobs_t  *j = ctx;

    jm = wh_jobs_find(j, ws, job);

    if (jm == NULL || idx >= jm->rec.targets) {
        return;
    }

    /* a release after a cancel or an abort (a sweep catches it) does
     * not make the execution pending again in memory */
    wh_exec_set(jm, idx, (uint8_t) status);

    /* its progress event, its completion */
    wh_jobs_wake(j);
}


/* --------------------------------------------------------- the timer */


static int
wh_job_queue(wh_jobs_t *j, wh_jobm_t *jm, wh_job_op_e kind, int to)
{
    wh_job_op_t  *op;

    op = wh_job_op_new(j, kind, jm->rec.ws, jm->rec.id);

    if (op == NULL) {
        wh_log_error(j->log, "jobs: out of memory, %.*s waits",
                     (int) jm->rec.id.len, jm->rec.id.data);
        return -1;
    }

    op->to_status = to;
    op->allow = 0;
    op->from = jm->sweep_at;
    jm->busy = 1;

    if (kind == WH_JOB_OP_RELEASE) {
        op->allow = jm->rec.rate ? (uint64_t) jm->tokens
                                 : WH_JOB_RELEASE_MAX;
        op->allow = op->allow > WH_JOB_RELEASE_MAX ? WH_JOB_RELEASE_MAX
                                                   : op->allow;
    }

    wh_job_op_submit(op);

    return 0;
}


/* the abort rule: enough executions ended and too many failed */
static int
wh_job_should_abort(const wh_jobm_t *jm)
{
    uint64_t  ended, failed;

    if (!jm->rec.abort) {
        return 0;
    }

    failed = jm->counts[WH_CMD_FAILED] + jm->counts[WH_CMD_EXPIRED];
    ended = failed + jm->counts[WH_CMD_COMPLETED];

    return ended >= jm->rec.abort_min && ended > 0
           && failed * 100 > (uint64_t) jm->rec.abort_percent * ended;
}


/* the bucket of the rollout: rate per minute, at most a second's worth
 * (or one) saved up */
static void
wh_job_refill(wh_jobm_t *jm, int64_t mono)
{
    double  cap;

    if (jm->rec.rate == 0) {
        return;
    }

    jm->tokens += (double) jm->rec.rate * (double) (mono - jm->filled_ms)
                  / 60000.0;
    cap = (double) jm->rec.rate / 60.0;
    cap = cap < 1.0 ? 1.0 : cap;
    jm->tokens = jm->tokens > cap ? cap : jm->tokens;
    jm->filled_ms = mono;
}


static void
wh_job_tick_one(wh_jobs_t *j, wh_jobm_t *jm, int64_t now, int64_t mono)
{
    if (jm->rec.status == WH_JOB_IN_PROGRESS) {
        wh_job_refill(jm, mono);
    }

    if (jm->changed && mono - jm->progress_ms >= WH_JOB_PROGRESS_MS) {
        wh_job_event(j, jm, "job_progress");
    }

    if (jm->busy) {
        return;
    }

    /* cluster: the other nodes read the counts from the store */
    if (j->cluster && jm->unsaved && mono - jm->saved_ms >= WH_JOB_SAVE_MS)
    {
        jm->unsaved = 0;
        jm->saved_ms = mono;
        (void) wh_job_queue(j, jm, WH_JOB_OP_SAVE, 0);
        return;
    }

    if (wh_job_expired(j, jm, now)) {
        if (!j->pruning && wh_job_queue(j, jm, WH_JOB_OP_PRUNE, 0) == 0) {
            j->pruning = 1;
        }

        return;
    }

    switch (jm->rec.status) {

    case WH_JOB_SCHEDULED:
        if (now >= jm->rec.not_before_ms) {
            (void) wh_job_queue(j, jm, WH_JOB_OP_STATE, WH_JOB_IN_PROGRESS);
        }

        return;

    case WH_JOB_IN_PROGRESS:
        if (wh_job_should_abort(jm)) {
            (void) wh_job_queue(j, jm, WH_JOB_OP_STATE, WH_JOB_ABORTED);

        } else if (jm->rec.cursor < jm->rec.targets) {
            if (jm->rec.rate == 0 || jm->tokens >= 1.0) {
                (void) wh_job_queue(j, jm, WH_JOB_OP_RELEASE, 0);
            }

        } else if (jm->counts[WH_CMD_PENDING] + jm->counts[WH_CMD_SENT]
                   == 0)
        {
            (void) wh_job_queue(j, jm, WH_JOB_OP_STATE, WH_JOB_COMPLETED);
        }

        return;

    case WH_JOB_ABORTED:
    case WH_JOB_CANCELLED:
        if (jm->sweep) {
            (void) wh_job_queue(j, jm, WH_JOB_OP_SWEEP, 0);
        }

        return;

    default:
        return;
    }
}


/* a job the fast tick must carry on */
static int
wh_job_active(const wh_jobm_t *jm)
{
    switch (jm->rec.status) {

    case WH_JOB_SCHEDULED:
    case WH_JOB_IN_PROGRESS:
        return 1;

    case WH_JOB_ABORTED:
    case WH_JOB_CANCELLED:
        if (jm->sweep) {
            return 1;
        }

        break;

    default:
        break;
    }

    return jm->busy || jm->changed || jm->unsaved;
}


static void
wh_jobs_tick(wh_timer_t *t)
{
    int              active;
    int64_t          now, mono;
    wh_job_op_t     *op, *next;
    wh_jobs_t       *j = t->data;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    /* the jobs being written: one chunk each per turn */
    op = j->creating;
    j->creating = NULL;

    for ( /* void */ ; op != NULL; op = next) {
        next = op->next;
        op->next = NULL;
        wh_batch_add(j->batch, &op->op, 0);
    }

    now = wh_time_ms();
    mono = wh_loop_now();

    active = j->creating != NULL;

    while ((e = wh_map_next(&j->jobs, &it)) != NULL) {
        wh_job_tick_one(j, e->value, now, mono);
        active |= wh_job_active(e->value);
    }

    t->interval = active ? WH_JOB_TICK_MS : WH_JOB_IDLE_TICK_MS;

    /* cluster: the jobs of nodes whose lease ended are taken over */
    if (j->cluster && !j->scanning && mono - j->scanned_ms >= WH_JOB_ADOPT_MS
        && j->engine->ops->nodes_gone != NULL)
    {
        j->scanned_ms = mono;
        j->scanning = j->engine->ops->nodes_gone(j->engine,
                                                 WH_JOB_GONE_WINDOW_MS,
                                                 wh_jobs_gone, j) == 0;
    }
}


/* ----------------------------------------------------- start and end */


/* one execution at start: its status from its command */
static int
wh_jobs_load_exec(void *ctx, uint64_t idx, const wh_job_exec_t *x,
    wh_err_t *err)
{
    int                 rc;
    char                id[WH_CMD_ID_MAX + 1];
    uint8_t             b;
    wh_command_t        cmd;
    wh_jobs_loading_t  *l = ctx;
    wh_jobm_t          *jm = l->jm;

    if (idx >= jm->rec.targets) {
        return 1;
    }

    rc = 0;

    if (x->series) {
        rc = wh_etxn_ops(l->t)->cmd_get(l->t, jm->rec.ws,
                                        wh_exec_cmd_id(id, jm->rec.id, idx,
                                                       x->series),
                                        &cmd, err);

        if (rc < 0) {
            return -1;
        }
    }

    b = wh_job_stored_status(&jm->rec, x,
                             rc == 1 ? (int) cmd.state.status : -1);

    if (rc == 1) {
        wh_command_free(&cmd);
    }

    wh_exec_set(jm, idx, b);

    if (b == WH_CMD_PENDING && wh_job_final(jm->rec.status)) {
        jm->sweep = 1;
    }

    return 0;
}


static int
wh_jobs_load_one(void *ctx, wh_job_t *job, wh_err_t *err)
{
    wh_job_t           *p;
    wh_jobs_loading_t  *l = ctx;
    wh_engine_t        *e = l->t->engine;

    /* cluster: another node's job is that node's to run */
    if (e->node_id != NULL
        && !wh_str_eq(job->node, wh_cstr(e->node_id)))
    {
        return 0;
    }

    if (job->status == WH_JOB_CREATING) {
        p = realloc(l->creating, (l->ncreating + 1) * sizeof(wh_job_t));

        if (p == NULL) {
            return wh_err(err, 503, "out of memory");
        }

        l->creating = p;
        memset(&p[l->ncreating], 0, sizeof(wh_job_t));

        if (wh_job_rec_copy(&p[l->ncreating], job) != 0) {
            return wh_err(err, 503, "out of memory");
        }

        l->ncreating++;
        return 0;
    }

    l->jm = wh_jobs_add(l->j, job);

    if (l->jm == NULL) {
        return wh_err(err, 503, "out of memory");
    }

    return wh_etxn_ops(l->t)->exec_each(l->t, job->ws, job->id, 0,
                                        wh_jobs_load_exec, l, err);
}


static void wh_jobs_drop_all(wh_jobs_t *j);


static int
wh_jobs_load(wh_etxn_t *t, void *ctx, wh_err_t *err)
{
    size_t              i;
    wh_jobs_loading_t  *l = ctx;

    l->t = t;

    /* a cluster engine runs the txn again from scratch when a read had
     * to wait: what an earlier run loaded is forgotten first */
    for (i = 0; i < l->ncreating; i++) {
        wh_job_free(&l->creating[i]);
    }

    l->ncreating = 0;
    wh_jobs_drop_all(l->j);

    if (wh_etxn_ops(t)->job_each(t, wh_cstr(""), wh_jobs_load_one, l,
                                 err) != 0)
    {
        return -1;
    }

    /* a job whose executions were being written was never answered */
    for (i = 0; i < l->ncreating; i++) {
        if (wh_etxn_ops(t)->job_delete(t, l->creating[i].ws,
                                       l->creating[i].id, err) != 0)
        {
            return -1;
        }
    }

    return 0;
}


static void
wh_jobs_drop_all(wh_jobs_t *j)
{
    wh_jobm_t       *jm;
    wh_map_iter_t    it = { 0, NULL };
    wh_map_entry_t  *e;

    while ((e = wh_map_next(&j->jobs, &it)) != NULL) {
        jm = e->value;
        wh_job_free(&jm->rec);
        free(jm->exec);
        free(jm);
    }

    wh_map_free(&j->jobs);
}


int
wh_jobs_init(wh_jobs_t *j, wh_engine_t *engine, wh_batch_t *batch,
    wh_commands_t *commands, wh_channels_t *channels, wh_log_t *log,
    wh_err_t *err)
{
    int                 rc;
    size_t              i;
    wh_jobs_loading_t   l;

    memset(j, 0, sizeof(wh_jobs_t));
    j->engine = engine;
    j->cluster = engine->node_id != NULL;
    j->log = log;
    j->batch = batch;
    j->commands = commands;
    j->channels = channels;

    memset(&l, 0, sizeof(l));
    l.j = j;

    rc = wh_engine_write(engine, WH_ENGINE_STATE, wh_jobs_load, &l, err);

    for (i = 0; i < l.ncreating; i++) {
        wh_job_free(&l.creating[i]);
    }

    free(l.creating);

    if (rc != 0) {
        wh_jobs_drop_all(j);
        return -1;
    }

    if (l.ncreating) {
        wh_log_info(log, "jobs: %zu never answered, dropped", l.ncreating);
    }

    commands->job_changed = wh_jobs_exec_changed;
    commands->job_ctx = j;

    wh_log_info(log, "jobs: %zu loaded", j->jobs.count);

    return 0;
}


int
wh_jobs_start(wh_jobs_t *j, wh_loop_t *loop, wh_err_t *err)
{
    j->timer.interval = WH_JOB_TICK_MS;
    j->timer.handler = wh_jobs_tick;
    j->timer.data = j;

    return wh_loop_timer(loop, &j->timer, err);
}


void
wh_jobs_free(wh_jobs_t *j)
{
    wh_job_op_t  *op, *next;

    for (op = j->creating; op != NULL; op = next) {
        next = op->next;
        wh_job_op_free(op);
    }

    j->creating = NULL;
    j->stopped = 1;
    wh_jobs_drop_all(j);
}

/*
 * Fleet jobs (DESIGN.md "Fleet jobs"): one command for many clients,
 * rolled out at a bounded rate, aborted when too many fail.
 *
 * A job is stored with one execution per target (engine.h): the client
 * and the attempt series of its current command.  Executions become
 * durable commands (commands.h) when the rollout releases them, at most
 * rollout.max_per_minute, in target order; the command's id is
 * "<job>.<index>.<series>" and it carries the job, so every status
 * change of it comes back here (wh_commands_t.job_changed) after the
 * commit.  The release of a command and the move of the job's cursor
 * are one txn: a restart neither loses nor repeats a release.
 *
 * Memory holds every job with one byte of status per execution, for
 * the counts, the abort rule, the listing and the retries; it is
 * rebuilt from the store at start.  Every write is an op of the batch
 * (batch.h); large steps (writing 10,000 executions, cancelling) go in
 * chunks, one per loop turn of the jobs' timer, so the loop never
 * stalls.
 */

#ifndef WH_JOBS_H
#define WH_JOBS_H

#include <stdint.h>

#include "wh_link.h"
#include "batch.h"
#include "channels.h"
#include "commands.h"
#include "engine.h"
#include "link.h"
#include "log.h"
#include "loop.h"
#include "map.h"


typedef enum {
    WH_JOB_CREATING = 0,        /* executions being written; not yet
                                 * answered (a restart drops it) */
    WH_JOB_SCHEDULED,           /* waits for not_before */
    WH_JOB_IN_PROGRESS,
    WH_JOB_COMPLETED,
    WH_JOB_ABORTED,
    WH_JOB_CANCELLED,
    WH_JOB_NSTATUS
} wh_job_status_e;

/* an execution's status byte in memory: a wh_cmd_status_e, with this
 * bit while it waits for the rollout (no command of the current series
 * yet; shown as pending) */
#define WH_EXEC_WAITING  0x80
#define WH_EXEC_STATUS   0x7f

typedef struct wh_jobs_s  wh_jobs_t;

/* a job in memory */
typedef struct {
    wh_job_t          rec;            /* as stored; strings in rec.mem */
    uint8_t          *exec;           /* rec.targets status bytes */
    uint64_t          counts[WH_CMD_NSTATUS];   /* waiting as pending */
    double            tokens;         /* of the rollout's bucket */
    int64_t           filled_ms;      /* monotonic: last refill */
    int64_t           progress_ms;    /* monotonic: last job_progress */
    int               changed;        /* counts moved since then */
    int               busy;           /* an op of it is in the batch */
    int               sweep;          /* pending commands to cancel */
    uint64_t          sweep_at;       /* next index to look at */
    int               unsaved;        /* cluster: counts moved since
                                       * they were last stored */
    int64_t           saved_ms;       /* monotonic */
} wh_jobm_t;

typedef struct {
    uint64_t          created;        /* jobs, since the start */
    uint64_t          released;       /* executions released */
    uint64_t          aborted;
    uint64_t          pruned;         /* jobs deleted by the retention */
} wh_job_counters_t;

struct wh_jobs_s {
    wh_engine_t      *engine;
    wh_log_t         *log;
    wh_batch_t       *batch;
    wh_commands_t    *commands;
    wh_channels_t    *channels;
    wh_map_t          jobs;           /* ws "\0" id -> wh_jobm_t */
    void             *creating;       /* ops writing executions */
    wh_timer_t        timer;
    int64_t           longest_turn_us;  /* of an op's apply, stats */
    int               pruning;        /* a prune op is in the batch: one
                                       * at a time, for short turns */
    /* cluster (the engine has a node_id): the jobs in memory are the
     * ones this node runs; the others' are read from the store, and
     * taken over when their node's lease ends */
    int               cluster;
    int               scanning;       /* a scan op or its asks run */
    int64_t           scanned_ms;     /* monotonic */
    int               stopped;
    wh_job_counters_t counters;
};


int wh_jobs_init(wh_jobs_t *j, wh_engine_t *engine, wh_batch_t *batch,
    wh_commands_t *commands, wh_channels_t *channels, wh_log_t *log,
    wh_err_t *err);
int wh_jobs_start(wh_jobs_t *j, wh_loop_t *loop, wh_err_t *err);
void wh_jobs_free(wh_jobs_t *j);

/* "scheduled", ...; "unknown" for an invalid status */
const char *wh_job_status_name(int status);
int wh_job_status_parse(const char *name, size_t len);

/* the job of ws named id; NULL if none */
wh_jobm_t *wh_jobs_find(wh_jobs_t *j, wh_str_t ws, wh_str_t id);

/* another node cancelled or retried job id of ws (engine.h
 * WH_NOTE_JOB): if this node runs it, it reads it again */
void wh_jobs_changed_elsewhere(wh_jobs_t *j, wh_str_t ws, wh_str_t id);

/* jobs by status, executions by status, over all workspaces
 * (metrics) */
void wh_jobs_totals(wh_jobs_t *j, uint64_t *jobs, uint64_t *execs);

#endif /* WH_JOBS_H */

/*
 * What jobs.c (the jobs' state, rollout and ops) and jobs_api.c (the
 * HTTP routes) share, and nothing else includes.
 */

#ifndef WH_JOBS_INTERNAL_H
#define WH_JOBS_INTERNAL_H

#include <stdint.h>

#include "jobs.h"


typedef enum {
    WH_JOB_OP_CREATE = 0,           /* writes a chunk of executions */
    WH_JOB_OP_RELEASE,              /* the rollout: commands go out */
    WH_JOB_OP_STATE,                /* start, cancel, abort, finish,
                                     * retry */
    WH_JOB_OP_SWEEP,                /* cancels released pending ones */
    WH_JOB_OP_EXECS,                /* lists executions */
    WH_JOB_OP_PRUNE,                /* the retention: an ended job goes,
                                     * a chunk of executions a turn */
    /* cluster */
    WH_JOB_OP_READ,                 /* a job another node runs */
    WH_JOB_OP_LIST,                 /* the workspace's jobs, stored */
    WH_JOB_OP_SAVE,                 /* stores the counts */
    WH_JOB_OP_REFRESH,              /* reads a job changed elsewhere */
    WH_JOB_OP_SCAN,                 /* finds jobs other nodes run */
    WH_JOB_OP_ADOPT                 /* takes one over: its node is gone */
} wh_job_op_e;

typedef enum {
    WH_JOB_TARGET_LIST = 0,
    WH_JOB_TARGET_TYPE,
    WH_JOB_TARGET_ALL
} wh_job_target_e;

/* what a request came to (storage errors aside) */
typedef enum {
    WH_JOB_DONE = 0,
    WH_JOB_NOT_FOUND,
    WH_JOB_CONFLICT,                /* cancel or retry: not now */
    WH_JOB_MOVED                    /* cluster: another node took the
                                     * job over */
} wh_job_outcome_e;

#define WH_JOB_RETRY  (-1)          /* STATE: to, for a retry */

typedef struct wh_job_op_s  wh_job_op_t;

typedef void (*wh_job_reply_pt)(wh_job_op_t *op, int committed,
    const wh_err_t *err);

/* one execution as a listing shows it */
typedef struct {
    uint64_t          idx;
    int               status;         /* memory's byte */
    unsigned          attempt;
    char             *client, *command_id, *error;
} wh_job_exec_item_t;

struct wh_job_op_s {
    wh_op_t           op;
    wh_jobs_t        *j;
    wh_job_op_e       kind;
    wh_job_op_t      *next;           /* CREATE: waiting for a tick */

    /* CREATE: the job as it will be stored (strings into mem), its
     * targets and how far the chunks got */
    wh_job_t          rec;
    wh_job_target_e   target;
    wh_str_t          client_type;
    wh_str_t         *clients;        /* TARGET_LIST, into mem */
    size_t            nclients;
    uint64_t          pos, next_pos;  /* the list, or the clients
                                       * listed so far */
    char              after[WH_CMD_CLIENT_MAX + 1];  /* scan: the last */
    size_t            after_len;
    char              next_after[WH_CMD_CLIENT_MAX + 1];
    size_t            next_after_len;
    uint64_t          written, next_written, skipped, next_skipped;
    int               finished;

    /* RELEASE: tokens it may spend, what it spent, where it stopped;
     * STATE: the status to go to; SWEEP: the range */
    uint64_t          allow, used, cursor, from, to;
    int               to_status;
    wh_job_t          after_rec;      /* STATE, RELEASE: the job as
                                       * committed */

    /* EXECS */
    unsigned          mask;           /* of memory status names */
    size_t            limit;
    wh_job_exec_item_t  *items;
    size_t            nitems;
    uint64_t          next_idx;       /* cursor of the next page; 0 */

    /* LIST: the stored jobs (memory's where this node runs them);
     * SCAN: the jobs of other nodes; ADOPT: the node it was taken
     * from, the job as loaded */
    wh_job_t         *recs;
    size_t            nrecs;
    char             *from_node;
    wh_jobm_t        *loaded;

    wh_job_outcome_e  outcome;
    wh_cmd_notes_t    notes;
    wh_job_reply_pt   reply;
    wh_peer_t        *peer;
    uint32_t          req_id;
    int64_t           started_us;     /* of the create, for the log */
    char             *mem;
};


/* an op on job id of ws; NULL out of memory */
wh_job_op_t *wh_job_op_new(wh_jobs_t *j, wh_job_op_e kind, wh_str_t ws,
    wh_str_t id);
void wh_job_op_free(wh_job_op_t *op);
/* queues it for the end of the loop turn */
void wh_job_op_submit(wh_job_op_t *op);

/* the job as the API shows it */
int wh_job_json(wh_buf_t *b, const wh_jobm_t *jm);

/* a job of another node as the API shows it (its stored counts) */
int wh_job_json_rec(wh_buf_t *b, const wh_job_t *rec);

/* the status name of an execution's memory byte */
const char *wh_job_exec_status(int status);

#endif /* WH_JOBS_INTERNAL_H */

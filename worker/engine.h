/*
 * The storage engine: the durable state of the channels (ids, epochs,
 * history), the clients registry, the command queue and the
 * revocations, as operations on C structs.  LMDB (engine_lmdb*.c) is the
 * first implementation, selected at start; a Redis engine (DESIGN.md
 * "Cluster mode") implements the same table.
 *
 * Every write, and every read of clients and commands, runs inside
 * write(): one transaction for the ops of a batch (batch.h) or for the
 * publishes of a loop turn (channels.c), applied again from scratch if
 * the engine has to retry it, so the operations touch nothing but the
 * txn before it commits.  Channel metadata and history are also read
 * outside of one.
 *
 * A write goes to one of two spaces, which never share a transaction
 * (DESIGN.md "Failure semantics"): the state (clients, revocations,
 * commands), whose commits must survive power loss, and the history
 * (channel ids, epochs and messages), which may lag by a second.  The
 * client and command operations run only in a state write, the channel
 * operations only in a history write.  sync() makes what is committed
 * to the state durable (LMDB: its environment syncs every commit;
 * Redis: appendfsync always + WAIT): a command is answered 202 only
 * after it.
 *
 * What the engine hands out (wh_client_t, wh_command_t, lists) owns its
 * memory: free it with wh_client_free(), wh_command_free(), ... Strings
 * the operations set on a struct are borrowed: the engine copies what
 * it stores.
 */

#ifndef WH_ENGINE_H
#define WH_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "wh_link.h"
#include "cmdqueue.h"
#include "log.h"


/*
 * An operation that cannot finish now: the engine (Redis) is fetching
 * what it needs or committing, and calls its handler's wake() once it
 * may; the caller keeps what it was doing and runs it again from
 * scratch then (the txn contract below makes that safe).  A write
 * whose commit is under way answers it too, and the run that follows
 * the wake gets the commit's result without applying again.  LMDB
 * never answers it.
 */
#define WH_ENGINE_AGAIN  (-2)

/* chan_append and chan_ensure of an engine that counts the workspace's
 * channels itself (cluster): no channel made, the channels quota is
 * reached */
#define WH_ENGINE_NO_CHANNEL  2

/* a channel's epoch: 8 characters, new each time the channel is made */
#define WH_EPOCH_LEN  8

typedef struct {
    uint64_t     last_id;
    uint64_t     first_id;      /* the oldest in history; last_id + 1
                                 * when it is empty */
    int64_t      created_ms;
    char         epoch[WH_EPOCH_LEN + 1];
} wh_chan_meta_t;

/* what a history read found */
typedef struct {
    int             found;      /* the channel exists */
    wh_chan_meta_t  meta;
    uint64_t        first;      /* first id passed to the callback, or 0 */
    uint64_t        last;
    size_t          count;
    int             more;       /* entries remain past the last one */
} wh_hist_range_t;

/* a history entry; text is the message as clients get it, valid during
 * the call; non-zero stops before this entry */
typedef int (*wh_hist_item_pt)(void *ctx, uint64_t id, int64_t time_ms,
    const char *text, size_t len);
/* a channel of a listing; non-zero stops */
typedef int (*wh_chan_item_pt)(void *ctx, const char *name, size_t len,
    const wh_chan_meta_t *meta);
/* what a workspace stores, for the quotas (quota.h): a channel (name)
 * with bytes of history texts (the messages as clients get them), or a
 * client (name its id, bytes 0); non-zero stops */
typedef int (*wh_usage_pt)(void *ctx, wh_str_t ws, wh_str_t name,
    uint64_t bytes);

/* a command keeps its first and its newest state changes */
#define WH_CMD_HISTORY_MAX   64

typedef struct wh_engine_s      wh_engine_t;
typedef struct wh_engine_ops_s  wh_engine_ops_t;

/*
 * What one node tells the others of the state it changed (cluster
 * engines: state_notify), so that each keeps its memory of it (the open
 * commands, the revocations) in step with the store.  At most once:
 * a note lost while the engine was down is made up for by a RESYNC.
 */
typedef enum {
    WH_NOTE_COMMANDS = 'C',         /* the client's commands changed */
    WH_NOTE_REVOKED = 'R',          /* the client was deleted: its
                                     * tokens before arg (seconds) are
                                     * refused, its sessions close */
    WH_NOTE_DISCONNECT = 'D',       /* close the client's sessions */
    WH_NOTE_JOB = 'J',              /* a job (client_id: its id) was
                                     * cancelled or retried elsewhere */
    WH_NOTE_SOURCE = 'U',           /* a run-time source (client_id:
                                     * its id) was deleted elsewhere */
    WH_NOTE_RESYNC = 'S'            /* from the engine itself: notes
                                     * may have been lost (the shared
                                     * store was out of reach) */
} wh_engine_note_e;

typedef struct {
    wh_engine_note_e   kind;
    wh_str_t           ws, client_id;
    uint64_t           arg;
} wh_engine_note_t;

/* what the engine tells the daemon; set before the first operation */
typedef struct {
    /* what answered WH_ENGINE_AGAIN may be run again */
    void  (*wake)(void *ctx);
    /* a message of a followed channel (chan_follow), published on any
     * node: once each, in id order per channel; text is valid during
     * the call */
    void  (*message)(void *ctx, wh_str_t ws, wh_str_t ch, uint64_t id,
        const char *epoch, int64_t time_ms, wh_str_t text);
    /* the channels and history bytes ws may store (UINT64_MAX: no
     * limit), for an engine that counts them over the cluster */
    void  (*limits)(void *ctx, wh_str_t ws, uint64_t *channels,
        uint64_t *history_bytes);
    /* another node changed shared state (state_notify), or RESYNC */
    void  (*state)(void *ctx, const wh_engine_note_t *note);
} wh_engine_handler_t;

/* where a write goes: what is synced before it is answered, or what
 * may lag (LMDB: one environment each) */
typedef enum {
    WH_ENGINE_STATE = 0,        /* clients, revocations, commands */
    WH_ENGINE_HISTORY           /* channels and their history */
} wh_engine_space_e;

/* one write transaction; impl is the engine's own: of a state write,
 * its kv txn (wh_kv_txn_t *, state.h); of a history write, anything
 * (LMDB: its MDB_txn) */
typedef struct {
    wh_engine_t        *engine;
    wh_engine_space_e   space;
    void               *impl;
    int                 unchecked;  /* set around an op that writes
                                     * nothing and only tells memory
                                     * what the store holds: what it
                                     * reads then is not checked at
                                     * commit (state.h) */
} wh_etxn_t;

typedef struct {
    wh_str_t       ws, id, name, client_type;
    wh_str_t       metadata;        /* its JSON text; empty: none */
    int64_t        created_ms;
    int64_t        last_seen_ms;    /* 0: never */
    char          *mem;
} wh_client_t;

typedef struct {
    wh_client_t   *items;
    size_t         n;
    int            more;            /* clients follow the last item */
} wh_client_list_t;

/* one state change of a command */
typedef struct {
    wh_cmd_status_e  status;
    int64_t          at_ms;
    unsigned         attempt;       /* a delivery: its number, else 0 */
    wh_str_t         session;       /* a delivery: to which session */
    wh_str_t         reason;
} wh_cmd_event_t;

typedef struct {
    wh_str_t         ws, id, client_id, command;
    wh_str_t         payload;       /* the text the user sent */
    wh_str_t         idem;          /* idempotency key; empty: none */
    wh_str_t         result;        /* the text the device sent */
    wh_str_t         error, reason;
    wh_str_t         lane;          /* empty: none (state.lane its
                                     * hash) */
    wh_str_t         supersede;     /* supersede_key; empty: none */
    wh_str_t         issued_by;     /* "role:sub" of the token, or "" */
    wh_str_t         job;           /* an execution: its job's id */
    uint64_t         job_idx;       /* and its target's index */
    unsigned         priority;
    uint64_t         seq;           /* creation order */
    wh_cmd_state_t   state;
    int64_t          created_ms, updated_ms;
    wh_cmd_event_t  *history;
    size_t           nhistory, history_cap;
    char            *mem;
} wh_command_t;

typedef struct {
    wh_command_t    *items;
    size_t           n, cap;
    uint64_t         next;          /* the cursor of the next page, 0 */
} wh_cmd_list_t;

/* what a workspace-wide listing of commands admits */
typedef struct {
    unsigned         mask;          /* of wh_cmd_status_e bits; 0 any */
    wh_str_t         sub;           /* issued_by's sub; empty: any */
    int64_t          since_ms;      /* created at or after; 0: any */
} wh_cmd_filter_t;

/* one space of the engine, for /metrics (LMDB: its environment) */
typedef struct {
    uint64_t       used_bytes;      /* storage in use */
    uint64_t       size_bytes;      /* reserved now (LMDB: the map) */
    uint64_t       max_bytes;       /* what it may grow to */
    int            full;            /* the last write was refused: no
                                     * room left up to max_bytes */
    int            sync_failed;     /* the last sync to disk failed */
} wh_engine_space_stats_t;

/* node_id: 1 to 64 characters (config.c checks them) */
#define WH_NODE_ID_MAX  65

/* a cluster engine's link to what the nodes share (Redis) */
typedef struct {
    int            up;              /* the primary is reached */
    char           primary[64];     /* "host:port", or "" */
    char           node_id[WH_NODE_ID_MAX];
    uint64_t       failovers;       /* new primaries followed */
    uint64_t       reconnects;
    uint64_t       followed;        /* channels followed by this node */
    uint64_t       delivered;       /* messages delivered to them */
    uint64_t       gap_messages;    /* of those, read back after a gap */
    uint64_t       state_commits;   /* state writes applied in Redis */
    uint64_t       state_conflicts; /* of the commits tried, refused: a
                                     * read changed meanwhile (another
                                     * node); the write ran again */
    uint64_t       state_reads;     /* reads sent for state writes */
    /* the node's lease (node_lease): renewed this long ago, -1 never */
    int64_t        lease_age_ms;
    int64_t        lease_ms;
    /* replication as the primary last told (INFO, once a second):
     * replicas online, how far the slowest is behind (bytes of the
     * replication stream), -1 not known */
    int64_t        replicas;
    int64_t        replication_lag;
} wh_engine_cluster_t;

/* what the engine holds, from counts it keeps (no scan), for /metrics */
typedef struct {
    uint64_t       channels;        /* channels stored */
    uint64_t       messages;        /* messages in history */
    uint64_t       history_bytes;   /* storage the history takes */
    uint64_t       clients;         /* clients registered */
    wh_engine_space_stats_t  space[2];  /* by wh_engine_space_e */
    int                      cluster;   /* the figures below are set */
    wh_engine_cluster_t      c;
} wh_engine_stats_t;

/* a fleet job (jobs.h), as stored */
typedef struct {
    wh_str_t         ws, id, command, payload, issued_by;
    wh_str_t         target;        /* its JSON text, as the API shows */
    wh_str_t         node;          /* cluster: the node_id that runs
                                     * its rollout; "" on one node */
    int              status;        /* wh_job_status_e (jobs.h) */
    unsigned         priority;
    unsigned         abort_percent; /* abort.failure_percent */
    unsigned         abort_min;     /* abort.min_executed; */
    int              abort;         /* 0: no abort rule */
    uint32_t         rate;          /* max_per_minute; 0 unlimited */
    uint32_t         series;        /* attempt series, 1 the first */
    int64_t          ttl_ms;        /* of each execution; 0 default */
    int64_t          not_before_ms;
    int64_t          created_ms, started_ms, ended_ms, updated_ms;
    uint64_t         targets;       /* executions */
    uint64_t         cursor;        /* the rollout of this series
                                     * reached this index */
    uint64_t         skipped;       /* listed clients not registered */
    /* cluster: the executions by status as the node running the
     * rollout last wrote them, for the other nodes' reads; counted 0:
     * not written (one node: memory has them) */
    uint64_t         counts[WH_CMD_NSTATUS];
    int              counted;
    char            *mem;
} wh_job_t;

/* one execution of a job, as stored: its client and the series of
 * its current command (0: none made yet) */
typedef struct {
    uint32_t         series;
    size_t           client_len;
    char             client[WH_CMD_CLIENT_MAX];
} wh_job_exec_t;

typedef int (*wh_engine_txn_pt)(wh_etxn_t *t, void *ctx, wh_err_t *err);
/* the answer of rate(): WH_ERATE_*, and for WH_ERATE_HELD the time
 * (ms) the window still runs; value: the held value a due handed
 * over (valid during the call) */
typedef void (*wh_engine_rate_pt)(void *ctx, int rc, int64_t wait_ms,
    wh_str_t value);
/* the answer of nodes_gone(): the node ids (n 0: none, or the engine
 * is out of reach), valid during the call */
typedef void (*wh_engine_gone_pt)(void *ctx, const wh_str_t *nodes,
    size_t n);
/* a stored revocation; non-zero stops */
typedef int (*wh_engine_revoked_pt)(void *ctx, wh_str_t ws,
    wh_str_t client_id, uint64_t before_s);
/* a stored upstream source (sources.c): its record, valid during the
 * call; non-zero stops */
typedef int (*wh_engine_source_pt)(void *ctx, wh_str_t ws, wh_str_t id,
    wh_str_t record);
/* an open command, valid during the call (the callee may change it
 * through the engine) */
typedef int (*wh_engine_cmd_pt)(void *ctx, wh_command_t *cmd,
    wh_err_t *err);
/* a stored job, valid during the call; non-zero stops (-1: error) */
typedef int (*wh_engine_job_pt)(void *ctx, wh_job_t *job, wh_err_t *err);
/* an execution of a job; non-zero stops (-1: error) */
typedef int (*wh_engine_exec_pt)(void *ctx, uint64_t idx,
    const wh_job_exec_t *x, wh_err_t *err);

struct wh_engine_ops_s {
    const char  *kind;

    /* runs fn in one transaction of that space and commits it; -1
     * with err */
    int  (*write)(wh_engine_t *e, wh_engine_space_e space,
        wh_engine_txn_pt fn, void *ctx, wh_err_t *err);
    /* makes what is committed to the state durable */
    int  (*sync)(wh_engine_t *e, wh_err_t *err);
    void (*close)(wh_engine_t *e);

    /* channels, inside a history write: the channel's metadata, created (with
     * a new epoch) if it does not exist and create is set; 1 found or
     * created, 0 not, -1 error */
    int  (*chan_get)(wh_etxn_t *t, wh_str_t ws, wh_str_t ch, int64_t now,
        int create, wh_chan_meta_t *meta, wh_err_t *err);
    /* inside a history write: appends text as message meta->last_id + 1 and
     * trims the history to its length; meta follows.  *growth is what
     * the channel's history texts grow by (len minus the texts trimmed);
     * when it would pass room nothing changes and it returns 1 */
    int  (*chan_append)(wh_etxn_t *t, wh_str_t ws, wh_str_t ch,
        wh_chan_meta_t *meta, int64_t now, const void *text, size_t len,
        int64_t room, int64_t *growth, wh_err_t *err);
    /* outside a write: creates the channel if need be, in a history
     * write of its own */
    int  (*chan_ensure)(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
        int64_t now, wh_chan_meta_t *meta, wh_err_t *err);
    /* 1 found, 0 not, -1 error */
    int  (*chan_meta)(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
        wh_chan_meta_t *meta, wh_err_t *err);
    /* the channels of ws whose name sorts after `after` */
    int  (*chan_list)(wh_engine_t *e, wh_str_t ws, wh_str_t after,
        wh_chan_item_pt cb, void *ctx, wh_err_t *err);
    /* history entries with after < id <= up_to, oldest first, at most
     * limit, skipping those older than the history ttl at now */
    int  (*hist_read)(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
        uint64_t after, uint64_t up_to, size_t limit, int64_t now,
        wh_hist_item_pt cb, void *ctx, wh_hist_range_t *r, wh_err_t *err);

    /* every channel with the bytes of its history texts (at start) */
    int  (*hist_usage)(wh_engine_t *e, wh_usage_pt cb, void *ctx,
        wh_err_t *err);

    /* upkeep, from the daemon's timers: removes history older than its
     * ttl (after the commit, freed learns the bytes of texts each
     * channel lost); makes history durable without stalling the loop;
     * clears what dead processes left (each may do nothing) */
    int  (*hist_expire)(wh_engine_t *e, int64_t now, wh_usage_pt freed,
        void *ctx, size_t *removed, wh_err_t *err);
    int  (*sync_background)(wh_engine_t *e, wh_err_t *err);
    int  (*check_readers)(wh_engine_t *e, int *dead, wh_err_t *err);
    /* the live messages of a channel, from every node (cluster
     * engines): on when it gets its first local subscriber, off when
     * it loses its last; 0 in effect, WH_ENGINE_AGAIN not yet.  While
     * a channel is followed, chan_meta answers what was delivered
     * (handler->message) up to now.  NULL: messages are fanned out by
     * the daemon after its own commits (LMDB, one node) */
    int  (*chan_follow)(wh_engine_t *e, wh_str_t ws, wh_str_t ch, int on,
        wh_err_t *err);
    /* cluster engines: this node holds `here` sessions of ws now; the
     * answer is the sessions the other live nodes hold, as last read
     * (about a second old).  NULL: one node */
    uint64_t (*presence)(wh_engine_t *e, wh_str_t ws, uint64_t here);
    /* bytes of storage reserved (LMDB: both maps), for the logs */
    size_t (*size)(wh_engine_t *e);
    /* outside a write: what is stored and how full each space is */
    int  (*stats)(wh_engine_t *e, wh_engine_stats_t *out, wh_err_t *err);

    /* clients, inside a state write: 1 found, 0 not, -1 error; out
     * may be NULL */
    int  (*client_get)(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
        wh_client_t *out, wh_err_t *err);
    int  (*client_put)(wh_etxn_t *t, const wh_client_t *cl, wh_err_t *err);
    /* the clients of ws whose id sorts after `after`, at most limit */
    int  (*client_list)(wh_etxn_t *t, wh_str_t ws, wh_str_t after,
        size_t limit, wh_client_list_t *out, wh_err_t *err);
    /* deletes the client; its tokens issued before before_s are
     * refused from now on */
    int  (*client_revoke)(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
        uint64_t before_s, wh_err_t *err);
    int  (*revocations)(wh_etxn_t *t, wh_engine_revoked_pt cb, void *ctx,
        wh_err_t *err);
    /* every client of every workspace (at start) */
    int  (*client_each)(wh_etxn_t *t, wh_usage_pt cb, void *ctx,
        wh_err_t *err);

    /* commands, inside a state write: the last seq given out (kept
     * across restarts) */
    int  (*cmd_seq)(wh_etxn_t *t, uint64_t *last, wh_err_t *err);
    int  (*cmd_set_seq)(wh_etxn_t *t, uint64_t last, wh_err_t *err);
    /* n seqs past every one given out, taken at once and given to no
     * other write (cluster: nodes taking seqs do not conflict) */
    int  (*cmd_seq_take)(wh_etxn_t *t, uint64_t n, uint64_t *first,
        wh_err_t *err);
    /* 1 found, 0 not, -1 error */
    int  (*cmd_get)(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
        wh_command_t *out, wh_err_t *err);
    /* a new command: open, listed for its client, its idempotency key
     * taken */
    int  (*cmd_insert)(wh_etxn_t *t, const wh_command_t *cmd,
        wh_err_t *err);
    /* a changed command; one that ended is no longer open */
    int  (*cmd_update)(wh_etxn_t *t, const wh_command_t *cmd,
        wh_err_t *err);
    /* the command the client created with this idempotency key */
    int  (*cmd_idem)(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
        wh_str_t key, wh_command_t *out, wh_err_t *err);
    /* a client's commands with seq > after, in creation order, at most
     * limit of those whose status is in mask (0: any) */
    int  (*cmd_list)(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
        uint64_t after, size_t limit, unsigned mask, wh_cmd_list_t *out,
        wh_err_t *err);
    /* one node: brings the per-client index, which cmd_list reads,
     * up to the last seq given out (*indexed); never in a cluster,
     * whose commands come with their entries */
    int  (*cmd_index_clients)(wh_etxn_t *t, uint64_t *indexed,
        wh_err_t *err);
    /* the open commands of a client, or of every client if ws is
     * empty, in seq order; cb may change them */
    int  (*cmd_open)(wh_etxn_t *t, wh_str_t ws, wh_str_t client_id,
        wh_engine_cmd_pt cb, void *ctx, wh_err_t *err);
    /* forgets the client's idempotency keys */
    int  (*cmd_forget_client)(wh_etxn_t *t, wh_str_t ws,
        wh_str_t client_id, wh_err_t *err);

    /*
     * Fleet jobs (jobs.h), in state writes, a block of their own.  A
     * job is one record; its executions are records keyed by the job
     * and the index of their target, in index order.
     */

    /* 1 found, 0 not, -1 error */
    int  (*job_get)(wh_etxn_t *t, wh_str_t ws, wh_str_t id, wh_job_t *out,
        wh_err_t *err);
    int  (*job_put)(wh_etxn_t *t, const wh_job_t *job, wh_err_t *err);
    /* the job and its executions (not their commands) */
    int  (*job_delete)(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
        wh_err_t *err);
    /* every job of ws, or of every workspace (ws empty: at start) */
    int  (*job_each)(wh_etxn_t *t, wh_str_t ws, wh_engine_job_pt cb,
        void *ctx, wh_err_t *err);
    int  (*exec_put)(wh_etxn_t *t, wh_str_t ws, wh_str_t job,
        uint64_t idx, const wh_job_exec_t *x, wh_err_t *err);
    /* the executions with index >= from, in index order */
    int  (*exec_each)(wh_etxn_t *t, wh_str_t ws, wh_str_t job,
        uint64_t from, wh_engine_exec_pt cb, void *ctx, wh_err_t *err);

    /*
     * Upstream sources (DESIGN.md "Upstream sources"): the ones added
     * at run time, inside a state write.  The record is sources.c's
     * JSON text, header values included; the engine only keeps it.
     * An engine without these (NULL) has no run-time sources.
     */

    /* stores or replaces the record of (ws, id) */
    int  (*source_put)(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
        wh_str_t record, wh_err_t *err);
    /* 1 deleted, 0 there was none */
    int  (*source_del)(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
        wh_err_t *err);
    /* every stored source (at start) */
    int  (*source_each)(wh_etxn_t *t, wh_engine_source_pt cb, void *ctx,
        wh_err_t *err);
    /* the record of (ws, id), valid until the txn's next call: 1, or 0
     * there is none */
    int  (*source_get)(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
        wh_str_t *record, wh_err_t *err);

    /*
     * The workspace-wide listing of commands and the retention
     * (DESIGN.md "Fleet jobs": GET /commands, `commands retention=`),
     * in state writes, a block of their own.  Every step is bounded:
     * a caller gets more in later txns, never a long one.
     */

    /* the commands of ws with seq < before (0: from the newest),
     * newest first: at most limit of those f admits, looking at no
     * more than scan; out->next is the seq to go on before (0: none
     * left) */
    int  (*cmd_list_ws)(wh_etxn_t *t, wh_str_t ws, uint64_t before,
        size_t limit, size_t scan, const wh_cmd_filter_t *f,
        wh_cmd_list_t *out, wh_err_t *err);
    /* deletes up to max commands that ended before before_ms (those
     * of a job excepted: they go with their job), oldest end first,
     * with their indexes; *removed of them, *more if some are left */
    int  (*cmd_prune)(wh_etxn_t *t, int64_t before_ms, size_t max,
        size_t *removed, int *more, wh_err_t *err);
    /* the command with its indexes: 1 deleted, 0 there was none */
    int  (*cmd_delete)(wh_etxn_t *t, wh_str_t ws, wh_str_t id,
        wh_err_t *err);
    /* one execution of a job */
    int  (*exec_delete)(wh_etxn_t *t, wh_str_t ws, wh_str_t job,
        uint64_t idx, wh_err_t *err);

    /*
     * Cluster engines, whose state other nodes change too (NULL: one
     * node, whose memory is the only one).
     */

    /* tells the other nodes, after a commit, what changed */
    void (*state_notify)(wh_engine_t *e, const wh_engine_note_t *note);
    /*
     * The rate coalescer's window of one key (ingest.h), shared by the
     * nodes.  value.data != NULL offers a value: WH_ERATE_SEND (no
     * window was open: send it, one is now) or WH_ERATE_HELD (it
     * replaced the key's held value).  value.data NULL asks, once a
     * held value's window should have ended: WH_ERATE_SEND with the
     * held value (a new window opened), WH_ERATE_HELD (the window
     * runs on: ask again), WH_ERATE_NONE (nothing held).  -1: not
     * asked (cb is not called); WH_ERATE_FAILED: asked, no answer.
     */
    int  (*rate)(wh_engine_t *e, wh_str_t ws, wh_str_t key,
        int64_t window_ms, wh_str_t value, wh_engine_rate_pt cb,
        void *ctx);
    /* the nodes whose lease (node_lease) ended less than within_ms
     * ago: what they ran is to be taken over; -1: not asked (cb is not
     * called) */
    int  (*nodes_gone)(wh_engine_t *e, int64_t within_ms,
        wh_engine_gone_pt cb, void *ctx);
    /* outside a write: what the quotas of ws count over the cluster,
     * its channels (not `$` ones) and the bytes of their history
     * texts, history past its ttl freed first; 0, -1 with err, or
     * WH_ENGINE_AGAIN.  NULL: the daemon's own counts (quota.c) are
     * the store's */
    int  (*ws_usage)(wh_engine_t *e, wh_str_t ws, int64_t now,
        uint64_t *channels, uint64_t *bytes, wh_err_t *err);
};

enum {
    WH_ERATE_SEND = 0,
    WH_ERATE_HELD,
    WH_ERATE_NONE,
    WH_ERATE_FAILED
};

struct wh_engine_s {
    const wh_engine_ops_t      *ops;
    wh_log_t                   *log;
    const wh_engine_handler_t  *handler;
    void                       *handler_ctx;
    /* set once the daemon's loop runs; before (its loads at start) a
     * write of a cluster engine waits, turning the loop itself, rather
     * than answer WH_ENGINE_AGAIN */
    int                         serving;
    /* cluster engines: this node's node_id; NULL on one node */
    const char                 *node_id;
};


static inline int
wh_engine_write(wh_engine_t *e, wh_engine_space_e space,
    wh_engine_txn_pt fn, void *ctx, wh_err_t *err)
{
    return e->ops->write(e, space, fn, ctx, err);
}


static inline int
wh_engine_sync(wh_engine_t *e, wh_err_t *err)
{
    return e->ops->sync(e, err);
}


static inline void
wh_engine_close(wh_engine_t *e)
{
    e->ops->close(e);
}


/* the reads of channels outside a write, as callers name them */
static inline int
wh_engine_hist_read(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    uint64_t after, uint64_t up_to, size_t limit, int64_t now,
    wh_hist_item_pt cb, void *ctx, wh_hist_range_t *r, wh_err_t *err)
{
    return e->ops->hist_read(e, ws, ch, after, up_to, limit, now, cb, ctx,
                             r, err);
}


static inline int
wh_engine_chan_list(wh_engine_t *e, wh_str_t ws, wh_str_t after,
    wh_chan_item_pt cb, void *ctx, wh_err_t *err)
{
    return e->ops->chan_list(e, ws, after, cb, ctx, err);
}


/* other nodes share the state: what memory holds of it may be stale,
 * and what this node changes, it tells them */
static inline int
wh_engine_shared(wh_engine_t *e)
{
    return e->ops->state_notify != NULL;
}


static inline void
wh_engine_notify(wh_engine_t *e, wh_engine_note_e kind, wh_str_t ws,
    wh_str_t client_id, uint64_t arg)
{
    wh_engine_note_t  n;

    if (e->ops->state_notify == NULL) {
        return;
    }

    n.kind = kind;
    n.ws = ws;
    n.client_id = client_id;
    n.arg = arg;
    e->ops->state_notify(e, &n);
}


/* the table of the engine a txn belongs to */
#define wh_etxn_ops(t)  ((t)->engine->ops)


void wh_client_free(wh_client_t *cl);
void wh_job_free(wh_job_t *job);
void wh_client_list_free(wh_client_list_t *l);
void wh_command_free(wh_command_t *cmd);
void wh_cmd_list_free(wh_cmd_list_t *l);
/* a slot at the end of the list; NULL out of memory */
wh_command_t *wh_cmd_list_add(wh_cmd_list_t *l);

/* appends a state change, the oldest after the first giving way when
 * the history is full; -1 out of memory */
int wh_command_event(wh_command_t *cmd, const wh_cmd_event_t *ev);

/* a new epoch: WH_EPOCH_LEN random letters and digits, and a NUL */
void wh_epoch_new(char *epoch);

/* nodes_gone()'s answer kept: the ids with "\n" between them (NULL
 * out of memory); and whether such a list has node */
char *wh_nodes_join(const wh_str_t *nodes, size_t n);
int wh_nodes_have(const char *list, wh_str_t node);

/* copies strs[0..n) into one block (*mem) and points dst[i] at them */
int wh_strs_copy(char **mem, wh_str_t **dst, const wh_str_t *strs,
    size_t n);

#endif /* WH_ENGINE_H */

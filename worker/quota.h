/*
 * Quotas per workspace (DESIGN.md "Limits and quotas"): the limits the
 * `quota` lines of wirehubd.conf give each workspace, what each one
 * uses, and the checks every path that creates state for a workspace
 * makes first.  One tenant cannot fill the store, the registry or the
 * queue, nor take the publish pipeline, for the others.
 *
 *   channels          channels stored
 *   history_bytes     bytes of history texts stored (the messages as
 *                     clients get them)
 *   clients           clients registered
 *   queued_commands   commands pending or sent
 *   publish_rate      messages per second, API and WebSocket publishes
 *                     and MQTT ingest together (a token bucket holding
 *                     one second's worth)
 *
 * `$` channels, written by wirehubd alone ($presence, $stats,
 * $commands), count towards nothing and are never refused.
 *
 * Usage: channels, history bytes and clients are counted from the store
 * at start (wh_quota_count_*) and followed from then on, each write
 * reporting what it changed after its commit; nothing of it is stored.
 * Queued commands are counted by the command queue, which registers
 * count_open.
 *
 * Checks: a write that would create something takes a place first
 * (wh_quota_take) and gives it back after its commit
 * (wh_quota_release), so that the writes of one loop turn, committed as
 * one group, cannot pass a limit together.  The publishes of a history
 * write are checked inside it (wh_quota_hist_*), where the bytes the
 * trim to the history length frees are known.
 *
 * A refusal is HTTP 429 with code quota_exceeded, or rate_limited with
 * a Retry-After (wh_err_t.retry_s) for the publish rate.
 */

#ifndef WH_QUOTA_H
#define WH_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "wh_link.h"
#include "log.h"
#include "map.h"


typedef enum {
    WH_QUOTA_CHANNELS = 0,
    WH_QUOTA_HISTORY_BYTES,
    WH_QUOTA_CLIENTS,
    WH_QUOTA_QUEUED_COMMANDS,
    WH_QUOTA_PUBLISH_RATE,          /* per second */
    WH_QUOTA_KINDS
} wh_quota_kind_e;

#define WH_QUOTA_UNLIMITED    UINT64_MAX
#define WH_QUOTA_RATE_MAX     1000000       /* publish_rate, per second */

typedef struct {
    uint64_t         limit[WH_QUOTA_KINDS];
} wh_quota_limits_t;

/* one `quota` line */
typedef struct {
    char                *workspace;     /* "*": every workspace */
    unsigned             set;           /* 1 << kind for each key named */
    wh_quota_limits_t    limits;
} wh_quota_rule_t;

/* a token bucket: one message costs WH_BUCKET_UNIT, a second refills
 * rate of them, it holds at most one second's worth */
#define WH_BUCKET_UNIT  1000

typedef struct {
    uint64_t         credit;
    int64_t          at_ms;         /* of the last refill; 0: never */
} wh_bucket_t;

typedef struct wh_quota_ws_s  wh_quota_ws_t;

typedef struct {
    wh_log_t                *log;
    const wh_quota_rule_t   *rules;     /* the configuration's */
    unsigned                 nrules;
    wh_map_t                 ws;        /* workspace -> wh_quota_ws_t */
    unsigned                 txn_gen;   /* the history write being run */
    wh_quota_ws_t           *txn_ws;    /* the workspaces it touched */
    uint64_t                 refused[WH_QUOTA_KINDS];
    /* the open commands of a workspace, from the command queue */
    size_t                 (*count_open)(void *ctx, wh_str_t ws);
    void                    *count_ctx;
} wh_quota_t;


/* the name of a kind as in wirehubd.conf and /api/stats */
const char *wh_quota_name(wh_quota_kind_e kind);
/* the kind of a name, -1 if none */
int wh_quota_kind(const char *name, size_t len);

/* the limits of ws: the built-in defaults, then the keys of the
 * `workspace=*` rules, then those of ws's own rules, each in order */
void wh_quota_limits(const wh_quota_rule_t *rules, unsigned nrules,
    wh_str_t ws, wh_quota_limits_t *out);

/* takes one message at now (ms, monotonic) from a bucket of rate per
 * second; 0, or how many ms until one can pass */
int64_t wh_bucket_take(wh_bucket_t *b, uint64_t rate, int64_t now);

void wh_quota_init(wh_quota_t *q, const wh_quota_rule_t *rules,
    unsigned nrules, wh_log_t *log);
void wh_quota_free(wh_quota_t *q);

/* at start, what the store holds: a channel with its history bytes,
 * a client (as wh_usage_pt of engine.h); -1 out of memory */
int wh_quota_count_channel(void *q, wh_str_t ws, wh_str_t ch,
    uint64_t bytes);
int wh_quota_count_client(void *q, wh_str_t ws, wh_str_t id,
    uint64_t bytes);

/* forgets what was counted of kind in every workspace, before a count
 * from the store starts (again: a write of the Redis engine runs again
 * from scratch each time it fetched more, kv.h) */
void wh_quota_recount(wh_quota_t *q, wh_quota_kind_e kind);

/* a commit changed what ws uses of kind by delta (a client registered
 * or deleted, a channel created) */
void wh_quota_add(wh_quota_t *q, wh_str_t ws, wh_quota_kind_e kind,
    int64_t delta);
/* an expiry removed bytes of a channel's history (wh_usage_pt) */
int wh_quota_freed(void *q, wh_str_t ws, wh_str_t ch, uint64_t bytes);

/* a publish into channel ch of ws takes a message from the workspace's
 * bucket: 0, or -1 with err 429 and err->retry_s (the refusal is
 * counted, and logged as wh_quota_refuse() says when who is not
 * NULL) */
int wh_quota_publish(wh_quota_t *q, wh_str_t ws, wh_str_t ch,
    const char *who, wh_err_t *err);

/* takes a place of kind (clients, queued_commands) in ws ahead of a
 * write that creates one: 0, or -1 when what is used and taken already
 * reached the limit (nothing is counted: the caller decides, then calls
 * wh_quota_refuse) */
int wh_quota_take(wh_quota_t *q, wh_str_t ws, wh_quota_kind_e kind);
/* gives the place back after the write's commit (wh_quota_add counts
 * what it created) */
void wh_quota_release(wh_quota_t *q, wh_str_t ws, wh_quota_kind_e kind);

/* counts a refusal of kind in ws and sets err (429 quota_exceeded);
 * who: NULL when the caller answers someone, else what was refused
 * ("MQTT ingest", ...), logged at most once per workspace per minute
 * with the count since */
void wh_quota_refuse(wh_quota_t *q, wh_str_t ws, wh_quota_kind_e kind,
    const char *who, wh_err_t *err);

/*
 * A history write (the publishes of a loop turn, a channel a subscribe
 * creates): begin at the start of each run (the engine may run it
 * again), then per channel the room it has and what it added, end after
 * the commit (committed 0: forgotten).
 */
void wh_quota_hist_begin(wh_quota_t *q);
/* 1 if channel ch may be created in ws by this write */
int wh_quota_hist_channel(wh_quota_t *q, wh_str_t ws, wh_str_t ch);
/* how many bytes the history of ws may still grow by in this write
 * (INT64_MAX: no bound) when it is appended to ch */
int64_t wh_quota_hist_room(wh_quota_t *q, wh_str_t ws, wh_str_t ch);
/* ch of ws gained channels (0 or 1: created) and bytes */
void wh_quota_hist_add(wh_quota_t *q, wh_str_t ws, wh_str_t ch,
    int64_t channels, int64_t bytes);
void wh_quota_hist_end(wh_quota_t *q, int committed);

/* the "quota" member of GET /stats for ws: per kind used (not for
 * publish_rate), limit (null: unlimited) and refused */
json_t *wh_quota_stats(wh_quota_t *q, wh_str_t ws);

/* refusals since the start by kind, all workspaces together (for a
 * /metrics family): refused[kind] */
void wh_quota_totals(const wh_quota_t *q, uint64_t *refused);

#endif /* WH_QUOTA_H */

/*
 * The Redis engine's state, shared by engine_redis.c (the table, the
 * writes, the connection's events) and engine_redis_channels.c (the
 * history space: publishes, reads, followed channels).
 */

#ifndef WH_ENGINE_REDIS_INTERNAL_H
#define WH_ENGINE_REDIS_INTERNAL_H

#include <stdint.h>

#include "engine_redis.h"
#include "map.h"


/* messages of a followed channel kept for resumes */
#define WH_RFOLLOW_RING   32
/* reads answered from what was fetched within this long (the daemon
 * runs the read again at once, on the engine's wake) */
#define WH_RCACHE_TTL_MS  20
#define WH_RCACHE_MAX     10000

/* a reply, copied out of hiredis's (valid only during its callback) */
typedef struct wh_rv_s  wh_rv_t;

struct wh_rv_s {
    int          type;              /* REDIS_REPLY_* */
    long long    integer;
    char        *str;               /* NUL-terminated */
    size_t       len;
    size_t       n;
    wh_rv_t    **el;
};

/* a read made outside a write, answered again when it is run again */
typedef struct {
    int          state;             /* WH_RC_* */
    int64_t      ready_ms;          /* monotonic */
    wh_rv_t     *rv;
} wh_rcache_t;

enum { WH_RC_FETCHING = 0, WH_RC_READY, WH_RC_FAILED };

/* a message of a followed channel */
typedef struct wh_rmsg_s  wh_rmsg_t;

struct wh_rmsg_s {
    wh_rmsg_t   *next;
    uint64_t     id;
    int64_t      time_ms;
    char         epoch[WH_EPOCH_LEN + 1];
    size_t       len;
    char         text[];
};

/* a channel with local subscribers */
typedef struct {
    char        *key;               /* ws "\0" channel */
    wh_str_t     ws, ch;
    char        *pubsub;            /* wh:{ws}:p:CHANNEL */
    int          state;             /* WH_RF_* */
    int          synced;            /* last and epoch were read once */
    uint64_t     last;              /* the last id delivered */
    char         epoch[WH_EPOCH_LEN + 1];   /* "" : no channel yet */
    uint64_t     gen;               /* tells a reply it is still wanted */
    wh_rmsg_t   *pending, **pending_tail;   /* arrived while syncing */
    wh_rmsg_t   *ring[WH_RFOLLOW_RING];     /* the last delivered */
    unsigned     ring_head, ring_n;
} wh_rfollow_t;

enum {
    WH_RF_SUBSCRIBING = 0,          /* SUBSCRIBE not confirmed yet */
    WH_RF_SYNCING,                  /* reading last, epoch, a gap */
    WH_RF_READY
};

/* a publish of the write under way */
typedef struct {
    char        *ws, *ch;
    char        *prefix, *suffix;   /* the text around id and epoch */
    char        *pubsub;            /* its pub/sub channel */
    char        *msg;               /* to PUBLISH once replicas have it
                                     * (replicas_ack), else NULL */
    int64_t      now;
    int64_t      room;
    int          refused;           /* no room */
    uint64_t     id;
    int64_t      growth;
    char         epoch[WH_EPOCH_LEN + 1];
} wh_rpub_t;

/* the history write: recorded, committed, then run once more to hand
 * the results to the caller */
typedef struct {
    int          state;             /* WH_RW_* */
    int          replay;            /* the run after the commit */
    wh_rpub_t   *pubs;
    size_t       npubs, cap;
    size_t       next;              /* the next publish of a run */
    size_t       waiting;           /* replies not in yet */
    int          wait_sent;         /* a WAIT is behind the calls */
    wh_err_t     err;               /* the commit failed */
    int          failed;
} wh_rwrite_t;

enum { WH_RW_IDLE = 0, WH_RW_COMMITTING, WH_RW_DONE };

typedef struct {
    wh_engine_t              base;
    wh_engine_redis_conf_t   conf;
    char                    *node_id;
    wh_redis_t              *redis;
    wh_loop_t               *loop;
    wh_map_t                 follows;   /* ws "\0" ch -> wh_rfollow_t */
    wh_map_t                 cache;     /* read key -> wh_rcache_t */
    wh_map_t                 presence;  /* ws -> its sessions here and
                                         * elsewhere */
    wh_rwrite_t              hist;
    wh_timer_t               timer;
    uint64_t                 gen;
    uint64_t                 delivered; /* counters for stats */
    uint64_t                 gaps;      /* messages read back */
    int64_t                  lease_ms;  /* wh:node:ID renewed then */
    int64_t                  info_ms;   /* INFO replication asked */
    int64_t                  replicas;  /* as it answered; -1 */
    int64_t                  repl_lag;  /* bytes; -1 not known */
} wh_engine_redis_t;


/* engine_redis_channels.c: the history space */
int wh_rch_chan_get(wh_etxn_t *t, wh_str_t ws, wh_str_t ch, int64_t now,
    int create, wh_chan_meta_t *meta, wh_err_t *err);
int wh_rch_chan_append(wh_etxn_t *t, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, int64_t now, const void *text, size_t len,
    int64_t room, int64_t *growth, wh_err_t *err);
int wh_rch_chan_ensure(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    int64_t now, wh_chan_meta_t *meta, wh_err_t *err);
int wh_rch_chan_meta(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    wh_chan_meta_t *meta, wh_err_t *err);
int wh_rch_chan_list(wh_engine_t *e, wh_str_t ws, wh_str_t after,
    wh_chan_item_pt cb, void *ctx, wh_err_t *err);
int wh_rch_ws_usage(wh_engine_t *e, wh_str_t ws, int64_t now,
    uint64_t *channels, uint64_t *bytes, wh_err_t *err);
int wh_rch_hist_read(wh_engine_t *e, wh_str_t ws, wh_str_t ch,
    uint64_t after, uint64_t up_to, size_t limit, int64_t now,
    wh_hist_item_pt cb, void *ctx, wh_hist_range_t *r, wh_err_t *err);
int wh_rch_chan_follow(wh_engine_t *e, wh_str_t ws, wh_str_t ch, int on,
    wh_err_t *err);

/* engine_redis_presence.c: the sessions of the cluster */
uint64_t wh_rpres_report(wh_engine_redis_t *re, wh_str_t ws,
    uint64_t here);
void wh_rpres_tick(wh_engine_redis_t *re, int64_t now);
int wh_rpres_nodes_gone(wh_engine_t *e, int64_t within_ms,
    wh_engine_gone_pt cb, void *ctx);
void wh_rpres_free(wh_engine_redis_t *re);

/* engine_redis_rate.c: the rate coalescer's windows (engine.h rate) */
int wh_rrate(wh_engine_t *e, wh_str_t ws, wh_str_t key, int64_t window_ms,
    wh_str_t value, wh_engine_rate_pt cb, void *ctx);

/* the history write of engine.h's write(): 0, -1, WH_ENGINE_AGAIN */
int wh_rch_write(wh_engine_redis_t *re, wh_engine_txn_pt fn, void *ctx,
    wh_err_t *err);

/* the connection's events, from engine_redis.c */
void wh_rch_up(wh_engine_redis_t *re);
void wh_rch_down(wh_engine_redis_t *re);
void wh_rch_message(wh_engine_redis_t *re, wh_str_t channel,
    wh_str_t payload);
void wh_rch_subscribed(wh_engine_redis_t *re, wh_str_t channel);
/* the timer: drops reads answered long enough ago */
void wh_rch_tick(wh_engine_redis_t *re, int64_t now);
void wh_rch_free(wh_engine_redis_t *re);

#endif /* WH_ENGINE_REDIS_INTERNAL_H */

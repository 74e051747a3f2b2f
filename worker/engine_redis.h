/*
 * The Redis engine (engine.h; DESIGN.md "Cluster mode"): the nodes of
 * a cluster share their channels and their state through one Redis (or
 * the primary Sentinel names), reached without ever blocking the loop
 * (redis.h).
 * Its operations answer WH_ENGINE_AGAIN while Redis is asked, and wake
 * the daemon when the answer is in.
 *
 * Keys of a workspace carry its name as the hash tag:
 *
 *   wh:{ws}:m:CHANNEL   hash: last (id), epoch, created (ms)
 *   wh:{ws}:h:CHANNEL   list: "TIME_MS TEXT" per message, the oldest
 *                       first; it holds ids last - LLEN + 1 .. last
 *                       (entries past the history ttl leave from its
 *                       head at the channel's next publish)
 *   wh:{ws}:usage       hash: bytes, the history texts the workspace
 *                       stores (its history_bytes quota; the channels
 *                       quota counts wh:{ws}:chans)
 *   wh:{ws}:chans       sorted set of the channel names (listing)
 *   wh:{ws}:p:CHANNEL   the pub/sub channel: "ID EPOCH TIME_MS TEXT"
 *   wh:workspaces       set of the workspaces with channels
 *   wh:{ws}:nodes       hash: node_id -> "SESSIONS DEADLINE_MS", the
 *                       sessions of ws each node holds (presence)
 *   wh:{ws}:kv:DB ...   the state space (clients, revocations,
 *                       commands, jobs, sources): kv_redis.h
 *   wh:state            pub/sub: what a node changed in the state,
 *                       for the others' memory (engine.h's notes)
 *
 * A publish is one Lua script (id, history append and trim within the
 * length and the quota room, PUBLISH), so ids are contiguous and every
 * node sees a channel's messages in id order.  A node subscribes once
 * per channel that has local subscribers (chan_follow), delivers each
 * message once (gaps, after a lost connection, are read back from the
 * history) and keeps the last few for resumes.
 */

#ifndef WH_ENGINE_REDIS_H
#define WH_ENGINE_REDIS_H

#include <stdint.h>

#include "engine.h"
#include "loop.h"
#include "redis.h"


typedef struct {
    wh_redis_conf_t   redis;
    const char       *node_id;
    unsigned          replicas_ack;     /* WAIT for that many replicas */
    int64_t           ack_timeout_ms;
    int64_t           node_lease_ms;    /* a dead node stops counting */
    uint32_t          hist_len;
    int64_t           hist_ttl_ms;      /* 0: no time limit */
} wh_engine_redis_conf_t;


/* starts connecting (the engine answers 503 while Redis is down) */
int wh_engine_redis_open(wh_engine_t **out, wh_loop_t *loop,
    const wh_engine_redis_conf_t *conf, wh_log_t *log, wh_err_t *err);

#endif /* WH_ENGINE_REDIS_H */
